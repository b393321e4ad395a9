//! The records of a stored batch as log compaction sees them (offset, timestamp, key, whether
//! the value is null), and the batch rebuilt with only some of them.
//!
//! A rebuilt batch keeps everything that places it in the log: base offset, last offset delta
//! (so it still covers its whole offset range, as Kafka's cleaner keeps it), base timestamp,
//! producer id, epoch and base sequence, attributes and codec. The kept records are copied
//! verbatim (their offset and timestamp deltas are relative to the unchanged base), so only the
//! record count, the max timestamp, the length and the CRC change. This module must not be used
//! on a batch that was not validated first (its CRC checked), and decompresses within the bound
//! it is given, like every other reader of records.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

use super::{
    ATTRIBUTES_AT, BatchError, BatchHeader, CRC_AT, CRC_START, HEADER_LEN, LOG_OVERHEAD,
    MAX_TIMESTAMP_AT, records,
};

const RECORDS_COUNT_AT: usize = 57;

/// One record of a batch, by position in the batch's uncompressed records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionRecord {
    /// The record's offset is the batch's base offset plus this.
    pub offset_delta: i32,
    /// CreateTime of the record, or the batch's max timestamp for a LogAppendTime batch.
    pub timestamp: i64,
    /// Where the key lies in [`BatchRecords::plain`]; `None` for a null key.
    key: Option<Range<usize>>,
    /// A null value: a tombstone, when the record has a key.
    pub null_value: bool,
    /// The whole record (length prefix included) in [`BatchRecords::plain`].
    span: Range<usize>,
}

/// The positions of the records without a key in `batches` (one produce request's records for
/// a partition), counted from 0 across them: Kafka's log validator refuses each such record
/// for a compacted topic, and reports these positions as the produce response's
/// `record_errors[].batch_index`.
pub fn keyless_record_indexes(
    batches: &[super::ValidBatch],
    max_uncompressed: usize,
) -> Result<Vec<i32>, BatchError> {
    let mut keyless = Vec::new();
    let mut index = 0i32;
    for b in batches {
        let decoded = BatchRecords::decode(&b.bytes, max_uncompressed)?;
        for r in &decoded.records {
            if r.key.is_none() {
                keyless.push(index);
            }
            index = index.saturating_add(1);
        }
    }
    Ok(keyless)
}

/// The decoded records of one batch.
#[derive(Debug, Clone)]
pub struct BatchRecords {
    pub header: BatchHeader,
    plain: Vec<u8>,
    pub records: Vec<CompactionRecord>,
}

impl BatchRecords {
    /// Decodes the records of a stored batch, decompressing at most `max_uncompressed` bytes.
    /// Offset deltas must increase (a compacted batch has gaps) and stay within the batch.
    pub fn decode(batch: &[u8], max_uncompressed: usize) -> Result<Self, BatchError> {
        let header = BatchHeader::parse(batch)?;
        let payload = batch
            .get(HEADER_LEN..header.total_size())
            .ok_or(BatchError::Truncated {
                need: header.total_size(),
                have: batch.len(),
            })?;
        let plain = records::decompress(&header, payload, max_uncompressed)?;
        let count = usize::try_from(header.records_count).unwrap_or(0);
        // Each record takes at least 7 bytes, so a lying count cannot reserve much.
        let mut out = Vec::with_capacity(count.min(plain.len() / 7 + 1));
        let mut reader = Reader {
            buf: &plain,
            at: 0,
            index: 0,
        };
        let mut previous_delta = -1;
        for index in 0..header.records_count {
            reader.index = index;
            let r = reader.record(&header)?;
            if r.offset_delta <= previous_delta || r.offset_delta > header.last_offset_delta {
                return Err(BatchError::OffsetDeltaMismatch {
                    index,
                    offset_delta: r.offset_delta,
                });
            }
            previous_delta = r.offset_delta;
            out.push(r);
        }
        if reader.at != plain.len() {
            return Err(BatchError::RecordsRemaining {
                count: header.records_count,
            });
        }
        Ok(Self {
            header,
            plain,
            records: out,
        })
    }

    /// The key of `record`, `None` when null.
    pub fn key(&self, record: &CompactionRecord) -> Option<&[u8]> {
        record.key.clone().map(|k| &self.plain[k])
    }

