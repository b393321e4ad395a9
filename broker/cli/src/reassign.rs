//! `krait partition reassign`: start, show and cancel partition reassignments
//! (AlterPartitionReassignments, ListPartitionReassignments), and the replication throttle
//! Kafka's tool sets around them (dynamic broker configs through IncrementalAlterConfigs).
//! Starting a plan and listing what is in progress are shared with `partition rebalance`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    IncrementalAlterConfigsRequest, ListPartitionReassignmentsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use crate::admin::{Admin, BrokerInfo};
use crate::client::Global;
use crate::cluster::id_list;
use crate::output::{Table, print};
use crate::partition::{Outcome, report};
use crate::plan::{self, PlanError, ValidatedPlan};
use crate::wire::error_text;

/// The dynamic broker configs Kafka's reassignment tool throttles replication with.
pub const THROTTLE_CONFIGS: [&str; 2] = [
    "leader.replication.throttled.rate",
    "follower.replication.throttled.rate",
];
/// IncrementalAlterConfigs resource type and operations.
const BROKER_RESOURCE: i8 = 4;
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;

#[derive(Debug, Args)]
pub struct ReassignArgs {
    /// Reassignment plan in Kafka's JSON format:
    /// {"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[2,3,4]}]}.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present_any = ["status", "clear_throttle"],
        conflicts_with_all = ["status", "clear_throttle"]
    )]
    plan: Option<PathBuf>,
    /// Before reassigning, limit replication on every broker to this rate (bytes per second)
    /// through leader/follower.replication.throttled.rate. Kafka applies the rate only to the
    /// replicas a topic names in leader/follower.replication.throttled.replicas, which this
    /// does not set.
    #[arg(long, value_name = "BYTES_PER_SEC", conflicts_with_all = ["status", "cancel", "clear_throttle"])]
    throttle: Option<u64>,
    /// Show the reassignments in progress instead.
    #[arg(long, conflicts_with_all = ["cancel", "clear_throttle"])]
    status: bool,
    /// With --status: only this topic's reassignments.
    #[arg(long, requires = "status")]
    topic: Option<String>,
    /// Cancel the reassignments of the plan's partitions (their replicas are not read).
    #[arg(long, conflicts_with = "clear_throttle")]
    cancel: bool,
    /// Remove the replication throttle from every broker.
    #[arg(long)]
    clear_throttle: bool,
}

/// What `reassign` was asked to do; clap's rules make exactly one apply.
enum Mode {
    Execute {
        plan: PathBuf,
        throttle: Option<u64>,
    },
    Cancel {
        plan: PathBuf,
    },
    Status {
        topic: Option<String>,
    },
    ClearThrottle,
}

impl ReassignArgs {
    fn mode(self) -> anyhow::Result<Mode> {
        Ok(
            match (self.status, self.clear_throttle, self.cancel, self.plan) {
                (true, ..) => Mode::Status { topic: self.topic },
                (_, true, ..) => Mode::ClearThrottle,
                (_, _, true, Some(plan)) => Mode::Cancel { plan },
                (_, _, false, Some(plan)) => Mode::Execute {
                    plan,
                    throttle: self.throttle,
                },
                (_, _, _, None) => bail!("--plan FILE is required"),
            },
        )
    }
}

pub fn run(g: &Global, args: ReassignArgs) -> anyhow::Result<()> {
    match args.mode()? {
        Mode::Execute { plan, throttle } => execute(g, &plan, throttle),
        Mode::Cancel { plan } => cancel(g, &read_plan(&plan)?),
        Mode::Status { topic } => status(g, topic.as_deref()),
        Mode::ClearThrottle => {
            let mut admin = Admin::connect(g)?;
            let brokers = admin.metadata(Some(&[]))?.brokers;
            set_throttle(&admin, &brokers, None)
        }
    }
}

fn read_plan(path: &Path) -> anyhow::Result<ValidatedPlan> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read plan {}", path.display()))?;
    plan::parse(&text).with_context(|| format!("plan {}", path.display()))
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// The AlterPartitionReassignments request for `plan`; `cancel` sends null replica lists.
fn alter_request(
    plan: &ValidatedPlan,
    cancel: bool,
    timeout_ms: i32,
) -> AlterPartitionReassignmentsRequest {
    let topics =
        plan.by_topic()
            .into_iter()
            .map(|(topic, partitions)| {
                ReassignableTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(
                        partitions
                            .iter()
                            .map(|p| {
                                ReassignablePartition::default()
                                    .with_partition_index(p.partition)
                                    .with_replicas((!cancel).then(|| {
                                        p.replicas.iter().copied().map(BrokerId).collect()
                                    }))
                            })
                            .collect(),
                    )
            })
            .collect();
    AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(timeout_ms)
        .with_topics(topics)
}

