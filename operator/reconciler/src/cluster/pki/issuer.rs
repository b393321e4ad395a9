//! The brokers' certificates when a cert-manager issuer signs them (`spec.clusterCa.issuerRef`):
//! from the Secrets cert-manager wrote (one per broker: `tls.key`, `tls.crt`, `ca.crt`) and
//! what the operator stored before, the trust bundle and the keystores the brokers should hold
//! now. Pure; the `Certificate` objects that ask cert-manager are built in
//! `build/certificate.rs`.
//!
//! The issuer may change its CA whenever its owner likes, and cert-manager re-issues each
//! certificate on its own schedule, so the operator keeps the order a renewal of its own CA
//! keeps (trust first, then switch):
//! - every CA certificate an issued Secret names joins the trust bundle
//!   (`<cluster>-cluster-ca-cert`) with a generation one above the bundle's newest; the pod
//!   template names the newest generation ([`super::TRUST_ANNOTATION`]), so a new CA rolls the
//!   brokers;
//! - a broker's keystore (`<cluster>-broker-certs`, which the brokers re-read in place) takes a
//!   newly issued certificate only once every broker pod started trusting its CA; until then
//!   the broker keeps the certificate it has, while that one is still good;
//! - a CA certificate stays in the bundle until it expires.

use std::collections::{BTreeMap, BTreeSet};

use super::cert::{
    CertInfo, broker_alt_names, certificates, info, keystore_info, node_uri, split_pem,
};
use crate::names::ClusterNames;

/// What cert-manager wrote for one broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// `tls.key` followed by `tls.crt` (the certificate and any intermediates).
    pub keystore: String,
    /// `ca.crt`: the CA certificates the issuer says the certificate chains to.
    pub ca_pem: String,
}

/// One CA certificate of the trust bundle and the generation it joined at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trusted {
    pub generation: i64,
    pub pem: String,
}

/// What the operator's Secrets and cert-manager's hold, as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredIssued {
    /// The trust bundle as stored.
    pub bundle: Vec<Trusted>,
    /// Each broker's keystore in `<cluster>-broker-certs`, by broker id.
    pub keystores: BTreeMap<i32, String>,
    /// What cert-manager issued, by broker id.
    pub issued: BTreeMap<i32, Issued>,
}

/// What the certificates must be now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerWant<'a> {
    pub names: &'a ClusterNames,
    pub brokers: BTreeSet<i32>,
    /// Each broker's host for clients outside Kubernetes, which its certificate names too.
    pub external_hosts: BTreeMap<i32, String>,
    /// Unix seconds.
    pub now: i64,
    /// The oldest trust generation any expected broker pod started with; `None` while a pod
    /// is missing or not Ready.
    pub trusted_by_all: Option<i64>,
    /// No broker pod runs yet (a new cluster): nobody has to learn of a CA first.
    pub forming: bool,
}

/// The brokers' certificates from the issuer, as they should be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerPki {
    pub bundle: Vec<Trusted>,
    /// The newest generation in the bundle: what the pod template says its pods trust.
    pub trust_generation: i64,
    pub keystores: BTreeMap<i32, String>,
    /// Brokers whose newly issued certificate waits until every broker trusts its CA.
    pub waiting: BTreeSet<i32>,
    /// Brokers with no usable certificate yet, and why.
    pub pending: BTreeMap<i32, String>,
    /// When the first of the keystores' certificates expires (Unix seconds; 0 with none).
    pub not_after: i64,
    /// What this step took from cert-manager, for the log: "broker 2", "CA v1".
    pub taken: Vec<String>,
}

impl IssuerPki {
    /// The bundle as one PEM text, oldest first.
    pub fn trusted_pem(&self) -> String {
        self.bundle.iter().map(|t| t.pem.as_str()).collect()
    }
}