    /// `batch` (the bytes this was decoded from) with only the records `keep` says, in the
    /// same codec; `None` when no record is kept. `keep` has one entry per record.
    pub fn retain(&self, batch: &[u8], keep: &[bool]) -> Result<Option<Bytes>, BatchError> {
        let mut kept = Vec::with_capacity(self.plain.len());
        let (mut count, mut max_timestamp) = (0i32, -1i64);
        for (r, _) in self.records.iter().zip(keep).filter(|(_, k)| **k) {
            kept.extend_from_slice(&self.plain[r.span.clone()]);
            count += 1;
            max_timestamp = max_timestamp.max(r.timestamp);
        }
        if count == 0 {
            return Ok(None);
        }
        let h = self.header;
        if h.uses_log_append_time() {
            max_timestamp = h.max_timestamp;
        }
        let payload = records::compress(h.compression(), &kept)?;
        let batch_length = i32::try_from(HEADER_LEN - LOG_OVERHEAD + payload.len())
            .map_err(|_| BatchError::BadLength(i32::MAX))?;
        let mut buf = BytesMut::with_capacity(HEADER_LEN + payload.len());
        buf.extend_from_slice(&batch[..HEADER_LEN]);
        buf.extend_from_slice(&payload);
        buf[8..12].copy_from_slice(&batch_length.to_be_bytes());
        buf[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&max_timestamp.to_be_bytes());
        buf[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&count.to_be_bytes());
        debug_assert_eq!(
            i16::from_be_bytes([buf[ATTRIBUTES_AT], buf[ATTRIBUTES_AT + 1]]),
            h.attributes
        );
        let crc = crc32c::crc32c(&buf[CRC_START..]);
        buf[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        Ok(Some(buf.freeze()))
    }
}

/// Reads records out of an uncompressed records buffer.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
    index: i32,
}

