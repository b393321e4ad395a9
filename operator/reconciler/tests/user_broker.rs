//! KafkaUsers on a secured cluster of real `krait-broker` processes (the fake API server holds
//! the objects, `common::kubelet` runs the brokers from the operator's template): a SCRAM user
//! with a generated password produces to the topic its ACLs allow and is refused on another;
//! an ACL added to the spec takes effect; a password taken from a named Secret is rotated when
//! the Secret changes (the old one refused, the new one accepted); deleting the KafkaUser
//! revokes its login and removes its ACLs. A tls user produces with its certificate on a
//! client-certificate listener, and keeps producing through a renewal of the clients CA (a
//! roll of three brokers) with its old certificate, then with the one issued by the new CA.
//! Checked with librdkafka (the `rdkafka` crate) and `krait-admin`. Ignored unless asked for;
//! needs `KRAIT_BROKER_BIN`.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::FakeApi;
use common::kubelet::cluster_main;
use common::secured::{
    CLUSTERS, SECRETS, TLS_PORT, client, form, produce, secret_value, try_login,
};
use krait_crd::KafkaUser;
use krait_operator::context::Context;
use krait_operator::user::reconcile;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use serde_json::{Value, json};

const USERS: &str = "/apis/krait.dev/v1alpha1/namespaces/kafka/kafkausers";

fn stored(api: &FakeApi, name: &str) -> KafkaUser {
    serde_json::from_value(api.get(USERS, name).expect(name)).unwrap()
}

/// Reconciles user `name` until Ready for its current generation (at most 30 s).
async fn settle(api: &FakeApi, ctx: &Arc<Context>, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let user = stored(api, name);
        let done = user.status.as_ref().is_some_and(|s| {
            s.observed_generation == user.metadata.generation
                && s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
        });
        if done {
            return;
        }
        assert!(Instant::now() < deadline, "{:#?}", user.status);
        if let Err(e) = reconcile::reconcile(Arc::new(user), ctx.clone()).await {
            eprintln!("user reconcile: {e}");
        }
    }
}

/// Reconciles user `name` once more (after its Secret changed, say).
async fn reconcile_once(api: &FakeApi, ctx: &Arc<Context>, name: &str) {
    reconcile::reconcile(Arc::new(stored(api, name)), ctx.clone())
        .await
        .unwrap();
}

