//! The `records` of a Produce partition as the broker validates them
//! (`validate_producer_batches`, with its decompression bound), then what the log does with an
//! accepted batch: assign offsets and leader epoch, stamp LogAppendTime, and find a record by
//! timestamp (ListOffsets). The first input byte says whether the CRCs are fixed up first, so
//! mutations reach the records (and their codecs) and not only the CRC check.
//!
//! Beyond "no panic", it checks what the log relies on: an accepted batch is accepted again,
//! unchanged, and stays valid after the broker rewrites its header fields.
#![no_main]

use bytes::{Bytes, BytesMut};
use krait_protocol::batch::{
    self, MAX_UNCOMPRESSED_BATCH_BYTES, validate_batches, validate_producer_batches,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut records = rest.to_vec();
    if mode & 1 == 0 {
        krait_fuzz::fix_batch_crcs(&mut records);
    }
    let records = Bytes::from(records);
    // The replica path checks framing and CRC only.
    let _ = validate_batches(&records);
    let Ok(accepted) = validate_producer_batches(&records, MAX_UNCOMPRESSED_BATCH_BYTES) else {
        return;
    };
    for valid in accepted {
        let again = validate_producer_batches(&valid.bytes, MAX_UNCOMPRESSED_BATCH_BYTES)
            .expect("an accepted batch is accepted again");
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].bytes, valid.bytes, "validation is idempotent");

        let mut stored = BytesMut::from(&valid.bytes[..]);
        batch::assign(&mut stored, 1_000, 7);
        batch::set_log_append_time(&mut stored, 1_700_000_000_000);
        let stored = stored.freeze();
        let reread = validate_batches(&stored).expect("a stored batch stays valid");
        assert_eq!(reread[0].header.base_offset, 1_000);
        let target = i64::from(mode).wrapping_mul(valid.header.max_timestamp);
        let _ = batch::first_record_at_or_after(&stored, target);
    }
});
