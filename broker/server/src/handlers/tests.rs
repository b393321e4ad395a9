//! Handler specifications against a real broker (its metadata quorum, topics and groups) on an
//! in-memory store: each response is checked for content and encoded at every version the
//! broker advertises. Storage itself is specified, on both engines, in `krait-storage`.

use std::sync::{Arc, LazyLock};

use bytes::{Bytes, BytesMut};
use clap::Parser;
use krait_protocol::frame::encode_response;
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::*;
use krait_protocol::kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};
use krait_protocol::testing::TestBatch;
use krait_storage::{Store, StoreOptions};

use crate::broker::Broker;
use crate::config::BrokerConfig;
use crate::context::{Connection, RequestContext};

pub(super) async fn broker(dir: &tempfile::TempDir) -> Arc<Broker> {
    let config =
        BrokerConfig::parse_from(["krait-broker", "--data-dir", dir.path().to_str().unwrap()]);
    ready(config).await
}

/// Starts a broker alone, on an in-memory store, and waits until it has registered with itself
/// as controller.
pub(super) async fn ready(config: BrokerConfig) -> Arc<Broker> {
    let advertised = config.validate().unwrap();
    let store = Store::in_memory(StoreOptions::default());
    let listeners = config.listeners(&advertised).unwrap();
    let b = Broker::start(config, advertised, listeners, store, None)
        .await
        .unwrap();
    assert!(b.wait_ready(std::time::Duration::from_secs(20)).await);
    b
}

pub(super) fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// The connection every handler test's requests come in on: a client at 127.0.0.1 on the
/// internal listener, unauthenticated.
static TEST_CONNECTION: LazyLock<Connection> = LazyLock::new(|| {
    let plaintext = BrokerConfig::parse_from(["krait-broker"]);
    let primary = plaintext.listeners(&plaintext.validate().unwrap()).unwrap();
    Connection::accepted(([127, 0, 0, 1], 40000).into(), Arc::new(primary[0].clone()))
});

/// A request at `version` from client id `test` on `TEST_CONNECTION`.
pub(super) fn ctx(b: &Broker, version: i16) -> RequestContext<'_> {
    RequestContext {
        broker: b,
        api_version: version,
        correlation_id: 1,
        client_id: "test",
        connection: &TEST_CONNECTION,
    }
}

pub(super) fn range(key: ApiKey) -> std::ops::RangeInclusive<i16> {
    let a = super::SERVED.iter().find(|a| a.key == key).unwrap();
    a.min..=a.max
}

/// Encodes `response` at every version `key` is served at, as the dispatch does (legacy
/// versions included).
pub(super) fn encodes_at_every_version<R: Encodable + HeaderVersion + 'static>(
    key: ApiKey,
    response: &R,
) {
    for v in range(key) {
        encode_response(1, v, response).unwrap_or_else(|e| panic!("{key:?} v{v}: {e}"));
    }
}

/// Registers broker `id` as fenced (registered, never heartbeating), with a client address of
/// `10.0.0.<id>:9092` and rack `r<id>`, and waits until `b` has applied it.
pub(super) async fn register_fenced_broker(b: &Broker, id: i32) {
    let registration = krait_image::BrokerRegistration {
        id,
        rack: Some(format!("r{id}")),
        kafka_host: format!("10.0.0.{id}"),
        kafka_port: 9092,
        // No cluster address: nothing tries to reach it.
        cluster_address: String::new(),
        listeners: Default::default(),
        incarnation: uuid::Uuid::new_v4(),
        directory: None,
        fenced: true,
    };
    b.cluster
        .change(
            krait_image::MetadataRecord::RegisterBroker(registration),
            |image| image.brokers.get(&id).is_some_and(|r| r.fenced),
        )
        .await
        .unwrap();
}

pub(super) fn batch(values: &[&str], first_ts: i64) -> Bytes {
    producer_batch(values, first_ts, -1, -1, 0)
}

/// A batch of `values`; with a producer id ≥ 0, from that idempotent producer.
fn producer_batch(
    values: &[&str],
    first_ts: i64,
    producer_id: i64,
    producer_epoch: i16,
    first_seq: i32,
) -> Bytes {
    let batch = TestBatch::of(values.iter().map(|v| v.to_string())).first_timestamp(first_ts);
    if producer_id >= 0 {
        return batch
            .idempotent(producer_id, producer_epoch, first_seq)
            .encode();
    }
    batch.encode()
}

fn create_request(
    topic: &str,
    partitions: i32,
    rf: i16,
    configs: &[(&str, &str)],
) -> CreateTopicsRequest {
    let mut t = create_topics_request::CreatableTopic::default();
    t.name = name(topic);
    t.num_partitions = partitions;
    t.replication_factor = rf;
    t.configs = configs
        .iter()
        .map(|(k, v)| {
            let mut c = create_topics_request::CreatableTopicConfig::default();
            c.name = StrBytes::from_string(k.to_string());
            c.value = Some(StrBytes::from_string(v.to_string()));
            c
        })
        .collect();
    let mut r = CreateTopicsRequest::default();
    r.topics = vec![t];
    r
}

pub(super) fn produce_request(
    topic: &str,
    partition: i32,
    records: Bytes,
    acks: i16,
) -> ProduceRequest {
    let mut p = produce_request::PartitionProduceData::default();
    p.index = partition;
    p.records = Some(records);
    let mut t = produce_request::TopicProduceData::default();
    t.name = name(topic);
    t.partition_data = vec![p];
    let mut r = ProduceRequest::default();
    r.acks = acks;
    r.timeout_ms = 1000;
    r.topic_data = vec![t];
    r
}

pub(super) fn fetch_request(
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
    min_bytes: i32,
) -> FetchRequest {
    let mut p = fetch_request::FetchPartition::default();
    p.partition = partition;
    p.fetch_offset = offset;
    p.partition_max_bytes = 1 << 20;
    let mut t = fetch_request::FetchTopic::default();
    t.topic = name(topic);
    t.partitions = vec![p];
    let mut r = FetchRequest::default();
    r.replica_id = BrokerId(-1);
    r.max_wait_ms = max_wait_ms;
    r.min_bytes = min_bytes;
    r.max_bytes = 50 << 20;
    r.topics = vec![t];
    r
}

