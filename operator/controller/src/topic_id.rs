//! Reads a topic's id (Kafka's UUID for it) with one Metadata v12 request: librdkafka's admin
//! API does not expose topic ids. Best effort: any failure is `None`, never a reconcile error.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Metadata v10 introduced topic ids; v12 is the newest with them that Kafka 4.0 serves.
const VERSION: i16 = 12;
/// A Metadata answer for one topic is small; anything larger is not one.
const MAX_RESPONSE: usize = 1 << 20;

/// Why the topic id could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TopicIdError {
    #[error("no bootstrap address")]
    NoBootstrap,
    #[error("talking to {0}: {1}")]
    Io(String, std::io::Error),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("encoding or decoding Metadata: {0}")]
    Codec(String),
    #[error("response of {0} bytes exceeds the limit")]
    TooLarge(usize),
}

/// The id of `topic` as the first bootstrap broker reports it; `Ok(None)` when the broker has
/// no such topic (or reports the nil id).
pub async fn fetch(
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
) -> Result<Option<String>, TopicIdError> {
    tokio::time::timeout(timeout, exchange(bootstrap, topic))
        .await
        .map_err(|_| TopicIdError::Timeout(timeout))?
}

fn request(topic: &str) -> Result<Bytes, TopicIdError> {
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Metadata as i16)
        .with_request_api_version(VERSION)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("krait-operator")));
    let body = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
            TopicName(StrBytes::from_string(topic.to_string())),
        ))]))
        // Reading must never create the topic.
        .with_allow_auto_topic_creation(false);
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header
        .encode(&mut buf, MetadataRequest::header_version(VERSION))
        .map_err(codec)?;
    body.encode(&mut buf, VERSION).map_err(codec)?;
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

fn codec(e: impl std::fmt::Display) -> TopicIdError {
    TopicIdError::Codec(e.to_string())
}

async fn exchange(bootstrap: &str, topic: &str) -> Result<Option<String>, TopicIdError> {
    let address = bootstrap
        .split(',')
        .next()
        .filter(|a| !a.is_empty())
        .ok_or(TopicIdError::NoBootstrap)?;
    let io = |e| TopicIdError::Io(address.to_string(), e);
    let mut stream = TcpStream::connect(address).await.map_err(io)?;
    stream.write_all(&request(topic)?).await.map_err(io)?;
    let len = stream.read_i32().await.map_err(io)?.max(0) as usize;
    if len > MAX_RESPONSE {
        return Err(TopicIdError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await.map_err(io)?;
    let mut body = Bytes::from(body);
    ResponseHeader::decode(&mut body, MetadataResponse::header_version(VERSION)).map_err(codec)?;
    let response = MetadataResponse::decode(&mut body, VERSION).map_err(codec)?;
    Ok(response
        .topics
        .iter()
        .find(|t| t.error_code == 0 && t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
        .map(|t| t.topic_id)
        .filter(|id| !id.is_nil())
        .map(|id| id.to_string()))
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
    use kafka_protocol::protocol::decode_request_header_from_buffer;
    use tokio::net::TcpListener;

    use super::*;

    /// A one-shot Metadata responder: checks the request, answers with `topics`.
    async fn responder(topics: Vec<MetadataResponseTopic>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let len = stream.read_i32().await.unwrap() as usize;
            let mut frame = vec![0u8; len];
            stream.read_exact(&mut frame).await.unwrap();
            let mut frame = Bytes::from(frame);
            let header = decode_request_header_from_buffer(&mut frame).unwrap();
            assert_eq!(header.request_api_version, VERSION);
            let request = MetadataRequest::decode(&mut frame, VERSION).unwrap();
            assert!(
                !request.allow_auto_topic_creation,
                "a read must not create the topic"
            );
            let mut out = BytesMut::new();
            out.put_i32(0);
            ResponseHeader::default()
                .with_correlation_id(header.correlation_id)
                .encode(&mut out, MetadataResponse::header_version(VERSION))
                .unwrap();
            MetadataResponse::default()
                .with_topics(topics)
                .encode(&mut out, VERSION)
                .unwrap();
            let n = (out.len() - 4) as i32;
            out[..4].copy_from_slice(&n.to_be_bytes());
            stream.write_all(&out).await.unwrap();
        });
        address
    }

    fn topic(name: &str, id: u128, error_code: i16) -> MetadataResponseTopic {
        MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(name.into()))))
            .with_topic_id(uuid::Uuid::from_u128(id))
            .with_error_code(error_code)
    }

    #[tokio::test]
    async fn reads_the_topic_id_from_metadata() {
        let address = responder(vec![topic("orders", 0x1234, 0)]).await;
        let id = fetch(&address, "orders", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(id.as_deref(), Some("00000000-0000-0000-0000-000000001234"));
    }

    #[tokio::test]
    async fn unknown_topic_or_nil_id_is_none() {
        // UNKNOWN_TOPIC_OR_PARTITION (3).
        let address = responder(vec![topic("orders", 0x1234, 3)]).await;
        assert_eq!(
            fetch(&address, "orders", Duration::from_secs(5))
                .await
                .unwrap(),
            None
        );
        let address = responder(vec![topic("orders", 0, 0)]).await;
        assert_eq!(
            fetch(&address, "orders", Duration::from_secs(5))
                .await
                .unwrap(),
            None
        );
    }
}
