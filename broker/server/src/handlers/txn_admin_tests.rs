//! Transaction administration through the handlers of one broker: cluster-unique idempotent
//! producer ids, DescribeProducers, WriteTxnMarkers from an administrator (aborting a hanging
//! transaction) and the expiry of idle transactional ids.

use clap::Parser;
use krait_image::image::FIRST_TRANSACTIONAL_PRODUCER_ID;
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::*;

use super::tests::{broker, create, ctx, encodes_at_every_version, name, ready};
use super::transaction_tests::{add_partition, end, fetch_committed, init, produce, tid};
use crate::broker::Broker;
use crate::config::BrokerConfig;
use crate::producer_ids::{BLOCK_SIZE, ProducerIds};

async fn init_idempotent(b: &Broker) -> i64 {
    let a = super::init_producer_id::handle(&ctx(b, 4), InitProducerIdRequest::default()).await;
    assert_eq!(a.error_code, 0);
    assert_eq!(a.producer_epoch, 0);
    a.producer_id.0
}

#[tokio::test]
async fn idempotent_producer_ids_come_from_a_cluster_block_transactional_ids_never_enter() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    let first = init_idempotent(&b).await;
    assert_eq!(first, FIRST_TRANSACTIONAL_PRODUCER_ID);
    assert_eq!(init_idempotent(&b).await, first + 1);
    let next = b
        .cluster
        .quorum
        .image()
        .borrow()
        .next_transactional_producer_id;
    assert_eq!(next, first + BLOCK_SIZE, "the whole block is taken at once");
    let (transactional, _) = init(&b).await;
    assert_eq!(transactional, first + BLOCK_SIZE);
    assert_eq!(
        init_idempotent(&b).await,
        first + 2,
        "the block goes on after"
    );
    // A restarted broker starts with no block: it takes a new one, never the old one's rest.
    let restarted = ProducerIds::default();
    assert_eq!(restarted.next(&b.cluster).await, Ok(first + BLOCK_SIZE + 1));
}

fn describe_producers_request(topic: &str, partitions: Vec<i32>) -> DescribeProducersRequest {
    let mut t = describe_producers_request::TopicRequest::default();
    t.name = name(topic);
    t.partition_indexes = partitions;
    let mut r = DescribeProducersRequest::default();
    r.topics = vec![t];
    r
}

#[tokio::test]
async fn describe_producers_shows_an_open_transaction_until_its_marker() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    create(&b, "t", 1).await;
    let producer = init(&b).await;
    assert_eq!(add_partition(&b, producer, "t").await, 0);
    assert_eq!(produce(&b, "t", producer, 0, 3).await, 0);
    let request = describe_producers_request("t", vec![0, 7]);
    let a = super::describe_producers::handle(&ctx(&b, 0), request.clone()).await;
    encodes_at_every_version(ApiKey::DescribeProducers, &a);
    let p = &a.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    let s = &p.active_producers[0];
    assert_eq!(
        (s.producer_id.0, s.producer_epoch),
        (producer.0, i32::from(producer.1))
    );
    assert_eq!((s.last_sequence, s.current_txn_start_offset), (2, 0));
    assert_eq!(s.last_timestamp, 2, "the max timestamp of its last batch");
    assert_eq!(s.coordinator_epoch, -1);
    assert_eq!(
        a.topics[0].partitions[1].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );

    assert_eq!(end(&b, producer, true, 3).await, 0);
    let a = super::describe_producers::handle(&ctx(&b, 0), request).await;
    let s = &a.topics[0].partitions[0].active_producers[0];
    assert_eq!(
        s.current_txn_start_offset, -1,
        "the commit marker closed it"
    );
    let a =
        super::describe_producers::handle(&ctx(&b, 0), describe_producers_request("nope", vec![0]))
            .await;
    assert_eq!(
        a.topics[0].partitions[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
}

fn abort_request(topic: &str, producer: (i64, i16)) -> WriteTxnMarkersRequest {
    let mut t = write_txn_markers_request::WritableTxnMarkerTopic::default();
    t.name = name(topic);
    t.partition_indexes = vec![0, 9];
    let mut m = write_txn_markers_request::WritableTxnMarker::default();
    m.producer_id = ProducerId(producer.0);
    m.producer_epoch = producer.1;
    m.transaction_result = false;
    m.topics = vec![t];
    let mut r = WriteTxnMarkersRequest::default();
    r.markers = vec![m];
    r
}

#[tokio::test]
async fn an_administrators_abort_marker_releases_read_committed_consumers() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    create(&b, "t", 1).await;
    let hanging = init(&b).await;
    assert_eq!(add_partition(&b, hanging, "t").await, 0);
    assert_eq!(produce(&b, "t", hanging, 0, 3).await, 0);
    assert_eq!(
        fetch_committed(&b, "t").await.1,
        0,
        "held at the open transaction"
    );

    let stale = (hanging.0, hanging.1 - 1);
    let a = super::write_txn_markers::handle(&ctx(&b, 1), abort_request("t", stale)).await;
    let partitions = &a.markers[0].topics[0].partitions;
    assert_eq!(
        partitions[0].error_code,
        ResponseError::InvalidProducerEpoch.code(),
        "a marker from an older epoch than the partition knows is refused"
    );

    let a = super::write_txn_markers::handle(&ctx(&b, 1), abort_request("t", hanging)).await;
    encodes_at_every_version(ApiKey::WriteTxnMarkers, &a);
    assert_eq!(a.markers[0].producer_id.0, hanging.0);
    let partitions = &a.markers[0].topics[0].partitions;
    assert_eq!(
        (partitions[0].partition_index, partitions[0].error_code),
        (0, 0)
    );
    assert_eq!(
        (partitions[1].partition_index, partitions[1].error_code),
        (9, ResponseError::UnknownTopicOrPartition.code())
    );
    let (_, lso, aborted) = fetch_committed(&b, "t").await;
    assert_eq!(
        (lso, aborted),
        (4, 1),
        "the three records and their marker, aborted"
    );
}

#[tokio::test]
async fn an_idle_transactional_id_expires_and_its_next_init_starts_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let config = BrokerConfig::parse_from([
        "krait-broker",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--transactional-id-expiration-ms",
        "1000",
    ]);
    let b = ready(config).await;
    create(&b, "t", 1).await;
    let first = init(&b).await;
    assert_eq!(add_partition(&b, first, "t").await, 0);
    assert_eq!(end(&b, first, true, 3).await, 0);
    let expired = b
        .cluster
        .wait_applied(
            |image| !image.transactions.contains_key(tid().0.as_str()),
            std::time::Duration::from_secs(10),
        )
        .await;
    assert!(expired.is_ok(), "the settled id is forgotten");
    let again = init(&b).await;
    assert_ne!(again.0, first.0, "a new producer id, never the old one");
    assert_eq!(again.1, 0);
}
