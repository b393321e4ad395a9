//! Transactions through the handlers of one broker (its own coordinator and partition leader):
//! InitProducerId, AddPartitionsToTxn, transactional Produce, EndTxn, then what read-committed
//! Fetch and ListOffsets answer. Transitions themselves are specified in
//! `krait_image::transaction`'s tests, the partition side in `krait-storage`'s.

use bytes::Bytes;
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::*;
use krait_protocol::kafka_protocol::protocol::StrBytes;
use krait_protocol::testing::TestBatch;

use super::tests::{
    broker, create, ctx, encodes_at_every_version, fetch_request, name, produce_request,
};
use crate::broker::Broker;

pub(super) fn tid() -> TransactionalId {
    TransactionalId(StrBytes::from_static_str("tx"))
}

pub(super) async fn init(b: &Broker) -> (i64, i16) {
    let mut r = InitProducerIdRequest::default();
    r.transactional_id = Some(tid());
    r.transaction_timeout_ms = 60_000;
    let a = super::init_producer_id::handle(&ctx(b, 4), r).await;
    assert_eq!(a.error_code, 0);
    (a.producer_id.0, a.producer_epoch)
}

pub(super) async fn add_partition(b: &Broker, (id, epoch): (i64, i16), topic: &str) -> i16 {
    let mut t = add_partitions_to_txn_request::AddPartitionsToTxnTopic::default();
    t.name = name(topic);
    t.partitions = vec![0];
    let mut r = AddPartitionsToTxnRequest::default();
    r.v3_and_below_transactional_id = tid();
    r.v3_and_below_producer_id = ProducerId(id);
    r.v3_and_below_producer_epoch = epoch;
    r.v3_and_below_topics = vec![t];
    let a = super::add_partitions_to_txn::handle(&ctx(b, 3), r).await;
    encodes_at_every_version(ApiKey::AddPartitionsToTxn, &a);
    a.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
}

pub(super) async fn end(b: &Broker, (id, epoch): (i64, i16), commit: bool, version: i16) -> i16 {
    let mut r = EndTxnRequest::default();
    r.transactional_id = tid();
    r.producer_id = ProducerId(id);
    r.producer_epoch = epoch;
    r.committed = commit;
    let a = super::end_txn::handle(&ctx(b, version), r).await;
    encodes_at_every_version(ApiKey::EndTxn, &a);
    a.error_code
}

pub(super) async fn produce(
    b: &Broker,
    topic: &str,
    (id, epoch): (i64, i16),
    first_seq: i32,
    n: usize,
) -> i16 {
    let values: Vec<String> = (0..n).map(|i| format!("v{i}")).collect();
    let records: Bytes = TestBatch::of(values)
        .transactional(id, epoch, first_seq)
        .encode();
    let r = super::produce::handle(&ctx(b, 9), produce_request(topic, 0, records, -1)).await;
    r.0.unwrap().responses[0].partition_responses[0].error_code
}

/// (records bytes, last stable offset, aborted transactions) of a read-committed fetch.
pub(super) async fn fetch_committed(b: &Broker, topic: &str) -> (usize, i64, usize) {
    let mut request = fetch_request(topic, 0, 0, 0, 0);
    request.isolation_level = 1;
    let r = super::fetch::handle(&ctx(b, 11), request).await;
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    let bytes = p.records.as_ref().map_or(0, |r| r.len());
    (
        bytes,
        p.last_stable_offset,
        p.aborted_transactions.as_ref().map_or(0, Vec::len),
    )
}

#[tokio::test]
async fn find_coordinator_names_the_controller_for_transactional_ids() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    let mut r = FindCoordinatorRequest::default();
    r.key_type = 1;
    r.coordinator_keys = vec![StrBytes::from_static_str("tx")];
    let a = super::find_coordinator::handle(&ctx(&b, 4), r).await;
    assert_eq!(a.coordinators[0].error_code, 0);
    assert_eq!(a.coordinators[0].node_id.0, b.node_id());
}

#[tokio::test]
async fn a_committed_transaction_becomes_readable_and_an_aborted_one_is_listed() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    create(&b, "t", 1).await;
    let producer = init(&b).await;
    assert_eq!(add_partition(&b, producer, "t").await, 0);
    assert_eq!(produce(&b, "t", producer, 0, 3).await, 0);
    let (bytes, lso, _) = fetch_committed(&b, "t").await;
    assert_eq!(
        (bytes, lso),
        (0, 0),
        "an open transaction holds read_committed at its start"
    );
    assert_eq!(end(&b, producer, true, 3).await, 0);
    let (bytes, lso, aborted) = fetch_committed(&b, "t").await;
    assert!(bytes > 0);
    assert_eq!((lso, aborted), (4, 0));
    assert_eq!(
        end(&b, producer, true, 3).await,
        0,
        "a retried commit succeeds"
    );

    assert_eq!(add_partition(&b, producer, "t").await, 0);
    assert_eq!(produce(&b, "t", producer, 3, 2).await, 0);
    assert_eq!(end(&b, producer, false, 3).await, 0);
    let (_, lso, aborted) = fetch_committed(&b, "t").await;
    assert_eq!((lso, aborted), (7, 1));
}