fn user(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "krait.dev/v1alpha1", "kind": "KafkaUser",
        "metadata": {"name": name, "namespace": "kafka", "uid": format!("u-{name}"), "generation": 1,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": spec})
}

fn write_to(topics: &[&str]) -> Value {
    json!({"type": "simple", "acls": topics.iter().map(|t| json!(
        {"resource": {"type": "topic", "name": t}, "operations": ["Write", "Describe"]}))
        .collect::<Vec<_>>()})
}

/// Topics orders and payments, made by the operator's user (a super user).
async fn create_topics(bootstrap: &str, ca: &str, operator_password: &str) {
    let admin: AdminClient<DefaultClientContext> =
        client(bootstrap, ca, "krait-operator", operator_password)
            .create()
            .unwrap();
    let topics = [
        NewTopic::new("orders", 1, TopicReplication::Fixed(1)),
        NewTopic::new("payments", 1, TopicReplication::Fixed(1)),
    ];
    for result in admin
        .create_topics(&topics, &AdminOptions::new())
        .await
        .unwrap()
    {
        result.expect("topic created");
    }
}

/// SSL on the client-certificate listener at `bootstrap`, trusting `ca`, presenting `cert`
/// and `key` (none when empty).
fn mtls_client(bootstrap: &str, ca: &str, cert: &str, key: &str) -> rdkafka::config::ClientConfig {
    let mut config = rdkafka::config::ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("security.protocol", "SSL")
        .set("ssl.ca.pem", ca)
        .set("ssl.endpoint.identification.algorithm", "none")
        .set("message.timeout.ms", "10000")
        .set("log_level", "3");
    if !cert.is_empty() {
        config
            .set("ssl.certificate.pem", cert)
            .set("ssl.key.pem", key);
    }
    config
}

/// Refused by the ACLs: the broker answers with an authorization error.
fn refused_by_acls(result: &Result<(), String>) -> bool {
    result.as_ref().is_err_and(|e| e.contains("uthoriz"))
}

/// Refused at login: librdkafka retries a failed SASL authentication until the message times
/// out, so the record is never delivered.
fn login_refused(result: &Result<(), String>) -> bool {
    result.is_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs KRAIT_BROKER_BIN (tests/run sets it)"]
async fn kafka_users_log_in_with_their_passwords_and_get_exactly_their_acls() {
    let (api, mut kubelet, connector, ctx) = cluster_main(
        json!({"replicas": 1, "image": "krait:test", "storage": {"ephemeral": true},
                 "authorization": {"type": "simple"}}),
    );
    form(&api, &mut kubelet, &ctx, "main", Duration::from_secs(120)).await;
    let ca = secret_value(&api, "main-cluster-ca-cert", "ca.crt");
    let operator_password = secret_value(&api, "main-operator-credentials", "password");
    let bootstrap = connector.bootstrap(TLS_PORT);

    create_topics(&bootstrap, &ca, &operator_password).await;

    // A user with a generated password, allowed to write to orders only.
    api.put(
        USERS,
        user(
            "orders-app",
            json!({"clusterRef": "main", "authentication": {"type": "scram-sha-512"},
                   "authorization": write_to(&["orders"])}),
        ),
    );
    settle(&api, &ctx, "orders-app").await;
    let password = secret_value(&api, "orders-app", "password");
    let orders_app = client(&bootstrap, &ca, "orders-app", &password);
    produce(&orders_app, "orders")
        .await
        .expect("its ACL allows orders");
    let other = produce(&orders_app, "payments").await;
    assert!(refused_by_acls(&other), "no ACL on payments: {other:?}");

    // The spec grants payments too.
    let mut edited = api.get(USERS, "orders-app").unwrap();
    edited["spec"]["authorization"] = write_to(&["orders", "payments"]);
    edited["metadata"]["generation"] = json!(2);
    api.put(USERS, edited);
    settle(&api, &ctx, "orders-app").await;
    produce(&orders_app, "payments")
        .await
        .expect("the added ACL allows payments");

    // A user whose password lives in a Secret of its own; changing the Secret rotates it.
    let put_password = |pw: &str| {
        api.put(
            SECRETS,
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": "billing-pw", "namespace": "kafka"},
                   "stringData": {"password": pw}}),
        )
    };
    put_password("billing-first-password");
    api.put(
        USERS,
        user(
            "billing",
            json!({"clusterRef": "main", "authorization": write_to(&["orders"]),
                   "authentication": {"type": "scram-sha-512", "password": {"valueFrom":
                       {"secretKeyRef": {"name": "billing-pw", "key": "password"}}}}}),
        ),
    );
    settle(&api, &ctx, "billing").await;
    let first = client(&bootstrap, &ca, "billing", "billing-first-password");
    produce(&first, "orders").await.expect("the first password");
    put_password("billing-second-password");
    reconcile_once(&api, &ctx, "billing").await;
    let old = produce(&first, "orders").await;
    assert!(
        login_refused(&old),
        "the old password after rotation: {old:?}"
    );
    let login = try_login(&bootstrap, &ca, "billing", "billing-first-password").await;
    assert!(
        login.as_ref().is_err_and(|e| e.contains("uthentication")),
        "{login:?}"
    );
    let second = client(&bootstrap, &ca, "billing", "billing-second-password");
    produce(&second, "orders")
        .await
        .expect("the rotated password");

    // Deleting the KafkaUser revokes it: no login, no ACLs left for its principal.
    api.delete_stored(USERS, "orders-app");
    reconcile_once(&api, &ctx, "orders-app").await;
    assert!(api.get(USERS, "orders-app").is_none(), "finalizer released");
    let gone = produce(&orders_app, "orders").await;
    assert!(login_refused(&gone), "a deleted user: {gone:?}");
    let (b, c, p) = (bootstrap.clone(), ca.clone(), operator_password.clone());
    let left = tokio::task::spawn_blocking(move || {
        let mut admin = common::secured::admin_as(&b, &c, "krait-operator", &p);
        admin
            .describe_acls(&krait_operator::user_admin::principal_filter(
                "User:orders-app",
            ))
            .unwrap()
    })
    .await
    .unwrap();
    assert!(left.is_empty(), "{left:?}");
    produce(&second, "orders")
        .await
        .expect("another user is untouched");
}

