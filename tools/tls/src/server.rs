//! The broker side: Kafka's `ssl.keystore.*`, `ssl.truststore.location` and `ssl.client.auth`
//! turned into a rustls server configuration, and an acceptor that swaps that configuration
//! when the files behind it change.
//!
//! Reloading is checked on [`TlsAcceptor::accept`], at most once per second
//! ([`RELOAD_CHECK_INTERVAL`]), or on demand with [`TlsAcceptor::reload_if_changed`]; there is no
//! background task. The check runs synchronously inside `accept` (it stats, and on a change
//! reads, a few small files), so no timer or task outlives the acceptor. A check costs one `stat`
//! per watched file; the files are read again only when a modification time, size (or, on Unix,
//! inode) differs from the last successful load. A reload that fails — a half-written file, a key
//! that does not yet match the new certificate — logs a warning (once per distinct failed state)
//! and keeps the previous configuration; because the last good stamps are kept, the next check
//! tries again, so a rotation written as two files settles once both are in place.
//! Connections already established keep the configuration they were accepted with.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::SingleCertAndKey;
use rustls_pki_types::CertificateDer;
use tokio::net::TcpStream;

use crate::TlsError;
use crate::pem::{file_origin, load_certified_key, load_roots_file};

/// How often, at most, [`TlsAcceptor::accept`] looks at the files for changes.
pub const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Where the broker's own key and certificate chain come from (Kafka: `ssl.keystore.type=PEM`
/// with `ssl.keystore.location` = one PEM file holding the private key and the chain; or
/// `ssl.keystore.key` + `ssl.keystore.certificate.chain` given inline as PEM text).
///
/// The chain starts with the leaf. The key must be unencrypted (PKCS#8, PKCS#1 or SEC1).
/// `Debug` does not print the inline key.
#[derive(Clone, PartialEq, Eq)]
pub enum KeyStore {
    /// One PEM file with the private key and the certificate chain.
    File(PathBuf),
    /// The private key and the certificate chain as PEM text.
    Inline {
        /// `ssl.keystore.key`.
        key_pem: String,
        /// `ssl.keystore.certificate.chain`.
        chain_pem: String,
    },
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Inline { chain_pem, .. } => f
                .debug_struct("Inline")
                .field("key_pem", &"<redacted>")
                .field("chain_pem", chain_pem)
                .finish(),
        }
    }
}

/// `ssl.client.auth`: whether the broker asks connecting clients for a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    #[default]
    None,
    /// A certificate is asked for; a client without one is still accepted, one with a bad one
    /// is refused.
    Requested,
    /// A certificate signed by the truststore is mandatory.
    Required,
}

impl ClientAuth {
    /// Parses `required`, `requested` or `none`, ignoring case and surrounding blanks.
    pub fn parse(value: &str) -> Result<Self, TlsError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "requested" => Ok(Self::Requested),
            "required" => Ok(Self::Required),
            _ => Err(TlsError::InvalidClientAuth(value.to_owned())),
        }
    }

    /// The Kafka spelling of this value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Requested => "requested",
            Self::Required => "required",
        }
    }
}

/// A TLS listener's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsSettings {
    /// The broker's key and certificate chain.
    pub keystore: KeyStore,
    /// `ssl.truststore.location` (PEM CA certificates) — needed for `Requested`/`Required`;
    /// ignored (neither read nor watched) with `ClientAuth::None`.
    pub truststore: Option<PathBuf>,
    /// `ssl.client.auth`.
    pub client_auth: ClientAuth,
}

impl ServerTlsSettings {
    /// The files a configuration is built from, with the setting each belongs to.
    fn watched_files(&self) -> Vec<&Path> {
        let mut files = Vec::new();
        if let KeyStore::File(path) = &self.keystore {
            files.push(path.as_path());
        }
        if self.client_auth != ClientAuth::None
            && let Some(path) = &self.truststore
        {
            files.push(path.as_path());
        }
        files
    }

    /// Reads the files and builds a server configuration, with its leaf certificate's expiry.
    fn build(&self, provider: &Arc<CryptoProvider>) -> Result<Loaded, TlsError> {
        let truststore =
            match self.client_auth {
                ClientAuth::None => None,
                auth => Some(self.truststore.as_deref().ok_or(
                    TlsError::MissingServerTruststore {
                        client_auth: auth.as_str(),
                    },
                )?),
            };
        let certified = load_certified_key(&self.keystore, provider)?;
        let not_after = certified.cert.first().and_then(not_after);
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|source| TlsError::Rustls {
                step: "choosing the server TLS protocol versions",
                source,
            })?;
        let builder = match truststore {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let roots = load_roots_file(path)?;
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
                let verifier = if self.client_auth == ClientAuth::Requested {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                let verifier = verifier.build().map_err(|e| TlsError::Verifier {
                    origin: file_origin("ssl.truststore.location", path),
                    detail: e.to_string(),
                })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config =
            Arc::new(builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(certified))));
        Ok(Loaded { config, not_after })
    }
}

/// A server configuration and when its certificate expires.
struct Loaded {
    config: Arc<ServerConfig>,
    not_after: Option<i64>,
}

