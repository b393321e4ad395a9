//! One blocking connection that speaks the Kafka protocol directly (through the
//! `kafka-protocol` codec) for the admin APIs librdkafka does not expose: DescribeCluster,
//! partition reassignment, leader election, broker configs, log dirs, ACLs, SCRAM users.
//! A connection may be TLS and may log in with SASL first (`security`).
//!
//! Every connection starts with ApiVersions, and each call picks the highest version both the
//! broker and this client serve; an API the broker does not list is refused here, before any
//! request is sent, with an error naming the API. This module knows frames and versions, not
//! what a command does with an answer.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};

use std::ops::RangeInclusive;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use crate::security::{Security, Stream, secure_stream};

/// ApiVersions v3 is the newest every Kafka since 2.4 answers; older brokers answer an
/// unknown version in the v0 form with UNSUPPORTED_VERSION, and that answer is read as such.
const API_VERSIONS_VERSION: i16 = 3;
/// Admin answers are small; a larger length prefix means the stream is not Kafka.
const MAX_RESPONSE_BYTES: usize = 64 << 20;
const UNSUPPORTED_VERSION: i16 = 35;
/// Admin requests carry the caller's timeout for the broker to use in full (ElectLeaders,
/// AlterPartitionReassignments); the socket waits this much longer so such an answer still
/// arrives.
const ANSWER_MARGIN: Duration = Duration::from_secs(5);
/// The client id and software name every request carries.
const CLIENT_ID: &str = "krait-admin";

/// Why a call over the wire failed.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("cannot connect to {address}: {source}")]
    Connect {
        address: String,
        source: std::io::Error,
    },
    #[error("TLS to {address}: {detail}")]
    Tls { address: String, detail: String },
    #[error("authentication to {address} with {mechanism} failed: {detail}")]
    Authentication {
        address: String,
        mechanism: &'static str,
        detail: String,
    },
    #[error("{api} to {address} failed: {source}")]
    Io {
        api: String,
        address: String,
        source: std::io::Error,
    },
    #[error("{api} to {address}: {detail}")]
    Codec {
        api: String,
        address: String,
        detail: String,
    },
    #[error("the broker at {address} does not support {api} (API key {key}): {detail}")]
    Unsupported {
        api: String,
        key: i16,
        address: String,
        detail: String,
    },
    #[error(
        "{api} to {address}: the response of {len} bytes is over the {MAX_RESPONSE_BYTES} byte limit"
    )]
    TooLarge {
        api: String,
        address: String,
        len: usize,
    },
}

/// The name Kafka gives an API key, e.g. `ElectLeaders`.
pub fn api_name(key: i16) -> String {
    ApiKey::try_from(key).map_or_else(|_| format!("API {key}"), |k| format!("{k:?}"))
}

/// A Kafka error code as people read it: `InvalidReplicaAssignment (39): <broker's message>`.
pub fn error_text(code: i16, message: Option<&StrBytes>) -> String {
    let name =
        ResponseError::try_from_code(code).map_or_else(|| "NONE".to_string(), |e| format!("{e}"));
    match message.map(|m| m.as_str()).filter(|m| !m.is_empty()) {
        Some(m) => format!("{name} ({code}): {m}"),
        None => format!("{name} ({code})"),
    }
}

/// The highest version in the intersection of what the broker serves, what the codec can
/// encode and what the caller needs; `Err` says why there is none.
pub fn pick_version(
    broker: Option<(i16, i16)>,
    codec: (i16, i16),
    wanted: RangeInclusive<i16>,
) -> Result<i16, String> {
    let Some((broker_min, broker_max)) = broker else {
        return Err("it is not listed in the broker's ApiVersions answer".to_string());
    };
    let low = broker_min.max(codec.0).max(*wanted.start());
    let high = broker_max.min(codec.1).min(*wanted.end());
    if low > high {
        return Err(format!(
            "the broker serves versions {broker_min}..={broker_max}, this command needs {}..={}",
            wanted.start().max(&codec.0),
            wanted.end().min(&codec.1)
        ));
    }
    Ok(high)
}

