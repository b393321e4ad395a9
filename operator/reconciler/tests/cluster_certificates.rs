//! The cluster certificates the operator issues, against the fake API server: the Secrets a new
//! cluster gets and how the brokers mount them, a broker certificate renewed in place, a CA
//! renewed through trust-both and a roll, and brokers' own TLS code (krait-peer's acceptor and
//! krait-tls' client) accepting the issued certificates from each other and refusing another
//! cluster's.

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use common::{FakeApi, FakeCluster, FakeKafka, context, fixture};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use krait_crd::KafkaCluster;
use krait_operator::cluster::build::{
    broker_certs_secret, cluster_ca_cert_secret, cluster_ca_secret, secret::stored_pki,
};
use krait_operator::cluster::pki::{self, cert};
use krait_operator::cluster::reconcile;
use krait_operator::cluster::validate::{ValidatedCluster, validate};
use krait_operator::cluster_admin::{BrokerObserved, ClusterState};
use krait_peer::{ClusterTls, ClusterTransport};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::server::Connected;

const CLUSTERS: &str = "/apis/krait.dev/v1alpha1/namespaces/kafka/kafkaclusters";
const STATEFULSETS: &str = "/apis/apps/v1/namespaces/kafka/statefulsets";
const PODS: &str = "/api/v1/namespaces/kafka/pods";
const SECRETS: &str = "/api/v1/namespaces/kafka/secrets";
const DAY: i64 = 86_400;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The minimal fixture (3 brokers) with a healthy running cluster behind it.
struct World {
    api: FakeApi,
    kafka: FakeKafka,
}

impl World {
    fn new() -> Self {
        let api = FakeApi::default();
        api.put(CLUSTERS, fixture("minimal.yaml"));
        let cluster = FakeCluster::default();
        *cluster.state.lock().unwrap() = ClusterState {
            controller_id: Some(0),
            brokers: (0..3)
                .map(|id| BrokerObserved {
                    id,
                    rack: None,
                    fenced: false,
                })
                .collect(),
            ..ClusterState::default()
        };
        let kafka = FakeKafka {
            cluster: Some(cluster),
            ..FakeKafka::default()
        };
        Self { api, kafka }
    }

    fn stored(&self) -> KafkaCluster {
        serde_json::from_value(self.api.get(CLUSTERS, "main").unwrap()).unwrap()
    }

    fn validated(&self) -> ValidatedCluster {
        validate(&self.stored()).unwrap()
    }

    async fn reconcile(&self) {
        reconcile::reconcile(Arc::new(self.stored()), context(&self.api, &self.kafka))
            .await
            .unwrap();
    }

    fn secret(&self, name: &str) -> Secret {
        serde_json::from_value(self.api.get(SECRETS, name).expect(name)).unwrap()
    }

    fn secrets(&self) -> Vec<Secret> {
        [
            "main-cluster-ca",
            "main-cluster-ca-cert",
            "main-broker-certs",
        ]
        .iter()
        .filter_map(|n| self.api.get(SECRETS, n))
        .map(|s| serde_json::from_value(s).unwrap())
        .collect()
    }

    /// Stores the Secrets of `pki`, as an earlier reconcile would have.
    fn put_pki(&self, pki: &pki::Pki) {
        let v = self.validated();
        let whole = pki::ClusterPki::Operator(pki.clone());
        for secret in [
            cluster_ca_secret(&v, pki),
            cluster_ca_cert_secret(&v, &whole),
            broker_certs_secret(&v, &whole),
        ] {
            self.api.put(SECRETS, serde_json::to_value(secret).unwrap());
        }
    }

    fn set_revision(&self, revision: &str) {
        let mut sts = self.api.get(STATEFULSETS, "main").unwrap();
        sts["status"] = json!({"observedGeneration": sts["metadata"]["generation"],
            "replicas": 3, "readyReplicas": 3, "updatedReplicas": 3,
            "currentRevision": "r1", "updateRevision": revision});
        self.api.put(STATEFULSETS, sts);
    }

    /// A Ready broker pod of `revision` created from a template trusting CA `trust`.
    fn put_pod(&self, id: i32, revision: &str, trust: i64) {
        self.put_pod_annotated(
            id,
            revision,
            json!({pki::TRUST_ANNOTATION: trust.to_string()}),
        );
    }

