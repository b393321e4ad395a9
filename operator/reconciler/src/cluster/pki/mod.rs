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
pub mod issuer;
pub mod rotation;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Pod;

pub use cert::{CaMaterial, CertError, CertInfo};
use cert::{broker_alt_names, broker_keystore_with, keystore_info};
pub use issuer::IssuerPki;
pub use rotation::{Ca, CaKind, CaPolicy, StoredCa};

use crate::names::ClusterNames;

/// On the broker pod template (so on each pod): the newest cluster CA generation in the trust
/// bundle the pod was created with.
pub const TRUST_ANNOTATION: &str = "krait.dev/cluster-ca-trust";
/// The same for the clients CA, once it has been renewed (a pod without it trusts generation
/// 0, the first clients CA).
pub const CLIENTS_TRUST_ANNOTATION: &str = "krait.dev/clients-ca-trust";

/// What the operator's Secrets hold, as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    /// The cluster CA.
    pub authority: StoredCa,
    /// Each broker's keystore (key + certificate PEM), by broker id.
    pub keystores: BTreeMap<i32, String>,
}

/// The brokers' cluster-port certificates, from the operator's own CA or a cert-manager
/// issuer (`spec.clusterCa.issuerRef`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterPki {
    Operator(Pki),
    Issuer(IssuerPki),
}

impl ClusterPki {
    /// The newest CA generation in the trust bundle, which the pod template names.
    pub fn trust_generation(&self) -> i64 {
        match self {
            ClusterPki::Operator(pki) => pki.authority.trust_generation,
            ClusterPki::Issuer(pki) => pki.trust_generation,
        }
    }

    /// The trust bundle, PEM.
    pub fn trusted_pem(&self) -> String {
        match self {
            ClusterPki::Operator(pki) => pki.authority.trusted_pem.clone(),
            ClusterPki::Issuer(pki) => pki.trusted_pem(),
        }
    }

    /// Each broker's keystore (key + certificate PEM), by broker id.
    pub fn keystores(&self) -> &BTreeMap<i32, String> {
        match self {
            ClusterPki::Operator(pki) => &pki.keystores,
            ClusterPki::Issuer(pki) => &pki.keystores,
        }
    }
}

/// What the certificates must be now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want<'a> {
    pub names: &'a ClusterNames,
    /// Broker ids that need a certificate.
    pub brokers: BTreeSet<i32>,
    /// The cluster CA's validity, renewal window, clock, and what the brokers trust.
    pub policy: CaPolicy,
    /// Each broker's host name or IP address for clients outside Kubernetes (the external
    /// listener's `advertisedAddresses`), which its certificate names too.
    pub external_hosts: BTreeMap<i32, String>,
}

/// The cluster's PKI as it should be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pki {
    /// The cluster CA; [`TRUST_ANNOTATION`] of the pod template is its `trust_generation`.
    pub authority: Ca,
    pub keystores: BTreeMap<i32, String>,
    /// What this step issued, for the log: "CA v1", "broker 2", ...
    pub issued: Vec<String>,
}

impl Pki {
    /// A CA renewal is under way: the successor is trusted but does not sign yet.
    pub fn renewing(&self) -> bool {
        self.authority.renewing()
    }
}

/// The PKI for `want`, keeping every stored certificate that is still good.
pub fn renew(stored: &Stored, want: &Want<'_>) -> Result<Pki, CertError> {
    let mut issued = Vec::new();
    let authority = rotation::rotate(
        CaKind::Cluster,
        want.names,
        &stored.authority,
        &want.policy,
        &mut issued,
    )?;
    let ca_cert = cert::ca_info(&authority.ca).ok_or(CertError::UnusableNewCa)?;
    let keystores = keystores(stored, want, &authority.ca, &ca_cert, &mut issued)?;
    Ok(Pki {
        authority,
        keystores,
        issued,
    })
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
                    && !c.needs_renewal(want.policy.now, want.policy.renewal_days)
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
                broker_keystore_with(
                    want.names,
                    id,
                    host,
                    signer,
                    want.policy.now,
                    want.policy.validity_days,
                )?
            }
        };
        keystores.insert(id, keystore);
    }
    Ok(keystores)
}

fn external<'a>(want: &'a Want<'_>, id: i32) -> Option<&'a str> {
    want.external_hosts.get(&id).map(String::as_str)
}

/// The oldest cluster CA generation the expected broker pods (`0..replicas`) started
/// trusting, when every one of them exists, is Ready and not terminating.
pub fn trusted_by_all(names: &ClusterNames, pods: &[Pod], replicas: i32) -> Option<i64> {
    trusted_by_all_of(names, pods, replicas, TRUST_ANNOTATION, None)
}

/// [`trusted_by_all`] for the clients CA: a pod without [`CLIENTS_TRUST_ANNOTATION`] was
/// started before any clients CA renewal, with generation 0.
pub fn clients_trusted_by_all(names: &ClusterNames, pods: &[Pod], replicas: i32) -> Option<i64> {
    trusted_by_all_of(names, pods, replicas, CLIENTS_TRUST_ANNOTATION, Some(0))
}

fn trusted_by_all_of(
    names: &ClusterNames,
    pods: &[Pod],
    replicas: i32,
    annotation: &str,
    missing: Option<i64>,
) -> Option<i64> {
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
        let trust = match pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(annotation))
        {
            Some(value) => value.parse().ok(),
            None => missing,
        };
        ready.then_some(trust).flatten()
    };
    (0..replicas)
        .map(trust_of)
        .collect::<Option<Vec<i64>>>()?
        .into_iter()
        .min()
}

#[cfg(test)]
mod tests;
