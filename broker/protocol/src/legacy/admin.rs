//! CreateTopics v0–1, DeleteTopics v0, DescribeConfigs v0 and DescribeLogDirs v0: the admin
//! versions Kafka 4.0 removed, which admin tools built on clients before Kafka 2.x still send.
//!
//! CreateTopics v0 lacks `validate_only` (v1 adds it) and both answer without a throttle time
//! (v1 adds the error message). DeleteTopics v0 asks as v1 and answers without a throttle time.
//! DescribeConfigs v0 asks without `include_synonyms` and answers an `is_default` flag where
//! v1 has the config source and synonyms. DescribeLogDirs v0 is v1 on the wire.

use anyhow::Result;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, DescribeLogDirsRequest,
    DescribeLogDirsResponse, TopicName,
};
use kafka_protocol::protocol::Decodable;
use kafka_protocol::protocol::buf::ByteBuf;

use super::wire;

/// The config source Kafka reports for a value nobody set (`DEFAULT_CONFIG`).
const DEFAULT_CONFIG: i8 = 5;
/// The DeleteTopics version whose request v0 shares.
const DELETE_TOPICS_REQUEST_AS: i16 = 1;
/// The DescribeLogDirs version v0 is identical to.
const DESCRIBE_LOG_DIRS_AS: i16 = 1;

/// Decodes CreateTopics v0 or v1; v0 never only validates.
pub fn decode_create_topics<B: ByteBuf>(buf: &mut B, version: i16) -> Result<CreateTopicsRequest> {
    let mut request = CreateTopicsRequest::default();
    // Smallest topic: name (2), partitions (4), replication factor (2), two array counts (8).
    request.topics = wire::array(buf, 16, |buf| {
        let mut topic = CreatableTopic::default();
        topic.name = TopicName(wire::string(buf)?);
        topic.num_partitions = wire::i32(buf)?;
        topic.replication_factor = wire::i16(buf)?;
        topic.assignments = wire::array(buf, 8, |buf| {
            let mut a = CreatableReplicaAssignment::default();
            a.partition_index = wire::i32(buf)?;
            a.broker_ids = wire::array(buf, 4, |buf| Ok(BrokerId(wire::i32(buf)?)))?;
            Ok(a)
        })?;
        topic.configs = wire::array(buf, 4, |buf| {
            let mut c = CreatableTopicConfig::default();
            c.name = wire::string(buf)?;
            c.value = wire::nullable_string(buf)?;
            Ok(c)
        })?;
        Ok(topic)
    })?;
    request.timeout_ms = wire::i32(buf)?;
    if version >= 1 {
        request.validate_only = wire::boolean(buf)?;
    }
    Ok(request)
}

pub fn encode_create_topics_response(
    response: &CreateTopicsResponse,
    version: i16,
) -> Result<Bytes> {
    let mut out = BytesMut::new();
    wire::put_array(&mut out, &response.topics, |out, t| {
        wire::put_string(out, &t.name.0)?;
        out.put_i16(t.error_code);
        if version >= 1 {
            wire::put_nullable_string(out, t.error_message.as_deref())?;
        }
        Ok(())
    })?;
    Ok(out.freeze())
}

pub fn decode_delete_topics<B: ByteBuf>(buf: &mut B) -> Result<DeleteTopicsRequest> {
    DeleteTopicsRequest::decode(buf, DELETE_TOPICS_REQUEST_AS)
}

pub fn encode_delete_topics_response(response: &DeleteTopicsResponse) -> Result<Bytes> {
    let mut out = BytesMut::new();
    wire::put_array(&mut out, &response.responses, |out, t| {
        // v0 only names topics by name, so every result carries the name it was asked for.
        wire::put_string(out, t.name.as_ref().map_or("", |n| &n.0))?;
        out.put_i16(t.error_code);
        Ok(())
    })?;
    Ok(out.freeze())
}

