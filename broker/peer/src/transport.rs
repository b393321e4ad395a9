//! Connections on the cluster port, both ways, under tonic's HTTP/2: plaintext TCP, or mutual
//! TLS where both sides' certificates chain to the cluster CA and name a node id.
//!
//! The key, chain and truststore files are re-read when they change, as on the Kafka listeners
//! (Kubernetes rotates Secrets in place): the server side through krait-tls's acceptor, the
//! client side by building its configuration for each new connection (brokers keep their
//! channels open, so that is rare).

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use hyper_util::rt::TokioIo;
use krait_tls::{ClientAuth, ClientTlsSettings, KeyStore, ServerTlsSettings, TlsAcceptor};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tonic::transport::server::Connected;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};
use tracing::{info, warn};

use crate::identity::node_id_of;

/// How long either side has to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the listener pauses after `accept` fails before it tries again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Why the cluster transport could not be set up or used.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cluster TLS: {0}")]
    Tls(#[from] krait_tls::TlsError),
    #[error("cluster address {address:?} is not HOST:PORT: {reason}")]
    Address { address: String, reason: String },
}

/// Cluster TLS: this broker's key and chain (its certificate names its node id) and the
/// cluster CA that every peer's certificate must chain to.
#[derive(Debug)]
pub struct ClusterTls {
    acceptor: TlsAcceptor,
    client: ClientTlsSettings,
}

impl ClusterTls {
    /// `keystore`: one PEM file with the private key and the certificate chain; `truststore`:
    /// the cluster CA certificates (PEM). Both are read now, so a bad file fails the start.
    pub fn new(keystore: PathBuf, truststore: PathBuf) -> Result<Self, TransportError> {
        let acceptor = TlsAcceptor::new(ServerTlsSettings {
            keystore: KeyStore::File(keystore.clone()),
            truststore: Some(truststore.clone()),
            client_auth: ClientAuth::Required,
        })?;
        let client = ClientTlsSettings {
            truststore: Some(truststore),
            truststore_pem: None,
            keystore: Some(KeyStore::File(keystore)),
            // Peers are reached at addresses (pod names, IPs) their certificates need not list;
            // the chain to the cluster CA and the node id are what identify a broker.
            verify_hostname: false,
        };
        krait_tls::client_config(&client)?;
        Ok(Self { acceptor, client })
    }

    /// The cluster port's acceptor: the certificate this broker serves its peers.
    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }
}

/// How this broker talks on the cluster port.
#[derive(Debug, Clone, Default)]
pub enum ClusterTransport {
    /// Plaintext, anonymous callers.
    #[default]
    Plaintext,
    /// Mutual TLS; callers are known by node id.
    Tls(Arc<ClusterTls>),
}

/// What the server knows of a connection: where it comes from and, with TLS, the node id its
/// certificate names. Tonic puts it in every request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerInfo {
    pub remote: SocketAddr,
    pub node_id: Option<i32>,
}

/// Who made a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// A plaintext cluster port: anyone who can reach it.
    Anonymous,
    /// The broker whose certificate the connection presented.
    Node(i32),
}

impl Caller {
    /// The caller of `request` (anonymous when the connection has no identity).
    pub fn of<T>(request: &Request<T>) -> Self {
        match request
            .extensions()
            .get::<PeerInfo>()
            .and_then(|p| p.node_id)
        {
            Some(id) => Self::Node(id),
            None => Self::Anonymous,
        }
    }

    /// Refuses a caller who claims, in a message, to be another node than its certificate
    /// says. Anonymous callers (plaintext) are not checked: there is nothing to check against.
    #[allow(clippy::result_large_err)]
    pub fn speaks_for(self, claimed: i32, what: &str) -> Result<(), Status> {
        match self {
            Self::Node(id) if id != claimed => Err(Status::permission_denied(format!(
                "node {id} cannot send {what} as node {claimed}"
            ))),
            _ => Ok(()),
        }
    }
}

impl ClusterTransport {
    pub fn is_tls(&self) -> bool {
        matches!(self, Self::Tls(_))
    }

