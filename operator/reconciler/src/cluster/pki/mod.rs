//! The cluster CA and the brokers' cluster-port certificates: from what the Secrets hold and
//! what the broker pods started with, the CA, trust bundle and keystores they should hold now.
//! Reads nothing and writes nothing; the only effect is fresh keys from the OS's random source
//! when something is (re)issued. The Secrets are built from the result in `build/secret.rs`.
//!
//! A renewal never leaves two brokers that do not trust each other:
//! - a broker certificate inside its renewal window is re-issued by the same CA, which every
//!   broker trusts, and re-read by its broker in place (krait-tls reloads changed files);
//! - a CA inside its renewal window gets a successor that is only *trusted* at first (trust
//!   bundle = old + new). The pod template names the newest CA generation it trusts
//!   ([`TRUST_ANNOTATION`]), so the change rolls the brokers through the safe-roll path;
//! - once every broker pod is Ready and started with the new CA in its trust bundle, the new CA
//!   signs every broker certificate (re-read in place) and the old CA's key is dropped;
//! - the old CA certificate stays in the bundle until it expires, so a broker still presenting
//!   an old certificate (its kubelet has not updated the mounted Secret yet) stays trusted.

pub mod cert;
pub mod clients;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Pod;

pub use cert::{CaMaterial, CertError, CertInfo};
use cert::{
    broker_alt_names, broker_keystore_with, ca_common_name, ca_info, certificates, info,
    keystore_info, new_ca, split_pem,
};

use crate::names::ClusterNames;

/// On the broker pod template (so on each pod): the newest cluster CA generation in the trust
/// bundle the pod was created with.
pub const TRUST_ANNOTATION: &str = "krait.dev/cluster-ca-trust";

/// What the operator's Secrets hold, as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    /// The CA that signs broker certificates.
    pub ca: Option<CaMaterial>,
    /// Its successor during a renewal: trusted, not yet signing.
    pub next_ca: Option<CaMaterial>,
    /// The trust bundle (PEM CA certificates).
    pub trusted_pem: String,
    /// Each broker's keystore (key + certificate PEM), by broker id.
    pub keystores: BTreeMap<i32, String>,
}

/// What the certificates must be now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want<'a> {
    pub names: &'a ClusterNames,
    /// Broker ids that need a certificate.
    pub brokers: BTreeSet<i32>,
    pub validity_days: i32,
    pub renewal_days: i32,
    /// Unix seconds.
    pub now: i64,
    /// The oldest CA generation any expected broker pod started trusting; `None` while a pod
    /// is missing, not Ready, or was created before the operator issued certificates.
    pub trusted_by_all: Option<i64>,
    /// Each broker's host name or IP address for clients outside Kubernetes (the external
    /// listener's `advertisedAddresses`), which its certificate names too.
    pub external_hosts: BTreeMap<i32, String>,
}

/// The cluster's PKI as it should be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pki {
    pub ca: CaMaterial,
    pub next_ca: Option<CaMaterial>,
    /// The trust bundle, PEM: the signing CA, its successor, and older CAs not yet expired.
    pub trusted_pem: String,
    pub keystores: BTreeMap<i32, String>,
    /// [`TRUST_ANNOTATION`] of the pod template: the newest generation in the bundle.
    pub trust_generation: i64,
    /// When the signing CA expires (Unix seconds).
    pub ca_not_after: i64,
    /// What this step issued, for the log: "CA v1", "broker 2", ...
    pub issued: Vec<String>,
}

impl Pki {
    /// A CA renewal is under way: the successor is trusted but does not sign yet.
    pub fn renewing(&self) -> bool {
        self.next_ca.is_some()
    }
}

/// The PKI for `want`, keeping every stored certificate that is still good.
pub fn renew(stored: &Stored, want: &Want<'_>) -> Result<Pki, CertError> {
    let mut issued = Vec::new();
    let usable = |ca: &Option<CaMaterial>| {
        ca.clone()
            .filter(|ca| cert::signer(want.names, ca).is_some() && ca_info(ca).is_some())
    };
    let (mut ca, mut next_ca) = (usable(&stored.ca), usable(&stored.next_ca));
    // Every broker trusts the successor: it takes over signing.
    if next_ca
        .as_ref()
        .is_some_and(|n| want.trusted_by_all.is_some_and(|g| g >= n.generation))
        || ca.is_none()
    {
        ca = next_ca.take().or(ca);
    }
    let ca = match ca {
        Some(ca) => ca,
        None => {
            let generation = unused_generation(stored, want);
            issued.push(format!("CA v{generation}"));
            new_ca(want.names, generation, want.now, want.validity_days)?
        }
    };
    let ca_cert = ca_info(&ca).ok_or(CertError::UnusableNewCa)?;
    if next_ca.is_none() && ca_cert.needs_renewal(want.now, want.renewal_days) {
        let generation = ca.generation + 1;
        issued.push(format!("CA v{generation}"));
        next_ca = Some(new_ca(
            want.names,
            generation,
            want.now,
            want.validity_days,
        )?);
    }
    let keystores = keystores(stored, want, &ca, &ca_cert, &mut issued)?;
    let trusted_pem = trust_bundle(stored, want.now, &ca, next_ca.as_ref());
    Ok(Pki {
        trust_generation: next_ca.as_ref().unwrap_or(&ca).generation,
        ca_not_after: ca_cert.not_after,
        ca,
        next_ca,
        trusted_pem,
        keystores,
        issued,
    })
}

