//! Helpers the fuzz targets share, and the allocator they run with. The targets call Krait's
//! own decoders; nothing here decodes on their behalf.

// The broker's own allocator (krait-broker installs it too): kafka-protocol sizes arrays from
// wire counts before reading them, and a 100-byte frame can ask for hundreds of gigabytes,
// which the broker survives only through this allocator (see docs/fuzzing.md). Build with
// `--features system-alloc` to see those allocations under libFuzzer's -malloc_limit_mb.
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static ALLOCATOR: krait_protocol::budget::GuardedAlloc = krait_protocol::budget::GuardedAlloc;

/// Makes every v2 record batch in `records` carry the CRC-32C of its content, walking the
/// batches by their length fields, so mutated batches get past the CRC check (a client computes
/// the CRC itself, so any content can arrive with a correct one). Stops at the first length that
/// does not fit.
pub fn fix_batch_crcs(records: &mut [u8]) {
    const LOG_OVERHEAD: usize = 12;
    const CRC_AT: usize = 17;
    const CRC_START: usize = 21;
    let mut at = 0;
    while records.len() - at >= CRC_START {
        let len = i32::from_be_bytes([
            records[at + 8],
            records[at + 9],
            records[at + 10],
            records[at + 11],
        ]);
        let Ok(len) = usize::try_from(len) else {
            return;
        };
        let end = at + LOG_OVERHEAD + len;
        if len < CRC_START - LOG_OVERHEAD || end > records.len() {
            return;
        }
        let crc = crc32c(&records[at + CRC_START..end]);
        records[at + CRC_AT..at + CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        at = end;
    }
}

/// CRC-32C (Castagnoli), bitwise: small inputs only, and no dependency to keep in step.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Splits `data` at the first occurrence of `separator`: the pieces of a multi-message input.
pub fn split_once<'a>(data: &'a [u8], separator: &[u8]) -> (&'a [u8], Option<&'a [u8]>) {
    match data.windows(separator.len()).position(|w| w == separator) {
        Some(i) => (&data[..i], Some(&data[i + separator.len()..])),
        None => (data, None),
    }
}
