//! The records Fetch responses hold, over all connections (`fetch.memory.max.bytes`).
//!
//! `fetch.max.bytes` bounds one response; a thousand consumers each asking for 55 MiB would
//! still make the broker read 55 GiB. So a fetch takes room here before it reads, and reads no
//! more than it got: what is free when it asks, up to what it wants. It waits only while less
//! than [`FLOOR`] (or what it wants, when that is less) is free, and at its `max.wait.ms` it is
//! answered with no records (the consumer asks again), as a long poll that found nothing is.
//!
//! The room is held by the records themselves ([`Grant::hold`] wraps them): it comes back when
//! the last copy of them is dropped, that is once the response has been written to the socket,
//! however long a slow client takes to read it. The first batch of a response is returned whole
//! even when it is larger than the grant (KIP-74: a consumer must always advance), and counted
//! all the same: the total can pass the limit by at most one batch per response being read.
//!
//! This module only counts; it reads nothing and knows no Kafka request.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use krait_sync::MutexExt;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The least a fetch waits for when it wants at least this much: Kafka's default
/// `max.partition.fetch.bytes` and `message.max.bytes`, so one default batch fits.
pub const FLOOR: usize = 1 << 20;

/// Room for the records of Fetch responses, shared by every connection.
#[derive(Debug)]
pub struct FetchMemory {
    limit: usize,
    used: Mutex<Used>,
    freed: Notify,
}

#[derive(Debug, Default)]
struct Used {
    now: usize,
    /// The most held at once since the broker started.
    peak: usize,
}

impl Used {
    fn add(&mut self, bytes: usize) {
        self.now += bytes;
        self.peak = self.peak.max(self.now);
    }
}

/// Bytes taken from the pool and not yet handed to records; given back on drop.
#[derive(Debug)]
pub struct Grant {
    pool: Arc<FetchMemory>,
    bytes: usize,
}

/// Records that hold their bytes' room in the pool until they are dropped.
struct Held {
    records: Bytes,
    _room: Grant,
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.records
    }
}

impl FetchMemory {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit: limit.max(1),
            used: Mutex::default(),
            freed: Notify::new(),
        })
    }

    /// Bytes of records held by responses now.
    pub fn used(&self) -> usize {
        self.used.lock_unpoisoned().now
    }

    /// The most bytes held at once since the broker started.
    pub fn peak(&self) -> usize {
        self.used.lock_unpoisoned().peak
    }

    /// Room for up to `want` bytes: what is free now, once at least `min(want, FLOOR)` is. At
    /// `deadline` without that much, an empty grant (the fetch then reads no records).
    pub async fn take(self: &Arc<Self>, want: usize, deadline: Instant) -> Grant {
        let floor = want.min(FLOOR).min(self.limit);
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before the check, so a release between the check and the wait wakes it.
            freed.as_mut().enable();
            if let Some(bytes) = self.try_take(want, floor) {
                return self.grant(bytes);
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return self.grant(0);
            }
        }
    }

    fn try_take(&self, want: usize, floor: usize) -> Option<usize> {
        let mut used = self.used.lock_unpoisoned();
        let free = self.limit.saturating_sub(used.now);
        if free < floor {
            return None;
        }
        let bytes = want.min(free);
        used.add(bytes);
        Some(bytes)
    }

    fn grant(self: &Arc<Self>, bytes: usize) -> Grant {
        Grant {
            pool: self.clone(),
            bytes,
        }
    }

    fn give_back(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let mut used = self.used.lock_unpoisoned();
        used.now = used.now.saturating_sub(bytes);
        drop(used);
        self.freed.notify_waiters();
    }
}

impl Grant {
    /// Bytes the fetch may read.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// `records`, holding their size of this grant until the last copy of them is dropped. A
    /// batch larger than what is left of the grant (the first of a response, KIP-74) is counted
    /// beyond it.
    pub fn hold(&mut self, records: Bytes) -> Bytes {
        if records.is_empty() {
            return records;
        }
        let size = records.len();
        let from_grant = size.min(self.bytes);
        self.bytes -= from_grant;
        if size > from_grant {
            self.pool.used.lock_unpoisoned().add(size - from_grant);
        }
        let room = Grant {
            pool: self.pool.clone(),
            bytes: size,
        };
        Bytes::from_owner(Held {
            records,
            _room: room,
        })
    }
}

impl Drop for Grant {
    fn drop(&mut self) {
        self.pool.give_back(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[tokio::test]
    async fn a_fetch_gets_what_is_free_up_to_what_it_wants() {
        let pool = FetchMemory::new(4 << 20);
        let first = pool.take(3 << 20, soon()).await;
        assert_eq!(first.bytes(), 3 << 20);
        let second = pool.take(3 << 20, soon()).await;
        assert_eq!(second.bytes(), 1 << 20, "only 1 MiB was free");
        assert_eq!(pool.used(), 4 << 20);
        drop(first);
        assert_eq!(
            pool.used(),
            1 << 20,
            "an unused grant is given back on drop"
        );
    }

    #[tokio::test]
    async fn records_hold_their_room_until_their_last_copy_is_dropped() {
        let pool = FetchMemory::new(4 << 20);
        let mut grant = pool.take(2 << 20, soon()).await;
        let records = grant.hold(Bytes::from(vec![7u8; 1000]));
        drop(grant);
        assert_eq!(pool.used(), 1000, "the rest of the grant came back");
        let part = records.slice(10..20);
        drop(records);
        assert_eq!(pool.used(), 1000, "a slice of them still holds them");
        assert_eq!(&part[..], &[7u8; 10]);
        drop(part);
        assert_eq!(pool.used(), 0);
    }

    #[tokio::test]
    async fn a_first_batch_larger_than_the_grant_is_counted_beyond_it() {
        let pool = FetchMemory::new(2 << 20);
        let mut grant = pool.take(100, soon()).await;
        assert_eq!(grant.bytes(), 100);
        let records = grant.hold(Bytes::from(vec![1u8; 5000]));
        assert_eq!(grant.bytes(), 0);
        assert_eq!(pool.used(), 5000);
        drop((grant, records));
        assert_eq!(pool.used(), 0);
        assert_eq!(pool.peak(), 5000, "the most held at once");
    }

    #[tokio::test]
    async fn a_fetch_waits_for_the_floor_and_is_woken_when_records_are_dropped() {
        let pool = FetchMemory::new(2 << 20);
        let mut big = pool.take(2 << 20, soon()).await;
        let records = big.hold(Bytes::from(vec![0u8; (2 << 20) - 10]));
        drop(big);
        let waiting = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.take(FLOOR, soon()).await.bytes() })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiting.is_finished(),
            "10 bytes free is less than the floor"
        );
        drop(records);
        let got = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken by the drop")
            .unwrap();
        assert_eq!(got, FLOOR);
    }

    #[tokio::test]
    async fn a_small_want_is_served_from_a_little_room_and_a_full_pool_answers_empty_at_the_deadline()
     {
        let pool = FetchMemory::new(2 << 20);
        let _most = pool.take((2 << 20) - 4096, soon()).await;
        assert_eq!(pool.take(4096, soon()).await.bytes(), 4096);
        let _all = pool.take(4096, soon()).await;
        let deadline = Instant::now() + Duration::from_millis(30);
        let empty = pool.take(4096, deadline).await;
        assert_eq!(empty.bytes(), 0, "nothing free by the deadline");
        assert!(Instant::now() >= deadline);
    }
}
