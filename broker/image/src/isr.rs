//! The partition leader's replication rules: how far each follower has caught up, the high
//! watermark, which followers leave or rejoin the ISR, and when an `acks=all` write completes.
//!
//! The leader's replication runtime feeds follower fetches and the clock in and acts on what
//! these functions return (advance the high watermark, ask the controller for an ISR change,
//! answer a produce); none of that I/O is here.

use std::collections::BTreeMap;

use crate::BrokerId;

/// What the leader knows of one follower, from its fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerProgress {
    /// The offset the follower fetched from last: everything before it is on the follower.
    pub log_end_offset: i64,
    /// The last time the follower had everything the leader had (Kafka's lastCaughtUpTime).
    pub last_caught_up_ms: i64,
    /// The leader's log end offset and the time at the follower's previous fetch.
    previous_fetch_leader_leo: i64,
    previous_fetch_ms: i64,
}

impl FollowerProgress {
    /// A follower the leader has not heard from yet. It counts as caught up at `now_ms`, so a new
    /// leader gives each follower a full `replica.lag.time.max.ms` before dropping it.
    pub fn new(now_ms: i64) -> Self {
        Self {
            log_end_offset: -1,
            last_caught_up_ms: now_ms,
            previous_fetch_leader_leo: i64::MAX,
            previous_fetch_ms: now_ms,
        }
    }

    /// When the follower last fetched.
    pub fn last_fetch_ms(&self) -> i64 {
        self.previous_fetch_ms
    }

    /// Records a fetch at `fetch_offset` while the leader's log ended at `leader_leo`.
    ///
    /// A follower is caught up when it fetches the leader's end; a follower that keeps fetching
    /// never quite at the end of a busy log is still caught up as of its previous fetch if it has
    /// now read everything the leader had back then (Kafka's rule, so steady traffic does not
    /// push healthy followers out of the ISR).
    pub fn on_fetch(&mut self, fetch_offset: i64, leader_leo: i64, now_ms: i64) {
        if fetch_offset >= leader_leo {
            self.last_caught_up_ms = now_ms;
        } else if fetch_offset >= self.previous_fetch_leader_leo {
            self.last_caught_up_ms = self.last_caught_up_ms.max(self.previous_fetch_ms);
        }
        self.log_end_offset = fetch_offset;
        self.previous_fetch_leader_leo = leader_leo;
        self.previous_fetch_ms = now_ms;
    }

    /// The leader itself stood still for `stall_ms` (stopped, starved of CPU, its clock jumped):
    /// no fetch could be answered then, so that time does not count as the follower's lag. A
    /// follower caught up when the leader stalled is still caught up when it resumes, instead
    /// of being dropped from the ISR by the first check after the stall.
    pub fn excuse(&mut self, stall_ms: i64, now_ms: i64) {
        self.last_caught_up_ms = (self.last_caught_up_ms + stall_ms.max(0)).min(now_ms);
    }
}

/// The high watermark the ISR allows: the smallest log end offset among its members. `None` while
/// an ISR member's position is unknown (a new leader waits for each follower's first fetch).
/// The caller never moves the high watermark backwards.
pub fn high_watermark(
    leader: BrokerId,
    leader_leo: i64,
    isr: &[BrokerId],
    followers: &BTreeMap<BrokerId, FollowerProgress>,
) -> Option<i64> {
    isr.iter().try_fold(leader_leo, |hw, r| {
        if *r == leader {
            return Some(hw);
        }
        let leo = followers.get(r)?.log_end_offset;
        (leo >= 0).then_some(hw.min(leo))
    })
}

/// The ISR without the followers that have not caught up for longer than `lag_max_ms`.
/// The leader always stays.
pub fn shrink(
    leader: BrokerId,
    isr: &[BrokerId],
    followers: &BTreeMap<BrokerId, FollowerProgress>,
    now_ms: i64,
    lag_max_ms: i64,
) -> Vec<BrokerId> {
    isr.iter()
        .copied()
        .filter(|r| {
            *r == leader
                || followers
                    .get(r)
                    .is_none_or(|f| now_ms - f.last_caught_up_ms <= lag_max_ms)
        })
        .collect()
}

/// The ISR with every out-of-sync replica that has caught up: it holds the high watermark and
/// everything written in the current leader epoch, so electing it later cannot lose a record
/// the leader acknowledged.
pub fn expand(
    isr: &[BrokerId],
    replicas: &[BrokerId],
    followers: &BTreeMap<BrokerId, FollowerProgress>,
    high_watermark: i64,
    leader_epoch_start_offset: i64,
) -> Vec<BrokerId> {
    let mut expanded = isr.to_vec();
    for r in replicas {
        if expanded.contains(r) {
            continue;
        }
        if followers.get(r).is_some_and(|f| {
            f.log_end_offset >= high_watermark && f.log_end_offset >= leader_epoch_start_offset
        }) {
            expanded.push(*r);
        }
    }
    expanded
}

