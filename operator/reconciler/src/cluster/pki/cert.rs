//! Certificates of the cluster CA: making them (rcgen) and reading back what the Secrets hold
//! (x509-parser). What a certificate must say lives here; when one is made or renewed is
//! decided in `pki/mod.rs`.

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use std::net::IpAddr;

use time::OffsetDateTime;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::pem::Pem;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::names::ClusterNames;

/// The URI subject alternative name that names a broker's node id (krait-peer's
/// `NODE_URI_PREFIX`).
pub const NODE_URI_PREFIX: &str = "urn:krait:node:";
/// How far back a new certificate's validity starts, for clocks a little behind ours.
const BACKDATE_SECONDS: i64 = 3600;
const SECONDS_PER_DAY: i64 = 86_400;

/// Why a certificate could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("generating {what}: {source}")]
    Generate {
        what: &'static str,
        source: rcgen::Error,
    },
    #[error("validity of {days} days from {now} is out of range")]
    Validity { now: i64, days: i32 },
    #[error("the CA just generated cannot be read back to sign with")]
    UnusableNewCa,
}

/// A CA as stored: its generation (0 for the first), certificate and private key (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaMaterial {
    pub generation: i64,
    pub cert_pem: String,
    pub key_pem: String,
}

/// What the planner needs to know of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject and issuer, DER: a certificate is signed by a CA when its issuer is the CA's
    /// subject (every CA generation has its own subject).
    pub subject: Vec<u8>,
    pub issuer: Vec<u8>,
    pub common_name: Option<String>,
    /// Validity in Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    pub dns_names: Vec<String>,
    /// IP address subject alternative names, as text.
    pub ip_addresses: Vec<String>,
    pub uris: Vec<String>,
    pub is_ca: bool,
    /// Subject key identifier (a CA's) and authority key identifier (a signed certificate's):
    /// with the names, they tell which CA key signed a certificate.
    pub subject_key_id: Option<Vec<u8>>,
    pub authority_key_id: Option<Vec<u8>>,
}

impl CertInfo {
    /// Whether `ca` signed this certificate, by name and key identifier.
    pub fn issued_by(&self, ca: &CertInfo) -> bool {
        self.issuer == ca.subject
            && self.authority_key_id.is_some()
            && self.authority_key_id == ca.subject_key_id
    }

    /// Renew when fewer than `renewal_days` are left (or the certificate is not yet valid,
    /// which only a clock jump explains).
    pub fn needs_renewal(&self, now: i64, renewal_days: i32) -> bool {
        now < self.not_before || now >= self.not_after - i64::from(renewal_days) * SECONDS_PER_DAY
    }
}

/// The distinguished name of a cluster's CA of one generation.
fn ca_name(names: &ClusterNames, generation: i64) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "krait.dev");
    dn.push(DnType::CommonName, ca_common_name(names, generation));
    dn
}

/// The common name of a cluster's CA of one generation.
pub fn ca_common_name(names: &ClusterNames, generation: i64) -> String {
    format!(
        "{}/{} cluster CA v{generation}",
        names.namespace, names.cluster
    )
}

pub(super) fn validity(
    params: &mut CertificateParams,
    now: i64,
    validity_days: i32,
) -> Result<(), CertError> {
    let bad = || CertError::Validity {
        now,
        days: validity_days,
    };
    let at = |secs| OffsetDateTime::from_unix_timestamp(secs).map_err(|_| bad());
    params.not_before = at(now - BACKDATE_SECONDS)?;
    params.not_after = at(now + i64::from(validity_days) * SECONDS_PER_DAY)?;
    Ok(())
}

pub(super) fn generate(what: &'static str) -> impl FnOnce(rcgen::Error) -> CertError {
    move |source| CertError::Generate { what, source }
}

fn ca_params(names: &ClusterNames, generation: i64) -> CertificateParams {
    ca_params_named(ca_name(names, generation))
}

