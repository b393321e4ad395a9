//! Request decoding within the memory budget its size sets, under the broker's allocator, in a
//! process whose writable memory is capped (`RLIMIT_DATA`): the kernel refuses any allocation
//! beyond it, as strict overcommit would, so a decoder that asked for the memory a hostile count
//! claims would abort this test.
#![allow(unsafe_code)] // setrlimit

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, DeleteTopicsRequest, DescribeGroupsRequest, FetchRequest, GroupId, MetadataRequest,
    OffsetFetchRequest, ProduceRequest, TopicName,
    fetch_request::{FetchPartition, FetchTopic},
    produce_request::{PartitionProduceData, TopicProduceData},
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use krait_protocol::budget::{self, GuardedAlloc};
use krait_protocol::frame::decode_body;

#[global_allocator]
static ALLOCATOR: GuardedAlloc = GuardedAlloc;

/// A field of /proc/self/status, in bytes.
fn status_bytes(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("{field} missing from /proc/self/status"));
    let kib: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib << 10
}

/// Caps this process's writable memory at what it uses now plus `headroom` (the soft limit:
/// `cargo test` runs the tests as threads of one process, and each sets its own).
fn cap_writable_memory(headroom: usize) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read or write the struct they are given, nothing else.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_DATA, &mut limit) };
    assert_eq!(rc, 0, "getrlimit(RLIMIT_DATA)");
    limit.rlim_cur = ((status_bytes("VmData:") + headroom) as libc::rlim_t).min(limit.rlim_max);
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_DATA, &limit) };
    assert_eq!(rc, 0, "setrlimit(RLIMIT_DATA)");
}

fn encode<T: Encodable>(message: &T, version: i16) -> Bytes {
    let mut buf = BytesMut::new();
    message.encode(&mut buf, version).unwrap();
    buf.freeze()
}

/// Request bodies that claim billions of elements in a few bytes, each with the memory the
/// codec would ask for on its own.
fn bombs() -> Vec<(&'static str, ApiKey, i16, Bytes)> {
    let mut out = Vec::new();

    // DeleteTopics v1: an int32 count of topic names (2^31 - 1 x 32 bytes = 64 GiB).
    let mut b = BytesMut::new();
    b.put_i32(i32::MAX);
    b.put_slice(b"\x00\x01abc");
    out.push((
        "DeleteTopics v1, 64 GiB",
        ApiKey::DeleteTopics,
        1,
        b.freeze(),
    ));

    // Metadata v12: a compact count of 2^32 - 2 topics (a varint of five bytes).
    let mut b = BytesMut::new();
    b.put_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    b.put_slice(&[0u8; 24]);
    out.push((
        "Metadata v12, 2^32 topics",
        ApiKey::Metadata,
        12,
        b.freeze(),
    ));

    // Produce v9: no transactional id, acks, timeout, then a compact count of 2^28 topics.
    let mut b = BytesMut::new();
    b.put_u8(0);
    b.put_i16(-1);
    b.put_i32(30_000);
    b.put_slice(&[0xff, 0xff, 0xff, 0x7f]);
    b.put_slice(&[0u8; 16]);
    out.push(("Produce v9, 2^28 topics", ApiKey::Produce, 9, b.freeze()));

    // Fetch v4: a well-formed start, one topic, then 2^31 - 1 partitions.
    let mut b = BytesMut::new();
    b.put_i32(-1); // replica id
    b.put_i32(500); // max wait
    b.put_i32(1); // min bytes
    b.put_i32(1 << 20); // max bytes
    b.put_i8(0); // isolation level
    b.put_i32(1); // one topic
    b.put_i16(1);
    b.put_u8(b't');
    b.put_i32(i32::MAX);
    b.put_slice(&[0u8; 16]);
    out.push((
        "Fetch v4, nested 2^31 partitions",
        ApiKey::Fetch,
        4,
        b.freeze(),
    ));

    // OffsetFetch v8: one group named "g", then 2^31 - 1 topics.
    let mut b = BytesMut::new();
    b.put_u8(2); // one group
    b.put_u8(2);
    b.put_u8(b'g');
    b.put_slice(&[0xfe, 0xff, 0xff, 0xff, 0x07]);
    b.put_slice(&[0u8; 8]);
    out.push((
        "OffsetFetch v8, 2^31 topics",
        ApiKey::OffsetFetch,
        8,
        b.freeze(),
    ));
    out
}