pub(super) async fn create(b: &Broker, topic: &str, partitions: i32) {
    let r =
        super::create_topics::handle(&ctx(b, 7), create_request(topic, partitions, 1, &[])).await;
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
}

#[tokio::test]
async fn create_topics_refuses_bad_requests_with_kafka_codes() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    create(&b, "t", 3).await;
    let cases = [
        (
            create_request("t", 1, 1, &[]),
            ResponseError::TopicAlreadyExists,
        ),
        (
            create_request("rf3", 1, 3, &[]),
            ResponseError::InvalidReplicationFactor,
        ),
        (
            create_request("zero", 0, 1, &[]),
            ResponseError::InvalidPartitions,
        ),
        (
            create_request("bad name", 1, 1, &[]),
            ResponseError::InvalidTopicException,
        ),
        (
            create_request("cfg", 1, 1, &[("no.such.config", "1")]),
            ResponseError::InvalidConfig,
        ),
        (
            create_request("cfg2", 1, 1, &[("retention.ms", "soon")]),
            ResponseError::InvalidConfig,
        ),
    ];
    for (request, expected) in cases {
        let r = super::create_topics::handle(&ctx(&b, 7), request).await;
        assert_eq!(
            r.topics[0].error_code,
            expected.code(),
            "{:?}",
            r.topics[0].error_message
        );
        assert!(
            r.topics[0]
                .error_message
                .as_ref()
                .is_some_and(|m| !m.is_empty())
        );
        encodes_at_every_version(ApiKey::CreateTopics, &r);
    }
    let ok = super::create_topics::handle(
        &ctx(&b, 7),
        create_request("d", -1, -1, &[("retention.ms", "5")]),
    )
    .await;
    assert_eq!(
        (ok.topics[0].num_partitions, ok.topics[0].replication_factor),
        (1, 1)
    );
    encodes_at_every_version(ApiKey::CreateTopics, &ok);
}

#[tokio::test]
async fn a_compacted_topic_refuses_keyless_records_each_by_position_as_kafka_does() {
    use krait_protocol::kafka_protocol::records::Compression;
    use krait_protocol::testing::{encode, record};
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    let created = super::create_topics::handle(
        &ctx(&b, 7),
        create_request("compacted", 1, 1, &[("cleanup.policy", "compact")]),
    )
    .await;
    assert_eq!(created.topics[0].error_code, 0);
    // Records 1 and 3 have no key (`record` makes none).
    let records: Vec<_> = (0..4)
        .map(|i| {
            let mut r = record(i, 1000 + i, "v");
            if i % 2 == 0 {
                r.key = Some(Bytes::from(format!("k{i}")));
            }
            r
        })
        .collect();
    let request = || produce_request("compacted", 0, encode(&records, Compression::Lz4), 1);
    let response = super::produce::handle(&ctx(&b, 9), request())
        .await
        .0
        .unwrap();
    let p = &response.responses[0].partition_responses[0];
    assert_eq!(p.error_code, ResponseError::InvalidRecord.code());
    let errors: Vec<(i32, String)> = p
        .record_errors
        .iter()
        .map(|e| {
            let m = e.batch_index_error_message.as_ref().unwrap().to_string();
            (e.batch_index, m)
        })
        .collect();
    let reason =
        "Compacted topic cannot accept message without key in topic partition compacted-0.";
    assert_eq!(errors, vec![(1, reason.into()), (3, reason.into())]);
    let message = p.error_message.as_ref().unwrap().to_string();
    assert!(message.starts_with("One or more records have been rejected due to 2 record errors"));
    encodes_at_every_version(ApiKey::Produce, &response);
    // Before v8 a response has no record errors: INVALID_RECORD alone.
    let old = super::produce::handle(&ctx(&b, 7), request())
        .await
        .0
        .unwrap();
    let p = &old.responses[0].partition_responses[0];
    assert_eq!(p.error_code, ResponseError::InvalidRecord.code());
    assert!(p.record_errors.is_empty());
}

#[tokio::test]
async fn produce_then_fetch_returns_the_batch_with_assigned_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    create(&b, "t", 2).await;
    let first = super::produce::handle(
        &ctx(&b, 9),
        produce_request("t", 1, batch(&["a", "b", "c"], 10), -1),
    )
    .await
    .0
    .unwrap();
    let second = super::produce::handle(&ctx(&b, 9), produce_request("t", 1, batch(&["d"], 20), 1))
        .await
        .0
        .unwrap();
    assert_eq!(first.responses[0].partition_responses[0].base_offset, 0);
    assert_eq!(second.responses[0].partition_responses[0].base_offset, 3);
    encodes_at_every_version(ApiKey::Produce, &first);
    let fetched = super::fetch::handle(&ctx(&b, 12), fetch_request("t", 1, 1, 0, 0)).await;
    let p = &fetched.responses[0].partitions[0];
    assert_eq!(
        (p.error_code, p.high_watermark, p.log_start_offset),
        (0, 4, 0)
    );
    let records = p.records.clone().unwrap();
    let batches = krait_protocol::batch::validate_batches(&records).unwrap();
    assert_eq!(
        batches
            .iter()
            .map(|b| b.header.base_offset)
            .collect::<Vec<_>>(),
        vec![0, 3]
    );
    encodes_at_every_version(ApiKey::Fetch, &fetched);
}

