//! Kafka's log-validator rules for producer batches: hand-built batches whose header fields are
//! unset or wrong, in every codec, and batches that decompress past the bound.

use super::*;
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder};
use proptest::prelude::*;
use std::io::Write;

const RECORDS_COUNT_AT: usize = 57;
const LAST_OFFSET_DELTA_AT: usize = 23;
const PRODUCER_ID_AT: usize = 43;
const BASE_SEQUENCE_AT: usize = 53;
const LIMIT: usize = MAX_UNCOMPRESSED_BATCH_BYTES;

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// A record with key `k` (so the key path of the record walk is exercised).
fn record(offset: i64, timestamp: i64, value: Bytes) -> Record {
    Record {
        key: Some(Bytes::from_static(b"k")),
        ..crate::testing::record(offset, timestamp, value)
    }
}

use crate::testing::encode as encoded;

/// Three records at 1000, 3000 and 2000 ms: the newest is not the last.
fn three(compression: Compression) -> Bytes {
    encoded(
        &[
            record(0, 1000, Bytes::from_static(b"a")),
            record(1, 3000, Bytes::from_static(b"b")),
            record(2, 2000, Bytes::from_static(b"c")),
        ],
        compression,
    )
}

/// The batch with `edit` applied to its bytes and the CRC made valid again, as a client that
/// fills the header wrongly but checksums it would send.
fn patched(batch: &Bytes, edit: impl FnOnce(&mut [u8])) -> Bytes {
    let mut b = BytesMut::from(&batch[..]);
    edit(&mut b);
    let crc = crc32c::crc32c(&b[CRC_START..]);
    b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}

fn put_i32(at: usize, v: i32) -> impl FnOnce(&mut [u8]) {
    move |b| b[at..at + 4].copy_from_slice(&v.to_be_bytes())
}

fn put_i64(at: usize, v: i64) -> impl FnOnce(&mut [u8]) {
    move |b| b[at..at + 8].copy_from_slice(&v.to_be_bytes())
}

fn validated(batch: &Bytes) -> Result<ValidBatch, BatchError> {
    validate_producer_batches(batch, LIMIT).map(|mut v| v.remove(0))
}

#[test]
fn a_correct_header_passes_through_without_a_copy_in_every_codec() {
    for codec in CODECS {
        let sent = three(codec);
        let valid = validated(&sent).unwrap();
        assert_eq!(valid.header.max_timestamp, 3000, "{codec:?}");
        // Same bytes, same allocation: no re-encoding and no CRC recomputed.
        assert_eq!(valid.bytes.as_ptr(), sent.as_ptr(), "{codec:?}");
    }
}

#[test]
fn unset_max_timestamp_is_recomputed_from_the_records_in_every_codec() {
    for codec in CODECS {
        let right = three(codec);
        let sent = patched(&right, put_i64(MAX_TIMESTAMP_AT, -1));
        let valid = validated(&sent).unwrap();
        assert_eq!(valid.header.max_timestamp, 3000, "{codec:?}");
        // The rewrite touches the max timestamp and the CRC only: the result is exactly what a
        // correct client would have sent, and its CRC holds.
        assert_eq!(valid.bytes, right, "{codec:?}");
        validate_batches(&valid.bytes).unwrap();
    }
}

#[test]
fn wrong_max_timestamp_is_rewritten_whether_too_old_or_in_the_future() {
    for codec in CODECS {
        let right = three(codec);
        for wrong in [0, 2999, 3001, i64::MAX] {
            let sent = patched(&right, put_i64(MAX_TIMESTAMP_AT, wrong));
            let valid = validated(&sent).unwrap();
            assert_eq!(valid.bytes, right, "{codec:?} max_timestamp {wrong}");
        }
    }
}

#[test]
fn log_append_time_flag_from_a_producer_is_cleared_as_kafka_does_for_create_time() {
    let right = three(Compression::None);
    let sent = patched(&right, |b| {
        b[ATTRIBUTES_AT + 1] |= LOG_APPEND_TIME_FLAG as u8
    });
    let valid = validated(&sent).unwrap();
    assert!(!valid.header.uses_log_append_time());
    assert_eq!(valid.bytes, right);
}

