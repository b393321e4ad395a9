//! Kafka's partition reassignment plan (`kafka-reassign-partitions.sh` JSON): parsing,
//! validation and writing, as pure functions. A plan that passes is a `ValidatedPlan`; one that does not
//! gets every problem named at once, so a long plan is fixed in one pass.
//!
//! ```json
//! {"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[2,3,4]}]}
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use krait_admin::ClusterMetadata;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    version: i64,
    partitions: Vec<RawPartition>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPartition {
    topic: String,
    partition: i32,
    replicas: Vec<i32>,
    /// Kafka's tool accepts a log directory per replica; "any" means "let the broker pick".
    #[serde(default)]
    log_dirs: Option<Vec<String>>,
}

/// One thing wrong with a plan. `entry` is the index in `partitions`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanProblem {
    #[error("version {0} is not supported (the plan format is version 1)")]
    Version(i64),
    #[error("the plan lists no partitions")]
    NoPartitions,
    #[error("partitions[{entry}]: the topic name is empty")]
    EmptyTopic { entry: usize },
    #[error("partitions[{entry}]: partition {partition} of {topic} is negative")]
    NegativePartition {
        entry: usize,
        topic: String,
        partition: i32,
    },
    #[error(
        "{topic}-{partition} is listed more than once (partitions[{first}] and partitions[{again}])"
    )]
    DuplicatePartition {
        topic: String,
        partition: i32,
        first: usize,
        again: usize,
    },
    #[error("{topic}-{partition}: the replica list is empty")]
    EmptyReplicas { topic: String, partition: i32 },
    #[error("{topic}-{partition}: replica {replica} is listed more than once in {replicas:?}")]
    DuplicateReplica {
        topic: String,
        partition: i32,
        replica: i32,
        replicas: Vec<i32>,
    },
    #[error("{topic}-{partition}: replica id {replica} is negative")]
    NegativeReplica {
        topic: String,
        partition: i32,
        replica: i32,
    },
    #[error("{topic}-{partition}: log_dirs has {dirs} entries for {replicas} replicas")]
    LogDirsLength {
        topic: String,
        partition: i32,
        dirs: usize,
        replicas: usize,
    },
    #[error(
        "{topic}-{partition}: log_dirs other than \"any\" are not supported (moving a replica between directories is AlterReplicaLogDirs)"
    )]
    LogDirsNotAny { topic: String, partition: i32 },
    #[error("topic {topic} does not exist")]
    UnknownTopic { topic: String },
    #[error("{topic}-{partition} does not exist (the topic has {count} partitions)")]
    UnknownPartition {
        topic: String,
        partition: i32,
        count: usize,
    },
    #[error("{topic}-{partition}: broker {replica} is not in the cluster (brokers: {known})")]
    UnknownBroker {
        topic: String,
        partition: i32,
        replica: i32,
        known: String,
    },
}

/// Why a plan cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("not a reassignment plan: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid reassignment plan: {}", join(.0))]
    Invalid(Vec<PlanProblem>),
}

fn join(problems: &[PlanProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// One partition's target replicas; the first is the preferred leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedPartition {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<i32>,
}

/// A plan with no duplicate partitions, and a non-empty, duplicate-free replica list each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedPlan {
    pub partitions: Vec<PlannedPartition>,
}

impl ValidatedPlan {
    /// The plan in Kafka's JSON format, version 1, which [`parse`] reads back.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct KafkaPlan<'a> {
            version: i64,
            partitions: &'a [PlannedPartition],
        }
        let plan = KafkaPlan {
            version: 1,
            partitions: &self.partitions,
        };
        // Strings, integers and lists only: serializing cannot fail.
        serde_json::to_string_pretty(&plan).unwrap_or_default()
    }
}

/// Parses and validates a plan's text.
pub fn parse(text: &str) -> Result<ValidatedPlan, PlanError> {
    let raw: RawPlan = serde_json::from_str(text)?;
    validate(raw).map_err(PlanError::Invalid)
}

fn validate(raw: RawPlan) -> Result<ValidatedPlan, Vec<PlanProblem>> {
    let mut problems = Vec::new();
    if raw.version != 1 {
        problems.push(PlanProblem::Version(raw.version));
    }
    if raw.partitions.is_empty() {
        problems.push(PlanProblem::NoPartitions);
    }
    let mut seen: BTreeMap<(String, i32), usize> = BTreeMap::new();
    let mut partitions = Vec::new();
    for (entry, p) in raw.partitions.into_iter().enumerate() {
        let before = problems.len();
        problems.extend(check_entry(entry, &p));
        match seen.get(&(p.topic.clone(), p.partition)) {
            Some(&first) => problems.push(PlanProblem::DuplicatePartition {
                topic: p.topic.clone(),
                partition: p.partition,
                first,
                again: entry,
            }),
            None => {
                seen.insert((p.topic.clone(), p.partition), entry);
            }
        }
        if problems.len() == before {
            partitions.push(PlannedPartition {
                topic: p.topic,
                partition: p.partition,
                replicas: p.replicas,
            });
        }
    }
    if problems.is_empty() {
        Ok(ValidatedPlan { partitions })
    } else {
        Err(problems)
    }
}