/// A connection to one broker, after ApiVersions.
#[derive(Debug)]
pub struct Connection {
    address: String,
    stream: Stream,
    correlation_id: i32,
    /// API key -> (min, max) served by the broker.
    versions: BTreeMap<i16, (i16, i16)>,
}

impl Connection {
    /// Connects to `address` (HOST:PORT) over PLAINTEXT within `timeout` and asks which API
    /// versions the broker serves.
    pub fn open(address: &str, timeout: Duration) -> Result<Self, WireError> {
        Self::open_with(address, timeout, &Security::default())
    }

    /// Connects to `address` within `timeout` with `security` (TLS handshake first, SASL
    /// login after ApiVersions), and asks which API versions the broker serves.
    pub fn open_with(
        address: &str,
        timeout: Duration,
        security: &Security,
    ) -> Result<Self, WireError> {
        let connect = |source| WireError::Connect {
            address: address.to_string(),
            source,
        };
        let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address resolved");
        let mut stream = None;
        for socket in address.to_socket_addrs().map_err(connect)? {
            match TcpStream::connect_timeout(&socket, timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let stream = stream.ok_or_else(|| connect(last))?;
        stream
            .set_read_timeout(Some(timeout + ANSWER_MARGIN))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .and_then(|()| stream.set_nodelay(true))
            .map_err(connect)?;
        let mut conn = Self {
            address: address.to_string(),
            stream: secure_stream(address, stream, security)?,
            correlation_id: 0,
            versions: BTreeMap::new(),
        };
        conn.handshake()?;
        if let Some(credentials) = &security.sasl {
            conn.authenticate(credentials)?;
        }
        Ok(conn)
    }

    /// The HOST:PORT this connection went to.
    pub fn address(&self) -> &str {
        &self.address
    }

    fn handshake(&mut self) -> Result<(), WireError> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str(CLIENT_ID))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut body = self.exchange(&request, API_VERSIONS_VERSION)?;
        // A broker that does not know v3 answers in the v0 form, with UNSUPPORTED_VERSION
        // and its own range: the error code is read before choosing how to decode.
        let version = if body.len() >= 2 && (&body[..2]).get_i16() == UNSUPPORTED_VERSION {
            0
        } else {
            API_VERSIONS_VERSION
        };
        let response = ApiVersionsResponse::decode(&mut body, version)
            .map_err(|e| self.codec(ApiVersionsRequest::KEY, e))?;
        if response.error_code != 0 && response.api_keys.is_empty() {
            return Err(self.codec(
                ApiVersionsRequest::KEY,
                error_text(response.error_code, None),
            ));
        }
        self.versions = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(())
    }

    /// The version `call` would use for `R` within `wanted`, or the reason there is none.
    pub fn version<R: Request>(&self, wanted: RangeInclusive<i16>) -> Result<i16, WireError> {
        pick_version(
            self.versions.get(&R::KEY).copied(),
            (R::VERSIONS.min, R::VERSIONS.max),
            wanted,
        )
        .map_err(|detail| self.unsupported(R::KEY, detail))
    }

    /// Sends `request` at the highest version both sides serve within `wanted`, and decodes
    /// the answer.
    pub fn call<R: Request>(
        &mut self,
        request: &R,
        wanted: RangeInclusive<i16>,
    ) -> Result<R::Response, WireError> {
        let version = self.version::<R>(wanted)?;
        let mut body = self.exchange(request, version)?;
        let answer = body.clone();
        R::Response::decode(&mut body, version).map_err(|e| {
            // A broker that lists the API but refuses the version answers with only an error
            // code (Krait), or a body of another shape: either way, say it is unsupported.
            if answer.len() >= 2 && (&answer[..2]).get_i16() == UNSUPPORTED_VERSION {
                self.unsupported(R::KEY, format!("it refused version {version}"))
            } else {
                self.codec(R::KEY, e)
            }
        })
    }

    /// The error for a response whose top-level code says the API or version is unsupported.
    pub fn unsupported(&self, key: i16, detail: String) -> WireError {
        WireError::Unsupported {
            api: api_name(key),
            key,
            address: self.address.clone(),
            detail,
        }
    }

