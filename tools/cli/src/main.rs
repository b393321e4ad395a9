//! `krait`: everyday Kafka jobs from the command line — topics, consumer groups, produce,
//! consume, load tests, cluster health, partition reassignment and rebalancing, leader
//! election, ACLs, SCRAM users and transactions; over TLS and SASL with `--command-config`.
//! It speaks only the Kafka protocol (librdkafka for clients, `krait-admin` on the `kafka-protocol` codec for
//! the admin APIs librdkafka lacks), so it works against any Kafka as well as Krait.

mod acl;
mod client;
mod cluster;
mod command_config;
mod consume;
mod elect;
mod group;
mod jaas;
mod output;
mod partition;
mod perf;
mod plan;
mod produce;
mod reassign;
mod rebalance;
mod topic;
mod transactions;
mod user;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::client::Global;

/// Kafka command-line client for Krait (and any Kafka).
#[derive(Debug, Parser)]
#[command(name = "krait", version, about)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, list, describe, grow, configure and delete topics.
    #[command(subcommand)]
    Topic(topic::TopicCommand),
    /// List, describe, delete consumer groups and reset their offsets.
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// Produce lines from stdin, one record per line.
    Produce(produce::ProduceArgs),
    /// Consume records and print them, one per line.
    Consume(consume::ConsumeArgs),
    /// Load tests: producer and consumer throughput and latency.
    #[command(subcommand)]
    Perf(perf::PerfCommand),
    /// Cluster health: brokers, controller, under-replicated and offline partitions.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Reassign and rebalance partition replicas and elect leaders.
    #[command(subcommand)]
    Partition(partition::PartitionCommand),
    /// Add, list and remove ACLs.
    #[command(subcommand)]
    Acl(acl::AclCommand),
    /// Set, describe and delete SCRAM users.
    #[command(subcommand)]
    User(user::UserCommand),
    /// List and describe transactions, show producers, abort a hanging transaction.
    #[command(subcommand)]
    Transactions(transactions::TransactionsCommand),
}

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    if let Err(e) = cli.global.load_command_config() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Topic(c) => topic::run(&cli.global, c),
        Command::Group(c) => group::run(&cli.global, c),
        Command::Produce(a) => produce::run(&cli.global, a),
        Command::Consume(a) => consume::run(&cli.global, a),
        Command::Perf(c) => perf::run(&cli.global, c),
        Command::Cluster(c) => cluster::run(&cli.global, c),
        Command::Partition(c) => partition::run(&cli.global, c),
        Command::Acl(c) => acl::run(&cli.global, c),
        Command::User(c) => user::run(&cli.global, c),
        Command::Transactions(c) => transactions::run(&cli.global, c),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let message = format!("{e:#}");
            eprintln!("error: {message}");
            if let Some(cause) = cli.global.security_cause(&message) {
                eprintln!("  cause: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