/// Problems within one entry, on its own.
fn check_entry(entry: usize, p: &RawPartition) -> Vec<PlanProblem> {
    let (topic, partition) = (p.topic.clone(), p.partition);
    let mut problems = Vec::new();
    if topic.is_empty() {
        problems.push(PlanProblem::EmptyTopic { entry });
    }
    if partition < 0 {
        problems.push(PlanProblem::NegativePartition {
            entry,
            topic: topic.clone(),
            partition,
        });
    }
    if p.replicas.is_empty() {
        problems.push(PlanProblem::EmptyReplicas {
            topic: topic.clone(),
            partition,
        });
    }
    let mut replicas = BTreeSet::new();
    let mut reported = BTreeSet::new();
    for &replica in &p.replicas {
        if replica < 0 {
            problems.push(PlanProblem::NegativeReplica {
                topic: topic.clone(),
                partition,
                replica,
            });
        }
        if !replicas.insert(replica) && reported.insert(replica) {
            problems.push(PlanProblem::DuplicateReplica {
                topic: topic.clone(),
                partition,
                replica,
                replicas: p.replicas.clone(),
            });
        }
    }
    if let Some(dirs) = &p.log_dirs {
        if dirs.len() != p.replicas.len() {
            problems.push(PlanProblem::LogDirsLength {
                topic: topic.clone(),
                partition,
                dirs: dirs.len(),
                replicas: p.replicas.len(),
            });
        } else if dirs.iter().any(|d| d != "any") {
            problems.push(PlanProblem::LogDirsNotAny { topic, partition });
        }
    }
    problems
}