/// A generation above every stored one whose name no trusted certificate carries, so a new CA
/// (after its predecessor's Secret was lost) is never mistaken for an old one.
fn unused_generation(stored: &Stored, want: &Want<'_>) -> i64 {
    let trusted: Vec<CertInfo> = certificates(&stored.trusted_pem)
        .iter()
        .filter_map(|der| info(der))
        .collect();
    let mut generation = [&stored.ca, &stored.next_ca]
        .into_iter()
        .flatten()
        .map(|ca| ca.generation + 1)
        .max()
        .unwrap_or(0);
    while trusted
        .iter()
        .any(|t| t.common_name.as_deref() == Some(&ca_common_name(want.names, generation)))
    {
        generation += 1;
    }
    generation
}

/// Each wanted broker's keystore: the stored one while it is signed by `ca`, names the broker
/// as it should and is outside its renewal window; a new one otherwise.
fn keystores(
    stored: &Stored,
    want: &Want<'_>,
    ca: &CaMaterial,
    ca_cert: &CertInfo,
    issued: &mut Vec<String>,
) -> Result<BTreeMap<i32, String>, CertError> {
    let mut signer = None;
    let mut keystores = BTreeMap::new();
    for &id in &want.brokers {
        let kept = stored.keystores.get(&id).filter(|keystore| {
            keystore_info(keystore).is_some_and(|c| {
                c.issued_by(ca_cert)
                    && !c.needs_renewal(want.now, want.renewal_days)
                    && (c.dns_names.clone(), c.ip_addresses.clone())
                        == broker_alt_names(want.names, id, external(want, id))
                    && c.uris == [cert::node_uri(id)]
            })
        });
        let keystore = match kept {
            Some(keystore) => keystore.clone(),
            None => {
                if signer.is_none() {
                    signer = cert::signer(want.names, ca);
                }
                let signer = signer.as_ref().ok_or(CertError::UnusableNewCa)?;
                issued.push(format!("broker {id}"));
                let host = external(want, id);
                broker_keystore_with(want.names, id, host, signer, want.now, want.validity_days)?
            }
        };
        keystores.insert(id, keystore);
    }
    Ok(keystores)
}

fn external<'a>(want: &'a Want<'_>, id: i32) -> Option<&'a str> {
    want.external_hosts.get(&id).map(String::as_str)
}

/// The signing CA, its successor, then the stored bundle's other CA certificates that have
/// not expired, each once.
fn trust_bundle(stored: &Stored, now: i64, ca: &CaMaterial, next: Option<&CaMaterial>) -> String {
    let mut seen: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut bundle = String::new();
    let mut add = |pem: &str, keep: &dyn Fn(&CertInfo) -> bool| {
        for block in split_pem(pem) {
            let Some(der) = certificates(&block).into_iter().next() else {
                continue;
            };
            if info(&der).is_some_and(|c| keep(&c)) && seen.insert(der) {
                bundle.push_str(&block);
            }
        }
    };
    add(&ca.cert_pem, &|_| true);
    if let Some(next) = next {
        add(&next.cert_pem, &|_| true);
    }
    add(&stored.trusted_pem, &|c| c.is_ca && now < c.not_after);
    bundle
}

/// The oldest CA generation the expected broker pods (`0..replicas`) started trusting, when
/// every one of them exists, is Ready and not terminating.
pub fn trusted_by_all(names: &ClusterNames, pods: &[Pod], replicas: i32) -> Option<i64> {
    let trust_of = |id: i32| -> Option<i64> {
        let name = names.pod(id);
        let pod = pods
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(name.as_str()))?;
        let ready = pod.metadata.deletion_timestamp.is_none()
            && pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        let trust = pod.metadata.annotations.as_ref()?.get(TRUST_ANNOTATION)?;
        ready.then(|| trust.parse().ok()).flatten()
    };
    (0..replicas)
        .map(trust_of)
        .collect::<Option<Vec<i64>>>()?
        .into_iter()
        .min()
}

#[cfg(test)]
mod tests;