#[tokio::test]
async fn only_the_first_batch_of_a_fetch_may_exceed_its_byte_limit() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    create(&b, "t", 2).await;
    let big = "x".repeat(600);
    for partition in [0, 1] {
        for _ in 0..2 {
            let produced = super::produce::handle(
                &ctx(&b, 9),
                produce_request("t", partition, batch(&[big.as_str()], 0), 1),
            )
            .await
            .0
            .unwrap();
            assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
        }
    }
    // Two partitions of two ~650-byte batches, a 1000-byte response limit: the first batch of
    // partition 0 goes whole (KIP-74), the second does not fit, nor does anything of partition 1.
    let mut request = fetch_request("t", 0, 0, 0, 0);
    let mut second = request.topics[0].partitions[0].clone();
    second.partition = 1;
    request.topics[0].partitions.push(second);
    request.max_bytes = 1000;
    let fetched = super::fetch::handle(&ctx(&b, 12), request).await;
    let counts: Vec<usize> = fetched.responses[0]
        .partitions
        .iter()
        .map(|p| match p.records.clone().unwrap_or_default() {
            empty if empty.is_empty() => 0,
            records => krait_protocol::batch::validate_batches(&records)
                .unwrap()
                .len(),
        })
        .collect();
    assert_eq!(counts, vec![1, 0]);
    let size: usize = fetched.responses[0]
        .partitions
        .iter()
        .map(|p| p.records.as_ref().map_or(0, |r| r.len()))
        .sum();
    assert!(size > 600 && size < 1000, "{size}");
}

#[tokio::test]
async fn produce_errors_are_per_partition() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    create(&b, "t", 1).await;
    let mut corrupt = BytesMut::from(&batch(&["x"], 0)[..]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    let cases = [
        (
            produce_request("t", 0, corrupt.freeze(), 1),
            ResponseError::CorruptMessage,
        ),
        (
            produce_request("t", 5, batch(&["x"], 0), 1),
            ResponseError::UnknownTopicOrPartition,
        ),
        (
            produce_request("t", 0, Bytes::new(), 1),
            ResponseError::CorruptMessage,
        ),
        (
            produce_request("t", 0, batch(&["x"], 0), 2),
            ResponseError::InvalidRequiredAcks,
        ),
    ];
    for (request, expected) in cases {
        let r = super::produce::handle(&ctx(&b, 9), request)
            .await
            .0
            .unwrap();
        let p = &r.responses[0].partition_responses[0];
        assert_eq!(
            (p.error_code, p.base_offset),
            (expected.code(), -1),
            "{:?}",
            p.error_message
        );
        encodes_at_every_version(ApiKey::Produce, &r);
    }
    assert_eq!(
        b.topics.get("t").unwrap().partitions[0]
            .log()
            .offsets()
            .log_end_offset,
        0,
        "nothing appended"
    );
}

#[tokio::test]
async fn oversized_batch_is_message_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    let r = super::create_topics::handle(
        &ctx(&b, 7),
        create_request("small", 1, 1, &[("max.message.bytes", "100")]),
    )
    .await;
    assert_eq!(r.topics[0].error_code, 0);
    let big = "x".repeat(200);
    let r = super::produce::handle(
        &ctx(&b, 9),
        produce_request("small", 0, batch(&[&big], 0), 1),
    )
    .await
    .0
    .unwrap();
    assert_eq!(
        r.responses[0].partition_responses[0].error_code,
        ResponseError::MessageTooLarge.code()
    );
}

#[tokio::test]
async fn acks_zero_gets_no_response_but_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    create(&b, "t", 1).await;
    assert!(
        super::produce::handle(&ctx(&b, 9), produce_request("t", 0, batch(&["x"], 0), 0))
            .await
            .0
            .is_none()
    );
    assert_eq!(
        b.topics.get("t").unwrap().partitions[0]
            .log()
            .offsets()
            .log_end_offset,
        1
    );
}

