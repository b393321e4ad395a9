//! Length-prefixed request frames and response encoding.
//!
//! A Kafka request is `int32 length` followed by that many bytes: a header and a body. The API
//! key, version and correlation id sit at fixed positions at the start of every header version,
//! so they are read first: that is enough to answer even a request whose rest cannot be decoded.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, FetchResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::buf::ByteBufMut;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};

use std::any::Any;

use crate::budget::{decode_within, decode_within_using};
use crate::legacy;
use crate::response_frame::{Lending, ResponseFrame};

/// Bytes in the length prefix of every frame.
pub const LENGTH_PREFIX: usize = 4;
/// Bytes of api key, api version and correlation id, the fixed start of every request header.
pub const FIXED_HEADER: usize = 8;
/// Kafka's error code for an API or version the broker does not serve.
pub const UNSUPPORTED_VERSION: i16 = 35;

/// Why a frame could not be read. Either way the connection cannot be trusted and is closed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame length {0} is negative")]
    NegativeLength(i32),
    #[error("frame of {len} bytes exceeds the maximum request size of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("frame of {0} bytes is too short to hold a request header")]
    TooShort(usize),
}

/// Why a request header or body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed {api} v{version} request header: {source}")]
    Header {
        api: &'static str,
        version: i16,
        source: anyhow::Error,
    },
    #[error("malformed {api} v{version} request body: {source}")]
    Body {
        api: &'static str,
        version: i16,
        source: anyhow::Error,
    },
}

/// Validates the length prefix of a frame against the configured maximum.
pub fn frame_length(prefix: [u8; LENGTH_PREFIX], max: usize) -> Result<usize, FrameError> {
    let len = i32::from_be_bytes(prefix);
    if len < 0 {
        return Err(FrameError::NegativeLength(len));
    }
    let len = len as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    if len < FIXED_HEADER {
        return Err(FrameError::TooShort(len));
    }
    Ok(len)
}

/// The fixed start of a request header, readable for any API key, known or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedHeader {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

impl FixedHeader {
    /// Reads the fixed header; `frame` is the frame without its length prefix.
    pub fn peek(frame: &[u8]) -> Result<Self, FrameError> {
        if frame.len() < FIXED_HEADER {
            return Err(FrameError::TooShort(frame.len()));
        }
        Ok(Self {
            api_key: i16::from_be_bytes([frame[0], frame[1]]),
            api_version: i16::from_be_bytes([frame[2], frame[3]]),
            correlation_id: i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]),
        })
    }
}

/// Decodes the full request header of a known API, advancing `frame` to the body.
pub fn decode_header(
    frame: &mut Bytes,
    api: ApiKey,
    version: i16,
) -> Result<RequestHeader, DecodeError> {
    let header_version = api.request_header_version(version);
    decode_within::<RequestHeader>(frame, header_version).map_err(|source| DecodeError::Header {
        api: api_name(api),
        version,
        source,
    })
}

/// Decodes a request body, within the memory its size allows (`budget`). Bytes left after it are ignored, as Kafka ignores them: real
/// clients send them (librdkafka 2.16's Metadata v12 carries three), so rejecting them would
/// break clients that Kafka serves. `body` is left holding whatever was not consumed.
///
/// Versions older than the `kafka-protocol` crate decodes (Kafka 4.0 removed them) go through
/// [`legacy`], within the same budget.
pub fn decode_body<T: Decodable + 'static>(
    body: &mut Bytes,
    api: ApiKey,
    version: i16,
) -> Result<T, DecodeError> {
    let decoded = if legacy::serves(api, version) {
        decode_within_using(body, |buf| {
            legacy::decode_request::<T, _>(api, version, buf)
        })
    } else {
        decode_within::<T>(body, version)
    };
    decoded.map_err(|source| DecodeError::Body {
        api: api_name(api),
        version,
        source,
    })
}