#[tokio::test]
async fn re_initialising_aborts_the_open_transaction_and_fences_the_old_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    create(&b, "t", 1).await;
    let zombie = init(&b).await;
    assert_eq!(add_partition(&b, zombie, "t").await, 0);
    assert_eq!(produce(&b, "t", zombie, 0, 3).await, 0);
    let successor = init(&b).await;
    assert_eq!(successor.0, zombie.0);
    assert_eq!(
        successor.1,
        zombie.1 + 2,
        "one bump for the abort, one for the new producer"
    );
    assert_eq!(
        produce(&b, "t", zombie, 3, 1).await,
        ResponseError::InvalidProducerEpoch.code()
    );
    assert_eq!(
        end(&b, zombie, true, 3).await,
        ResponseError::ProducerFenced.code()
    );
    assert_eq!(
        end(&b, zombie, true, 1).await,
        ResponseError::InvalidProducerEpoch.code(),
        "before KIP-588 a fenced producer hears INVALID_PRODUCER_EPOCH"
    );
    let (_, lso, aborted) = fetch_committed(&b, "t").await;
    assert_eq!((lso, aborted), (4, 1));
}

#[tokio::test]
async fn end_txn_without_an_open_transaction_is_an_invalid_state() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    let producer = init(&b).await;
    assert_eq!(
        end(&b, producer, true, 3).await,
        ResponseError::InvalidTxnState.code()
    );
    assert_eq!(
        end(&b, (producer.0 + 1, 0), true, 3).await,
        ResponseError::InvalidProducerIdMapping.code()
    );
}

#[tokio::test]
async fn describe_and_list_transactions_show_the_coordinators_state() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    create(&b, "t", 1).await;
    let producer = init(&b).await;
    assert_eq!(add_partition(&b, producer, "t").await, 0);
    let mut r = DescribeTransactionsRequest::default();
    r.transactional_ids = vec![tid(), TransactionalId(StrBytes::from_static_str("nope"))];
    let a = super::describe_transactions::handle(&ctx(&b, 0), r).await;
    encodes_at_every_version(ApiKey::DescribeTransactions, &a);
    let s = &a.transaction_states[0];
    assert_eq!((s.error_code, s.transaction_state.as_str()), (0, "Ongoing"));
    assert_eq!((s.producer_id.0, s.producer_epoch), producer);
    assert_eq!(s.topics[0].partitions, vec![0]);
    assert_eq!(
        a.transaction_states[1].error_code,
        ResponseError::TransactionalIdNotFound.code()
    );
    let mut r = ListTransactionsRequest::default();
    r.state_filters = vec![
        StrBytes::from_static_str("Ongoing"),
        StrBytes::from_static_str("Bogus"),
    ];
    let a = super::list_transactions::handle(&ctx(&b, 1), r).await;
    encodes_at_every_version(ApiKey::ListTransactions, &a);
    assert_eq!(a.transaction_states.len(), 1);
    assert_eq!(a.unknown_state_filters.len(), 1);
    let mut r = ListTransactionsRequest::default();
    r.state_filters = vec![StrBytes::from_static_str("Empty")];
    let a = super::list_transactions::handle(&ctx(&b, 1), r).await;
    assert!(a.transaction_states.is_empty());
}

async fn txn_offset_commit(b: &Broker, producer: (i64, i16), member: &str, generation: i32) -> i16 {
    let mut p = txn_offset_commit_request::TxnOffsetCommitRequestPartition::default();
    p.committed_offset = 5;
    let mut t = txn_offset_commit_request::TxnOffsetCommitRequestTopic::default();
    t.name = name("t");
    t.partitions = vec![p];
    let mut r = TxnOffsetCommitRequest::default();
    r.transactional_id = tid();
    r.group_id = GroupId(StrBytes::from_static_str("g"));
    r.producer_id = ProducerId(producer.0);
    r.producer_epoch = producer.1;
    r.member_id = StrBytes::from_string(member.to_string());
    r.generation_id = generation;
    r.topics = vec![t];
    let a = super::txn_offset_commit::handle(&ctx(b, 3), r).await;
    encodes_at_every_version(ApiKey::TxnOffsetCommit, &a);
    a.topics[0].partitions[0].error_code
}

#[tokio::test]
async fn txn_offset_commit_v3_checks_the_group_identity_it_carries() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir).await;
    create(&b, "t", 1).await;
    let producer = init(&b).await;
    let mut r = AddOffsetsToTxnRequest::default();
    r.transactional_id = tid();
    r.producer_id = ProducerId(producer.0);
    r.producer_epoch = producer.1;
    r.group_id = GroupId(StrBytes::from_static_str("g"));
    let a = super::add_offsets_to_txn::handle(&ctx(&b, 3), r).await;
    assert_eq!(a.error_code, 0);
    assert_eq!(
        txn_offset_commit(&b, producer, "ghost", -1).await,
        ResponseError::UnknownMemberId.code(),
        "a member the group does not have"
    );
    assert_eq!(
        txn_offset_commit(&b, producer, "", 4).await,
        ResponseError::IllegalGeneration.code(),
        "a generation the group is not at"
    );
    assert_eq!(
        txn_offset_commit(&b, producer, "", -1).await,
        0,
        "no identity (a producer outside the group, or v0-v2) is not checked"
    );
}
