//! `krait consume`: print records, one per line (or one JSON object per line).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::client::{Global, Output, partitions};

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    pub topic: String,
    /// Start at the earliest offset instead of the end.
    #[arg(long)]
    pub from_beginning: bool,
    /// Exit after this many records.
    #[arg(long)]
    pub max_messages: Option<u64>,
    /// Read only this partition (with --offset: from that offset).
    #[arg(long)]
    pub partition: Option<i32>,
    #[arg(long, requires = "partition")]
    pub offset: Option<i64>,
    /// Join this consumer group and commit offsets, instead of reading partitions directly.
    #[arg(long)]
    pub group: Option<String>,
    /// Print KEY<sep>VALUE.
    #[arg(long)]
    pub print_key: bool,
    #[arg(long, default_value = "\t")]
    pub key_separator: String,
    /// Exit (successfully) after this long without a new record; default: wait for ever,
    /// or until --max-messages, which fails after --timeout-ms without progress.
    #[arg(long)]
    pub idle_timeout_ms: Option<u64>,
}

#[derive(Debug, Serialize)]
struct JsonRecord<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: Option<i64>,
    key: Option<String>,
    value: Option<String>,
    headers: Vec<(String, Option<String>)>,
}

pub fn run(g: &Global, a: ConsumeArgs) -> anyhow::Result<()> {
    let group = a.group.clone().unwrap_or_else(|| "krait-cli".to_string());
    let reset = if a.from_beginning {
        "earliest"
    } else {
        "latest"
    };
    let consumer: BaseConsumer = g
        .config()
        .set("group.id", &group)
        .set(
            "enable.auto.commit",
            if a.group.is_some() { "true" } else { "false" },
        )
        .set("auto.offset.reset", reset)
        .create()
        .context("cannot create a consumer")?;
    if a.group.is_some() {
        consumer
            .subscribe(&[&a.topic])
            .context("cannot subscribe")?;
    } else {
        consumer
            .assign(&assignment(g, &consumer, &a)?)
            .context("cannot assign partitions")?;
    }
    read(g, &consumer, &a)
}

fn assignment(
    g: &Global,
    consumer: &BaseConsumer,
    a: &ConsumeArgs,
) -> anyhow::Result<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    if let Some(p) = a.partition {
        let offset = match (a.offset, a.from_beginning) {
            (Some(o), _) => Offset::Offset(o),
            (None, true) => Offset::Beginning,
            (None, false) => Offset::End,
        };
        tpl.add_partition_offset(&a.topic, p, offset)?;
        return Ok(tpl);
    }
    let start = if a.from_beginning {
        Offset::Beginning
    } else {
        Offset::End
    };
    for p in partitions(g, consumer, &a.topic)? {
        tpl.add_partition_offset(&a.topic, p, start)?;
    }
    Ok(tpl)
}

fn read(g: &Global, consumer: &BaseConsumer, a: &ConsumeArgs) -> anyhow::Result<()> {
    let mut seen = 0u64;
    let mut last_progress = Instant::now();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    while a.max_messages.is_none_or(|max| seen < max) {
        let Some(result) = consumer.poll(Duration::from_millis(200)) else {
            let idle = last_progress.elapsed();
            if a.idle_timeout_ms
                .is_some_and(|t| idle >= Duration::from_millis(t))
            {
                break;
            }
            if a.max_messages.is_some() && a.idle_timeout_ms.is_none() && idle >= g.timeout() {
                std::io::Write::flush(&mut out)?;
                bail!(
                    "received {seen} of {} records before {} ms passed without a new one",
                    a.max_messages.unwrap_or(0),
                    g.timeout_ms
                );
            }
            continue;
        };
        let msg = result.context("consume failed")?;
        print_record(&mut out, g.output, a, &msg)?;
        seen += 1;
        last_progress = Instant::now();
    }
    std::io::Write::flush(&mut out)?;
    Ok(())
}

fn print_record(
    out: &mut impl std::io::Write,
    format: Output,
    a: &ConsumeArgs,
    msg: &rdkafka::message::BorrowedMessage<'_>,
) -> anyhow::Result<()> {
    let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
    match format {
        Output::Json => {
            let headers = msg
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_string(), text(h.value)))
                        .collect()
                })
                .unwrap_or_default();
            let record = JsonRecord {
                topic: msg.topic(),
                partition: msg.partition(),
                offset: msg.offset(),
                timestamp: msg.timestamp().to_millis(),
                key: text(msg.key()),
                value: text(msg.payload()),
                headers,
            };
            writeln!(out, "{}", serde_json::to_string(&record)?)?;
        }
        Output::Table => {
            if a.print_key {
                out.write_all(msg.key().unwrap_or_default())?;
                out.write_all(a.key_separator.as_bytes())?;
            }
            out.write_all(msg.payload().unwrap_or_default())?;
            out.write_all(b"\n")?;
        }
    }
    Ok(())
}
