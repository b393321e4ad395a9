//! `krait topic`: create, list, describe, add partitions, alter configs, delete.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use clap::Subcommand;
use rdkafka::admin::{
    AlterConfig, ConfigSource, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::metadata::MetadataTopic;
use serde::Serialize;

use crate::client::{Global, block_on, parse_key_value};
use crate::cluster::id_list;
use crate::output::{Table, print};

#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        name: String,
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        #[arg(long, default_value_t = 1)]
        replication_factor: i32,
        /// Topic config, KEY=VALUE (repeatable), e.g. --config retention.ms=86400000.
        #[arg(long = "config", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
    },
    /// List topics.
    List,
    /// Show a topic's partitions (leader, leader epoch, replicas, ISR, offline replicas),
    /// offsets and configs.
    Describe { name: String },
    /// Grow a topic to a total number of partitions.
    AddPartitions {
        name: String,
        #[arg(long)]
        partitions: usize,
    },
    /// Set or remove topic config overrides; other overrides are kept.
    AlterConfig {
        name: String,
        /// KEY=VALUE to set (repeatable).
        #[arg(long = "set", value_parser = parse_key_value)]
        set: Vec<(String, String)>,
        /// KEY to return to its default (repeatable).
        #[arg(long = "delete")]
        delete: Vec<String>,
    },
    /// Delete a topic and its data.
    Delete { name: String },
}

pub fn run(g: &Global, command: TopicCommand) -> anyhow::Result<()> {
    match command {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
        } => create(g, &name, partitions, replication_factor, &configs),
        TopicCommand::List => list(g),
        TopicCommand::Describe { name } => describe(g, &name),
        TopicCommand::AddPartitions { name, partitions } => add_partitions(g, &name, partitions),
        TopicCommand::AlterConfig { name, set, delete } => alter_config(g, &name, &set, &delete),
        TopicCommand::Delete { name } => delete_topic(g, &name),
    }
}

fn create(
    g: &Global,
    name: &str,
    partitions: i32,
    rf: i32,
    configs: &[(String, String)],
) -> anyhow::Result<()> {
    let admin = g.admin()?;
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(rf));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let results = block_on(admin.create_topics([&topic], &g.admin_options()))
        .context("CreateTopics failed")?;
    for r in results {
        if let Err((topic, code)) = r {
            bail!("cannot create topic {topic}: {code}");
        }
    }
    println!("Created topic {name}.");
    Ok(())
}

fn delete_topic(g: &Global, name: &str) -> anyhow::Result<()> {
    let admin = g.admin()?;
    for r in
        block_on(admin.delete_topics(&[name], &g.admin_options())).context("DeleteTopics failed")?
    {
        if let Err((topic, code)) = r {
            bail!("cannot delete topic {topic}: {code}");
        }
    }
    println!("Deleted topic {name}.");
    Ok(())
}

fn add_partitions(g: &Global, name: &str, total: usize) -> anyhow::Result<()> {
    let admin = g.admin()?;
    let request = NewPartitions::new(name, total);
    for r in block_on(admin.create_partitions([&request], &g.admin_options()))
        .context("CreatePartitions failed")?
    {
        if let Err((topic, code)) = r {
            bail!("cannot grow topic {topic} to {total} partitions: {code}");
        }
    }
    println!("Topic {name} now has {total} partitions.");
    Ok(())
}

#[derive(Debug, Serialize)]
struct TopicSummary {
    topic: String,
    partitions: usize,
    replication_factor: usize,
}

fn summary(t: &MetadataTopic) -> TopicSummary {
    let rf = t
        .partitions()
        .iter()
        .map(|p| p.replicas().len())
        .max()
        .unwrap_or(0);
    TopicSummary {
        topic: t.name().to_string(),
        partitions: t.partitions().len(),
        replication_factor: rf,
    }
}

fn list(g: &Global) -> anyhow::Result<()> {
    let admin = g.admin()?;
    let md = admin
        .inner()
        .fetch_metadata(None, g.timeout())
        .context("cannot fetch metadata")?;
    let mut topics: Vec<TopicSummary> = md
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(summary)
        .collect();
    topics.sort_by(|a, b| a.topic.cmp(&b.topic));
    print(g.output, &topics, |topics| {
        let mut table = Table::new(&["TOPIC", "PARTITIONS", "REPLICATION"]);
        for t in topics {
            table.row(vec![
                t.topic.clone(),
                t.partitions.to_string(),
                t.replication_factor.to_string(),
            ]);
        }
        table.render()
    })
}

