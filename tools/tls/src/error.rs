//! The errors of this crate. Each names the setting or file and the step that failed, so an
//! operator reading a broker log knows which Secret to fix.

use std::path::PathBuf;

/// Why a TLS configuration could not be built or reloaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read (missing, unreadable).
    #[error("reading {what} file {}: {source}", path.display())]
    Read {
        /// The setting the file belongs to, e.g. `ssl.keystore.location`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A PEM block could not be parsed (truncated, bad base64).
    #[error("parsing {what} ({origin}) as PEM: {detail}")]
    Pem {
        /// What was being parsed, e.g. `private key` or `certificate chain`.
        what: &'static str,
        /// Where it came from: a file path or an inline setting.
        origin: String,
        /// The parser's complaint.
        detail: String,
    },
    /// No private key PEM block was found.
    #[error(
        "no private key in {origin}: expected a PEM block BEGIN PRIVATE KEY, BEGIN RSA PRIVATE KEY \
         or BEGIN EC PRIVATE KEY"
    )]
    NoPrivateKey {
        /// Where the key was looked for.
        origin: String,
    },
    /// The private key is encrypted; `ssl.key.password` is not supported.
    #[error(
        "the private key in {origin} is encrypted (BEGIN ENCRYPTED PRIVATE KEY); ssl.key.password \
         is not supported, provide an unencrypted PKCS#8 key"
    )]
    EncryptedPrivateKey {
        /// Where the key was found.
        origin: String,
    },
    /// No certificate PEM block was found.
    #[error(
        "no certificate in {what} ({origin}): expected at least one PEM block BEGIN CERTIFICATE"
    )]
    NoCertificate {
        /// What was being loaded, e.g. `certificate chain` or `truststore`.
        what: &'static str,
        /// Where the certificates were looked for.
        origin: String,
    },
    /// The private key does not belong to the first certificate of the chain.
    #[error(
        "the private key ({key_origin}) does not match the leaf certificate of the chain \
         ({chain_origin})"
    )]
    KeyMismatch {
        /// Where the key came from.
        key_origin: String,
        /// Where the chain came from.
        chain_origin: String,
    },
    /// Client authentication was asked for without CA certificates to check clients against.
    #[error(
        "ssl.client.auth={client_auth} needs ssl.truststore.location (the CA certificates that sign client certificates)"
    )]
    MissingServerTruststore {
        /// The configured `ssl.client.auth` value.
        client_auth: &'static str,
    },
    /// A client configuration has neither a truststore file nor inline CA certificates.
    #[error(
        "client TLS needs a truststore (ssl.truststore.location or inline CA certificates); none was given"
    )]
    MissingClientTruststore,
    /// An unknown `ssl.client.auth` value.
    #[error("invalid ssl.client.auth value {0:?}: expected required, requested or none")]
    InvalidClientAuth(String),
    /// An unknown `ssl.endpoint.identification.algorithm` value.
    #[error(
        "invalid ssl.endpoint.identification.algorithm value {0:?}: expected https or an empty string"
    )]
    InvalidEndpointIdentification(String),
    /// A CA certificate of a truststore was rejected.
    #[error("adding CA certificate #{index} of {origin} to the trust roots: {source}")]
    BadTrustAnchor {
        /// Where the truststore came from.
        origin: String,
        /// Position of the rejected certificate in the file, from 0.
        index: usize,
        /// rustls's reason.
        source: rustls::Error,
    },
    /// A client or server certificate verifier could not be built from the truststore.
    #[error("building the certificate verifier from {origin}: {detail}")]
    Verifier {
        /// Where the truststore came from.
        origin: String,
        /// rustls's reason.
        detail: String,
    },
    /// Any other rustls failure, with the step that hit it.
    #[error("{step}: {source}")]
    Rustls {
        /// What was being done, e.g. `loading the server key and chain`.
        step: &'static str,
        /// rustls's reason.
        source: rustls::Error,
    },
}