    /// A Ready broker pod of `revision` with the pod-template `annotations`.
    fn put_pod_annotated(&self, id: i32, revision: &str, annotations: serde_json::Value) {
        self.api.put(
            PODS,
            json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("main-{id}"), "namespace": "kafka",
                "labels": {"app.kubernetes.io/name": "krait",
                           "app.kubernetes.io/instance": "main",
                           "app.kubernetes.io/component": "broker",
                           "app.kubernetes.io/managed-by": "krait-operator",
                           "controller-revision-hash": revision},
                "annotations": annotations},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        );
    }

    fn template_trust(&self) -> String {
        self.template_annotation(pki::TRUST_ANNOTATION).unwrap()
    }

    fn template_annotation(&self, key: &str) -> Option<String> {
        let sts = self.api.get(STATEFULSETS, "main").unwrap();
        sts["spec"]["template"]["metadata"]["annotations"][key]
            .as_str()
            .map(str::to_string)
    }

    /// Edits the stored cluster's JSON.
    fn edit(&self, edit: impl FnOnce(&mut serde_json::Value)) {
        let mut cluster = self.api.get(CLUSTERS, "main").unwrap();
        edit(&mut cluster);
        self.api.put(CLUSTERS, cluster);
    }

    fn evictions(&self) -> Vec<String> {
        self.api
            .take_writes()
            .into_iter()
            .filter(|w| w.ends_with("/eviction"))
            .collect()
    }
}

fn text(secret: &Secret, key: &str) -> String {
    String::from_utf8(secret.data.as_ref().unwrap()[key].0.clone()).unwrap()
}

fn leaf_info(secret: &Secret, id: i32) -> cert::CertInfo {
    cert::keystore_info(&text(secret, &format!("main-{id}.pem"))).unwrap()
}

#[tokio::test]
async fn a_new_cluster_gets_its_certificates_mounted_and_no_plaintext_cluster_port() {
    let w = World::new();
    w.reconcile().await;
    let ca = w.secret("main-cluster-ca");
    let ca_cert = cert::ca_info(
        &stored_pki(&w.validated(), &w.secrets())
            .authority
            .ca
            .unwrap(),
    )
    .unwrap();
    assert!(text(&ca, "ca.key").contains("PRIVATE KEY"));
    let bundle = w.secret("main-cluster-ca-cert");
    assert!(
        !text(&bundle, "ca.crt").contains("PRIVATE KEY"),
        "the readable Secret holds no key"
    );
    let brokers = w.secret("main-broker-certs");
    assert_eq!(brokers.data.as_ref().unwrap().len(), 3);
    for id in 0..3 {
        let leaf = leaf_info(&brokers, id);
        assert!(leaf.issued_by(&ca_cert));
        assert_eq!(leaf.uris, [format!("urn:krait:node:{id}")]);
    }
    for secret in [&ca, &bundle, &brokers] {
        let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("KafkaCluster", Some(true))
        );
    }

    let sts = w.api.get(STATEFULSETS, "main").unwrap();
    let pod = &sts["spec"]["template"]["spec"];
    let args: Vec<String> = serde_json::from_value(pod["containers"][0]["args"].clone()).unwrap();
    assert!(!args.contains(&"--allow-plaintext-cluster".to_string()));
    assert!(args.contains(&"--cluster-tls-keystore=/etc/krait/cluster-tls/$(POD_NAME).pem".into()));
    assert!(args.contains(&"--cluster-tls-truststore=/etc/krait/cluster-tls/ca.crt".into()));
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "cluster-tls")
        .unwrap();
    let sources: Vec<&str> = volume["projected"]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["secret"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["main-broker-certs", "main-cluster-ca-cert"]);
    let mount = pod["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "cluster-tls")
        .unwrap();
    assert_eq!(mount["mountPath"], "/etc/krait/cluster-tls");
    assert_eq!(mount["readOnly"], true);

    let status = w.stored().status.unwrap().cluster_ca.unwrap();
    assert_eq!(status.secret_name, "main-cluster-ca-cert");
    assert_eq!((status.generation, status.state.as_str()), (0, "Ready"));
    let not_after: k8s_openapi::jiff::Timestamp = status.not_after.parse().unwrap();
    assert_eq!(not_after.as_second(), ca_cert.not_after);
    assert!((ca_cert.not_after - now() - 365 * DAY).abs() < 60);
}

