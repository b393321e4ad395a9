//! Certificate rotation: files rewritten in place are picked up by new handshakes, open
//! connections are untouched, and a half-written file never replaces a working configuration.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::{Ca, Leaf, TEST_TIMEOUT, established, exchange, handshake, server_leaf, write};
use krait_tls::{
    ClientAuth, ClientTlsSettings, KeyStore, RELOAD_CHECK_INTERVAL, ServerTlsSettings, TlsAcceptor,
    TlsError, client_config, peer_certificate,
};
use tokio::time::timeout;

struct Setup {
    dir: tempfile::TempDir,
    ca: Ca,
    first: Leaf,
    keystore: PathBuf,
    truststore: PathBuf,
    acceptor: TlsAcceptor,
    client: Arc<rustls::ClientConfig>,
}

fn setup(client_auth: ClientAuth) -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = Ca::new("krait test CA");
    let first = ca.server("krait-broker", 1);
    let keystore = write(dir.path(), "broker.pem", &first.keystore_pem());
    let truststore = write(dir.path(), "ca.pem", &ca.pem());
    let acceptor = TlsAcceptor::new(ServerTlsSettings {
        keystore: KeyStore::File(keystore.clone()),
        truststore: Some(truststore.clone()),
        client_auth,
    })
    .expect("acceptor");
    let client = client_config(&ClientTlsSettings {
        truststore: Some(truststore.clone()),
        ..ClientTlsSettings::default()
    })
    .expect("client config");
    Setup {
        dir,
        ca,
        first,
        keystore,
        truststore,
        acceptor,
        client,
    }
}

/// The rotated certificate has a longer subject than the first, so the rewritten file differs
/// in size even if both writes land within one tick of the file system's clock.
fn rotated(ca: &Ca) -> Leaf {
    ca.server("krait-broker-rotated", 2)
}

#[tokio::test]
async fn the_served_certificates_expiry_follows_a_rotation() {
    let s = setup(ClientAuth::None);
    // rcgen's default validity ends in 4096.
    let default_end = rcgen::date_time_ymd(4096, 1, 1).unix_timestamp();
    assert_eq!(s.acceptor.certificate_not_after(), Some(default_end));
    let renewed = s.ca.server_until("krait-broker-renewed", 2, (2031, 6, 1));
    write(s.dir.path(), "broker.pem", &renewed.keystore_pem());
    assert!(s.acceptor.reload_if_changed().expect("reload"));
    // 2031-06-01T00:00:00Z.
    assert_eq!(s.acceptor.certificate_not_after(), Some(1_938_038_400));
    // A half-written file keeps the expiry of the certificate still served.
    write(s.dir.path(), "broker.pem", "-----BEGIN PRIVATE KEY-----\n");
    assert!(s.acceptor.reload_if_changed().is_err());
    assert_eq!(s.acceptor.certificate_not_after(), Some(1_938_038_400));
}

