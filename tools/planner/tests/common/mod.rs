//! Fixtures and the rule checker shared by the scenario and property tests.
#![allow(dead_code)] // each test binary uses a different part

use std::collections::{BTreeMap, BTreeSet};

use krait_planner::{Broker, PartitionAssignment, Plan, PlanRequest, apply};

/// Builds a [`PlanRequest`]: brokers first (all targeted unless `target` says otherwise),
/// then partitions.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    request: PlanRequest,
}

impl Cluster {
    /// Brokers without racks, all of them targets.
    pub fn brokers(ids: impl IntoIterator<Item = i32>) -> Self {
        let brokers: Vec<Broker> = ids
            .into_iter()
            .map(|id| Broker { id, rack: None })
            .collect();
        Self::with(brokers)
    }

    /// Brokers with racks, all of them targets.
    pub fn racked(brokers: &[(i32, &str)]) -> Self {
        let brokers = brokers
            .iter()
            .map(|&(id, rack)| Broker {
                id,
                rack: Some(rack.to_owned()),
            })
            .collect();
        Self::with(brokers)
    }

    fn with(brokers: Vec<Broker>) -> Self {
        let target = brokers.iter().map(|b| b.id).collect();
        Self {
            request: PlanRequest {
                brokers,
                target,
                partitions: Vec::new(),
            },
        }
    }

    pub fn target(mut self, ids: impl IntoIterator<Item = i32>) -> Self {
        self.request.target = ids.into_iter().collect();
        self
    }

    pub fn partition(mut self, topic: &str, partition: i32, replicas: &[i32], size: u64) -> Self {
        self.request.partitions.push(PartitionAssignment {
            topic: topic.to_owned(),
            partition,
            replicas: replicas.to_vec(),
            size_bytes: size,
        });
        self
    }

    /// `count` partitions of `topic`, replicas laid out round-robin over `brokers`,
    /// partition `i` of size `(i + 1) * 1000`.
    pub fn round_robin(mut self, topic: &str, count: i32, rf: usize, brokers: &[i32]) -> Self {
        for i in 0..count {
            let replicas: Vec<i32> = (0..rf)
                .map(|r| brokers[(i as usize + r) % brokers.len()])
                .collect();
            self = self.partition(topic, i, &replicas, (i as u64 + 1) * 1000);
        }
        self
    }

    pub fn build(self) -> PlanRequest {
        self.request
    }
}

/// SplitMix64: a tiny deterministic generator, so fixtures need no `rand`.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// How generated brokers get racks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RackLayout {
    /// No broker has a rack.
    None,
    /// Broker `i` in rack `i % racks`.
    RoundRobin,
    /// Each broker in a random rack.
    Random,
    /// Random racks, and some brokers without one.
    Mixed,
    /// Every broker in a rack of its own.
    PerBroker,
}

/// Parameters of a generated cluster.
#[derive(Debug, Clone)]
pub struct Spec {
    pub brokers: usize,
    pub racks: usize,
    pub layout: RackLayout,
    /// Percent chance that a broker is left out of the target (drained).
    pub drain_percent: usize,
    pub partitions: usize,
    pub topics: usize,
    /// Current replicas crowd onto the first quarter of the brokers.
    pub skewed: bool,
    pub max_rf: usize,
    pub seed: u64,
}

/// A broker id no request lists: a replica left on a broker that is gone.
pub const GHOST_BROKER: i32 = 9_999;

pub fn generate(spec: &Spec) -> PlanRequest {
    let mut rng = Rng::new(spec.seed);
    let ids: Vec<i32> = (0..spec.brokers as i32).map(|i| i * 3 + 1).collect();
    let brokers: Vec<Broker> = ids
        .iter()
        .enumerate()
        .map(|(i, &id)| Broker {
            id,
            rack: rack_for(spec, i, &mut rng),
        })
        .collect();
    let mut target: BTreeSet<i32> = ids
        .iter()
        .copied()
        .filter(|_| rng.below(100) >= spec.drain_percent)
        .collect();
    if target.is_empty() {
        target.insert(ids[rng.below(ids.len())]);
    }
    let max_rf = spec.max_rf.min(target.len()).max(1);
    let rfs: Vec<usize> = (0..spec.topics).map(|_| 1 + rng.below(max_rf)).collect();
    let pool = if spec.skewed {
        &ids[..(spec.brokers / 4).max(3).min(spec.brokers)]
    } else {
        &ids[..]
    };
    let partitions = (0..spec.partitions)
        .map(|i| {
            let topic = i % spec.topics;
            PartitionAssignment {
                topic: format!("topic-{topic}"),
                partition: (i / spec.topics) as i32,
                replicas: current_replicas(&mut rng, pool, rfs[topic]),
                size_bytes: rng.next_u64() % 1_000_000,
            }
        })
        .collect();
    PlanRequest {
        brokers,
        target,
        partitions,
    }
}

