//! The cluster PKI as a specification: what a new cluster gets, what is kept, what is renewed
//! and when, and that every step of a CA renewal keeps all brokers trusting each other
//! (checked with rustls' own WebPKI verifiers, as the brokers verify).

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::cert::{self, certificates, keystore_info};
use super::*;

const DAY: i64 = 86_400;
/// 2026-12-05T00:00:00Z.
const T0: i64 = 1_796_428_800;

fn names() -> ClusterNames {
    ClusterNames::new("main", "kafka")
}

fn want(names: &ClusterNames, brokers: i32, now: i64, trusted_by_all: Option<i64>) -> Want<'_> {
    Want {
        names,
        brokers: (0..brokers).collect(),
        policy: CaPolicy {
            validity_days: 365,
            renewal_days: 30,
            now,
            trusted_by_all,
            renew_requested: None,
        },
        external_hosts: BTreeMap::new(),
    }
}

/// What the Secrets hold after `pki` was stored.
fn stored(pki: &Pki) -> Stored {
    Stored {
        authority: StoredCa {
            ca: Some(pki.authority.ca.clone()),
            next_ca: pki.authority.next_ca.clone(),
            trusted_pem: pki.authority.trusted_pem.clone(),
            renewed_for: pki.authority.renewed_for.clone(),
        },
        keystores: pki.keystores.clone(),
    }
}

fn leaf(keystore: &str) -> CertificateDer<'static> {
    CertificateDer::from(certificates(keystore).remove(0))
}

fn roots(bundle: &str) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for der in certificates(bundle) {
        roots.add(CertificateDer::from(der)).unwrap();
    }
    Arc::new(roots)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Whether a broker trusting `bundle` accepts `keystore`'s certificate at `now`, both as a
/// server (for its pod DNS name) and as a client (mutual TLS).
fn accepts(bundle: &str, keystore: &str, id: i32, now: i64) -> bool {
    let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(now as u64));
    let roots = roots(bundle);
    let server = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider())
        .build()
        .unwrap();
    let client = WebPkiClientVerifier::builder_with_provider(roots, provider())
        .build()
        .unwrap();
    let name = ServerName::try_from(names().broker_host(id)).unwrap();
    let leaf = leaf(keystore);
    server
        .verify_server_cert(&leaf, &[], &name, &[], at)
        .is_ok()
        && client.verify_client_cert(&leaf, &[], at).is_ok()
}

/// Every broker certificate of every state accepted under every trust bundle of every state
/// at `now`: a broker may hold any mix of the files of consecutive states while its kubelet
/// catches up.
fn assert_mutual_trust(states: &[&Pki], now: i64) {
    for holder in states {
        for presenter in states {
            for (id, keystore) in &presenter.keystores {
                assert!(
                    accepts(&holder.authority.trusted_pem, keystore, *id, now),
                    "broker {id}'s certificate is not trusted by a bundle at {now}"
                );
            }
        }
    }
}