#[derive(Debug, Serialize)]
struct PartitionView {
    partition: i32,
    /// -1 when the partition has no leader.
    leader: i32,
    /// -1 when the broker's Metadata version does not report it (before v7).
    leader_epoch: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    offline_replicas: Vec<i32>,
    /// None when they could not be read: no leader, or the leader did not answer.
    log_start_offset: Option<i64>,
    high_watermark: Option<i64>,
}

#[derive(Debug, Serialize)]
struct ConfigView {
    value: Option<String>,
    source: &'static str,
}

#[derive(Debug, Serialize)]
struct TopicDescription {
    #[serde(flatten)]
    summary: TopicSummary,
    configs: BTreeMap<String, ConfigView>,
    partition_details: Vec<PartitionView>,
}

/// Partitions come from Metadata read directly (librdkafka's metadata has no leader epochs
/// and no offline replicas); offsets and configs through librdkafka.
fn describe(g: &Global, name: &str) -> anyhow::Result<()> {
    let metadata = g.session()?.metadata(Some(&[name.to_string()]))?;
    let Some(topic) = metadata.topic(name) else {
        bail!("topic {name} does not exist");
    };
    let consumer: BaseConsumer = g.config().set("group.id", "krait-cli-describe").create()?;
    let mut partition_details = Vec::new();
    for p in &topic.partitions {
        // A partition without a leader has no offsets to ask for, and one whose leader does
        // not answer must not hide the other rows: describe is for exactly those moments.
        let offsets = match p.leader {
            ..0 => None,
            _ => match consumer.fetch_watermarks(name, p.partition, g.timeout()) {
                Ok(offsets) => Some(offsets),
                Err(e) => {
                    eprintln!(
                        "warning: cannot list offsets of {name}-{}: {e}",
                        p.partition
                    );
                    None
                }
            },
        };
        partition_details.push(PartitionView {
            partition: p.partition,
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            replicas: p.replicas.clone(),
            isr: p.isr.clone(),
            offline_replicas: p.offline_replicas.clone(),
            log_start_offset: offsets.map(|(low, _)| low),
            high_watermark: offsets.map(|(_, high)| high),
        });
    }
    let description = TopicDescription {
        summary: TopicSummary {
            topic: topic.name.clone(),
            partitions: topic.partitions.len(),
            replication_factor: topic
                .partitions
                .iter()
                .map(|p| p.replicas.len())
                .max()
                .unwrap_or(0),
        },
        configs: topic_configs(g, name)?,
        partition_details,
    };
    print(g.output, &description, render_description)
}

/// The columns of `topic describe`'s partition table.
const PARTITION_COLUMNS: [&str; 8] = [
    "PARTITION",
    "LEADER",
    "LEADER-EPOCH",
    "REPLICAS",
    "ISR",
    "OFFLINE",
    "LOG-START",
    "HIGH-WATERMARK",
];

fn render_description(d: &TopicDescription) -> String {
    let s = &d.summary;
    let mut out = format!(
        "Topic: {}  Partitions: {}  Replication: {}\n",
        s.topic, s.partitions, s.replication_factor
    );
    let overrides: Vec<String> = d
        .configs
        .iter()
        .filter(|(_, c)| c.source == "topic")
        .map(|(k, c)| format!("{k}={}", c.value.as_deref().unwrap_or("")))
        .collect();
    out.push_str(&format!(
        "Configs: {}\n\n",
        if overrides.is_empty() {
            "(defaults)".to_string()
        } else {
            overrides.join(", ")
        }
    ));
    let mut table = Table::new(&PARTITION_COLUMNS);
    let known = |n: i32, none: &str| {
        if n < 0 {
            none.to_string()
        } else {
            n.to_string()
        }
    };
    for p in &d.partition_details {
        table.row(vec![
            p.partition.to_string(),
            known(p.leader, "none"),
            known(p.leader_epoch, "-"),
            id_list(&p.replicas),
            id_list(&p.isr),
            id_list(&p.offline_replicas),
            p.log_start_offset
                .map_or("-".to_string(), |o| o.to_string()),
            p.high_watermark.map_or("-".to_string(), |o| o.to_string()),
        ]);
    }
    out.push_str(&table.render());
    out
}

