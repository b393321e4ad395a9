use super::*;
use proptest::prelude::*;

fn open_at(first: Option<i64>) -> ProducerEntry {
    ProducerEntry {
        txn_first_offset: first,
        ..ProducerEntry::default()
    }
}

fn aborted(first_offset: i64, last_offset: i64) -> AbortedTxn {
    AbortedTxn {
        producer_id: 9,
        first_offset,
        last_offset,
    }
}

#[test]
fn without_open_transactions_the_lso_is_the_high_watermark() {
    assert_eq!(last_stable_offset(50, std::iter::empty()), 50);
    assert_eq!(
        last_stable_offset_of(50, [open_at(None), open_at(None)].iter()),
        50
    );
}

#[test]
fn the_earliest_open_transaction_holds_the_lso_back() {
    let producers = [open_at(Some(30)), open_at(Some(12)), open_at(None)];
    assert_eq!(last_stable_offset_of(50, producers.iter()), 12);
}

#[test]
fn the_lso_never_passes_the_high_watermark() {
    assert_eq!(last_stable_offset_of(10, [open_at(Some(40))].iter()), 10);
}

#[test]
fn a_transaction_starts_at_its_first_batch_and_keeps_that_start() {
    let mut e = ProducerEntry::default();
    on_transactional_batch(&mut e, 5);
    on_transactional_batch(&mut e, 9);
    assert_eq!(e.txn_first_offset, Some(5));
}

#[test]
fn a_commit_marker_closes_the_transaction_and_indexes_nothing() {
    let mut e = open_at(Some(5));
    assert_eq!(on_marker(&mut e, 9, 0, MarkerKind::Commit, 20), None);
    assert_eq!(e.txn_first_offset, None);
}

#[test]
fn an_abort_marker_closes_the_transaction_and_indexes_its_range() {
    let mut e = open_at(Some(5));
    assert_eq!(
        on_marker(&mut e, 9, 0, MarkerKind::Abort, 20),
        Some(aborted(5, 20))
    );
    assert_eq!(e.txn_first_offset, None);
}

#[test]
fn an_abort_marker_for_a_partition_without_records_of_the_transaction_indexes_nothing() {
    let mut e = ProducerEntry::default();
    assert_eq!(on_marker(&mut e, 9, 0, MarkerKind::Abort, 20), None);
}

#[test]
fn a_marker_with_a_newer_epoch_makes_it_the_producers_and_forgets_old_sequences() {
    let mut e = open_at(Some(5));
    e.batches.push_back(crate::producers::BatchMetadata {
        first_seq: 0,
        last_seq: 4,
        base_offset: 5,
        last_offset: 9,
    });
    on_marker(&mut e, 9, 1, MarkerKind::Abort, 20);
    assert_eq!(e.epoch, 1);
    assert!(e.batches.is_empty());
}

#[test]
fn a_read_lists_the_aborted_transactions_with_records_in_its_range() {
    let index = [
        aborted(0, 4),
        aborted(10, 19),
        aborted(15, 30),
        aborted(40, 41),
    ];
    assert_eq!(
        aborted_overlapping(&index, 5, 16),
        vec![aborted(10, 19), aborted(15, 30)]
    );
    assert_eq!(aborted_overlapping(&index, 31, 40), vec![]);
    assert_eq!(aborted_overlapping(&index, 0, 100).len(), 4);
}

proptest! {
    #[test]
    fn aborted_index_entries_round_trip(pid in any::<i64>(), first in any::<i64>(), last in any::<i64>()) {
        let a = AbortedTxn { producer_id: pid, first_offset: first, last_offset: last };
        prop_assert_eq!(decode_aborted(last, &encode_aborted(&a)), Some(a));
    }

    #[test]
    fn the_lso_is_at_most_every_open_start_and_the_high_watermark(hw in 0i64..1000, starts in proptest::collection::vec(proptest::option::of(0i64..1000), 0..10)) {
        let producers: Vec<_> = starts.iter().map(|s| open_at(*s)).collect();
        let lso = last_stable_offset_of(hw, producers.iter());
        prop_assert!(lso <= hw);
        prop_assert!(starts.iter().flatten().all(|s| lso <= *s));
        prop_assert!(lso == hw || starts.contains(&Some(lso)));
    }
}
