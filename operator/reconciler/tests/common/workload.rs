//! A producer and a consumer running against a real cluster throughout a test, with the audit
//! that no acknowledged record was lost, and a watcher of the smallest ISR the cluster reports.
//! Real clients: librdkafka through the `rdkafka` crate, the admin protocol through
//! `krait-admin`. Every loop stops by a flag or a deadline.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

/// (partition, offset) -> sequence number of the record stored there.
type Log = BTreeMap<(i32, i64), u64>;

struct Acks(Arc<Mutex<Log>>);

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = Box<u64>;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: Box<u64>) {
        if let Ok(m) = result {
            self.0
                .lock()
                .unwrap()
                .insert((m.partition(), m.offset()), *seq);
        }
    }
}

/// What the audit found.
#[derive(Debug)]
pub struct Audit {
    pub acknowledged: usize,
    pub read: usize,
    /// Acknowledged records not read back where they were acknowledged.
    pub lost: usize,
    /// Sequence numbers read more than once.
    pub duplicates: usize,
    /// The first few lost records: where each was acknowledged, and what was read there.
    pub lost_examples: Vec<String>,
    /// Per partition: the highest offset acknowledged and the highest read.
    pub ends: BTreeMap<i32, (i64, i64)>,
}

pub struct Workload {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Log>>,
    read: Arc<Mutex<Log>>,
    producer: Option<JoinHandle<()>>,
    consumer: Option<JoinHandle<()>>,
    consumer_stop: Arc<AtomicBool>,
}

impl Workload {
    /// An idempotent acks=all producer (about `rate` records/s) and a consumer reading every
    /// partition of `topic` from the beginning, both on `bootstrap`.
    pub fn start(bootstrap: &str, topic: &str, partitions: i32, rate: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let consumer_stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Log::new()));
        let read = Arc::new(Mutex::new(Log::new()));
        let producer = {
            let (stop, acked) = (stop.clone(), acked.clone());
            let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
            std::thread::spawn(move || produce(&bootstrap, &topic, rate, &stop, acked))
        };
        let consumer = {
            let (stop, read) = (consumer_stop.clone(), read.clone());
            let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
            std::thread::spawn(move || consume(&bootstrap, &topic, partitions, &stop, read))
        };
        Self {
            stop,
            acked,
            read,
            producer: Some(producer),
            consumer: Some(consumer),
            consumer_stop,
        }
    }

    pub fn acknowledged(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Stops producing, waits (up to `timeout`) for the consumer to read every acknowledged
    /// record, and audits.
    pub fn finish(mut self, timeout: Duration) -> Audit {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(p) = self.producer.take() {
            p.join().expect("the producer thread");
        }
        let acked = self.acked.lock().unwrap().clone();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let read = self.read.lock().unwrap();
            if acked.iter().all(|(at, seq)| read.get(at) == Some(seq)) {
                break;
            }
            drop(read);
            std::thread::sleep(Duration::from_millis(200));
        }
        self.consumer_stop.store(true, Ordering::SeqCst);
        if let Some(c) = self.consumer.take() {
            c.join().expect("the consumer thread");
        }
        let read = self.read.lock().unwrap();
        let missing: Vec<_> = acked
            .iter()
            .filter(|(at, seq)| read.get(at) != Some(seq))
            .collect();
        let lost = missing.len();
        let lost_examples = missing
            .iter()
            .take(20)
            .map(|((p, o), seq)| {
                format!("{p}@{o}: acked seq {seq}, read {:?}", read.get(&(*p, *o)))
            })
            .collect();
        let mut ends: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
        for &(p, o) in acked.keys() {
            let e = ends.entry(p).or_insert((-1, -1));
            e.0 = e.0.max(o);
        }
        for &(p, o) in read.keys() {
            let e = ends.entry(p).or_insert((-1, -1));
            e.1 = e.1.max(o);
        }
        let mut seen = BTreeSet::new();
        let duplicates = read.values().filter(|seq| !seen.insert(**seq)).count();
        Audit {
            acknowledged: acked.len(),
            read: read.len(),
            lost,
            duplicates,
            lost_examples,
            ends,
        }
    }
}

