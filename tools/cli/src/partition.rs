//! `krait partition`: move replicas (reassign, or rebalance as planned) and elect leaders.
//! All go to the controller and answer per partition; this module holds the shared
//! per-partition outcome and its rendering.

use anyhow::bail;
use clap::Subcommand;
use serde::Serialize;

use crate::client::Global;
use crate::output::{Table, print};
use crate::{elect, reassign, rebalance};

#[derive(Debug, Subcommand)]
pub enum PartitionCommand {
    /// Move partition replicas with a Kafka reassignment plan; show or cancel reassignments;
    /// set or clear the replication throttle.
    Reassign(reassign::ReassignArgs),
    /// Plan replica moves that drain brokers outside the target, spread partitions over racks
    /// and even out replica and leader counts; show the plan, write it, or start it.
    Rebalance(rebalance::RebalanceArgs),
    /// Elect partition leaders: the preferred replica, or (unclean) any live replica.
    ElectLeaders(elect::ElectArgs),
}

pub fn run(g: &Global, command: PartitionCommand) -> anyhow::Result<()> {
    match command {
        PartitionCommand::Reassign(a) => reassign::run(g, a),
        PartitionCommand::Rebalance(a) => rebalance::run(g, a),
        PartitionCommand::ElectLeaders(a) => elect::run(g, &a),
    }
}

/// What the controller did with one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub topic: String,
    pub partition: i32,
    /// False only for a failure; "nothing to do" answers are fine.
    pub ok: bool,
    pub outcome: String,
}

/// Prints the outcomes, then fails naming how many partitions failed (`what` says what was
/// attempted), so a script sees a non-zero exit.
pub fn report(g: &Global, outcomes: &[Outcome], what: &str) -> anyhow::Result<()> {
    print(g.output, &outcomes, |outcomes| {
        let mut t = Table::new(&["TOPIC", "PARTITION", "RESULT"]);
        for o in outcomes.iter() {
            t.row(vec![
                o.topic.clone(),
                o.partition.to_string(),
                o.outcome.clone(),
            ]);
        }
        t.render()
    })?;
    let failed = outcomes.iter().filter(|o| !o.ok).count();
    if failed > 0 {
        bail!(
            "{what} failed for {failed} of {} partitions",
            outcomes.len()
        );
    }
    Ok(())
}
