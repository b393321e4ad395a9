//! `krait produce`: one record per line of stdin, optionally `KEY<sep>VALUE`.

use krait_sync::MutexExt;
use std::io::BufRead;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use rdkafka::ClientContext;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};

use crate::client::{Global, parse_key_value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Acks {
    #[value(name = "0")]
    None,
    #[value(name = "1")]
    Leader,
    All,
}

impl Acks {
    pub fn as_config(self) -> &'static str {
        match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub fn as_config(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    pub topic: String,
    /// Split each line at the first SEP into key and value.
    #[arg(long)]
    pub key_separator: Option<String>,
    /// Send every record to this partition (default: the partitioner chooses by key).
    #[arg(long)]
    pub partition: Option<i32>,
    #[arg(long, value_enum, default_value_t = Acks::All)]
    pub acks: Acks,
    #[arg(long, value_enum, default_value_t = Compression::None)]
    pub compression: Compression,
    /// Header KEY=VALUE added to every record (repeatable).
    #[arg(short = 'H', long = "header", value_parser = parse_key_value)]
    pub headers: Vec<(String, String)>,
}

/// Counts delivery reports, keeping the first error to report it.
#[derive(Default)]
struct Deliveries {
    ok: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                self.first_error
                    .lock_unpoisoned()
                    .get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// Splits a line into key and value.
pub fn split_line<'a>(line: &'a str, separator: Option<&str>) -> (Option<&'a str>, &'a str) {
    match separator.and_then(|sep| line.split_once(sep)) {
        Some((k, v)) => (Some(k), v),
        None => (None, line),
    }
}

pub fn run(g: &Global, a: ProduceArgs) -> anyhow::Result<()> {
    let producer: BaseProducer<Deliveries> = g
        .config()
        .set("acks", a.acks.as_config())
        .set("compression.type", a.compression.as_config())
        .set("linger.ms", "5")
        .set("message.timeout.ms", g.timeout_ms.max(1000).to_string())
        .create_with_context(Deliveries::default())
        .context("cannot create a producer")?;
    let mut sent = 0u64;
    for line in std::io::stdin().lock().lines() {
        let line = line.context("cannot read stdin")?;
        let (key, value) = split_line(&line, a.key_separator.as_deref());
        let mut headers = OwnedHeaders::new();
        for (k, v) in &a.headers {
            headers = headers.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        let mut record = BaseRecord::<str, str>::to(&a.topic)
            .payload(value)
            .headers(headers);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(p) = a.partition {
            record = record.partition(p);
        }
        send(&producer, record)?;
        sent += 1;
    }
    producer
        .flush(g.timeout())
        .context("not every record was delivered in time")?;
    let ctx = producer.context();
    let failed = ctx.failed.load(Ordering::Relaxed);
    if failed > 0 {
        let first = ctx
            .first_error
            .lock_unpoisoned()
            .clone()
            .unwrap_or_default();
        bail!("{failed} of {sent} records failed; first error: {first}");
    }
    eprintln!("Produced {} records.", ctx.ok.load(Ordering::Relaxed));
    Ok(())
}

/// Sends, waiting for queue space when librdkafka's buffer is full.
fn send<'a, C: ProducerContext<DeliveryOpaque = ()>>(
    producer: &BaseProducer<C>,
    mut record: BaseRecord<'a, str, str>,
) -> anyhow::Result<()> {
    loop {
        match producer.send(record) {
            Ok(()) => {
                producer.poll(std::time::Duration::ZERO);
                return Ok(());
            }
            Err((e, back))
                if e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) =>
            {
                producer.poll(std::time::Duration::from_millis(10));
                record = back;
            }
            Err((e, _)) => bail!("cannot send: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_at_the_first_separator() {
        assert_eq!(split_line("k1:v:1", Some(":")), (Some("k1"), "v:1"));
        assert_eq!(split_line("no-sep", Some(":")), (None, "no-sep"));
        assert_eq!(split_line("k:v", None), (None, "k:v"));
        assert_eq!(split_line(":v", Some(":")), (Some(""), "v"));
    }
}
