use super::*;
use crate::{ApplyError, ClusterImage, MetadataRecord};

const MAX: i32 = 900_000;

fn init(timeout_ms: i32, now_ms: i64) -> InitRequest {
    InitRequest {
        timeout_ms,
        max_timeout_ms: MAX,
        expected: None,
        now_ms,
    }
}

fn ready(decision: Result<InitDecision, TxnError>) -> TransactionMetadata {
    match decision {
        Ok(InitDecision::Ready(t)) => t,
        other => panic!("expected Ready, got {other:?}"),
    }
}

fn tp(topic: &str, partition: i32) -> (String, i32) {
    (topic.to_string(), partition)
}

fn commit(offset: i64) -> OffsetCommit {
    OffsetCommit {
        offset,
        leader_epoch: -1,
        metadata: None,
        commit_timestamp: 0,
    }
}

/// A producer initialised (id 100, epoch 0) with an open transaction on t-0.
fn ongoing() -> TransactionMetadata {
    let t = ready(init_producer(None, init(60_000, 0), 100));
    add_partitions(Some(&t), 100, 0, &[tp("t", 0)], 10).unwrap()
}

fn with_state(state: TxnState) -> TransactionMetadata {
    TransactionMetadata { state, ..ongoing() }
}

#[test]
fn a_new_transactional_id_gets_the_fresh_producer_id_at_epoch_zero() {
    let t = ready(init_producer(None, init(60_000, 5), 100));
    assert_eq!(
        (t.producer_id, t.producer_epoch, t.state),
        (100, 0, TxnState::Empty)
    );
    assert_eq!((t.timeout_ms, t.start_ms), (60_000, -1));
}

#[test]
fn each_init_of_a_settled_transactional_id_bumps_the_epoch_and_keeps_the_id() {
    let mut t = ready(init_producer(None, init(60_000, 0), 100));
    for expected_epoch in 1..4 {
        t = ready(init_producer(Some(&t), init(60_000, 0), 999));
        assert_eq!((t.producer_id, t.producer_epoch), (100, expected_epoch));
    }
    for state in [TxnState::CompleteCommit, TxnState::CompleteAbort] {
        let done = with_state(state);
        let t = ready(init_producer(Some(&done), init(60_000, 0), 999));
        assert_eq!((t.producer_epoch, t.state), (1, TxnState::Empty));
        assert!(t.partitions.is_empty());
    }
}

#[test]
fn an_exhausted_epoch_moves_to_a_fresh_producer_id() {
    let t = TransactionMetadata {
        producer_epoch: i16::MAX - 1,
        ..with_state(TxnState::CompleteCommit)
    };
    let next = ready(init_producer(Some(&t), init(60_000, 0), 555));
    assert_eq!((next.producer_id, next.producer_epoch), (555, 0));
}

#[test]
fn init_with_an_open_transaction_aborts_it_first_with_a_bumped_epoch() {
    let t = ongoing();
    match init_producer(Some(&t), init(60_000, 20), 999) {
        Ok(InitDecision::AbortFirst(abort)) => {
            assert_eq!(abort.state, TxnState::PrepareAbort);
            assert_eq!((abort.producer_id, abort.producer_epoch), (100, 1));
            assert_eq!(abort.partitions, t.partitions);
            let (done, offsets) = complete(&abort, 30).unwrap();
            assert!(offsets.is_empty());
            let next = ready(init_producer(Some(&done), init(60_000, 40), 999));
            assert_eq!((next.producer_id, next.producer_epoch), (100, 2));
        }
        other => panic!("expected AbortFirst, got {other:?}"),
    }
}

#[test]
fn init_while_markers_are_written_is_concurrent_transactions() {
    for state in [TxnState::PrepareCommit, TxnState::PrepareAbort] {
        assert_eq!(
            init_producer(Some(&with_state(state)), init(60_000, 0), 999),
            Err(TxnError::ConcurrentTransactions)
        );
    }
}

#[test]
fn a_timeout_above_the_maximum_or_not_positive_is_refused() {
    for timeout in [0, -1, MAX + 1] {
        assert_eq!(
            init_producer(None, init(timeout, 0), 1),
            Err(TxnError::InvalidTransactionTimeout)
        );
    }
    assert!(init_producer(None, init(MAX, 0), 1).is_ok());
}