#[tokio::test]
async fn long_poll_returns_as_soon_as_data_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    create(&b, "t", 1).await;
    let waiter = {
        let b = b.clone();
        tokio::spawn(async move {
            super::fetch::handle(&ctx(&b, 12), fetch_request("t", 0, 0, 30_000, 1)).await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let started = std::time::Instant::now();
    super::produce::handle(&ctx(&b, 9), produce_request("t", 0, batch(&["late"], 0), 1))
        .await
        .0
        .unwrap();
    let fetched = tokio::time::timeout(std::time::Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(
        !fetched.responses[0].partitions[0]
            .records
            .as_ref()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn fetch_with_no_data_waits_for_max_wait_then_answers_empty() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    create(&b, "t", 1).await;
    let started = std::time::Instant::now();
    let fetched = super::fetch::handle(&ctx(&b, 12), fetch_request("t", 0, 0, 200, 1)).await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(200));
    let p = &fetched.responses[0].partitions[0];
    assert_eq!((p.error_code, p.high_watermark), (0, 0));
    assert!(p.records.as_ref().unwrap().is_empty());
}

#[tokio::test]
async fn fetch_out_of_range_and_unknown_partition_answer_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    create(&b, "t", 1).await;
    let r = super::fetch::handle(&ctx(&b, 12), fetch_request("t", 0, 5, 30_000, 1)).await;
    assert_eq!(
        r.responses[0].partitions[0].error_code,
        ResponseError::OffsetOutOfRange.code()
    );
    let r = super::fetch::handle(&ctx(&b, 4), fetch_request("nope", 0, 0, 30_000, 1)).await;
    assert_eq!(
        r.responses[0].partitions[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
}

#[tokio::test]
async fn metadata_lists_topics_and_auto_creates_requested_ones() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    create(&b, "t", 3).await;
    let mut every = MetadataRequest::default();
    every.topics = None;
    let all = super::metadata::handle(&ctx(&b, 12), every).await;
    assert_eq!(all.topics.len(), 1);
    assert_eq!(all.topics[0].partitions.len(), 3);
    assert_eq!(all.brokers[0].port, 9092);
    encodes_at_every_version(ApiKey::Metadata, &all);
    let mut req = MetadataRequest::default();
    let mut t = metadata_request::MetadataRequestTopic::default();
    t.name = Some(name("fresh"));
    req.topics = Some(vec![t.clone()]);
    req.allow_auto_topic_creation = false;
    let r = super::metadata::handle(&ctx(&b, 12), req.clone()).await;
    assert_eq!(
        r.topics[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    req.allow_auto_topic_creation = true;
    let r = super::metadata::handle(&ctx(&b, 12), req).await;
    assert_eq!(
        (r.topics[0].error_code, r.topics[0].partitions.len()),
        (0, 1)
    );
    encodes_at_every_version(ApiKey::Metadata, &r);
}

/// ListOffsets for partition 0 of `topic`, one entry per timestamp (or offset spec).
fn list_offsets_request(topic: &str, timestamps: &[i64]) -> ListOffsetsRequest {
    let mut req = ListOffsetsRequest::default();
    let mut t = list_offsets_request::ListOffsetsTopic::default();
    t.name = name(topic);
    t.partitions = timestamps
        .iter()
        .map(|ts| {
            let mut p = list_offsets_request::ListOffsetsPartition::default();
            p.timestamp = *ts;
            p
        })
        .collect();
    req.topics = vec![t];
    req
}

#[tokio::test]
async fn list_offsets_earliest_latest_and_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    create(&b, "t", 1).await;
    super::produce::handle(
        &ctx(&b, 9),
        produce_request("t", 0, batch(&["a", "b"], 1000), 1),
    )
    .await
    .0
    .unwrap();
    super::produce::handle(
        &ctx(&b, 9),
        produce_request("t", 0, batch(&["c", "d"], 2000), 1),
    )
    .await
    .0
    .unwrap();
    let req = list_offsets_request("t", &[-2, -1, 1001, 1500, 5000]);
    for version in range(ApiKey::ListOffsets) {
        let r = super::list_offsets::handle(&ctx(&b, version), req.clone()).await;
        let got: Vec<(i64, i64)> = r.topics[0]
            .partitions
            .iter()
            .map(|p| (p.offset, p.timestamp))
            .collect();
        assert_eq!(got, vec![(0, -1), (4, -1), (1, 1001), (2, 2000), (-1, -1)]);
        encode_response(1, version, &r).unwrap_or_else(|e| panic!("ListOffsets v{version}: {e}"));
    }
}

#[tokio::test]
async fn list_offsets_max_timestamp_and_the_tiered_specs_by_version() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    create(&b, "t", 1).await;
    // Timestamps 1000-1001, 3000-3001, 2000: the largest is at offset 3.
    for (values, ts) in [
        (&["a", "b"][..], 1000),
        (&["c", "d"][..], 3000),
        (&["e"][..], 2000),
    ] {
        super::produce::handle(&ctx(&b, 9), produce_request("t", 0, batch(values, ts), 1))
            .await
            .0
            .unwrap();
    }
    let req = list_offsets_request("t", &[-3, -4, -5]);
    let unsupported = ResponseError::UnsupportedVersion.code();
    for version in range(ApiKey::ListOffsets) {
        let r = super::list_offsets::handle(&ctx(&b, version), req.clone()).await;
        let got: Vec<(i16, i64, i64)> = r.topics[0]
            .partitions
            .iter()
            .map(|p| (p.error_code, p.offset, p.timestamp))
            .collect();
        let max = if version >= 7 {
            (0, 3, 3001)
        } else {
            (unsupported, -1, -1)
        };
        let local = if version >= 8 {
            (0, 0, -1)
        } else {
            (unsupported, -1, -1)
        };
        let tiered = if version >= 9 {
            (0, -1, -1)
        } else {
            (unsupported, -1, -1)
        };
        assert_eq!(got, vec![max, local, tiered], "ListOffsets v{version}");
    }
}

#[tokio::test]
async fn grow_delete_and_describe() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    create(&b, "t", 1).await;
    let mut grow = CreatePartitionsRequest::default();
    let mut t = create_partitions_request::CreatePartitionsTopic::default();
    t.name = name("t");
    t.count = 4;
    grow.topics = vec![t.clone()];
    let r = super::create_partitions::handle(&ctx(&b, 3), grow.clone()).await;
    assert_eq!(r.results[0].error_code, 0);
    assert_eq!(b.topics.get("t").unwrap().partitions.len(), 4);
    let r = super::create_partitions::handle(&ctx(&b, 3), grow).await;
    assert_eq!(
        r.results[0].error_code,
        ResponseError::InvalidPartitions.code()
    );
    encodes_at_every_version(ApiKey::CreatePartitions, &r);

    let mut describe = DescribeConfigsRequest::default();
    let mut res = describe_configs_request::DescribeConfigsResource::default();
    res.resource_type = 2;
    res.resource_name = StrBytes::from_static_str("t");
    let mut broker_res = describe_configs_request::DescribeConfigsResource::default();
    broker_res.resource_type = 4;
    broker_res.resource_name = StrBytes::from_static_str("1");
    describe.resources = vec![res, broker_res];
    describe.include_synonyms = true;
    let r = super::describe_configs::handle(&ctx(&b, 4), describe).await;
    assert!(r.results.iter().all(|r| r.error_code == 0));
    let retention = r.results[0]
        .configs
        .iter()
        .find(|c| c.name.as_str() == "retention.ms")
        .unwrap();
    assert_eq!(retention.value.as_deref(), Some("604800000"));
    assert!(
        r.results[1]
            .configs
            .iter()
            .any(|c| c.name.as_str() == "message.max.bytes")
    );
    encodes_at_every_version(ApiKey::DescribeConfigs, &r);

    let cluster =
        super::describe_cluster::handle(&ctx(&b, 1), DescribeClusterRequest::default()).await;
    assert_eq!(
        (cluster.brokers.len(), cluster.cluster_id.as_str()),
        (1, b.cluster_id().as_str())
    );
    encodes_at_every_version(ApiKey::DescribeCluster, &cluster);

    let mut delete = DeleteTopicsRequest::default();
    delete.topic_names = vec![name("t"), name("missing")];
    let r = super::delete_topics::handle(&ctx(&b, 5), delete).await;
    let codes: Vec<i16> = r.responses.iter().map(|r| r.error_code).collect();
    assert_eq!(
        codes,
        vec![0, ResponseError::UnknownTopicOrPartition.code()]
    );
    assert!(b.topics.get("t").is_none());
    encodes_at_every_version(ApiKey::DeleteTopics, &r);
}

#[tokio::test]
async fn api_versions_encodes_at_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    let r = super::api_versions::handle(&ctx(&b, 3), ApiVersionsRequest::default()).await;
    encodes_at_every_version(ApiKey::ApiVersions, &r);
}

#[tokio::test]
async fn init_producer_id_hands_out_fresh_ids_and_bumps_a_transactional_ids_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    let first =
        super::init_producer_id::handle(&ctx(&b, 4), InitProducerIdRequest::default()).await;
    let second =
        super::init_producer_id::handle(&ctx(&b, 4), InitProducerIdRequest::default()).await;
    assert_eq!((first.error_code, first.producer_epoch), (0, 0));
    assert_ne!(first.producer_id, second.producer_id);
    encodes_at_every_version(ApiKey::InitProducerId, &first);
    let mut txn = InitProducerIdRequest::default();
    txn.transactional_id = Some(TransactionalId(StrBytes::from_static_str("tx-1")));
    txn.transaction_timeout_ms = 60_000;
    let a = super::init_producer_id::handle(&ctx(&b, 4), txn.clone()).await;
    let again = super::init_producer_id::handle(&ctx(&b, 4), txn.clone()).await;
    assert_eq!((a.error_code, again.error_code), (0, 0));
    assert_eq!(
        a.producer_id, again.producer_id,
        "one producer id per transactional id"
    );
    assert_eq!(
        again.producer_epoch,
        a.producer_epoch + 1,
        "each init fences the last"
    );
    assert_ne!(a.producer_id, first.producer_id);
    txn.transaction_timeout_ms = 900_001;
    let too_long = super::init_producer_id::handle(&ctx(&b, 4), txn).await;
    assert_eq!(
        too_long.error_code,
        ResponseError::InvalidTransactionTimeout.code()
    );
}

