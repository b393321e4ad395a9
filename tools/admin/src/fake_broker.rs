//! A stand-in Kafka broker for unit tests: a loopback listener that decodes each request
//! header, records (API key, version), and writes back whatever the test's handler encodes.
//! Each connection gets its own thread; the listener lives as long as the test process.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Encodable, HeaderVersion, decode_request_header_from_buffer};

/// Answers one request: its header and body in, the response body's encoding out
/// (`answer` builds it).
pub type Handler = dyn Fn(&RequestHeader, Bytes) -> Vec<u8> + Send + Sync;

#[derive(Debug, Clone)]
pub struct FakeBroker {
    pub address: String,
    seen: Arc<Mutex<Vec<(i16, i16)>>>,
}

impl FakeBroker {
    /// Starts listening on a free loopback port.
    pub fn start(
        handler: impl Fn(&RequestHeader, Bytes) -> Vec<u8> + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let address = listener.local_addr().expect("local address").to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let (handler, log) = (Arc::clone(&handler), Arc::clone(&log));
                std::thread::spawn(move || {
                    loop {
                        let mut len = [0u8; 4];
                        if stream.read_exact(&mut len).is_err() {
                            return;
                        }
                        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
                        stream.read_exact(&mut body).expect("a whole request frame");
                        let mut body = Bytes::from(body);
                        let header =
                            decode_request_header_from_buffer(&mut body).expect("a request header");
                        log.lock()
                            .unwrap()
                            .push((header.request_api_key, header.request_api_version));
                        let reply = handler(&header, body);
                        if stream.write_all(&reply).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { address, seen }
    }

    /// (API key, version) of every request received so far, in order of arrival.
    pub fn requests(&self) -> Vec<(i16, i16)> {
        self.seen.lock().unwrap().clone()
    }
}

/// The response frame for `request`: length, header (in the response's header version), body.
pub fn answer<R: Encodable + HeaderVersion>(
    request: &RequestHeader,
    response: &R,
    version: i16,
) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(request.correlation_id)
        .encode(&mut out, R::header_version(version))
        .expect("encode the response header");
    response
        .encode(&mut out, version)
        .expect("encode the response");
    let len = i32::try_from(out.len() - 4).expect("a small response");
    out[..4].copy_from_slice(&len.to_be_bytes());
    out.to_vec()
}

/// An ApiVersions answer listing `(api key, min, max)`.
pub fn api_versions(apis: &[(i16, i16, i16)]) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(
        apis.iter()
            .map(|&(key, min, max)| {
                ApiVersion::default()
                    .with_api_key(key)
                    .with_min_version(min)
                    .with_max_version(max)
            })
            .collect(),
    )
}
