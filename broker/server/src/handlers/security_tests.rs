//! Specifications of authentication and authorization through the handlers themselves, on an
//! in-memory broker: a SASL login sets the connection's principal, and every API consults the
//! ACLs in the replicated metadata with that principal.

use std::sync::Arc;

use clap::Parser;

use krait_auth::scram::{ScramClient, ScramCredential, ScramMechanism};
use krait_image::MetadataRecord;
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::create_acls_request::AclCreation;
use krait_protocol::kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use krait_protocol::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use krait_protocol::kafka_protocol::messages::{
    CreateAclsRequest, DeleteAclsRequest, DescribeProducersRequest, FetchRequest, MetadataRequest,
    ProducerId, SaslAuthenticateRequest, SaslHandshakeRequest, WriteTxnMarkersRequest,
    describe_producers_request, write_txn_markers_request,
};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::config::BrokerConfig;
use crate::context::{Connection, Principal, RequestContext};
use crate::dispatch::Reply;
use crate::handlers::tests::{batch, name, produce_request, ready};
use crate::handlers::{
    create_acls, create_topics, delete_acls, describe_producers, fetch, metadata, produce,
    sasl_authenticate, sasl_handshake, write_txn_markers,
};

const ADMIN: &str = "admin";

/// A broker whose primary listener is SASL_PLAINTEXT, with ACLs on and `User:admin` super.
async fn secured() -> Arc<Broker> {
    ready(secured_config()).await
}

