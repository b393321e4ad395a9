//! One certificate authority through its life, the same for the cluster CA (which signs the
//! brokers' certificates) and the clients CA (which signs `tls` KafkaUsers'): issued when
//! missing, kept while good, renewed trust-first.
//!
//! A renewal starts inside the CA's renewal window, or when asked for
//! (`krait.dev/renew-cluster-ca` / `krait.dev/renew-clients-ca` on the KafkaCluster, any new
//! value). The successor is only *trusted* at first: it joins the trust bundle, and the pod
//! template names the newest generation trusted, which rolls the brokers. Once every broker
//! started with the successor in its bundle ([`CaPolicy::trusted_by_all`]), the successor signs
//! and the old key is dropped; the old certificate stays in the bundle until it expires, so
//! what it signed stays trusted meanwhile.

use std::collections::BTreeSet;

use rcgen::{Certificate, KeyPair};

use super::cert::{self, CaMaterial, CertError, CertInfo, ca_info, certificates, info, split_pem};
use super::clients;
use crate::names::ClusterNames;

/// Which of the cluster's two CAs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaKind {
    Cluster,
    Clients,
}

impl CaKind {
    /// The stored CA ready to sign, when it is this cluster's CA of this kind.
    pub fn signer(self, names: &ClusterNames, ca: &CaMaterial) -> Option<(Certificate, KeyPair)> {
        match self {
            CaKind::Cluster => cert::signer(names, ca),
            CaKind::Clients => clients::clients_signer(names, ca),
        }
    }

    fn issue(
        self,
        names: &ClusterNames,
        generation: i64,
        now: i64,
        validity_days: i32,
    ) -> Result<CaMaterial, CertError> {
        match self {
            CaKind::Cluster => cert::new_ca(names, generation, now, validity_days),
            CaKind::Clients => clients::new_clients_ca(names, generation, now, validity_days),
        }
    }

    fn common_name(self, names: &ClusterNames, generation: i64) -> String {
        match self {
            CaKind::Cluster => cert::ca_common_name(names, generation),
            CaKind::Clients => clients::clients_ca_common_name(names, generation),
        }
    }

    fn label(self) -> &'static str {
        match self {
            CaKind::Cluster => "CA",
            CaKind::Clients => "clients CA",
        }
    }
}

/// A CA as its Secrets hold it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredCa {
    /// The CA that signs.
    pub ca: Option<CaMaterial>,
    /// Its successor during a renewal: trusted, not yet signing.
    pub next_ca: Option<CaMaterial>,
    /// The trust bundle (PEM CA certificates).
    pub trusted_pem: String,
    /// The last renewal request answered (the annotation's value).
    pub renewed_for: Option<String>,
}

/// What the CA must be now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaPolicy {
    pub validity_days: i32,
    pub renewal_days: i32,
    /// Unix seconds.
    pub now: i64,
    /// The oldest generation of this CA any expected broker pod started trusting; `None` while
    /// a pod is missing, not Ready, or not known to trust any.
    pub trusted_by_all: Option<i64>,
    /// A renewal asked for by the user: answered once, when its value is new.
    pub renew_requested: Option<String>,
}

/// A CA as it should be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ca {
    pub ca: CaMaterial,
    pub next_ca: Option<CaMaterial>,
    /// The trust bundle, PEM: the signing CA, its successor, and older CAs not yet expired.
    pub trusted_pem: String,
    /// The newest generation in the bundle: what the pod template says its pods trust.
    pub trust_generation: i64,
    /// When the signing CA expires (Unix seconds).
    pub not_after: i64,
    pub renewed_for: Option<String>,
}

impl Ca {
    /// A renewal is under way: the successor is trusted but does not sign yet.
    pub fn renewing(&self) -> bool {
        self.next_ca.is_some()
    }
}

/// The CA for `policy`, keeping the stored one while it is good; what it issued goes to
/// `issued` ("CA v1", "clients CA v0", ...).
pub fn rotate(
    kind: CaKind,
    names: &ClusterNames,
    stored: &StoredCa,
    policy: &CaPolicy,
    issued: &mut Vec<String>,
) -> Result<Ca, CertError> {
    let usable = |ca: &Option<CaMaterial>| {
        ca.clone()
            .filter(|ca| kind.signer(names, ca).is_some() && ca_info(ca).is_some())
    };
    let (mut ca, mut next_ca) = (usable(&stored.ca), usable(&stored.next_ca));
    // Every broker trusts the successor: it takes over signing.
    if next_ca
        .as_ref()
        .is_some_and(|n| policy.trusted_by_all.is_some_and(|g| g >= n.generation))
        || ca.is_none()
    {
        ca = next_ca.take().or(ca);
    }
    let requested =
        policy.renew_requested.is_some() && policy.renew_requested != stored.renewed_for;
    let (ca, fresh) = match ca {
        Some(ca) => (ca, false),
        None => {
            let generation = unused_generation(kind, names, stored);
            issued.push(format!("{} v{generation}", kind.label()));
            let ca = kind.issue(names, generation, policy.now, policy.validity_days)?;
            (ca, true)
        }
    };
    let ca_cert = ca_info(&ca).ok_or(CertError::UnusableNewCa)?;
    let due = ca_cert.needs_renewal(policy.now, policy.renewal_days) || (requested && !fresh);
    if next_ca.is_none() && due {
        let generation = ca.generation + 1;
        issued.push(format!("{} v{generation}", kind.label()));
        next_ca = Some(kind.issue(names, generation, policy.now, policy.validity_days)?);
    }
    let trusted_pem = trust_bundle(&stored.trusted_pem, policy.now, &ca, next_ca.as_ref());
    Ok(Ca {
        trust_generation: next_ca.as_ref().unwrap_or(&ca).generation,
        not_after: ca_cert.not_after,
        renewed_for: if requested {
            policy.renew_requested.clone()
        } else {
            stored.renewed_for.clone()
        },
        ca,
        next_ca,
        trusted_pem,
    })
}

/// A generation above every stored one whose name no trusted certificate carries, so a new CA
/// (after its predecessor's Secret was lost) is never mistaken for an old one.
fn unused_generation(kind: CaKind, names: &ClusterNames, stored: &StoredCa) -> i64 {
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
        .any(|t| t.common_name.as_deref() == Some(&kind.common_name(names, generation)))
    {
        generation += 1;
    }
    generation
}

/// The signing CA, its successor, then the stored bundle's other CA certificates that have
/// not expired, each once.
fn trust_bundle(stored: &str, now: i64, ca: &CaMaterial, next: Option<&CaMaterial>) -> String {
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
    add(stored, &|c| c.is_ca && now < c.not_after);
    bundle
}