fn rack_for(spec: &Spec, index: usize, rng: &mut Rng) -> Option<String> {
    let racks = spec.racks.max(1);
    match spec.layout {
        RackLayout::None => None,
        RackLayout::RoundRobin => Some(format!("rack-{}", index % racks)),
        RackLayout::Random => Some(format!("rack-{}", rng.below(racks))),
        RackLayout::Mixed => {
            let r = rng.below(racks + 1);
            (r < racks).then(|| format!("rack-{r}"))
        }
        RackLayout::PerBroker => Some(format!("rack-{index}")),
    }
}

/// `rf` distinct brokers from `pool`; now and then one replica is on a vanished broker.
fn current_replicas(rng: &mut Rng, pool: &[i32], rf: usize) -> Vec<i32> {
    let mut replicas: Vec<i32> = Vec::with_capacity(rf);
    while replicas.len() < rf {
        let b = pool[rng.below(pool.len())];
        if !replicas.contains(&b) {
            replicas.push(b);
        }
    }
    if rng.below(50) == 0 {
        let slot = rng.below(rf);
        replicas[slot] = GHOST_BROKER;
    }
    replicas
}

/// The same request with its brokers and partitions in another order.
pub fn shuffled(request: &PlanRequest, seed: u64) -> PlanRequest {
    let mut rng = Rng::new(seed);
    let mut out = request.clone();
    rng.shuffle(&mut out.brokers);
    rng.shuffle(&mut out.partitions);
    out
}

/// Replica and leader counts per target broker.
pub fn counts(
    partitions: &[PartitionAssignment],
    target: &BTreeSet<i32>,
) -> (BTreeMap<i32, usize>, BTreeMap<i32, usize>) {
    let mut replicas: BTreeMap<i32, usize> = target.iter().map(|&b| (b, 0)).collect();
    let mut leaders = replicas.clone();
    for p in partitions {
        for b in &p.replicas {
            *replicas.entry(*b).or_default() += 1;
        }
        if let Some(l) = p.replicas.first() {
            *leaders.entry(*l).or_default() += 1;
        }
    }
    (replicas, leaders)
}

pub fn spread(counts: impl IntoIterator<Item = usize>) -> usize {
    let counts: Vec<usize> = counts.into_iter().collect();
    let max = counts.iter().max().copied().unwrap_or(0);
    let min = counts.iter().min().copied().unwrap_or(0);
    max - min
}

/// Checks every rule a successful plan must satisfy; the error says which rule broke.
pub fn verify(request: &PlanRequest, plan: &Plan) -> Result<(), String> {
    verify_moves(request, plan)?;
    let after = apply(&request.partitions, plan);
    let racks = RackMap::new(request);
    for (before, after) in request.partitions.iter().zip(&after) {
        verify_partition(&racks, &request.target, before, after)?;
    }
    let (replicas, leaders) = counts(&after, &request.target);
    if plan
        .summary
        .replicas_per_broker_after
        .iter()
        .any(|(b, &n)| replicas.get(b).copied().unwrap_or(0) != n)
    {
        return Err("summary's replica counts disagree with the applied plan".into());
    }
    verify_replica_balance(&racks, &after, &replicas)?;
    verify_leader_balance(&after, &leaders)
}

fn verify_moves(request: &PlanRequest, plan: &Plan) -> Result<(), String> {
    let current: BTreeMap<(&str, i32), &PartitionAssignment> = request
        .partitions
        .iter()
        .map(|p| ((p.topic.as_str(), p.partition), p))
        .collect();
    let keys: Vec<(&str, i32)> = plan
        .moves
        .iter()
        .map(|m| (m.topic.as_str(), m.partition))
        .collect();
    if keys.windows(2).any(|w| w[0] >= w[1]) {
        return Err("moves are not strictly sorted by (topic, partition)".into());
    }
    for m in &plan.moves {
        let Some(p) = current.get(&(m.topic.as_str(), m.partition)) else {
            return Err(format!(
                "move for unknown partition {}-{}",
                m.topic, m.partition
            ));
        };
        if m.from != p.replicas || m.to == m.from || m.size_bytes != p.size_bytes {
            return Err(format!("move {m:?} does not match partition {p:?}"));
        }
    }
    Ok(())
}

