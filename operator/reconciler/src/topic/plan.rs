//! What a topic needs on the Kafka side, as a pure function of the spec and the observed
//! topic, and [`sync`], which observes, plans and executes in one go. Partitions only grow;
//! only config keys named in the spec are managed, others on the topic are kept. A
//! replication-factor change is a reassignment, planned from the whole cluster's state
//! (`replication.rs`), not here.

use std::collections::BTreeMap;

use crate::kafka::{AdminError, ObservedTopic, TopicAdmin};

/// The topic a `KafkaTopic` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredTopic {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: Option<i32>,
    pub config: BTreeMap<String, String>,
}

/// One change to make through the admin protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicChange {
    Create,
    GrowPartitions(i32),
    /// Replace the topic's overrides with these (the observed ones plus the spec's keys).
    SetOverrides(BTreeMap<String, String>),
}

/// A spec change the operator will not make, reported as a condition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the topic has {have} partitions; Kafka cannot shrink a topic to {want}")]
    PartitionShrink { have: i32, want: i32 },
}

impl Refusal {
    /// The condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::PartitionShrink { .. } => "PartitionShrinkRefused",
        }
    }
}

/// The changes to make, and the spec changes refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub changes: Vec<TopicChange>,
    pub refusals: Vec<Refusal>,
}

/// Plans a topic from its spec and what the cluster has (`None`: no such topic).
pub fn plan(desired: &DesiredTopic, observed: Option<&ObservedTopic>) -> Plan {
    let Some(observed) = observed else {
        return Plan {
            changes: vec![TopicChange::Create],
            refusals: Vec::new(),
        };
    };
    let mut result = Plan::default();
    if desired.partitions > observed.partitions {
        result
            .changes
            .push(TopicChange::GrowPartitions(desired.partitions));
    } else if desired.partitions < observed.partitions {
        result.refusals.push(Refusal::PartitionShrink {
            have: observed.partitions,
            want: desired.partitions,
        });
    }
    let mut overrides = observed.overrides.clone();
    overrides.extend(desired.config.clone());
    if overrides != observed.overrides {
        result.changes.push(TopicChange::SetOverrides(overrides));
    }
    result
}

/// Executes a plan's changes in order.
pub async fn execute(
    admin: &dyn TopicAdmin,
    desired: &DesiredTopic,
    plan: &Plan,
) -> Result<(), AdminError> {
    for change in &plan.changes {
        match change {
            TopicChange::Create => {
                admin
                    .create(
                        &desired.name,
                        desired.partitions,
                        desired.replication_factor,
                        &desired.config,
                    )
                    .await?
            }
            TopicChange::GrowPartitions(total) => {
                admin.create_partitions(&desired.name, *total).await?
            }
            TopicChange::SetOverrides(overrides) => {
                admin.alter_configs(&desired.name, overrides).await?
            }
        }
    }
    Ok(())
}

/// What one [`sync`] did and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synced {
    pub plan: Plan,
    /// The topic as described after the changes.
    pub topic: Option<ObservedTopic>,
}

/// Observes the topic, plans, executes, and observes again. `may_create` false turns a
/// needed creation into nothing (the caller has not recorded its claim yet).
pub async fn sync(
    admin: &dyn TopicAdmin,
    desired: &DesiredTopic,
    may_create: bool,
) -> Result<Synced, AdminError> {
    let before = admin.describe(&desired.name).await?;
    let mut planned = plan(desired, before.as_ref());
    if !may_create {
        planned.changes.retain(|c| *c != TopicChange::Create);
    }
    if planned.changes.is_empty() {
        return Ok(Synced {
            plan: planned,
            topic: before,
        });
    }
    execute(admin, desired, &planned).await?;
    let topic = admin.describe(&desired.name).await?;
    Ok(Synced {
        plan: planned,
        topic,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired(partitions: i32, config: &[(&str, &str)]) -> DesiredTopic {
        DesiredTopic {
            name: "orders".into(),
            partitions,
            replication_factor: None,
            config: config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn observed(partitions: i32, overrides: &[(&str, &str)]) -> ObservedTopic {
        ObservedTopic {
            partitions,
            replication_factor: 1,
            overrides: overrides
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn absent_topic_is_created() {
        assert_eq!(
            plan(&desired(3, &[]), None).changes,
            vec![TopicChange::Create]
        );
    }

    #[test]
    fn matching_topic_needs_nothing() {
        let p = plan(
            &desired(3, &[("retention.ms", "1000")]),
            Some(&observed(3, &[("retention.ms", "1000")])),
        );
        assert_eq!(p, Plan::default());
    }

    #[test]
    fn partitions_grow_but_never_shrink() {
        let grow = plan(&desired(6, &[]), Some(&observed(3, &[])));
        assert_eq!(grow.changes, vec![TopicChange::GrowPartitions(6)]);
        let shrink = plan(&desired(2, &[]), Some(&observed(3, &[])));
        assert!(shrink.changes.is_empty());
        assert_eq!(
            shrink.refusals,
            vec![Refusal::PartitionShrink { have: 3, want: 2 }]
        );
    }

    #[test]
    fn overrides_not_in_spec_are_kept_when_altering() {
        let p = plan(
            &desired(3, &[("retention.ms", "1000")]),
            Some(&observed(
                3,
                &[("retention.ms", "5"), ("max.message.bytes", "2048")],
            )),
        );
        let expected = BTreeMap::from([
            ("max.message.bytes".to_string(), "2048".to_string()),
            ("retention.ms".to_string(), "1000".to_string()),
        ]);
        assert_eq!(p.changes, vec![TopicChange::SetOverrides(expected)]);
    }

    #[test]
    fn a_replication_factor_difference_is_left_to_the_reassignment_step() {
        let mut want = desired(3, &[]);
        want.replication_factor = Some(3);
        assert_eq!(plan(&want, Some(&observed(3, &[]))), Plan::default());
    }
}