fn secured_config() -> BrokerConfig {
    let mut config = BrokerConfig::parse_from(["krait-broker"]);
    config.properties = [
        ("listeners", "SASL_PLAINTEXT://127.0.0.1:9092"),
        ("sasl.enabled.mechanisms", "SCRAM-SHA-512,PLAIN"),
        ("authorizer.class.name", "StandardAuthorizer"),
        ("super.users", "User:admin"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    config
}

fn connection(b: &Broker, principal: Option<&str>) -> Connection {
    let c = Connection::accepted(
        ([10, 0, 0, 7], 50000).into(),
        Arc::new(b.listeners[0].clone()),
    );
    match principal {
        Some(user) => c.with_principal(Principal::user(user)),
        None => c,
    }
}

fn ctx<'a>(b: &'a Broker, connection: &'a Connection, version: i16) -> RequestContext<'a> {
    RequestContext {
        broker: b,
        api_version: version,
        correlation_id: 1,
        client_id: "test",
        connection,
    }
}

async fn add_user(b: &Broker, user: &str, password: &str) {
    let credential = ScramCredential::generate(ScramMechanism::Sha512, password.as_bytes(), 4096);
    let record = MetadataRecord::SetScramCredential {
        user: user.into(),
        credential,
    };
    b.cluster
        .change(record, |image| image.scram.contains_key(user))
        .await
        .unwrap();
}

async fn authenticate(c: &Connection, b: &Broker, token: &[u8]) -> (i16, Vec<u8>, bool) {
    let mut request = SaslAuthenticateRequest::default();
    request.auth_bytes = token.to_vec().into();
    let reply = sasl_authenticate::handle(&ctx(b, c, 2), request).await;
    let close = reply.close_after();
    let response = reply.into_body().unwrap();
    (response.error_code, response.auth_bytes.to_vec(), close)
}

async fn handshake(c: &Connection, b: &Broker, mechanism: &'static str) -> i16 {
    let mut request = SaslHandshakeRequest::default();
    request.mechanism = StrBytes::from_static_str(mechanism);
    sasl_handshake::handle(&ctx(b, c, 1), request)
        .await
        .error_code
}

#[tokio::test]
async fn a_scram_login_sets_the_principal_and_a_wrong_password_closes_the_connection() {
    let b = secured().await;
    add_user(&b, "alice", "alice-pw").await;
    let c = connection(&b, None);
    assert!(!c.authenticated());
    assert_eq!(handshake(&c, &b, "SCRAM-SHA-512").await, 0);
    let mut client = ScramClient::new(ScramMechanism::Sha512, "alice", b"alice-pw");
    let (code, server_first, close) = authenticate(&c, &b, &client.first_message()).await;
    assert_eq!((code, close), (0, false));
    let client_final = client.final_message(&server_first).unwrap();
    let (code, server_final, close) = authenticate(&c, &b, &client_final).await;
    assert_eq!((code, close), (0, false));
    client.verify_server_final(&server_final).unwrap();
    assert!(c.authenticated());
    assert_eq!(c.principal().to_string(), "User:alice");

    let wrong = connection(&b, None);
    assert_eq!(handshake(&wrong, &b, "SCRAM-SHA-512").await, 0);
    let mut client = ScramClient::new(ScramMechanism::Sha512, "alice", b"guess");
    let (_, server_first, _) = authenticate(&wrong, &b, &client.first_message()).await;
    let (code, _, close) =
        authenticate(&wrong, &b, &client.final_message(&server_first).unwrap()).await;
    assert_eq!(code, ResponseError::SaslAuthenticationFailed.code());
    assert!(close, "a failed login closes the connection");
    assert!(!wrong.authenticated());
}

#[tokio::test]
async fn plain_checks_the_scram_credential_and_unknown_mechanisms_are_refused() {
    let b = secured().await;
    add_user(&b, "bob", "bob-pw").await;
    let c = connection(&b, None);
    assert_eq!(
        handshake(&c, &b, "GSSAPI").await,
        ResponseError::UnsupportedSaslMechanism.code()
    );
    assert_eq!(handshake(&c, &b, "PLAIN").await, 0);
    let (code, _, _) = authenticate(&c, &b, b"\0bob\0bob-pw").await;
    assert_eq!(code, 0);
    assert_eq!(c.principal().to_string(), "User:bob");
    let nobody = connection(&b, None);
    assert_eq!(handshake(&nobody, &b, "PLAIN").await, 0);
    let (code, _, close) = authenticate(&nobody, &b, b"\0nobody\0bob-pw").await;
    assert_eq!(
        (code, close),
        (ResponseError::SaslAuthenticationFailed.code(), true)
    );
    // A second handshake on an authenticated connection starts a re-authentication (KIP-368),
    // with the mechanism of the first login only.
    assert_eq!(
        handshake(&c, &b, "SCRAM-SHA-512").await,
        ResponseError::UnsupportedSaslMechanism.code()
    );
    assert_eq!(handshake(&c, &b, "PLAIN").await, 0);
}

/// `secured()` with connections.max.reauth.ms set.
async fn secured_with_reauth(ms: u64) -> Arc<Broker> {
    let mut config = secured_config();
    config.connections_max_reauth_ms = ms;
    ready(config).await
}

#[tokio::test]
async fn a_login_lasts_connections_max_reauth_ms_and_a_relogin_keeps_the_principal() {
    let b = secured_with_reauth(60_000).await;
    add_user(&b, "bob", "bob-pw").await;
    add_user(&b, "eve", "eve-pw").await;
    let c = connection(&b, None);
    assert_eq!(handshake(&c, &b, "PLAIN").await, 0);
    let mut request = SaslAuthenticateRequest::default();
    request.auth_bytes = b"\0bob\0bob-pw".to_vec().into();
    let response = sasl_authenticate::handle(&ctx(&b, &c, 1), request)
        .await
        .into_body()
        .unwrap();
    assert_eq!(
        (response.error_code, response.session_lifetime_ms),
        (0, 60_000)
    );
    let now = std::time::Instant::now();
    assert!(!c.session_expired(now));
    assert!(c.session_expired(now + std::time::Duration::from_secs(61)));

    // Logging in again as the same user renews the session on the same connection.
    assert_eq!(handshake(&c, &b, "PLAIN").await, 0);
    let (code, _, close) = authenticate(&c, &b, b"\0bob\0bob-pw").await;
    assert_eq!((code, close), (0, false));
    assert!(!c.session_expired(std::time::Instant::now() + std::time::Duration::from_secs(59)));
    assert_eq!(c.principal().to_string(), "User:bob");

    // Another user's credentials may not take the connection over; a wrong password fails.
    assert_eq!(handshake(&c, &b, "PLAIN").await, 0);
    let (code, _, close) = authenticate(&c, &b, b"\0eve\0eve-pw").await;
    assert_eq!(
        (code, close),
        (ResponseError::SaslAuthenticationFailed.code(), true)
    );
    assert_eq!(c.principal().to_string(), "User:bob");
    let d = connection(&b, None);
    assert_eq!(handshake(&d, &b, "PLAIN").await, 0);
    assert_eq!(authenticate(&d, &b, b"\0bob\0bob-pw").await.0, 0);
    assert_eq!(handshake(&d, &b, "PLAIN").await, 0);
    let (code, _, close) = authenticate(&d, &b, b"\0bob\0wrong").await;
    assert_eq!(
        (code, close),
        (ResponseError::SaslAuthenticationFailed.code(), true)
    );
}

#[tokio::test]
async fn without_connections_max_reauth_ms_a_login_never_expires() {
    let b = secured().await;
    add_user(&b, "bob", "bob-pw").await;
    let c = connection(&b, None);
    assert_eq!(handshake(&c, &b, "PLAIN").await, 0);
    let mut request = SaslAuthenticateRequest::default();
    request.auth_bytes = b"\0bob\0bob-pw".to_vec().into();
    let response = sasl_authenticate::handle(&ctx(&b, &c, 2), request)
        .await
        .into_body()
        .unwrap();
    assert_eq!((response.error_code, response.session_lifetime_ms), (0, 0));
    let far = std::time::Instant::now() + std::time::Duration::from_secs(365 * 86_400);
    assert!(!c.session_expired(far));
}

fn topic_acl(topic: &str, principal: &str, operation: i8, permission: i8) -> AclCreation {
    let mut a = AclCreation::default();
    a.resource_type = 2; // TOPIC
    a.resource_name = StrBytes::from_string(topic.into());
    a.resource_pattern_type = 3; // LITERAL
    a.principal = StrBytes::from_string(principal.into());
    a.host = StrBytes::from_static_str("*");
    a.operation = operation;
    a.permission_type = permission;
    a
}

const WRITE: i8 = 4;
const ALLOW: i8 = 3;

async fn produce_error(b: &Broker, c: &Connection, topic: &str) -> i16 {
    let request = produce_request(topic, 0, batch(&["v"], 1), 1);
    let response = produce::handle(&ctx(b, c, 9), request).await.0.unwrap();
    response.responses[0].partition_responses[0].error_code
}

#[tokio::test]
async fn acls_decide_every_request_and_a_deleted_acl_revokes_at_once() {
    let b = secured().await;
    let admin = connection(&b, Some(ADMIN));
    let alice = connection(&b, Some("alice"));
    let mut create = krait_protocol::kafka_protocol::messages::CreateTopicsRequest::default();
    let mut t =
        krait_protocol::kafka_protocol::messages::create_topics_request::CreatableTopic::default();
    t.name = name("orders");
    t.num_partitions = 1;
    t.replication_factor = 1;
    create.topics = vec![t];
    let denied = create_topics::handle(&ctx(&b, &alice, 7), create.clone()).await;
    assert_eq!(
        denied.topics[0].error_code,
        ResponseError::TopicAuthorizationFailed.code()
    );
    let created = create_topics::handle(&ctx(&b, &admin, 7), create).await;
    assert_eq!(created.topics[0].error_code, 0);

    assert_eq!(
        produce_error(&b, &alice, "orders").await,
        ResponseError::TopicAuthorizationFailed.code()
    );
    let mut read = FetchRequest::default();
    let mut topic = FetchTopic::default();
    topic.topic = name("orders");
    topic.partitions = vec![FetchPartition::default()];
    read.topics = vec![topic];
    let fetched = fetch::handle(&ctx(&b, &alice, 12), read).await;
    assert_eq!(
        fetched.responses[0].partitions[0].error_code,
        ResponseError::TopicAuthorizationFailed.code()
    );
    let mut all_topics = MetadataRequest::default();
    all_topics.topics = None; // null: every topic the principal may describe
    let listed = metadata::handle(&ctx(&b, &alice, 12), all_topics.clone()).await;
    assert!(listed.topics.is_empty(), "alice may describe nothing yet");

    let mut grant = CreateAclsRequest::default();
    grant.creations = vec![topic_acl("orders", "User:alice", WRITE, ALLOW)];
    let refused = create_acls::handle(&ctx(&b, &alice, 3), grant.clone()).await;
    assert_eq!(
        refused.results[0].error_code,
        ResponseError::ClusterAuthorizationFailed.code(),
        "alice may not grant herself ACLs"
    );
    let granted = create_acls::handle(&ctx(&b, &admin, 3), grant).await;
    assert_eq!(granted.results[0].error_code, 0);
    b.cluster
        .wait_applied(|i| !i.acls.is_empty(), std::time::Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(produce_error(&b, &alice, "orders").await, 0);
    // WRITE implies DESCRIBE: the topic now shows in alice's metadata.
    let listed = metadata::handle(&ctx(&b, &alice, 12), all_topics.clone()).await;
    assert_eq!(listed.topics.len(), 1);
    assert_eq!(
        listed.topics[0].topic_authorized_operations,
        i32::MIN,
        "not asked for"
    );
    // Asked for, authorized operations are a bit field by operation code: WRITE (4) and the
    // DESCRIBE (8) it implies for alice; every topic operation for the super user.
    let mut with_operations = all_topics;
    with_operations.include_topic_authorized_operations = true;
    let listed = metadata::handle(&ctx(&b, &alice, 12), with_operations.clone()).await;
    assert_eq!(
        listed.topics[0].topic_authorized_operations,
        (1 << 4) | (1 << 8)
    );
    let listed = metadata::handle(&ctx(&b, &admin, 12), with_operations).await;
    let every_topic_operation = [3, 4, 5, 6, 7, 8, 10, 11]
        .iter()
        .map(|c| 1 << c)
        .sum::<i32>();
    assert_eq!(
        listed.topics[0].topic_authorized_operations,
        every_topic_operation
    );

    let mut revoke = DeleteAclsRequest::default();
    let mut filter = DeleteAclsFilter::default();
    filter.resource_type_filter = 2;
    filter.resource_name_filter = Some(StrBytes::from_static_str("orders"));
    filter.pattern_type_filter = 3;
    (filter.principal_filter, filter.host_filter) = (None, None); // any
    filter.operation = 1; // ANY
    filter.permission_type = 1; // ANY
    revoke.filters = vec![filter];
    let deleted = delete_acls::handle(&ctx(&b, &admin, 3), revoke).await;
    assert_eq!(deleted.filter_results[0].matching_acls.len(), 1);
    b.cluster
        .wait_applied(|i| i.acls.is_empty(), std::time::Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        produce_error(&b, &alice, "orders").await,
        ResponseError::TopicAuthorizationFailed.code()
    );
}

#[tokio::test]
async fn acl_apis_say_security_is_disabled_without_an_authorizer() {
    let dir = tempfile::tempdir().unwrap();
    let b = crate::handlers::tests::broker(&dir).await;
    let c = connection(&b, None);
    let mut grant = CreateAclsRequest::default();
    grant.creations = vec![topic_acl("t", "User:x", WRITE, ALLOW)];
    let r = create_acls::handle(&ctx(&b, &c, 3), grant).await;
    assert_eq!(
        r.results[0].error_code,
        ResponseError::SecurityDisabled.code()
    );
    // And a PLAINTEXT listener needs no authentication: its clients are User:ANONYMOUS.
    assert!(c.authenticated());
    assert_eq!(c.principal().to_string(), "User:ANONYMOUS");
}

#[tokio::test]
async fn transaction_admin_apis_need_read_on_the_topic_and_cluster_action() {
    let b = secured().await;
    let admin = connection(&b, Some(ADMIN));
    let alice = connection(&b, Some("alice"));
    let mut t = describe_producers_request::TopicRequest::default();
    t.name = name("orders");
    t.partition_indexes = vec![0];
    let mut describe = DescribeProducersRequest::default();
    describe.topics = vec![t];
    let denied = describe_producers::handle(&ctx(&b, &alice, 0), describe.clone()).await;
    assert_eq!(
        denied.topics[0].partitions[0].error_code,
        ResponseError::TopicAuthorizationFailed.code(),
        "refused before the topic is looked up"
    );
    let allowed = describe_producers::handle(&ctx(&b, &admin, 0), describe).await;
    assert_eq!(
        allowed.topics[0].partitions[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );

    let mut topic = write_txn_markers_request::WritableTxnMarkerTopic::default();
    topic.name = name("orders");
    topic.partition_indexes = vec![0];
    let mut marker = write_txn_markers_request::WritableTxnMarker::default();
    marker.producer_id = ProducerId(1);
    marker.topics = vec![topic];
    let mut abort = WriteTxnMarkersRequest::default();
    abort.markers = vec![marker];
    let denied = write_txn_markers::handle(&ctx(&b, &alice, 1), abort.clone()).await;
    assert_eq!(
        denied.markers[0].topics[0].partitions[0].error_code,
        ResponseError::ClusterAuthorizationFailed.code()
    );
    let allowed = write_txn_markers::handle(&ctx(&b, &admin, 1), abort).await;
    assert_eq!(
        allowed.markers[0].topics[0].partitions[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
}