#[test]
fn init_naming_the_current_producer_bumps_and_naming_an_old_epoch_is_fenced() {
    let t = TransactionMetadata {
        producer_epoch: 3,
        ..with_state(TxnState::Empty)
    };
    let mut request = init(60_000, 0);
    request.expected = Some((100, 3));
    assert_eq!(ready(init_producer(Some(&t), request, 1)).producer_epoch, 4);
    request.expected = Some((100, 2));
    assert_eq!(
        init_producer(Some(&t), request, 1),
        Err(TxnError::ProducerFenced)
    );
    request.expected = Some((7, 3));
    assert_eq!(
        init_producer(Some(&t), request, 1),
        Err(TxnError::InvalidProducerIdMapping)
    );
}

#[test]
fn the_first_add_partitions_opens_the_transaction_and_later_ones_extend_it() {
    let t = ongoing();
    assert_eq!((t.state, t.start_ms), (TxnState::Ongoing, 10));
    let t = add_partitions(Some(&t), 100, 0, &[tp("t", 1), tp("t", 0)], 50).unwrap();
    assert_eq!(t.partitions.len(), 2);
    assert_eq!((t.start_ms, t.last_update_ms), (10, 50));
}

#[test]
fn add_partitions_from_an_old_epoch_is_fenced_and_from_another_id_is_a_bad_mapping() {
    let t = ongoing();
    assert_eq!(
        add_partitions(
            Some(&TransactionMetadata {
                producer_epoch: 1,
                ..t.clone()
            }),
            100,
            0,
            &[],
            0
        ),
        Err(TxnError::ProducerFenced)
    );
    assert_eq!(
        add_partitions(Some(&t), 101, 0, &[], 0),
        Err(TxnError::InvalidProducerIdMapping)
    );
    assert_eq!(
        add_partitions(None, 100, 0, &[], 0),
        Err(TxnError::InvalidProducerIdMapping)
    );
}

#[test]
fn adding_to_a_transaction_being_completed_is_concurrent_transactions() {
    for state in [TxnState::PrepareCommit, TxnState::PrepareAbort] {
        let t = with_state(state);
        assert_eq!(
            add_partitions(Some(&t), 100, 0, &[tp("t", 3)], 0),
            Err(TxnError::ConcurrentTransactions)
        );
        assert_eq!(
            add_offsets(Some(&t), 100, 0, "g", 0),
            Err(TxnError::ConcurrentTransactions)
        );
    }
}

#[test]
fn a_new_transaction_after_a_completed_one_starts_empty() {
    let (done, _) = complete(&with_state(TxnState::PrepareCommit), 20).unwrap();
    let t = add_partitions(Some(&done), 100, 0, &[tp("u", 0)], 30).unwrap();
    assert_eq!(
        t.partitions.into_iter().collect::<Vec<_>>(),
        vec![tp("u", 0)]
    );
    assert_eq!(t.start_ms, 30);
}

#[test]
fn txn_offsets_need_the_group_added_and_wait_for_the_commit() {
    let t = ongoing();
    assert_eq!(
        commit_offsets(Some(&t), 100, 0, "g", vec![(tp("t", 0).0, 0, commit(5))], 0),
        Err(TxnError::InvalidTxnState)
    );
    let t = add_offsets(Some(&t), 100, 0, "g", 0).unwrap();
    let t = commit_offsets(Some(&t), 100, 0, "g", vec![("t".into(), 0, commit(5))], 0).unwrap();
    let t = commit_offsets(Some(&t), 100, 0, "g", vec![("t".into(), 0, commit(7))], 0).unwrap();
    let EndDecision::Prepare(prepared) = end_transaction(Some(&t), 100, 0, true, 0).unwrap() else {
        panic!("expected Prepare");
    };
    let (done, offsets) = complete(&prepared, 0).unwrap();
    assert_eq!(offsets["g"], vec![("t".to_string(), 0, commit(7))]);
    assert!(done.pending_offsets.is_empty());
}

#[test]
fn an_abort_drops_the_pending_offsets() {
    let t = add_offsets(Some(&ongoing()), 100, 0, "g", 0).unwrap();
    let t = commit_offsets(Some(&t), 100, 0, "g", vec![("t".into(), 0, commit(5))], 0).unwrap();
    let EndDecision::Prepare(prepared) = end_transaction(Some(&t), 100, 0, false, 0).unwrap()
    else {
        panic!("expected Prepare");
    };
    let (done, offsets) = complete(&prepared, 0).unwrap();
    assert!(offsets.is_empty());
    assert_eq!(done.state, TxnState::CompleteAbort);
}

