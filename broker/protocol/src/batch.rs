//! Record batches (magic v2) as they travel on the wire and sit in the log.
//!
//! The broker re-encodes a batch only for a topic whose `compression.type` names another codec
//! than the producer's ([`recompress`]). Otherwise it checks the framing, the magic byte and the CRC-32C,
//! then rewrites the two fields the CRC does not cover (base offset and partition leader epoch).
//! A batch from a producer is also checked as Kafka's log validator checks it: the records are
//! walked (decompressed as a stream, within [`MAX_UNCOMPRESSED_BATCH_BYTES`]) to verify the
//! count, the offset deltas and each record's framing, and the max timestamp is recomputed from
//! them; only when the header's max timestamp or timestamp type is wrong are those fields
//! rewritten and the CRC recomputed. Everything else stays byte-exact, so every compression
//! codec, header and null key or value passes through untouched.

mod compact;
mod control;
mod records;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;

pub use compact::{BatchRecords, CompactionRecord, keyless_record_indexes};
pub use control::{Marker, MarkerKind, encode_marker, marker_kind};

/// Size of the v2 batch header, up to and including the record count.
pub const HEADER_LEN: usize = 61;
/// Bytes before and including the `batchLength` field, which it does not count.
pub const LOG_OVERHEAD: usize = 12;
/// The only record batch format the broker accepts.
pub const MAGIC_V2: i8 = 2;
/// How many bytes the records of one compressed batch may decompress to. Kafka has no such
/// bound; Krait has one so that a small batch cannot make the broker inflate gigabytes (a
/// "decompression bomb"). 64 MiB is 64 times Kafka's default `max.message.bytes`, more than real
/// data compresses by, while decompressing it costs well under a second. Records are streamed
/// through a small buffer, so this bounds CPU, not memory (except a raw snappy block, which is
/// decoded whole once its declared size is known to fit).
pub const MAX_UNCOMPRESSED_BATCH_BYTES: usize = 64 * 1024 * 1024;
/// Offset of the first byte the CRC covers (the attributes field).
const CRC_START: usize = 21;
const MAGIC_AT: usize = 16;
const LEADER_EPOCH_AT: usize = 12;

const TRANSACTIONAL_FLAG: i16 = 0x10;
const CONTROL_FLAG: i16 = 0x20;
const COMPRESSION_MASK: i16 = 0x07;
const LOG_APPEND_TIME_FLAG: i16 = 0x08;

/// Why a batch was rejected; [`BatchError::response_error`] gives the Kafka error code.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BatchError {
    #[error("no record batch in the request")]
    Empty,
    #[error("record batch truncated: {have} bytes where at least {need} are required")]
    Truncated { need: usize, have: usize },
    #[error("record batch length {0} is invalid")]
    BadLength(i32),
    #[error("record batch magic {0} is not supported (only v2)")]
    BadMagic(i8),
    #[error("record batch CRC mismatch: header says {expected:#010x}, content has {actual:#010x}")]
    CrcMismatch { expected: u32, actual: u32 },
    #[error("record batch claims {count} records with last offset delta {last_offset_delta}")]
    BadRecordCount { count: i32, last_offset_delta: i32 },
    #[error("clients may not write control batches")]
    ControlBatch,
    #[error("producer {producer_id} sent invalid base sequence {base_sequence}")]
    InvalidSequence {
        producer_id: i64,
        base_sequence: i32,
    },
    #[error("record {index} has offset delta {offset_delta}; deltas must run 0, 1, 2, ...")]
    OffsetDeltaMismatch { index: i32, offset_delta: i32 },
    #[error("record {index} is malformed: {reason}")]
    MalformedRecord { index: i32, reason: &'static str },
    #[error("record batch holds more than the {count} records it declares")]
    RecordsRemaining { count: i32 },
    #[error("record batch compression codec {0} is unknown")]
    UnknownCompression(i16),
    #[error("{codec} record batch does not decompress: {detail}")]
    Decompression { codec: &'static str, detail: String },
    #[error("record batch decompresses to more than {limit} bytes")]
    UncompressedTooLarge { limit: usize },
    #[error(
        "record timestamp {timestamp} is outside the accepted window [{earliest}, {latest}] (message.timestamp.before.max.ms / after.max.ms)"
    )]
    TimestampOutOfRange {
        timestamp: i64,
        earliest: i64,
        latest: i64,
    },
}