/// Decodes DescribeConfigs v0: no synonyms and no documentation, as v0 has neither.
pub fn decode_describe_configs<B: ByteBuf>(buf: &mut B) -> Result<DescribeConfigsRequest> {
    let mut request = DescribeConfigsRequest::default();
    // Smallest resource: type (1), name (2), null key array (4).
    request.resources = wire::array(buf, 7, |buf| {
        let mut r = DescribeConfigsResource::default();
        r.resource_type = wire::i8(buf)?;
        r.resource_name = wire::string(buf)?;
        r.configuration_keys = wire::nullable_array(buf, 2, wire::string)?;
        Ok(r)
    })?;
    Ok(request)
}

/// Encodes DescribeConfigs v0: a config is default when its source is Kafka's default.
pub fn encode_describe_configs_response(response: &DescribeConfigsResponse) -> Result<Bytes> {
    let mut out = BytesMut::new();
    out.put_i32(response.throttle_time_ms);
    wire::put_array(&mut out, &response.results, |out, r| {
        out.put_i16(r.error_code);
        wire::put_nullable_string(out, r.error_message.as_deref())?;
        out.put_i8(r.resource_type);
        wire::put_string(out, &r.resource_name)?;
        wire::put_array(out, &r.configs, |out, c| {
            wire::put_string(out, &c.name)?;
            wire::put_nullable_string(out, c.value.as_deref())?;
            wire::put_bool(out, c.read_only);
            wire::put_bool(out, c.config_source == DEFAULT_CONFIG);
            wire::put_bool(out, c.is_sensitive);
            Ok(())
        })
    })?;
    Ok(out.freeze())
}

pub fn decode_describe_log_dirs<B: ByteBuf>(buf: &mut B) -> Result<DescribeLogDirsRequest> {
    DescribeLogDirsRequest::decode(buf, DESCRIBE_LOG_DIRS_AS)
}

