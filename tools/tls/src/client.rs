//! The client side, for the CLI, the operator and the tests: trust roots from a PEM file or
//! text, an optional client key and chain, and Kafka's `ssl.endpoint.identification.algorithm`
//! (`https` checks the server name; empty checks only the chain, never the name).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::sign::SingleCertAndKey;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;

use crate::TlsError;
use crate::pem::{load_certified_key, load_roots_file, parse_roots};
use crate::server::KeyStore;

/// A client configuration: trust the CA certificates of `truststore` and/or `truststore_pem`
/// (at least one), and optionally present a client key and chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTlsSettings {
    /// `ssl.truststore.location`: a PEM file of CA certificates.
    pub truststore: Option<PathBuf>,
    /// `ssl.truststore.certificates`: CA certificates as PEM text.
    pub truststore_pem: Option<String>,
    /// The client's own key and chain, for brokers with `ssl.client.auth`.
    pub keystore: Option<KeyStore>,
    /// `ssl.endpoint.identification.algorithm`: `https` checks the server name (the default,
    /// `true`), `""` does not (`false`); see [`ClientTlsSettings::endpoint_identification`].
    pub verify_hostname: bool,
}

impl Default for ClientTlsSettings {
    /// No trust roots, no client certificate, and — as in Kafka — the server name checked.
    fn default() -> Self {
        Self {
            truststore: None,
            truststore_pem: None,
            keystore: None,
            verify_hostname: true,
        }
    }
}

impl ClientTlsSettings {
    /// Parses `ssl.endpoint.identification.algorithm` into `verify_hostname`: `https` (any case)
    /// is `true`, an empty or blank value is `false`.
    pub fn endpoint_identification(value: &str) -> Result<bool, TlsError> {
        let value_trimmed = value.trim();
        if value_trimmed.is_empty() {
            Ok(false)
        } else if value_trimmed.eq_ignore_ascii_case("https") {
            Ok(true)
        } else {
            Err(TlsError::InvalidEndpointIdentification(value.to_owned()))
        }
    }
}

/// Builds a rustls client configuration (ring provider, TLS 1.2 and 1.3).
pub fn client_config(settings: &ClientTlsSettings) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    if settings.truststore.is_none() && settings.truststore_pem.is_none() {
        return Err(TlsError::MissingClientTruststore);
    }
    if let Some(path) = &settings.truststore {
        roots.roots.extend(load_roots_file(path)?.roots);
    }
    if let Some(pem) = &settings.truststore_pem {
        roots
            .roots
            .extend(parse_roots(pem.as_bytes(), "inline truststore certificates")?.roots);
    }
    let origin = || match &settings.truststore {
        Some(path) => crate::pem::file_origin("ssl.truststore.location", path),
        None => "inline truststore certificates".to_owned(),
    };
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError::Verifier {
            origin: origin(),
            detail: e.to_string(),
        })?;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Rustls {
            step: "choosing the client TLS protocol versions",
            source,
        })?;
    let builder = if settings.verify_hostname {
        builder.with_webpki_verifier(webpki)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnlyVerifier { inner: webpki }))
    };
    let config = match &settings.keystore {
        None => builder.with_no_client_auth(),
        Some(keystore) => {
            let certified = load_certified_key(keystore, &provider)?;
            builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified)))
        }
    };
    Ok(Arc::new(config))
}

/// Connects and completes the handshake; `server_name` is a DNS name or an IP address.
pub async fn connect(
    config: Arc<ClientConfig>,
    server_name: &str,
    stream: TcpStream,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let name = ServerName::try_from(server_name.to_owned()).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("TLS server name {server_name:?} is neither a DNS name nor an IP: {e}"),
        )
    })?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await
}

/// Verifies the server's chain against the trust roots like [`WebPkiServerVerifier`] (which
/// checks the name last), but accepts a certificate that is not valid for the server name:
/// Kafka's empty `ssl.endpoint.identification.algorithm`.
struct ChainOnlyVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl fmt::Debug for ChainOnlyVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainOnlyVerifier").finish_non_exhaustive()
    }
}

impl ServerCertVerifier for ChainOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