#[test]
fn a_new_cluster_gets_a_ca_and_a_certificate_per_broker() {
    let names = names();
    let pki = renew(&Stored::default(), &want(&names, 3, T0, None)).unwrap();
    assert_eq!(pki.authority.ca.generation, 0);
    assert_eq!(pki.authority.trust_generation, 0);
    assert!(!pki.renewing());
    assert_eq!(certificates(&pki.authority.trusted_pem).len(), 1);
    assert_eq!(pki.keystores.keys().copied().collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(pki.issued, ["CA v0", "broker 0", "broker 1", "broker 2"]);
    let ca = cert::ca_info(&pki.authority.ca).unwrap();
    assert!(ca.is_ca);
    assert_eq!(ca.not_after, T0 + 365 * DAY);
    assert_eq!(pki.authority.not_after, ca.not_after);
    for (id, keystore) in &pki.keystores {
        let c = keystore_info(keystore).unwrap();
        assert!(!c.is_ca);
        assert!(c.issued_by(&ca));
        assert_eq!(c.not_after, T0 + 365 * DAY);
        assert!(c.not_before < T0, "back-dated for clock skew");
        assert_eq!(c.uris, [format!("urn:krait:node:{id}")]);
        let pod = format!("main-{id}.main-brokers");
        for dns in [
            format!("{pod}.kafka.svc"),
            format!("{pod}.kafka.svc.cluster.local"),
            "main-bootstrap.kafka.svc".to_string(),
        ] {
            assert!(c.dns_names.contains(&dns), "{dns} in {:?}", c.dns_names);
        }
        assert_eq!(krait_peer::node_id_of(&leaf(keystore)), Ok(*id));
        assert!(accepts(&pki.authority.trusted_pem, keystore, *id, T0));
    }
}

#[test]
fn a_certificate_of_another_ca_is_not_accepted() {
    let names = names();
    let ours = renew(&Stored::default(), &want(&names, 1, T0, None)).unwrap();
    let theirs = renew(&Stored::default(), &want(&names, 1, T0, None)).unwrap();
    assert!(!accepts(
        &ours.authority.trusted_pem,
        &theirs.keystores[&0],
        0,
        T0
    ));
}

#[test]
fn stored_certificates_are_kept_and_new_brokers_get_one() {
    let names = names();
    let first = renew(&Stored::default(), &want(&names, 2, T0, None)).unwrap();
    let later = renew(&stored(&first), &want(&names, 3, T0 + 100 * DAY, Some(0))).unwrap();
    assert_eq!(later.issued, ["broker 2"]);
    assert_eq!(later.authority.ca, first.authority.ca);
    assert_eq!(later.authority.trusted_pem, first.authority.trusted_pem);
    assert_eq!(later.keystores[&0], first.keystores[&0]);
    assert_eq!(later.keystores[&1], first.keystores[&1]);
    let smaller = renew(&stored(&later), &want(&names, 1, T0 + 101 * DAY, Some(0))).unwrap();
    assert_eq!(smaller.keystores.len(), 1, "removed brokers lose theirs");
    assert!(smaller.issued.is_empty());
}

#[test]
fn a_broker_certificate_inside_its_renewal_window_is_renewed_by_the_same_ca() {
    let names = names();
    let mut w = want(&names, 2, T0, None);
    w.policy.validity_days = 3650;
    let first = renew(&Stored::default(), &w).unwrap();
    // Broker 1's certificate was issued for 40 days.
    let mut held = stored(&first);
    let signer = cert::signer(&names, &first.authority.ca).unwrap();
    held.keystores.insert(
        1,
        cert::broker_keystore(&names, 1, &signer, T0, 40).unwrap(),
    );
    let renewed = renew(&held, &want(&names, 2, T0 + 15 * DAY, Some(0))).unwrap();
    assert_eq!(renewed.issued, ["broker 1"], "25 days left is inside 30");
    assert_eq!(renewed.authority.ca, first.authority.ca);
    assert_eq!(renewed.keystores[&0], first.keystores[&0]);
    let c = keystore_info(&renewed.keystores[&1]).unwrap();
    assert_eq!(c.not_after, T0 + 15 * DAY + 365 * DAY);
    assert_mutual_trust(&[&first, &renewed], T0 + 15 * DAY);
}

#[test]
fn a_ca_renewal_is_trusted_everywhere_before_it_signs_and_the_old_ca_is_dropped_once_expired() {
    let names = names();
    let created = renew(&Stored::default(), &want(&names, 3, T0, None)).unwrap();
    // Inside the CA's renewal window: a successor is trusted, the old CA still signs.
    let t1 = T0 + 340 * DAY;
    let trusting = renew(&stored(&created), &want(&names, 3, t1, Some(0))).unwrap();
    assert!(trusting.renewing());
    assert_eq!(trusting.authority.ca.generation, 0);
    assert_eq!(trusting.authority.next_ca.as_ref().unwrap().generation, 1);
    assert_eq!(
        trusting.authority.trust_generation, 1,
        "the pod template rolls the brokers"
    );
    assert_eq!(certificates(&trusting.authority.trusted_pem).len(), 2);
    let old_ca = cert::ca_info(&created.authority.ca).unwrap();
    for keystore in trusting.keystores.values() {
        assert!(keystore_info(keystore).unwrap().issued_by(&old_ca));
    }
    // Until every broker pod started with the new bundle, nothing moves.
    for not_yet in [None, Some(0)] {
        let waiting = renew(&stored(&trusting), &want(&names, 3, t1 + DAY, not_yet)).unwrap();
        assert_eq!(
            waiting,
            Pki {
                issued: vec![],
                ..trusting.clone()
            }
        );
    }
    // Every broker trusts v1: it signs every broker certificate; v0's key is gone.
    let t2 = t1 + 2 * DAY;
    let switched = renew(&stored(&trusting), &want(&names, 3, t2, Some(1))).unwrap();
    assert_eq!(
        switched.authority.ca,
        trusting.authority.next_ca.clone().unwrap()
    );
    assert!(!switched.renewing());
    assert_eq!(switched.authority.trust_generation, 1, "no second roll");
    assert_eq!(switched.issued, ["broker 0", "broker 1", "broker 2"]);
    let sorted = |pem: &str| {
        let mut certs = certificates(pem);
        certs.sort();
        certs
    };
    assert_eq!(
        sorted(&switched.authority.trusted_pem),
        sorted(&trusting.authority.trusted_pem),
        "v0 still trusted"
    );
    // Once v0 has expired it leaves the bundle.
    let t3 = T0 + 366 * DAY;
    let dropped = renew(&stored(&switched), &want(&names, 3, t3, Some(1))).unwrap();
    assert!(dropped.issued.is_empty());
    assert_eq!(certificates(&dropped.authority.trusted_pem).len(), 1);
    assert_eq!(
        dropped.authority.trusted_pem,
        cert::split_pem(&switched.authority.ca.cert_pem).concat()
    );
    assert_mutual_trust(&[&created, &trusting], t1);
    assert_mutual_trust(&[&trusting, &switched], t2);
    assert_mutual_trust(&[&switched, &dropped], t3);
}

#[test]
fn a_lost_ca_key_gets_a_new_generation_and_the_old_ca_stays_trusted() {
    let names = names();
    let created = renew(&Stored::default(), &want(&names, 1, T0, None)).unwrap();
    let mut lost = stored(&created);
    lost.authority.ca = None;
    let recovered = renew(&lost, &want(&names, 1, T0 + DAY, Some(0))).unwrap();
    assert_eq!(
        recovered.authority.ca.generation, 1,
        "v0's name is taken by the old CA"
    );
    assert_eq!(recovered.issued, ["CA v1", "broker 0"]);
    assert_eq!(certificates(&recovered.authority.trusted_pem).len(), 2);
    assert_eq!(recovered.authority.trust_generation, 1);
}

#[test]
fn a_ca_whose_key_does_not_match_is_replaced() {
    let names = names();
    let a = renew(&Stored::default(), &want(&names, 1, T0, None)).unwrap();
    let b = renew(&Stored::default(), &want(&names, 1, T0, None)).unwrap();
    let mut mixed = stored(&a);
    mixed.authority.ca = Some(CaMaterial {
        key_pem: b.authority.ca.key_pem.clone(),
        ..a.authority.ca.clone()
    });
    let fixed = renew(&mixed, &want(&names, 1, T0, Some(0))).unwrap();
    assert_ne!(fixed.authority.ca.key_pem, b.authority.ca.key_pem);
    assert_eq!(fixed.authority.ca.generation, 1);
}

fn pod(name: &str, ready: bool, trust: Option<&str>) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            annotations: trust.map(|t| [(TRUST_ANNOTATION.to_string(), t.to_string())].into()),
            ..ObjectMeta::default()
        },
        status: Some(PodStatus {
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..PodCondition::default()
            }]),
            ..PodStatus::default()
        }),
        ..Pod::default()
    }
}