fn produce(bootstrap: &str, topic: &str, rate: u64, stop: &AtomicBool, acked: Arc<Mutex<Log>>) {
    let producer: ThreadedProducer<Acks> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        // Long enough to ride out every fault the test makes: a record fails only if the
        // cluster is down for this long.
        .set("message.timeout.ms", "120000")
        .set("log_level", "3")
        .create_with_context(Acks(acked))
        .expect("a producer");
    let pause = Duration::from_micros(1_000_000 / rate.max(1));
    let mut seq: u64 = 0;
    while !stop.load(Ordering::SeqCst) {
        let key = seq.to_string();
        let record = BaseRecord::with_opaque_to(topic, Box::new(seq))
            .key(&key)
            .payload(&key);
        match producer.send(record) {
            Ok(()) => seq += 1,
            // Queue full: let deliveries drain.
            Err((_, _)) => std::thread::sleep(Duration::from_millis(10)),
        }
        std::thread::sleep(pause);
    }
    let _ = producer.flush(Duration::from_secs(120));
}

fn consume(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    stop: &AtomicBool,
    read: Arc<Mutex<Log>>,
) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "scaling-audit")
        .set("enable.auto.commit", "false")
        // An out-of-range answer must show as an error, not as a silent jump to the end that
        // the audit would then count as lost records.
        .set("auto.offset.reset", "error")
        .set("log_level", "3")
        .create()
        .expect("a consumer");
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).expect("assign");
    while !stop.load(Ordering::SeqCst) {
        let polled = consumer.poll(Duration::from_millis(100));
        if let Some(Err(e)) = &polled {
            eprintln!("audit consumer: {e}");
        }
        if let Some(Ok(m)) = polled {
            let seq = m
                .payload()
                .and_then(|p| std::str::from_utf8(p).ok())
                .and_then(|s| s.parse().ok());
            if let Some(seq) = seq {
                read.lock()
                    .unwrap()
                    .insert((m.partition(), m.offset()), seq);
            }
        }
    }
}

/// Samples the ISR of every partition of `topic` until stopped, keeping the smallest seen.
pub struct IsrWatch {
    stop: Arc<AtomicBool>,
    smallest: Arc<Mutex<BTreeMap<i32, usize>>>,
    handle: Option<JoinHandle<usize>>,
}

impl IsrWatch {
    pub fn start(bootstrap: Vec<String>, topic: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let smallest = Arc::new(Mutex::new(BTreeMap::new()));
        let handle = {
            let (stop, smallest, topic) = (stop.clone(), smallest.clone(), topic.to_string());
            std::thread::spawn(move || {
                let mut samples = 0;
                while !stop.load(Ordering::SeqCst) {
                    let sample =
                        krait_admin::Admin::connect(&bootstrap.join(","), Duration::from_secs(2))
                            .and_then(|mut a| a.metadata(Some(std::slice::from_ref(&topic))));
                    if let Ok(md) = sample {
                        samples += 1;
                        let mut smallest = smallest.lock().unwrap();
                        for p in md.topics.iter().flat_map(|t| &t.partitions) {
                            let s = smallest.entry(p.partition).or_insert(usize::MAX);
                            *s = (*s).min(p.isr.len());
                        }
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                samples
            })
        };
        Self {
            stop,
            smallest,
            handle: Some(handle),
        }
    }

    /// Stops and returns (samples taken, smallest ISR size per partition).
    pub fn finish(mut self) -> (usize, BTreeMap<i32, usize>) {
        self.stop.store(true, Ordering::SeqCst);
        let samples = self.handle.take().unwrap().join().unwrap();
        (samples, self.smallest.lock().unwrap().clone())
    }
}
