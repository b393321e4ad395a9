//! Plays cert-manager with a CA issuer on the fake API server: each `tick` issues every
//! `cert-manager.io/v1` `Certificate` whose Secret is missing or was issued for another spec,
//! signing exactly what the spec asks for (common name, DNS names, IP addresses, URIs, usages,
//! duration, an ECDSA P-256 key in PKCS#8) with the issuer's CA, and writes the Secret as
//! cert-manager does (`tls.crt`, `tls.key`, `ca.crt`, `spec.secretTemplate`'s labels) and the
//! Certificate's `Ready` condition. The issuer's CA can be replaced ([`FakeCertManager::new_ca`]),
//! and certificates renewed on demand, as happens at their renewal time.

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::FakeApi;

pub const CERTIFICATES: &str = "/apis/cert-manager.io/v1/namespaces/kafka/certificates";
const SECRETS: &str = "/api/v1/namespaces/kafka/secrets";
/// On an issued Secret: the spec it was issued for and the CA generation that signed it.
const ISSUED_FOR: &str = "test.cert-manager.io/issued-for";
const ISSUED_BY: &str = "test.cert-manager.io/ca-generation";

/// The issuer's CA: its certificate (PEM) and signing key.
struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

pub struct FakeCertManager {
    api: FakeApi,
    ca: Ca,
    /// Bumped by [`FakeCertManager::new_ca`].
    pub generation: u32,
    /// Certificates issued so far.
    pub issued: u32,
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn new_ca(generation: u32) -> Ca {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "corp");
    dn.push(DnType::CommonName, format!("corp issuing CA {generation}"));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(3650);
    let key = KeyPair::generate().unwrap();
    let pem = params.clone().self_signed(&key).unwrap().pem();
    Ca { params, key, pem }
}

impl FakeCertManager {
    /// cert-manager installed on `api` (its `Certificate` kind served), with a CA issuer.
    pub fn install(api: &FakeApi) -> Self {
        api.install_crd("cert-manager.io/v1", "certificates", "Certificate");
        Self {
            api: api.clone(),
            ca: new_ca(0),
            generation: 0,
            issued: 0,
        }
    }

    /// The issuer's CA PEM now.
    pub fn ca_pem(&self) -> &str {
        &self.ca.pem
    }

    /// The issuer's CA is replaced: what it signs from now on chains to the new one only.
    pub fn new_ca(&mut self) {
        self.generation += 1;
        self.ca = new_ca(self.generation);
    }

    /// Issues what is missing or was issued for another spec.
    pub fn tick(&mut self) {
        self.issue_where(|_, _| false);
    }

    /// Re-issues `certificate` now, from the current CA (its renewal time came).
    pub fn renew(&mut self, certificate: &str) {
        self.issue_where(|name, _| name == certificate);
    }

    /// Re-issues every Certificate whose Secret a CA older than the current one signed.
    pub fn renew_all(&mut self) {
        let generation = self.generation.to_string();
        self.issue_where(|_, secret| {
            secret.is_some_and(|s| s["metadata"]["annotations"][ISSUED_BY] != generation.as_str())
        });
    }

    fn issue_where(&mut self, also: impl Fn(&str, Option<&Value>) -> bool) {
        for name in self.api.names(CERTIFICATES) {
            let Some(certificate) = self.api.get(CERTIFICATES, &name) else {
                continue;
            };
            let spec = &certificate["spec"];
            let secret_name = spec["secretName"].as_str().unwrap();
            let secret = self.api.get(SECRETS, secret_name);
            let spec_text = spec.to_string();
            let current = secret
                .as_ref()
                .is_some_and(|s| s["metadata"]["annotations"][ISSUED_FOR] == spec_text.as_str());
            if current && !also(&name, secret.as_ref()) {
                continue;
            }
            self.issue(certificate, &spec_text);
        }
    }

    fn issue(&mut self, mut certificate: Value, spec_text: &str) {
        let spec = certificate["spec"].clone();
        let strings = |key: &str| -> Vec<String> {
            spec[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        };
        assert_eq!(spec["privateKey"]["algorithm"], "ECDSA");
        assert_eq!(spec["privateKey"]["encoding"], "PKCS8");
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        for org in strings("organizations") {
            dn.push(DnType::OrganizationName, org);
        }
        if let Some(cn) = spec["commonName"].as_str() {
            dn.push(DnType::CommonName, cn);
        }
        params.distinguished_name = dn;
        for dns in strings("dnsNames") {
            params
                .subject_alt_names
                .push(SanType::DnsName(dns.try_into().unwrap()));
        }
        for ip in strings("ipAddresses") {
            params
                .subject_alt_names
                .push(SanType::IpAddress(ip.parse().unwrap()));
        }
        for uri in strings("uris") {
            params
                .subject_alt_names
                .push(SanType::URI(uri.try_into().unwrap()));
        }
        for usage in strings("usages") {
            match usage.as_str() {
                "digital signature" => params.key_usages.push(KeyUsagePurpose::DigitalSignature),
                "key encipherment" => params.key_usages.push(KeyUsagePurpose::KeyEncipherment),
                "server auth" => params
                    .extended_key_usages
                    .push(ExtendedKeyUsagePurpose::ServerAuth),
                "client auth" => params
                    .extended_key_usages
                    .push(ExtendedKeyUsagePurpose::ClientAuth),
                other => panic!("usage {other} not known to the fake"),
            }
        }
        params.use_authority_key_identifier_extension = true;
        let hours: i64 = spec["duration"]
            .as_str()
            .unwrap()
            .trim_end_matches('h')
            .parse()
            .unwrap();
        let now = OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::minutes(5);
        let not_after = now + time::Duration::hours(hours);
        params.not_after = not_after;
        let key = KeyPair::generate().unwrap();
        let issuer = self.ca.params.clone().self_signed(&self.ca.key).unwrap();
        let cert = params.signed_by(&key, &issuer, &self.ca.key).unwrap();
        let secret_name = spec["secretName"].as_str().unwrap();
        let name = certificate["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_string();
        self.api.put(
            SECRETS,
            json!({
                "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                "metadata": {
                    "name": secret_name, "namespace": "kafka",
                    "labels": spec["secretTemplate"]["labels"].clone(),
                    "annotations": {
                        "cert-manager.io/certificate-name": name,
                        ISSUED_FOR: spec_text,
                        ISSUED_BY: self.generation.to_string(),
                    },
                },
                "data": {
                    "tls.crt": b64(&cert.pem()),
                    "tls.key": b64(&key.serialize_pem()),
                    "ca.crt": b64(&self.ca.pem),
                },
            }),
        );
        certificate["status"] = json!({
            "conditions": [{"type": "Ready", "status": "True", "reason": "Ready"}],
            "notAfter": not_after.unix_timestamp().to_string(),
        });
        self.api.put(CERTIFICATES, certificate);
        self.issued += 1;
    }
}
