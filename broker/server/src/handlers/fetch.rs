//! Fetch: return stored batches from each requested partition, long-polling until `min_bytes`
//! are available or `max_wait_ms` passes.
//!
//! Waiting subscribes to each partition's high watermark *before* the first read, so an
//! append between the read and the wait still wakes the request. Byte limits follow KIP-74:
//! the first batch of the response is returned whole even when it exceeds a limit, so a
//! consumer can always make progress; later batches are included only when they fit. The
//! response is bounded by the broker's `fetch.max.bytes` whatever the client asks for, and a
//! partition named twice is read once, as Kafka's fetch sessions key partitions by name.
//!
//! Fetch from follower (KIP-392): from v11 a follower serves consumers below its own high
//! watermark, and with `--replica-selector rack-aware` the leader answers a consumer that gave
//! its `client.rack` with no records and the in-sync replica in that rack to read from instead
//! (`preferred_read_replica`), unless the leader is in that rack itself.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use futures_util::future::select_all;
use krait_acl::{Operation, ResourceType};
use krait_image::ClusterImage;
use krait_protocol::batch::BatchHeader;
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::ProducerId;
use krait_protocol::kafka_protocol::messages::fetch_request::FetchPartition;
use krait_protocol::kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use krait_protocol::kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, TopicName};
use krait_storage::StorageError;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::broker::Broker;
use crate::config::ReplicaSelector;
use crate::context::RequestContext;
use crate::metrics::{Purgatory, PurgatoryGuard};
use crate::topics::{Partition, Topic};

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 4..=12;

/// Consumers with isolation READ_COMMITTED read below the last stable offset and get the list of
/// aborted transactions among what they read (even if empty).
const READ_COMMITTED: i8 = 1;

struct Target {
    topic: TopicName,
    /// `None` for a partition this broker does not have, or that the client may not read.
    partition: Option<Arc<Partition>>,
    /// READ on the topic is missing.
    unauthorized: bool,
    request: FetchPartition,
}

/// Fetch v11 added the consumer's rack and the preferred read replica (KIP-392); from it on, a
/// follower serves consumers too, as Kafka's brokers do for clients that send their metadata.
const FOLLOWER_READS_FROM: i16 = 11;

/// How a request's partitions are read: from followers too, and whether to send the consumer
/// to a replica in its rack.
struct Reads {
    followers_serve: bool,
    /// The consumer's rack and the cluster image (for the brokers' racks), when this broker
    /// selects replicas by rack and the consumer gave one.
    by_rack: Option<(String, Arc<ClusterImage>)>,
}

pub async fn handle(ctx: &RequestContext<'_>, request: FetchRequest) -> FetchResponse {
    let broker = ctx.broker;
    let targets = resolve(ctx, &request);
    let cap = broker.config.fetch_max_bytes;
    let followers_serve = ctx.api_version >= FOLLOWER_READS_FROM;
    let reads = Reads {
        followers_serve,
        by_rack: (followers_serve
            && broker.config.replica_selector == ReplicaSelector::RackAware
            && !request.rack_id.is_empty())
        .then(|| (request.rack_id.to_string(), broker.cluster.image())),
    };
    let (response, waited) = long_poll(targets, &request, &reads, cap, broker).await;
    if let Some(waited) = waited {
        broker.metrics.waited(ApiKey::Fetch, waited);
    }
    for t in &response.responses {
        let bytes = t
            .partitions
            .iter()
            .map(|p| p.records.as_ref().map_or(0, Bytes::len))
            .sum();
        broker.metrics.fetched(&t.topic.0, bytes);
    }
    response
}