#[test]
fn trust_of_the_pods_is_the_oldest_and_needs_every_pod_ready() {
    let names = names();
    let pods = vec![
        pod("main-0", true, Some("1")),
        pod("main-1", true, Some("0")),
        pod("main-2", true, Some("1")),
    ];
    assert_eq!(trusted_by_all(&names, &pods, 3), Some(0));
    assert_eq!(trusted_by_all(&names, &pods[..1], 1), Some(1));
    assert_eq!(
        trusted_by_all(&names, &pods[..2], 3),
        None,
        "main-2 missing"
    );
    let unready = vec![pod("main-0", false, Some("1"))];
    assert_eq!(trusted_by_all(&names, &unready, 1), None);
    let unannotated = vec![pod("main-0", true, None)];
    assert_eq!(trusted_by_all(&names, &unannotated, 1), None);
}

#[test]
fn a_broker_reached_from_outside_has_its_external_host_in_its_certificate() {
    let names = names();
    let mut w = want(&names, 2, T0, None);
    w.external_hosts =
        BTreeMap::from([(0, "kafka-0.example.com".into()), (1, "203.0.113.7".into())]);
    let first = renew(&Stored::default(), &w).unwrap();
    let b0 = keystore_info(&first.keystores[&0]).unwrap();
    assert!(b0.dns_names.contains(&"kafka-0.example.com".to_string()));
    let b1 = keystore_info(&first.keystores[&1]).unwrap();
    assert_eq!(b1.ip_addresses, vec!["203.0.113.7".to_string()]);
    // Kept while the hosts stay; re-issued for a broker whose host changes.
    let again = renew(&stored(&first), &w).unwrap();
    assert_eq!(again.keystores, first.keystores);
    w.external_hosts.insert(1, "kafka-1.example.com".into());
    let moved = renew(&stored(&first), &w).unwrap();
    assert_eq!(moved.keystores[&0], first.keystores[&0]);
    assert_ne!(moved.keystores[&1], first.keystores[&1]);
    let b1 = keystore_info(&moved.keystores[&1]).unwrap();
    assert!(b1.dns_names.contains(&"kafka-1.example.com".to_string()));
    assert!(b1.ip_addresses.is_empty());
}

