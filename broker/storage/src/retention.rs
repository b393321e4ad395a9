//! Which batches retention deletes. Pure: the log feeds it batch summaries oldest first.
//!
//! Kafka's rules, applied to batches instead of segments: a batch goes when its newest record
//! is older than `retention.ms`, or when the partition would still hold at least
//! `retention.bytes` without it. Deletion is always a prefix of the log, so the new log start
//! offset is the base offset of the first batch kept (or the log end offset if none is).

/// What retention needs to know of one stored batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSummary {
    pub base_offset: i64,
    /// The offset after the batch's last record.
    pub next_offset: i64,
    pub max_timestamp: i64,
    pub size: u64,
}

/// Limits of one partition; -1 disables a limit, as in Kafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionLimits {
    pub retention_ms: i64,
    pub retention_bytes: i64,
}

/// The deletion retention asks for: everything below `new_log_start_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPlan {
    pub new_log_start_offset: i64,
    pub batches: u64,
    pub bytes: u64,
}

/// Plans the deletion for a log of `total_size` bytes whose batches, oldest first, are
/// `batches`. `None` when nothing is due.
///
/// A batch whose records carry no timestamp (max timestamp -1, which a producer may send and
/// produce validation keeps) is no newer than the next batch that has one, so it expires with
/// that batch; while none follows, only the size limit removes it. Kafka falls back to the
/// segment file's modification time here; Krait has no file, and deleting it at once (-1 is
/// older than any limit) would lose it.
pub fn plan(
    batches: impl IntoIterator<Item = BatchSummary>,
    total_size: u64,
    now_ms: i64,
    limits: RetentionLimits,
) -> Option<RetentionPlan> {
    let expired_before =
        (limits.retention_ms >= 0).then(|| now_ms.saturating_sub(limits.retention_ms));
    let mut deletion = Deletion {
        remaining: total_size,
        size_limit: u64::try_from(limits.retention_bytes).ok(),
        plan: RetentionPlan {
            new_log_start_offset: -1,
            batches: 0,
            bytes: 0,
        },
    };
    let mut undated = Vec::new();
    for b in batches {
        let expired = match expired_before {
            Some(_) if b.max_timestamp < 0 => {
                undated.push(b);
                continue;
            }
            Some(t) => b.max_timestamp < t,
            None => false,
        };
        for u in undated.drain(..) {
            if !(expired || deletion.oversized(&u)) {
                return deletion.done();
            }
            deletion.take(&u);
        }
        if !(expired || deletion.oversized(&b)) {
            return deletion.done();
        }
        deletion.take(&b);
    }
    for u in undated {
        if !deletion.oversized(&u) {
            break;
        }
        deletion.take(&u);
    }
    deletion.done()
}

/// The prefix planned so far and the size that would remain without it.
struct Deletion {
    remaining: u64,
    size_limit: Option<u64>,
    plan: RetentionPlan,
}

impl Deletion {
    fn oversized(&self, b: &BatchSummary) -> bool {
        self.size_limit
            .is_some_and(|limit| self.remaining.saturating_sub(b.size) >= limit)
    }

    fn take(&mut self, b: &BatchSummary) {
        self.remaining = self.remaining.saturating_sub(b.size);
        self.plan.new_log_start_offset = b.next_offset;
        self.plan.batches += 1;
        self.plan.bytes += b.size;
    }

