//! `krait partition rebalance`: reads the cluster, asks the pure planner (`krait-planner`) which
//! replicas to move so the target brokers hold every partition, spread over racks, with
//! replica and preferred-leader counts even, and then shows the plan, writes it in Kafka's
//! reassignment format, or starts it through the controller. It never waits for a
//! reassignment to finish and never changes a replication factor; the planning decisions
//! belong to the planner, not here.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use krait_planner::{Broker, PartitionAssignment, Plan, PlanRequest};

use crate::client::{Global, Output};
use crate::cluster::id_list;
use crate::output::{Table, print};
use crate::partition::{Outcome, report};
use crate::plan::{PlannedPartition, ValidatedPlan};
use crate::reassign;
use krait_admin::{BrokerInfo, Ongoing, TopicState};

/// How many in-progress reassignments a refusal names before it only counts the rest.
const ONGOING_NAMED: usize = 5;

#[derive(Debug, Args)]
pub struct RebalanceArgs {
    /// The brokers that should hold the replicas, comma-separated ids (default: every live
    /// broker). Replicas on any other broker are moved off it.
    #[arg(
        long,
        value_name = "IDS",
        value_delimiter = ',',
        conflicts_with = "exclude"
    )]
    brokers: Vec<i32>,
    /// Brokers to drain, comma-separated ids: every other live broker holds the replicas.
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    exclude: Vec<i32>,
    /// Plan only these topics (repeat the flag or separate with commas; default: every topic).
    /// Replica and leader counts then cover these topics alone.
    #[arg(long = "topic", value_name = "TOPIC", value_delimiter = ',')]
    topics: Vec<String>,
    /// Start the planned reassignments (one AlterPartitionReassignments to the controller)
    /// instead of only showing them. Refused while any reassignment is in progress.
    #[arg(long)]
    execute: bool,
    /// With --execute: first limit replication on every broker to this rate (bytes per
    /// second), as `krait partition reassign --throttle` does.
    #[arg(long, value_name = "BYTES_PER_SEC", requires = "execute")]
    throttle: Option<u64>,
    /// Also write the moves as a Kafka reassignment plan, which `krait partition reassign
    /// --plan` (or `--cancel --plan`) and Kafka's own tool read. Not written for an empty plan.
    #[arg(long, value_name = "FILE")]
    plan_out: Option<PathBuf>,
}

/// Which brokers should hold replicas once the plan is carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Exactly these brokers (`--brokers`).
    Only(BTreeSet<i32>),
    /// Every live (unfenced) broker but these (`--exclude`, possibly empty).
    LiveExcept(BTreeSet<i32>),
}

impl Target {
    fn from_args(args: &RebalanceArgs) -> Self {
        if args.brokers.is_empty() {
            Target::LiveExcept(args.exclude.iter().copied().collect())
        } else {
            Target::Only(args.brokers.iter().copied().collect())
        }
    }
}

/// Why a rebalance was refused before anything was submitted.
#[derive(Debug, thiserror::Error)]
pub enum RebalanceError {
    #[error("broker {0} is fenced (not live), so it cannot receive replicas")]
    FencedTarget(i32),
    #[error("cannot plan the rebalance: {0}")]
    Plan(#[from] krait_planner::PlanError),
    #[error(
        "{} partition reassignment(s) already in progress ({}): wait until `krait partition \
         reassign --status` shows none, or cancel them, then rebalance again",
        .0.len(),
        ongoing_list(.0)
    )]
    InProgress(Vec<Ongoing>),
}

fn ongoing_list(ongoing: &[Ongoing]) -> String {
    let mut names: Vec<String> = ongoing
        .iter()
        .take(ONGOING_NAMED)
        .map(|o| format!("{}-{}", o.topic, o.partition))
        .collect();
    if ongoing.len() > ONGOING_NAMED {
        names.push(format!("and {} more", ongoing.len() - ONGOING_NAMED));
    }
    names.join(", ")
}

/// The planner's input from what the cluster reports: every broker with its rack (fenced ones
/// too, so replicas on them are drained, not lost track of), the target, and every partition
/// of `topics` with its current replicas.
///
/// `size_bytes` is 0 for every partition: the planner would use it to move small partitions
/// first and count the bytes copied, but the broker does not serve DescribeLogDirs, so sizes
/// are unknown and the plan's `bytesMoved` is always 0.
pub fn plan_request(
    brokers: &[BrokerInfo],
    topics: &[TopicState],
    target: &Target,
) -> Result<PlanRequest, RebalanceError> {
    let target = match target {
        Target::Only(ids) => {
            let fenced = brokers.iter().find(|b| b.fenced && ids.contains(&b.id));
            if let Some(b) = fenced {
                return Err(RebalanceError::FencedTarget(b.id));
            }
            ids.clone()
        }
        Target::LiveExcept(excluded) => brokers
            .iter()
            .filter(|b| !b.fenced && !excluded.contains(&b.id))
            .map(|b| b.id)
            .collect(),
    };
    let partitions = topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| PartitionAssignment {
            topic: p.topic.clone(),
            partition: p.partition,
            replicas: p.replicas.clone(),
            size_bytes: 0,
        })
        .collect();
    Ok(PlanRequest {
        brokers: brokers
            .iter()
            .map(|b| Broker {
                id: b.id,
                rack: b.rack.clone(),
            })
            .collect(),
        target,
        partitions,
    })
}

