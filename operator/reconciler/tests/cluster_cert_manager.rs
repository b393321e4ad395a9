//! `spec.clusterCa.issuerRef` against the fake API server and `common::cert_manager`, which
//! plays cert-manager with a CA issuer: the operator asks for one Certificate per broker and
//! makes no CA of its own; a new cluster's StatefulSet waits until every broker has its
//! certificate, and the brokers then hold exactly what cert-manager issued and trust its CA;
//! when the issuer's CA changes, the new CA is trusted first (the pod template names a new
//! trust generation, which rolls the brokers) and the certificates it signed are used only once
//! every broker started trusting it; a running cluster switched from the operator's CA to an
//! issuer goes the same way; without cert-manager, a condition says so.

use crate::common;

use std::sync::Arc;

use base64::Engine as _;
use common::access::Scope;
use common::cert_manager::{CERTIFICATES, FakeCertManager};
use common::{FakeApi, FakeKafka, context, fixture};
use krait_crd::KafkaCluster;
use krait_operator::cluster::pki::TRUST_ANNOTATION;
use krait_operator::cluster::reconcile;
use serde_json::{Value, json};

const CLUSTERS: &str = "/apis/krait.dev/v1alpha1/namespaces/kafka/kafkaclusters";
const STATEFULSETS: &str = "/apis/apps/v1/namespaces/kafka/statefulsets";
const PODS: &str = "/api/v1/namespaces/kafka/pods";
const SECRETS: &str = "/api/v1/namespaces/kafka/secrets";

fn with_issuer() -> Value {
    let mut c = fixture("minimal.yaml");
    c["spec"]["clusterCa"] = json!({"validityDays": 90, "renewalDays": 20,
        "issuerRef": {"name": "corp-ca", "kind": "ClusterIssuer"}});
    c
}

fn cluster(api: &FakeApi) -> KafkaCluster {
    serde_json::from_value(api.get(CLUSTERS, "main").unwrap()).unwrap()
}

async fn reconcile_stored(api: &FakeApi, kafka: &FakeKafka) {
    reconcile::reconcile(Arc::new(cluster(api)), context(api, kafka))
        .await
        .unwrap();
}

/// (status, reason, message) of a condition, if present.
fn condition(api: &FakeApi, kind: &str) -> Option<(String, String, String)> {
    let status = cluster(api).status.expect("status written");
    let c = status.conditions.iter().find(|c| c.type_ == kind)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

fn text(api: &FakeApi, secret: &str, key: &str) -> String {
    let secret = api
        .get(SECRETS, secret)
        .unwrap_or_else(|| panic!("{secret} missing"));
    let data = secret["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing"));
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap(),
    )
    .unwrap()
}

/// What cert-manager issued to broker `id`, as the brokers' keystore holds it.
fn issued_keystore(api: &FakeApi, id: i32) -> String {
    let secret = format!("main-{id}-tls");
    format!(
        "{}{}",
        text(api, &secret, "tls.key"),
        text(api, &secret, "tls.crt")
    )
}

fn keystore(api: &FakeApi, id: i32) -> String {
    text(api, "main-broker-certs", &format!("main-{id}.pem"))
}

fn template_trust(api: &FakeApi) -> String {
    let sts = api.get(STATEFULSETS, "main").unwrap();
    sts["spec"]["template"]["metadata"]["annotations"][TRUST_ANNOTATION]
        .as_str()
        .unwrap()
        .to_string()
}

/// Plays the StatefulSet controller: a Ready pod per ordinal started from the current
/// template (so carrying its trust annotation), the rollout finished.
fn run_statefulset(api: &FakeApi, revision: &str) {
    let mut sts = api.get(STATEFULSETS, "main").unwrap();
    for id in 0..3 {
        let template = &sts["spec"]["template"]["metadata"];
        api.put(
            PODS,
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("main-{id}"), "namespace": "kafka",
                    "labels": template["labels"], "annotations": template["annotations"]},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        );
    }
    sts["status"] = json!({"observedGeneration": sts["metadata"]["generation"], "replicas": 3,
        "readyReplicas": 3, "updatedReplicas": 3, "currentRevision": revision,
        "updateRevision": revision});
    api.put(STATEFULSETS, sts);
}

