//! The clients CA and the certificates it signs for `tls` KafkaUsers: the CA's key stays in the
//! operator's Secret, the brokers' mutual-TLS listeners trust its bundle, and each user
//! certificate names the user in its subject's CN alone, which the brokers'
//! `ssl.principal.mapping.rules` turn into `User:<name>`. The CA is renewed trust-first like
//! the cluster CA (`rotation`). Making and checking certificates only; when to make one is
//! the callers'.

use rcgen::{
    Certificate, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
    KeyUsagePurpose,
};

use super::cert::{
    CaMaterial, CertError, CertInfo, ca_params_named, certificates, generate, info, signer_with,
    validity,
};
use crate::names::ClusterNames;

/// The common name of the clients CA of `generation`; the first (0) carries no number, as
/// before clients CAs were renewed.
pub fn clients_ca_common_name(names: &ClusterNames, generation: i64) -> String {
    let base = format!("{}/{} clients CA", names.namespace, names.cluster);
    match generation {
        0 => base,
        n => format!("{base} v{n}"),
    }
}

/// The clients CA's subject.
fn clients_ca_params(names: &ClusterNames, generation: i64) -> CertificateParams {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "krait.dev");
    dn.push(
        DnType::CommonName,
        clients_ca_common_name(names, generation),
    );
    ca_params_named(dn)
}

/// A new clients CA of `generation` with a fresh key (ECDSA P-256), valid `validity_days`
/// from `now`.
pub fn new_clients_ca(
    names: &ClusterNames,
    generation: i64,
    now: i64,
    validity_days: i32,
) -> Result<CaMaterial, CertError> {
    let key = KeyPair::generate().map_err(generate("the clients CA key"))?;
    let mut params = clients_ca_params(names, generation);
    validity(&mut params, now, validity_days)?;
    let cert = params
        .self_signed(&key)
        .map_err(generate("the clients CA certificate"))?;
    Ok(CaMaterial {
        generation,
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// The stored clients CA ready to sign; `None` when its key or certificate is not this
/// cluster's clients CA.
pub fn clients_signer(names: &ClusterNames, ca: &CaMaterial) -> Option<(Certificate, KeyPair)> {
    signer_with(ca, clients_ca_params(names, ca.generation))
}

/// A user certificate and its key (PEM each): subject `CN=<user>`, client authentication only,
/// valid `validity_days` from `now`, signed by `signer`.
pub fn user_certificate(
    user: &str,
    signer: &(Certificate, KeyPair),
    now: i64,
    validity_days: i32,
) -> Result<(String, String), CertError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, user);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, now, validity_days)?;
    let key = KeyPair::generate().map_err(generate("a user key"))?;
    let cert = params
        .signed_by(&key, &signer.0, &signer.1)
        .map_err(generate("a user certificate"))?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// The first certificate of a PEM text, read.
pub fn certificate_info(pem: &str) -> Option<CertInfo> {
    info(certificates(pem).first()?)
}

/// Whether `cert_pem` is a certificate for `user` that `ca_pem` signed and that is not yet
/// due for renewal: otherwise a new one is issued.
pub fn user_certificate_current(
    cert_pem: &str,
    ca_pem: &str,
    user: &str,
    now: i64,
    renewal_days: i32,
) -> bool {
    let (Some(cert), Some(ca)) = (certificate_info(cert_pem), certificate_info(ca_pem)) else {
        return false;
    };
    cert.issued_by(&ca)
        && cert.common_name.as_deref() == Some(user)
        && !cert.needs_renewal(now, renewal_days)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn a_user_certificate_names_the_user_and_is_signed_by_the_clients_ca() {
        let names = ClusterNames::new("main", "kafka");
        let now = 1_800_000_000;
        let ca = new_clients_ca(&names, 0, now, 365).unwrap();
        let signer = clients_signer(&names, &ca).expect("the stored CA signs");
        let (cert, key) = user_certificate("orders-app", &signer, now, 30).unwrap();
        assert!(key.contains("PRIVATE KEY"));
        let parsed = certificate_info(&cert).unwrap();
        assert_eq!(parsed.common_name.as_deref(), Some("orders-app"));
        assert!(!parsed.is_ca);
        assert!(user_certificate_current(
            &cert,
            &ca.cert_pem,
            "orders-app",
            now,
            7
        ));
        assert!(!user_certificate_current(
            &cert,
            &ca.cert_pem,
            "someone",
            now,
            7
        ));
        assert!(
            !user_certificate_current(&cert, &ca.cert_pem, "orders-app", now + 24 * DAY, 7),
            "inside the renewal window"
        );
        let other = new_clients_ca(&names, 0, now, 365).unwrap();
        assert!(
            !user_certificate_current(&cert, &other.cert_pem, "orders-app", now, 7),
            "another CA's"
        );
        let elsewhere = ClusterNames::new("other", "kafka");
        assert!(clients_signer(&elsewhere, &ca).is_none());
    }
}
