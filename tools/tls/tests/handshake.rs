//! Real TLS handshakes over loopback: server verification with and without hostname checks,
//! and `ssl.client.auth` none / requested / required.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::{
    Ca, Leaf, TEST_TIMEOUT, established, established_with_exchange, handshake, refused_by_client,
    refused_by_server, server_leaf, write,
};
use krait_tls::{
    ClientAuth, ClientTlsSettings, KeyStore, ServerTlsSettings, TlsAcceptor, client_config,
    peer_certificate,
};
use tokio::time::timeout;

struct Pki {
    dir: tempfile::TempDir,
    ca: Ca,
    other_ca: Ca,
    server: Leaf,
    keystore: PathBuf,
    truststore: PathBuf,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = Ca::new("krait test CA");
    let other_ca = Ca::new("unrelated CA");
    let server = ca.server("krait-broker", 10);
    let keystore = write(dir.path(), "broker.pem", &server.keystore_pem());
    let truststore = write(dir.path(), "ca.pem", &ca.pem());
    Pki {
        dir,
        ca,
        other_ca,
        server,
        keystore,
        truststore,
    }
}

impl Pki {
    /// `leaf`'s key and chain written to `name` in the temp dir, as a keystore file.
    fn keystore_file(&self, name: &str, leaf: &Leaf) -> KeyStore {
        KeyStore::File(write(self.dir.path(), name, &leaf.keystore_pem()))
    }
}

/// Runs one test against a fresh PKI; it fails if it takes longer than `TEST_TIMEOUT`.
async fn with_pki(test: impl AsyncFnOnce(&Pki)) {
    timeout(TEST_TIMEOUT, async {
        let pki = pki();
        test(&pki).await;
    })
    .await
    .expect("test timed out");
}

fn acceptor(pki: &Pki, client_auth: ClientAuth) -> TlsAcceptor {
    TlsAcceptor::new(ServerTlsSettings {
        keystore: KeyStore::File(pki.keystore.clone()),
        truststore: Some(pki.truststore.clone()),
        client_auth,
    })
    .expect("acceptor")
}

/// A server presenting `keystore` that asks for no client certificate.
fn serving(keystore: KeyStore) -> TlsAcceptor {
    TlsAcceptor::new(ServerTlsSettings {
        keystore,
        truststore: None,
        client_auth: ClientAuth::None,
    })
    .expect("acceptor")
}

fn client_cfg(
    pki: &Pki,
    verify_hostname: bool,
    keystore: Option<KeyStore>,
) -> Arc<rustls::ClientConfig> {
    client_config(&ClientTlsSettings {
        truststore: Some(pki.truststore.clone()),
        keystore,
        verify_hostname,
        ..ClientTlsSettings::default()
    })
    .expect("client config")
}

fn inline(leaf: &Leaf) -> Option<KeyStore> {
    Some(KeyStore::Inline {
        key_pem: leaf.key_pem.clone(),
        chain_pem: leaf.cert_pem.clone(),
    })
}

#[tokio::test]
async fn handshake_with_a_server_certificate_from_the_trusted_ca_succeeds_and_carries_bytes() {
    with_pki(async |pki| {
        let acceptor = acceptor(pki, ClientAuth::None);
        let (server, client) =
            established_with_exchange(&acceptor, client_cfg(pki, true, None), "localhost").await;
        assert_eq!(server_leaf(&client), pki.server.der);
        assert_eq!(peer_certificate(&server), None);
    })
    .await;
}

#[tokio::test]
async fn server_name_given_as_an_ip_address_is_checked_against_the_ip_san() {
    with_pki(async |pki| {
        let acceptor = acceptor(pki, ClientAuth::None);
        established_with_exchange(&acceptor, client_cfg(pki, true, None), "127.0.0.1").await;
    })
    .await;
}

#[tokio::test]
async fn inline_truststore_pem_is_trusted_like_a_truststore_file() {
    with_pki(async |pki| {
        let acceptor = acceptor(pki, ClientAuth::None);
        let config = client_config(&ClientTlsSettings {
            truststore_pem: Some(pki.ca.pem()),
            ..ClientTlsSettings::default()
        })
        .expect("client config");
        established_with_exchange(&acceptor, config, "localhost").await;
    })
    .await;
}

#[tokio::test]
async fn inline_server_keystore_serves_its_certificate() {
    with_pki(async |pki| {
        let acceptor = serving(inline(&pki.server).expect("inline"));
        let (_server, client) =
            established(&acceptor, client_cfg(pki, true, None), "localhost").await;
        assert_eq!(server_leaf(&client), pki.server.der);
    })
    .await;
}