#[tokio::test]
async fn a_new_cluster_waits_for_the_issuers_certificates_then_runs_on_them() {
    let (api, kafka) = (FakeApi::default(), FakeKafka::default());
    let mut cert_manager = FakeCertManager::install(&api);
    api.put(CLUSTERS, with_issuer());
    reconcile_stored(&api, &kafka).await;

    let mut certificates = api.names(CERTIFICATES);
    certificates.sort();
    assert_eq!(certificates, ["main-0", "main-1", "main-2"]);
    let spec = api.get(CERTIFICATES, "main-1").unwrap()["spec"].clone();
    assert_eq!(spec["issuerRef"]["name"], "corp-ca");
    assert_eq!(spec["secretName"], "main-1-tls");
    assert!(
        api.get(STATEFULSETS, "main").is_none(),
        "no broker starts without its certificate"
    );
    assert!(
        api.get(SECRETS, "main-cluster-ca").is_none(),
        "no CA of the operator's own"
    );
    let (status, reason, message) = condition(&api, "CertificatesReady").unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "CertificatesPending")
    );
    assert!(
        message.contains("ClusterIssuer corp-ca") && message.contains("broker 2"),
        "{message}"
    );

    cert_manager.tick();
    assert_eq!(cert_manager.issued, 3);
    reconcile_stored(&api, &kafka).await;
    assert!(
        api.get(STATEFULSETS, "main").is_some(),
        "formed once issued"
    );
    for id in 0..3 {
        assert_eq!(keystore(&api, id), issued_keystore(&api, id), "broker {id}");
    }
    assert_eq!(
        text(&api, "main-cluster-ca-cert", "ca.crt"),
        cert_manager.ca_pem(),
        "the brokers and their clients trust the issuer's CA"
    );
    assert_eq!(template_trust(&api), "0");
    run_statefulset(&api, "r1");
    reconcile_stored(&api, &kafka).await;
    let (status, reason, _) = condition(&api, "CertificatesReady").unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "CertificatesIssued")
    );
    assert_eq!(condition(&api, "Ready").unwrap().0, "True");
    let ca = cluster(&api).status.unwrap().cluster_ca.unwrap();
    assert_eq!((ca.generation, ca.state.as_str()), (0, "Ready"));
    assert!(!ca.not_after.is_empty());
    let reasons = api.event_reasons("kafka");
    assert!(
        reasons.contains(&"Warning CertificatesPending".to_string())
            && reasons.contains(&"Normal CertificatesIssued".to_string()),
        "{reasons:?}"
    );

    // The issuer no longer named: the operator's own CA takes over and the Certificates go.
    let mut c = api.get(CLUSTERS, "main").unwrap();
    c["spec"]["clusterCa"]
        .as_object_mut()
        .unwrap()
        .remove("issuerRef");
    c["metadata"]["generation"] = json!(2);
    api.put(CLUSTERS, c);
    reconcile_stored(&api, &kafka).await;
    assert!(
        api.names(CERTIFICATES).is_empty(),
        "{:?}",
        api.names(CERTIFICATES)
    );
    assert!(
        api.get(SECRETS, "main-cluster-ca").is_some(),
        "a CA of the operator's"
    );
    assert_eq!(condition(&api, "CertificatesReady"), None);
    api.check_accesses("cluster_cert_manager", Scope::Namespaced);
}

#[tokio::test]
async fn a_new_issuer_ca_is_trusted_by_every_broker_before_its_certificates_are_used() {
    let (api, kafka) = (FakeApi::default(), FakeKafka::default());
    let mut cert_manager = FakeCertManager::install(&api);
    api.put(CLUSTERS, with_issuer());
    reconcile_stored(&api, &kafka).await;
    cert_manager.tick();
    reconcile_stored(&api, &kafka).await;
    run_statefulset(&api, "r1");
    reconcile_stored(&api, &kafka).await;
    let before: Vec<String> = (0..3).map(|id| keystore(&api, id)).collect();

    // The issuer's CA changes, and broker 1's certificate comes up for renewal.
    cert_manager.new_ca();
    cert_manager.renew("main-1");
    reconcile_stored(&api, &kafka).await;
    assert_eq!(template_trust(&api), "1", "the new CA rolls the brokers");
    let bundle = text(&api, "main-cluster-ca-cert", "ca.crt");
    assert_eq!(
        bundle.matches("BEGIN CERTIFICATE").count(),
        2,
        "old and new CA"
    );
    assert!(bundle.contains(cert_manager.ca_pem().trim()));
    assert_eq!(
        keystore(&api, 1),
        before[1],
        "not used before every broker trusts it"
    );
    let (status, reason, message) = condition(&api, "CertificatesReady").unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "WaitingForTrust")
    );
    assert!(message.contains("broker(s) 1"), "{message}");
    let ca = cluster(&api).status.unwrap().cluster_ca.unwrap();
    assert_eq!((ca.generation, ca.state.as_str()), (1, "Renewing"));

    // The roll: every pod restarted from the template that trusts generation 1.
    run_statefulset(&api, "r2");
    reconcile_stored(&api, &kafka).await;
    assert_eq!(keystore(&api, 1), issued_keystore(&api, 1), "switched");
    assert_eq!(keystore(&api, 0), before[0]);
    assert_eq!(template_trust(&api), "1", "no second roll");
    let (status, reason, _) = condition(&api, "CertificatesReady").unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "CertificatesIssued")
    );
    assert_eq!(
        cluster(&api).status.unwrap().cluster_ca.unwrap().state,
        "Ready"
    );

    // The others renewed later from the same CA: taken at once, no roll.
    cert_manager.renew_all();
    reconcile_stored(&api, &kafka).await;
    for id in 0..3 {
        assert_eq!(keystore(&api, id), issued_keystore(&api, id), "broker {id}");
    }
    assert_eq!(template_trust(&api), "1");
}

