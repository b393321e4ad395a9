//! OffsetCommit v0–1 and OffsetFetch v0, the group offset versions Kafka 4.0 removed.
//!
//! OffsetCommit v0 has neither generation nor member (a commit outside group management);
//! v1 adds them and a per-partition commit timestamp, which v2 replaced with a retention time.
//! The responses of v0–1 are laid out as v2's. OffsetFetch v0 is v1 on the wire: it only
//! told ZooKeeper-era brokers where to look.

use anyhow::Result;
use bytes::Bytes;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    GroupId, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
    TopicName,
};
use kafka_protocol::protocol::Decodable;
use kafka_protocol::protocol::buf::ByteBuf;

use super::wire;

/// The OffsetCommit version whose response layout v0 and v1 share.
const OFFSET_COMMIT_RESPONSE_AS: i16 = 2;
/// The OffsetFetch version v0 is identical to.
const OFFSET_FETCH_AS: i16 = 1;

/// Decodes OffsetCommit v0 or v1; the fields they lack keep Kafka's defaults (generation -1,
/// no member, retention -1: the broker's). v1's commit timestamp is read and dropped: Krait
/// stamps every commit with its own clock, as Kafka does for v2 and later.
pub fn decode_offset_commit<B: ByteBuf>(buf: &mut B, version: i16) -> Result<OffsetCommitRequest> {
    let mut request = OffsetCommitRequest::default();
    request.group_id = GroupId(wire::string(buf)?);
    request.generation_id_or_member_epoch = -1;
    request.retention_time_ms = -1;
    if version >= 1 {
        request.generation_id_or_member_epoch = wire::i32(buf)?;
        request.member_id = wire::string(buf)?;
    }
    // Smallest topic: name length (2) + partition count (4). Smallest partition: index (4),
    // offset (8), [timestamp (8),] metadata length (2).
    let partition_min = if version >= 1 { 22 } else { 14 };
    request.topics = wire::array(buf, 6, |buf| {
        let mut topic = OffsetCommitRequestTopic::default();
        topic.name = TopicName(wire::string(buf)?);
        topic.partitions = wire::array(buf, partition_min, |buf| {
            let mut p = OffsetCommitRequestPartition::default();
            p.partition_index = wire::i32(buf)?;
            p.committed_offset = wire::i64(buf)?;
            p.committed_leader_epoch = -1;
            if version >= 1 {
                let _commit_timestamp = wire::i64(buf)?;
            }
            p.committed_metadata = wire::nullable_string(buf)?;
            Ok(p)
        })?;
        Ok(topic)
    })?;
    Ok(request)
}

pub fn encode_offset_commit_response(response: &OffsetCommitResponse) -> Result<Bytes> {
    super::encode_as(response, OFFSET_COMMIT_RESPONSE_AS)
}

pub fn decode_offset_fetch<B: ByteBuf>(buf: &mut B) -> Result<OffsetFetchRequest> {
    OffsetFetchRequest::decode(buf, OFFSET_FETCH_AS)
}

pub fn encode_offset_fetch_response(response: &OffsetFetchResponse) -> Result<Bytes> {
    super::encode_as(response, OFFSET_FETCH_AS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::offset_commit_response::{
        OffsetCommitResponsePartition, OffsetCommitResponseTopic,
    };

    /// OffsetCommit v1 as the protocol guide lays it out: group, generation, member, then
    /// topics of (partition, offset, timestamp, metadata).
    fn offset_commit_v1_bytes() -> Bytes {
        let mut b = BytesMut::new();
        b.put_i16(2);
        b.put_slice(b"g1");
        b.put_i32(7);
        b.put_i16(3);
        b.put_slice(b"m-1");
        b.put_i32(1);
        b.put_i16(1);
        b.put_slice(b"t");
        b.put_i32(1);
        b.put_i32(0);
        b.put_i64(42);
        b.put_i64(1_700_000_000_000);
        b.put_i16(4);
        b.put_slice(b"meta");
        b.freeze()
    }

    #[test]
    fn offset_commit_v1_reads_generation_member_and_skips_the_commit_timestamp() {
        let mut buf = offset_commit_v1_bytes();
        let r = decode_offset_commit(&mut buf, 1).unwrap();
        assert!(buf.is_empty());
        assert_eq!(&*r.group_id.0, "g1");
        assert_eq!(r.generation_id_or_member_epoch, 7);
        assert_eq!(&*r.member_id, "m-1");
        assert_eq!(r.retention_time_ms, -1);
        let p = &r.topics[0].partitions[0];
        assert_eq!(&*r.topics[0].name.0, "t");
        assert_eq!((p.partition_index, p.committed_offset), (0, 42));
        assert_eq!(p.committed_leader_epoch, -1);
        assert_eq!(p.committed_metadata.as_deref(), Some("meta"));
    }

    #[test]
    fn offset_commit_v0_is_a_commit_outside_group_management() {
        let mut b = BytesMut::new();
        b.put_i16(1);
        b.put_slice(b"g");
        b.put_i32(1);
        b.put_i16(1);
        b.put_slice(b"t");
        b.put_i32(2);
        for (p, o) in [(0, 5i64), (1, 9)] {
            b.put_i32(p);
            b.put_i64(o);
            b.put_i16(-1);
        }
        let mut buf = b.freeze();
        let r = decode_offset_commit(&mut buf, 0).unwrap();
        assert!(buf.is_empty());
        assert_eq!(r.generation_id_or_member_epoch, -1);
        assert!(r.member_id.is_empty());
        let offsets: Vec<_> = r.topics[0]
            .partitions
            .iter()
            .map(|p| {
                (
                    p.partition_index,
                    p.committed_offset,
                    p.committed_metadata.clone(),
                )
            })
            .collect();
        assert_eq!(offsets, vec![(0, 5, None), (1, 9, None)]);
    }

    #[test]
    fn offset_commit_truncated_anywhere_is_an_error() {
        let full = offset_commit_v1_bytes();
        for cut in 0..full.len() {
            let mut buf = full.slice(..cut);
            assert!(decode_offset_commit(&mut buf, 1).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn offset_commit_response_v0_is_topics_of_partition_and_error() {
        let mut p = OffsetCommitResponsePartition::default();
        p.partition_index = 3;
        p.error_code = 25;
        let mut t = OffsetCommitResponseTopic::default();
        t.name = TopicName(kafka_protocol::protocol::StrBytes::from_static_str("t"));
        t.partitions.push(p);
        let mut r = OffsetCommitResponse::default();
        r.topics.push(t);
        let body = encode_offset_commit_response(&r).unwrap();
        assert_eq!(
            &body[..],
            &[0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 3, 0, 25]
        );
    }

    #[test]
    fn offset_fetch_v0_is_v1_on_the_wire() {
        let mut b = BytesMut::new();
        b.put_i16(1);
        b.put_slice(b"g");
        b.put_i32(1);
        b.put_i16(1);
        b.put_slice(b"t");
        b.put_i32(1);
        b.put_i32(4);
        let mut buf = b.freeze();
        let r = decode_offset_fetch(&mut buf).unwrap();
        assert!(buf.is_empty());
        assert_eq!(&*r.group_id.0, "g");
        let topics = r.topics.unwrap();
        assert_eq!(topics[0].partition_indexes, vec![4]);
    }
}