/// Reads until `min.bytes` are there or `max.wait.ms` has passed; returns the answer and how
/// long it waited for data, if it did.
async fn long_poll(
    targets: Vec<Target>,
    request: &FetchRequest,
    reads: &Reads,
    cap: usize,
    broker: &Broker,
) -> (FetchResponse, Option<Duration>) {
    let deadline = Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let mut watchers: Vec<watch::Receiver<i64>> = targets
        .iter()
        .filter_map(|t| t.partition.as_ref())
        .map(|p| p.subscribe())
        .collect();
    let min_bytes = request.min_bytes.max(0) as usize;
    let mut waiting: Option<(Instant, PurgatoryGuard)> = None;
    let waited = |w: Option<(Instant, PurgatoryGuard)>| w.map(|(since, _)| since.elapsed());
    let want = wanted(&targets, request, cap);
    loop {
        let (response, bytes, errors) =
            read_within_memory(&targets, request, reads, want, deadline, broker).await;
        if bytes >= min_bytes || errors || watchers.is_empty() || Instant::now() >= deadline {
            return (response, waited(waiting));
        }
        if waiting.is_none() {
            waiting = Some((
                Instant::now(),
                broker.metrics.in_purgatory(Purgatory::Fetch),
            ));
        }
        let changed = select_all(watchers.iter_mut().map(|w| Box::pin(w.changed())));
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            let (response, _, _) =
                read_within_memory(&targets, request, reads, want, deadline, broker).await;
            return (response, waited(waiting));
        }
        // Mark every watcher seen so the next wait is for a newer append.
        watchers.iter_mut().for_each(|w| {
            w.borrow_and_update();
        });
    }
}

/// The most a read of `targets` can return: the request's and the broker's limit, or the sum of
/// its partitions' limits when that is less (a consumer of one partition asks for 50 MiB and
/// can get 1 MiB).
fn wanted(targets: &[Target], request: &FetchRequest, cap: usize) -> usize {
    let asked = match request.max_bytes {
        n if n > 0 => (n as usize).min(cap),
        _ => cap,
    };
    let partitions: usize = targets
        .iter()
        .filter(|t| t.partition.is_some())
        .map(|t| t.request.partition_max_bytes.max(1) as usize)
        .fold(0, usize::saturating_add);
    asked.min(partitions)
}

/// Reads every target within the room `fetch.memory.max.bytes` has free (waiting for some until
/// `deadline`); the records returned hold their room until they are dropped.
async fn read_within_memory(
    targets: &[Target],
    request: &FetchRequest,
    reads: &Reads,
    want: usize,
    deadline: Instant,
    broker: &Broker,
) -> (FetchResponse, usize, bool) {
    let mut grant = broker.fetch_memory.take(want, deadline).await;
    let room = grant.bytes();
    let (mut response, bytes, errors) =
        krait_sync::blocking(|| read_all(targets, request, reads, room));
    for data in response
        .responses
        .iter_mut()
        .flat_map(|t| t.partitions.iter_mut())
    {
        if let Some(records) = data.records.take() {
            data.records = Some(grant.hold(records));
        }
    }
    (response, bytes, errors)
}

fn resolve(ctx: &RequestContext<'_>, request: &FetchRequest) -> Vec<Target> {
    let mut targets = Vec::new();
    let mut named = std::collections::HashSet::new();
    for t in &request.topics {
        let unauthorized = !ctx.authorized(Operation::Read, ResourceType::Topic, &t.topic.0);
        let topic: Option<Arc<Topic>> = ctx.broker.topics.get(&t.topic.0).filter(|_| !unauthorized);
        for p in &t.partitions {
            if !named.insert((&t.topic.0, p.partition)) {
                continue;
            }
            let partition = topic
                .as_ref()
                .and_then(|topic| topic.partition(p.partition).cloned());
            targets.push(Target {
                topic: t.topic.clone(),
                partition,
                unauthorized,
                request: p.clone(),
            });
        }
    }
    targets
}

/// Reads every target once. Returns the response, the bytes in it, and whether any partition
/// answered with an error (which ends a long poll at once, as in Kafka).
fn read_all(
    targets: &[Target],
    request: &FetchRequest,
    reads: &Reads,
    cap: usize,
) -> (FetchResponse, usize, bool) {
    let mut response = FetchResponse::default();
    let mut remaining = match request.max_bytes {
        n if n > 0 => (n as usize).min(cap),
        _ => cap,
    };
    let mut total = 0usize;
    let mut errors = false;
    for target in targets {
        let limit = (target.request.partition_max_bytes.max(1) as usize).min(remaining);
        let first = total == 0;
        let mut data = read_one(
            target,
            request.isolation_level,
            reads,
            if !first && remaining == 0 { 0 } else { limit },
        );
        // Only the first batch of the response may exceed a limit (KIP-74); the log returns at
        // least one batch, so a later partition keeps only the whole batches that fit.
        if !first && let Some(records) = &mut data.records {
            *records = whole_batches_within(records, limit);
        }
        let size = data.records.as_ref().map_or(0, |r| r.len());
        total += size;
        remaining = remaining.saturating_sub(size);
        errors |= data.error_code != 0;
        push(&mut response, &target.topic, data);
    }
    (response, total, errors)
}