#[tokio::test]
async fn produce_maps_sequence_errors_to_kafka_codes() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    create(&b, "t", 1).await;
    let idempotent =
        |first_seq: i32, epoch: i16| producer_batch(&["v", "v"], 0, 5, epoch, first_seq);
    let code = |r: ProduceResponse| {
        (
            r.responses[0].partition_responses[0].error_code,
            r.responses[0].partition_responses[0].base_offset,
        )
    };
    let c = ctx(&b, 9);
    let produce = |records| super::produce::handle(&c, produce_request("t", 0, records, -1));
    assert_eq!(code(produce(idempotent(0, 1)).await.0.unwrap()), (0, 0));
    assert_eq!(code(produce(idempotent(2, 1)).await.0.unwrap()), (0, 2));
    assert_eq!(
        code(produce(idempotent(0, 1)).await.0.unwrap()),
        (0, 0),
        "a retry gets its original offset"
    );
    assert_eq!(
        code(produce(idempotent(9, 1)).await.0.unwrap()),
        (ResponseError::OutOfOrderSequenceNumber.code(), -1)
    );
    assert_eq!(
        code(produce(idempotent(4, 0)).await.0.unwrap()),
        (ResponseError::InvalidProducerEpoch.code(), -1)
    );
    assert_eq!(
        b.topics.get("t").unwrap().partitions[0]
            .log()
            .offsets()
            .log_end_offset,
        4
    );
}

#[tokio::test]
async fn incremental_alter_configs_changes_topic_overrides_and_refuses_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    create(&b, "t", 1).await;
    let change = |name: &str, op: i8, value: Option<&str>| {
        let mut c = incremental_alter_configs_request::AlterableConfig::default();
        c.name = StrBytes::from_string(name.to_string());
        c.config_operation = op;
        c.value = value.map(|v| StrBytes::from_string(v.to_string()));
        c
    };
    let request = |configs, resource_type: i8, name: &str, validate_only| {
        let mut r = incremental_alter_configs_request::AlterConfigsResource::default();
        r.resource_type = resource_type;
        r.resource_name = StrBytes::from_string(name.to_string());
        r.configs = configs;
        let mut req = IncrementalAlterConfigsRequest::default();
        req.resources = vec![r];
        req.validate_only = validate_only;
        req
    };
    let ok = super::incremental_alter_configs::handle(
        &ctx(&b, 1),
        request(
            vec![change("retention.ms", 0, Some("60000"))],
            2,
            "t",
            false,
        ),
    )
    .await;
    assert_eq!(ok.responses[0].error_code, 0);
    assert_eq!(b.topics.get("t").unwrap().configs["retention.ms"], "60000");
    encodes_at_every_version(ApiKey::IncrementalAlterConfigs, &ok);
    let dry = super::incremental_alter_configs::handle(
        &ctx(&b, 1),
        request(vec![change("retention.ms", 1, None)], 2, "t", true),
    )
    .await;
    assert_eq!(dry.responses[0].error_code, 0);
    assert_eq!(
        b.topics.get("t").unwrap().configs["retention.ms"],
        "60000",
        "validate_only changes nothing"
    );
    for (configs, kind, name, expected) in [
        (
            vec![change("bogus.key", 0, Some("1"))],
            2,
            "t",
            ResponseError::InvalidConfig,
        ),
        (
            vec![change("retention.ms", 0, Some("-7"))],
            2,
            "t",
            ResponseError::InvalidConfig,
        ),
        (
            vec![change("retention.ms", 0, Some("1"))],
            2,
            "missing",
            ResponseError::UnknownTopicOrPartition,
        ),
        (
            vec![change("log.dirs", 0, Some("/tmp"))],
            4,
            "1",
            ResponseError::InvalidConfig,
        ),
        (
            vec![change("log.retention.ms", 0, Some("soon"))],
            4,
            "1",
            ResponseError::InvalidConfig,
        ),
    ] {
        let r = super::incremental_alter_configs::handle(
            &ctx(&b, 1),
            request(configs, kind, name, false),
        )
        .await;
        assert_eq!(
            r.responses[0].error_code,
            expected.code(),
            "{:?}",
            r.responses[0].error_message
        );
        let message = r.responses[0].error_message.as_ref().unwrap().to_string();
        assert!(!message.is_empty());
    }
    let deleted = super::incremental_alter_configs::handle(
        &ctx(&b, 1),
        request(vec![change("retention.ms", 1, None)], 2, "t", false),
    )
    .await;
    assert_eq!(deleted.responses[0].error_code, 0);
    assert!(b.topics.get("t").unwrap().configs.is_empty());
}

