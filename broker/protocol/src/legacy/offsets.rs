//! ListOffsets v0 and OffsetForLeaderEpoch v0–1, the offset lookup versions Kafka 4.0 removed.
//!
//! ListOffsets v0 asked for up to `max_num_offsets` offsets before a time and got a list back;
//! v1 replaced that with one offset and its timestamp. Krait answers v0 with the one offset v1
//! would give, as a list of one (none when the lookup finds nothing or fails): the answer
//! clients use, since they read the list's first entry. OffsetForLeaderEpoch v0–1 ask without a
//! current leader epoch; v0 answers without the epoch, v1 with it.

use anyhow::Result;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    BrokerId, ListOffsetsRequest, ListOffsetsResponse, OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse, TopicName,
};
use kafka_protocol::protocol::buf::ByteBuf;

use super::wire;

pub fn decode_list_offsets<B: ByteBuf>(buf: &mut B) -> Result<ListOffsetsRequest> {
    let mut request = ListOffsetsRequest::default();
    request.replica_id = BrokerId(wire::i32(buf)?);
    request.topics = wire::array(buf, 6, |buf| {
        let mut topic = ListOffsetsTopic::default();
        topic.name = TopicName(wire::string(buf)?);
        topic.partitions = wire::array(buf, 16, |buf| {
            let mut p = ListOffsetsPartition::default();
            p.partition_index = wire::i32(buf)?;
            p.timestamp = wire::i64(buf)?;
            // One offset is all Krait answers, whatever the count asked for (module comment).
            let _max_num_offsets = wire::i32(buf)?;
            Ok(p)
        })?;
        Ok(topic)
    })?;
    Ok(request)
}

pub fn encode_list_offsets_response(response: &ListOffsetsResponse) -> Result<Bytes> {
    let mut out = BytesMut::new();
    wire::put_array(&mut out, &response.topics, |out, t| {
        wire::put_string(out, &t.name.0)?;
        wire::put_array(out, &t.partitions, |out, p| {
            out.put_i32(p.partition_index);
            out.put_i16(p.error_code);
            let found = p.error_code == 0 && p.offset >= 0;
            let offsets: &[i64] = if found { &[p.offset] } else { &[] };
            wire::put_array(out, offsets, |out, o| {
                out.put_i64(*o);
                Ok(())
            })
        })
    })?;
    Ok(out.freeze())
}

pub fn decode_offset_for_leader_epoch<B: ByteBuf>(
    buf: &mut B,
) -> Result<OffsetForLeaderEpochRequest> {
    let mut request = OffsetForLeaderEpochRequest::default();
    request.topics = wire::array(buf, 6, |buf| {
        let mut topic = OffsetForLeaderTopic::default();
        topic.topic = TopicName(wire::string(buf)?);
        topic.partitions = wire::array(buf, 8, |buf| {
            let mut p = OffsetForLeaderPartition::default();
            p.partition = wire::i32(buf)?;
            p.leader_epoch = wire::i32(buf)?;
            Ok(p)
        })?;
        Ok(topic)
    })?;
    Ok(request)
}

pub fn encode_offset_for_leader_epoch_response(
    response: &OffsetForLeaderEpochResponse,
    version: i16,
) -> Result<Bytes> {
    let mut out = BytesMut::new();
    wire::put_array(&mut out, &response.topics, |out, t| {
        wire::put_string(out, &t.topic.0)?;
        wire::put_array(out, &t.partitions, |out, p| {
            out.put_i16(p.error_code);
            out.put_i32(p.partition);
            if version >= 1 {
                out.put_i32(p.leader_epoch);
            }
            out.put_i64(p.end_offset);
            Ok(())
        })
    })?;
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::list_offsets_response::{
        ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
    };
    use kafka_protocol::messages::offset_for_leader_epoch_response::{
        EpochEndOffset, OffsetForLeaderTopicResult,
    };
    use kafka_protocol::protocol::StrBytes;

    fn list_offsets_v0_bytes() -> Bytes {
        let mut b = BytesMut::new();
        b.put_i32(-1);
        b.put_i32(1);
        b.put_i16(1);
        b.put_slice(b"t");
        b.put_i32(2);
        b.put_i32(0);
        b.put_i64(-1);
        b.put_i32(1);
        b.put_i32(1);
        b.put_i64(-2);
        b.put_i32(1);
        b.freeze()
    }

    #[test]
    fn list_offsets_v0_reads_replica_partition_and_timestamp() {
        let mut buf = list_offsets_v0_bytes();
        let r = decode_list_offsets(&mut buf).unwrap();
        assert!(buf.is_empty());
        assert_eq!(r.replica_id, BrokerId(-1));
        assert_eq!(r.isolation_level, 0);
        let ps: Vec<_> = r.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.timestamp, p.current_leader_epoch))
            .collect();
        assert_eq!(ps, vec![(0, -1, -1), (1, -2, -1)]);
    }

    #[test]
    fn list_offsets_truncated_anywhere_is_an_error() {
        let full = list_offsets_v0_bytes();
        for cut in 0..full.len() {
            let mut buf = full.slice(..cut);
            assert!(decode_list_offsets(&mut buf).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn list_offsets_v0_answers_a_list_of_one_offset_or_none() {
        let mut found = ListOffsetsPartitionResponse::default();
        found.partition_index = 0;
        found.offset = 7;
        found.timestamp = 123;
        let mut missing = ListOffsetsPartitionResponse::default();
        missing.partition_index = 1;
        missing.error_code = 3;
        let mut t = ListOffsetsTopicResponse::default();
        t.name = TopicName(StrBytes::from_static_str("t"));
        t.partitions = vec![found, missing];
        let mut r = ListOffsetsResponse::default();
        r.topics.push(t);
        let body = encode_list_offsets_response(&r).unwrap();
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 2,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7,
            0, 0, 0, 1, 0, 3, 0, 0, 0, 0,
        ];
        assert_eq!(&body[..], expected);
    }

    #[test]
    fn offset_for_leader_epoch_v0_v1_round_trip_the_layout() {
        let mut b = BytesMut::new();
        b.put_i32(1);
        b.put_i16(1);
        b.put_slice(b"t");
        b.put_i32(1);
        b.put_i32(2);
        b.put_i32(5);
        let mut buf = b.freeze();
        let r = decode_offset_for_leader_epoch(&mut buf).unwrap();
        assert!(buf.is_empty());
        let p = &r.topics[0].partitions[0];
        assert_eq!(
            (p.partition, p.leader_epoch, p.current_leader_epoch),
            (2, 5, -1)
        );

        let mut e = EpochEndOffset::default();
        e.partition = 2;
        e.leader_epoch = 5;
        e.end_offset = 100;
        let mut t = OffsetForLeaderTopicResult::default();
        t.topic = TopicName(StrBytes::from_static_str("t"));
        t.partitions.push(e);
        let mut resp = OffsetForLeaderEpochResponse::default();
        resp.topics.push(t);
        let v0 = encode_offset_for_leader_epoch_response(&resp, 0).unwrap();
        assert_eq!(
            &v0[..],
            &[
                0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 100
            ]
        );
        let v1 = encode_offset_for_leader_epoch_response(&resp, 1).unwrap();
        assert_eq!(v1.len(), v0.len() + 4);
        assert_eq!(&v1[17..21], &[0, 0, 0, 5]);
    }
}