impl BatchError {
    /// The code a Produce response carries for this error, as Kafka answers it: CORRUPT_MESSAGE
    /// for a batch whose bytes are damaged (framing, CRC, a stream that does not decompress),
    /// INVALID_RECORD for one that is intact but breaks the rules for its records (Kafka's
    /// `InvalidRecordException`), MESSAGE_TOO_LARGE when it decompresses past the bound.
    pub fn response_error(&self) -> ResponseError {
        match self {
            Self::BadMagic(_) => ResponseError::UnsupportedForMessageFormat,
            Self::Empty
            | Self::Truncated { .. }
            | Self::BadLength(_)
            | Self::CrcMismatch { .. }
            | Self::UnknownCompression(_)
            | Self::Decompression { .. } => ResponseError::CorruptMessage,
            Self::BadRecordCount { .. }
            | Self::ControlBatch
            | Self::InvalidSequence { .. }
            | Self::OffsetDeltaMismatch { .. }
            | Self::MalformedRecord { .. }
            | Self::RecordsRemaining { .. } => ResponseError::InvalidRecord,
            // Kafka's RecordTooLargeException: not retried as is, and a Java producer splits a
            // compressed batch that gets it, which rescues a legitimate but very compressible one.
            Self::UncompressedTooLarge { .. } => ResponseError::MessageTooLarge,
            Self::TimestampOutOfRange { .. } => ResponseError::InvalidTimestamp,
        }
    }
}

/// The decoded fixed header of a v2 record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Decodes the header at the start of `buf` without validating the batch behind it.
    pub fn parse(buf: &[u8]) -> Result<Self, BatchError> {
        if buf.len() < HEADER_LEN {
            return Err(BatchError::Truncated {
                need: HEADER_LEN,
                have: buf.len(),
            });
        }
        let mut b = &buf[..HEADER_LEN];
        Ok(Self {
            base_offset: b.get_i64(),
            batch_length: b.get_i32(),
            partition_leader_epoch: b.get_i32(),
            magic: b.get_i8(),
            crc: b.get_u32(),
            attributes: b.get_i16(),
            last_offset_delta: b.get_i32(),
            base_timestamp: b.get_i64(),
            max_timestamp: b.get_i64(),
            producer_id: b.get_i64(),
            producer_epoch: b.get_i16(),
            base_sequence: b.get_i32(),
            records_count: b.get_i32(),
        })
    }

    /// Total size of the batch on the wire, header included.
    pub fn total_size(&self) -> usize {
        self.batch_length as usize + LOG_OVERHEAD
    }

    /// Number of offsets the batch occupies.
    pub fn offset_count(&self) -> i64 {
        i64::from(self.last_offset_delta) + 1
    }

    /// The offset of the last record in the batch.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// Compression codec id: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn compression(&self) -> i16 {
        self.attributes & COMPRESSION_MASK
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG != 0
    }

    pub fn uses_log_append_time(&self) -> bool {
        self.attributes & LOG_APPEND_TIME_FLAG != 0
    }
}

/// A batch whose framing, magic and CRC have been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidBatch {
    pub header: BatchHeader,
    pub bytes: Bytes,
}

/// Splits the `records` field of a produce request into batches and validates each one as
/// Kafka's log validator does for a producer's batches: framing and CRC as
/// [`validate_batches`], then the header against the records (see the module docs). A batch
/// whose max timestamp or timestamp type is wrong comes back rewritten, with its CRC
/// recomputed; any other comes back as the same bytes. At most `max_uncompressed` bytes are
/// decompressed per batch (the broker passes [`MAX_UNCOMPRESSED_BATCH_BYTES`]).
pub fn validate_producer_batches(
    records: &Bytes,
    max_uncompressed: usize,
) -> Result<Vec<ValidBatch>, BatchError> {
    validate_producer_batches_within(records, max_uncompressed, None)
}

