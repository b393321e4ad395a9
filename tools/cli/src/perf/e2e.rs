//! `krait perf e2e`: end-to-end latency at a steady rate, producer and consumer in one process.
//!
//! Each record carries the moment it was handed to the producer (microseconds since the run
//! began, the first 8 bytes, big-endian); a consumer thread reads the partition from where it
//! ended before the run and records how long each record took to reach it. One clock, one
//! process, and librdkafka's own threads on both sides: the figure is the broker's and the
//! client library's, not an interpreter's. Records sent during the warm-up are not counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use hdrhistogram::Histogram;
use krait_sync::MutexExt;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use super::{Latencies, pace, send};
use crate::client::Global;
use crate::output::print;
use crate::produce::Acks;

/// Bytes of the send stamp at the start of every record.
const STAMP: usize = 8;

#[derive(Debug, Args)]
pub struct E2ePerfArgs {
    #[arg(long)]
    pub topic: String,
    /// Records per second, held steady for the whole run.
    #[arg(long)]
    pub rate: u64,
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Leading seconds whose records are not counted (connections, fetch sessions warming up).
    #[arg(long, default_value_t = 1.0)]
    pub warmup_seconds: f64,
    /// At least 8: the send stamp.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(STAMP as u64..))]
    pub record_size: u64,
    #[arg(long, value_enum, default_value_t = Acks::All)]
    pub acks: Acks,
    #[arg(long, default_value_t = 1)]
    pub linger_ms: u64,
    /// The partition written and read.
    #[arg(long, default_value_t = 0)]
    pub partition: i32,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct E2eReport {
    pub target_rate: u64,
    pub achieved_rate: u64,
    pub records: u64,
    /// Records sent after the warm-up, each counted once it reached the consumer.
    pub measured: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// Send to delivery report (the produce acknowledgement), over every record.
    pub ack_p50_ms: f64,
    pub ack_p99_ms: f64,
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 3_600_000_000, 3)?)
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// The payload of a record stamped `sent_us`, `size` bytes long.
fn stamped(sent_us: u64, pad: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(STAMP + pad.len());
    v.extend_from_slice(&sent_us.to_be_bytes());
    v.extend_from_slice(pad);
    v
}

/// The stamp of a record, if it carries one.
fn stamp(payload: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(payload.get(..STAMP)?.try_into().ok()?))
}

/// What the consumer thread saw: records with a stamp, and the latencies of those sent after
/// the warm-up.
struct Received {
    records: u64,
    latencies: Histogram<u64>,
}