    fn codec(&self, key: i16, e: impl std::fmt::Display) -> WireError {
        WireError::Codec {
            api: api_name(key),
            address: self.address.clone(),
            detail: e.to_string(),
        }
    }

    /// Writes one request frame and reads the response frame; returns the body after the
    /// response header.
    fn exchange<R: Request>(&mut self, request: &R, version: i16) -> Result<Bytes, WireError> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let frame = encode_request(request, version, self.correlation_id)
            .map_err(|e| self.codec(R::KEY, e))?;
        let io = |address: &str, source| WireError::Io {
            api: api_name(R::KEY),
            address: address.to_string(),
            source,
        };
        self.stream
            .write_all(&frame)
            .map_err(|e| io(&self.address, e))?;
        let mut len = [0u8; 4];
        self.stream
            .read_exact(&mut len)
            .map_err(|e| io(&self.address, e))?;
        let len = usize::try_from(i32::from_be_bytes(len)).unwrap_or(0);
        if len > MAX_RESPONSE_BYTES {
            return Err(WireError::TooLarge {
                api: api_name(R::KEY),
                address: self.address.clone(),
                len,
            });
        }
        let mut body = vec![0u8; len];
        self.stream
            .read_exact(&mut body)
            .map_err(|e| io(&self.address, e))?;
        // Krait answers an API it lists but cannot serve with the correlation id and
        // UNSUPPORTED_VERSION alone, whatever the response header version: recognised here,
        // before a flexible header would read the error code's first byte as tagged fields.
        if body.len() == 6 && i16::from_be_bytes([body[4], body[5]]) == UNSUPPORTED_VERSION {
            return Err(self.unsupported(
                R::KEY,
                format!("it answered version {version} with UNSUPPORTED_VERSION"),
            ));
        }
        let mut body = Bytes::from(body);
        let header = ResponseHeader::decode(&mut body, R::Response::header_version(version))
            .map_err(|e| self.codec(R::KEY, e))?;
        if header.correlation_id != self.correlation_id {
            return Err(self.codec(
                R::KEY,
                format!(
                    "answered correlation id {}, expected {}",
                    header.correlation_id, self.correlation_id
                ),
            ));
        }
        Ok(body)
    }
}

