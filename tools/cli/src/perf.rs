//! `krait perf`: producer and consumer load tests printing throughput and latency.
//!
//! Produce latency is measured per record, from `send` to its delivery report, in an HDR
//! histogram; the figures are what a librdkafka application would see.

use krait_sync::MutexExt;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde::Serialize;

use crate::client::{Global, partitions};
use crate::output::print;
use crate::produce::{Acks, Compression};

mod e2e;

#[derive(Debug, Subcommand)]
pub enum PerfCommand {
    /// Produce fixed-size records as fast as allowed and report throughput and latency.
    Produce(ProducePerfArgs),
    /// Consume a topic from the beginning and report throughput.
    Consume(ConsumePerfArgs),
    /// Produce at a steady rate and consume at once: end-to-end latency percentiles.
    E2e(e2e::E2ePerfArgs),
}

#[derive(Debug, Args)]
pub struct ProducePerfArgs {
    #[arg(long)]
    pub topic: String,
    #[arg(long, default_value_t = 1_000_000)]
    pub num_records: u64,
    #[arg(long, default_value_t = 100)]
    pub record_size: usize,
    #[arg(long, value_enum, default_value_t = Acks::All)]
    pub acks: Acks,
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    #[arg(long, default_value_t = 1_000_000)]
    pub batch_size: u64,
    #[arg(long, value_enum, default_value_t = Compression::None)]
    pub compression: Compression,
    /// Cap in records/s; -1 for no cap.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub throughput: i64,
}

#[derive(Debug, Args)]
pub struct ConsumePerfArgs {
    #[arg(long)]
    pub topic: String,
    #[arg(long, default_value_t = 1_000_000)]
    pub num_records: u64,
    /// Consume as this group (subscribe) instead of assigning every partition.
    #[arg(long)]
    pub group: Option<String>,
}

pub fn run(g: &Global, command: PerfCommand) -> anyhow::Result<()> {
    match command {
        PerfCommand::Produce(a) => produce(g, &a),
        PerfCommand::Consume(a) => consume(g, &a),
        PerfCommand::E2e(a) => e2e::run(g, &a),
    }
}

/// Records latencies (microseconds since the run started are the delivery opaque).
struct Latencies {
    start: Instant,
    histogram: Mutex<Histogram<u64>>,
    failed: AtomicU64,
}

impl ClientContext for Latencies {}

impl ProducerContext for Latencies {
    type DeliveryOpaque = usize;
    fn delivery(&self, result: &DeliveryResult<'_>, sent_at_us: usize) {
        if result.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let now = self.start.elapsed().as_micros() as u64;
        let mut h = self.histogram.lock_unpoisoned();
        h.saturating_record(now.saturating_sub(sent_at_us as u64).max(1));
    }
}

#[derive(Debug, Serialize, PartialEq)]
pub struct ProduceReport {
    pub records: u64,
    pub elapsed_s: f64,
    pub records_per_sec: f64,
    pub mb_per_sec: f64,
    pub latency_avg_ms: f64,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_p999_ms: f64,
    pub latency_max_ms: f64,
}

/// Throughput and latency figures from a finished run.
pub fn produce_report(
    records: u64,
    record_size: usize,
    elapsed: Duration,
    h: &Histogram<u64>,
) -> ProduceReport {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let ms = |us: u64| us as f64 / 1000.0;
    ProduceReport {
        records,
        elapsed_s: secs,
        records_per_sec: records as f64 / secs,
        mb_per_sec: (records as f64 * record_size as f64) / secs / (1024.0 * 1024.0),
        latency_avg_ms: h.mean() / 1000.0,
        latency_p50_ms: ms(h.value_at_quantile(0.5)),
        latency_p99_ms: ms(h.value_at_quantile(0.99)),
        latency_p999_ms: ms(h.value_at_quantile(0.999)),
        latency_max_ms: ms(h.max()),
    }
}

fn bar(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} records {per_sec} eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}

fn produce(g: &Global, a: &ProducePerfArgs) -> anyhow::Result<()> {
    let context = Latencies {
        start: Instant::now(),
        histogram: Mutex::new(Histogram::new_with_bounds(1, 3_600_000_000, 3)?),
        failed: AtomicU64::new(0),
    };
    let producer: BaseProducer<Latencies> = g
        .config()
        .set("acks", a.acks.as_config())
        .set("linger.ms", a.linger_ms.to_string())
        .set("batch.size", a.batch_size.to_string())
        .set("compression.type", a.compression.as_config())
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("message.timeout.ms", g.timeout_ms.max(30_000).to_string())
        .create_with_context(context)
        .context("cannot create a producer")?;
    let payload = vec![b'x'; a.record_size];
    let progress = bar(a.num_records);
    let start = Instant::now();
    for i in 0..a.num_records {
        if a.throughput > 0 {
            pace(&producer, start, i, a.throughput as u64);
        }
        let sent_at = producer.context().start.elapsed().as_micros() as usize;
        let record = BaseRecord::with_opaque_to(&a.topic, sent_at).payload(&payload[..]);
        send(&producer, record)?;
        if i % 1000 == 0 {
            producer.poll(Duration::ZERO);
            progress.set_position(i);
        }
    }
    producer
        .flush(Duration::from_millis(g.timeout_ms.max(60_000)))
        .context("not every record was delivered in time")?;
    let elapsed = start.elapsed();
    progress.finish_and_clear();
    let failed = producer.context().failed.load(Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} of {} records failed", a.num_records);
    }
    let h = producer.context().histogram.lock_unpoisoned().clone();
    let report = produce_report(a.num_records, a.record_size, elapsed, &h);
    print(g.output, &report, |r| {
        format!(
            "{} records sent, {:.0} records/s ({:.2} MB/s), latency avg {:.2} ms, p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms, max {:.2} ms",
            r.records,
            r.records_per_sec,
            r.mb_per_sec,
            r.latency_avg_ms,
            r.latency_p50_ms,
            r.latency_p99_ms,
            r.latency_p999_ms,
            r.latency_max_ms
        )
    })
}