pub fn run(g: &Global, a: &E2ePerfArgs) -> anyhow::Result<()> {
    if a.rate == 0 || a.seconds <= 0.0 {
        bail!("--rate and --seconds must be positive");
    }
    let records = ((a.rate as f64 * a.seconds).round() as u64).max(1);
    let start = Instant::now();
    let warmup_us = (a.warmup_seconds.max(0.0) * 1e6) as u64;

    let consumer: BaseConsumer = g
        .config()
        .set("group.id", "krait-perf-e2e")
        .set("enable.auto.commit", "false")
        .create()
        .context("cannot create a consumer")?;
    // From the partition's end before the run, by offset: nothing produced later is missed,
    // however long the consumer takes to start fetching.
    let (_, end) = consumer
        .fetch_watermarks(&a.topic, a.partition, g.timeout())
        .with_context(|| format!("cannot read the end of {}/{}", a.topic, a.partition))?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&a.topic, a.partition, Offset::Offset(end))?;
    consumer.assign(&tpl)?;

    let expected = Arc::new(AtomicU64::new(u64::MAX));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (expected, stop) = (expected.clone(), stop.clone());
        let idle = g.timeout().max(Duration::from_secs(30));
        thread::spawn(move || -> anyhow::Result<Received> {
            let mut got = Received {
                records: 0,
                latencies: histogram()?,
            };
            let mut last = Instant::now();
            while got.records < expected.load(Ordering::Acquire) && !stop.load(Ordering::Acquire) {
                match consumer.poll(Duration::from_millis(100)) {
                    Some(Ok(m)) => {
                        let now = start.elapsed().as_micros() as u64;
                        let Some(sent) = m.payload().and_then(stamp) else {
                            continue;
                        };
                        got.records += 1;
                        last = Instant::now();
                        if sent >= warmup_us {
                            got.latencies
                                .saturating_record(now.saturating_sub(sent).max(1));
                        }
                    }
                    Some(Err(e)) => bail!("consume failed: {e}"),
                    None if last.elapsed() > idle => bail!(
                        "{} records consumed, then none for {} s",
                        got.records,
                        idle.as_secs()
                    ),
                    None => {}
                }
            }
            Ok(got)
        })
    };

    let produced = produce(g, a, records, start);
    match &produced {
        Ok(_) => expected.store(records, Ordering::Release),
        Err(_) => stop.store(true, Ordering::Release),
    }
    let received = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the consumer thread panicked"))??;
    let (achieved, acks) = produced?;
    if received.records < records {
        bail!(
            "{} of {records} records reached the consumer",
            received.records
        );
    }
    let h = &received.latencies;
    let report = E2eReport {
        target_rate: a.rate,
        achieved_rate: achieved.round() as u64,
        records,
        measured: h.len(),
        p50_ms: ms(h.value_at_quantile(0.5)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        p999_ms: ms(h.value_at_quantile(0.999)),
        max_ms: ms(h.max()),
        ack_p50_ms: ms(acks.value_at_quantile(0.5)),
        ack_p99_ms: ms(acks.value_at_quantile(0.99)),
    };
    print(g.output, &report, |r| {
        format!(
            "{} records at {} records/s (asked {}): end to end p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms, max {:.2} ms ({} measured); acknowledged p50 {:.2} ms, p99 {:.2} ms",
            r.records,
            r.achieved_rate,
            r.target_rate,
            r.p50_ms,
            r.p99_ms,
            r.p999_ms,
            r.max_ms,
            r.measured,
            r.ack_p50_ms,
            r.ack_p99_ms
        )
    })
}

/// Sends `records` stamped records to the partition at `a.rate`, then waits for every delivery
/// report: the rate achieved and the acknowledgement latencies.
fn produce(
    g: &Global,
    a: &E2ePerfArgs,
    records: u64,
    start: Instant,
) -> anyhow::Result<(f64, Histogram<u64>)> {
    let context = Latencies {
        start,
        histogram: std::sync::Mutex::new(histogram()?),
        failed: AtomicU64::new(0),
    };
    let producer: BaseProducer<Latencies> = g
        .config()
        .set("acks", a.acks.as_config())
        .set("linger.ms", a.linger_ms.to_string())
        .set("enable.idempotence", "false")
        .set("queue.buffering.max.messages", "1000000")
        .set("message.timeout.ms", g.timeout_ms.max(30_000).to_string())
        .create_with_context(context)
        .context("cannot create a producer")?;
    let pad = vec![b'x'; a.record_size as usize - STAMP];
    let begun = Instant::now();
    for i in 0..records {
        pace(&producer, begun, i, a.rate);
        let sent_us = start.elapsed().as_micros() as u64;
        let payload = stamped(sent_us, &pad);
        let record = BaseRecord::with_opaque_to(&a.topic, sent_us as usize)
            .partition(a.partition)
            .payload(&payload[..]);
        send(&producer, record)?;
        if i % 1000 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    let achieved = records as f64 / begun.elapsed().as_secs_f64().max(1e-9);
    producer
        .flush(Duration::from_millis(g.timeout_ms.max(60_000)))
        .context("not every record was delivered in time")?;
    let failed = producer.context().failed.load(Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} of {records} records failed");
    }
    let acks = producer.context().histogram.lock_unpoisoned().clone();
    Ok((achieved, acks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_carries_its_send_stamp_first_and_is_as_long_as_asked() {
        let v = stamped(1_234_567, &[b'x'; 92]);
        assert_eq!(v.len(), 100);
        assert_eq!(stamp(&v), Some(1_234_567));
        assert_eq!(stamp(b"short"), None);
    }
}
