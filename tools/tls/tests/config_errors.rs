//! Settings that cannot work are refused up front, with messages naming the file or setting
//! and what is wrong. These tests do no I/O beyond temp files, so they need no timeout.

mod common;

use std::path::PathBuf;

use common::{Ca, write};
use krait_tls::{
    ClientAuth, ClientTlsSettings, KeyStore, ServerTlsSettings, TlsAcceptor, TlsError,
    client_config,
};

fn server(keystore: KeyStore) -> ServerTlsSettings {
    ServerTlsSettings {
        keystore,
        truststore: None,
        client_auth: ClientAuth::None,
    }
}

fn refused(settings: ServerTlsSettings) -> TlsError {
    TlsAcceptor::new(settings).expect_err("settings must be refused")
}

#[test]
fn missing_keystore_file_is_reported_with_its_setting_and_path() {
    let path = PathBuf::from("/nonexistent/krait/broker.pem");
    let error = refused(server(KeyStore::File(path)));
    let message = error.to_string();
    assert!(matches!(error, TlsError::Read { .. }), "{message}");
    assert!(message.contains("ssl.keystore.location"), "{message}");
    assert!(
        message.contains("/nonexistent/krait/broker.pem"),
        "{message}"
    );
}

#[test]
fn key_not_matching_the_certificate_is_reported_as_a_mismatch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = Ca::new("ca");
    let (a, b) = (ca.server("a", 1), ca.server("b", 2));
    let path = write(
        dir.path(),
        "mixed.pem",
        &format!("{}{}", b.key_pem, a.cert_pem),
    );
    let error = refused(server(KeyStore::File(path)));
    let message = error.to_string();
    assert!(matches!(error, TlsError::KeyMismatch { .. }), "{message}");
    assert!(message.contains("does not match"), "{message}");
    assert!(message.contains("mixed.pem"), "{message}");
}

#[test]
fn keystore_without_a_private_key_is_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let leaf = Ca::new("ca").server("a", 1);
    let path = write(dir.path(), "chain-only.pem", &leaf.cert_pem);
    let message = refused(server(KeyStore::File(path))).to_string();
    assert!(message.contains("no private key"), "{message}");
    assert!(message.contains("chain-only.pem"), "{message}");
}

#[test]
fn keystore_without_certificates_is_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let leaf = Ca::new("ca").server("a", 1);
    let path = write(dir.path(), "key-only.pem", &leaf.key_pem);
    let message = refused(server(KeyStore::File(path))).to_string();
    assert!(message.contains("no certificate"), "{message}");
    assert!(message.contains("key-only.pem"), "{message}");
}

#[test]
fn inline_keystore_errors_name_the_inline_setting() {
    let leaf = Ca::new("ca").server("a", 1);
    let message = refused(server(KeyStore::Inline {
        key_pem: leaf.key_pem.clone(),
        chain_pem: String::new(),
    }))
    .to_string();
    assert!(
        message.contains("ssl.keystore.certificate.chain"),
        "{message}"
    );
    let message = refused(server(KeyStore::Inline {
        key_pem: String::new(),
        chain_pem: leaf.cert_pem.clone(),
    }))
    .to_string();
    assert!(message.contains("ssl.keystore.key"), "{message}");
}

#[test]
fn encrypted_private_key_is_reported_as_unsupported() {
    let pem = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
    let leaf = Ca::new("ca").server("a", 1);
    let message = refused(server(KeyStore::Inline {
        key_pem: pem.to_owned(),
        chain_pem: leaf.cert_pem.clone(),
    }))
    .to_string();
    assert!(message.contains("encrypted"), "{message}");
}

#[test]
fn truncated_pem_is_reported_as_a_pem_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let leaf = Ca::new("ca").server("a", 1);
    let full = leaf.keystore_pem();
    let path = write(dir.path(), "half.pem", &full[..full.len() - 40]);
    let error = refused(server(KeyStore::File(path)));
    assert!(matches!(error, TlsError::Pem { .. }), "{error}");
    assert!(error.to_string().contains("half.pem"), "{error}");
}