#[tokio::test]
async fn alter_configs_replaces_the_whole_override_set() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    let r = super::create_topics::handle(
        &ctx(&b, 7),
        create_request(
            "t",
            1,
            1,
            &[("retention.ms", "5"), ("retention.bytes", "9")],
        ),
    )
    .await;
    assert_eq!(r.topics[0].error_code, 0);
    let mut c = alter_configs_request::AlterableConfig::default();
    c.name = StrBytes::from_static_str("max.message.bytes");
    c.value = Some(StrBytes::from_static_str("5000"));
    let mut res = alter_configs_request::AlterConfigsResource::default();
    res.resource_type = 2;
    res.resource_name = StrBytes::from_static_str("t");
    res.configs = vec![c];
    let mut req = AlterConfigsRequest::default();
    req.resources = vec![res];
    let r = super::alter_configs::handle(&ctx(&b, 2), req).await;
    assert_eq!(r.responses[0].error_code, 0);
    encodes_at_every_version(ApiKey::AlterConfigs, &r);
    let configs = b.topics.get("t").unwrap().configs.clone();
    assert_eq!(
        configs.into_iter().collect::<Vec<_>>(),
        vec![("max.message.bytes".to_string(), "5000".to_string())]
    );
}

#[tokio::test]
async fn retention_pass_applies_topic_overrides_and_fetch_below_log_start_is_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    let r = super::create_topics::handle(
        &ctx(&b, 7),
        create_request("short", 1, 1, &[("retention.ms", "1000")]),
    )
    .await;
    assert_eq!(r.topics[0].error_code, 0);
    let r = super::create_topics::handle(
        &ctx(&b, 7),
        create_request("kept", 1, 1, &[("retention.ms", "-1")]),
    )
    .await;
    assert_eq!(r.topics[0].error_code, 0);
    for topic in ["short", "kept"] {
        // Timestamps in 1970: older than any retention.ms except -1.
        super::produce::handle(
            &ctx(&b, 9),
            produce_request(topic, 0, batch(&["a", "b"], 5), 1),
        )
        .await
        .0
        .unwrap();
    }
    crate::retention::pass(&b);
    let short = b.topics.get("short").unwrap().partitions[0].log().offsets();
    assert_eq!((short.log_start_offset, short.high_watermark), (2, 2));
    let kept = b.topics.get("kept").unwrap().partitions[0].log().offsets();
    assert_eq!(kept.log_start_offset, 0, "retention.ms=-1 keeps everything");
    let fetched = super::fetch::handle(&ctx(&b, 12), fetch_request("short", 0, 0, 0, 0)).await;
    let p = &fetched.responses[0].partitions[0];
    assert_eq!(
        (p.error_code, p.log_start_offset),
        (ResponseError::OffsetOutOfRange.code(), 2)
    );
}

#[tokio::test]
async fn log_append_time_topics_get_the_broker_clock_as_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    let r = super::create_topics::handle(
        &ctx(&b, 7),
        create_request("lat", 1, 1, &[("message.timestamp.type", "LogAppendTime")]),
    )
    .await;
    assert_eq!(r.topics[0].error_code, 0);
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let produced =
        super::produce::handle(&ctx(&b, 9), produce_request("lat", 0, batch(&["a"], 5), 1))
            .await
            .0
            .unwrap();
    let stamped = produced.responses[0].partition_responses[0].log_append_time_ms;
    assert!(stamped >= before, "{stamped} < {before}");
    let fetched = super::fetch::handle(&ctx(&b, 12), fetch_request("lat", 0, 0, 0, 0)).await;
    let header = krait_protocol::batch::validate_batches(
        fetched.responses[0].partitions[0].records.as_ref().unwrap(),
    )
    .unwrap()[0]
        .header;
    assert!(header.uses_log_append_time());
    assert_eq!(header.max_timestamp, stamped);
}

fn join_request(member_id: &str) -> JoinGroupRequest {
    let mut p = join_group_request::JoinGroupRequestProtocol::default();
    p.name = StrBytes::from_static_str("range");
    p.metadata = Bytes::from_static(b"\x00\x01");
    let mut r = JoinGroupRequest::default();
    r.group_id = GroupId(StrBytes::from_static_str("g"));
    r.session_timeout_ms = 10_000;
    r.rebalance_timeout_ms = 10_000;
    r.member_id = StrBytes::from_string(member_id.to_string());
    r.protocol_type = StrBytes::from_static_str("consumer");
    r.protocols = vec![p];
    r
}