/// Encodes a whole response frame: length prefix, response header, body.
///
/// A version older than the `kafka-protocol` crate encodes goes through [`legacy`].
pub fn encode_response<R: Encodable + HeaderVersion + 'static>(
    correlation_id: i32,
    version: i16,
    body: &R,
) -> anyhow::Result<Bytes> {
    let header = response_header(correlation_id);
    let header_version = R::header_version(version);
    if let Some(legacy_body) = legacy::encode_response(body as &dyn Any, version) {
        let legacy_body = legacy_body?;
        let frame = frame_with_header(
            &header,
            header_version,
            legacy_body.len(),
            BytesMut::with_capacity,
            |buf| {
                buf.put_slice(&legacy_body);
                Ok(())
            },
        )?;
        return Ok(frame.freeze());
    }
    let frame = frame_with_header(
        &header,
        header_version,
        body.compute_size(version)?,
        BytesMut::with_capacity,
        |buf| body.encode(buf, version),
    )?;
    Ok(frame.freeze())
}

/// [`encode_response`] as the buffers to write: the records of a Fetch response are not copied
/// into the frame but referenced where the log read them ([`crate::response_frame`]).
pub fn encode_response_frame<R: Encodable + HeaderVersion + 'static>(
    correlation_id: i32,
    version: i16,
    body: &R,
) -> anyhow::Result<ResponseFrame> {
    let lenders = records_of(body as &dyn Any);
    if lenders.is_empty() {
        return encode_response(correlation_id, version, body).map(ResponseFrame::from);
    }
    let lent: usize = lenders.iter().map(Bytes::len).sum();
    let frame = frame_with_header(
        &response_header(correlation_id),
        R::header_version(version),
        body.compute_size(version)?,
        |whole| Lending::new(lenders, whole.saturating_sub(lent)),
        |buf| body.encode(buf, version),
    )?;
    Ok(frame.finish())
}

fn response_header(correlation_id: i32) -> ResponseHeader {
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    header
}