#[tokio::test]
async fn server_name_mismatch_is_refused_when_hostname_verification_is_on() {
    with_pki(async |pki| {
        let acceptor = acceptor(pki, ClientAuth::None);
        refused_by_client(
            &acceptor,
            client_cfg(pki, true, None),
            "broker-0.example.com",
            "not valid for name",
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn server_name_mismatch_is_accepted_when_hostname_verification_is_off() {
    with_pki(async |pki| {
        let acceptor = acceptor(pki, ClientAuth::None);
        let config = client_cfg(pki, false, None);
        established_with_exchange(&acceptor, config, "broker-0.example.com").await;
    })
    .await;
}

#[tokio::test]
async fn untrusted_server_certificate_is_refused_even_when_hostname_verification_is_off() {
    with_pki(async |pki| {
        let rogue = pki.other_ca.server("krait-broker", 11);
        let acceptor = serving(pki.keystore_file("rogue.pem", &rogue));
        let config = client_cfg(pki, false, None);
        refused_by_client(&acceptor, config, "localhost", "UnknownIssuer").await;
    })
    .await;
}

#[tokio::test]
async fn server_for_another_host_is_refused_with_verification_on_and_accepted_with_it_off() {
    with_pki(async |pki| {
        let elsewhere = pki.ca.server_for("broker-1.example.com", 12);
        let acceptor = serving(pki.keystore_file("elsewhere.pem", &elsewhere));
        let (_server, client) =
            handshake(&acceptor, client_cfg(pki, true, None), "localhost").await;
        assert!(client.is_err(), "localhost is not broker-1.example.com");
        let (_server, client) =
            established(&acceptor, client_cfg(pki, false, None), "localhost").await;
        assert_eq!(server_leaf(&client), elsewhere.der);
    })
    .await;
}

#[tokio::test]
async fn required_client_auth_refuses_a_client_without_a_certificate() {
    with_pki(async |pki| {
        let acceptor = acceptor(pki, ClientAuth::Required);
        let config = client_cfg(pki, true, None);
        refused_by_server(&acceptor, config, "peer sent no certificates").await;
    })
    .await;
}

#[tokio::test]
async fn required_client_auth_refuses_a_certificate_from_another_ca() {
    with_pki(async |pki| {
        let acceptor = acceptor(pki, ClientAuth::Required);
        let stranger = pki.other_ca.client("stranger", 20);
        let config = client_cfg(pki, true, inline(&stranger));
        refused_by_server(&acceptor, config, "UnknownIssuer").await;
    })
    .await;
}

#[tokio::test]
async fn required_client_auth_with_a_good_certificate_exposes_its_leaf_as_peer_certificate() {
    with_pki(async |pki| {
        let acceptor = acceptor(pki, ClientAuth::Required);
        let alice = pki.ca.client("alice", 21);
        let config = client_cfg(pki, true, Some(pki.keystore_file("alice.pem", &alice)));
        let (server, _client) = established_with_exchange(&acceptor, config, "localhost").await;
        assert_eq!(peer_certificate(&server), Some(alice.der.clone()));
    })
    .await;
}

#[tokio::test]
async fn requested_client_auth_accepts_a_client_without_a_certificate() {
    with_pki(async |pki| {
        let acceptor = acceptor(pki, ClientAuth::Requested);
        let (server, _client) =
            established_with_exchange(&acceptor, client_cfg(pki, true, None), "localhost").await;
        assert_eq!(peer_certificate(&server), None);
    })
    .await;
}

#[tokio::test]
async fn requested_client_auth_exposes_a_presented_certificate_and_refuses_a_foreign_one() {
    with_pki(async |pki| {
        let acceptor = acceptor(pki, ClientAuth::Requested);
        let bob = pki.ca.client("bob", 22);
        let (server, _client) =
            established(&acceptor, client_cfg(pki, true, inline(&bob)), "localhost").await;
        assert_eq!(peer_certificate(&server), Some(bob.der.clone()));

        let stranger = pki.other_ca.client("stranger", 23);
        let (server, _client) = handshake(
            &acceptor,
            client_cfg(pki, true, inline(&stranger)),
            "localhost",
        )
        .await;
        assert!(
            server.is_err(),
            "a bad certificate is refused even when only requested"
        );
    })
    .await;
}