/// One outcome per plan partition, in plan order; `judge` turns an error code and message
/// into (ok, text).
fn outcomes(
    plan: &ValidatedPlan,
    response: &AlterPartitionReassignmentsResponse,
    judge: impl Fn(i16, Option<&StrBytes>, &[i32]) -> (bool, String),
) -> Vec<Outcome> {
    let mut answers = BTreeMap::new();
    for t in &response.responses {
        for p in &t.partitions {
            answers.insert(
                (t.name.0.as_str(), p.partition_index),
                (p.error_code, p.error_message.as_ref()),
            );
        }
    }
    plan.partitions
        .iter()
        .map(|p| {
            let (ok, outcome) = match answers.get(&(p.topic.as_str(), p.partition)) {
                Some(&(code, message)) => judge(code, message, &p.replicas),
                None => (
                    false,
                    "failed: the controller did not answer for it".to_string(),
                ),
            };
            Outcome {
                topic: p.topic.clone(),
                partition: p.partition,
                ok,
                outcome,
            }
        })
        .collect()
}

fn alter(
    admin: &mut Admin,
    plan: &ValidatedPlan,
    cancel: bool,
) -> anyhow::Result<AlterPartitionReassignmentsResponse> {
    let request = alter_request(plan, cancel, admin.timeout_ms());
    let response = admin.call_controller(&request, 0..=1, |r| r.error_code)?;
    if response.error_code != 0 {
        bail!(
            "AlterPartitionReassignments failed: {}",
            error_text(response.error_code, response.error_message.as_ref())
        );
    }
    Ok(response)
}

fn execute(g: &Global, path: &Path, throttle: Option<u64>) -> anyhow::Result<()> {
    let plan = &read_plan(path)?;
    let mut admin = Admin::connect(g)?;
    let cluster = admin.metadata(None)?;
    let problems = plan::check_against(plan, &cluster);
    if !problems.is_empty() {
        return Err(PlanError::Invalid(problems))
            .with_context(|| format!("plan {}", path.display()));
    }
    let outcomes = start(&mut admin, plan, &cluster.brokers, throttle)?;
    report(g, &outcomes, "reassignment")
}

/// Starts every reassignment of `plan` in one AlterPartitionReassignments to the controller,
/// after setting the replication throttle to `throttle` on `brokers` when asked. Returns one
/// outcome per plan partition; waits for none of them to finish.
pub fn start(
    admin: &mut Admin,
    plan: &ValidatedPlan,
    brokers: &[BrokerInfo],
    throttle: Option<u64>,
) -> anyhow::Result<Vec<Outcome>> {
    // Refuse before any throttle is set: a throttle left behind by a reassignment that could
    // not start would slow replication for nothing.
    admin.require_on_controller::<AlterPartitionReassignmentsRequest>(0..=1)?;
    if let Some(rate) = throttle {
        set_throttle(admin, brokers, Some(rate))?;
    }
    let response = alter(admin, plan, false)?;
    Ok(outcomes(
        plan,
        &response,
        |code, message, replicas| match code {
            0 => (
                true,
                format!("reassignment to {} started", id_list(replicas)),
            ),
            _ => (false, format!("failed: {}", error_text(code, message))),
        },
    ))
}

fn cancel(g: &Global, plan: &ValidatedPlan) -> anyhow::Result<()> {
    let mut admin = Admin::connect(g)?;
    let response = alter(&mut admin, plan, true)?;
    let outcomes = outcomes(plan, &response, |code, message, _| match code {
        0 => (true, "reassignment cancelled".to_string()),
        NO_REASSIGNMENT_IN_PROGRESS => (true, "no reassignment in progress".to_string()),
        _ => (false, format!("failed: {}", error_text(code, message))),
    });
    report(g, &outcomes, "cancelling the reassignment")
}

/// Sets (`Some(rate)`) or deletes (`None`) the throttle configs on every broker, each through
/// a request to that broker, as Kafka's admin client sends broker resources.
fn set_throttle(admin: &Admin, brokers: &[BrokerInfo], rate: Option<u64>) -> anyhow::Result<()> {
    let configs: Vec<AlterableConfig> = THROTTLE_CONFIGS
        .iter()
        .map(|name| {
            AlterableConfig::default()
                .with_name(StrBytes::from_static_str(name))
                .with_config_operation(if rate.is_some() { OP_SET } else { OP_DELETE })
                .with_value(rate.map(|r| StrBytes::from_string(r.to_string())))
        })
        .collect();
    let mut failures = Vec::new();
    for broker in brokers {
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(BROKER_RESOURCE)
                .with_resource_name(StrBytes::from_string(broker.id.to_string()))
                .with_configs(configs.clone()),
        ]);
        let response = admin.open(broker)?.call(&request, 0..=1)?;
        for r in response.responses.iter().filter(|r| r.error_code != 0) {
            failures.push(format!(
                "broker {}: {}",
                broker.id,
                error_text(r.error_code, r.error_message.as_ref())
            ));
        }
    }
    let action = match rate {
        Some(_) => "set the replication throttle",
        None => "clear the replication throttle",
    };
    if !failures.is_empty() {
        bail!("cannot {action} on {}", failures.join("; "));
    }
    let ids: Vec<i32> = brokers.iter().map(|b| b.id).collect();
    match rate {
        Some(r) => eprintln!(
            "Replication throttle set to {r} bytes/s on brokers {} ({}).",
            id_list(&ids),
            THROTTLE_CONFIGS.join(", ")
        ),
        None => eprintln!(
            "Replication throttle removed from brokers {} ({}).",
            id_list(&ids),
            THROTTLE_CONFIGS.join(", ")
        ),
    }
    Ok(())
}