/// Where an `acks=all` produce stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcksAll {
    /// The high watermark passed the batch with enough replicas in sync: acknowledge.
    Complete,
    /// Not replicated far enough yet: keep waiting (until the request timeout).
    Pending,
    /// Replicated, but the ISR shrank below `min.insync.replicas` meanwhile.
    NotEnoughReplicasAfterAppend,
}

/// Whether an `acks=all` batch may be appended at all: Kafka refuses with NOT_ENOUGH_REPLICAS,
/// appending nothing, when the ISR is already below `min.insync.replicas`.
pub fn may_append_acks_all(isr_len: usize, min_insync_replicas: usize) -> bool {
    isr_len >= min_insync_replicas
}

/// Where an appended `acks=all` batch ending at `end_offset` (its last offset + 1) stands.
pub fn acks_all(
    end_offset: i64,
    high_watermark: i64,
    isr_len: usize,
    min_insync_replicas: usize,
) -> AcksAll {
    if high_watermark < end_offset {
        AcksAll::Pending
    } else if isr_len < min_insync_replicas {
        AcksAll::NotEnoughReplicasAfterAppend
    } else {
        AcksAll::Complete
    }
}

/// Where a consumer in `client_rack` should read from (KIP-392, Kafka's
/// `RackAwareReplicaSelector`): `None` to keep reading from the leader, or the follower to
/// send it to. The leader stays when it is in the client's rack itself; otherwise the choice is
/// an ISR follower in that rack whose log already holds `fetch_offset`, the furthest ahead,
/// then the most recently caught up, then the lowest id. `rack_of` gives a broker's rack.
pub fn preferred_read_replica<'a>(
    client_rack: &str,
    leader: BrokerId,
    isr: &[BrokerId],
    followers: &BTreeMap<BrokerId, FollowerProgress>,
    fetch_offset: i64,
    rack_of: impl Fn(BrokerId) -> Option<&'a str>,
) -> Option<BrokerId> {
    if client_rack.is_empty() || rack_of(leader) == Some(client_rack) {
        return None;
    }
    followers
        .iter()
        .filter(|(id, p)| {
            **id != leader
                && isr.contains(id)
                && rack_of(**id) == Some(client_rack)
                && p.log_end_offset >= fetch_offset
        })
        .max_by_key(|(id, p)| {
            (
                p.log_end_offset,
                p.last_caught_up_ms,
                std::cmp::Reverse(**id),
            )
        })
        .map(|(id, _)| *id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_consumer_reads_from_an_isr_follower_in_its_rack_that_holds_its_offset() {
        let rack = |id: BrokerId| match id {
            1 => Some("a"),
            2 | 3 => Some("b"),
            4 => Some("c"),
            _ => None,
        };
        let followers: BTreeMap<BrokerId, FollowerProgress> = [
            (2, progress(100, 5)),
            (3, progress(120, 5)),
            (4, progress(200, 5)),
        ]
        .into();
        let pick = |client: &str, isr: &[BrokerId], offset| {
            preferred_read_replica(client, 1, isr, &followers, offset, rack)
        };
        assert_eq!(
            pick("b", &[1, 2, 3, 4], 50),
            Some(3),
            "the furthest ahead in rack b"
        );
        assert_eq!(pick("b", &[1, 2, 4], 50), Some(2), "only ISR members");
        assert_eq!(pick("b", &[1, 2, 3, 4], 110), Some(3));
        assert_eq!(
            pick("b", &[1, 2, 3, 4], 130),
            None,
            "none holds offset 130 yet"
        );
        assert_eq!(
            pick("a", &[1, 2, 3, 4], 50),
            None,
            "the leader is in the client's rack"
        );
        assert_eq!(pick("", &[1, 2, 3, 4], 50), None, "no client.rack");
        assert_eq!(
            pick("z", &[1, 2, 3, 4], 50),
            None,
            "no replica in that rack"
        );
        let tied: BTreeMap<BrokerId, FollowerProgress> =
            [(2, progress(100, 5)), (3, progress(100, 9))].into();
        assert_eq!(
            preferred_read_replica("b", 1, &[1, 2, 3], &tied, 0, rack),
            Some(3),
            "then the most recently caught up"
        );
    }

    fn progress(leo: i64, caught_up: i64) -> FollowerProgress {
        FollowerProgress {
            log_end_offset: leo,
            last_caught_up_ms: caught_up,
            previous_fetch_leader_leo: i64::MAX,
            previous_fetch_ms: caught_up,
        }
    }

    fn followers(entries: &[(BrokerId, FollowerProgress)]) -> BTreeMap<BrokerId, FollowerProgress> {
        entries.iter().copied().collect()
    }

    #[test]
    fn high_watermark_is_the_smallest_log_end_offset_in_the_isr() {
        let f = followers(&[(2, progress(7, 0)), (3, progress(4, 0))]);
        assert_eq!(high_watermark(1, 10, &[1, 2, 3], &f), Some(4));
        assert_eq!(high_watermark(1, 10, &[1, 2], &f), Some(7));
        assert_eq!(high_watermark(1, 3, &[1, 2], &f), Some(3));
        assert_eq!(high_watermark(1, 10, &[1], &f), Some(10));
    }

    #[test]
    fn high_watermark_waits_for_an_isr_member_the_leader_has_not_heard_from() {
        let f = followers(&[(2, FollowerProgress::new(0))]);
        assert_eq!(high_watermark(1, 10, &[1, 2], &f), None);
        assert_eq!(high_watermark(1, 10, &[1, 3], &f), None);
    }

    #[test]
    fn a_stall_of_the_leader_does_not_count_as_the_followers_lag() {
        let mut f = progress(5, 1_000);
        f.excuse(4_000, 5_100);
        assert_eq!(f.last_caught_up_ms, 5_000);
        let followers = BTreeMap::from([(2, f)]);
        assert_eq!(shrink(1, &[1, 2], &followers, 5_100, 3_000), vec![1, 2]);
        // A follower that lagged before the stall still lags after it, by the same amount.
        let mut lagging = progress(5, 1_000);
        lagging.excuse(1_000, 6_000);
        assert_eq!(lagging.last_caught_up_ms, 2_000);
        let followers = BTreeMap::from([(2, lagging)]);
        assert_eq!(shrink(1, &[1, 2], &followers, 6_000, 3_000), vec![1]);
        // Never caught up in the future.
        let mut f = progress(5, 1_000);
        f.excuse(10_000, 2_000);
        assert_eq!(f.last_caught_up_ms, 2_000);
    }

    #[test]
    fn fetching_the_leaders_end_marks_the_follower_caught_up() {
        let mut f = FollowerProgress::new(0);
        f.on_fetch(5, 10, 100);
        assert_eq!((f.log_end_offset, f.last_caught_up_ms), (5, 0));
        f.on_fetch(10, 10, 200);
        assert_eq!(f.last_caught_up_ms, 200);
    }

    #[test]
    fn reading_what_the_leader_had_at_the_previous_fetch_counts_as_caught_up_then() {
        let mut f = FollowerProgress::new(0);
        f.on_fetch(5, 10, 1_000); // behind
        f.on_fetch(10, 20, 2_000); // has what the leader had at 1_000, while it grew further
        assert_eq!(f.last_caught_up_ms, 1_000);
        f.on_fetch(15, 30, 3_000); // did not reach 20: no progress credited
        assert_eq!(f.last_caught_up_ms, 1_000);
    }

    #[test]
    fn followers_lagging_past_the_limit_leave_the_isr_and_the_leader_stays() {
        let f = followers(&[(2, progress(9, 1_000)), (3, progress(9, 9_500))]);
        assert_eq!(shrink(1, &[1, 2, 3], &f, 11_000, 10_000), vec![1, 2, 3]);
        assert_eq!(shrink(1, &[1, 2, 3], &f, 11_001, 10_000), vec![1, 3]);
        assert_eq!(shrink(1, &[1], &f, i64::MAX, 0), vec![1]);
    }

    #[test]
    fn a_follower_rejoins_once_it_holds_the_high_watermark_and_the_current_epoch() {
        let f = followers(&[(2, progress(8, 0)), (3, progress(10, 0))]);
        assert_eq!(expand(&[1], &[1, 2, 3], &f, 10, 0), vec![1, 3]);
        assert_eq!(expand(&[1], &[1, 2, 3], &f, 8, 0), vec![1, 2, 3]);
        assert_eq!(expand(&[1], &[1, 2, 3], &f, 8, 9), vec![1, 3]);
        assert_eq!(
            expand(&[1], &[1, 2], &f, 8, 0),
            vec![1, 2],
            "only assigned replicas"
        );
    }

    #[test]
    fn acks_all_waits_for_the_high_watermark_then_checks_min_isr() {
        assert!(may_append_acks_all(2, 2));
        assert!(!may_append_acks_all(1, 2));
        assert_eq!(acks_all(10, 9, 3, 2), AcksAll::Pending);
        assert_eq!(acks_all(10, 10, 3, 2), AcksAll::Complete);
        assert_eq!(
            acks_all(10, 12, 1, 2),
            AcksAll::NotEnoughReplicasAfterAppend
        );
    }
}