#[tokio::test]
async fn without_cert_manager_nothing_is_asked_of_it_and_the_condition_says_why() {
    let (api, kafka) = (FakeApi::default(), FakeKafka::default());
    api.put(CLUSTERS, with_issuer());
    reconcile_stored(&api, &kafka).await;
    let (status, reason, message) = condition(&api, "CertificatesReady").unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "CertManagerNotInstalled")
    );
    assert!(message.contains("cert-manager.io/v1"), "{message}");
    assert!(api.get(STATEFULSETS, "main").is_none());
    let asked: Vec<_> = api
        .accesses()
        .into_iter()
        .filter(|a| a.group == "cert-manager.io")
        .collect();
    assert!(asked.is_empty(), "{asked:?}");
    // Installed later: the next reconcile asks for the certificates.
    let mut cert_manager = FakeCertManager::install(&api);
    reconcile_stored(&api, &kafka).await;
    assert_eq!(api.names(CERTIFICATES).len(), 3);
    cert_manager.tick();
    reconcile_stored(&api, &kafka).await;
    assert!(api.get(STATEFULSETS, "main").is_some());
}

#[tokio::test]
async fn a_running_cluster_switched_to_an_issuer_trusts_its_ca_before_using_its_certificates() {
    let (api, kafka) = (FakeApi::default(), FakeKafka::default());
    let mut cert_manager = FakeCertManager::install(&api);
    api.put(CLUSTERS, fixture("minimal.yaml"));
    reconcile_stored(&api, &kafka).await;
    run_statefulset(&api, "r1");
    reconcile_stored(&api, &kafka).await;
    assert_eq!(condition(&api, "Ready").unwrap().0, "True");
    let operators: Vec<String> = (0..3).map(|id| keystore(&api, id)).collect();
    let operators_ca = text(&api, "main-cluster-ca-cert", "ca.crt");
    let trusted_before = template_trust(&api);

    // The platform team names its issuer in the running cluster.
    let mut c = api.get(CLUSTERS, "main").unwrap();
    c["spec"]["clusterCa"] = with_issuer()["spec"]["clusterCa"].clone();
    c["metadata"]["generation"] = json!(2);
    api.put(CLUSTERS, c);
    reconcile_stored(&api, &kafka).await;
    assert_eq!(api.names(CERTIFICATES).len(), 3);
    let (status, reason, _) = condition(&api, "CertificatesReady").unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "CertificatesPending")
    );
    for id in 0..3 {
        assert_eq!(
            keystore(&api, id),
            operators[id as usize],
            "broker {id} keeps its certificate meanwhile"
        );
    }

    // Issued: the issuer's CA joins the operator's in the bundle and rolls the brokers, and
    // no broker presents the issuer's certificate to a peer that does not trust it yet.
    cert_manager.tick();
    reconcile_stored(&api, &kafka).await;
    let bundle = text(&api, "main-cluster-ca-cert", "ca.crt");
    assert!(
        bundle.contains(operators_ca.trim()),
        "the operator's CA still trusted"
    );
    assert!(
        bundle.contains(cert_manager.ca_pem().trim()),
        "the issuer's CA trusted"
    );
    assert_ne!(
        template_trust(&api),
        trusted_before,
        "the new CA rolls the brokers"
    );
    for id in 0..3 {
        assert_eq!(
            keystore(&api, id),
            operators[id as usize],
            "broker {id} before the roll"
        );
    }
    let (status, reason, _) = condition(&api, "CertificatesReady").unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "WaitingForTrust")
    );

    // Rolled: every broker now runs on what cert-manager issued, with no second roll.
    let trusted_after = template_trust(&api);
    run_statefulset(&api, "r2");
    reconcile_stored(&api, &kafka).await;
    for id in 0..3 {
        assert_eq!(keystore(&api, id), issued_keystore(&api, id), "broker {id}");
    }
    assert_eq!(template_trust(&api), trusted_after, "no second roll");
    let (status, reason, _) = condition(&api, "CertificatesReady").unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "CertificatesIssued")
    );
    assert_eq!(condition(&api, "Ready").unwrap().0, "True");
}