/// What the cluster says is wrong with a plan: topics or partitions that do not exist, and
/// replicas on brokers the cluster does not have.
pub fn check_against(plan: &ValidatedPlan, cluster: &ClusterMetadata) -> Vec<PlanProblem> {
    let known: BTreeSet<i32> = cluster.brokers.iter().map(|b| b.id).collect();
    let known_list = known
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let mut problems = Vec::new();
    let mut missing_topics = BTreeSet::new();
    for p in &plan.partitions {
        let Some(topic) = cluster.topic(&p.topic) else {
            if missing_topics.insert(p.topic.clone()) {
                problems.push(PlanProblem::UnknownTopic {
                    topic: p.topic.clone(),
                });
            }
            continue;
        };
        if !topic.partitions.iter().any(|s| s.partition == p.partition) {
            problems.push(PlanProblem::UnknownPartition {
                topic: p.topic.clone(),
                partition: p.partition,
                count: topic.partitions.len(),
            });
        }
        for &replica in p.replicas.iter().filter(|r| !known.contains(r)) {
            problems.push(PlanProblem::UnknownBroker {
                topic: p.topic.clone(),
                partition: p.partition,
                replica,
                known: known_list.clone(),
            });
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use krait_admin::{BrokerInfo, PartitionState, TopicState};

    fn problems(text: &str) -> Vec<PlanProblem> {
        match parse(text) {
            Err(PlanError::Invalid(p)) => p,
            other => panic!("expected an invalid plan, got {other:?}"),
        }
    }

    #[test]
    fn a_kafka_plan_parses_in_order_with_the_preferred_leader_first() {
        let plan = parse(
            r#"{"version":1,"partitions":[
                {"topic":"orders","partition":1,"replicas":[3,1,2],"log_dirs":["any","any","any"]},
                {"topic":"orders","partition":0,"replicas":[2,3,4]},
                {"topic":"audit","partition":0,"replicas":[1]}]}"#,
        )
        .unwrap();
        assert_eq!(plan.partitions.len(), 3);
        assert_eq!(plan.partitions[0].replicas, [3, 1, 2]);
        assert_eq!(
            plan.partitions
                .iter()
                .map(|p| (p.topic.as_str(), p.partition))
                .collect::<Vec<_>>(),
            [("orders", 1), ("orders", 0), ("audit", 0)]
        );
    }

    #[test]
    fn a_written_plan_is_kafkas_format_and_parses_back_unchanged() {
        let plan = ValidatedPlan {
            partitions: vec![
                PlannedPartition {
                    topic: "orders".into(),
                    partition: 2,
                    replicas: vec![3, 1],
                },
                PlannedPartition {
                    topic: "audit".into(),
                    partition: 0,
                    replicas: vec![2],
                },
            ],
        };
        let json = plan.to_json();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"version": 1, "partitions": [
                {"topic": "orders", "partition": 2, "replicas": [3, 1]},
                {"topic": "audit", "partition": 0, "replicas": [2]},
            ]})
        );
        assert_eq!(parse(&json).unwrap(), plan);
    }

    #[test]
    fn a_version_other_than_1_is_refused() {
        assert_eq!(
            problems(r#"{"version":2,"partitions":[{"topic":"t","partition":0,"replicas":[1]}]}"#),
            [PlanProblem::Version(2)]
        );
    }

    #[test]
    fn a_partition_listed_twice_is_refused_naming_both_entries() {
        let p = problems(
            r#"{"version":1,"partitions":[
                {"topic":"t","partition":0,"replicas":[1]},
                {"topic":"t","partition":1,"replicas":[1]},
                {"topic":"t","partition":0,"replicas":[2]}]}"#,
        );
        assert_eq!(
            p,
            [PlanProblem::DuplicatePartition {
                topic: "t".into(),
                partition: 0,
                first: 0,
                again: 2
            }]
        );
        assert_eq!(
            p[0].to_string(),
            "t-0 is listed more than once (partitions[0] and partitions[2])"
        );
    }

    #[test]
    fn a_replica_listed_twice_in_one_list_is_refused_once() {
        let p = problems(
            r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2,1,1]}]}"#,
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(
            p[0].to_string(),
            "t-0: replica 1 is listed more than once in [1, 2, 1, 1]"
        );
    }

    #[test]
    fn an_empty_replica_list_is_refused() {
        assert_eq!(
            problems(r#"{"version":1,"partitions":[{"topic":"t","partition":3,"replicas":[]}]}"#),
            [PlanProblem::EmptyReplicas {
                topic: "t".into(),
                partition: 3
            }]
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = parse(
            r#"{"version":0,"partitions":[
                {"topic":"","partition":-1,"replicas":[-2]},
                {"topic":"t","partition":0,"replicas":[1],"log_dirs":["/data"]},
                {"topic":"t","partition":1,"replicas":[1,2],"log_dirs":["any"]}]}"#,
        )
        .unwrap_err()
        .to_string();
        for expected in [
            "version 0 is not supported",
            "partitions[0]: the topic name is empty",
            "partition -1 of  is negative",
            "replica id -2 is negative",
            "t-0: log_dirs other than \"any\"",
            "t-1: log_dirs has 1 entries for 2 replicas",
        ] {
            assert!(err.contains(expected), "{expected:?} missing from {err}");
        }
        assert!(err.starts_with("invalid reassignment plan: "), "{err}");
    }

    #[test]
    fn an_empty_plan_and_malformed_json_are_refused() {
        assert_eq!(
            problems(r#"{"version":1,"partitions":[]}"#),
            [PlanProblem::NoPartitions]
        );
        let missing = parse(r#"{"partitions":[]}"#).unwrap_err().to_string();
        assert!(missing.contains("missing field `version`"), "{missing}");
        let typo =
            parse(r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replica":[1]}]}"#)
                .unwrap_err()
                .to_string();
        assert!(typo.starts_with("not a reassignment plan: "), "{typo}");
        assert!(typo.contains("replica"), "{typo}");
    }

    fn cluster() -> ClusterMetadata {
        let broker = |id| BrokerInfo {
            id,
            host: "h".into(),
            port: 9092,
            rack: None,
            fenced: false,
        };
        let partition = |partition| PartitionState {
            topic: "t".into(),
            partition,
            leader: 1,
            leader_epoch: 0,
            replicas: vec![1],
            isr: vec![1],
            offline_replicas: vec![],
        };
        ClusterMetadata {
            cluster_id: None,
            controller_id: 1,
            brokers: vec![broker(1), broker(2)],
            topics: vec![TopicState {
                name: "t".into(),
                partitions: vec![partition(0), partition(1)],
            }],
        }
    }

    #[test]
    fn unknown_topics_partitions_and_brokers_are_named_against_the_cluster() {
        let plan = parse(
            r#"{"version":1,"partitions":[
                {"topic":"t","partition":0,"replicas":[2,1]},
                {"topic":"t","partition":5,"replicas":[1]},
                {"topic":"t","partition":1,"replicas":[1,9]},
                {"topic":"nope","partition":0,"replicas":[1]},
                {"topic":"nope","partition":1,"replicas":[1]}]}"#,
        )
        .unwrap();
        let found: Vec<String> = check_against(&plan, &cluster())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            found,
            [
                "t-5 does not exist (the topic has 2 partitions)",
                "t-1: broker 9 is not in the cluster (brokers: 1,2)",
                "topic nope does not exist",
            ]
        );
    }
}
