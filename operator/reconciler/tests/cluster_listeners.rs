//! A secured cluster on real `krait-broker` processes: the fake API server holds the objects and
//! `common::kubelet` runs the brokers from the operator's own template. A `KafkaCluster` that
//! names no listeners gets the TLS + SCRAM-SHA-512 listener; with `authorization` the brokers
//! enforce ACLs with the operator's user and the spec's super users. Checked with real clients
//! (librdkafka through the `rdkafka` crate, and `krait-admin`): the operator reaches the brokers
//! with its own credentials (the cluster id in status), a `KafkaTopic` is reconciled onto the
//! secured cluster, a super user produces, a user without ACLs is refused, a wrong password and
//! a plaintext client are refused. Ignored unless asked for; needs `KRAIT_BROKER_BIN`.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::FakeApi;
use common::kubelet::cluster_main;
use common::secured::{TLS_PORT, admin_as, client, cluster, form, produce, secret_value};
use krait_admin::SaslMechanism;
use krait_crd::KafkaTopic;
use krait_operator::topic;
use rdkafka::config::ClientConfig;
use serde_json::json;

const TOPICS: &str = "/apis/krait.dev/v1alpha1/namespaces/kafka/kafkatopics";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs KRAIT_BROKER_BIN (tests/run sets it)"]
async fn a_cluster_without_listeners_forms_with_tls_and_scram_and_enforces_acls() {
    let (api, mut kubelet, connector, ctx) = cluster_main(
        json!({"replicas": 3, "image": "krait:test", "storage": {"ephemeral": true},
                 "authorization": {"type": "simple", "superUsers": ["alice"]}}),
    );
    form(&api, &mut kubelet, &ctx, "main", Duration::from_secs(180)).await;

    // What clients are told, and the broker's template carrying Kafka's keys.
    let status = cluster(&api, "main").status.unwrap();
    let listener = &status.listeners[0];
    assert_eq!(
        (listener.name.as_str(), listener.security_protocol.as_str()),
        ("tls", "SASL_SSL")
    );
    assert_eq!(listener.sasl_mechanism.as_deref(), Some("SCRAM-SHA-512"));
    assert_eq!(listener.ca_secret.as_deref(), Some("main-cluster-ca-cert"));
    assert_eq!(listener.bootstrap_servers, "main-bootstrap.kafka.svc:9094");
    let sts = api
        .get("/apis/apps/v1/namespaces/kafka/statefulsets", "main")
        .unwrap();
    let args: Vec<&str> = sts["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.contains(&"--override=listener.security.protocol.map=TLS:SASL_SSL"),
        "{args:?}"
    );
    assert!(args.iter().all(|a| !a.contains("password")), "{args:?}");

    let ca = secret_value(&api, "main-cluster-ca-cert", "ca.crt");
    let password = secret_value(&api, "main-operator-credentials", "password");
    assert_eq!(password.len(), 32);
    let bootstrap = connector.bootstrap(TLS_PORT);

    // A KafkaTopic reconciled onto the secured cluster by the operator's own connection.
    api.put(
        TOPICS,
        json!({"apiVersion": "krait.dev/v1alpha1", "kind": "KafkaTopic",
        "metadata": {"name": "orders", "namespace": "kafka", "uid": "t1", "generation": 1,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"clusterRef": "main", "partitions": 3, "replicationFactor": 3}}),
    );
    let topic_ready = |api: &FakeApi| {
        let t: KafkaTopic = serde_json::from_value(api.get(TOPICS, "orders").unwrap()).unwrap();
        t.status.is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !topic_ready(&api) {
        assert!(Instant::now() < deadline, "{:?}", api.get(TOPICS, "orders"));
        let t: KafkaTopic = serde_json::from_value(api.get(TOPICS, "orders").unwrap()).unwrap();
        if let Err(e) = topic::reconcile(Arc::new(t), ctx.clone()).await {
            eprintln!("topic reconcile: {e}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (ca2, password2, bootstrap2) = (ca.clone(), password.clone(), bootstrap.clone());
    let described = tokio::task::spawn_blocking(move || {
        let mut admin = admin_as(&bootstrap2, &ca2, "krait-operator", &password2);
        let scram = match SaslMechanism::from_name("SCRAM-SHA-512") {
            Some(SaslMechanism::Scram(m)) => m,
            _ => unreachable!(),
        };
        admin
            .set_scram_password("alice", scram, "alice-secret", 4096)
            .unwrap();
        admin
            .set_scram_password("bob", scram, "bob-secret", 4096)
            .unwrap();
        admin.metadata(Some(&["orders".to_string()])).unwrap()
    })
    .await
    .unwrap();
    let orders = described.topic("orders").expect("the topic exists");
    assert_eq!(orders.partitions.len(), 3);

    // The spec's super user produces; a user without ACLs is refused; so are a wrong password
    // and a client that does not speak TLS.
    produce(&client(&bootstrap, &ca, "alice", "alice-secret"), "orders")
        .await
        .expect("a super user produces");
    let bob = produce(&client(&bootstrap, &ca, "bob", "bob-secret"), "orders").await;
    assert!(
        bob.as_ref().is_err_and(|e| e.contains("uthoriz")),
        "bob has no ACL: {bob:?}"
    );
    let wrong = produce(
        &client(&bootstrap, &ca, "alice", "not-her-password"),
        "orders",
    )
    .await;
    assert!(wrong.is_err(), "{wrong:?}");
    let mut plain = ClientConfig::new();
    plain
        .set("bootstrap.servers", &bootstrap)
        .set("message.timeout.ms", "5000")
        .set("log_level", "0");
    let plaintext = produce(&plain, "orders").await;
    assert!(plaintext.is_err(), "{plaintext:?}");
}