    /// A channel to the cluster port at `address` (HOST:PORT) that connects on first use and
    /// reconnects after a failure.
    pub fn channel(
        &self,
        address: &str,
        connect_timeout: Duration,
        timeout: Option<Duration>,
    ) -> Result<Channel, TransportError> {
        let bad = |reason: String| TransportError::Address {
            address: address.to_string(),
            reason,
        };
        let mut endpoint = Endpoint::from_shared(format!("http://{address}"))
            .map_err(|e| bad(e.to_string()))?
            .connect_timeout(connect_timeout)
            .tcp_nodelay(true);
        if let Some(timeout) = timeout {
            endpoint = endpoint.timeout(timeout);
        }
        let transport = self.clone();
        let connector = tower::service_fn(move |uri: http::Uri| {
            let transport = transport.clone();
            async move { transport.connect(&uri).await.map(TokioIo::new) }
        });
        Ok(endpoint.connect_with_connector_lazy(connector))
    }

    async fn connect(&self, uri: &http::Uri) -> io::Result<PeerIo> {
        let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, why.to_string());
        let host = uri.host().ok_or_else(|| invalid("no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().ok_or_else(|| invalid("no port"))?;
        let stream = TcpStream::connect((host, port)).await?;
        stream.set_nodelay(true)?;
        let remote = stream.peer_addr()?;
        let Self::Tls(tls) = self else {
            return Ok(PeerIo::plain(stream, remote));
        };
        let config = krait_tls::client_config(&tls.client).map_err(io::Error::other)?;
        let handshake = krait_tls::connect(config, host, stream);
        let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        // The server must be a broker too: its certificate names a node id.
        let node_id = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .ok_or_else(|| io::Error::other("the peer presented no certificate"))
            .and_then(|leaf| {
                node_id_of(leaf).map_err(|e| io::Error::other(format!("peer certificate: {e}")))
            })?;
        Ok(PeerIo {
            remote,
            node_id: Some(node_id),
            stream: Inner::ClientTls(Box::new(stream)),
        })
    }

    /// The connections accepted on `listener`, TLS handshakes done (each in its own task, so a
    /// slow one holds up no other), for tonic's `serve_with_incoming`. A connection whose
    /// handshake fails or whose certificate names no node id is closed and logged.
    pub fn incoming(
        &self,
        listener: TcpListener,
    ) -> impl Stream<Item = io::Result<PeerIo>> + Send + 'static {
        let (tx, rx) = mpsc::channel::<io::Result<PeerIo>>(64);
        let transport = self.clone();
        tokio::spawn(async move {
            while !tx.is_closed() {
                let (stream, remote) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        warn!(%error, "cluster port: accept failed; pausing before the next");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let tx = tx.clone();
                let transport = transport.clone();
                tokio::spawn(async move {
                    match transport.accept(stream, remote).await {
                        Ok(io) => {
                            let _ = tx.send(Ok(io)).await;
                        }
                        Err(error) => {
                            info!(%remote, %error, "cluster port: connection refused")
                        }
                    }
                });
            }
        });
        futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
    }

    async fn accept(&self, stream: TcpStream, remote: SocketAddr) -> io::Result<PeerIo> {
        let Self::Tls(tls) = self else {
            return Ok(PeerIo::plain(stream, remote));
        };
        let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor.accept(stream))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        let leaf = krait_tls::peer_certificate(&stream)
            .ok_or_else(|| io::Error::other("the peer presented no certificate"))?;
        let node_id =
            node_id_of(&leaf).map_err(|e| io::Error::other(format!("peer certificate: {e}")))?;
        Ok(PeerIo {
            remote,
            node_id: Some(node_id),
            stream: Inner::ServerTls(Box::new(stream)),
        })
    }
}

/// One connection on the cluster port, either way.
#[derive(Debug)]
pub struct PeerIo {
    remote: SocketAddr,
    node_id: Option<i32>,
    stream: Inner,
}

#[derive(Debug)]
enum Inner {
    Plain(TcpStream),
    ServerTls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    ClientTls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl PeerIo {
    /// A plaintext connection: its peer has no identity.
    fn plain(stream: TcpStream, remote: SocketAddr) -> Self {
        Self {
            remote,
            node_id: None,
            stream: Inner::Plain(stream),
        }
    }
}

impl Connected for PeerIo {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        PeerInfo {
            remote: self.remote,
            node_id: self.node_id,
        }
    }
}

impl AsyncRead for PeerIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Inner::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Inner::ServerTls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Inner::ClientTls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for PeerIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().stream {
            Inner::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Inner::ServerTls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Inner::ClientTls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Inner::Plain(s) => Pin::new(s).poll_flush(cx),
            Inner::ServerTls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Inner::ClientTls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Inner::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Inner::ServerTls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Inner::ClientTls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
#[path = "transport_tests.rs"]
mod tests;
