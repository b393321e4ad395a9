//! `krait transactions`: list and describe transactional ids, show the producers a partition
//! keeps state for, and abort a hanging transaction — what Kafka's `kafka-transactions.sh`
//! does, through krait-admin (ListTransactions, DescribeTransactions, DescribeProducers,
//! WriteTxnMarkers).

use clap::{Args, Subcommand};
use krait_admin::{AbortSpec, PartitionProducers, TransactionDescription, TransactionListing};
use serde::Serialize;

use crate::client::Global;
use crate::output::{Table, print};

#[derive(Debug, Subcommand)]
pub enum TransactionsCommand {
    /// Transactional ids the coordinators know, with their state.
    List {
        /// Only ids in this state (Empty, Ongoing, PrepareCommit, PrepareAbort,
        /// CompleteCommit, CompleteAbort); may be repeated.
        #[arg(long)]
        state: Vec<String>,
    },
    /// A transactional id's state, producer id and epoch, timeout and partitions.
    Describe { transactional_id: String },
    /// The producers the leader of each partition of a topic keeps state for, with the first
    /// offset of any transaction they have open there (a hanging one holds consumers back).
    Producers {
        #[arg(long)]
        topic: String,
        /// Only this partition (every partition of the topic when left out).
        #[arg(long)]
        partition: Option<i32>,
    },
    /// Abort a hanging transaction on one partition: its leader writes an ABORT marker, which
    /// releases read_committed consumers. Find the producer with `producers`.
    Abort(AbortArgs),
}

#[derive(Debug, Args)]
pub struct AbortArgs {
    #[arg(long)]
    topic: String,
    #[arg(long)]
    partition: i32,
    #[arg(long)]
    producer_id: i64,
    #[arg(long)]
    producer_epoch: i16,
    /// The coordinator epoch for the marker (`producers` shows it; -1 there means 0 here).
    #[arg(long, default_value_t = 0)]
    coordinator_epoch: i32,
}

pub fn run(g: &Global, command: TransactionsCommand) -> anyhow::Result<()> {
    match command {
        TransactionsCommand::List { state } => list(g, &state),
        TransactionsCommand::Describe { transactional_id } => describe(g, &transactional_id),
        TransactionsCommand::Producers { topic, partition } => producers(g, &topic, partition),
        TransactionsCommand::Abort(a) => abort(g, &a),
    }
}

fn list_table(listings: &Vec<TransactionListing>) -> String {
    let mut t = Table::new(&["TRANSACTIONAL ID", "COORDINATOR", "PRODUCER ID", "STATE"]);
    for l in listings {
        t.row(vec![
            l.transactional_id.clone(),
            l.coordinator.to_string(),
            l.producer_id.to_string(),
            l.state.clone(),
        ]);
    }
    t.render()
}

fn list(g: &Global, states: &[String]) -> anyhow::Result<()> {
    let listings = g.session()?.list_transactions(states)?;
    print(g.output, &listings, list_table)
}

fn describe_table(d: &TransactionDescription) -> String {
    let mut t = Table::new(&[
        "TRANSACTIONAL ID",
        "COORDINATOR",
        "PRODUCER ID",
        "EPOCH",
        "STATE",
        "TIMEOUT MS",
        "START MS",
        "PARTITIONS",
    ]);
    let partitions: Vec<String> = d
        .partitions
        .iter()
        .map(|(topic, p)| format!("{topic}-{p}"))
        .collect();
    t.row(vec![
        d.transactional_id.clone(),
        d.coordinator.to_string(),
        d.producer_id.to_string(),
        d.producer_epoch.to_string(),
        d.state.clone(),
        d.timeout_ms.to_string(),
        d.start_time_ms.to_string(),
        partitions.join(","),
    ]);
    t.render()
}

fn describe(g: &Global, id: &str) -> anyhow::Result<()> {
    let description = g.session()?.describe_transaction(id)?;
    print(g.output, &description, describe_table)
}

fn producers_table(partitions: &Vec<PartitionProducers>) -> String {
    let mut t = Table::new(&[
        "TOPIC",
        "PARTITION",
        "LEADER",
        "PRODUCER ID",
        "EPOCH",
        "LAST SEQUENCE",
        "LAST TIMESTAMP",
        "COORDINATOR EPOCH",
        "TXN START OFFSET",
    ]);
    for p in partitions {
        for s in &p.producers {
            t.row(vec![
                p.topic.clone(),
                p.partition.to_string(),
                p.leader.to_string(),
                s.producer_id.to_string(),
                s.producer_epoch.to_string(),
                s.last_sequence.to_string(),
                s.last_timestamp.to_string(),
                s.coordinator_epoch.to_string(),
                s.current_txn_start_offset.to_string(),
            ]);
        }
    }
    t.render()
}

fn producers(g: &Global, topic: &str, partition: Option<i32>) -> anyhow::Result<()> {
    let only = partition.map(|p| vec![p]);
    let found = g.session()?.describe_producers(topic, only.as_deref())?;
    print(g.output, &found, producers_table)
}

#[derive(Debug, Serialize)]
struct Aborted {
    aborted: AbortSpec,
}

fn abort(g: &Global, a: &AbortArgs) -> anyhow::Result<()> {
    let spec = AbortSpec {
        topic: a.topic.clone(),
        partition: a.partition,
        producer_id: a.producer_id,
        producer_epoch: a.producer_epoch,
        coordinator_epoch: a.coordinator_epoch.max(0),
    };
    g.session()?.abort_transaction(&spec)?;
    print(g.output, &Aborted { aborted: spec }, |d| {
        format!(
            "aborted the transaction of producer {} (epoch {}) on {}-{}",
            d.aborted.producer_id, d.aborted.producer_epoch, d.aborted.topic, d.aborted.partition
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use krait_admin::ProducerInfo;

    #[test]
    fn producers_show_one_row_each_with_their_open_transaction() {
        let table = producers_table(&vec![PartitionProducers {
            topic: "t".into(),
            partition: 0,
            leader: 1,
            producers: vec![ProducerInfo {
                producer_id: 42,
                producer_epoch: 3,
                last_sequence: 9,
                last_timestamp: 1000,
                coordinator_epoch: -1,
                current_txn_start_offset: 17,
            }],
        }]);
        let row = table.lines().nth(1).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells, ["t", "0", "1", "42", "3", "9", "1000", "-1", "17"]);
    }
}