/// When a DER certificate expires (Unix time), if it parses.
fn not_after(der: &CertificateDer<'_>) -> Option<i64> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    X509Certificate::from_der(der)
        .ok()
        .map(|(_, cert)| cert.validity().not_after.timestamp())
}

/// What a file looked like when it was last loaded; `None` fields when it could not be stat'ed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: Option<u64>,
    inode: Option<u64>,
}

impl FileStamp {
    fn of(path: &Path) -> Self {
        match std::fs::metadata(path) {
            Ok(meta) => Self {
                modified: meta.modified().ok(),
                len: Some(meta.len()),
                inode: inode(&meta),
            },
            Err(_) => Self {
                modified: None,
                len: None,
                inode: None,
            },
        }
    }
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    Some(meta.ino())
}

#[cfg(not(unix))]
fn inode(_meta: &std::fs::Metadata) -> Option<u64> {
    None
}

struct State {
    config: Arc<ServerConfig>,
    /// When the leaf certificate of `config` expires (Unix time).
    not_after: Option<i64>,
    /// Stamps of the files behind `config`.
    stamps: Vec<FileStamp>,
    /// Stamps of the last failed reload, so its warning is logged once.
    failed: Option<Vec<FileStamp>>,
    last_check: Instant,
    /// How many configurations have been loaded (1 after `new`).
    generation: u64,
}

struct Inner {
    settings: ServerTlsSettings,
    provider: Arc<CryptoProvider>,
    state: Mutex<State>,
}

/// Accepts TLS connections on a listener, re-reading the key, chain and truststore files when
/// they change (see the module documentation for when and how). Cheap to clone: clones share
/// the configuration.
#[derive(Clone)]
pub struct TlsAcceptor {
    inner: Arc<Inner>,
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let generation = self.lock().generation;
        f.debug_struct("TlsAcceptor")
            .field("settings", &self.inner.settings)
            .field("generation", &generation)
            .finish()
    }
}

impl TlsAcceptor {
    /// Loads the configuration. Fails on a missing or unreadable file, a keystore without a
    /// private key or without certificates, a key that does not match the leaf certificate, and
    /// `Requested`/`Required` client auth without a truststore.
    pub fn new(settings: ServerTlsSettings) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let stamps = stamps(&settings);
        let loaded = settings.build(&provider)?;
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                provider,
                state: Mutex::new(State {
                    config: loaded.config,
                    not_after: loaded.not_after,
                    stamps,
                    failed: None,
                    last_check: Instant::now(),
                    generation: 1,
                }),
            }),
        })
    }

    /// Completes the server side of the handshake with the current configuration, after
    /// checking the files if the last check is older than [`RELOAD_CHECK_INTERVAL`].
    pub async fn accept(
        &self,
        stream: TcpStream,
    ) -> std::io::Result<tokio_rustls::server::TlsStream<TcpStream>> {
        let config = {
            let due = self.lock().last_check.elapsed() >= RELOAD_CHECK_INTERVAL;
            if due {
                // A failure is logged inside and the previous configuration is kept.
                let _ = self.reload_if_changed();
            }
            self.lock().config.clone()
        };
        tokio_rustls::TlsAcceptor::from(config).accept(stream).await
    }

    /// Checks the files now. `Ok(true)`: they changed and the new configuration is in use;
    /// `Ok(false)`: nothing changed; `Err`: they changed but could not be loaded, so the previous
    /// configuration stays in use (and the next check tries again).
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let mut state = self.lock();
        state.last_check = Instant::now();
        let stamps = stamps(&self.inner.settings);
        if stamps == state.stamps {
            state.failed = None;
            return Ok(false);
        }
        match self.inner.settings.build(&self.inner.provider) {
            Ok(loaded) => {
                state.config = loaded.config;
                state.not_after = loaded.not_after;
                state.stamps = stamps;
                state.failed = None;
                state.generation += 1;
                tracing::info!(
                    generation = state.generation,
                    "reloaded the TLS key, certificate chain and truststore"
                );
                Ok(true)
            }
            Err(error) => {
                if state.failed.as_ref() != Some(&stamps) {
                    tracing::warn!(
                        %error,
                        "TLS files changed but cannot be loaded; keeping the previous configuration"
                    );
                    state.failed = Some(stamps);
                }
                Err(error)
            }
        }
    }

    /// The configuration new connections are accepted with.
    pub fn current_config(&self) -> Arc<ServerConfig> {
        self.lock().config.clone()
    }

    /// When the certificate new connections are served expires (Unix time): the leaf of the
    /// chain last loaded. `None` when it does not parse as X.509 (rustls would refuse it first).
    pub fn certificate_not_after(&self) -> Option<i64> {
        self.lock().not_after
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn stamps(settings: &ServerTlsSettings) -> Vec<FileStamp> {
    settings
        .watched_files()
        .into_iter()
        .map(FileStamp::of)
        .collect()
}

/// The client certificate a TLS connection presented (leaf, DER), if any.
pub fn peer_certificate(
    stream: &tokio_rustls::server::TlsStream<TcpStream>,
) -> Option<CertificateDer<'static>> {
    stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .cloned()
}
