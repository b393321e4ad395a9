//! Key layouts for the column families. Big-endian so that RocksDB's bytewise order is numeric
//! order: all batches of one log are adjacent and sorted by base offset.

/// Bytes in a log key: log id then base offset.
pub const LOG_KEY_LEN: usize = 16;

/// Key of the batch starting at `base_offset` in log `log_id`. Offsets are never negative, so
/// their big-endian bytes sort the same way as their values.
pub fn log_key(log_id: u64, base_offset: i64) -> [u8; LOG_KEY_LEN] {
    debug_assert!(base_offset >= 0);
    let mut key = [0u8; LOG_KEY_LEN];
    key[..8].copy_from_slice(&log_id.to_be_bytes());
    key[8..].copy_from_slice(&(base_offset as u64).to_be_bytes());
    key
}

/// The first key past every batch of `log_id`: the exclusive end of its range.
pub fn log_end_key(log_id: u64) -> [u8; LOG_KEY_LEN] {
    log_key(log_id + 1, 0)
}

/// Splits a log key into log id and base offset.
pub fn parse_log_key(key: &[u8]) -> Option<(u64, i64)> {
    if key.len() != LOG_KEY_LEN {
        return None;
    }
    let id = u64::from_be_bytes(key[..8].try_into().ok()?);
    let offset = u64::from_be_bytes(key[8..].try_into().ok()?) as i64;
    Some((id, offset))
}

/// Key of a log's persisted state.
pub fn state_key(log_id: u64) -> [u8; 8] {
    log_id.to_be_bytes()
}

/// Key of a leader epoch cache entry: the log's state key, then the epoch. Epochs are never
/// negative, so they sort numerically after the state key and before the next log's.
pub fn epoch_key(log_id: u64, epoch: i32) -> [u8; 12] {
    debug_assert!(epoch >= 0);
    let mut key = [0u8; 12];
    key[..8].copy_from_slice(&log_id.to_be_bytes());
    key[8..].copy_from_slice(&(epoch as u32).to_be_bytes());
    key
}

/// Splits an epoch key into log id and epoch.
pub fn parse_epoch_key(key: &[u8]) -> Option<(u64, i32)> {
    let key: &[u8; 12] = key.try_into().ok()?;
    let id = u64::from_be_bytes(key[..8].try_into().ok()?);
    let epoch = u32::from_be_bytes(key[8..].try_into().ok()?) as i32;
    Some((id, epoch))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn log_keys_round_trip() {
        assert_eq!(parse_log_key(&log_key(3, 77)), Some((3, 77)));
        assert_eq!(parse_log_key(&[1, 2, 3]), None);
    }

    #[test]
    fn end_key_is_past_the_largest_offset() {
        assert!(log_key(5, i64::MAX) < log_end_key(5));
        assert!(log_key(6, 0) >= log_end_key(5));
    }

    proptest! {
        #[test]
        fn byte_order_is_numeric_order(a in 0u64..1000, b in 0u64..1000, x in 0i64..i64::MAX, y in 0i64..i64::MAX) {
            prop_assert_eq!((a, x).cmp(&(b, y)), log_key(a, x).cmp(&log_key(b, y)));
        }
    }
}
