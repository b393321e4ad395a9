//! Writes the seed inputs of every fuzz target under `fuzz/seeds/out/<target>/`: requests
//! encoded as a client encodes them (kafka-protocol), record batches in every codec, SCRAM and
//! PLAIN exchanges, and the cluster port's messages (JSON as serde writes it, protobuf by
//! hand). `fuzz/run --seed` runs it and adds the seeds to each target's corpus.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::Compression;
use krait_protocol::testing::{encode, record};

fn main() -> std::io::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("out");
    let frames = request_frames();
    write_all(
        &root.join("request_frame"),
        frames.iter().map(|(n, f)| (n.clone(), f.to_vec())),
    )?;
    write_all(&root.join("dispatch"), dispatch_inputs(&frames))?;
    write_all(&root.join("record_batch"), batches())?;
    write_all(&root.join("sasl"), sasl())?;
    write_all(&root.join("cluster_rpc"), cluster_rpc())?;
    Ok(())
}

fn write_all(
    dir: &Path,
    inputs: impl IntoIterator<Item = (String, Vec<u8>)>,
) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let mut n = 0;
    for (name, bytes) in inputs {
        fs::write(dir.join(name), bytes)?;
        n += 1;
    }
    println!("{n:4} seeds in {}", dir.display());
    Ok(())
}

fn name(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// A frame without its length prefix: header, body.
fn frame<T: Encodable>(api: ApiKey, version: i16, body: &T) -> Option<Bytes> {
    let mut header = RequestHeader::default();
    header.request_api_key = api as i16;
    header.request_api_version = version;
    header.correlation_id = 7;
    header.client_id = Some(name("fuzz-seed"));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, api.request_header_version(version))
        .ok()?;
    body.encode(&mut buf, version).ok()?;
    Some(buf.freeze())
}

fn batch_bytes() -> Bytes {
    encode(
        &[record(0, 1_000, "a"), record(1, 2_000, "b")],
        Compression::None,
    )
}