/// The clients CA's policy at `now` with the brokers trusting `trusted_by_all`.
fn clients_policy(now: i64, trusted_by_all: Option<i64>, requested: Option<&str>) -> CaPolicy {
    CaPolicy {
        validity_days: 365,
        renewal_days: 30,
        now,
        trusted_by_all,
        renew_requested: requested.map(str::to_string),
    }
}

fn stored_ca(ca: &Ca) -> StoredCa {
    StoredCa {
        ca: Some(ca.ca.clone()),
        next_ca: ca.next_ca.clone(),
        trusted_pem: ca.trusted_pem.clone(),
        renewed_for: ca.renewed_for.clone(),
    }
}

/// Whether a mutual-TLS listener trusting `bundle` accepts the client certificate `cert_pem`.
fn accepts_client(bundle: &str, cert_pem: &str, now: i64) -> bool {
    let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(now as u64));
    let client = WebPkiClientVerifier::builder_with_provider(roots(bundle), provider())
        .build()
        .unwrap();
    client.verify_client_cert(&leaf(cert_pem), &[], at).is_ok()
}

#[test]
fn a_renewal_asked_for_starts_once_per_value() {
    let names = names();
    let created = renew(&Stored::default(), &want(&names, 1, T0, None)).unwrap();
    let mut asked = want(&names, 1, T0 + DAY, Some(0));
    asked.policy.renew_requested = Some("2026-12-06".into());
    let renewing = renew(&stored(&created), &asked).unwrap();
    assert_eq!(renewing.issued, ["CA v1"], "far from its renewal window");
    assert_eq!(
        renewing.authority.renewed_for.as_deref(),
        Some("2026-12-06")
    );
    assert_eq!(renewing.authority.trust_generation, 1);
    // Every broker trusts v1: it signs, and the answered request starts nothing more.
    asked.policy.trusted_by_all = Some(1);
    let switched = renew(&stored(&renewing), &asked).unwrap();
    assert_eq!(switched.authority.ca.generation, 1);
    assert!(!switched.renewing());
    let again = renew(&stored(&switched), &asked).unwrap();
    assert!(!again.renewing() && again.issued.is_empty());
    // A new value is a new request.
    asked.policy.renew_requested = Some("again".into());
    let next = renew(&stored(&again), &asked).unwrap();
    assert_eq!(next.authority.next_ca.unwrap().generation, 2);
}