/// The longest run of whole record batches at the start of `records` that fits in `limit`
/// bytes (stored batches, so their headers are sound).
fn whole_batches_within(records: &Bytes, limit: usize) -> Bytes {
    let limit = limit.min(records.len());
    let mut end = 0;
    while let Ok(header) = BatchHeader::parse(&records[end..]) {
        match end.checked_add(header.total_size()) {
            Some(next) if next <= limit => end = next,
            _ => break,
        }
    }
    records.slice(..end)
}

fn push(response: &mut FetchResponse, topic: &TopicName, data: PartitionData) {
    match response.responses.last_mut() {
        Some(last) if last.topic == *topic => last.partitions.push(data),
        _ => {
            let mut t = FetchableTopicResponse::default();
            t.topic = topic.clone();
            t.partitions.push(data);
            response.responses.push(t);
        }
    }
}

fn read_one(
    target: &Target,
    isolation_level: i8,
    reads: &Reads,
    max_bytes: usize,
) -> PartitionData {
    let mut data = PartitionData::default();
    data.partition_index = target.request.partition;
    data.aborted_transactions = (isolation_level == READ_COMMITTED).then(Vec::new);
    let Some(partition) = &target.partition else {
        data.error_code = if target.unauthorized {
            ResponseError::TopicAuthorizationFailed.code()
        } else {
            ResponseError::UnknownTopicOrPartition.code()
        };
        return data;
    };
    let epoch = target.request.current_leader_epoch;
    let leads = if reads.followers_serve {
        partition.read_role(epoch)
    } else {
        partition.lead_epoch(epoch).map(|_| true)
    };
    let leads = match leads {
        Ok(leads) => leads,
        Err(error) => {
            data.error_code = error.code();
            return data;
        }
    };
    let offsets = partition.log().offsets();
    data.high_watermark = offsets.high_watermark;
    data.last_stable_offset = partition.log().last_stable_offset();
    data.log_start_offset = offsets.log_start_offset;
    if leads && let Some((rack, image)) = &reads.by_rack {
        let rack_of = |id| image.brokers.get(&id).and_then(|b| b.rack.as_deref());
        if let Some(replica) =
            partition
                .replica
                .preferred_read_replica(rack, target.request.fetch_offset, rack_of)
        {
            // No records: the consumer reads from there next (KIP-392).
            data.preferred_read_replica = replica.into();
            return data;
        }
    }
    if max_bytes == 0 {
        return data;
    }
    let read = if isolation_level == READ_COMMITTED {
        read_committed(partition, target.request.fetch_offset, max_bytes, &mut data)
    } else {
        partition.log().read(target.request.fetch_offset, max_bytes)
    };
    match read {
        Ok(read) => {
            data.high_watermark = read.offsets.high_watermark;
            data.log_start_offset = read.offsets.log_start_offset;
            data.records = Some(read.records);
        }
        Err(StorageError::OffsetOutOfRange { .. }) => {
            data.error_code = ResponseError::OffsetOutOfRange.code()
        }
        Err(e) => {
            tracing::warn!(topic = %target.topic.0, partition = target.request.partition, error = %e, "read failed");
            data.error_code = ResponseError::KafkaStorageError.code();
        }
    }
    data
}

/// A read-committed read: below the last stable offset, with the aborted transactions among the
/// records returned (the consumer drops their records).
fn read_committed(
    partition: &Partition,
    offset: i64,
    max_bytes: usize,
    data: &mut PartitionData,
) -> Result<krait_storage::ReadResult, StorageError> {
    let committed = partition.log().read_committed(offset, max_bytes)?;
    data.last_stable_offset = committed.last_stable_offset;
    data.aborted_transactions = Some(
        committed
            .aborted
            .iter()
            .map(|a| {
                let mut t = AbortedTransaction::default();
                t.producer_id = ProducerId(a.producer_id);
                t.first_offset = a.first_offset;
                t
            })
            .collect(),
    );
    Ok(committed.read)
}