/// A length-prefixed request frame: size, header, body. `Err` is the codec's reason.
pub fn encode_request<R: Request>(
    request: &R,
    version: i16,
    correlation_id: i32,
) -> Result<Bytes, String> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header
        .encode(&mut buf, R::header_version(version))
        .map_err(|e| e.to_string())?;
    request
        .encode(&mut buf, version)
        .map_err(|e| e.to_string())?;
    let len = i32::try_from(buf.len() - 4).map_err(|e| e.to_string())?;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::{
        BrokerId, ElectLeadersRequest, MetadataRequest, MetadataResponse,
    };

    use super::*;
    use crate::fake_broker::{FakeBroker, answer, api_versions};

    /// A broker serving Metadata up to `metadata_max`, which names broker 5 as controller.
    /// `old` makes it predate ApiVersions v3: it answers v3 in the v0 form with
    /// UNSUPPORTED_VERSION and its ranges, as Kafka before 2.4 does.
    fn broker(metadata_max: i16, old: bool) -> FakeBroker {
        FakeBroker::start(move |h, _| match h.request_api_key {
            ApiVersionsRequest::KEY => {
                let r = api_versions(&[(MetadataRequest::KEY, 0, metadata_max)]);
                match old {
                    true => answer(h, &r.with_error_code(UNSUPPORTED_VERSION), 0),
                    false => answer(h, &r, h.request_api_version),
                }
            }
            MetadataRequest::KEY => {
                let r = MetadataResponse::default().with_controller_id(BrokerId(5));
                answer(h, &r, h.request_api_version)
            }
            other => panic!("the fake broker lists no API {other}"),
        })
    }

    #[test]
    fn an_api_missing_from_api_versions_is_refused_before_anything_is_sent() {
        let fake = broker(12, false);
        let mut conn = Connection::open(&fake.address, Duration::from_secs(5)).unwrap();
        let err = conn
            .call(&ElectLeadersRequest::default(), 0..=2)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "the broker at {} does not support ElectLeaders (API key 43): it is not listed in the broker's ApiVersions answer",
                fake.address
            )
        );
        let metadata = conn.call(&MetadataRequest::default(), 4..=12).unwrap();
        assert_eq!(metadata.controller_id, BrokerId(5));
        assert_eq!(
            fake.requests(),
            [(ApiVersionsRequest::KEY, 3), (MetadataRequest::KEY, 12)],
            "ElectLeaders never went out"
        );
    }

    #[test]
    fn a_bare_unsupported_version_answer_is_reported_as_unsupported_for_flexible_versions_too() {
        use kafka_protocol::messages::ListPartitionReassignmentsRequest;
        let fake = FakeBroker::start(|h, _| match h.request_api_key {
            ApiVersionsRequest::KEY => answer(
                h,
                &api_versions(&[
                    (ListPartitionReassignmentsRequest::KEY, 0, 0),
                    (ElectLeadersRequest::KEY, 0, 0),
                ]),
                h.request_api_version,
            ),
            _ => {
                let mut frame = vec![0, 0, 0, 6];
                frame.extend_from_slice(&h.correlation_id.to_be_bytes());
                frame.extend_from_slice(&UNSUPPORTED_VERSION.to_be_bytes());
                frame
            }
        });
        let mut conn = Connection::open(&fake.address, Duration::from_secs(5)).unwrap();
        let flexible = conn
            .call(&ListPartitionReassignmentsRequest::default(), 0..=0)
            .unwrap_err()
            .to_string();
        assert_eq!(
            flexible,
            format!(
                "the broker at {} does not support ListPartitionReassignments (API key 46): it answered version 0 with UNSUPPORTED_VERSION",
                fake.address
            )
        );
        let rigid = conn
            .call(&ElectLeadersRequest::default(), 0..=2)
            .unwrap_err()
            .to_string();
        assert!(rigid.contains("does not support ElectLeaders"), "{rigid}");
    }

    #[test]
    fn a_broker_older_than_api_versions_v3_is_read_from_its_v0_answer() {
        let fake = broker(5, true);
        let mut conn = Connection::open(&fake.address, Duration::from_secs(5)).unwrap();
        conn.call(&MetadataRequest::default(), 4..=12).unwrap();
        assert_eq!(
            fake.requests(),
            [(ApiVersionsRequest::KEY, 3), (MetadataRequest::KEY, 5)]
        );
        let too_old = conn
            .version::<MetadataRequest>(7..=12)
            .unwrap_err()
            .to_string();
        assert!(
            too_old.ends_with("the broker serves versions 0..=5, this command needs 7..=12"),
            "{too_old}"
        );
    }

    #[test]
    fn the_highest_version_both_sides_serve_is_picked() {
        assert_eq!(pick_version(Some((0, 12)), (0, 13), 4..=12), Ok(12));
        assert_eq!(pick_version(Some((0, 1)), (0, 2), 0..=2), Ok(1));
        assert_eq!(pick_version(Some((3, 9)), (0, 5), 0..=i16::MAX), Ok(5));
    }

    #[test]
    fn an_api_the_broker_does_not_list_or_serve_high_enough_is_refused_with_the_reason() {
        let missing = pick_version(None, (0, 2), 0..=2).unwrap_err();
        assert!(missing.contains("not listed"), "{missing}");
        let too_old = pick_version(Some((0, 0)), (0, 2), 1..=2).unwrap_err();
        assert_eq!(
            too_old,
            "the broker serves versions 0..=0, this command needs 1..=2"
        );
    }

    #[test]
    fn error_codes_read_as_kafka_names_with_the_brokers_message() {
        assert_eq!(error_text(84, None), "ElectionNotNeeded (84)");
        assert_eq!(
            error_text(41, Some(&StrBytes::from_static_str("moved"))),
            "NotController (41): moved"
        );
    }

    #[test]
    fn api_keys_are_named_as_kafka_names_them() {
        assert_eq!(api_name(43), "ElectLeaders");
        assert_eq!(api_name(45), "AlterPartitionReassignments");
    }
}
