//! `krait partition elect-leaders`: ElectLeaders to the controller, preferred (v0+) or unclean
//! (v1+), for one partition, one topic or every partition.

use clap::{ArgGroup, Args, ValueEnum};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::client::Global;
use crate::partition::{Outcome, report};
use krait_admin::error_text;

const ELECTION_NOT_NEEDED: i16 = 84;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ElectionType {
    /// Move leadership to the first replica of each partition, if it is in sync.
    Preferred,
    /// Elect any live replica of a partition without a leader, even one not in sync:
    /// committed records may be lost.
    Unclean,
}

impl ElectionType {
    /// The wire value: 0 preferred, 1 unclean.
    fn code(self) -> i8 {
        match self {
            ElectionType::Preferred => 0,
            ElectionType::Unclean => 1,
        }
    }

    /// ElectLeaders v0 has no election type field: it only elects preferred leaders.
    fn versions(self) -> std::ops::RangeInclusive<i16> {
        match self {
            ElectionType::Preferred => 0..=2,
            ElectionType::Unclean => 1..=2,
        }
    }
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).args(["topic", "all_topic_partitions"])))]
pub struct ElectArgs {
    /// Which leader to elect.
    #[arg(long = "type", value_enum, default_value_t = ElectionType::Preferred)]
    election_type: ElectionType,
    /// Elect on this topic's partitions (every one, unless --partition).
    #[arg(long)]
    topic: Option<String>,
    /// With --topic: only this partition.
    #[arg(long, requires = "topic")]
    partition: Option<i32>,
    /// Elect on every partition of every topic.
    #[arg(long)]
    all_topic_partitions: bool,
}

/// One outcome per partition the controller answered for.
fn outcomes(election: ElectionType, response: &ElectLeadersResponse) -> Vec<Outcome> {
    let mut out: Vec<Outcome> = response
        .replica_election_results
        .iter()
        .flat_map(|t| {
            t.partition_result.iter().map(move |p| {
                let (ok, outcome) = match (p.error_code, election) {
                    (0, ElectionType::Preferred) => (true, "preferred leader elected".to_string()),
                    (0, ElectionType::Unclean) => (true, "leader elected (unclean)".to_string()),
                    (ELECTION_NOT_NEEDED, ElectionType::Preferred) => {
                        (true, "already led by its preferred replica".to_string())
                    }
                    (ELECTION_NOT_NEEDED, ElectionType::Unclean) => {
                        (true, "already has a leader".to_string())
                    }
                    (code, _) => (
                        false,
                        format!("failed: {}", error_text(code, p.error_message.as_ref())),
                    ),
                };
                Outcome {
                    topic: t.topic.0.to_string(),
                    partition: p.partition_id,
                    ok,
                    outcome,
                }
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    out
}

pub fn run(g: &Global, args: &ElectArgs) -> anyhow::Result<()> {
    let mut admin = g.session()?;
    // A null list asks for every partition.
    let topic_partitions = match &args.topic {
        None => None,
        Some(topic) => {
            let partitions = match args.partition {
                Some(p) => vec![p],
                None => admin
                    .metadata(Some(std::slice::from_ref(topic)))?
                    .topic(topic)
                    .map(|t| t.partitions.iter().map(|p| p.partition).collect())
                    .unwrap_or_default(),
            };
            Some(vec![
                TopicPartitions::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partitions(partitions),
            ])
        }
    };
    let request = ElectLeadersRequest::default()
        .with_election_type(args.election_type.code())
        .with_topic_partitions(topic_partitions)
        .with_timeout_ms(admin.timeout_ms());
    let response =
        admin.call_controller(&request, args.election_type.versions(), |r| r.error_code)?;
    if response.error_code != 0 {
        anyhow::bail!(
            "ElectLeaders failed: {}",
            error_text(response.error_code, None)
        );
    }
    let outcomes = outcomes(args.election_type, &response);
    if outcomes.is_empty() {
        eprintln!("No partition needed an election.");
        return Ok(());
    }
    report(g, &outcomes, "leader election")
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::elect_leaders_response::{
        PartitionResult, ReplicaElectionResult,
    };

    use super::*;

    fn response(results: &[(i32, i16)]) -> ElectLeadersResponse {
        ElectLeadersResponse::default().with_replica_election_results(vec![
            ReplicaElectionResult::default()
                .with_topic(TopicName(StrBytes::from_static_str("orders")))
                .with_partition_result(
                    results
                        .iter()
                        .map(|&(p, code)| {
                            PartitionResult::default()
                                .with_partition_id(p)
                                .with_error_code(code)
                                .with_error_message(
                                    (code == 3)
                                        .then(|| StrBytes::from_static_str("no such partition")),
                                )
                        })
                        .collect(),
                ),
        ])
    }

    #[test]
    fn election_not_needed_is_reported_as_already_preferred_not_as_a_failure() {
        let got = outcomes(
            ElectionType::Preferred,
            &response(&[(2, 3), (1, ELECTION_NOT_NEEDED), (0, 0)]),
        );
        let got: Vec<(i32, bool, &str)> = got
            .iter()
            .map(|o| (o.partition, o.ok, o.outcome.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (0, true, "preferred leader elected"),
                (1, true, "already led by its preferred replica"),
                (
                    2,
                    false,
                    "failed: UnknownTopicOrPartition (3): no such partition"
                ),
            ]
        );
    }

    #[test]
    fn an_unclean_election_needs_version_1_and_says_when_a_leader_exists() {
        assert_eq!(ElectionType::Unclean.versions(), 1..=2);
        assert_eq!(ElectionType::Unclean.code(), 1);
        let got = outcomes(
            ElectionType::Unclean,
            &response(&[(0, ELECTION_NOT_NEEDED)]),
        );
        assert_eq!(got[0].outcome, "already has a leader");
        assert!(got[0].ok);
    }
}