/// Every API key at its lowest and highest version and one in the middle, with a body that
/// names a topic, partition or group where the request has one.
fn request_frames() -> Vec<(String, Bytes)> {
    let topic = TopicName(name("t"));
    let mut out = Vec::new();
    let mut add = |api: ApiKey, body: &dyn Fn(i16) -> Option<Bytes>| {
        let v = api.valid_versions();
        for version in [v.min, (v.min + v.max) / 2, v.max] {
            if let Some(f) = body(version) {
                out.push((format!("{api:?}-v{version}"), f));
            }
        }
    };
    add(ApiKey::ApiVersions, &|v| {
        let mut r = ApiVersionsRequest::default();
        r.client_software_name = name("seed");
        r.client_software_version = name("1.0");
        frame(ApiKey::ApiVersions, v, &r)
    });
    add(ApiKey::Metadata, &|v| {
        let mut t = metadata_request::MetadataRequestTopic::default();
        t.name = Some(topic.clone());
        let mut r = MetadataRequest::default();
        r.topics = Some(vec![t]);
        r.allow_auto_topic_creation = true;
        frame(ApiKey::Metadata, v, &r)
    });
    add(ApiKey::CreateTopics, &|v| {
        let mut t = create_topics_request::CreatableTopic::default();
        t.name = topic.clone();
        t.num_partitions = 2;
        t.replication_factor = 1;
        let mut c = create_topics_request::CreatableTopicConfig::default();
        c.name = name("cleanup.policy");
        c.value = Some(name("delete"));
        t.configs = vec![c];
        let mut r = CreateTopicsRequest::default();
        r.topics = vec![t];
        r.timeout_ms = 1000;
        frame(ApiKey::CreateTopics, v, &r)
    });
    add(ApiKey::Produce, &|v| {
        let mut p = produce_request::PartitionProduceData::default();
        p.index = 0;
        p.records = Some(batch_bytes());
        let mut t = produce_request::TopicProduceData::default();
        t.name = topic.clone();
        t.partition_data = vec![p];
        let mut r = ProduceRequest::default();
        r.acks = 1;
        r.timeout_ms = 1000;
        r.topic_data = vec![t];
        frame(ApiKey::Produce, v, &r)
    });
    add(ApiKey::Fetch, &|v| {
        let mut p = fetch_request::FetchPartition::default();
        p.partition = 0;
        p.partition_max_bytes = 1 << 20;
        let mut t = fetch_request::FetchTopic::default();
        t.topic = topic.clone();
        t.partitions = vec![p];
        let mut r = FetchRequest::default();
        r.max_wait_ms = 0;
        r.max_bytes = 1 << 20;
        r.replica_id = BrokerId(-1);
        r.topics = vec![t];
        frame(ApiKey::Fetch, v, &r)
    });
    add(ApiKey::ListOffsets, &|v| {
        let mut p = list_offsets_request::ListOffsetsPartition::default();
        p.timestamp = 1_500;
        let mut t = list_offsets_request::ListOffsetsTopic::default();
        t.name = topic.clone();
        t.partitions = vec![p];
        let mut r = ListOffsetsRequest::default();
        r.replica_id = BrokerId(-1);
        r.topics = vec![t];
        frame(ApiKey::ListOffsets, v, &r)
    });
    add(ApiKey::OffsetForLeaderEpoch, &|v| {
        let mut p = offset_for_leader_epoch_request::OffsetForLeaderPartition::default();
        p.leader_epoch = 0;
        let mut t = offset_for_leader_epoch_request::OffsetForLeaderTopic::default();
        t.topic = topic.clone();
        t.partitions = vec![p];
        let mut r = OffsetForLeaderEpochRequest::default();
        r.topics = vec![t];
        frame(ApiKey::OffsetForLeaderEpoch, v, &r)
    });
    add(ApiKey::FindCoordinator, &|v| {
        let mut r = FindCoordinatorRequest::default();
        r.key = name("g");
        r.coordinator_keys = vec![name("g")];
        frame(ApiKey::FindCoordinator, v, &r)
    });
    add(ApiKey::JoinGroup, &|v| {
        let mut p = join_group_request::JoinGroupRequestProtocol::default();
        p.name = name("range");
        p.metadata = Bytes::from_static(&[0, 1, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 0]);
        let mut r = JoinGroupRequest::default();
        r.group_id = GroupId(name("g"));
        r.session_timeout_ms = 10_000;
        r.rebalance_timeout_ms = 10_000;
        r.protocol_type = name("consumer");
        r.protocols = vec![p];
        frame(ApiKey::JoinGroup, v, &r)
    });
    add(ApiKey::OffsetCommit, &|v| {
        let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
        p.committed_offset = 1;
        p.committed_metadata = Some(name("m"));
        let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
        t.name = topic.clone();
        t.partitions = vec![p];
        let mut r = OffsetCommitRequest::default();
        r.group_id = GroupId(name("g"));
        r.generation_id_or_member_epoch = -1;
        r.topics = vec![t];
        frame(ApiKey::OffsetCommit, v, &r)
    });
    add(ApiKey::OffsetFetch, &|v| {
        let mut t = offset_fetch_request::OffsetFetchRequestTopic::default();
        t.name = topic.clone();
        t.partition_indexes = vec![0];
        let mut r = OffsetFetchRequest::default();
        r.group_id = GroupId(name("g"));
        r.topics = Some(vec![t]);
        frame(ApiKey::OffsetFetch, v, &r)
    });
    add(ApiKey::DescribeConfigs, &|v| {
        let mut res = describe_configs_request::DescribeConfigsResource::default();
        res.resource_type = 2;
        res.resource_name = name("t");
        let mut r = DescribeConfigsRequest::default();
        r.resources = vec![res];
        frame(ApiKey::DescribeConfigs, v, &r)
    });
    add(ApiKey::SaslHandshake, &|v| {
        let mut r = SaslHandshakeRequest::default();
        r.mechanism = name("SCRAM-SHA-256");
        frame(ApiKey::SaslHandshake, v, &r)
    });
    add(ApiKey::SaslAuthenticate, &|v| {
        let mut r = SaslAuthenticateRequest::default();
        r.auth_bytes = Bytes::from_static(b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
        frame(ApiKey::SaslAuthenticate, v, &r)
    });
    // The rest with an empty body: enough for the decoder to know the shape.
    macro_rules! empty {
        ($($key:ident => $ty:ty,)*) => {$(
            add(ApiKey::$key, &|v| frame(ApiKey::$key, v, &<$ty>::default()));
        )*};
    }
    empty! {
        DeleteTopics => DeleteTopicsRequest,
        CreatePartitions => CreatePartitionsRequest,
        DescribeCluster => DescribeClusterRequest,
        DescribeLogDirs => DescribeLogDirsRequest,
        InitProducerId => InitProducerIdRequest,
        AlterConfigs => AlterConfigsRequest,
        IncrementalAlterConfigs => IncrementalAlterConfigsRequest,
        SyncGroup => SyncGroupRequest,
        Heartbeat => HeartbeatRequest,
        LeaveGroup => LeaveGroupRequest,
        ListGroups => ListGroupsRequest,
        DescribeGroups => DescribeGroupsRequest,
        DeleteGroups => DeleteGroupsRequest,
        AlterPartitionReassignments => AlterPartitionReassignmentsRequest,
        ListPartitionReassignments => ListPartitionReassignmentsRequest,
        ElectLeaders => ElectLeadersRequest,
        UnregisterBroker => UnregisterBrokerRequest,
        CreateAcls => CreateAclsRequest,
        DescribeAcls => DescribeAclsRequest,
        DeleteAcls => DeleteAclsRequest,
        DescribeUserScramCredentials => DescribeUserScramCredentialsRequest,
        AlterUserScramCredentials => AlterUserScramCredentialsRequest,
    }
    out
}

fn prefixed(frames: &[&Bytes]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    for f in frames {
        buf.put_i32(f.len() as i32);
        buf.extend_from_slice(f);
    }
    buf.to_vec()
}

/// Each frame alone, and a client's session: create a topic, produce, fetch, list offsets,
/// commit and fetch offsets.
fn dispatch_inputs(frames: &[(String, Bytes)]) -> Vec<(String, Vec<u8>)> {
    let find = |n: &str| &frames.iter().find(|(k, _)| k == n).expect(n).1;
    let mut out: Vec<(String, Vec<u8>)> = frames
        .iter()
        .map(|(n, f)| (n.clone(), prefixed(&[f])))
        .collect();
    let session = [
        "ApiVersions-v3",
        "CreateTopics-v7",
        "Metadata-v12",
        "Produce-v9",
        "Fetch-v11",
        "ListOffsets-v7",
        "OffsetCommit-v8",
        "OffsetFetch-v8",
    ];
    let session: Vec<&Bytes> = session
        .iter()
        .filter(|n| frames.iter().any(|(k, _)| k == *n))
        .map(|n| find(n))
        .collect();
    out.push(("session".into(), prefixed(&session)));
    out
}

fn batches() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (codec, c) in [
        ("none", Compression::None),
        ("gzip", Compression::Gzip),
        ("snappy", Compression::Snappy),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ] {
        let mut keyed = record(1, 1_500, "value");
        keyed.key = Some(Bytes::from_static(b"key"));
        let mut headers = IndexMap::new();
        headers.insert(name("h"), Some(Bytes::from_static(b"v")));
        headers.insert(name("null"), None);
        keyed.headers = headers;
        let mut null_value = record(2, 900, "");
        null_value.value = None;
        let batch = encode(&[record(0, 1_000, "a"), keyed, null_value], c);
        let mut input = vec![0u8];
        input.extend_from_slice(&batch);
        out.push((format!("{codec}-3-records"), input.clone()));
        // Two batches back to back, as a replica fetch carries them.
        input.extend_from_slice(&batch);
        out.push((format!("{codec}-2-batches"), input));
    }
    out
}