fn decode(api: ApiKey, version: i16, body: &Bytes) -> Result<(), String> {
    let mut body = body.clone();
    let result = match api {
        ApiKey::DeleteTopics => {
            decode_body::<DeleteTopicsRequest>(&mut body, api, version).map(drop)
        }
        ApiKey::Metadata => decode_body::<MetadataRequest>(&mut body, api, version).map(drop),
        ApiKey::Produce => decode_body::<ProduceRequest>(&mut body, api, version).map(drop),
        ApiKey::Fetch => decode_body::<FetchRequest>(&mut body, api, version).map(drop),
        ApiKey::OffsetFetch => decode_body::<OffsetFetchRequest>(&mut body, api, version).map(drop),
        other => panic!("no decoder for {other:?} here"),
    };
    result.map_err(|e| format!("{e:#}"))
}

#[test]
fn counts_a_frame_cannot_hold_are_refused_without_taking_the_memory_they_claim() {
    // Room for the test's own work, far below any bomb's claim.
    cap_writable_memory(256 << 20);
    let rss_before = status_bytes("VmRSS:");
    for round in 0..50 {
        for (name, api, version, body) in bombs() {
            let err = decode(api, version, &body).expect_err(name);
            assert!(
                err.contains("claims more than its"),
                "{name} (round {round}): {err}"
            );
        }
    }
    assert_eq!(budget::live_reservations(), 0, "every reservation released");
    let grown = status_bytes("VmRSS:").saturating_sub(rss_before);
    assert!(grown < 16 << 20, "RSS grew by {grown} bytes");

    // The same decoders still read well-formed requests.
    let mut metadata = MetadataRequest::default();
    metadata.topics = Some(Vec::new());
    let body = encode(&metadata, 12);
    decode(ApiKey::Metadata, 12, &body).unwrap();
}

#[test]
fn well_formed_requests_fit_their_budget_even_at_the_densest() {
    cap_writable_memory(512 << 20);
    // The densest request there is: 200,000 empty compact strings, one byte each on the wire
    // and 32 bytes each decoded.
    let mut groups = DescribeGroupsRequest::default();
    groups.groups = (0..200_000)
        .map(|_| GroupId(StrBytes::from_static_str("")))
        .collect();
    let mut body = encode(&groups, 5);
    let decoded =
        decode_body::<DescribeGroupsRequest>(&mut body, ApiKey::DescribeGroups, 5).unwrap();
    assert_eq!(decoded.groups.len(), 200_000);

    // A large fetch: 2,000 topics of 16 partitions.
    let mut fetch = FetchRequest::default();
    fetch.max_bytes = 50 << 20;
    fetch.topics = (0..2_000)
        .map(|t| {
            let mut topic = FetchTopic::default();
            topic.topic = TopicName(StrBytes::from_string(format!("topic-{t}")));
            topic.partitions = (0..16)
                .map(|p| {
                    let mut partition = FetchPartition::default();
                    partition.partition = p;
                    partition.fetch_offset = 1 << 20;
                    partition.partition_max_bytes = 1 << 20;
                    partition
                })
                .collect();
            topic
        })
        .collect();
    let mut body = encode(&fetch, 12);
    let decoded = decode_body::<FetchRequest>(&mut body, ApiKey::Fetch, 12).unwrap();
    assert_eq!(decoded.topics.len(), 2_000);

    // A produce of 1,000 partitions of 64 KiB each (the records are slices of the frame).
    let mut produce = ProduceRequest::default();
    produce.acks = -1;
    produce.topic_data = vec![{
        let mut topic = TopicProduceData::default();
        topic.name = TopicName(StrBytes::from_static_str("big"));
        topic.partition_data = (0..1_000)
            .map(|p| {
                let mut data = PartitionProduceData::default();
                data.index = p;
                data.records = Some(Bytes::from(vec![7u8; 64 << 10]));
                data
            })
            .collect();
        topic
    }];
    let mut body = encode(&produce, 9);
    let decoded = decode_body::<ProduceRequest>(&mut body, ApiKey::Produce, 9).unwrap();
    assert_eq!(decoded.topic_data[0].partition_data.len(), 1_000);
}

#[test]
fn the_budget_grows_with_the_frame() {
    assert_eq!(budget::budget(0), budget::BASE_BUDGET);
    assert_eq!(
        budget::budget(1 << 20),
        budget::BASE_BUDGET + (1 << 20) * budget::BYTES_PER_FRAME_BYTE
    );
    assert_eq!(budget::budget(usize::MAX), usize::MAX);
    // Decoding outside a scope is the system allocator's business: a plain decode of a
    // well-formed body is untouched.
    let body = encode(&MetadataRequest::default(), 12);
    MetadataRequest::decode(&mut body.clone(), 12).unwrap();
}