/// The record timestamps a topic accepts with `CreateTime`: from `now_ms - before_max_ms` to
/// `now_ms + after_max_ms` (Kafka's `message.timestamp.before.max.ms` and `.after.max.ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampWindow {
    pub now_ms: i64,
    pub before_max_ms: i64,
    pub after_max_ms: i64,
}

impl TimestampWindow {
    fn check(&self, summary: &records::RecordsSummary) -> Result<(), BatchError> {
        let earliest = self.now_ms.saturating_sub(self.before_max_ms);
        let latest = self.now_ms.saturating_add(self.after_max_ms);
        for timestamp in [summary.min_timestamp, summary.max_timestamp] {
            if timestamp < earliest || timestamp > latest {
                return Err(BatchError::TimestampOutOfRange {
                    timestamp,
                    earliest,
                    latest,
                });
            }
        }
        Ok(())
    }
}

/// [`validate_producer_batches`], and every record's timestamp within `window` when one is
/// given (a topic with `CreateTime`; with `LogAppendTime` the broker's clock replaces them).
pub fn validate_producer_batches_within(
    records: &Bytes,
    max_uncompressed: usize,
    window: Option<TimestampWindow>,
) -> Result<Vec<ValidBatch>, BatchError> {
    let mut batches = validate_batches(records)?;
    for batch in &mut batches {
        check_against_records(batch, max_uncompressed, window)?;
    }
    Ok(batches)
}

