//! The SASL exchange against a stand-in broker that runs `krait-auth`'s server side, and the
//! TLS stream's failure reporting.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiVersionsRequest, MetadataRequest, MetadataResponse, RequestHeader, SaslAuthenticateRequest,
    SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Request, StrBytes};
use krait_auth::scram::{ScramCredential, ScramMechanism, ScramServer};

use super::*;
use crate::fake_broker::{FakeBroker, answer, api_versions};

const SASL_AUTHENTICATION_FAILED: i16 = 58;
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;

fn versions(h: &RequestHeader) -> Vec<u8> {
    let apis = [
        (MetadataRequest::KEY, 0, 12),
        (SaslHandshakeRequest::KEY, 0, 1),
        (SaslAuthenticateRequest::KEY, 0, 2),
    ];
    answer(h, &api_versions(&apis), h.request_api_version)
}

fn handshake(h: &RequestHeader, mut body: Bytes, offered: &[&'static str]) -> Vec<u8> {
    let request = SaslHandshakeRequest::decode(&mut body, h.request_api_version).unwrap();
    let known = offered.contains(&request.mechanism.as_str());
    let response = SaslHandshakeResponse::default()
        .with_error_code(if known { 0 } else { UNSUPPORTED_SASL_MECHANISM })
        .with_mechanisms(
            offered
                .iter()
                .map(|m| StrBytes::from_static_str(m))
                .collect(),
        );
    answer(h, &response, h.request_api_version)
}

fn authenticated(h: &RequestHeader, result: Result<Vec<u8>, String>) -> Vec<u8> {
    let response = match result {
        Ok(bytes) => SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(bytes)),
        Err(message) => SaslAuthenticateResponse::default()
            .with_error_code(SASL_AUTHENTICATION_FAILED)
            .with_error_message(Some(StrBytes::from_string(message))),
    };
    answer(h, &response, h.request_api_version)
}

fn metadata(h: &RequestHeader) -> Vec<u8> {
    answer(h, &MetadataResponse::default(), h.request_api_version)
}

/// A broker that knows user `alice` with password `secret` for SCRAM-SHA-512 only.
fn scram_broker() -> FakeBroker {
    let credential = ScramCredential::generate(
        ScramMechanism::Sha512,
        b"secret",
        ScramMechanism::Sha512.min_iterations(),
    );
    // The exchange's server side, and how many SaslAuthenticate rounds it has answered.
    let server = Arc::new(Mutex::new((ScramServer::new(ScramMechanism::Sha512), 0)));
    FakeBroker::start(move |h, mut body| match h.request_api_key {
        ApiVersionsRequest::KEY => versions(h),
        SaslHandshakeRequest::KEY => handshake(h, body, &["SCRAM-SHA-512"]),
        SaslAuthenticateRequest::KEY => {
            let request =
                SaslAuthenticateRequest::decode(&mut body, h.request_api_version).unwrap();
            let (server, rounds) = &mut *server.lock().unwrap();
            *rounds += 1;
            let result = if *rounds == 1 {
                let credential = credential.clone();
                server.client_first(&request.auth_bytes, |user| {
                    (user == "alice").then_some(credential)
                })
            } else {
                server.client_final(&request.auth_bytes)
            };
            authenticated(h, result.map_err(|e| e.client_message()))
        }
        MetadataRequest::KEY => metadata(h),
        other => panic!("the fake broker lists no API {other}"),
    })
}

fn scram(user: &str, password: &str) -> Security {
    Security {
        tls: None,
        sasl: Some(SaslCredentials {
            mechanism: SaslMechanism::Scram(ScramMechanism::Sha512),
            username: user.to_string(),
            password: password.to_string(),
        }),
    }
}

#[test]
fn scram_logs_in_after_api_versions_and_then_requests_flow() {
    let fake = scram_broker();
    let mut conn = Connection::open_with(
        &fake.address,
        Duration::from_secs(5),
        &scram("alice", "secret"),
    )
    .unwrap();
    conn.call(&MetadataRequest::default(), 4..=12).unwrap();
    assert_eq!(
        fake.requests(),
        [
            (ApiVersionsRequest::KEY, 3),
            (SaslHandshakeRequest::KEY, 1),
            (SaslAuthenticateRequest::KEY, 2),
            (SaslAuthenticateRequest::KEY, 2),
            (MetadataRequest::KEY, 12),
        ]
    );
}