/// The moves as a reassignment plan: each moved partition with its new replica list.
pub fn reassignment(plan: &Plan) -> ValidatedPlan {
    ValidatedPlan {
        partitions: plan
            .moves
            .iter()
            .map(|m| PlannedPartition {
                topic: m.topic.clone(),
                partition: m.partition,
                replicas: m.to.clone(),
            })
            .collect(),
    }
}

const ALREADY_BALANCED: &str = "Already balanced: nothing to move.";

/// The dry-run report: the summary, the per-broker counts before -> after, then each move.
pub fn render(plan: &Plan, request: &PlanRequest) -> String {
    if plan.moves.is_empty() {
        return ALREADY_BALANCED.to_string();
    }
    let mut out = render_summary(plan, request);
    let mut moves = Table::new(&["TOPIC", "PARTITION", "REPLICAS"]);
    for m in &plan.moves {
        moves.row(vec![
            m.topic.clone(),
            m.partition.to_string(),
            format!("{} -> {}", id_list(&m.from), id_list(&m.to)),
        ]);
    }
    out.push_str("\n\n");
    out.push_str(&moves.render());
    out
}

/// What the plan changes, in totals and per broker.
fn render_summary(plan: &Plan, request: &PlanRequest) -> String {
    let s = &plan.summary;
    let target: Vec<i32> = request.target.iter().copied().collect();
    let mut out = format!(
        "Target brokers: {}\nPartitions moved: {}\nReplicas moved: {}\nLeaders changed: {}\n\n",
        id_list(&target),
        s.partitions_moved,
        s.replicas_moved,
        s.leaders_changed
    );
    let mut brokers = Table::new(&["BROKER", "RACK", "TARGET", "REPLICAS", "LEADERS"]);
    let count = |m: &std::collections::BTreeMap<i32, usize>, id| m.get(id).copied().unwrap_or(0);
    for id in s.replicas_per_broker_before.keys() {
        let rack = request
            .brokers
            .iter()
            .find(|b| b.id == *id)
            .and_then(|b| b.rack.clone());
        brokers.row(vec![
            id.to_string(),
            rack.unwrap_or_else(|| "-".to_string()),
            if request.target.contains(id) {
                "yes"
            } else {
                "no"
            }
            .to_string(),
            format!(
                "{} -> {}",
                count(&s.replicas_per_broker_before, id),
                count(&s.replicas_per_broker_after, id)
            ),
            format!(
                "{} -> {}",
                count(&s.leaders_per_broker_before, id),
                count(&s.leaders_per_broker_after, id)
            ),
        ]);
    }
    out.push_str(&brokers.render());
    out
}

pub fn run(g: &Global, args: RebalanceArgs) -> anyhow::Result<()> {
    let mut admin = g.session()?;
    if args.execute {
        // A plan read while replicas are moving would start from lists about to change.
        let ongoing = reassign::in_progress(&mut admin, None)?;
        if !ongoing.is_empty() {
            return Err(RebalanceError::InProgress(ongoing).into());
        }
    }
    let brokers = admin.describe_cluster()?.brokers;
    let topics = (!args.topics.is_empty()).then_some(args.topics.as_slice());
    let metadata = admin.metadata(topics)?;
    let request = plan_request(&brokers, &metadata.topics, &Target::from_args(&args))?;
    let plan = krait_planner::plan(&request).map_err(RebalanceError::from)?;
    if let Some(path) = &args.plan_out {
        write_plan(path, &plan)?;
    }
    if !args.execute {
        print(g.output, &plan, |plan| render(plan, &request))?;
        if !plan.moves.is_empty() {
            eprintln!("Dry run: nothing was changed. Add --execute to start these reassignments.");
        }
        return Ok(());
    }
    if plan.moves.is_empty() {
        return print(g.output, &Vec::<Outcome>::new(), |_| {
            ALREADY_BALANCED.to_string()
        });
    }
    if g.output == Output::Table {
        println!("{}\n", render_summary(&plan, &request));
    }
    let outcomes = reassign::start(
        &mut admin,
        &reassignment(&plan),
        &metadata.brokers,
        args.throttle,
    )?;
    let reported = report(g, &outcomes, "reassignment");
    if outcomes.iter().any(|o| o.ok) {
        eprintln!("{}", follow_up(&plan, args.throttle.is_some()));
    }
    reported
}

/// What to run next: the command has started the reassignments and does not wait for them.
fn follow_up(plan: &Plan, throttled: bool) -> String {
    let mut text = "Reassignments started; this command does not wait for them. Follow them with \
                    `krait partition reassign --status`"
        .to_string();
    if throttled {
        text.push_str(
            " and, once it shows none, remove the throttle with `krait partition reassign \
             --clear-throttle`",
        );
    }
    text.push('.');
    if plan.summary.leaders_changed > 0 {
        text.push_str(
            " When they are done, `krait partition elect-leaders --all-topic-partitions` moves \
             leadership to the new preferred leaders.",
        );
    }
    text
}

fn write_plan(path: &std::path::Path, plan: &Plan) -> anyhow::Result<()> {
    if plan.moves.is_empty() {
        eprintln!(
            "No plan written to {}: there is nothing to move.",
            path.display()
        );
        return Ok(());
    }
    let mut text = reassignment(plan).to_json();
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("cannot write plan {}", path.display()))?;
    eprintln!(
        "Reassignment plan for {} partition(s) written to {}.",
        plan.moves.len(),
        path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests;
