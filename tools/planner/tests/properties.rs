//! Property tests: plans on generated clusters (1 to 50 brokers, up to four racks, skewed
//! assignments, brokers being drained, replicas on vanished brokers) obey every rule.

mod common;

use std::collections::BTreeMap;

use common::{RackLayout, Spec, generate, shuffled, verify};
use krait_planner::{BlockingTopic, PlanError, PlanRequest, apply, plan};
use proptest::prelude::*;

fn layout() -> impl Strategy<Value = RackLayout> {
    prop_oneof![
        Just(RackLayout::None),
        Just(RackLayout::RoundRobin),
        Just(RackLayout::Random),
        Just(RackLayout::Mixed),
        Just(RackLayout::PerBroker),
    ]
}

fn spec(
    brokers: std::ops::RangeInclusive<usize>,
    partitions: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = Spec> {
    (
        brokers,
        1..=4usize,
        layout(),
        prop_oneof![Just(0usize), 0..=60usize],
        partitions,
        1..=8usize,
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(brokers, racks, layout, drain_percent, partitions, topics, skewed, seed)| Spec {
                brokers,
                racks,
                layout,
                drain_percent,
                partitions,
                topics,
                skewed,
                max_rf: 3,
                seed,
            },
        )
}

/// The plan obeys every rule, does not depend on input order, and is a fixed point.
fn check(request: &PlanRequest) -> Result<(), TestCaseError> {
    let planned = plan(request).map_err(|e| TestCaseError::fail(e.to_string()))?;
    verify(request, &planned).map_err(TestCaseError::fail)?;
    let reordered = plan(&shuffled(request, planned.moves.len() as u64)).unwrap();
    prop_assert_eq!(&reordered, &planned, "plan depends on input order");
    let applied = PlanRequest {
        partitions: apply(&request.partitions, &planned),
        ..request.clone()
    };
    let again = plan(&applied).unwrap();
    prop_assert!(
        again.moves.is_empty(),
        "re-planning moves {:?}",
        again.moves
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn plans_for_small_clusters_obey_every_rule(spec in spec(1..=50, 0..=300)) {
        check(&generate(&spec))?;
    }

    #[test]
    fn too_few_target_brokers_refuse_exactly_the_topics_that_do_not_fit(
        spec in spec(1..=12, 1..=60),
        keep in 0..=2usize,
    ) {
        let mut request = generate(&spec);
        request.target = request.target.iter().copied().take(keep).collect();
        let mut expected: BTreeMap<&str, usize> = BTreeMap::new();
        for p in request.partitions.iter().filter(|p| p.replicas.len() > keep) {
            let rf = expected.entry(p.topic.as_str()).or_default();
            *rf = (*rf).max(p.replicas.len());
        }
        let blocking: Vec<BlockingTopic> = expected
            .into_iter()
            .map(|(topic, replication_factor)| BlockingTopic { topic: topic.into(), replication_factor })
            .collect();
        match plan(&request) {
            Ok(planned) => {
                prop_assert!(blocking.is_empty(), "planned although {:?} block", blocking);
                verify(&request, &planned).map_err(TestCaseError::fail)?;
            }
            Err(error) => prop_assert_eq!(
                error,
                PlanError::NotEnoughBrokers { blocking, target_brokers: keep }
            ),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    #[test]
    fn plans_for_large_clusters_obey_every_rule(spec in spec(30..=50, 5_000..=10_000)) {
        check(&generate(&spec))?;
    }
}