#[test]
fn records_without_timestamps_give_max_timestamp_minus_one() {
    let sent = encoded(
        &[
            record(0, -1, Bytes::from_static(b"a")),
            record(1, -1, Bytes::from_static(b"b")),
        ],
        Compression::None,
    );
    let sent = patched(&sent, put_i64(MAX_TIMESTAMP_AT, 5000));
    assert_eq!(validated(&sent).unwrap().header.max_timestamp, -1);
}

#[test]
fn record_count_that_disagrees_with_last_offset_delta_is_an_invalid_record() {
    for codec in CODECS {
        let right = three(codec);
        for (count, delta) in [(4, 2), (2, 2), (3, 3), (3, 5)] {
            let sent = patched(&right, |b| {
                put_i32(RECORDS_COUNT_AT, count)(b);
                put_i32(LAST_OFFSET_DELTA_AT, delta)(b);
            });
            let err = validated(&sent).unwrap_err();
            assert_eq!(
                err,
                BatchError::BadRecordCount {
                    count,
                    last_offset_delta: delta
                },
                "{codec:?}"
            );
            assert_eq!(err.response_error(), ResponseError::InvalidRecord);
        }
    }
}

#[test]
fn header_claiming_more_records_than_the_batch_holds_is_an_invalid_record() {
    for codec in CODECS {
        let sent = patched(&three(codec), |b| {
            put_i32(RECORDS_COUNT_AT, 4)(b);
            put_i32(LAST_OFFSET_DELTA_AT, 3)(b);
        });
        let err = validated(&sent).unwrap_err();
        assert!(
            matches!(err, BatchError::MalformedRecord { index: 3, .. }),
            "{codec:?}: {err}"
        );
        assert_eq!(err.response_error(), ResponseError::InvalidRecord);
    }
}

#[test]
fn header_claiming_fewer_records_than_the_batch_holds_is_an_invalid_record() {
    for codec in CODECS {
        let sent = patched(&three(codec), |b| {
            put_i32(RECORDS_COUNT_AT, 2)(b);
            put_i32(LAST_OFFSET_DELTA_AT, 1)(b);
        });
        let err = validated(&sent).unwrap_err();
        assert_eq!(err, BatchError::RecordsRemaining { count: 2 }, "{codec:?}");
        assert_eq!(err.response_error(), ResponseError::InvalidRecord);
    }
}

/// A batch written byte by byte, as a careless client might: records with the given
/// (timestamp delta, offset delta), compressed with `codec` (raw snappy, as librdkafka writes
/// it), the header's max timestamp as given and its count and last offset delta from the list.
fn hand_built(
    codec: i16,
    base_timestamp: i64,
    records: &[(i64, i32)],
    max_timestamp: i64,
) -> Bytes {
    let mut raw = Vec::new();
    for (i, (ts_delta, offset_delta)) in records.iter().enumerate() {
        let value = format!("v{i}");
        let mut body = vec![0u8]; // attributes
        put_varint(&mut body, *ts_delta);
        put_varint(&mut body, i64::from(*offset_delta));
        put_varint(&mut body, -1); // null key
        put_varint(&mut body, value.len() as i64);
        body.extend_from_slice(value.as_bytes());
        put_varint(&mut body, 1); // one header
        put_varint(&mut body, 1);
        body.push(b'h');
        put_varint(&mut body, -1); // null header value
        put_varint(&mut raw, body.len() as i64);
        raw.extend_from_slice(&body);
    }
    let payload = compress(codec, &raw);
    let count = records.len() as i32;
    let mut b = BytesMut::new();
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&((HEADER_LEN - LOG_OVERHEAD + payload.len()) as i32).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&[MAGIC_V2 as u8, 0, 0, 0, 0]); // magic, CRC (set below)
    b.extend_from_slice(&codec.to_be_bytes());
    b.extend_from_slice(&(count - 1).to_be_bytes());
    b.extend_from_slice(&base_timestamp.to_be_bytes());
    b.extend_from_slice(&max_timestamp.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&count.to_be_bytes());
    b.extend_from_slice(&payload);
    patched(&b.freeze(), |_| {})
}

fn compress(codec: i16, raw: &[u8]) -> Vec<u8> {
    match codec {
        0 => raw.to_vec(),
        1 => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(raw).unwrap();
            e.finish().unwrap()
        }
        2 => snap::raw::Encoder::new().compress_vec(raw).unwrap(),
        3 => {
            let mut e = lz4::EncoderBuilder::new().build(Vec::new()).unwrap();
            e.write_all(raw).unwrap();
            let (out, result) = e.finish();
            result.unwrap();
            out
        }
        4 => zstd::encode_all(raw, 3).unwrap(),
        _ => unreachable!(),
    }
}