#[tokio::test]
async fn a_broker_certificate_inside_its_renewal_window_is_renewed_without_a_roll() {
    let w = World::new();
    w.reconcile().await;
    w.api.take_writes();
    // Broker 1's certificate has 20 days left (renewal starts 30 days before expiry).
    let stored = stored_pki(&w.validated(), &w.secrets());
    let names = &w.validated().names;
    let signer = cert::signer(names, stored.authority.ca.as_ref().unwrap()).unwrap();
    let short = cert::broker_keystore(names, 1, &signer, now() - 345 * DAY, 365).unwrap();
    let mut brokers = w.api.get(SECRETS, "main-broker-certs").unwrap();
    brokers["data"]["main-1.pem"] = json!(base64::engine::general_purpose::STANDARD.encode(short));
    w.api.put(SECRETS, brokers);
    let before = w.secret("main-broker-certs");

    w.reconcile().await;
    assert_eq!(w.api.take_writes(), ["PATCH secrets/main-broker-certs"]);
    let after = w.secret("main-broker-certs");
    assert_eq!(text(&after, "main-0.pem"), text(&before, "main-0.pem"));
    let renewed = leaf_info(&after, 1);
    assert!(renewed.not_after > now() + 364 * DAY);
    let ca_cert = cert::ca_info(stored.authority.ca.as_ref().unwrap()).unwrap();
    assert!(
        renewed.issued_by(&ca_cert),
        "the same CA: every broker trusts it"
    );
}

#[tokio::test]
async fn a_ca_renewal_is_trusted_by_every_broker_before_it_signs() {
    let w = World::new();
    // A cluster whose CA and certificates were issued 340 days ago.
    let names = w.validated().names.clone();
    let aged = pki::renew(
        &pki::Stored::default(),
        &pki::Want {
            names: &names,
            brokers: (0..3).collect(),
            policy: pki::CaPolicy {
                validity_days: 365,
                renewal_days: 30,
                now: now() - 340 * DAY,
                trusted_by_all: None,
                renew_requested: None,
            },
            external_hosts: Default::default(),
        },
    )
    .unwrap();
    w.put_pki(&aged);
    w.reconcile().await;
    w.set_revision("r1");
    for id in 0..3 {
        w.put_pod(id, "r1", 0);
    }
    w.api.take_writes();

    // Inside the CA's renewal window: the successor joins the trust bundle and the template.
    w.reconcile().await;
    let status = w.stored().status.unwrap().cluster_ca.unwrap();
    assert_eq!((status.generation, status.state.as_str()), (0, "Renewing"));
    assert_eq!(w.template_trust(), "1");
    let bundle = text(&w.secret("main-cluster-ca-cert"), "ca.crt");
    assert_eq!(cert::certificates(&bundle).len(), 2);
    let old_ca = cert::ca_info(&aged.authority.ca).unwrap();
    for id in 0..3 {
        let leaf = leaf_info(&w.secret("main-broker-certs"), id);
        assert!(leaf.issued_by(&old_ca), "the old CA still signs");
    }

    // The new template rolls the brokers, one at a time; the old CA signs meanwhile.
    w.set_revision("r2");
    w.reconcile().await;
    assert_eq!(w.evictions(), ["POST pods/main-2/eviction"]);
    w.put_pod(2, "r2", 1);
    w.reconcile().await;
    assert_eq!(w.evictions(), ["POST pods/main-1/eviction"]);
    assert_eq!(
        w.stored().status.unwrap().cluster_ca.unwrap().state,
        "Renewing"
    );
    w.put_pod(1, "r2", 1);
    w.reconcile().await;
    assert_eq!(w.evictions(), ["POST pods/main-0/eviction"]);
    w.put_pod(0, "r2", 1);

    // Every broker started trusting v1: it signs every certificate, with no further roll.
    w.reconcile().await;
    let writes = w.api.take_writes();
    assert!(
        !writes
            .iter()
            .any(|x| x.contains("statefulsets") || x.ends_with("/eviction"))
    );
    let status = w.stored().status.unwrap().cluster_ca.unwrap();
    assert_eq!((status.generation, status.state.as_str()), (1, "Ready"));
    let ca = w.secret("main-cluster-ca");
    assert!(!ca.data.as_ref().unwrap().contains_key("next-ca.key"));
    let new_ca = cert::ca_info(
        &stored_pki(&w.validated(), &w.secrets())
            .authority
            .ca
            .unwrap(),
    )
    .unwrap();
    for id in 0..3 {
        assert!(leaf_info(&w.secret("main-broker-certs"), id).issued_by(&new_ca));
    }
    let bundle = text(&w.secret("main-cluster-ca-cert"), "ca.crt");
    assert_eq!(
        cert::certificates(&bundle).len(),
        2,
        "the old CA is trusted until it expires"
    );
    assert_eq!(w.template_trust(), "1");
}