#[tokio::test]
async fn a_consumer_joins_syncs_commits_and_every_group_response_encodes() {
    let dir = tempfile::tempdir().unwrap();
    let config = BrokerConfig::parse_from([
        "krait-broker",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--group-initial-rebalance-delay-ms",
        "0",
    ]);
    let b = ready(config).await;
    create(&b, "t", 2).await;

    let mut find = FindCoordinatorRequest::default();
    find.key = StrBytes::from_static_str("g");
    find.coordinator_keys = vec![StrBytes::from_static_str("g")];
    for v in range(ApiKey::FindCoordinator) {
        let r = super::find_coordinator::handle(&ctx(&b, v), find.clone()).await;
        let mut buf = BytesMut::new();
        r.encode(&mut buf, v)
            .unwrap_or_else(|e| panic!("FindCoordinator v{v}: {e}"));
    }

    let first = super::join_group::handle(&ctx(&b, 9), join_request("")).await;
    assert_eq!(first.error_code, ResponseError::MemberIdRequired.code());
    let member = first.member_id.to_string();
    assert!(member.starts_with("test-"));
    let joined = super::join_group::handle(&ctx(&b, 9), join_request(&member)).await;
    assert_eq!(
        (
            joined.error_code,
            joined.generation_id,
            joined.leader.to_string()
        ),
        (0, 1, member.clone())
    );
    for v in range(ApiKey::JoinGroup) {
        let mut buf = BytesMut::new();
        let r = super::join_group::handle(&ctx(&b, v), join_request(&member)).await;
        r.encode(&mut buf, v)
            .unwrap_or_else(|e| panic!("JoinGroup v{v}: {e}"));
    }
    let generation = b.coordinator.describe("g").unwrap();
    assert_eq!(generation.members.len(), 1);

    let mut sync = SyncGroupRequest::default();
    sync.group_id = GroupId(StrBytes::from_static_str("g"));
    sync.member_id = StrBytes::from_string(member.clone());
    let joined = super::join_group::handle(&ctx(&b, 9), join_request(&member)).await;
    sync.generation_id = joined.generation_id;
    let mut a = sync_group_request::SyncGroupRequestAssignment::default();
    a.member_id = StrBytes::from_string(member.clone());
    a.assignment = Bytes::from_static(b"assignment");
    sync.assignments = vec![a];
    let synced = super::sync_group::handle(&ctx(&b, 5), sync.clone()).await;
    assert_eq!(
        (synced.error_code, synced.assignment.as_ref()),
        (0, &b"assignment"[..])
    );
    for v in range(ApiKey::SyncGroup) {
        let r = super::sync_group::handle(&ctx(&b, v), sync.clone()).await;
        let mut buf = BytesMut::new();
        r.encode(&mut buf, v)
            .unwrap_or_else(|e| panic!("SyncGroup v{v}: {e}"));
    }

    let mut hb = HeartbeatRequest::default();
    hb.group_id = GroupId(StrBytes::from_static_str("g"));
    hb.member_id = StrBytes::from_string(member.clone());
    hb.generation_id = joined.generation_id;
    assert_eq!(
        super::heartbeat::handle(&ctx(&b, 4), hb.clone())
            .await
            .error_code,
        0
    );
    hb.generation_id += 1;
    let stale = super::heartbeat::handle(&ctx(&b, 4), hb).await;
    assert_eq!(stale.error_code, ResponseError::IllegalGeneration.code());
    encodes_at_every_version(ApiKey::Heartbeat, &stale);

    let mut commit = OffsetCommitRequest::default();
    commit.group_id = GroupId(StrBytes::from_static_str("g"));
    commit.member_id = StrBytes::from_string(member.clone());
    commit.generation_id_or_member_epoch = joined.generation_id;
    let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
    p.partition_index = 1;
    p.committed_offset = 42;
    let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
    t.name = name("t");
    t.partitions = vec![p];
    commit.topics = vec![t];
    let committed = super::offset_commit::handle(&ctx(&b, 8), commit).await;
    assert_eq!(committed.topics[0].partitions[0].error_code, 0);
    encodes_at_every_version(ApiKey::OffsetCommit, &committed);

    let mut fetch = OffsetFetchRequest::default();
    fetch.group_id = GroupId(StrBytes::from_static_str("g"));
    fetch.topics = None;
    let mut g8 = offset_fetch_request::OffsetFetchRequestGroup::default();
    g8.group_id = GroupId(StrBytes::from_static_str("g"));
    g8.topics = None;
    fetch.groups = vec![g8];
    // v0 (ZooKeeper's offsets) is refused: see offset_fetch_v0_is_refused_as_kafka_without_zookeeper.
    for v in range(ApiKey::OffsetFetch).filter(|v| *v > 0) {
        let r = super::offset_fetch::handle(&ctx(&b, v), fetch.clone()).await;
        let offset = if v >= 8 {
            r.groups[0].topics[0].partitions[0].committed_offset
        } else {
            r.topics[0].partitions[0].committed_offset
        };
        assert_eq!(offset, 42, "OffsetFetch v{v}");
        encode_response(1, v, &r).unwrap_or_else(|e| panic!("OffsetFetch v{v}: {e}"));
    }

    let listed = super::list_groups::handle(&ctx(&b, 5), ListGroupsRequest::default()).await;
    assert_eq!(listed.groups[0].group_state.as_str(), "Stable");
    encodes_at_every_version(ApiKey::ListGroups, &listed);
    let mut describe = DescribeGroupsRequest::default();
    describe.groups = vec![
        GroupId(StrBytes::from_static_str("g")),
        GroupId(StrBytes::from_static_str("none")),
    ];
    let described = super::describe_groups::handle(&ctx(&b, 5), describe).await;
    assert_eq!(
        described.groups[0].members[0].member_assignment.as_ref(),
        b"assignment"
    );
    assert_eq!(described.groups[1].group_state.as_str(), "Dead");
    encodes_at_every_version(ApiKey::DescribeGroups, &described);

    let mut delete = DeleteGroupsRequest::default();
    delete.groups_names = vec![GroupId(StrBytes::from_static_str("g"))];
    let refused = super::delete_groups::handle(&ctx(&b, 2), delete.clone()).await;
    assert_eq!(refused.results[0].error_code, 68, "NON_EMPTY_GROUP");
    let mut leave = LeaveGroupRequest::default();
    leave.group_id = GroupId(StrBytes::from_static_str("g"));
    let mut m = leave_group_request::MemberIdentity::default();
    m.member_id = StrBytes::from_string(member.clone());
    leave.members = vec![m];
    let left = super::leave_group::handle(&ctx(&b, 5), leave.clone()).await;
    assert_eq!(left.members[0].error_code, 0);
    for v in range(ApiKey::LeaveGroup) {
        let r = super::leave_group::handle(&ctx(&b, v), leave.clone()).await;
        let mut buf = BytesMut::new();
        r.encode(&mut buf, v)
            .unwrap_or_else(|e| panic!("LeaveGroup v{v}: {e}"));
    }
    assert!(
        !b.committed_offsets("g").is_empty(),
        "the group's commit is replicated"
    );
    let deleted = super::delete_groups::handle(&ctx(&b, 2), delete).await;
    assert_eq!(deleted.results[0].error_code, 0);
    encodes_at_every_version(ApiKey::DeleteGroups, &deleted);
    assert!(b.committed_offsets("g").is_empty());
}