/// A CA certificate's parameters (no validity yet) for the subject `dn`.
pub(super) fn ca_params_named(dn: DistinguishedName) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// A new self-signed CA with a fresh key (ECDSA P-256).
pub fn new_ca(
    names: &ClusterNames,
    generation: i64,
    now: i64,
    validity_days: i32,
) -> Result<CaMaterial, CertError> {
    let key = KeyPair::generate().map_err(generate("the CA key"))?;
    let mut params = ca_params(names, generation);
    validity(&mut params, now, validity_days)?;
    let cert = params
        .self_signed(&key)
        .map_err(generate("the CA certificate"))?;
    Ok(CaMaterial {
        generation,
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A stored CA ready to sign: its key, and a certificate with the stored one's subject and
/// key (rcgen signs with a `Certificate`; re-signing the same name and key gives the issuer
/// name and key identifier the stored certificate has). `None` when the key does not parse or
/// is not the certificate's, or the certificate is not this cluster's CA of that generation.
pub fn signer(names: &ClusterNames, ca: &CaMaterial) -> Option<(Certificate, KeyPair)> {
    signer_with(ca, ca_params(names, ca.generation))
}

/// [`signer`] for a CA whose certificate has the parameters `params`.
pub(super) fn signer_with(
    ca: &CaMaterial,
    params: CertificateParams,
) -> Option<(Certificate, KeyPair)> {
    let key = KeyPair::from_pem(&ca.key_pem).ok()?;
    let stored = first_certificate(&ca.cert_pem)?;
    let (_, parsed) = X509Certificate::from_der(&stored).ok()?;
    let rebuilt = params.self_signed(&key).ok()?;
    let (_, rebuilt_parsed) = X509Certificate::from_der(rebuilt.der()).ok()?;
    let same_name = parsed.subject().as_raw() == rebuilt_parsed.subject().as_raw();
    let same_key = parsed.public_key().raw == rebuilt_parsed.public_key().raw;
    (same_name && same_key).then_some((rebuilt, key))
}

/// The DNS names a broker's certificate carries: its pod through the headless Service (short
/// and fully qualified) and the cluster's Services.
pub fn broker_dns_names(names: &ClusterNames, id: i32) -> Vec<String> {
    let (pod, headless, ns) = (names.pod(id), names.headless_service(), &names.namespace);
    let bootstrap = names.bootstrap_service();
    let mut dns = Vec::new();
    for host in [format!("{pod}.{headless}"), headless.clone(), bootstrap] {
        dns.push(host.clone());
        dns.push(format!("{host}.{ns}"));
        dns.push(format!("{host}.{ns}.svc"));
        dns.push(format!("{host}.{ns}.svc.cluster.local"));
    }
    dns
}

/// A broker certificate's DNS and IP address names: [`broker_dns_names`], plus the host it is
/// reached at from outside Kubernetes, when it has one (a name, or an IP address).
pub fn broker_alt_names(
    names: &ClusterNames,
    id: i32,
    external: Option<&str>,
) -> (Vec<String>, Vec<String>) {
    let mut dns = broker_dns_names(names, id);
    let mut ips = Vec::new();
    if let Some(host) = external.map(|h| h.trim_start_matches('[').trim_end_matches(']')) {
        match host.parse::<IpAddr>() {
            Ok(ip) => ips.push(ip.to_string()),
            Err(_) if !dns.iter().any(|d| d == host) => dns.push(host.to_string()),
            Err(_) => {}
        }
    }
    (dns, ips)
}

fn ip_of(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

/// The URI subject alternative name binding a certificate to broker `id`.
pub fn node_uri(id: i32) -> String {
    format!("{NODE_URI_PREFIX}{id}")
}

/// Broker `id`'s keystore: a fresh key and a certificate for its DNS names and node id, for
/// both ends of a connection (serverAuth and clientAuth), signed by `signer`. PEM, key first.
pub fn broker_keystore(
    names: &ClusterNames,
    id: i32,
    signer: &(Certificate, KeyPair),
    now: i64,
    validity_days: i32,
) -> Result<String, CertError> {
    broker_keystore_with(names, id, None, signer, now, validity_days)
}

/// [`broker_keystore`] for a broker also reached at `external` (a host name or IP address)
/// from outside Kubernetes.
pub fn broker_keystore_with(
    names: &ClusterNames,
    id: i32,
    external: Option<&str>,
    signer: &(Certificate, KeyPair),
    now: i64,
    validity_days: i32,
) -> Result<String, CertError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "krait.dev");
    params
        .distinguished_name
        .push(DnType::CommonName, names.pod(id));
    let (dns_names, ips) = broker_alt_names(names, id, external);
    for dns in dns_names {
        let dns = dns.try_into().map_err(generate("a DNS name"))?;
        params.subject_alt_names.push(SanType::DnsName(dns));
    }
    for ip in ips.iter().filter_map(|ip| ip.parse().ok()) {
        params.subject_alt_names.push(SanType::IpAddress(ip));
    }
    let uri = node_uri(id).try_into().map_err(generate("the node URI"))?;
    params.subject_alt_names.push(SanType::URI(uri));
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, now, validity_days)?;
    let key = KeyPair::generate().map_err(generate("a broker key"))?;
    let cert = params
        .signed_by(&key, &signer.0, &signer.1)
        .map_err(generate("a broker certificate"))?;
    Ok(format!("{}{}", key.serialize_pem(), cert.pem()))
}

/// The DER of every `CERTIFICATE` block in a PEM text, in order.
pub fn certificates(pem: &str) -> Vec<Vec<u8>> {
    Pem::iter_from_buffer(pem.as_bytes())
        .filter_map(Result::ok)
        .filter(|p| p.label == "CERTIFICATE")
        .map(|p| p.contents)
        .collect()
}

fn first_certificate(pem: &str) -> Option<Vec<u8>> {
    certificates(pem).into_iter().next()
}

/// Each `CERTIFICATE` block of a PEM text as its own PEM text.
pub fn split_pem(pem: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    pem.split_inclusive(END)
        .filter(|block| block.contains(END))
        .map(|block| format!("{}\n", block.trim_start()))
        .collect()
}

/// What a DER certificate says, or `None` when it does not parse.
pub fn info(der: &[u8]) -> Option<CertInfo> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    let mut uris = Vec::new();
    let (mut subject_key_id, mut authority_key_id) = (None, None);
    for extension in cert.extensions() {
        match extension.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => subject_key_id = Some(id.0.to_vec()),
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                authority_key_id = aki.key_identifier.as_ref().map(|id| id.0.to_vec());
            }
            _ => {}
        }
    }
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => dns_names.push((*dns).to_string()),
                GeneralName::URI(uri) => uris.push((*uri).to_string()),
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_of(bytes) {
                        ip_addresses.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    Some(CertInfo {
        subject: cert.subject().as_raw().to_vec(),
        common_name: cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_string),
        issuer: cert.issuer().as_raw().to_vec(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        dns_names,
        ip_addresses,
        uris,
        is_ca: cert.is_ca(),
        subject_key_id,
        authority_key_id,
    })
}

/// The certificate of a keystore (key + certificate PEM) whose key is present, parsed.
pub fn keystore_info(keystore: &str) -> Option<CertInfo> {
    let has_key = Pem::iter_from_buffer(keystore.as_bytes())
        .filter_map(Result::ok)
        .any(|p| p.label == "PRIVATE KEY");
    if !has_key {
        return None;
    }
    info(&first_certificate(keystore)?)
}

/// A stored CA's certificate, parsed.
pub fn ca_info(ca: &CaMaterial) -> Option<CertInfo> {
    info(&first_certificate(&ca.cert_pem)?)
}