pub fn encode_describe_log_dirs_response(response: &DescribeLogDirsResponse) -> Result<Bytes> {
    super::encode_as(response, DESCRIBE_LOG_DIRS_AS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
    use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
    use kafka_protocol::messages::describe_configs_response::{
        DescribeConfigsResourceResult, DescribeConfigsResult,
    };
    use kafka_protocol::protocol::StrBytes;

    fn s(v: &'static str) -> StrBytes {
        StrBytes::from_static_str(v)
    }

    /// CreateTopics v1: one topic "t" with 3 partitions, RF 1, an assignment of partition 0 to
    /// broker 1, config retention.ms=1000, timeout 5000, validate_only.
    fn create_topics_v1_bytes(version: i16) -> Bytes {
        let mut b = BytesMut::new();
        b.put_i32(1);
        b.put_i16(1);
        b.put_slice(b"t");
        b.put_i32(3);
        b.put_i16(1);
        b.put_i32(1);
        b.put_i32(0);
        b.put_i32(1);
        b.put_i32(1);
        b.put_i32(1);
        b.put_i16(12);
        b.put_slice(b"retention.ms");
        b.put_i16(4);
        b.put_slice(b"1000");
        b.put_i32(5000);
        if version >= 1 {
            b.put_i8(1);
        }
        b.freeze()
    }

    #[test]
    fn create_topics_v0_and_v1_decode_every_field() {
        for version in [0, 1] {
            let mut buf = create_topics_v1_bytes(version);
            let r = decode_create_topics(&mut buf, version).unwrap();
            assert!(buf.is_empty());
            let t = &r.topics[0];
            assert_eq!(&*t.name.0, "t");
            assert_eq!((t.num_partitions, t.replication_factor), (3, 1));
            assert_eq!(t.assignments[0].partition_index, 0);
            assert_eq!(t.assignments[0].broker_ids, vec![BrokerId(1)]);
            assert_eq!(&*t.configs[0].name, "retention.ms");
            assert_eq!(t.configs[0].value.as_deref(), Some("1000"));
            assert_eq!(r.timeout_ms, 5000);
            assert_eq!(r.validate_only, version == 1);
        }
    }

    #[test]
    fn create_topics_truncated_anywhere_is_an_error() {
        let full = create_topics_v1_bytes(1);
        for cut in 0..full.len() {
            let mut buf = full.slice(..cut);
            assert!(decode_create_topics(&mut buf, 1).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn create_topics_response_v0_has_no_message_and_v1_has_one() {
        let mut t = CreatableTopicResult::default();
        t.name = TopicName(s("t"));
        t.error_code = 36;
        t.error_message = Some(s("x"));
        t.num_partitions = 3;
        let mut r = CreateTopicsResponse::default();
        r.throttle_time_ms = 9;
        r.topics.push(t);
        let v0 = encode_create_topics_response(&r, 0).unwrap();
        assert_eq!(&v0[..], &[0, 0, 0, 1, 0, 1, b't', 0, 36]);
        let v1 = encode_create_topics_response(&r, 1).unwrap();
        assert_eq!(&v1[..], &[0, 0, 0, 1, 0, 1, b't', 0, 36, 0, 1, b'x']);
    }

    #[test]
    fn delete_topics_v0_asks_as_v1_and_answers_without_throttle_time() {
        let mut b = BytesMut::new();
        b.put_i32(1);
        b.put_i16(1);
        b.put_slice(b"t");
        b.put_i32(3000);
        let mut buf = b.freeze();
        let r = decode_delete_topics(&mut buf).unwrap();
        assert_eq!(r.topic_names, vec![TopicName(s("t"))]);
        assert_eq!(r.timeout_ms, 3000);

        let mut d = DeletableTopicResult::default();
        d.name = Some(TopicName(s("t")));
        d.error_code = 3;
        let mut resp = DeleteTopicsResponse::default();
        resp.throttle_time_ms = 9;
        resp.responses.push(d);
        let body = encode_delete_topics_response(&resp).unwrap();
        assert_eq!(&body[..], &[0, 0, 0, 1, 0, 1, b't', 0, 3]);
    }

    #[test]
    fn describe_configs_v0_request_with_null_and_listed_keys() {
        let mut b = BytesMut::new();
        b.put_i32(2);
        b.put_i8(2);
        b.put_i16(1);
        b.put_slice(b"t");
        b.put_i32(-1);
        b.put_i8(4);
        b.put_i16(1);
        b.put_slice(b"1");
        b.put_i32(1);
        b.put_i16(12);
        b.put_slice(b"log.dirs.foo");
        let mut buf = b.freeze();
        let r = decode_describe_configs(&mut buf).unwrap();
        assert!(buf.is_empty());
        assert!(!r.include_synonyms);
        assert_eq!(r.resources[0].resource_type, 2);
        assert_eq!(r.resources[0].configuration_keys, None);
        assert_eq!(&*r.resources[1].resource_name, "1");
        assert_eq!(
            r.resources[1].configuration_keys,
            Some(vec![s("log.dirs.foo")])
        );
    }

    #[test]
    fn describe_configs_v0_response_says_is_default_for_default_sources() {
        let mut set = DescribeConfigsResourceResult::default();
        set.name = s("a");
        set.value = Some(s("1"));
        set.config_source = 1;
        let mut default = DescribeConfigsResourceResult::default();
        default.name = s("b");
        default.value = None;
        default.read_only = true;
        default.is_sensitive = true;
        default.config_source = DEFAULT_CONFIG;
        let mut result = DescribeConfigsResult::default();
        result.resource_type = 2;
        result.resource_name = s("t");
        result.error_message = None;
        result.configs = vec![set, default];
        let mut r = DescribeConfigsResponse::default();
        r.throttle_time_ms = 0;
        r.results.push(result);
        let body = encode_describe_configs_response(&r).unwrap();
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 0,             // throttle
            0, 0, 0, 1,             // one result
            0, 0, 0xff, 0xff,       // error code, null message
            2, 0, 1, b't',          // resource type, name
            0, 0, 0, 2,             // two configs
            0, 1, b'a', 0, 1, b'1', 0, 0, 0,          // read_only, is_default, is_sensitive
            0, 1, b'b', 0xff, 0xff, 1, 1, 1,
        ];
        assert_eq!(&body[..], expected);
    }
}