#[test]
fn every_served_version_has_a_codec() {
    // Versions below kafka-protocol's range are served through krait_protocol::legacy.
    for a in super::SERVED {
        let codecs = krait_protocol::legacy::valid_versions(a.key);
        assert!(
            codecs.min <= a.min && a.max <= codecs.max,
            "{:?} serves {}..={} but has codecs for {}..={}",
            a.key,
            a.min,
            a.max,
            codecs.min,
            codecs.max
        );
    }
}

#[tokio::test]
async fn offset_commit_and_fetch_v0_are_refused_as_kafka_without_zookeeper() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    create(&b, "t", 2).await;
    let mut commit = OffsetCommitRequest::default();
    commit.group_id = GroupId(StrBytes::from_static_str("g0"));
    commit.generation_id_or_member_epoch = -1;
    let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
    p.partition_index = 1;
    p.committed_offset = 42;
    let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
    t.name = name("t");
    t.partitions = vec![p];
    commit.topics = vec![t];
    let refused = super::offset_commit::handle(&ctx(&b, 0), commit.clone()).await;
    let unsupported = ResponseError::UnsupportedVersion.code();
    assert_eq!(refused.topics[0].partitions[0].error_code, unsupported);
    // v1, the same commit outside group management, is stored.
    let stored = super::offset_commit::handle(&ctx(&b, 1), commit).await;
    assert_eq!(stored.topics[0].partitions[0].error_code, 0);

    let mut fetch = OffsetFetchRequest::default();
    fetch.group_id = GroupId(StrBytes::from_static_str("g0"));
    let mut ft = offset_fetch_request::OffsetFetchRequestTopic::default();
    ft.name = name("t");
    ft.partition_indexes = vec![1];
    fetch.topics = Some(vec![ft]);
    let v0 = super::offset_fetch::handle(&ctx(&b, 0), fetch.clone()).await;
    let p0 = &v0.topics[0].partitions[0];
    assert_eq!((p0.error_code, p0.committed_offset), (unsupported, -1));
    encode_response(1, 0, &v0).unwrap();
    let v1 = super::offset_fetch::handle(&ctx(&b, 1), fetch).await;
    let p1 = &v1.topics[0].partitions[0];
    assert_eq!((p1.error_code, p1.committed_offset), (0, 42));
}

#[tokio::test]
async fn describe_quorum_answers_for_the_metadata_log_and_refuses_other_partitions() {
    use krait_protocol::kafka_protocol::messages::describe_quorum_request::{
        PartitionData, TopicData,
    };
    use krait_protocol::kafka_protocol::messages::{DescribeQuorumRequest, TopicName};
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    let ask = |topic: &'static str, partition: i32| {
        let mut p = PartitionData::default();
        p.partition_index = partition;
        let mut t = TopicData::default();
        t.topic_name = TopicName(StrBytes::from_static_str(topic));
        t.partitions = vec![p];
        DescribeQuorumRequest::default().with_topics(vec![t])
    };
    let mut c = ctx(&b, 1);
    c.api_version = 2;
    let answer = super::describe_quorum::handle(&c, ask("__cluster_metadata", 0)).await;
    assert_eq!(answer.error_code, 0);
    let p = &answer.topics[0].partitions[0];
    assert_eq!((p.error_code, p.leader_id.0), (0, b.node_id()));
    assert!(p.leader_epoch >= 1 && p.high_watermark > 0, "{p:?}");
    assert_eq!(p.current_voters.len(), 1);
    assert_eq!(p.current_voters[0].log_end_offset, p.high_watermark);
    assert!(p.observers.is_empty());
    assert_eq!(answer.nodes.len(), 1, "v2 names the voters' nodes");
    for (topic, partition) in [("orders", 0), ("__cluster_metadata", 1)] {
        let refused = super::describe_quorum::handle(&c, ask(topic, partition)).await;
        assert_eq!(
            refused.error_code,
            ResponseError::UnknownTopicOrPartition.code(),
            "{topic}-{partition}"
        );
    }
}

#[tokio::test]
async fn voter_changes_refuse_the_last_voter_an_unknown_broker_and_a_duplicate() {
    use krait_protocol::kafka_protocol::messages::{AddRaftVoterRequest, RemoveRaftVoterRequest};
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    let me = b.node_id();
    let c = ctx(&b, 1);
    let code = |e: ResponseError| e.code();
    let removed =
        super::remove_raft_voter::handle(&c, RemoveRaftVoterRequest::default().with_voter_id(me))
            .await;
    assert_eq!(removed.error_code, code(ResponseError::InvalidRequest));
    assert!(
        removed
            .error_message
            .as_deref()
            .is_some_and(|m| m.contains("only voter")),
        "{removed:?}"
    );
    let unknown =
        super::add_raft_voter::handle(&c, AddRaftVoterRequest::default().with_voter_id(42)).await;
    assert_eq!(unknown.error_code, code(ResponseError::VoterNotFound));
    let again =
        super::add_raft_voter::handle(&c, AddRaftVoterRequest::default().with_voter_id(me)).await;
    assert_eq!(again.error_code, code(ResponseError::DuplicateVoter));
    let not_ours = super::add_raft_voter::handle(
        &c,
        AddRaftVoterRequest::default()
            .with_voter_id(42)
            .with_cluster_id(Some(StrBytes::from_static_str("another"))),
    )
    .await;
    assert_eq!(
        not_ours.error_code,
        code(ResponseError::InconsistentClusterId)
    );
}
