//! Real TLS handshakes over loopback: server verification with and without hostname checks,
//! and `ssl.client.auth` none / requested / required.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::{
    Ca, Leaf, TEST_TIMEOUT, established, exchange, handshake, refused_by_server, server_leaf, write,
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

fn acceptor(pki: &Pki, client_auth: ClientAuth) -> TlsAcceptor {
    TlsAcceptor::new(ServerTlsSettings {
        keystore: KeyStore::File(pki.keystore.clone()),
        truststore: Some(pki.truststore.clone()),
        client_auth,
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
    timeout(TEST_TIMEOUT, async {
        let pki = pki();
        let acceptor = acceptor(&pki, ClientAuth::None);
        let (mut server, mut client) =
            established(&acceptor, client_cfg(&pki, true, None), "localhost").await;
        assert_eq!(server_leaf(&client), pki.server.der);
        assert_eq!(peer_certificate(&server), None);
        exchange(&mut server, &mut client)
            .await
            .expect("bytes both ways");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn server_name_given_as_an_ip_address_is_checked_against_the_ip_san() {
    timeout(TEST_TIMEOUT, async {
        let pki = pki();
        let acceptor = acceptor(&pki, ClientAuth::None);
        let (mut server, mut client) =
            established(&acceptor, client_cfg(&pki, true, None), "127.0.0.1").await;
        exchange(&mut server, &mut client)
            .await
            .expect("bytes both ways");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn inline_truststore_pem_is_trusted_like_a_truststore_file() {
    timeout(TEST_TIMEOUT, async {
        let pki = pki();
        let acceptor = acceptor(&pki, ClientAuth::None);
        let config = client_config(&ClientTlsSettings {
            truststore_pem: Some(pki.ca.pem()),
            ..ClientTlsSettings::default()
        })
        .expect("client config");
        let (mut server, mut client) = established(&acceptor, config, "localhost").await;
        exchange(&mut server, &mut client)
            .await
            .expect("bytes both ways");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn inline_server_keystore_serves_its_certificate() {
    timeout(TEST_TIMEOUT, async {
        let pki = pki();
        let acceptor = TlsAcceptor::new(ServerTlsSettings {
            keystore: inline(&pki.server).expect("inline"),
            truststore: None,
            client_auth: ClientAuth::None,
        })
        .expect("acceptor");
        let (_server, client) =
            established(&acceptor, client_cfg(&pki, true, None), "localhost").await;
        assert_eq!(server_leaf(&client), pki.server.der);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn server_name_mismatch_is_refused_when_hostname_verification_is_on() {
    timeout(TEST_TIMEOUT, async {
        let pki = pki();
        let acceptor = acceptor(&pki, ClientAuth::None);
        let (_server, client) = handshake(
            &acceptor,
            client_cfg(&pki, true, None),
            "broker-0.example.com",
        )
        .await;
        let error = client.expect_err("name mismatch must be refused");
        assert!(
            error.to_string().contains("not valid for name"),
            "unexpected error: {error}"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn server_name_mismatch_is_accepted_when_hostname_verification_is_off() {
    timeout(TEST_TIMEOUT, async {
        let pki = pki();
        let acceptor = acceptor(&pki, ClientAuth::None);
        let (mut server, mut client) = established(
            &acceptor,
            client_cfg(&pki, false, None),
            "broker-0.example.com",
        )
        .await;
        exchange(&mut server, &mut client)
            .await
            .expect("bytes both ways");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn untrusted_server_certificate_is_refused_even_when_hostname_verification_is_off() {
    timeout(TEST_TIMEOUT, async {
        let pki = pki();
        let rogue = pki.other_ca.server("krait-broker", 11);
        let rogue_keystore = write(pki.dir.path(), "rogue.pem", &rogue.keystore_pem());
        let acceptor = TlsAcceptor::new(ServerTlsSettings {
            keystore: KeyStore::File(rogue_keystore),
            truststore: None,
            client_auth: ClientAuth::None,
        })
        .expect("acceptor");
        let (_server, client) =
            handshake(&acceptor, client_cfg(&pki, false, None), "localhost").await;
        let error = client.expect_err("a certificate from an unknown CA must be refused");
        assert!(
            error.to_string().contains("UnknownIssuer"),
            "unexpected error: {error}"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn server_for_another_host_is_refused_with_verification_on_and_accepted_with_it_off() {
    timeout(TEST_TIMEOUT, async {
        let pki = pki();
        let elsewhere = pki.ca.server_for("broker-1.example.com", 12);
        let keystore = write(pki.dir.path(), "elsewhere.pem", &elsewhere.keystore_pem());
        let acceptor = TlsAcceptor::new(ServerTlsSettings {
            keystore: KeyStore::File(keystore),
            truststore: None,
            client_auth: ClientAuth::None,
        })
        .expect("acceptor");
        let (_server, client) =
            handshake(&acceptor, client_cfg(&pki, true, None), "localhost").await;
        assert!(client.is_err(), "localhost is not broker-1.example.com");
        let (_server, client) =
            established(&acceptor, client_cfg(&pki, false, None), "localhost").await;
        assert_eq!(server_leaf(&client), elsewhere.der);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn required_client_auth_refuses_a_client_without_a_certificate() {
    timeout(TEST_TIMEOUT, async {
        let pki = pki();
        let acceptor = acceptor(&pki, ClientAuth::Required);
        refused_by_server(
            &acceptor,
            client_cfg(&pki, true, None),
            "peer sent no certificates",
        )
        .await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn required_client_auth_refuses_a_certificate_from_another_ca() {
    timeout(TEST_TIMEOUT, async {
        let pki = pki();
        let acceptor = acceptor(&pki, ClientAuth::Required);
        let stranger = pki.other_ca.client("stranger", 20);
        refused_by_server(
            &acceptor,
            client_cfg(&pki, true, inline(&stranger)),
            "UnknownIssuer",
        )
        .await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn required_client_auth_with_a_good_certificate_exposes_its_leaf_as_peer_certificate() {
    timeout(TEST_TIMEOUT, async {
        let pki = pki();
        let acceptor = acceptor(&pki, ClientAuth::Required);
        let alice = pki.ca.client("alice", 21);
        let alice_file = write(pki.dir.path(), "alice.pem", &alice.keystore_pem());
        let config = client_cfg(&pki, true, Some(KeyStore::File(alice_file)));
        let (mut server, mut client) = established(&acceptor, config, "localhost").await;
        assert_eq!(peer_certificate(&server), Some(alice.der.clone()));
        exchange(&mut server, &mut client)
            .await
            .expect("bytes both ways");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn requested_client_auth_accepts_a_client_without_a_certificate() {
    timeout(TEST_TIMEOUT, async {
        let pki = pki();
        let acceptor = acceptor(&pki, ClientAuth::Requested);
        let (mut server, mut client) =
            established(&acceptor, client_cfg(&pki, true, None), "localhost").await;
        assert_eq!(peer_certificate(&server), None);
        exchange(&mut server, &mut client)
            .await
            .expect("bytes both ways");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn requested_client_auth_exposes_a_presented_certificate_and_refuses_a_foreign_one() {
    timeout(TEST_TIMEOUT, async {
        let pki = pki();
        let acceptor = acceptor(&pki, ClientAuth::Requested);
        let bob = pki.ca.client("bob", 22);
        let (server, _client) =
            established(&acceptor, client_cfg(&pki, true, inline(&bob)), "localhost").await;
        assert_eq!(peer_certificate(&server), Some(bob.der.clone()));

        let stranger = pki.other_ca.client("stranger", 23);
        let (server, _client) = handshake(
            &acceptor,
            client_cfg(&pki, true, inline(&stranger)),
            "localhost",
        )
        .await;
        assert!(
            server.is_err(),
            "a bad certificate is refused even when only requested"
        );
    })
    .await
    .expect("test timed out");
}