/// The client-certificate listener of [`mtls_cluster`].
const MTLS_PORT: i32 = 9095;

/// A formed cluster `main` of `replicas` brokers with a SCRAM listener and a client-certificate
/// one, simple authorization; the cluster CA and the operator's password come with it.
struct MtlsCluster {
    api: FakeApi,
    kubelet: common::kubelet::Kubelet,
    connector: Arc<common::kubelet::Loopback>,
    ctx: Arc<Context>,
    ca: String,
    operator_password: String,
}

async fn mtls_cluster(replicas: i32) -> MtlsCluster {
    let (api, mut kubelet, connector, ctx) = cluster_main(
        json!({"replicas": replicas, "image": "krait:test", "storage": {"ephemeral": true},
                 "listeners": [
                     {"name": "tls", "port": TLS_PORT, "type": "internal", "tls": true,
                      "authentication": {"type": "scram-sha-512"}},
                     {"name": "mtls", "port": MTLS_PORT, "type": "internal", "tls": true,
                      "authentication": {"type": "tls"}}],
                 "authorization": {"type": "simple"}}),
    );
    form(&api, &mut kubelet, &ctx, "main", Duration::from_secs(120)).await;
    let ca = secret_value(&api, "main-cluster-ca-cert", "ca.crt");
    let operator_password = secret_value(&api, "main-operator-credentials", "password");
    MtlsCluster {
        api,
        kubelet,
        connector,
        ctx,
        ca,
        operator_password,
    }
}