#[test]
fn hand_built_batch_with_unset_max_timestamp_gets_the_newest_record_timestamp_in_every_codec() {
    for codec in 0..=4 {
        let records = [(0, 0), (500, 1), (250, 2), (-100, 3)];
        let sent = hand_built(codec, 1_000_000, &records, -1);
        let valid = validated(&sent).unwrap();
        assert_eq!(valid.header.max_timestamp, 1_000_500, "codec {codec}");
        assert_eq!(
            valid.bytes,
            hand_built(codec, 1_000_000, &records, 1_000_500),
            "codec {codec}: only the max timestamp and CRC change"
        );
    }
}

#[test]
fn non_consecutive_offset_deltas_are_an_invalid_record() {
    for codec in 0..=4 {
        // Deltas 0, 2, 1: the count (3) and last offset delta (2) agree, the records do not.
        let sent = hand_built(codec, 1000, &[(0, 0), (1, 2), (2, 1)], 1002);
        let err = validated(&sent).unwrap_err();
        assert_eq!(
            err,
            BatchError::OffsetDeltaMismatch {
                index: 1,
                offset_delta: 2
            },
            "codec {codec}"
        );
        assert_eq!(err.response_error(), ResponseError::InvalidRecord);
    }
}

#[test]
fn offset_deltas_starting_above_zero_are_an_invalid_record() {
    let sent = hand_built(0, 1000, &[(0, 1), (0, 2)], 1000);
    assert!(matches!(
        validated(&sent),
        Err(BatchError::OffsetDeltaMismatch { index: 0, .. })
    ));
}

#[test]
fn idempotent_batch_without_a_base_sequence_is_an_invalid_record() {
    let sent = patched(&three(Compression::None), |b| {
        put_i64(PRODUCER_ID_AT, 7)(b);
        put_i32(BASE_SEQUENCE_AT, -1)(b);
    });
    let err = validated(&sent).unwrap_err();
    assert_eq!(
        err,
        BatchError::InvalidSequence {
            producer_id: 7,
            base_sequence: -1
        }
    );
    assert_eq!(err.response_error(), ResponseError::InvalidRecord);
}

#[test]
fn control_batch_from_a_producer_is_an_invalid_record() {
    let sent = patched(&three(Compression::None), |b| {
        b[ATTRIBUTES_AT + 1] |= CONTROL_FLAG as u8
    });
    assert_eq!(validated(&sent).unwrap_err(), BatchError::ControlBatch);
}

#[test]
fn compressed_payload_that_does_not_decompress_is_a_corrupt_message() {
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let sent = patched(&three(codec), |b| {
            for x in &mut b[HEADER_LEN..] {
                *x ^= 0x5a;
            }
        });
        let err = validated(&sent).unwrap_err();
        assert_eq!(
            err.response_error(),
            ResponseError::CorruptMessage,
            "{codec:?}: {err}"
        );
    }
}

#[test]
fn unknown_codec_is_a_corrupt_message() {
    let sent = patched(&three(Compression::None), |b| b[ATTRIBUTES_AT + 1] |= 0x07);
    let err = validated(&sent).unwrap_err();
    assert_eq!(err, BatchError::UnknownCompression(7));
    assert_eq!(err.response_error(), ResponseError::CorruptMessage);
}

/// One record of `size` zero bytes: compresses to almost nothing.
fn bomb(size: usize, codec: Compression) -> Bytes {
    encoded(&[record(0, 1, Bytes::from(vec![0u8; size]))], codec)
}

#[test]
fn decompression_bomb_is_rejected_at_the_bound_in_every_codec() {
    let limit = 1 << 20;
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let sent = bomb(8 << 20, codec);
        assert!(sent.len() < 512 * 1024, "{codec:?}: {} bytes", sent.len());
        let err = validate_producer_batches(&sent, limit).unwrap_err();
        assert_eq!(err, BatchError::UncompressedTooLarge { limit }, "{codec:?}");
        assert_eq!(err.response_error(), ResponseError::MessageTooLarge);
        // Just under the bound, the same shape of batch is accepted.
        let fits = bomb(limit - 1024, codec);
        validate_producer_batches(&fits, limit).unwrap();
    }
}

