//! Shared test fixtures: a throwaway PKI made with rcgen, PEM files in a temp dir, and a
//! loopback handshake between a `TlsAcceptor` and a client configuration.
#![allow(dead_code)] // each test binary uses a different subset

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use krait_tls::{TlsAcceptor, connect};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub type ServerStream = tokio_rustls::server::TlsStream<TcpStream>;
pub type ClientStream = tokio_rustls::client::TlsStream<TcpStream>;

/// Every async test finishes within this.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A certificate authority.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A leaf certificate and its key.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

impl Ca {
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("CA self-signed");
        Self { cert, key }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    fn leaf(&self, cn: &str, sans: &[&str], serial: u64, usage: ExtendedKeyUsagePurpose) -> Leaf {
        let sans: Vec<String> = sans.iter().map(|s| (*s).to_owned()).collect();
        let params = CertificateParams::new(sans).expect("leaf params");
        self.leaf_from(params, cn, serial, usage)
    }

    fn leaf_from(
        &self,
        mut params: CertificateParams,
        cn: &str,
        serial: u64,
        usage: ExtendedKeyUsagePurpose,
    ) -> Leaf {
        let key = KeyPair::generate().expect("leaf key");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.serial_number = Some(SerialNumber::from(serial));
        params.extended_key_usages = vec![usage];
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("leaf signed by CA");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    /// A broker certificate for `localhost` and 127.0.0.1.
    pub fn server(&self, cn: &str, serial: u64) -> Leaf {
        self.leaf(
            cn,
            &["localhost", "127.0.0.1"],
            serial,
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A broker certificate for `localhost` that expires at the start of this day (UTC).
    pub fn server_until(&self, cn: &str, serial: u64, (year, month, day): (i32, u8, u8)) -> Leaf {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        params.not_after = rcgen::date_time_ymd(year, month, day);
        self.leaf_from(params, cn, serial, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A broker certificate for another host only.
    pub fn server_for(&self, host: &str, serial: u64) -> Leaf {
        self.leaf(host, &[host], serial, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate.
    pub fn client(&self, cn: &str, serial: u64) -> Leaf {
        self.leaf(cn, &[], serial, ExtendedKeyUsagePurpose::ClientAuth)
    }
}

impl Leaf {
    /// Key and chain in one PEM text, as `ssl.keystore.location` holds them.
    pub fn keystore_pem(&self) -> String {
        format!("{}{}", self.key_pem, self.cert_pem)
    }
}

/// Writes `contents` to `dir/name` (truncating in place if it exists).
pub fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write test file");
    path
}

/// Runs one handshake over loopback: the acceptor on one side, `config` connecting to
/// `server_name` on the other. Both results are returned; with TLS 1.3 a client may finish its
/// side before the server rejects its certificate.
pub async fn handshake(
    acceptor: &TlsAcceptor,
    config: Arc<rustls::ClientConfig>,
    server_name: &str,
) -> (io::Result<ServerStream>, io::Result<ClientStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let server = async {
        let (tcp, _) = listener.accept().await?;
        acceptor.accept(tcp).await
    };
    let client = async {
        let tcp = TcpStream::connect(addr).await?;
        connect(config, server_name, tcp).await
    };
    tokio::join!(server, client)
}

/// A handshake that must succeed on both sides.
pub async fn established(
    acceptor: &TlsAcceptor,
    config: Arc<rustls::ClientConfig>,
    server_name: &str,
) -> (ServerStream, ClientStream) {
    let (server, client) = handshake(acceptor, config, server_name).await;
    (
        server.expect("server handshake"),
        client.expect("client handshake"),
    )
}

/// A handshake that must succeed on both sides, after which bytes must flow both ways.
pub async fn established_with_exchange(
    acceptor: &TlsAcceptor,
    config: Arc<rustls::ClientConfig>,
    server_name: &str,
) -> (ServerStream, ClientStream) {
    let (mut server, mut client) = established(acceptor, config, server_name).await;
    exchange(&mut server, &mut client)
        .await
        .expect("bytes both ways");
    (server, client)
}

/// A handshake the client must refuse, with an error containing `expected`.
pub async fn refused_by_client(
    acceptor: &TlsAcceptor,
    config: Arc<rustls::ClientConfig>,
    server_name: &str,
    expected: &str,
) {
    let (_server, client) = handshake(acceptor, config, server_name).await;
    let error = client.expect_err("the client must refuse this server");
    assert!(
        error.to_string().contains(expected),
        "unexpected error: {error}"
    );
}

/// Sends bytes client→server and server→client.
pub async fn exchange(server: &mut ServerStream, client: &mut ClientStream) -> io::Result<()> {
    client.write_all(b"ping").await?;
    client.flush().await?;
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf).await?;
    assert_eq!(&buf, b"ping");
    server.write_all(b"pong").await?;
    server.flush().await?;
    client.read_exact(&mut buf).await?;
    assert_eq!(&buf, b"pong");
    Ok(())
}

/// Whether a client that finished its side of the handshake can actually use the connection
/// (a server that rejected the client's certificate closes it with an alert).
pub async fn client_can_talk(client: &mut ClientStream) -> bool {
    if client.write_all(b"ping").await.is_err() || client.flush().await.is_err() {
        return false;
    }
    let mut buf = [0u8; 1];
    matches!(client.read(&mut buf).await, Ok(n) if n > 0)
}

/// A handshake the server must refuse with an error containing `expected`; a client that
/// finished its side first (TLS 1.3) must find the connection dead.
pub async fn refused_by_server(
    acceptor: &TlsAcceptor,
    config: Arc<rustls::ClientConfig>,
    expected: &str,
) {
    let (server, client) = handshake(acceptor, config, "localhost").await;
    let error = server.expect_err("the server must refuse this client");
    assert!(
        error.to_string().contains(expected),
        "unexpected error: {error}"
    );
    if let Ok(mut client) = client {
        assert!(
            !client_can_talk(&mut client).await,
            "the connection must be dead"
        );
    }
}

/// The leaf certificate the server presented to a client.
pub fn server_leaf(client: &ClientStream) -> CertificateDer<'static> {
    client
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .cloned()
        .expect("server presented a certificate")
}