/// A reassignment in progress, as ListPartitionReassignments reports it.
#[derive(Debug, Serialize)]
pub struct Ongoing {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<i32>,
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

/// The reassignments in progress (only `topic`'s when given), sorted by topic and partition.
pub fn in_progress(admin: &mut Admin, topic: Option<&str>) -> anyhow::Result<Vec<Ongoing>> {
    let topics = match topic {
        None => None,
        Some(name) => {
            let md = admin.metadata(Some(&[name.to_string()]))?;
            let partitions = md
                .topic(name)
                .map(|t| t.partitions.iter().map(|p| p.partition).collect());
            Some(vec![
                ListPartitionReassignmentsTopics::default()
                    .with_name(topic_name(name))
                    .with_partition_indexes(partitions.unwrap_or_default()),
            ])
        }
    };
    let request = ListPartitionReassignmentsRequest::default()
        .with_timeout_ms(admin.timeout_ms())
        .with_topics(topics);
    let response = admin.call_controller(&request, 0..=0, |r| r.error_code)?;
    if response.error_code != 0 {
        bail!(
            "ListPartitionReassignments failed: {}",
            error_text(response.error_code, response.error_message.as_ref())
        );
    }
    let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<_>>();
    let mut ongoing: Vec<Ongoing> = response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| Ongoing {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                replicas: ids(&p.replicas),
                adding: ids(&p.adding_replicas),
                removing: ids(&p.removing_replicas),
            })
        })
        .collect();
    ongoing.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(ongoing)
}

fn status(g: &Global, topic: Option<&str>) -> anyhow::Result<()> {
    let mut admin = Admin::connect(g)?;
    let ongoing = in_progress(&mut admin, topic)?;
    print(g.output, &ongoing, |ongoing| {
        if ongoing.is_empty() {
            return "No reassignments in progress.".to_string();
        }
        let mut t = Table::new(&["TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING"]);
        for o in ongoing.iter() {
            t.row(vec![
                o.topic.clone(),
                o.partition.to_string(),
                id_list(&o.replicas),
                id_list(&o.adding),
                id_list(&o.removing),
            ]);
        }
        t.render()
    })
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::alter_partition_reassignments_response::{
        ReassignablePartitionResponse, ReassignableTopicResponse,
    };

    use super::*;

    fn plan() -> ValidatedPlan {
        plan::parse(
            r#"{"version":1,"partitions":[
                {"topic":"b","partition":1,"replicas":[3,1]},
                {"topic":"a","partition":0,"replicas":[2]},
                {"topic":"b","partition":0,"replicas":[1,2]}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn the_request_groups_partitions_by_topic_and_cancel_sends_null_replicas() {
        let r = alter_request(&plan(), false, 500);
        assert_eq!(r.timeout_ms, 500);
        let names: Vec<&str> = r.topics.iter().map(|t| t.name.0.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            r.topics[1].partitions[0].replicas,
            Some(vec![BrokerId(3), BrokerId(1)])
        );
        let c = alter_request(&plan(), true, 500);
        assert!(
            c.topics
                .iter()
                .flat_map(|t| &t.partitions)
                .all(|p| p.replicas.is_none())
        );
    }

    #[test]
    fn every_plan_partition_gets_an_outcome_even_without_an_answer() {
        let response = AlterPartitionReassignmentsResponse::default().with_responses(vec![
            ReassignableTopicResponse::default()
                .with_name(topic_name("b"))
                .with_partitions(vec![
                    ReassignablePartitionResponse::default().with_partition_index(1),
                    ReassignablePartitionResponse::default()
                        .with_partition_index(0)
                        .with_error_code(39)
                        .with_error_message(Some(StrBytes::from_static_str("bad"))),
                ]),
        ]);
        let got = outcomes(&plan(), &response, |code, message, replicas| match code {
            0 => (true, format!("to {}", id_list(replicas))),
            _ => (false, error_text(code, message)),
        });
        let got: Vec<(&str, i32, bool, &str)> = got
            .iter()
            .map(|o| (o.topic.as_str(), o.partition, o.ok, o.outcome.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("b", 1, true, "to 3,1"),
                (
                    "a",
                    0,
                    false,
                    "failed: the controller did not answer for it"
                ),
                ("b", 0, false, "InvalidReplicaAssignment (39): bad"),
            ]
        );
    }
}
