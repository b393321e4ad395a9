//! Prints how long the planner takes at 50 brokers x 10,000 partitions (RF 3), median of 5.
//!
//! `cargo run -p krait-planner --release --example plan_timing`

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use krait_planner::{Broker, PartitionAssignment, PlanRequest, plan};

const BROKERS: i32 = 50;
const PARTITIONS: i32 = 10_000;
const RUNS: usize = 5;

/// SplitMix64, so the example needs no `rand`.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % n as u64) as usize
    }
}

struct Scenario {
    name: &'static str,
    racks: usize,
    /// Brokers the current replicas are drawn from.
    current: std::ops::Range<i32>,
    target: std::ops::Range<i32>,
}

fn request(scenario: &Scenario) -> PlanRequest {
    let mut rng = Rng(7);
    let brokers = (0..BROKERS)
        .map(|id| Broker {
            id,
            rack: Some(format!("rack-{}", id as usize % scenario.racks)),
        })
        .collect();
    let pool: Vec<i32> = scenario.current.clone().collect();
    let partitions = (0..PARTITIONS)
        .map(|i| {
            let mut replicas = Vec::new();
            while replicas.len() < 3 {
                let b = pool[rng.below(pool.len())];
                if !replicas.contains(&b) {
                    replicas.push(b);
                }
            }
            PartitionAssignment {
                topic: format!("topic-{}", i % 20),
                partition: i / 20,
                replicas,
                size_bytes: rng.below(1 << 30) as u64,
            }
        })
        .collect();
    PlanRequest {
        brokers,
        target: scenario.target.clone().collect::<BTreeSet<i32>>(),
        partitions,
    }
}

fn main() {
    let scenarios = [
        Scenario {
            name: "scale up 45 -> 50, 5 racks",
            racks: 5,
            current: 0..45,
            target: 0..50,
        },
        Scenario {
            name: "drain 50 -> 45, 5 racks",
            racks: 5,
            current: 0..50,
            target: 0..45,
        },
        Scenario {
            name: "skewed onto 12 brokers -> 50, 3 uneven racks",
            racks: 3,
            current: 0..12,
            target: 0..50,
        },
    ];
    for scenario in &scenarios {
        let request = request(scenario);
        let mut times: Vec<Duration> = Vec::new();
        let mut summary = None;
        for _ in 0..RUNS {
            let start = Instant::now();
            let planned = plan(&request).expect("the scenario is plannable");
            times.push(start.elapsed());
            summary = Some(planned.summary);
        }
        times.sort();
        let summary = summary.expect("ran at least once");
        let target = |counts: &BTreeMap<i32, usize>| -> (usize, usize) {
            let on_target = counts.iter().filter(|(b, _)| request.target.contains(b));
            let values: Vec<usize> = on_target.map(|(_, &n)| n).collect();
            (
                values.iter().copied().min().unwrap_or(0),
                values.iter().copied().max().unwrap_or(0),
            )
        };
        println!(
            "{}: median {:.1} ms (min {:.1}, max {:.1})\n  {} replicas moved, {} leaders changed; \
             per broker after: replicas {:?}, leaders {:?} (min, max)",
            scenario.name,
            times[RUNS / 2].as_secs_f64() * 1e3,
            times[0].as_secs_f64() * 1e3,
            times[RUNS - 1].as_secs_f64() * 1e3,
            summary.replicas_moved,
            summary.leaders_changed,
            target(&summary.replicas_per_broker_after),
            target(&summary.leaders_per_broker_after),
        );
    }
}
