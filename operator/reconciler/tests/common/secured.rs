//! For tests on a secured cluster of real brokers (`kubelet.rs`): forming the cluster from a
//! `KafkaCluster`, reading the Secrets the operator wrote, and SASL_SSL clients (librdkafka
//! through the `rdkafka` crate, and `krait-admin`) that log in as a given user.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use krait_admin::{Admin, SaslCredentials, SaslMechanism, Security};
use krait_crd::KafkaCluster;
use krait_operator::cluster::reconcile;
use krait_operator::context::Context;
use krait_tls::ClientTlsSettings;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::FakeApi;
use super::kubelet::Kubelet;

pub const CLUSTERS: &str = "/apis/krait.dev/v1alpha1/namespaces/kafka/kafkaclusters";
pub const SECRETS: &str = "/api/v1/namespaces/kafka/secrets";
/// The default listener's port.
pub const TLS_PORT: i32 = 9094;

/// The text under `key` in Secret `name`.
pub fn secret_value(api: &FakeApi, name: &str, key: &str) -> String {
    let secret = api
        .get(SECRETS, name)
        .unwrap_or_else(|| panic!("Secret {name}"));
    let encoded = secret["data"][key].as_str().unwrap();
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap(),
    )
    .unwrap()
}

pub fn cluster(api: &FakeApi, name: &str) -> KafkaCluster {
    serde_json::from_value(api.get(CLUSTERS, name).unwrap()).unwrap()
}

fn ready(c: &KafkaCluster) -> bool {
    c.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
            && s.cluster_id.is_some()
    })
}

/// Runs the kubelet and the cluster reconciler until cluster `name` is Ready with a cluster id
/// (so the operator reached the brokers with its own credentials), within `limit`.
pub async fn form(
    api: &FakeApi,
    kubelet: &mut Kubelet,
    ctx: &Arc<Context>,
    name: &str,
    limit: Duration,
) {
    let deadline = Instant::now() + limit;
    while !ready(&cluster(api, name)) {
        assert!(
            Instant::now() < deadline,
            "not Ready with a cluster id: {:#?}\nbroker 0's log:\n{}",
            cluster(api, name).status,
            std::fs::read_to_string(kubelet.log(0)).unwrap_or_default()
        );
        tokio::task::block_in_place(|| kubelet.tick());
        if let Err(e) = reconcile::reconcile(Arc::new(cluster(api, name)), ctx.clone()).await {
            eprintln!("reconcile: {e}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// SASL_SSL as a client of the default listener, trusting `ca` (loopback is not a name the
/// certificates carry, so the host name is not checked).
pub fn client(bootstrap: &str, ca: &str, user: &str, password: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("security.protocol", "SASL_SSL")
        .set("ssl.ca.pem", ca)
        .set("ssl.endpoint.identification.algorithm", "none")
        .set("sasl.mechanisms", "SCRAM-SHA-512")
        .set("sasl.username", user)
        .set("sasl.password", password)
        .set("message.timeout.ms", "10000")
        .set("log_level", "3");
    config
}

/// Sends one record; the delivery error's text when refused.
pub async fn produce(config: &ClientConfig, topic: &str) -> Result<(), String> {
    let producer: FutureProducer = config.create().map_err(|e| e.to_string())?;
    producer
        .send(
            FutureRecord::to(topic).key("k").payload("v"),
            Duration::from_secs(10),
        )
        .await
        .map(drop)
        .map_err(|(e, _)| e.to_string())
}

/// Whether `user` can log in with `password` (an admin session over SASL_SSL): the broker's
/// error when it cannot.
pub async fn try_login(
    bootstrap: &str,
    ca: &str,
    user: &str,
    password: &str,
) -> Result<(), String> {
    let security = Security {
        tls: Some(ClientTlsSettings {
            truststore_pem: Some(ca.to_string()),
            verify_hostname: false,
            ..ClientTlsSettings::default()
        }),
        sasl: Some(SaslCredentials {
            mechanism: SaslMechanism::from_name("SCRAM-SHA-512").unwrap(),
            username: user.into(),
            password: password.into(),
        }),
    };
    let bootstrap = bootstrap.to_string();
    tokio::task::spawn_blocking(move || {
        Admin::connect_with(&bootstrap, Duration::from_secs(10), security)
            .map(drop)
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap()
}

/// An admin session over SASL_SSL as `user` (blocking: call from `spawn_blocking`).
pub fn admin_as(bootstrap: &str, ca: &str, user: &str, password: &str) -> Admin {
    let security = Security {
        tls: Some(ClientTlsSettings {
            truststore_pem: Some(ca.to_string()),
            verify_hostname: false,
            ..ClientTlsSettings::default()
        }),
        sasl: Some(SaslCredentials {
            mechanism: SaslMechanism::from_name("SCRAM-SHA-512").unwrap(),
            username: user.into(),
            password: password.into(),
        }),
    };
    Admin::connect_with(bootstrap, Duration::from_secs(10), security).expect("admin session")
}