/// Sends `record`, serving delivery reports while librdkafka's queue is full.
fn send<C: ProducerContext>(
    producer: &BaseProducer<C>,
    mut record: BaseRecord<'_, [u8], [u8], C::DeliveryOpaque>,
) -> anyhow::Result<()> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((e, back))
                if e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) =>
            {
                producer.poll(Duration::from_millis(1));
                record = back;
            }
            Err((e, _)) => bail!("send failed: {e}"),
        }
    }
}

/// Holds the send loop to `rate` records/s, serving delivery reports while it waits. A wait
/// under a millisecond sleeps rather than polls (librdkafka's poll counts whole milliseconds,
/// so it would return at once and the loop would spin a core the broker needs on a small
/// machine); behind schedule, records go without waiting until the loop has caught up.
fn pace<C: ProducerContext>(producer: &BaseProducer<C>, start: Instant, sent: u64, rate: u64) {
    let due = start + Duration::from_secs_f64(sent as f64 / rate as f64);
    loop {
        let wait = due.saturating_duration_since(Instant::now());
        if wait.is_zero() {
            return;
        }
        if wait >= Duration::from_millis(1) {
            producer.poll(Duration::from_millis(1));
        } else {
            std::thread::sleep(wait);
        }
    }
}

#[derive(Debug, Serialize)]
struct ConsumeReport {
    records: u64,
    bytes: u64,
    elapsed_s: f64,
    records_per_sec: f64,
    mb_per_sec: f64,
}

fn consume(g: &Global, a: &ConsumePerfArgs) -> anyhow::Result<()> {
    let consumer: BaseConsumer = g
        .config()
        .set("group.id", a.group.as_deref().unwrap_or("krait-perf"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .set("queued.min.messages", "1000000")
        .create()
        .context("cannot create a consumer")?;
    if a.group.is_some() {
        consumer.subscribe(&[&a.topic])?;
    } else {
        let mut tpl = TopicPartitionList::new();
        for p in partitions(g, &consumer, &a.topic)? {
            tpl.add_partition_offset(&a.topic, p, Offset::Beginning)?;
        }
        consumer.assign(&tpl)?;
    }
    let progress = bar(a.num_records);
    let (mut records, mut bytes) = (0u64, 0u64);
    let start = Instant::now();
    let mut last_progress = Instant::now();
    while records < a.num_records {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                records += 1;
                bytes += m.payload_len() as u64;
                last_progress = Instant::now();
                if records % 10_000 == 0 {
                    progress.set_position(records);
                }
            }
            Some(Err(e)) => bail!("consume failed: {e}"),
            None if last_progress.elapsed() > g.timeout() => {
                bail!(
                    "consumed {records} of {} records before {} ms passed without one",
                    a.num_records,
                    g.timeout_ms
                )
            }
            None => {}
        }
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    progress.finish_and_clear();
    let report = ConsumeReport {
        records,
        bytes,
        elapsed_s: secs,
        records_per_sec: records as f64 / secs,
        mb_per_sec: bytes as f64 / secs / (1024.0 * 1024.0),
    };
    print(g.output, &report, |r| {
        format!(
            "{} records consumed in {:.2} s, {:.0} records/s ({:.2} MB/s)",
            r.records, r.elapsed_s, r.records_per_sec, r.mb_per_sec
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_turns_a_histogram_into_milliseconds_and_rates() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        for us in 1..=1000u64 {
            h.record(us * 10).unwrap(); // 10 us .. 10 ms
        }
        let r = produce_report(2_000, 100, Duration::from_secs(2), &h);
        assert_eq!(r.records_per_sec, 1_000.0);
        assert!((r.mb_per_sec - 100_000.0 / 1_048_576.0).abs() < 1e-9);
        assert!(
            (r.latency_p50_ms - 5.0).abs() < 0.01,
            "{}",
            r.latency_p50_ms
        );
        assert!(
            (r.latency_p99_ms - 9.9).abs() < 0.01,
            "{}",
            r.latency_p99_ms
        );
        assert!(r.latency_max_ms >= 9.99);
    }
}