fn sasl() -> Vec<(String, Vec<u8>)> {
    let scram = |mode: u8| {
        let mut m = vec![mode];
        m.extend_from_slice(b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL\xffc=biws,r=%n,p=");
        m.extend_from_slice(b"dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
        m
    };
    let mut authzid = vec![0u8];
    authzid.extend_from_slice(b"n,a=us=2Cer,n=us=3Der,r=abc,ext=1\xffc=biws,r=%n,p=AAAA");
    let mut plain = vec![0x80u8];
    plain.extend_from_slice(b"\0user\0secret");
    vec![
        ("scram-sha-256".into(), scram(0)),
        ("scram-sha-512".into(), scram(1)),
        ("scram-authzid".into(), authzid),
        ("plain".into(), plain),
    ]
}

fn cluster_rpc() -> Vec<(String, Vec<u8>)> {
    let with = |which: u8, body: &[u8]| {
        let mut v = vec![which];
        v.extend_from_slice(body);
        v
    };
    let vote = br#"{"vote":{"leader_id":{"term":3,"node_id":1},"committed":false},"last_log_id":{"leader_id":{"term":2,"node_id":1},"index":10}}"#;
    let append = br#"{"vote":{"leader_id":{"term":3,"node_id":1},"committed":true},"prev_log_id":null,"entries":[{"log_id":{"leader_id":{"term":3,"node_id":1},"index":1},"payload":{"Normal":{"records":[{"InitCluster":{"cluster_id":"c"}}]}}}],"leader_commit":null}"#;
    let records = br#"[{"InitCluster":{"cluster_id":"c"}},{"FenceBroker":{"id":1}},{"CreatePartitions":{"topic":"t","assignments":[[1,2]]}},{"DeleteTopic":{"name":"t"}}]"#;
    // replication.proto's FetchRequest and FetchResponse.
    let partition = [pb_bytes(1, b"t"), pb_varint(2, 0), pb_varint(3, 5)].concat();
    let request = [
        pb_varint(1, 2),
        pb_varint(2, 500),
        pb_varint(3, 1 << 20),
        pb_bytes(4, &partition),
    ]
    .concat();
    let diverging = [pb_varint(1, 1), pb_varint(2, 1)].concat();
    let fetched = [
        pb_bytes(1, b"t"),
        pb_varint(4, 2),
        pb_bytes(7, &batch_bytes()),
        pb_bytes(8, &diverging),
    ]
    .concat();
    let response = pb_bytes(1, &fetched);
    vec![
        ("raft-vote".into(), with(0, vote)),
        ("raft-append".into(), with(0, append)),
        ("raft-reply".into(), with(1, br#"{"Ok":{"vote":{"leader_id":{"term":3,"node_id":1},"committed":false},"vote_granted":true,"last_log_id":null}}"#)),
        ("propose".into(), with(2, records)),
        ("heartbeat-reply".into(), with(3, br#"{"NotController":{"leader":1}}"#)),
        ("image".into(), with(4, b"{}")),
        ("replica-fetch-request".into(), with(5, &request)),
        ("replica-fetch-response".into(), with(6, &response)),
    ]
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A protobuf varint field.
fn pb_varint(field: u64, v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    varint(field << 3, &mut out);
    varint(v, &mut out);
    out
}

/// A protobuf length-delimited field (bytes, string, message).
fn pb_bytes(field: u64, v: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(field << 3 | 2, &mut out);
    varint(v.len() as u64, &mut out);
    out.extend_from_slice(v);
    out
}