#[test]
fn client_auth_without_a_truststore_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let leaf = Ca::new("ca").server("a", 1);
    let path = write(dir.path(), "broker.pem", &leaf.keystore_pem());
    for auth in [ClientAuth::Requested, ClientAuth::Required] {
        let message = refused(ServerTlsSettings {
            client_auth: auth,
            ..server(KeyStore::File(path.clone()))
        })
        .to_string();
        assert!(message.contains("ssl.truststore.location"), "{message}");
        assert!(message.contains(auth.as_str()), "{message}");
    }
}

#[test]
fn missing_truststore_file_is_reported_with_its_setting() {
    let dir = tempfile::tempdir().expect("temp dir");
    let leaf = Ca::new("ca").server("a", 1);
    let path = write(dir.path(), "broker.pem", &leaf.keystore_pem());
    let message = refused(ServerTlsSettings {
        keystore: KeyStore::File(path),
        truststore: Some(dir.path().join("no-such-ca.pem")),
        client_auth: ClientAuth::Required,
    })
    .to_string();
    assert!(message.contains("ssl.truststore.location"), "{message}");
    assert!(message.contains("no-such-ca.pem"), "{message}");
}

#[test]
fn truststore_is_neither_needed_nor_read_without_client_auth() {
    let dir = tempfile::tempdir().expect("temp dir");
    let leaf = Ca::new("ca").server("a", 1);
    let path = write(dir.path(), "broker.pem", &leaf.keystore_pem());
    TlsAcceptor::new(ServerTlsSettings {
        keystore: KeyStore::File(path),
        truststore: Some(dir.path().join("no-such-ca.pem")),
        client_auth: ClientAuth::None,
    })
    .expect("no client auth: the truststore is ignored");
}

#[test]
fn client_auth_parses_kafka_values_in_any_case_and_rejects_others() {
    assert_eq!(
        ClientAuth::parse("required").expect("parse"),
        ClientAuth::Required
    );
    assert_eq!(
        ClientAuth::parse("REQUESTED").expect("parse"),
        ClientAuth::Requested
    );
    assert_eq!(ClientAuth::parse("None").expect("parse"), ClientAuth::None);
    assert_eq!(ClientAuth::default(), ClientAuth::None);
    let message = ClientAuth::parse("always")
        .expect_err("invalid")
        .to_string();
    assert!(message.contains("ssl.client.auth"), "{message}");
    assert!(message.contains("always"), "{message}");
}

#[test]
fn endpoint_identification_https_verifies_hostnames_and_empty_does_not() {
    assert!(ClientTlsSettings::endpoint_identification("https").expect("parse"));
    assert!(ClientTlsSettings::endpoint_identification("HTTPS").expect("parse"));
    assert!(!ClientTlsSettings::endpoint_identification("").expect("parse"));
    let message = ClientTlsSettings::endpoint_identification("ldap")
        .expect_err("invalid")
        .to_string();
    assert!(
        message.contains("ssl.endpoint.identification.algorithm"),
        "{message}"
    );
    assert!(
        ClientTlsSettings::default().verify_hostname,
        "Kafka verifies by default"
    );
}

#[test]
fn client_without_any_truststore_is_refused() {
    let message = client_config(&ClientTlsSettings::default())
        .expect_err("no trust roots")
        .to_string();
    assert!(message.contains("truststore"), "{message}");
}

#[test]
fn client_truststore_without_certificates_is_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write(dir.path(), "empty-ca.pem", "");
    let message = client_config(&ClientTlsSettings {
        truststore: Some(path),
        ..ClientTlsSettings::default()
    })
    .expect_err("empty truststore")
    .to_string();
    assert!(message.contains("no certificate"), "{message}");
    assert!(message.contains("empty-ca.pem"), "{message}");
}

#[test]
fn debug_output_never_shows_an_inline_private_key() {
    let leaf = Ca::new("ca").server("a", 1);
    let keystore = KeyStore::Inline {
        key_pem: leaf.key_pem.clone(),
        chain_pem: leaf.cert_pem.clone(),
    };
    let shown = format!("{keystore:?}");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    assert!(shown.contains("redacted"), "{shown}");
    let acceptor = TlsAcceptor::new(server(keystore)).expect("acceptor");
    let shown = format!("{acceptor:?}");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
}