/// The certificates for `want`.
pub fn plan(stored: &StoredIssued, want: &IssuerWant<'_>) -> IssuerPki {
    let mut taken = Vec::new();
    let mut bundle: Vec<Trusted> = Vec::new();
    for t in &stored.bundle {
        let alive = der(&t.pem)
            .and_then(|d| info(&d))
            .is_some_and(|c| c.not_after > want.now);
        if alive && !bundle.iter().any(|b| same(&b.pem, &t.pem)) {
            bundle.push(t.clone());
        }
    }
    let newest = bundle.iter().map(|t| t.generation).max();
    let next = newest.map_or(0, |g| g + 1);
    let mut pending = BTreeMap::new();
    let mut good = BTreeMap::new();
    for &id in &want.brokers {
        let Some(issued) = stored.issued.get(&id) else {
            pending.insert(
                id,
                "cert-manager has not issued its certificate yet".to_string(),
            );
            continue;
        };
        if let Err(why) = usable(&issued.keystore, want, id) {
            pending.insert(id, format!("the certificate cert-manager issued {why}"));
            continue;
        }
        let cas = split_pem(&issued.ca_pem);
        if cas.is_empty() {
            pending.insert(
                id,
                "the issuer returned no CA certificate (ca.crt) to trust it by".to_string(),
            );
            continue;
        }
        for pem in &cas {
            if !bundle.iter().any(|b| same(&b.pem, pem)) {
                taken.push(format!("CA v{next}"));
                bundle.push(Trusted {
                    generation: next,
                    pem: pem.clone(),
                });
            }
        }
        good.insert(id, (issued, cas));
    }
    bundle.sort_by_key(|t| t.generation);
    taken.dedup();
    let trust_generation = bundle.iter().map(|t| t.generation).max().unwrap_or(0);
    let generation_of = |pem: &String| {
        bundle
            .iter()
            .find(|b| same(&b.pem, pem))
            .map(|b| b.generation)
    };
    let mut keystores = BTreeMap::new();
    let mut waiting = BTreeSet::new();
    for &id in &want.brokers {
        let kept = stored
            .keystores
            .get(&id)
            .filter(|k| usable(k, want, id).is_ok());
        let Some((issued, cas)) = good.get(&id) else {
            if let Some(kept) = kept {
                keystores.insert(id, kept.clone());
            }
            continue;
        };
        let trusted = want.forming
            || cas.iter().all(|pem| {
                generation_of(pem)
                    .zip(want.trusted_by_all)
                    .is_some_and(|(g, all)| g <= all)
            });
        match kept {
            Some(kept) if !trusted && *kept != issued.keystore => {
                waiting.insert(id);
                keystores.insert(id, kept.clone());
            }
            _ => {
                if kept != Some(&issued.keystore) {
                    taken.push(format!("broker {id}"));
                }
                keystores.insert(id, issued.keystore.clone());
            }
        }
    }
    let not_after = keystores
        .values()
        .filter_map(|k| keystore_info(k))
        .map(|c| c.not_after)
        .min()
        .unwrap_or(0);
    IssuerPki {
        bundle,
        trust_generation,
        keystores,
        waiting,
        pending,
        not_after,
        taken,
    }
}

/// Whether a keystore can serve broker `id` now: it has a key, its certificate names the
/// broker as the operator asked, and it is valid.
fn usable(keystore: &str, want: &IssuerWant<'_>, id: i32) -> Result<CertInfo, String> {
    let cert = keystore_info(keystore).ok_or("has no PKCS#8 key or certificate")?;
    if want.now < cert.not_before || want.now >= cert.not_after {
        return Err("is not valid now".into());
    }
    let host = want.external_hosts.get(&id).map(String::as_str);
    let (dns, ips) = broker_alt_names(want.names, id, host);
    let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>();
    if set(&cert.dns_names) != set(&dns) || set(&cert.ip_addresses) != set(&ips) {
        return Err("does not carry the broker's DNS names and addresses".into());
    }
    if cert.uris != [node_uri(id)] {
        return Err(format!("does not name the broker by {}", node_uri(id)));
    }
    Ok(cert)
}

fn der(pem: &str) -> Option<Vec<u8>> {
    certificates(pem).into_iter().next()
}

