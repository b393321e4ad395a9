//! Reading PEM material — the broker's key and chain, and CA certificates — from files or
//! inline text, with errors that name the file or setting. Files are read whole, once, so a key
//! and chain kept in one file are always taken from the same version of that file.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::TlsError;
use crate::server::KeyStore;

/// Reads a whole file, naming the setting it belongs to on failure.
pub(crate) fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// How an origin is written in error messages.
pub(crate) fn file_origin(what: &str, path: &Path) -> String {
    format!("{what} {}", path.display())
}

fn pem_error(what: &'static str, origin: &str, error: pem::Error) -> TlsError {
    TlsError::Pem {
        what,
        origin: origin.to_owned(),
        detail: error.to_string(),
    }
}

/// Every certificate in `bytes`, in order; at least one.
pub(crate) fn parse_certificates(
    bytes: &[u8],
    what: &'static str,
    origin: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(what, origin, e))?;
    if certificates.is_empty() {
        return Err(TlsError::NoCertificate {
            what,
            origin: origin.to_owned(),
        });
    }
    Ok(certificates)
}

/// The first private key in `bytes` (PKCS#8, PKCS#1 or SEC1).
pub(crate) fn parse_private_key(
    bytes: &[u8],
    origin: &str,
) -> Result<PrivateKeyDer<'static>, TlsError> {
    match PrivateKeyDer::from_pem_slice(bytes) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => {
            let encrypted = b"-----BEGIN ENCRYPTED PRIVATE KEY-----";
            if bytes.windows(encrypted.len()).any(|w| w == encrypted) {
                Err(TlsError::EncryptedPrivateKey {
                    origin: origin.to_owned(),
                })
            } else {
                Err(TlsError::NoPrivateKey {
                    origin: origin.to_owned(),
                })
            }
        }
        Err(e) => Err(pem_error("private key", origin, e)),
    }
}

/// Loads a key store and checks that the key belongs to the leaf of the chain.
pub(crate) fn load_certified_key(
    keystore: &KeyStore,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let (chain, key, key_origin, chain_origin) = match keystore {
        KeyStore::File(path) => {
            let origin = file_origin("ssl.keystore.location", path);
            let bytes = read_file("ssl.keystore.location", path)?;
            let key = parse_private_key(&bytes, &origin)?;
            let chain = parse_certificates(&bytes, "certificate chain", &origin)?;
            (chain, key, origin.clone(), origin)
        }
        KeyStore::Inline { key_pem, chain_pem } => {
            let key_origin = "inline ssl.keystore.key".to_owned();
            let chain_origin = "inline ssl.keystore.certificate.chain".to_owned();
            let key = parse_private_key(key_pem.as_bytes(), &key_origin)?;
            let chain =
                parse_certificates(chain_pem.as_bytes(), "certificate chain", &chain_origin)?;
            (chain, key, key_origin, chain_origin)
        }
    };
    match CertifiedKey::from_der(chain, key, provider) {
        Ok(certified) => Ok(Arc::new(certified)),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::KeyMismatch {
                key_origin,
                chain_origin,
            })
        }
        Err(source) => Err(TlsError::Rustls {
            step: "loading the private key and certificate chain",
            source,
        }),
    }
}

/// Trust roots from PEM CA certificates; `origin` names where `bytes` came from.
pub(crate) fn parse_roots(bytes: &[u8], origin: &str) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for (index, certificate) in parse_certificates(bytes, "truststore", origin)?
        .into_iter()
        .enumerate()
    {
        roots
            .add(certificate)
            .map_err(|source| TlsError::BadTrustAnchor {
                origin: origin.to_owned(),
                index,
                source,
            })?;
    }
    Ok(roots)
}

/// Trust roots from a PEM file of CA certificates.
pub(crate) fn load_roots_file(path: &Path) -> Result<RootCertStore, TlsError> {
    let bytes = read_file("ssl.truststore.location", path)?;
    parse_roots(&bytes, &file_origin("ssl.truststore.location", path))
}