#[test]
fn a_renewal_asked_for_on_a_new_cluster_issues_one_ca() {
    let names = names();
    let mut asked = want(&names, 1, T0, None);
    asked.policy.renew_requested = Some("x".into());
    let pki = renew(&Stored::default(), &asked).unwrap();
    assert_eq!(pki.issued, ["CA v0", "broker 0"]);
    assert_eq!(pki.authority.renewed_for.as_deref(), Some("x"));
}

#[test]
fn the_clients_ca_is_renewed_trust_first_and_its_old_users_stay_trusted() {
    let names = names();
    let mut issued = Vec::new();
    let first = rotation::rotate(
        CaKind::Clients,
        &names,
        &StoredCa::default(),
        &clients_policy(T0, None, None),
        &mut issued,
    )
    .unwrap();
    assert_eq!(
        (first.ca.generation, issued.as_slice()),
        (0, &["clients CA v0".to_string()][..])
    );
    let signer = clients::clients_signer(&names, &first.ca).unwrap();
    let (old_user, _) = clients::user_certificate("app", &signer, T0, 365).unwrap();

    // 340 days later, inside the renewal window: v1 is trusted, v0 still signs.
    let t1 = T0 + 340 * DAY;
    let trusting = rotation::rotate(
        CaKind::Clients,
        &names,
        &stored_ca(&first),
        &clients_policy(t1, Some(0), None),
        &mut issued,
    )
    .unwrap();
    assert_eq!(trusting.ca, first.ca);
    let next = trusting.next_ca.clone().unwrap();
    assert_eq!(next.generation, 1);
    assert_eq!(
        cert::ca_info(&next).unwrap().common_name.as_deref(),
        Some("kafka/main clients CA v1")
    );
    assert_eq!(trusting.trust_generation, 1);
    assert_eq!(certificates(&trusting.trusted_pem).len(), 2);

    // Every broker started with v1 in its bundle: v1 signs; v0's users are still accepted.
    let switched = rotation::rotate(
        CaKind::Clients,
        &names,
        &stored_ca(&trusting),
        &clients_policy(t1 + DAY, Some(1), None),
        &mut issued,
    )
    .unwrap();
    assert_eq!(switched.ca, next);
    assert!(!switched.renewing());
    let signer = clients::clients_signer(&names, &switched.ca).unwrap();
    let (new_user, _) = clients::user_certificate("app", &signer, t1 + DAY, 365).unwrap();
    assert!(accepts_client(&switched.trusted_pem, &new_user, t1 + DAY));
    assert!(accepts_client(&switched.trusted_pem, &old_user, t1 + DAY));
    assert!(
        !accepts_client(&first.trusted_pem, &new_user, t1 + DAY),
        "a broker still on the first bundle would refuse it: hence the roll before the switch"
    );
}

#[test]
fn pods_without_a_clients_trust_annotation_trust_the_first_clients_ca() {
    let names = names();
    let plain = pod("main-0", true, None);
    assert_eq!(
        clients_trusted_by_all(&names, std::slice::from_ref(&plain), 1),
        Some(0)
    );
    let mut annotated = plain;
    annotated.metadata.annotations = Some(BTreeMap::from([(
        CLIENTS_TRUST_ANNOTATION.to_string(),
        "2".to_string(),
    )]));
    assert_eq!(clients_trusted_by_all(&names, &[annotated], 1), Some(2));
}