/// The same certificate, whatever the PEM's line breaks.
fn same(a: &str, b: &str) -> bool {
    der(a).is_some() && der(a) == der(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::pki::cert::{self, CaMaterial};

    const DAY: i64 = 86_400;
    const T0: i64 = 1_800_000_000;

    fn names() -> ClusterNames {
        ClusterNames::new("main", "kafka")
    }

    /// A CA of the issuer's (not named like the operator's).
    fn issuer_ca(generation: i64) -> CaMaterial {
        cert::new_ca(
            &ClusterNames::new("issuer", "cert-manager"),
            generation,
            T0,
            365,
        )
        .unwrap()
    }

    fn issue(ca: &CaMaterial, id: i32, now: i64) -> Issued {
        let signer = cert::signer(&ClusterNames::new("issuer", "cert-manager"), ca).unwrap();
        let keystore = cert::broker_keystore(&names(), id, &signer, now, 90).unwrap();
        Issued {
            keystore,
            ca_pem: ca.cert_pem.clone(),
        }
    }

    fn want<'a>(
        names: &'a ClusterNames,
        trusted_by_all: Option<i64>,
        forming: bool,
    ) -> IssuerWant<'a> {
        IssuerWant {
            names,
            brokers: BTreeSet::from([0, 1, 2]),
            external_hosts: BTreeMap::new(),
            now: T0 + DAY,
            trusted_by_all,
            forming,
        }
    }

    fn stored_after(pki: &IssuerPki, issued: BTreeMap<i32, Issued>) -> StoredIssued {
        StoredIssued {
            bundle: pki.bundle.clone(),
            keystores: pki.keystores.clone(),
            issued,
        }
    }

    #[test]
    fn a_new_cluster_takes_what_the_issuer_signed_and_trusts_its_ca() {
        let names = names();
        let ca = issuer_ca(0);
        let issued: BTreeMap<_, _> = (0..3).map(|id| (id, issue(&ca, id, T0))).collect();
        let stored = StoredIssued {
            issued: issued.clone(),
            ..Default::default()
        };
        let pki = plan(&stored, &want(&names, None, true));
        assert_eq!(pki.trust_generation, 0);
        assert_eq!(pki.bundle.len(), 1);
        assert!(same(&pki.bundle[0].pem, &ca.cert_pem));
        assert_eq!(pki.keystores.len(), 3);
        for (id, keystore) in &pki.keystores {
            assert_eq!(keystore, &issued[id].keystore);
        }
        assert!(pki.waiting.is_empty() && pki.pending.is_empty());
        // Read back, nothing changes.
        let again = plan(&stored_after(&pki, issued), &want(&names, Some(0), false));
        assert_eq!(again.keystores, pki.keystores);
        assert_eq!(again.bundle, pki.bundle);
        assert!(again.taken.is_empty(), "{:?}", again.taken);
    }

    #[test]
    fn a_broker_without_a_certificate_is_pending_with_the_reason() {
        let names = names();
        let ca = issuer_ca(0);
        let mut issued: BTreeMap<_, _> = (0..2).map(|id| (id, issue(&ca, id, T0))).collect();
        // Broker 1's Secret holds broker 0's certificate: it does not name broker 1.
        issued.insert(1, issue(&ca, 0, T0));
        let pki = plan(
            &StoredIssued {
                issued,
                ..Default::default()
            },
            &want(&names, None, true),
        );
        assert_eq!(pki.keystores.keys().copied().collect::<Vec<_>>(), [0]);
        assert!(pki.pending[&1].contains("DNS names"), "{:?}", pki.pending);
        assert!(pki.pending[&2].contains("not issued"), "{:?}", pki.pending);
    }

    #[test]
    fn a_new_issuer_ca_is_trusted_by_every_broker_before_its_certificates_are_used() {
        let names = names();
        let (old, new) = (issuer_ca(0), issuer_ca(1));
        let first: BTreeMap<_, _> = (0..3).map(|id| (id, issue(&old, id, T0))).collect();
        let formed = plan(
            &StoredIssued {
                issued: first.clone(),
                ..Default::default()
            },
            &want(&names, None, true),
        );
        // The issuer's CA changed and cert-manager re-issued broker 1's certificate.
        let mut second = first.clone();
        second.insert(1, issue(&new, 1, T0 + DAY));
        let trusting = plan(
            &stored_after(&formed, second.clone()),
            &want(&names, Some(0), false),
        );
        assert_eq!(trusting.trust_generation, 1, "the new CA rolls the brokers");
        assert_eq!(trusting.bundle.len(), 2);
        assert_eq!(trusting.waiting, BTreeSet::from([1]));
        assert_eq!(trusting.keystores, formed.keystores, "nothing switched yet");
        // Mid-roll (a pod not Ready): still waiting.
        let rolling = plan(
            &stored_after(&trusting, second.clone()),
            &want(&names, None, false),
        );
        assert_eq!(rolling.keystores, formed.keystores);
        assert_eq!(rolling.trust_generation, 1);
        // Every broker started trusting v1: broker 1 switches, with no second roll.
        let switched = plan(
            &stored_after(&rolling, second.clone()),
            &want(&names, Some(1), false),
        );
        assert_eq!(switched.keystores[&1], second[&1].keystore);
        assert_eq!(switched.keystores[&0], formed.keystores[&0]);
        assert!(switched.waiting.is_empty());
        assert_eq!(switched.trust_generation, 1);
        assert_eq!(switched.bundle.len(), 2, "the old CA stays trusted");
    }

    #[test]
    fn an_expired_ca_leaves_the_bundle_and_an_expired_keystore_is_replaced_at_once() {
        let names = names();
        let old = cert::new_ca(
            &ClusterNames::new("issuer", "cert-manager"),
            0,
            T0 - 400 * DAY,
            365,
        )
        .unwrap();
        let new = issuer_ca(1);
        let stale = StoredIssued {
            bundle: vec![
                Trusted {
                    generation: 0,
                    pem: old.cert_pem.clone(),
                },
                Trusted {
                    generation: 1,
                    pem: new.cert_pem.clone(),
                },
            ],
            keystores: BTreeMap::new(),
            issued: (0..3).map(|id| (id, issue(&new, id, T0))).collect(),
        };
        let pki = plan(&stale, &want(&names, Some(0), false));
        assert_eq!(pki.bundle.len(), 1);
        assert_eq!(pki.bundle[0].generation, 1);
        assert_eq!(pki.keystores.len(), 3, "no kept keystore to wait with");
        assert!(pki.waiting.is_empty());
    }

    #[test]
    fn an_issuer_that_returns_no_ca_certificate_is_pending() {
        let names = names();
        let ca = issuer_ca(0);
        let mut issued = issue(&ca, 0, T0);
        issued.ca_pem.clear();
        let pki = plan(
            &StoredIssued {
                issued: BTreeMap::from([(0, issued)]),
                ..Default::default()
            },
            &want(&names, None, true),
        );
        assert!(pki.pending[&0].contains("ca.crt"), "{:?}", pki.pending);
        assert!(pki.keystores.is_empty());
    }
}