fn source_name(s: &ConfigSource) -> &'static str {
    match s {
        ConfigSource::DynamicTopic => "topic",
        ConfigSource::DynamicBroker
        | ConfigSource::DynamicDefaultBroker
        | ConfigSource::StaticBroker => "broker",
        ConfigSource::Default => "default",
        _ => "unknown",
    }
}

fn topic_configs(g: &Global, name: &str) -> anyhow::Result<BTreeMap<String, ConfigView>> {
    let admin = g.admin()?;
    let results =
        block_on(admin.describe_configs([&ResourceSpecifier::Topic(name)], &g.admin_options()))
            .context("DescribeConfigs failed")?;
    let mut configs = BTreeMap::new();
    for r in results {
        let resource =
            r.map_err(|code| anyhow::anyhow!("cannot describe configs of {name}: {code}"))?;
        for e in resource.entries {
            configs.insert(
                e.name,
                ConfigView {
                    value: e.value,
                    source: source_name(&e.source),
                },
            );
        }
    }
    Ok(configs)
}

/// The topic's overrides after applying `set` and `delete`: AlterConfigs replaces the whole
/// override set, so the current overrides are read first and carried over.
fn merged_overrides(
    current: &BTreeMap<String, ConfigView>,
    set: &[(String, String)],
    delete: &[String],
) -> BTreeMap<String, String> {
    let mut next: BTreeMap<String, String> = current
        .iter()
        .filter(|(_, c)| c.source == "topic")
        .filter_map(|(k, c)| Some((k.clone(), c.value.clone()?)))
        .collect();
    for k in delete {
        next.remove(k);
    }
    for (k, v) in set {
        next.insert(k.clone(), v.clone());
    }
    next
}

fn alter_config(
    g: &Global,
    name: &str,
    set: &[(String, String)],
    delete: &[String],
) -> anyhow::Result<()> {
    if set.is_empty() && delete.is_empty() {
        bail!("nothing to change: give --set KEY=VALUE and/or --delete KEY");
    }
    let next = merged_overrides(&topic_configs(g, name)?, set, delete);
    let admin = g.admin()?;
    let mut alter = AlterConfig::new(ResourceSpecifier::Topic(name));
    for (k, v) in &next {
        alter = alter.set(k, v);
    }
    for r in block_on(admin.alter_configs([&alter], &g.admin_options()))
        .context("AlterConfigs failed")?
    {
        r.map_err(|(_, code)| anyhow::anyhow!("cannot alter configs of {name}: {code}"))?;
    }
    println!("Altered configs of topic {name}.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_partition_row_shows_leader_epoch_replicas_isr_offline_replicas_and_unknown_offsets() {
        let partition = |partition, leader, offline: Vec<i32>| PartitionView {
            partition,
            leader,
            leader_epoch: if leader < 0 { -1 } else { 7 },
            replicas: vec![1, 2, 3],
            isr: vec![1, 2],
            offline_replicas: offline,
            log_start_offset: (leader >= 0).then_some(0),
            high_watermark: (leader >= 0).then_some(42),
        };
        let d = TopicDescription {
            summary: TopicSummary {
                topic: "orders".into(),
                partitions: 2,
                replication_factor: 3,
            },
            configs: BTreeMap::new(),
            partition_details: vec![partition(0, 1, vec![]), partition(1, -1, vec![3])],
        };
        let text = render_description(&d);
        let rows: Vec<Vec<&str>> = text
            .lines()
            .skip_while(|l| !l.starts_with("PARTITION"))
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            rows,
            [
                PARTITION_COLUMNS.to_vec(),
                vec!["0", "1", "7", "1,2,3", "1,2", "-", "0", "42"],
                vec!["1", "none", "-", "1,2,3", "1,2", "3", "-", "-"],
            ]
        );
    }

    #[test]
    fn alter_keeps_other_overrides_sets_new_ones_and_drops_deleted() {
        let view = |v: &str, source| ConfigView {
            value: Some(v.into()),
            source,
        };
        let current = BTreeMap::from([
            ("retention.ms".to_string(), view("1000", "topic")),
            ("retention.bytes".to_string(), view("5", "topic")),
            ("cleanup.policy".to_string(), view("delete", "default")),
        ]);
        let next = merged_overrides(
            &current,
            &[("max.message.bytes".into(), "9".into())],
            &["retention.bytes".into()],
        );
        let expected = BTreeMap::from([
            ("max.message.bytes".to_string(), "9".to_string()),
            ("retention.ms".to_string(), "1000".to_string()),
        ]);
        assert_eq!(next, expected);
    }
}