/// Writes a Secret key to `dir` as the kubelet mounts it.
fn mount(dir: &Path, secret: &Secret, key: &str) -> PathBuf {
    let path = dir.join(key);
    std::fs::write(&path, &secret.data.as_ref().unwrap()[key].0).unwrap();
    path
}

/// A broker's cluster port as the broker runs it (krait-peer's acceptor over the keystore and
/// truststore files, re-read when they change): its address, and the node id of each caller it
/// accepted.
async fn serve(
    keystore: &Path,
    truststore: &Path,
) -> (
    std::net::SocketAddr,
    tokio::sync::mpsc::Receiver<Option<i32>>,
) {
    let server = ClusterTransport::Tls(Arc::new(
        ClusterTls::new(keystore.into(), truststore.into()).unwrap(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let mut incoming = Box::pin(server.incoming(listener));
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        while let Some(Ok(mut io)) = incoming.next().await {
            let mut byte = [0u8; 1];
            if io.read_exact(&mut byte).await.is_ok() && io.write_all(&byte).await.is_ok() {
                let _ = tx.send(io.connect_info().node_id).await;
            }
        }
    });
    (address, rx)
}

/// A call to the cluster port at `address` with `keystore` (krait-tls' client, which also
/// checks that the server's certificate is for `server_name`), echoing one byte: the server's
/// certificate (DER), or the failure.
async fn dial(
    address: std::net::SocketAddr,
    keystore: &Path,
    truststore: &Path,
    server_name: &str,
) -> std::io::Result<Vec<u8>> {
    let client = krait_tls::client_config(&krait_tls::ClientTlsSettings {
        truststore: Some(truststore.into()),
        truststore_pem: None,
        keystore: Some(krait_tls::KeyStore::File(keystore.into())),
        verify_hostname: true,
    })
    .map_err(std::io::Error::other)?;
    let stream = tokio::net::TcpStream::connect(address).await?;
    let mut tls = krait_tls::connect(client, server_name, stream).await?;
    tls.write_all(b"x").await?;
    let mut byte = [0u8; 1];
    tls.read_exact(&mut byte).await?;
    Ok(tls.get_ref().1.peer_certificates().unwrap()[0].to_vec())
}

async fn caller(accepted: &mut tokio::sync::mpsc::Receiver<Option<i32>>) -> Option<i32> {
    tokio::time::timeout(Duration::from_secs(5), accepted.recv())
        .await
        .expect("the server accepted the call")
        .flatten()
}

#[tokio::test]
async fn brokers_accept_each_others_issued_certificates_and_refuse_another_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let w = World::new();
    w.reconcile().await;
    let brokers = w.secret("main-broker-certs");
    let b0 = mount(dir.path(), &brokers, "main-0.pem");
    let b1 = mount(dir.path(), &brokers, "main-1.pem");
    let ca = mount(dir.path(), &w.secret("main-cluster-ca-cert"), "ca.crt");
    let host = "main-0.main-brokers.kafka.svc.cluster.local";
    let (address, mut accepted) = serve(&b0, &ca).await;
    let server = dial(address, &b1, &ca, host).await.unwrap();
    assert_eq!(
        krait_peer::node_id_of(&server),
        Ok(0),
        "the caller knows whom it reached"
    );
    assert_eq!(
        caller(&mut accepted).await,
        Some(1),
        "the server knows its caller"
    );

    // Another cluster's broker (its own CA) is refused, and refuses.
    let other_dir = tempfile::tempdir().unwrap();
    let other = World::new();
    other.reconcile().await;
    let stranger = mount(
        other_dir.path(),
        &other.secret("main-broker-certs"),
        "main-1.pem",
    );
    let other_ca = mount(
        other_dir.path(),
        &other.secret("main-cluster-ca-cert"),
        "ca.crt",
    );
    assert!(dial(address, &stranger, &ca, host).await.is_err());
    assert!(dial(address, &stranger, &other_ca, host).await.is_err());
}