/// The records buffers of a Fetch response (the only response that carries many bytes).
fn records_of(body: &dyn Any) -> Vec<Bytes> {
    body.downcast_ref::<FetchResponse>()
        .map(|r| {
            r.responses
                .iter()
                .flat_map(|t| &t.partitions)
                .filter_map(|p| p.records.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// A response frame: length prefix, `header`, then `body_size` bytes that `body` writes, into
/// the buffer `buffer` makes for the whole frame's size.
fn frame_with_header<B: ByteBufMut>(
    header: &ResponseHeader,
    header_version: i16,
    body_size: usize,
    buffer: impl FnOnce(usize) -> B,
    body: impl FnOnce(&mut B) -> anyhow::Result<()>,
) -> anyhow::Result<B> {
    let size = header.compute_size(header_version)? + body_size;
    // The length prefix is an int32: a larger response cannot be framed, and must not wrap.
    let Ok(prefix) = i32::try_from(size) else {
        anyhow::bail!("a response of {size} bytes exceeds the largest frame, 2 GiB");
    };
    let mut buf = buffer(LENGTH_PREFIX + size);
    buf.put_i32(prefix);
    header.encode(&mut buf, header_version)?;
    body(&mut buf)?;
    debug_assert_eq!(buf.offset(), LENGTH_PREFIX + size);
    Ok(buf)
}

/// The answer to an API or version the broker does not serve: a v0 response header and the
/// UNSUPPORTED_VERSION error code, which is how most responses begin. The connection is closed
/// after it, since the client may not be able to parse anything further.
pub fn encode_unsupported(correlation_id: i32) -> Bytes {
    let mut buf = BytesMut::with_capacity(LENGTH_PREFIX + 6);
    buf.put_i32(6);
    buf.put_i32(correlation_id);
    buf.put_i16(UNSUPPORTED_VERSION);
    buf.freeze()
}

/// A readable API name for logs and errors.
pub fn api_name(api: ApiKey) -> &'static str {
    match api {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::Metadata => "Metadata",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::DeleteTopics => "DeleteTopics",
        ApiKey::CreatePartitions => "CreatePartitions",
        ApiKey::DescribeConfigs => "DescribeConfigs",
        ApiKey::DescribeCluster => "DescribeCluster",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::JoinGroup => "JoinGroup",
        ApiKey::SyncGroup => "SyncGroup",
        ApiKey::Heartbeat => "Heartbeat",
        ApiKey::LeaveGroup => "LeaveGroup",
        ApiKey::OffsetCommit => "OffsetCommit",
        ApiKey::OffsetFetch => "OffsetFetch",
        ApiKey::InitProducerId => "InitProducerId",
        ApiKey::ListGroups => "ListGroups",
        ApiKey::DescribeGroups => "DescribeGroups",
        ApiKey::DeleteGroups => "DeleteGroups",
        ApiKey::AlterConfigs => "AlterConfigs",
        ApiKey::IncrementalAlterConfigs => "IncrementalAlterConfigs",
        _ => "Other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, MetadataRequest};
    use kafka_protocol::protocol::StrBytes;

    #[test]
    fn a_fetch_response_frame_references_its_records_and_matches_the_copying_encoder() {
        use kafka_protocol::messages::TopicName;
        use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
        let big = Bytes::from((0..20_000u32).map(|i| i as u8).collect::<Vec<_>>());
        let small = Bytes::from_static(b"a small batch");
        let mut topic = FetchableTopicResponse::default();
        topic.topic = TopicName(StrBytes::from_static_str("t"));
        for (i, records) in [Some(big.clone()), Some(small), None]
            .into_iter()
            .enumerate()
        {
            let mut p = PartitionData::default();
            p.partition_index = i as i32;
            p.high_watermark = 42;
            p.records = records;
            topic.partitions.push(p);
        }
        let mut response = FetchResponse::default();
        response.responses.push(topic);
        for version in 4..=12 {
            let copied = encode_response(7, version, &response).unwrap();
            let frame = encode_response_frame(7, version, &response).unwrap();
            assert_eq!(frame.to_bytes(), copied, "v{version}");
            assert_eq!(frame.len(), copied.len());
            assert!(
                frame
                    .parts()
                    .iter()
                    .any(|p| p.as_ptr() == big.as_ptr() && p.len() == big.len()),
                "v{version}: the large records are the log's buffer"
            );
        }
        let metadata = encode_response_frame(7, 1, &ApiVersionsResponse::default()).unwrap();
        assert_eq!(metadata.parts().len(), 1, "other responses are one buffer");
    }

    #[test]
    fn frame_length_rejects_negative_oversized_and_short() {
        assert_eq!(
            frame_length((-1i32).to_be_bytes(), 100),
            Err(FrameError::NegativeLength(-1))
        );
        assert_eq!(
            frame_length(101i32.to_be_bytes(), 100),
            Err(FrameError::TooLarge { len: 101, max: 100 })
        );
        assert_eq!(
            frame_length(7i32.to_be_bytes(), 100),
            Err(FrameError::TooShort(7))
        );
        assert_eq!(frame_length(100i32.to_be_bytes(), 100), Ok(100));
    }

    #[test]
    fn fixed_header_is_read_for_unknown_api_keys() {
        let frame = [0x7f, 0x00, 0x00, 0x05, 0x00, 0x00, 0x01, 0x02, 0xff];
        let h = FixedHeader::peek(&frame).unwrap();
        assert_eq!(
            h,
            FixedHeader {
                api_key: 0x7f00,
                api_version: 5,
                correlation_id: 0x0102
            }
        );
        assert!(FixedHeader::peek(&frame[..7]).is_err());
    }

    fn request_frame(api: ApiKey, version: i16, body: &impl Encodable) -> Bytes {
        let mut header = RequestHeader::default();
        header.request_api_key = api as i16;
        header.request_api_version = version;
        header.correlation_id = 42;
        header.client_id = Some(StrBytes::from_static_str("test"));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, api.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    #[test]
    fn header_and_body_round_trip_in_flexible_and_non_flexible_versions() {
        for version in [0i16, 3] {
            let mut frame =
                request_frame(ApiKey::ApiVersions, version, &ApiVersionsRequest::default());
            let header = decode_header(&mut frame, ApiKey::ApiVersions, version).unwrap();
            assert_eq!(header.correlation_id, 42);
            assert_eq!(header.client_id.as_deref(), Some("test"));
            let _: ApiVersionsRequest =
                decode_body(&mut frame, ApiKey::ApiVersions, version).unwrap();
        }
    }

    #[test]
    fn trailing_bytes_after_a_body_are_ignored_like_kafka_does() {
        let mut frame = request_frame(ApiKey::Metadata, 12, &MetadataRequest::default());
        decode_header(&mut frame, ApiKey::Metadata, 12).unwrap();
        let mut with_trailer = BytesMut::from(&frame[..]);
        with_trailer.extend_from_slice(&[0, 0, 0]);
        let mut body = with_trailer.freeze();
        decode_body::<MetadataRequest>(&mut body, ApiKey::Metadata, 12).unwrap();
        assert_eq!(body.len(), 3);
    }

    #[test]
    fn truncated_body_is_an_error_not_a_panic() {
        let frame = request_frame(ApiKey::Metadata, 9, &MetadataRequest::default());
        for cut in 0..frame.len() {
            let mut f = frame.slice(..cut);
            if decode_header(&mut f, ApiKey::Metadata, 9).is_ok() {
                let _ = decode_body::<MetadataRequest>(&mut f, ApiKey::Metadata, 9);
            }
        }
    }

    #[test]
    fn api_versions_response_header_has_no_tagged_fields_even_when_flexible() {
        // KIP-511: ApiVersions responses always use header v0 so that old clients can read them.
        let body = ApiVersionsResponse::default();
        let frame = encode_response(7, 3, &body).unwrap();
        let len = i32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(len, frame.len() - 4);
        assert_eq!(&frame[4..8], &7i32.to_be_bytes());
        let mut rest = frame.slice(8..);
        let decoded = ApiVersionsResponse::decode(&mut rest, 3).unwrap();
        assert_eq!(decoded, body);
    }

    #[test]
    fn legacy_versions_decode_through_decode_body_and_stay_bounded() {
        use kafka_protocol::messages::{CreateTopicsRequest, OffsetCommitRequest};
        // OffsetCommit v0: group "g", no topics.
        let mut body = Bytes::from_static(&[0, 1, b'g', 0, 0, 0, 0]);
        let r: OffsetCommitRequest = decode_body(&mut body, ApiKey::OffsetCommit, 0).unwrap();
        assert_eq!(&*r.group_id.0, "g");
        assert_eq!(r.generation_id_or_member_epoch, -1);
        // CreateTopics v0 claiming two billion topics in eight bytes.
        let mut body = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        let e = decode_body::<CreateTopicsRequest>(&mut body, ApiKey::CreateTopics, 0);
        assert!(e.is_err());
        // A struct of another API is refused, not transmuted.
        let mut body = Bytes::from_static(&[0, 1, b'g', 0, 0, 0, 0]);
        assert!(decode_body::<CreateTopicsRequest>(&mut body, ApiKey::OffsetCommit, 0).is_err());
    }

    #[test]
    fn legacy_response_versions_are_framed_with_their_header() {
        use kafka_protocol::messages::DeleteTopicsResponse;
        let frame = encode_response(5, 0, &DeleteTopicsResponse::default()).unwrap();
        // length 8, correlation id 5, an empty array and no throttle time (v0).
        assert_eq!(&frame[..], &[0, 0, 0, 8, 0, 0, 0, 5, 0, 0, 0, 0]);
        let frame = encode_response(5, 1, &DeleteTopicsResponse::default()).unwrap();
        assert_eq!(frame.len(), 16);
    }

    #[test]
    fn unsupported_answer_carries_correlation_id_and_error_35() {
        let f = encode_unsupported(9);
        assert_eq!(&f[..], &[0, 0, 0, 6, 0, 0, 0, 9, 0, 35]);
    }
}