#[test]
fn gigabyte_zstd_bomb_is_rejected_without_inflating_it() {
    // 1 GiB of zeros in one zstd frame, written by hand so the test does not hold it either:
    // the encoder streams it from a reader that yields zeros.
    let mut payload = Vec::new();
    {
        let mut encoder = zstd::stream::write::Encoder::new(&mut payload, 3).unwrap();
        // One record: length, attributes, timestamp delta, offset delta, key, value of 1 GiB.
        let value_len: i64 = 1 << 30;
        let mut head = Vec::new();
        let body_len = 1 + 1 + 1 + 1 + zigzag_len(value_len) + value_len as usize + 1;
        put_varint(&mut head, body_len as i64);
        head.extend_from_slice(&[0, 0, 0, 1]); // attributes, ts delta 0, offset delta 0, null key
        put_varint(&mut head, value_len);
        std::io::Write::write_all(&mut encoder, &head).unwrap();
        std::io::copy(
            &mut std::io::Read::take(std::io::repeat(0), value_len as u64),
            &mut encoder,
        )
        .unwrap();
        std::io::Write::write_all(&mut encoder, &[0]).unwrap(); // no headers
        encoder.finish().unwrap();
    }
    let mut batch = BytesMut::from(&three(Compression::Zstd)[..HEADER_LEN]);
    batch.extend_from_slice(&payload);
    let len = (batch.len() - LOG_OVERHEAD) as i32;
    let sent = patched(&batch.freeze(), |b| {
        put_i32(8, len)(b);
        put_i32(RECORDS_COUNT_AT, 1)(b);
        put_i32(LAST_OFFSET_DELTA_AT, 0)(b);
    });
    assert!(sent.len() < 64 * 1024);
    let err = validate_producer_batches(&sent, LIMIT).unwrap_err();
    assert_eq!(err, BatchError::UncompressedTooLarge { limit: LIMIT });
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn zigzag_len(v: i64) -> usize {
    let mut out = Vec::new();
    put_varint(&mut out, v);
    out.len()
}

#[test]
fn a_validated_batch_still_decodes_to_the_same_records() {
    for codec in CODECS {
        let sent = patched(&three(codec), put_i64(MAX_TIMESTAMP_AT, -1));
        let valid = validated(&sent).unwrap();
        let mut buf = valid.bytes.clone();
        let set = RecordBatchDecoder::decode(&mut buf).unwrap();
        let seen: Vec<_> = set
            .records
            .iter()
            .map(|r| (r.offset, r.timestamp))
            .collect();
        assert_eq!(seen, vec![(0, 1000), (1, 3000), (2, 2000)], "{codec:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever a client puts behind a valid CRC, validation answers and never panics.
    #[test]
    fn damaged_records_behind_a_valid_crc_never_panic(
        codec in 0usize..5,
        at in 0usize..4096,
        byte in any::<u8>(),
        cut in 0usize..64,
    ) {
        let right = three(CODECS[codec]);
        let payload = right.len() - HEADER_LEN;
        let mut b = BytesMut::from(&right[..right.len() - cut.min(payload - 1)]);
        let len = b.len();
        b[HEADER_LEN + at % (len - HEADER_LEN).max(1)] ^= byte;
        let batch_length = (len - LOG_OVERHEAD) as i32;
        let sent = patched(&b.freeze(), put_i32(8, batch_length));
        let _ = validate_producer_batches(&sent, LIMIT);
    }
}

/// A record's offset, timestamp, key, value, producer id and sequence.
type DecodedRecord = (i64, i64, Option<Bytes>, Option<Bytes>, i64, i32);

/// Every record of a batch, as kafka-protocol's own decoder reads it (an independent reader).
fn decoded(batch: &Bytes) -> Vec<DecodedRecord> {
    let mut buf = batch.clone();
    RecordBatchDecoder::decode(&mut buf)
        .unwrap()
        .records
        .into_iter()
        .map(|r| {
            (
                r.offset,
                r.timestamp,
                r.key,
                r.value,
                r.producer_id,
                r.sequence,
            )
        })
        .collect()
}

#[test]
fn recompression_between_every_pair_of_codecs_keeps_every_record_and_header_field() {
    let records: Vec<Record> = (0..300)
        .map(|i| {
            let mut r = record(i, 1_000 + i, Bytes::from(format!("value {i} ").repeat(40)));
            (r.producer_id, r.producer_epoch, r.sequence) = (42, 3, 7 + i as i32);
            r
        })
        .collect();
    for from in CODECS {
        let sent = encoded(&records, from);
        let valid = validated(&sent).unwrap();
        for (id, to) in CODECS.into_iter().enumerate() {
            let id = id as i16;
            let out = recompress(&valid, id, LIMIT).unwrap();
            assert_eq!(out.header.compression(), id, "{from:?} -> {to:?}");
            // The result is a valid producer batch again, with the same header but for
            // attributes' codec bits, length and CRC.
            let again = validated(&out.bytes).unwrap();
            assert_eq!(
                again.bytes, out.bytes,
                "{from:?} -> {to:?}: accepted unchanged"
            );
            let (a, b) = (valid.header, out.header);
            assert_eq!(
                (
                    a.base_offset,
                    a.last_offset_delta,
                    a.base_timestamp,
                    a.max_timestamp
                ),
                (
                    b.base_offset,
                    b.last_offset_delta,
                    b.base_timestamp,
                    b.max_timestamp
                )
            );
            assert_eq!(
                (
                    a.producer_id,
                    a.producer_epoch,
                    a.base_sequence,
                    a.records_count
                ),
                (
                    b.producer_id,
                    b.producer_epoch,
                    b.base_sequence,
                    b.records_count
                )
            );
            assert_eq!(
                a.attributes & !COMPRESSION_MASK,
                b.attributes & !COMPRESSION_MASK
            );
            assert_eq!(decoded(&out.bytes), decoded(&sent), "{from:?} -> {to:?}");
            if from == to {
                assert_eq!(
                    out.bytes.as_ptr(),
                    valid.bytes.as_ptr(),
                    "same codec: no copy"
                );
            }
        }
    }
    // Compression does compress: 300 repetitive values in zstd are far smaller than plain.
    let plain = recompress(
        &validated(&encoded(&records, Compression::Zstd)).unwrap(),
        0,
        LIMIT,
    );
    let zstd = recompress(
        &validated(&encoded(&records, Compression::None)).unwrap(),
        4,
        LIMIT,
    );
    assert!(zstd.unwrap().bytes.len() * 10 < plain.unwrap().bytes.len());
}

#[test]
fn recompression_stays_within_the_decompression_bound() {
    let big = encoded(
        &[record(0, 1, Bytes::from(vec![b'z'; 2 << 20]))],
        Compression::Zstd,
    );
    let valid = validated(&big).unwrap();
    assert_eq!(
        recompress(&valid, 1, 1 << 20),
        Err(BatchError::UncompressedTooLarge { limit: 1 << 20 })
    );
}

#[test]
fn compression_types_are_kafkas() {
    assert_eq!(parse_compression_type("producer"), Some(None));
    assert_eq!(parse_compression_type("uncompressed"), Some(Some(0)));
    assert_eq!(parse_compression_type("zstd"), Some(Some(4)));
    assert_eq!(
        parse_compression_type("none"),
        None,
        "Kafka's name is uncompressed"
    );
}

#[test]
fn record_timestamps_outside_the_window_are_an_invalid_timestamp() {
    // Records at 1000, 3000 and 2000 ms.
    let window = |now_ms, before_max_ms, after_max_ms| {
        Some(TimestampWindow {
            now_ms,
            before_max_ms,
            after_max_ms,
        })
    };
    for codec in CODECS {
        let batch = three(codec);
        let check = |w| validate_producer_batches_within(&batch, LIMIT, w).map(drop);
        assert_eq!(check(None), Ok(()));
        assert_eq!(
            check(window(2000, 1000, 1000)),
            Ok(()),
            "both ends inclusive"
        );
        assert_eq!(check(window(2000, i64::MAX, i64::MAX)), Ok(()), "unbounded");
        let too_old = check(window(2000, 999, 1000)).unwrap_err();
        assert_eq!(
            too_old,
            BatchError::TimestampOutOfRange {
                timestamp: 1000,
                earliest: 1001,
                latest: 3000
            }
        );
        assert_eq!(too_old.response_error(), ResponseError::InvalidTimestamp);
        let too_new = check(window(2000, 1000, 999)).unwrap_err();
        assert!(matches!(
            too_new,
            BatchError::TimestampOutOfRange {
                timestamp: 3000,
                ..
            }
        ));
    }
}