impl Reader<'_> {
    fn record(&mut self, header: &BatchHeader) -> Result<CompactionRecord, BatchError> {
        let start = self.at;
        let size = self.varint()?;
        let size = usize::try_from(size).map_err(|_| self.malformed("negative record size"))?;
        let end = self.at + size;
        if end > self.buf.len() {
            return Err(self.malformed("record runs past the batch"));
        }
        self.take(1)?; // attributes
        let timestamp_delta = self.varlong()?;
        let offset_delta = self.varint()?;
        let key = self.field()?;
        let value = self.field()?;
        let headers = self.varint()?;
        if headers < 0 {
            return Err(self.malformed("negative header count"));
        }
        for _ in 0..headers {
            if self.field()?.is_none() {
                return Err(self.malformed("null header key"));
            }
            self.field()?;
        }
        if self.at != end {
            return Err(self.malformed("fields do not fill the record size"));
        }
        let timestamp = if header.uses_log_append_time() {
            header.max_timestamp
        } else {
            header.base_timestamp.wrapping_add(timestamp_delta)
        };
        Ok(CompactionRecord {
            offset_delta,
            timestamp,
            key,
            null_value: value.is_none(),
            span: start..end,
        })
    }

    /// A length-prefixed field: its range, `None` when null (-1).
    fn field(&mut self) -> Result<Option<Range<usize>>, BatchError> {
        let len = self.varint()?;
        if len < -1 {
            return Err(self.malformed("negative field length"));
        }
        if len == -1 {
            return Ok(None);
        }
        let start = self.at;
        self.take(len as usize)?;
        Ok(Some(start..self.at))
    }

    fn take(&mut self, n: usize) -> Result<(), BatchError> {
        if self.buf.len() - self.at < n {
            return Err(self.malformed("records end before the declared count"));
        }
        self.at += n;
        Ok(())
    }

    fn unsigned(&mut self, max_bytes: u32) -> Result<u64, BatchError> {
        let mut value = 0u64;
        for i in 0..max_bytes {
            let b = *self
                .buf
                .get(self.at)
                .ok_or_else(|| self.malformed("records end before the declared count"))?;
            self.at += 1;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.malformed("varint longer than its type"))
    }

    fn varint(&mut self) -> Result<i32, BatchError> {
        let raw = self.unsigned(5)?;
        let raw = u32::try_from(raw).map_err(|_| self.malformed("varint out of range"))?;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    fn varlong(&mut self) -> Result<i64, BatchError> {
        let raw = self.unsigned(10)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    fn malformed(&self, reason: &'static str) -> BatchError {
        BatchError::MalformedRecord {
            index: self.index,
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{MAX_UNCOMPRESSED_BATCH_BYTES, validate_batches};
    use kafka_protocol::records::{Compression, RecordBatchDecoder};

    use crate::testing::{encode, record};

    fn keyed(offset: i64, key: &str, value: Option<&str>) -> kafka_protocol::records::Record {
        let mut r = record(offset, 1000 + offset, "");
        r.key = Some(Bytes::copy_from_slice(key.as_bytes()));
        r.value = value.map(|v| Bytes::copy_from_slice(v.as_bytes()));
        r
    }

    fn batch(compression: Compression) -> Bytes {
        encode(
            &[
                keyed(0, "a", Some("1")),
                keyed(1, "b", None),
                keyed(2, "a", Some("2")),
                keyed(3, "c", Some("3")),
            ],
            compression,
        )
    }

    #[test]
    fn retained_batch_keeps_its_offset_range_and_the_kept_records_offsets() {
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let bytes = batch(compression);
            let decoded = BatchRecords::decode(&bytes, MAX_UNCOMPRESSED_BATCH_BYTES).unwrap();
            assert_eq!(decoded.records.len(), 4);
            assert_eq!(decoded.key(&decoded.records[1]), Some(&b"b"[..]));
            assert!(decoded.records[1].null_value);
            let rebuilt = decoded
                .retain(&bytes, &[false, true, false, true])
                .unwrap()
                .unwrap();
            let valid = validate_batches(&rebuilt).unwrap();
            let h = valid[0].header;
            assert_eq!((h.records_count, h.last_offset_delta), (2, 3));
            assert_eq!(h.compression(), decoded.header.compression());
            assert_eq!(h.max_timestamp, 1003);
            let mut buf = rebuilt.clone();
            let set = RecordBatchDecoder::decode(&mut buf).unwrap();
            let offsets: Vec<i64> = set.records.iter().map(|r| r.offset).collect();
            assert_eq!(offsets, vec![1, 3], "{compression:?}");
            assert_eq!(set.records[1].value.as_deref(), Some(&b"3"[..]));
            let again = BatchRecords::decode(&rebuilt, MAX_UNCOMPRESSED_BATCH_BYTES).unwrap();
            let deltas: Vec<i32> = again.records.iter().map(|r| r.offset_delta).collect();
            assert_eq!(deltas, vec![1, 3]);
        }
    }

    #[test]
    fn keyless_records_are_found_by_position_across_the_batches_of_a_request() {
        // `record` makes records without a key.
        let first = encode(
            &[keyed(0, "a", Some("1")), record(1, 1001, "")],
            Compression::Lz4,
        );
        let second = encode(
            &[record(0, 1000, ""), keyed(1, "b", Some("2"))],
            Compression::None,
        );
        let mut both = first.to_vec();
        both.extend_from_slice(&second);
        let valid = validate_batches(&Bytes::from(both)).unwrap();
        assert_eq!(
            keyless_record_indexes(&valid, MAX_UNCOMPRESSED_BATCH_BYTES).unwrap(),
            vec![1, 2]
        );
        let keyed_only = validate_batches(&batch(Compression::Gzip)).unwrap();
        assert!(
            keyless_record_indexes(&keyed_only, MAX_UNCOMPRESSED_BATCH_BYTES)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn batch_with_nothing_kept_is_dropped() {
        let bytes = batch(Compression::None);
        let decoded = BatchRecords::decode(&bytes, MAX_UNCOMPRESSED_BATCH_BYTES).unwrap();
        assert_eq!(decoded.retain(&bytes, &[false; 4]).unwrap(), None);
    }

    #[test]
    fn decompression_stays_within_the_bound() {
        let bytes = batch(Compression::Gzip);
        assert!(matches!(
            BatchRecords::decode(&bytes, 8),
            Err(BatchError::UncompressedTooLarge { .. })
        ));
    }
}