#[tokio::test]
async fn unchanged_files_are_not_reloaded() {
    timeout(TEST_TIMEOUT, async {
        let s = setup(ClientAuth::None);
        assert!(!s.acceptor.reload_if_changed().expect("check"));
        let (_server, client) = established(&s.acceptor, s.client.clone(), "localhost").await;
        assert_eq!(server_leaf(&client), s.first.der);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn rotated_keystore_is_served_to_new_connections_while_an_open_connection_keeps_working() {
    timeout(TEST_TIMEOUT, async {
        let s = setup(ClientAuth::None);
        let (mut old_server, mut old_client) =
            established(&s.acceptor, s.client.clone(), "localhost").await;
        assert_eq!(server_leaf(&old_client), s.first.der);

        let second = rotated(&s.ca);
        write(s.dir.path(), "broker.pem", &second.keystore_pem());
        assert!(s.acceptor.reload_if_changed().expect("reload"));

        let (mut new_server, mut new_client) =
            established(&s.acceptor, s.client.clone(), "localhost").await;
        assert_eq!(server_leaf(&new_client), second.der);
        assert_ne!(second.der, s.first.der);
        exchange(&mut new_server, &mut new_client)
            .await
            .expect("new connection carries bytes");
        exchange(&mut old_server, &mut old_client)
            .await
            .expect("connection opened before the rotation still carries bytes");
        assert_eq!(server_leaf(&old_client), s.first.der);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn half_written_keystore_keeps_the_previous_configuration_until_the_file_is_complete() {
    timeout(TEST_TIMEOUT, async {
        let s = setup(ClientAuth::None);
        let second = rotated(&s.ca);
        let full = second.keystore_pem();
        write(s.dir.path(), "broker.pem", &full[..full.len() / 2]);
        let error = s
            .acceptor
            .reload_if_changed()
            .expect_err("a truncated keystore cannot load");
        assert!(
            error.to_string().contains("broker.pem"),
            "error names the file: {error}"
        );
        // Still failing on a second look, and still serving the first certificate.
        assert!(s.acceptor.reload_if_changed().is_err());
        let (_server, client) = established(&s.acceptor, s.client.clone(), "localhost").await;
        assert_eq!(server_leaf(&client), s.first.der);

        write(s.dir.path(), "broker.pem", "garbage, not PEM at all\n");
        assert!(s.acceptor.reload_if_changed().is_err());
        let (_server, client) = established(&s.acceptor, s.client.clone(), "localhost").await;
        assert_eq!(server_leaf(&client), s.first.der);

        write(s.dir.path(), "broker.pem", &full);
        assert!(s.acceptor.reload_if_changed().expect("complete file loads"));
        let (_server, client) = established(&s.acceptor, s.client.clone(), "localhost").await;
        assert_eq!(server_leaf(&client), second.der);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn key_rotated_before_its_certificate_keeps_the_previous_configuration() {
    timeout(TEST_TIMEOUT, async {
        let s = setup(ClientAuth::None);
        let second = rotated(&s.ca);
        // New key, old certificate: a mismatch, as between two writes of a rotation.
        write(
            s.dir.path(),
            "broker.pem",
            &format!("{}{}", second.key_pem, s.first.cert_pem),
        );
        let error = s.acceptor.reload_if_changed().expect_err("mismatch");
        assert!(matches!(error, TlsError::KeyMismatch { .. }), "{error}");
        let (_server, client) = established(&s.acceptor, s.client.clone(), "localhost").await;
        assert_eq!(server_leaf(&client), s.first.der);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn deleted_keystore_keeps_the_previous_configuration() {
    timeout(TEST_TIMEOUT, async {
        let s = setup(ClientAuth::None);
        std::fs::remove_file(&s.keystore).expect("remove");
        let error = s.acceptor.reload_if_changed().expect_err("missing file");
        assert!(matches!(error, TlsError::Read { .. }), "{error}");
        let (_server, client) = established(&s.acceptor, s.client.clone(), "localhost").await;
        assert_eq!(server_leaf(&client), s.first.der);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn rotated_truststore_admits_clients_of_the_new_ca() {
    timeout(TEST_TIMEOUT, async {
        let s = setup(ClientAuth::Required);
        let new_ca = Ca::new("krait rotated client CA");
        let carol = new_ca.client("carol", 30);
        let carol_config = client_config(&ClientTlsSettings {
            truststore: Some(s.truststore.clone()),
            keystore: Some(KeyStore::Inline {
                key_pem: carol.key_pem.clone(),
                chain_pem: carol.cert_pem.clone(),
            }),
            ..ClientTlsSettings::default()
        })
        .expect("client config");
        let (server, _client) = handshake(&s.acceptor, carol_config.clone(), "localhost").await;
        assert!(server.is_err(), "the new CA is not trusted yet");

        // Both CAs: the broker certificate (old CA) and carol (new CA) are trusted.
        write(
            s.dir.path(),
            "ca.pem",
            &format!("{}{}", s.ca.pem(), new_ca.pem()),
        );
        assert!(s.acceptor.reload_if_changed().expect("reload"));
        let (server, _client) = established(&s.acceptor, carol_config, "localhost").await;
        assert_eq!(peer_certificate(&server), Some(carol.der.clone()));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn accept_notices_rotated_files_once_the_check_interval_has_passed() {
    timeout(TEST_TIMEOUT, async {
        let s = setup(ClientAuth::None);
        let second = rotated(&s.ca);
        write(s.dir.path(), "broker.pem", &second.keystore_pem());
        tokio::time::sleep(RELOAD_CHECK_INTERVAL + std::time::Duration::from_millis(100)).await;
        let (_server, client) = established(&s.acceptor, s.client.clone(), "localhost").await;
        assert_eq!(server_leaf(&client), second.der);
        // The check happened in accept, so an explicit one finds nothing new.
        assert!(!s.acceptor.reload_if_changed().expect("check"));
    })
    .await
    .expect("test timed out");
}