#[test]
fn a_wrong_password_is_an_authentication_error_with_the_brokers_message() {
    let fake = scram_broker();
    let err = Connection::open_with(
        &fake.address,
        Duration::from_secs(5),
        &scram("alice", "nope"),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        format!(
            "authentication to {} with SCRAM-SHA-512 failed: SaslAuthenticationFailed (58): \
             Authentication failed: Invalid user credentials",
            fake.address
        )
    );
}

#[test]
fn a_mechanism_the_listener_does_not_offer_is_refused_naming_the_offered_ones() {
    let fake = FakeBroker::start(|h, body| match h.request_api_key {
        ApiVersionsRequest::KEY => versions(h),
        SaslHandshakeRequest::KEY => handshake(h, body, &["PLAIN"]),
        other => panic!("unexpected API {other}"),
    });
    let err = Connection::open_with(&fake.address, Duration::from_secs(5), &scram("alice", "x"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("UnsupportedSaslMechanism (33)"), "{err}");
    assert!(err.ends_with("the listener offers PLAIN"), "{err}");
}

#[test]
fn plain_sends_the_user_and_password_after_an_empty_authorization_id() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let fake = FakeBroker::start(move |h, mut body| match h.request_api_key {
        ApiVersionsRequest::KEY => versions(h),
        SaslHandshakeRequest::KEY => handshake(h, body, &["PLAIN"]),
        SaslAuthenticateRequest::KEY => {
            let request =
                SaslAuthenticateRequest::decode(&mut body, h.request_api_version).unwrap();
            log.lock().unwrap().push(request.auth_bytes.to_vec());
            authenticated(h, Ok(Vec::new()))
        }
        other => panic!("unexpected API {other}"),
    });
    let security = Security {
        tls: None,
        sasl: Some(SaslCredentials {
            mechanism: SaslMechanism::Plain,
            username: "bob".into(),
            password: "pw".into(),
        }),
    };
    Connection::open_with(&fake.address, Duration::from_secs(5), &security).unwrap();
    assert_eq!(*seen.lock().unwrap(), [b"\0bob\0pw".to_vec()]);
}

#[test]
fn a_peer_that_drops_the_tls_handshake_is_reported_as_a_tls_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    let dir = std::env::temp_dir().join(format!("krait-admin-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.cert.pem()).unwrap();
    let security = Security {
        tls: Some(krait_tls::ClientTlsSettings {
            truststore: Some(ca_file),
            ..Default::default()
        }),
        sasl: None,
    };
    let err = Connection::open_with(&address, Duration::from_secs(5), &security)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("TLS to {address}: TLS handshake failed")),
        "{err}"
    );
}

#[test]
fn the_server_name_checked_is_the_host_of_the_address() {
    assert_eq!(host_of("broker-0.krait:9093"), "broker-0.krait");
    assert_eq!(host_of("127.0.0.1:9093"), "127.0.0.1");
    assert_eq!(host_of("[::1]:9093"), "::1");
}

#[test]
fn mechanisms_and_protocols_have_kafkas_names() {
    assert_eq!(
        SaslMechanism::from_name("plain"),
        Some(SaslMechanism::Plain)
    );
    assert_eq!(
        SaslMechanism::from_name("SCRAM-SHA-256"),
        Some(SaslMechanism::Scram(ScramMechanism::Sha256))
    );
    assert_eq!(SaslMechanism::from_name("GSSAPI"), None);
    assert_eq!(Security::default().protocol(), "PLAINTEXT");
    assert_eq!(scram("a", "b").protocol(), "SASL_PLAINTEXT");
}

#[test]
fn credentials_never_print_the_password() {
    let printed = format!("{:?}", scram("alice", "hunter2"));
    assert!(
        printed.contains("alice") && !printed.contains("hunter2"),
        "{printed}"
    );
}