    fn done(self) -> Option<RetentionPlan> {
        (self.plan.batches > 0).then_some(self.plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn batches(specs: &[(i64, u64)]) -> Vec<BatchSummary> {
        // (max timestamp, size), 10 offsets each
        specs
            .iter()
            .enumerate()
            .map(|(i, (ts, size))| BatchSummary {
                base_offset: i as i64 * 10,
                next_offset: (i as i64 + 1) * 10,
                max_timestamp: *ts,
                size: *size,
            })
            .collect()
    }

    const NO_LIMIT: RetentionLimits = RetentionLimits {
        retention_ms: -1,
        retention_bytes: -1,
    };

    #[test]
    fn batch_without_timestamps_is_kept_until_a_later_dated_batch_expires() {
        let limits = RetentionLimits {
            retention_ms: 500,
            retention_bytes: -1,
        };
        // now 1000: anything older than 500 has expired.
        let undated_last = batches(&[(100, 10), (-1, 10)]);
        assert_eq!(
            plan(undated_last, 20, 1000, limits).map(|p| p.new_log_start_offset),
            Some(10),
            "an undated batch with nothing after it stays"
        );
        let before_young = batches(&[(-1, 10), (-1, 10), (900, 10)]);
        assert_eq!(plan(before_young, 30, 1000, limits), None);
        let before_old = batches(&[(-1, 10), (-1, 10), (400, 10), (900, 10)]);
        assert_eq!(
            plan(before_old, 40, 1000, limits).map(|p| p.new_log_start_offset),
            Some(30),
            "undated batches go with the expired batch after them"
        );
    }

    #[test]
    fn batch_without_timestamps_still_counts_against_the_size_limit() {
        let limits = RetentionLimits {
            retention_ms: 500,
            retention_bytes: 10,
        };
        let b = batches(&[(-1, 10), (-1, 10)]);
        assert_eq!(
            plan(b, 20, 1000, limits).map(|p| p.new_log_start_offset),
            Some(10)
        );
    }

    #[test]
    fn nothing_is_deleted_without_limits() {
        assert_eq!(
            plan(batches(&[(0, 100), (1, 100)]), 200, 1_000_000, NO_LIMIT),
            None
        );
    }

    #[test]
    fn expired_prefix_is_deleted_and_stops_at_the_first_young_batch() {
        let b = batches(&[(100, 10), (200, 10), (900, 10), (150, 10)]);
        let limits = RetentionLimits {
            retention_ms: 500,
            ..NO_LIMIT
        };
        let p = plan(b, 40, 1000, limits).unwrap();
        assert_eq!((p.new_log_start_offset, p.batches, p.bytes), (20, 2, 20));
    }

    #[test]
    fn everything_expired_moves_the_log_start_to_the_end() {
        let p = plan(
            batches(&[(1, 10), (2, 10)]),
            20,
            1000,
            RetentionLimits {
                retention_ms: 10,
                ..NO_LIMIT
            },
        )
        .unwrap();
        assert_eq!(p.new_log_start_offset, 20);
    }

    #[test]
    fn size_limit_deletes_oldest_while_the_rest_still_meets_it() {
        let b = batches(&[(0, 100), (0, 100), (0, 100), (0, 100)]);
        let p = plan(
            b,
            400,
            0,
            RetentionLimits {
                retention_bytes: 250,
                ..NO_LIMIT
            },
        )
        .unwrap();
        assert_eq!(
            (p.new_log_start_offset, p.bytes),
            (10, 100),
            "300 bytes kept: dropping another would go below 250"
        );
    }

    proptest! {
        #[test]
        fn plans_delete_a_prefix_and_never_go_below_the_size_limit(
            specs in proptest::collection::vec((0i64..1000, 1u64..1000), 0..40),
            retention_bytes in -1i64..20_000,
            retention_ms in -1i64..1000,
        ) {
            let b = batches(&specs);
            let total: u64 = b.iter().map(|x| x.size).sum();
            let limits = RetentionLimits { retention_ms, retention_bytes };
            if let Some(p) = plan(b.clone(), total, 1000, limits) {
                let deleted: Vec<_> = b.iter().take_while(|x| x.next_offset <= p.new_log_start_offset).collect();
                prop_assert_eq!(deleted.len() as u64, p.batches);
                prop_assert_eq!(deleted.iter().map(|x| x.size).sum::<u64>(), p.bytes);
                for x in &deleted {
                    let expired = retention_ms >= 0 && x.max_timestamp < 1000 - retention_ms;
                    prop_assert!(expired || retention_bytes >= 0);
                }
                if retention_ms < 0 {
                    prop_assert!(total - p.bytes >= retention_bytes as u64);
                }
            }
        }
    }
}
