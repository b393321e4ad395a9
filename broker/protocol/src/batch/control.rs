//! Transaction markers: the control batches (magic v2) a transaction coordinator appends to
//! every partition of a transaction when it commits or aborts it, and the reading of one back.
//!
//! A marker is one record whose key is `(version 0: i16, type: i16)` — 0 ABORT, 1 COMMIT — and
//! whose value is `(version 0: i16, coordinator epoch: i32)`, in a batch with the transactional
//! and control attributes and the producer's id and epoch (Kafka's `EndTransactionMarker`).
//! Pure: it builds and parses bytes, nothing else.

use bytes::{BufMut, Bytes, BytesMut};

use super::{BatchError, BatchHeader, CONTROL_FLAG, CRC_START, HEADER_LEN, TRANSACTIONAL_FLAG};

/// What a marker says about the transaction before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerKind {
    Abort,
    Commit,
}

impl MarkerKind {
    fn code(self) -> i16 {
        match self {
            MarkerKind::Abort => 0,
            MarkerKind::Commit => 1,
        }
    }
}

/// A marker to append for producer `producer_id` at `producer_epoch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub kind: MarkerKind,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub coordinator_epoch: i32,
    pub timestamp: i64,
}

fn put_varint(buf: &mut BytesMut, value: i32) {
    let mut v = ((value << 1) ^ (value >> 31)) as u32;
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// The marker as a complete v2 batch at base offset 0 (the log assigns the real one).
pub fn encode_marker(marker: &Marker) -> Bytes {
    let mut record = BytesMut::new();
    record.put_i8(0); // record attributes
    put_varint(&mut record, 0); // timestamp delta
    put_varint(&mut record, 0); // offset delta
    put_varint(&mut record, 4);
    record.put_i16(0);
    record.put_i16(marker.kind.code());
    put_varint(&mut record, 6);
    record.put_i16(0);
    record.put_i32(marker.coordinator_epoch);
    put_varint(&mut record, 0); // headers
    let mut records = BytesMut::new();
    put_varint(&mut records, record.len() as i32);
    records.extend_from_slice(&record);

    let mut buf = BytesMut::with_capacity(HEADER_LEN + records.len());
    buf.put_i64(0); // base offset
    buf.put_i32((HEADER_LEN - super::LOG_OVERHEAD + records.len()) as i32);
    buf.put_i32(-1); // partition leader epoch, assigned on append
    buf.put_i8(super::MAGIC_V2);
    buf.put_u32(0); // crc, below
    buf.put_i16(TRANSACTIONAL_FLAG | CONTROL_FLAG);
    buf.put_i32(0); // last offset delta
    buf.put_i64(marker.timestamp);
    buf.put_i64(marker.timestamp);
    buf.put_i64(marker.producer_id);
    buf.put_i16(marker.producer_epoch);
    buf.put_i32(-1); // base sequence: markers carry none
    buf.put_i32(1);
    buf.extend_from_slice(&records);
    let crc = crc32c::crc32c(&buf[CRC_START..]);
    buf[super::CRC_AT..super::CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    buf.freeze()
}

/// The kind of the marker in a control batch, read from its one record's key. Only batches this
/// module (or a Kafka coordinator) wrote are read here, uncompressed.
pub fn marker_kind(header: &BatchHeader, batch: &[u8]) -> Result<MarkerKind, BatchError> {
    let malformed = |reason| BatchError::MalformedRecord { index: 0, reason };
    if !header.is_control() {
        return Err(malformed("not a control batch"));
    }
    let mut at = HEADER_LEN;
    // length varint, attributes, timestamp delta varint, offset delta varint, key length varint
    at += varint_len(batch, at).ok_or(malformed("truncated control record"))?;
    at += 1;
    at += varint_len(batch, at).ok_or(malformed("truncated control record"))?;
    at += varint_len(batch, at).ok_or(malformed("truncated control record"))?;
    at += varint_len(batch, at).ok_or(malformed("truncated control record"))?;
    let key = batch
        .get(at..at + 4)
        .ok_or(malformed("control record key shorter than 4 bytes"))?;
    match i16::from_be_bytes([key[2], key[3]]) {
        0 => Ok(MarkerKind::Abort),
        1 => Ok(MarkerKind::Commit),
        _ => Err(malformed("unknown control record type")),
    }
}

/// The length in bytes of the varint starting at `at`.
fn varint_len(batch: &[u8], at: usize) -> Option<usize> {
    let bytes = batch.get(at..)?;
    bytes
        .iter()
        .take(5)
        .position(|b| b & 0x80 == 0)
        .map(|p| p + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::validate_batches;

    fn marker(kind: MarkerKind) -> Marker {
        Marker {
            kind,
            producer_id: 42,
            producer_epoch: 3,
            coordinator_epoch: 7,
            timestamp: 1_700_000_000_000,
        }
    }

    #[test]
    fn a_marker_is_a_valid_transactional_control_batch_of_one_record() {
        let bytes = encode_marker(&marker(MarkerKind::Commit));
        let batches = validate_batches(&bytes).expect("valid framing and crc");
        let h = batches[0].header;
        assert!(h.is_control() && h.is_transactional());
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (42, 3, -1)
        );
        assert_eq!((h.records_count, h.last_offset_delta), (1, 0));
    }

    #[test]
    fn marker_kind_reads_back_what_was_written() {
        for kind in [MarkerKind::Abort, MarkerKind::Commit] {
            let bytes = encode_marker(&marker(kind));
            let h = BatchHeader::parse(&bytes).expect("header");
            assert_eq!(marker_kind(&h, &bytes), Ok(kind));
        }
    }

    #[test]
    fn kafka_protocol_decodes_the_marker_as_a_control_record() {
        let mut bytes = encode_marker(&marker(MarkerKind::Abort));
        let records = kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes)
            .expect("kafka-protocol decodes it");
        let r = &records.records[0];
        assert!(r.control && r.transactional);
        assert_eq!(r.key.as_deref(), Some(&[0u8, 0, 0, 0][..]));
        assert_eq!(r.value.as_deref(), Some(&[0u8, 0, 0, 0, 0, 7][..]));
    }

    #[test]
    fn a_data_batch_has_no_marker_kind() {
        let bytes = crate::testing::TestBatch::of(["a"]).encode();
        let h = BatchHeader::parse(&bytes).expect("header");
        assert!(marker_kind(&h, &bytes).is_err());
    }
}
