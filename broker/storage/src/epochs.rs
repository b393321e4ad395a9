//! The leader epoch cache of one partition: the offset at which each leader epoch began.
//!
//! It answers OffsetForLeaderEpoch — "where does epoch E end in your log?" — which a follower
//! asks a new leader after a leader change to find the point where their logs diverge, and
//! truncates to (Kafka's KIP-101 rule), instead of truncating to its high watermark and losing
//! acknowledged records.
//!
//! Pure: the log persists the entries with the batches that create them.

/// Kafka's "no epoch" and "no offset" answers.
pub const UNDEFINED_EPOCH: i32 = -1;
pub const UNDEFINED_OFFSET: i64 = -1;

/// One leader epoch and the first offset written in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

/// The epochs of a log, oldest first; epochs and start offsets both strictly increase.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    pub fn from_entries(mut entries: Vec<EpochEntry>) -> Self {
        entries.sort_by_key(|e| e.epoch);
        Self { entries }
    }

    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset` if it is newer than every known epoch.
    /// Returns the entry to persist, if any. Batches of an older epoch (a follower copying a log
    /// written by several leaders) never rewrite history.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> Option<EpochEntry> {
        if epoch < 0 || self.latest_epoch().is_some_and(|latest| epoch <= latest) {
            return None;
        }
        let entry = EpochEntry {
            epoch,
            start_offset,
        };
        self.entries.push(entry);
        Some(entry)
    }

    /// Where `epoch` ends in a log ending at `log_end_offset`: the largest known epoch not above
    /// it, and the start offset of the next epoch (or the log end if there is none). Undefined
    /// when the log knows no epoch that old.
    pub fn end_offset_for(&self, epoch: i32, log_end_offset: i64) -> (i32, i64) {
        let floor = self.entries.iter().rev().find(|e| e.epoch <= epoch);
        let Some(floor) = floor else {
            return (UNDEFINED_EPOCH, UNDEFINED_OFFSET);
        };
        let end = self
            .entries
            .iter()
            .find(|e| e.epoch > epoch)
            .map_or(log_end_offset, |next| next.start_offset);
        (floor.epoch, end)
    }

    /// Forgets the epochs that began at or after `offset` (the log was truncated there).
    /// Returns the epochs removed.
    pub fn truncate_from_end(&mut self, offset: i64) -> Vec<i32> {
        let keep = self.entries.partition_point(|e| e.start_offset < offset);
        self.entries.drain(keep..).map(|e| e.epoch).collect()
    }

    /// The log now starts at `offset` (retention): epochs wholly before it go, and the epoch
    /// containing it starts there. Returns (removed epochs, rewritten entry).
    pub fn truncate_from_start(&mut self, offset: i64) -> (Vec<i32>, Option<EpochEntry>) {
        let containing = self.entries.partition_point(|e| e.start_offset <= offset);
        if containing == 0 {
            return (Vec::new(), None);
        }
        let removed: Vec<i32> = self
            .entries
            .drain(..containing - 1)
            .map(|e| e.epoch)
            .collect();
        let first = &mut self.entries[0];
        if first.start_offset == offset {
            return (removed, None);
        }
        first.start_offset = offset;
        (removed, Some(*first))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        LeaderEpochCache::from_entries(
            entries
                .iter()
                .map(|(epoch, start_offset)| EpochEntry {
                    epoch: *epoch,
                    start_offset: *start_offset,
                })
                .collect(),
        )
    }

    #[test]
    fn only_newer_epochs_are_recorded() {
        let mut c = LeaderEpochCache::default();
        assert!(c.assign(0, 0).is_some());
        assert!(c.assign(0, 5).is_none());
        assert!(c.assign(2, 7).is_some());
        assert!(c.assign(1, 9).is_none());
        assert!(c.assign(-1, 9).is_none());
        assert_eq!(c, cache(&[(0, 0), (2, 7)]));
    }

    #[test]
    fn end_offset_is_the_next_epochs_start_or_the_log_end() {
        let c = cache(&[(0, 0), (2, 7), (5, 20)]);
        assert_eq!(c.end_offset_for(0, 30), (0, 7));
        assert_eq!(
            c.end_offset_for(1, 30),
            (0, 7),
            "unknown epoch answers its floor"
        );
        assert_eq!(c.end_offset_for(2, 30), (2, 20));
        assert_eq!(c.end_offset_for(5, 30), (5, 30));
        assert_eq!(c.end_offset_for(9, 30), (5, 30));
        let later = cache(&[(3, 10)]);
        assert_eq!(
            later.end_offset_for(2, 30),
            (UNDEFINED_EPOCH, UNDEFINED_OFFSET)
        );
    }

    #[test]
    fn truncating_the_end_forgets_epochs_that_began_there_or_later() {
        let mut c = cache(&[(0, 0), (2, 7), (5, 20)]);
        assert_eq!(c.truncate_from_end(20), vec![5]);
        assert_eq!(c.truncate_from_end(8), Vec::<i32>::new());
        assert_eq!(c, cache(&[(0, 0), (2, 7)]));
        assert_eq!(c.truncate_from_end(0), vec![0, 2]);
        assert_eq!(c.latest_epoch(), None);
    }

    #[test]
    fn truncating_the_start_moves_the_containing_epoch_start() {
        let mut c = cache(&[(0, 0), (2, 7), (5, 20)]);
        assert_eq!(c.truncate_from_start(0), (vec![], None));
        assert_eq!(
            c.truncate_from_start(9),
            (
                vec![0],
                Some(EpochEntry {
                    epoch: 2,
                    start_offset: 9
                })
            )
        );
        assert_eq!(c.truncate_from_start(20), (vec![2], None));
        assert_eq!(c, cache(&[(5, 20)]));
    }

    #[test]
    fn a_follower_truncates_where_the_new_leaders_epoch_ends() {
        // The old leader wrote epoch 1 up to offset 15; the new leader (elected at epoch 2)
        // had only received epoch 1 up to offset 12 and then wrote its own epoch from 12.
        let follower = cache(&[(0, 0), (1, 10)]);
        let leader = cache(&[(0, 0), (1, 10), (2, 12)]);
        let (epoch, end) = leader.end_offset_for(follower.latest_epoch().unwrap(), 40);
        assert_eq!((epoch, end), (1, 12));
    }
}