fn verify_partition(
    racks: &RackMap,
    target: &BTreeSet<i32>,
    before: &PartitionAssignment,
    after: &PartitionAssignment,
) -> Result<(), String> {
    let name = format!("{}-{}", after.topic, after.partition);
    if after.replicas.len() != before.replicas.len() {
        return Err(format!("{name}: replication factor changed"));
    }
    let distinct: BTreeSet<i32> = after.replicas.iter().copied().collect();
    if distinct.len() != after.replicas.len() {
        return Err(format!(
            "{name}: replicas {:?} not distinct",
            after.replicas
        ));
    }
    if let Some(b) = after.replicas.iter().find(|b| !target.contains(b)) {
        return Err(format!("{name}: replica left on non-target broker {b}"));
    }
    let required = after.replicas.len().min(racks.members.len());
    if racks.spread(&after.replicas) != required {
        return Err(format!(
            "{name}: {:?} spans fewer than {required} racks",
            after.replicas
        ));
    }
    Ok(())
}

/// Racks of the target brokers; brokers without a rack share the `None` rack.
pub struct RackMap {
    pub rack_of: BTreeMap<i32, Option<String>>,
    pub members: BTreeMap<Option<String>, Vec<i32>>,
}

impl RackMap {
    pub fn new(request: &PlanRequest) -> Self {
        let known: BTreeMap<i32, Option<String>> = request
            .brokers
            .iter()
            .map(|b| (b.id, b.rack.clone()))
            .collect();
        let rack_of: BTreeMap<i32, Option<String>> = request
            .target
            .iter()
            .map(|&b| (b, known[&b].clone()))
            .collect();
        let mut members: BTreeMap<Option<String>, Vec<i32>> = BTreeMap::new();
        for (&b, rack) in &rack_of {
            members.entry(rack.clone()).or_default().push(b);
        }
        Self { rack_of, members }
    }

    pub fn spread(&self, replicas: &[i32]) -> usize {
        replicas
            .iter()
            .map(|b| &self.rack_of[b])
            .collect::<BTreeSet<_>>()
            .len()
    }

    fn in_rack(&self, replicas: &[i32], rack: &Option<String>) -> usize {
        replicas.iter().filter(|b| &self.rack_of[b] == rack).count()
    }
}

/// Within a rack counts differ by at most one; across racks too when racks are the same size;
/// otherwise no single replica move between racks that keeps every partition's spread would
/// narrow the gap.
fn verify_replica_balance(
    racks: &RackMap,
    after: &[PartitionAssignment],
    replicas: &BTreeMap<i32, usize>,
) -> Result<(), String> {
    for (rack, members) in &racks.members {
        if spread(members.iter().map(|b| replicas[b])) > 1 {
            return Err(format!("rack {rack:?} unbalanced: {replicas:?}"));
        }
    }
    let sizes: BTreeSet<usize> = racks.members.values().map(Vec::len).collect();
    if sizes.len() == 1 && spread(replicas.values().copied()) > 1 {
        return Err(format!("equal racks but replicas unbalanced: {replicas:?}"));
    }
    let total = |members: &Vec<i32>| members.iter().map(|b| replicas[b]).sum::<usize>();
    for (a, a_members) in &racks.members {
        for (b, b_members) in racks.members.iter().filter(|(b, _)| *b != a) {
            let high = total(a_members).div_ceil(a_members.len());
            let low = total(b_members) / b_members.len();
            if high < low + 2 {
                continue;
            }
            let movable = after.iter().find(|p| {
                let (in_a, in_b) = (racks.in_rack(&p.replicas, a), racks.in_rack(&p.replicas, b));
                in_a > 0 && in_b < b_members.len() && (in_b == 0 || in_a >= 2)
            });
            if let Some(p) = movable {
                return Err(format!(
                    "racks {a:?} -> {b:?} could still be balanced by moving {}-{}: {replicas:?}",
                    p.topic, p.partition
                ));
            }
        }
    }
    Ok(())
}

/// No partition could hand its leadership to one of its followers and narrow the gap.
fn verify_leader_balance(
    after: &[PartitionAssignment],
    leaders: &BTreeMap<i32, usize>,
) -> Result<(), String> {
    for p in after {
        let Some(leader) = p.replicas.first() else {
            continue;
        };
        if let Some(f) = p.replicas[1..]
            .iter()
            .find(|f| leaders[leader] >= leaders[*f] + 2)
        {
            return Err(format!(
                "{}-{}: leader {leader} ({}) could hand over to {f} ({}): {leaders:?}",
                p.topic, p.partition, leaders[leader], leaders[f]
            ));
        }
    }
    Ok(())
}