/// Writes `bytes` to `path` by rename, as the kubelet swaps a Secret volume's files.
fn replace(path: &Path, bytes: &[u8]) {
    let staged = path.with_extension("new");
    std::fs::write(&staged, bytes).unwrap();
    std::fs::rename(&staged, path).unwrap();
}

#[tokio::test]
async fn a_renewed_broker_certificate_is_served_without_a_restart_and_trusted_by_its_peers() {
    let dir = tempfile::tempdir().unwrap();
    let w = World::new();
    w.reconcile().await;
    let brokers = w.secret("main-broker-certs");
    let b0 = mount(dir.path(), &brokers, "main-0.pem");
    let b1 = mount(dir.path(), &brokers, "main-1.pem");
    let ca = mount(dir.path(), &w.secret("main-cluster-ca-cert"), "ca.crt");
    let host = "main-0.main-brokers.kafka.svc";
    let (address, mut accepted) = serve(&b0, &ca).await;
    let first = dial(address, &b1, &ca, host).await.unwrap();
    caller(&mut accepted).await;

    // Broker 0's certificate enters its renewal window; the operator re-issues it and the
    // kubelet updates the mounted file.
    let stored = stored_pki(&w.validated(), &w.secrets());
    let names = &w.validated().names;
    let signer = cert::signer(names, stored.authority.ca.as_ref().unwrap()).unwrap();
    let short = cert::broker_keystore(names, 0, &signer, now() - 345 * DAY, 365).unwrap();
    let mut secret = w.api.get(SECRETS, "main-broker-certs").unwrap();
    secret["data"]["main-0.pem"] = json!(base64::engine::general_purpose::STANDARD.encode(short));
    w.api.put(SECRETS, secret);
    w.reconcile().await;
    let renewed = w.secret("main-broker-certs");
    replace(&b0, &renewed.data.as_ref().unwrap()["main-0.pem"].0);

    // The same running server presents the new certificate to a peer still holding its old
    // files, once its once-a-second check sees the change.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let served = loop {
        let served = dial(address, &b1, &ca, host).await.unwrap();
        caller(&mut accepted).await;
        if served != first || std::time::Instant::now() > deadline {
            break served;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_ne!(served, first, "the renewed certificate is served");
    assert_eq!(
        cert::info(&served).unwrap().not_after,
        leaf_info(&renewed, 0).not_after
    );
}

#[tokio::test]
async fn a_cluster_running_a_plaintext_cluster_port_keeps_it_until_switched_over() {
    let w = World::new();
    // As old as its cluster port: its one listener is plaintext too (what the earlier object
    // form of spec.listeners reads as).
    let mut c = w.api.get(CLUSTERS, "main").unwrap();
    c["spec"]["listeners"] = json!({"internal": {"port": 9092}});
    w.api.put(CLUSTERS, c);
    w.reconcile().await;
    // The StatefulSet as an operator that issued no certificates made it.
    let mut sts = w.api.get(STATEFULSETS, "main").unwrap();
    let template = &mut sts["spec"]["template"];
    let args: Vec<String> =
        serde_json::from_value(template["spec"]["containers"][0]["args"].clone()).unwrap();
    let mut plaintext = Vec::new();
    for arg in args {
        if arg.starts_with("--cluster-tls-") {
            continue;
        }
        let listen = arg.starts_with("--cluster-listen=");
        plaintext.push(arg);
        if listen {
            plaintext.push("--allow-plaintext-cluster".to_string());
        }
    }
    template["spec"]["containers"][0]["args"] = json!(plaintext);
    template["spec"]["containers"][0]["volumeMounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["name"] != "cluster-tls");
    template["spec"].as_object_mut().unwrap().remove("volumes");
    template["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove(pki::TRUST_ANNOTATION);
    let old_template = template.clone();
    w.api.put(STATEFULSETS, sts);

    // Rolling it onto TLS would strand the first broker restarted: the pods stay as they are.
    w.reconcile().await;
    let sts = w.api.get(STATEFULSETS, "main").unwrap();
    assert_eq!(sts["spec"]["template"], old_template);
    assert_eq!(
        w.stored().status.unwrap().cluster_ca.unwrap().state,
        "NotInUse"
    );
    assert!(
        w.api.get(SECRETS, "main-broker-certs").is_some(),
        "issued all the same"
    );

    // Asked to, the operator switches the template to mutual TLS.
    let mut c = w.api.get(CLUSTERS, "main").unwrap();
    c["metadata"]["annotations"] = json!({"krait.dev/cluster-tls": "enable"});
    w.api.put(CLUSTERS, c);
    w.reconcile().await;
    let sts = w.api.get(STATEFULSETS, "main").unwrap();
    let args: Vec<String> =
        serde_json::from_value(sts["spec"]["template"]["spec"]["containers"][0]["args"].clone())
            .unwrap();
    assert!(!args.contains(&"--allow-plaintext-cluster".to_string()));
    assert!(
        args.iter()
            .any(|a| a.starts_with("--cluster-tls-keystore="))
    );
    assert_eq!(
        w.stored().status.unwrap().cluster_ca.unwrap().state,
        "Ready"
    );
}

#[tokio::test]
async fn the_clients_ca_renews_on_request_trust_first_then_signs() {
    let w = World::new();
    w.edit(|c| {
        c["spec"]["listeners"] = json!([{"name": "mtls", "port": 9095, "type": "internal",
            "tls": true, "authentication": {"type": "tls"}}]);
    });
    w.reconcile().await;
    w.set_revision("r1");
    for id in 0..3 {
        w.put_pod(id, "r1", 0);
    }
    w.reconcile().await;
    let clients = |w: &World| {
        let ca = w.stored().status.unwrap().clients_ca.unwrap();
        (ca.generation, ca.state, ca.secret_name)
    };
    assert_eq!(
        clients(&w),
        (0, "Ready".into(), "main-clients-ca-cert".into())
    );
    assert_eq!(
        w.template_annotation(pki::CLIENTS_TRUST_ANNOTATION),
        None,
        "no annotation (and no roll) before a renewal"
    );
    let first = text(&w.secret("main-clients-ca"), "ca.crt");

    // Asked for: v1 is trusted (bundle and template), v0 still signs.
    w.edit(|c| c["metadata"]["annotations"] = json!({"krait.dev/renew-clients-ca": "1"}));
    w.reconcile().await;
    assert_eq!(clients(&w).0, 0);
    assert_eq!(clients(&w).1, "Renewing");
    assert_eq!(
        w.template_annotation(pki::CLIENTS_TRUST_ANNOTATION)
            .as_deref(),
        Some("1")
    );
    let bundle = text(&w.secret("main-clients-ca-cert"), "ca.crt");
    assert_eq!(cert::certificates(&bundle).len(), 2);
    assert_eq!(text(&w.secret("main-clients-ca"), "ca.crt"), first);

    // Every broker restarted trusting v1: it signs, once.
    w.set_revision("r2");
    for id in 0..3 {
        w.put_pod_annotated(
            id,
            "r2",
            json!({pki::TRUST_ANNOTATION: "0", pki::CLIENTS_TRUST_ANNOTATION: "1"}),
        );
    }
    w.reconcile().await;
    assert_eq!((clients(&w).0, clients(&w).1.as_str()), (1, "Ready"));
    let ca_secret = w.secret("main-clients-ca");
    assert_ne!(text(&ca_secret, "ca.crt"), first);
    assert!(!ca_secret.data.as_ref().unwrap().contains_key("next-ca.key"));
    assert_eq!(
        ca_secret.metadata.annotations.unwrap()["krait.dev/renewed-for"],
        "1"
    );
    w.reconcile().await;
    assert_eq!(
        (clients(&w).0, clients(&w).1.as_str()),
        (1, "Ready"),
        "the answered request renews nothing more"
    );
    assert_eq!(
        cert::certificates(&text(&w.secret("main-clients-ca-cert"), "ca.crt")).len(),
        2,
        "v0 stays trusted until it expires"
    );
}
