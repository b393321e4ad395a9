//! Record batches for tests, built once here instead of in every crate's test helpers: the
//! `kafka-protocol` encoder writes them as a client would. Compiled for this crate's tests and
//! for other crates' with the `test-support` feature.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// A record as a plain (non-idempotent) producer writes it: offset delta `offset`,
/// CreateTime `timestamp`, no key.
pub fn record(offset: i64, timestamp: i64, value: impl Into<Bytes>) -> Record {
    Record {
        transactional: false,
        control: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset,
        sequence: offset as i32,
        timestamp,
        key: None,
        value: Some(value.into()),
        headers: Default::default(),
        delete_horizon: false,
    }
}

/// `records` as one magic v2 batch, compressed with `compression`.
pub fn encode(records: &[Record], compression: Compression) -> Bytes {
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, records, &options).expect("test records encode");
    buf.freeze()
}

/// A batch of values, one record each, with timestamps `first_timestamp`, `+1`, ...; from
/// an idempotent producer when asked.
#[derive(Debug, Clone)]
pub struct TestBatch {
    values: Vec<Bytes>,
    first_timestamp: i64,
    /// Producer id, epoch and first sequence.
    producer: Option<(i64, i16, i32)>,
    transactional: bool,
    compression: Compression,
}

impl TestBatch {
    pub fn of<V: Into<Bytes>>(values: impl IntoIterator<Item = V>) -> Self {
        Self {
            values: values.into_iter().map(Into::into).collect(),
            first_timestamp: 0,
            producer: None,
            transactional: false,
            compression: Compression::None,
        }
    }

    /// `n` records with values `v0`, `v1`, ...
    pub fn numbered(n: usize) -> Self {
        Self::of((0..n).map(|i| format!("v{i}")))
    }

    pub fn first_timestamp(mut self, timestamp: i64) -> Self {
        self.first_timestamp = timestamp;
        self
    }

    pub fn idempotent(mut self, producer_id: i64, producer_epoch: i16, first_seq: i32) -> Self {
        self.producer = Some((producer_id, producer_epoch, first_seq));
        self
    }

    /// From a transactional producer: `idempotent` and the transactional attribute.
    pub fn transactional(mut self, producer_id: i64, producer_epoch: i16, first_seq: i32) -> Self {
        self.producer = Some((producer_id, producer_epoch, first_seq));
        self.transactional = true;
        self
    }

    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    pub fn records(&self) -> Vec<Record> {
        self.values
            .iter()
            .enumerate()
            .map(|(i, value)| {
                let mut r = record(i as i64, self.first_timestamp + i as i64, value.clone());
                if let Some((id, epoch, first_seq)) = self.producer {
                    (r.producer_id, r.producer_epoch) = (id, epoch);
                    r.sequence = first_seq + i as i32;
                }
                r.transactional = self.transactional;
                r
            })
            .collect()
    }

    pub fn encode(&self) -> Bytes {
        encode(&self.records(), self.compression)
    }
}
