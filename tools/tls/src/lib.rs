//! rustls configurations from Kafka's PEM settings (`ssl.keystore.*`, `ssl.truststore.*`,
//! `ssl.client.auth`): a server acceptor that re-reads its files when they change (Kubernetes
//! rotates Secrets in place) without touching open connections, and a client configuration for
//! the CLI and the tests.
//!
//! Every configuration is built with rustls's ring provider explicitly, never a process-wide
//! default, and allows TLS 1.2 and 1.3 (Kafka's default `ssl.enabled.protocols`).
//!
//! - [`TlsAcceptor`] — the broker's listener side, from [`ServerTlsSettings`]; see
//!   [`server`] for how and when files are re-read.
//! - [`client_config`] and [`connect`] — the client side, from [`ClientTlsSettings`].
//! - [`peer_certificate`] — the client certificate of an accepted connection, for mTLS
//!   principals.

mod client;
mod error;
mod pem;
pub mod server;

pub use client::{ClientTlsSettings, client_config, connect};
pub use error::TlsError;
pub use server::{
    ClientAuth, KeyStore, RELOAD_CHECK_INTERVAL, ServerTlsSettings, TlsAcceptor, peer_certificate,
};
