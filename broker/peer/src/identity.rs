//! A broker's node id, from its certificate.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The URI subject alternative name that carries a broker's node id: `urn:krait:node:2`.
pub const NODE_URI_PREFIX: &str = "urn:krait:node:";

/// Why a certificate names no node id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("the certificate cannot be parsed: {0}")]
    Unparsable(String),
    #[error("the certificate has no subject alternative name {NODE_URI_PREFIX}<node id>")]
    Missing,
    #[error("the certificate names several node ids: {0:?}")]
    Ambiguous(Vec<i32>),
    #[error("{0:?} is not {NODE_URI_PREFIX}<node id>")]
    Malformed(String),
}

/// The node id a broker's certificate (DER) names in its `urn:krait:node:<id>` URI SAN.
pub fn node_id_of(der: &[u8]) -> Result<i32, IdentityError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| IdentityError::Unparsable(e.to_string()))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| IdentityError::Unparsable(e.to_string()))?;
    let mut ids = Vec::new();
    for name in san.iter().flat_map(|san| san.value.general_names.iter()) {
        if let GeneralName::URI(uri) = name
            && let Some(id) = uri.strip_prefix(NODE_URI_PREFIX)
        {
            let id: i32 = id
                .parse()
                .ok()
                .filter(|id: &i32| *id >= 0)
                .ok_or_else(|| IdentityError::Malformed(uri.to_string()))?;
            ids.push(id);
        }
    }
    ids.sort_unstable();
    ids.dedup();
    match ids.as_slice() {
        [] => Err(IdentityError::Missing),
        [id] => Ok(*id),
        _ => Err(IdentityError::Ambiguous(ids)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair, SanType};

    fn cert_with(sans: Vec<SanType>) -> Vec<u8> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = sans;
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn uri(s: &str) -> SanType {
        SanType::URI(s.try_into().unwrap())
    }

    #[test]
    fn the_node_id_comes_from_the_one_krait_node_uri() {
        let der = cert_with(vec![
            SanType::DnsName("broker-2.krait".try_into().unwrap()),
            uri("urn:krait:node:2"),
            uri("https://example.com/"),
        ]);
        assert_eq!(node_id_of(&der), Ok(2));
    }

    #[test]
    fn certificates_without_one_valid_node_id_are_refused() {
        assert_eq!(
            node_id_of(&cert_with(vec![SanType::DnsName(
                "broker-2".try_into().unwrap()
            )])),
            Err(IdentityError::Missing)
        );
        assert_eq!(
            node_id_of(&cert_with(vec![
                uri("urn:krait:node:1"),
                uri("urn:krait:node:2")
            ])),
            Err(IdentityError::Ambiguous(vec![1, 2]))
        );
        for bad in ["urn:krait:node:-1", "urn:krait:node:x", "urn:krait:node:"] {
            assert_eq!(
                node_id_of(&cert_with(vec![uri(bad)])),
                Err(IdentityError::Malformed(bad.into())),
                "{bad}"
            );
        }
        assert!(matches!(
            node_id_of(b"not a certificate"),
            Err(IdentityError::Unparsable(_))
        ));
    }
}