#[test]
fn end_txn_prepares_from_ongoing_and_completes_to_the_matching_state() {
    for (commit, prepare, complete_state) in [
        (true, TxnState::PrepareCommit, TxnState::CompleteCommit),
        (false, TxnState::PrepareAbort, TxnState::CompleteAbort),
    ] {
        let Ok(EndDecision::Prepare(p)) = end_transaction(Some(&ongoing()), 100, 0, commit, 5)
        else {
            panic!("expected Prepare");
        };
        assert_eq!(p.state, prepare);
        assert_eq!(p.partitions.len(), 1, "markers go to every partition");
        let (done, _) = complete(&p, 6).unwrap();
        assert_eq!((done.state, done.start_ms), (complete_state, -1));
        assert!(done.partitions.is_empty());
    }
}

#[test]
fn a_retried_end_txn_after_completion_succeeds_and_the_opposite_is_invalid() {
    let committed = with_state(TxnState::CompleteCommit);
    assert_eq!(
        end_transaction(Some(&committed), 100, 0, true, 0),
        Ok(EndDecision::AlreadyDone)
    );
    assert_eq!(
        end_transaction(Some(&committed), 100, 0, false, 0),
        Err(TxnError::InvalidTxnState)
    );
    let aborted = with_state(TxnState::CompleteAbort);
    assert_eq!(
        end_transaction(Some(&aborted), 100, 0, false, 0),
        Ok(EndDecision::AlreadyDone)
    );
}

#[test]
fn end_txn_while_completing_is_concurrent_and_the_opposite_decision_is_invalid() {
    let p = with_state(TxnState::PrepareCommit);
    assert_eq!(
        end_transaction(Some(&p), 100, 0, true, 0),
        Err(TxnError::ConcurrentTransactions)
    );
    assert_eq!(
        end_transaction(Some(&p), 100, 0, false, 0),
        Err(TxnError::InvalidTxnState)
    );
}

#[test]
fn end_txn_without_a_transaction_is_invalid_and_from_a_zombie_is_fenced() {
    let empty = with_state(TxnState::Empty);
    assert_eq!(
        end_transaction(Some(&empty), 100, 0, true, 0),
        Err(TxnError::InvalidTxnState)
    );
    let bumped = TransactionMetadata {
        producer_epoch: 1,
        ..ongoing()
    };
    assert_eq!(
        end_transaction(Some(&bumped), 100, 0, true, 0),
        Err(TxnError::ProducerFenced)
    );
}

#[test]
fn only_prepare_states_complete() {
    for state in [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
    ] {
        assert_eq!(complete(&with_state(state), 0), None);
    }
}

#[test]
fn an_open_transaction_past_its_timeout_is_aborted_with_a_bumped_epoch() {
    let t = ongoing(); // started at 10 with a 60 s timeout
    assert_eq!(expire(&t, 60_010), None);
    let abort = expire(&t, 60_011).unwrap();
    assert_eq!(
        (abort.state, abort.producer_epoch),
        (TxnState::PrepareAbort, 1)
    );
    // The producer that let it expire is fenced once it is complete.
    let (done, _) = complete(&abort, 60_020).unwrap();
    assert_eq!(
        end_transaction(Some(&done), 100, 0, true, 0),
        Err(TxnError::ProducerFenced)
    );
    for state in [
        TxnState::Empty,
        TxnState::PrepareCommit,
        TxnState::CompleteAbort,
    ] {
        assert_eq!(expire(&with_state(state), i64::MAX), None);
    }
}

#[test]
fn the_image_keeps_transactions_and_never_reuses_their_producer_ids() {
    let mut image = ClusterImage::default();
    assert_eq!(
        image.next_transactional_producer_id,
        crate::image::FIRST_TRANSACTIONAL_PRODUCER_ID
    );
    let t = ready(init_producer(
        None,
        init(60_000, 0),
        image.next_transactional_producer_id,
    ));
    image
        .apply(&MetadataRecord::PutTransaction {
            transactional_id: "tx".into(),
            transaction: t.clone(),
        })
        .unwrap();
    assert_eq!(image.transactions["tx"], t);
    assert_eq!(image.next_transactional_producer_id, t.producer_id + 1);
    let json = serde_json::to_string(&image).unwrap();
    assert_eq!(serde_json::from_str::<ClusterImage>(&json).unwrap(), image);
}