/// The tls KafkaUser `tls-app`, allowed to write to `orders`, reconciled until settled.
async fn add_tls_app(api: &FakeApi, ctx: &Arc<Context>) {
    api.put(
        USERS,
        user(
            "tls-app",
            json!({"clusterRef": "main", "authentication": {"type": "tls"},
                   "authorization": write_to(&["orders"])}),
        ),
    );
    settle(api, ctx, "tls-app").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs KRAIT_BROKER_BIN (tests/run sets it)"]
async fn a_tls_user_produces_with_its_certificate_on_a_client_certificate_listener() {
    // The kubelet runs the brokers: kept until the end of the test.
    let MtlsCluster {
        api,
        kubelet: _brokers,
        connector,
        ctx,
        ca,
        operator_password,
    } = mtls_cluster(1).await;
    create_topics(&connector.bootstrap(TLS_PORT), &ca, &operator_password).await;

    add_tls_app(&api, &ctx).await;
    let mtls = connector.bootstrap(MTLS_PORT);
    let with_certificate = |cert: &str, key: &str| mtls_client(&mtls, &ca, cert, key);
    let cert = secret_value(&api, "tls-app", "user.crt");
    let key = secret_value(&api, "tls-app", "user.key");
    let tls_app = with_certificate(&cert, &key);
    produce(&tls_app, "orders")
        .await
        .expect("User:tls-app may write to orders");
    let other = produce(&tls_app, "payments").await;
    assert!(refused_by_acls(&other), "no ACL on payments: {other:?}");
    let anonymous = produce(&with_certificate("", ""), "orders").await;
    assert!(anonymous.is_err(), "no client certificate: {anonymous:?}");
}

/// An idempotent acks=all producer sending one record at a time (each awaited) until stopped;
/// returns (delivered, failures).
fn keep_producing(
    config: rdkafka::config::ClientConfig,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<(usize, Vec<String>)> {
    tokio::spawn(async move {
        let producer: rdkafka::producer::FutureProducer = config
            .clone()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "30000")
            .create()
            .unwrap();
        let (mut delivered, mut failures) = (0, Vec::new());
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let record = rdkafka::producer::FutureRecord::to("orders")
                .key("k")
                .payload("v");
            match producer.send(record, Duration::from_secs(30)).await {
                Ok(_) => delivered += 1,
                Err((e, _)) => failures.push(e.to_string()),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (delivered, failures)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs KRAIT_BROKER_BIN (tests/run sets it)"]
async fn a_tls_user_keeps_producing_through_a_clients_ca_renewal_first_with_its_old_certificate() {
    let MtlsCluster {
        api,
        mut kubelet,
        connector,
        ctx,
        ca,
        operator_password,
    } = mtls_cluster(3).await;
    let admin: AdminClient<DefaultClientContext> = client(
        &connector.bootstrap(TLS_PORT),
        &ca,
        "krait-operator",
        &operator_password,
    )
    .create()
    .unwrap();
    let orders =
        NewTopic::new("orders", 3, TopicReplication::Fixed(3)).set("min.insync.replicas", "2");
    for result in admin
        .create_topics(&[orders], &AdminOptions::new())
        .await
        .unwrap()
    {
        result.expect("topic created");
    }
    add_tls_app(&api, &ctx).await;
    let mtls = connector.bootstrap(MTLS_PORT);
    let with_certificate = |cert: &str, key: &str| mtls_client(&mtls, &ca, cert, key);
    let (old_cert, old_key) = (
        secret_value(&api, "tls-app", "user.crt"),
        secret_value(&api, "tls-app", "user.key"),
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producing = keep_producing(with_certificate(&old_cert, &old_key), stop.clone());

    let mut cluster = api.get(CLUSTERS, "main").unwrap();
    cluster["metadata"]["annotations"] =
        json!({krait_operator::names::RENEW_CLIENTS_CA_ANNOTATION: "test"});
    api.put(CLUSTERS, cluster);
    let events_before = kubelet.events.len();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(180);
    loop {
        tokio::task::block_in_place(|| kubelet.tick());
        let current = Arc::new(common::secured::cluster(&api, "main"));
        if let Err(e) = krait_operator::cluster::reconcile::reconcile(current, ctx.clone()).await {
            eprintln!("reconcile: {e}");
        }
        reconcile_once(&api, &ctx, "tls-app").await;
        let clients_ca = common::secured::cluster(&api, "main")
            .status
            .and_then(|s| s.clients_ca)
            .map(|ca| (ca.generation, ca.state));
        let reissued = secret_value(&api, "tls-app", "user.crt") != old_cert;
        if clients_ca == Some((1, "Ready".into())) && reissued {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the clients CA renewal did not finish: {clients_ca:?}, reissued {reissued}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!(
        "clients CA renewed and the user's certificate re-issued in {:.1} s; broker events {:?}",
        started.elapsed().as_secs_f64(),
        &kubelet.events[events_before..]
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (delivered, failures) = producing.await.unwrap();
    eprintln!("the old certificate's producer: {delivered} delivered, {failures:?}");
    assert!(delivered > 50, "{delivered}");
    assert!(failures.is_empty(), "{failures:?}");
    let restarted = kubelet.events[events_before..]
        .iter()
        .filter(|e| matches!(e, common::kubelet::Event::Stopped(_)))
        .count();
    assert_eq!(
        restarted, 3,
        "the brokers rolled to trust the new clients CA"
    );
    let (new_cert, new_key) = (
        secret_value(&api, "tls-app", "user.crt"),
        secret_value(&api, "tls-app", "user.key"),
    );
    produce(&with_certificate(&new_cert, &new_key), "orders")
        .await
        .expect("the certificate the new clients CA signed");
    produce(&with_certificate(&old_cert, &old_key), "orders")
        .await
        .expect("the old certificate, until the old clients CA expires");
}