fn check_against_records(
    batch: &mut ValidBatch,
    max_uncompressed: usize,
    window: Option<TimestampWindow>,
) -> Result<(), BatchError> {
    let h = batch.header;
    if h.last_offset_delta != h.records_count - 1 {
        return Err(BatchError::BadRecordCount {
            count: h.records_count,
            last_offset_delta: h.last_offset_delta,
        });
    }
    if h.is_control() {
        return Err(BatchError::ControlBatch);
    }
    if h.producer_id >= 0 && h.base_sequence < 0 {
        return Err(BatchError::InvalidSequence {
            producer_id: h.producer_id,
            base_sequence: h.base_sequence,
        });
    }
    let summary = records::scan(&h, &batch.bytes[HEADER_LEN..], max_uncompressed)?;
    if let Some(window) = window {
        window.check(&summary)?;
    }
    // Kafka's setMaxTimestamp(CREATE_TIME, max): a no-op when both already hold.
    let attributes = h.attributes & !LOG_APPEND_TIME_FLAG;
    if summary.max_timestamp == h.max_timestamp && attributes == h.attributes {
        return Ok(());
    }
    let mut buf = BytesMut::from(&batch.bytes[..]);
    buf[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    buf[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8]
        .copy_from_slice(&summary.max_timestamp.to_be_bytes());
    let crc = crc32c::crc32c(&buf[CRC_START..]);
    buf[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    batch.bytes = buf.freeze();
    batch.header = BatchHeader::parse(&batch.bytes)?;
    Ok(())
}

/// Splits the `records` field of a produce request (or a replica fetch) into batches and checks
/// each one's framing, magic and CRC, without looking at the records.
/// Kafka clients send one batch per partition; several are accepted, none is not.
pub fn validate_batches(records: &Bytes) -> Result<Vec<ValidBatch>, BatchError> {
    let mut batches = Vec::with_capacity(1);
    let mut at = 0;
    while at < records.len() {
        let header = BatchHeader::parse(&records[at..])?;
        if header.batch_length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
            return Err(BatchError::BadLength(header.batch_length));
        }
        let end = at + header.total_size();
        if end > records.len() {
            return Err(BatchError::Truncated {
                need: end - at,
                have: records.len() - at,
            });
        }
        let bytes = records.slice(at..end);
        validate(&header, &bytes)?;
        batches.push(ValidBatch { header, bytes });
        at = end;
    }
    if batches.is_empty() {
        return Err(BatchError::Empty);
    }
    Ok(batches)
}

fn validate(header: &BatchHeader, bytes: &[u8]) -> Result<(), BatchError> {
    if header.magic != MAGIC_V2 {
        return Err(BatchError::BadMagic(header.magic));
    }
    let actual = crc32c::crc32c(&bytes[CRC_START..]);
    if actual != header.crc {
        return Err(BatchError::CrcMismatch {
            expected: header.crc,
            actual,
        });
    }
    if header.records_count < 1 || header.last_offset_delta < header.records_count - 1 {
        return Err(BatchError::BadRecordCount {
            count: header.records_count,
            last_offset_delta: header.last_offset_delta,
        });
    }
    Ok(())
}

/// A topic's `compression.type`: the codec its batches are stored with, or `None` for
/// `producer` (as the producer sent them). `None` from [`parse_compression_type`] means the
/// value is not one Kafka knows.
pub fn parse_compression_type(value: &str) -> Option<Option<i16>> {
    Some(match value {
        "producer" => None,
        "uncompressed" => Some(0),
        "gzip" => Some(1),
        "snappy" => Some(2),
        "lz4" => Some(3),
        "zstd" => Some(4),
        _ => return None,
    })
}

/// Rewrites a batch [`validate_producer_batches`] accepted so its records are compressed with
/// `codec` (an attribute id, 0 for none), as Kafka's log validator does for a topic whose
/// `compression.type` differs from what the producer used. Every other header field (producer
/// id, epoch and sequence, timestamps, flags) is kept; length and CRC are recomputed. A batch
/// already in `codec` comes back unchanged.
pub fn recompress(
    batch: &ValidBatch,
    codec: i16,
    max_uncompressed: usize,
) -> Result<ValidBatch, BatchError> {
    let h = batch.header;
    if h.compression() == codec {
        return Ok(batch.clone());
    }
    let plain = records::decompress(&h, &batch.bytes[HEADER_LEN..], max_uncompressed)?;
    let payload = records::compress(codec, &plain)?;
    let batch_length = i32::try_from(HEADER_LEN - LOG_OVERHEAD + payload.len()).map_err(|_| {
        BatchError::UncompressedTooLarge {
            limit: max_uncompressed,
        }
    })?;
    let mut buf = BytesMut::with_capacity(HEADER_LEN + payload.len());
    buf.extend_from_slice(&batch.bytes[..HEADER_LEN]);
    buf.extend_from_slice(&payload);
    buf[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let attributes = (h.attributes & !COMPRESSION_MASK) | codec;
    buf[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc32c::crc32c(&buf[CRC_START..]);
    buf[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    let bytes = buf.freeze();
    Ok(ValidBatch {
        header: BatchHeader::parse(&bytes)?,
        bytes,
    })
}

/// Rewrites the fields the broker assigns: base offset and partition leader epoch. Neither is
/// covered by the CRC, so the batch stays valid without recomputing it.
pub fn assign(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    batch[..8].copy_from_slice(&base_offset.to_be_bytes());
    batch[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&leader_epoch.to_be_bytes());
}

const ATTRIBUTES_AT: usize = 21;
const MAX_TIMESTAMP_AT: usize = 35;
const CRC_AT: usize = 17;

/// Stamps a batch with the broker's clock for a topic with `message.timestamp.type=LogAppendTime`:
/// sets the timestamp-type attribute and the max timestamp, which readers then use as every
/// record's timestamp, and recomputes the CRC those fields are covered by.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attributes =
        i16::from_be_bytes([batch[ATTRIBUTES_AT], batch[ATTRIBUTES_AT + 1]]) | LOG_APPEND_TIME_FLAG;
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Reads the magic byte of a stored batch, for callers that only need to tell formats apart.
pub fn magic(batch: &[u8]) -> Option<i8> {
    batch.get(MAGIC_AT).map(|b| *b as i8)
}

/// Finds the first record in `batch` whose timestamp is at or after `target` and returns its
/// offset and timestamp. This is the cold path of ListOffsets by timestamp, never the produce
/// or fetch path. The records are walked as produce validation walks them (streamed, within
/// [`MAX_UNCOMPRESSED_BATCH_BYTES`], timestamps wrapping as Kafka's do), not decoded whole:
/// kafka-protocol's decoder panics on a base timestamp near `i64::MAX` when overflow checks
/// are on, and holds every record of the batch at once. In a `LogAppendTime` batch every record
/// carries the batch's max timestamp (the broker's clock at append), as Kafka reads it, so the
/// batch answers from its header alone.
pub fn first_record_at_or_after(batch: &Bytes, target: i64) -> anyhow::Result<Option<(i64, i64)>> {
    let header = BatchHeader::parse(batch)?;
    if header.magic != MAGIC_V2 {
        return Err(BatchError::BadMagic(header.magic).into());
    }
    if header.uses_log_append_time() {
        let at = header.max_timestamp;
        return Ok((at >= target).then_some((header.base_offset, at)));
    }
    let payload = batch
        .get(HEADER_LEN..header.total_size())
        .ok_or(BatchError::Truncated {
            need: header.total_size(),
            have: batch.len(),
        })?;
    let found = records::find_at_or_after(&header, payload, MAX_UNCOMPRESSED_BATCH_BYTES, target)?;
    Ok(found.map(|(delta, timestamp)| (header.base_offset + i64::from(delta), timestamp)))
}

#[cfg(test)]
mod validation_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::{Compression, TimestampType};

    use crate::testing::{encode as encoded, record};

    fn three_records() -> Bytes {
        encoded(
            &[
                record(0, 1000, "a"),
                record(1, 2000, "b"),
                record(2, 3000, "c"),
            ],
            Compression::None,
        )
    }

    #[test]
    fn valid_batch_is_accepted_with_its_header_decoded() {
        let batches = validate_batches(&three_records()).unwrap();
        assert_eq!(batches.len(), 1);
        let h = batches[0].header;
        assert_eq!((h.records_count, h.last_offset_delta, h.magic), (3, 2, 2));
        assert_eq!((h.base_timestamp, h.max_timestamp), (1000, 3000));
        assert_eq!(h.total_size(), batches[0].bytes.len());
    }

    #[test]
    fn flipped_payload_byte_fails_the_crc() {
        let mut b = BytesMut::from(&three_records()[..]);
        let last = b.len() - 1;
        b[last] ^= 0xff;
        assert!(matches!(
            validate_batches(&b.freeze()),
            Err(BatchError::CrcMismatch { .. })
        ));
    }

    #[test]
    fn wrong_magic_is_rejected() {
        let mut b = BytesMut::from(&three_records()[..]);
        b[MAGIC_AT] = 1;
        assert_eq!(validate_batches(&b.freeze()), Err(BatchError::BadMagic(1)));
    }

    #[test]
    fn truncated_batches_are_rejected_at_every_length() {
        let full = three_records();
        for cut in 0..full.len() {
            let err = validate_batches(&full.slice(..cut)).unwrap_err();
            assert!(
                matches!(err, BatchError::Truncated { .. } | BatchError::Empty),
                "cut {cut}: {err}"
            );
        }
    }

    #[test]
    fn absurd_batch_length_is_rejected() {
        let mut b = BytesMut::from(&three_records()[..]);
        b[8..12].copy_from_slice(&3i32.to_be_bytes());
        assert_eq!(validate_batches(&b.freeze()), Err(BatchError::BadLength(3)));
        let mut b = BytesMut::from(&three_records()[..]);
        b[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            validate_batches(&b.freeze()),
            Err(BatchError::Truncated { .. })
        ));
    }

    #[test]
    fn two_concatenated_batches_are_both_returned() {
        let mut b = BytesMut::from(&three_records()[..]);
        b.extend_from_slice(&encoded(&[record(0, 5, "z")], Compression::None));
        let batches = validate_batches(&b.freeze()).unwrap();
        assert_eq!(
            batches
                .iter()
                .map(|b| b.header.records_count)
                .collect::<Vec<_>>(),
            vec![3, 1]
        );
    }

    #[test]
    fn assigning_offset_and_epoch_keeps_the_crc_valid() {
        let mut b = BytesMut::from(&three_records()[..]);
        assign(&mut b, 1_000_000, 7);
        let batches = validate_batches(&b.freeze()).unwrap();
        let h = batches[0].header;
        assert_eq!(
            (h.base_offset, h.partition_leader_epoch, h.last_offset()),
            (1_000_000, 7, 1_000_002)
        );
    }

    #[test]
    fn log_append_time_sets_type_and_timestamp_and_keeps_the_batch_valid() {
        let mut b = BytesMut::from(&three_records()[..]);
        set_log_append_time(&mut b, 77_000);
        let batches = validate_batches(&b.freeze()).unwrap();
        let h = batches[0].header;
        assert!(h.uses_log_append_time());
        assert_eq!((h.max_timestamp, h.compression()), (77_000, 0));
        let mut buf = batches[0].bytes.clone();
        let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf).unwrap();
        // Readers (Java, librdkafka) take the max timestamp as every record's timestamp when the
        // type is LogAppendTime; the header carries both.
        assert!(
            set.records
                .iter()
                .all(|r| r.timestamp_type == TimestampType::LogAppend)
        );
    }

    #[test]
    fn compressed_batches_keep_their_codec_bits() {
        for (codec, id) in [
            (Compression::Gzip, 1),
            (Compression::Snappy, 2),
            (Compression::Lz4, 3),
            (Compression::Zstd, 4),
        ] {
            let b = encoded(&[record(0, 1, "x"), record(1, 2, "y")], codec);
            let batches = validate_batches(&b).unwrap();
            assert_eq!(batches[0].header.compression(), id);
        }
    }

    /// Found by the `record_batch` fuzz target (its input is
    /// fuzz/regressions/record_batch/list-offsets-timestamp-overflow): a batch is accepted with
    /// a base timestamp near `i64::MAX` (Kafka accepts it too), and ListOffsets by time then
    /// panicked in kafka-protocol's decoder on the overflowing record timestamp.
    #[test]
    fn timestamp_lookup_wraps_timestamps_past_i64_max_instead_of_panicking() {
        let b = encoded(
            &[record(0, 1000, "a"), record(1, 2000, "b")],
            Compression::Gzip,
        );
        let mut b = BytesMut::from(&b[..]);
        b[27..35].copy_from_slice(&(i64::MAX - 7).to_be_bytes());
        let crc = crc32c::crc32c(&b[CRC_START..]);
        b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        let accepted = validate_producer_batches(&b.freeze(), MAX_UNCOMPRESSED_BATCH_BYTES)
            .unwrap()
            .remove(0);
        let mut stored = BytesMut::from(&accepted.bytes[..]);
        assign(&mut stored, 10, 0);
        let stored = stored.freeze();
        assert_eq!(
            first_record_at_or_after(&stored, i64::MAX - 7).unwrap(),
            Some((10, i64::MAX - 7))
        );
        assert_eq!(
            first_record_at_or_after(&stored, i64::MAX - 6).unwrap(),
            None
        );
        assert_eq!(
            first_record_at_or_after(&stored, i64::MIN).unwrap(),
            Some((10, i64::MAX - 7))
        );
    }

    #[test]
    fn timestamp_lookup_in_a_log_append_time_batch_uses_the_append_time_for_every_record() {
        let b = encoded(
            &[record(0, 1000, "a"), record(1, 2000, "b")],
            Compression::Zstd,
        );
        let mut stored = BytesMut::from(&b[..]);
        assign(&mut stored, 10, 0);
        set_log_append_time(&mut stored, 5000);
        let stored = stored.freeze();
        assert_eq!(
            first_record_at_or_after(&stored, 1500).unwrap(),
            Some((10, 5000))
        );
        assert_eq!(
            first_record_at_or_after(&stored, 5000).unwrap(),
            Some((10, 5000))
        );
        assert_eq!(first_record_at_or_after(&stored, 5001).unwrap(), None);
    }

    #[test]
    fn timestamp_lookup_finds_first_record_at_or_after_target() {
        for codec in [Compression::None, Compression::Zstd] {
            let b = encoded(
                &[
                    record(0, 1000, "a"),
                    record(1, 2000, "b"),
                    record(2, 3000, "c"),
                ],
                codec,
            );
            let mut stored = BytesMut::from(&b[..]);
            assign(&mut stored, 10, 0);
            let stored = stored.freeze();
            assert_eq!(
                first_record_at_or_after(&stored, 1500).unwrap(),
                Some((11, 2000))
            );
            assert_eq!(
                first_record_at_or_after(&stored, 0).unwrap(),
                Some((10, 1000))
            );
            assert_eq!(first_record_at_or_after(&stored, 3001).unwrap(), None);
        }
    }
}