#[test]
fn an_image_from_before_transactions_loads_with_the_first_transactional_id() {
    let mut json: serde_json::Value = serde_json::to_value(ClusterImage::default()).unwrap();
    let map = json.as_object_mut().unwrap();
    map.remove("transactions");
    map.remove("next_transactional_producer_id");
    let image: ClusterImage = serde_json::from_value(json).unwrap();
    assert_eq!(image, ClusterImage::default());
}

#[test]
fn only_a_settled_id_idle_past_the_expiration_expires() {
    let settled = TransactionMetadata {
        last_update_ms: 1_000,
        ..with_state(TxnState::CompleteCommit)
    };
    assert!(!id_expired(&settled, 1_500, 500));
    assert!(id_expired(&settled, 1_501, 500));
    for state in [TxnState::Empty, TxnState::CompleteAbort] {
        let t = TransactionMetadata {
            state,
            ..settled.clone()
        };
        assert!(id_expired(&t, 10_000, 500));
    }
    for state in [
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
    ] {
        let t = TransactionMetadata {
            state,
            ..settled.clone()
        };
        assert!(!id_expired(&t, i64::MAX, 500), "{state:?}");
    }
}

fn first_id() -> i64 {
    crate::image::FIRST_TRANSACTIONAL_PRODUCER_ID
}

fn allocate(first: i64, count: i64) -> MetadataRecord {
    MetadataRecord::AllocateProducerIds {
        broker: 1,
        first,
        count,
    }
}

#[test]
fn producer_id_blocks_are_handed_out_once_and_never_overlap_transactional_ids() {
    let mut image = ClusterImage::default();
    image.apply(&allocate(first_id(), 1000)).unwrap();
    assert_eq!(image.next_transactional_producer_id, first_id() + 1000);
    // Another broker proposing from the same stale counter is refused, and told where to start.
    assert_eq!(
        image.apply(&allocate(first_id(), 1000)),
        Err(ApplyError::ProducerIdTaken {
            first: first_id(),
            next: first_id() + 1000
        })
    );
    image.apply(&allocate(first_id() + 1000, 1000)).unwrap();
    // A transactional id decided on the image before the blocks cannot take an id inside them.
    let stale = ready(init_producer(None, init(60_000, 0), first_id()));
    let put = |t: &TransactionMetadata| MetadataRecord::PutTransaction {
        transactional_id: "tx".into(),
        transaction: t.clone(),
    };
    assert!(matches!(
        image.apply(&put(&stale)),
        Err(ApplyError::ProducerIdTaken { .. })
    ));
    let fresh = ready(init_producer(
        None,
        init(60_000, 0),
        image.next_transactional_producer_id,
    ));
    image.apply(&put(&fresh)).unwrap();
    // Its own id stays its own on every later state.
    let bumped = ready(init_producer(Some(&fresh), init(60_000, 0), -1));
    image.apply(&put(&bumped)).unwrap();
    assert_eq!(image.next_transactional_producer_id, fresh.producer_id + 1);
}

#[test]
fn an_empty_or_overflowing_block_is_refused() {
    let mut image = ClusterImage::default();
    for record in [allocate(first_id(), 0), allocate(i64::MAX - 1, 10)] {
        assert!(image.apply(&record).is_err());
    }
    assert_eq!(image.next_transactional_producer_id, first_id());
}

#[test]
fn removing_an_expired_id_forgets_it_only_if_unchanged_and_keeps_its_producer_id_used() {
    let mut image = ClusterImage::default();
    let t = ready(init_producer(None, init(60_000, 0), first_id()));
    image
        .apply(&MetadataRecord::PutTransaction {
            transactional_id: "tx".into(),
            transaction: t.clone(),
        })
        .unwrap();
    let remove = |epoch| MetadataRecord::RemoveTransaction {
        transactional_id: "tx".into(),
        producer_id: t.producer_id,
        producer_epoch: epoch,
    };
    image.apply(&remove(t.producer_epoch + 1)).unwrap();
    assert!(image.transactions.contains_key("tx"), "a newer epoch stays");
    image.apply(&remove(t.producer_epoch)).unwrap();
    assert!(!image.transactions.contains_key("tx"));
    assert_eq!(image.next_transactional_producer_id, t.producer_id + 1);
    // Starting afresh takes a new producer id.
    let again = ready(init_producer(
        None,
        init(60_000, 0),
        image.next_transactional_producer_id,
    ));
    assert_ne!(again.producer_id, t.producer_id);
}
