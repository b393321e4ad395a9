//! `krait partition reassign`: start, show and cancel partition reassignments
//! (AlterPartitionReassignments, ListPartitionReassignments), and the replication throttle
//! Kafka's tool sets around them (dynamic broker configs through IncrementalAlterConfigs).
//! Starting a plan and listing what is in progress are shared with `partition rebalance`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
};
use krait_admin::reassign::{NO_REASSIGNMENT_IN_PROGRESS, answers};
use krait_admin::{Admin, BrokerInfo, Ongoing, Reassignment, THROTTLE_CONFIGS, error_text};

use crate::client::Global;
use crate::cluster::id_list;
use crate::output::{Table, print};
use crate::partition::{Outcome, report};
use crate::plan::{self, PlanError, ValidatedPlan};

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
            let mut admin = g.session()?;
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

/// The plan's partitions as reassignments; `cancel` asks for null replica lists.
fn reassignments(plan: &ValidatedPlan, cancel: bool) -> Vec<Reassignment> {
    plan.partitions
        .iter()
        .map(|p| Reassignment {
            topic: p.topic.clone(),
            partition: p.partition,
            replicas: (!cancel).then(|| p.replicas.clone()),
        })
        .collect()
}

/// One outcome per plan partition, in plan order; `judge` turns an error code and message
/// into (ok, text).
fn outcomes(
    plan: &ValidatedPlan,
    response: &AlterPartitionReassignmentsResponse,
    judge: impl Fn(i16, Option<&str>, &[i32]) -> (bool, String),
) -> Vec<Outcome> {
    let answers = answers(response);
    plan.partitions
        .iter()
        .map(|p| {
            let (ok, outcome) = match answers.get(&(p.topic.clone(), p.partition)) {
                Some((code, message)) => judge(*code, message.as_deref(), &p.replicas),
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

/// A Kafka error code with the broker's message, as people read it.
fn failure(code: i16, message: Option<&str>) -> String {
    let message = message.map(|m| kafka_protocol::protocol::StrBytes::from_string(m.into()));
    format!("failed: {}", error_text(code, message.as_ref()))
}

fn execute(g: &Global, path: &Path, throttle: Option<u64>) -> anyhow::Result<()> {
    let plan = &read_plan(path)?;
    let mut admin = g.session()?;
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
    let response = admin.alter_reassignments(&reassignments(plan, false))?;
    Ok(outcomes(
        plan,
        &response,
        |code, message, replicas| match code {
            0 => (
                true,
                format!("reassignment to {} started", id_list(replicas)),
            ),
            _ => (false, failure(code, message)),
        },
    ))
}

fn cancel(g: &Global, plan: &ValidatedPlan) -> anyhow::Result<()> {
    let mut admin = g.session()?;
    let response = admin.alter_reassignments(&reassignments(plan, true))?;
    let outcomes = outcomes(plan, &response, |code, message, _| match code {
        0 => (true, "reassignment cancelled".to_string()),
        NO_REASSIGNMENT_IN_PROGRESS => (true, "no reassignment in progress".to_string()),
        _ => (false, failure(code, message)),
    });
    report(g, &outcomes, "cancelling the reassignment")
}

/// Sets (`Some(rate)`) or deletes (`None`) the throttle configs on every broker, and says so.
fn set_throttle(admin: &Admin, brokers: &[BrokerInfo], rate: Option<u64>) -> anyhow::Result<()> {
    admin.set_replication_throttle(brokers, rate)?;
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

/// The reassignments in progress (only `topic`'s when given), sorted by topic and partition.
pub fn in_progress(admin: &mut Admin, topic: Option<&str>) -> anyhow::Result<Vec<Ongoing>> {
    Ok(admin.reassignments_in_progress(topic)?)
}

fn status(g: &Global, topic: Option<&str>) -> anyhow::Result<()> {
    let mut admin = g.session()?;
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
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::messages::alter_partition_reassignments_response::{
        ReassignablePartitionResponse, ReassignableTopicResponse,
    };
    use kafka_protocol::protocol::StrBytes;

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
    fn a_cancel_sends_null_replicas_for_every_plan_partition() {
        let execute = reassignments(&plan(), false);
        assert_eq!(execute[0].replicas, Some(vec![3, 1]));
        assert!(
            reassignments(&plan(), true)
                .iter()
                .all(|r| r.replicas.is_none())
        );
    }

    #[test]
    fn every_plan_partition_gets_an_outcome_even_without_an_answer() {
        let response = AlterPartitionReassignmentsResponse::default().with_responses(vec![
            ReassignableTopicResponse::default()
                .with_name(TopicName(StrBytes::from_static_str("b")))
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
            _ => (false, failure(code, message)),
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
                ("b", 0, false, "failed: InvalidReplicaAssignment (39): bad"),
            ]
        );
    }
}
