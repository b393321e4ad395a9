//! Metadata: brokers, the controller, and topics with their partitions, leaders and replicas.

use std::collections::BTreeSet;
use std::sync::Arc;

use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use krait_protocol::kafka_protocol::messages::{
    BrokerId, MetadataRequest, MetadataResponse, TopicName,
};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use krait_acl::{Operation, ResourceType};
use krait_image::{BrokerRegistration, ClusterImage};

use crate::broker::Broker;
use crate::context::{CLUSTER_RESOURCE, RequestContext};
use crate::handlers::create_topics::auto_create;
use crate::topics::Topic;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=12;

pub async fn handle(ctx: &RequestContext<'_>, request: MetadataRequest) -> MetadataResponse {
    let broker = ctx.broker;
    let version = ctx.api_version;
    let mut response = MetadataResponse::default();
    let image = broker.cluster.image();
    let gone = gone_leaders(broker, &image);
    response.brokers = brokers(ctx, &image)
        .into_iter()
        .filter(|b| !gone.contains(&b.node_id.0))
        .collect();
    if version >= 2 {
        response.cluster_id = Some(StrBytes::from_string(broker.cluster_id()));
    }
    response.controller_id = BrokerId(broker.cluster.controller_id().unwrap_or(-1));
    // Before v4 there was no flag: every Metadata request could create topics.
    let may_create =
        broker.config.auto_create_topics && (version < 4 || request.allow_auto_topic_creation);
    response.topics = match request.topics {
        // v0 has no null: an empty list means every topic.
        None => all_topics(ctx, &gone),
        Some(list) if version == 0 && list.is_empty() => all_topics(ctx, &gone),
        Some(list) => {
            let mut out = Vec::with_capacity(list.len());
            for t in list {
                out.push(match (t.name, t.topic_id) {
                    (Some(name), _) => by_name(ctx, name, may_create, &gone).await,
                    (None, id) => match broker.topics.get_by_id(id) {
                        Some(topic) if !describable(ctx, &topic.name) => {
                            let mut r = error_topic(None, ResponseError::TopicAuthorizationFailed);
                            r.topic_id = id;
                            r
                        }
                        Some(topic) => describe(broker, version, &topic, &gone),
                        None => {
                            let mut r = error_topic(None, ResponseError::UnknownTopicId);
                            r.topic_id = id;
                            r
                        }
                    },
                });
            }
            out
        }
    };
    if version >= 8 && request.include_topic_authorized_operations {
        for t in response.topics.iter_mut().filter(|t| t.error_code == 0) {
            if let Some(name) = &t.name {
                t.topic_authorized_operations =
                    ctx.authorized_operations(ResourceType::Topic, name.0.as_str());
            }
        }
    }
    // v11 dropped the cluster's (DescribeCluster has it).
    if (8..=10).contains(&version) && request.include_cluster_authorized_operations {
        response.cluster_authorized_operations =
            ctx.authorized_operations(ResourceType::Cluster, CLUSTER_RESOURCE);
    }
    response
}

/// A broker as a client of the current connection is told about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientBroker {
    pub id: i32,
    /// The address on the listener this connection came in on (internal or external).
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
    pub fenced: bool,
}

impl ClientBroker {
    /// A registration with the address a client of the current connection should use.
    fn of(ctx: &RequestContext<'_>, r: &BrokerRegistration) -> Self {
        let (host, port) = ctx.client_address(r);
        Self {
            id: r.id,
            host,
            port,
            rack: r.rack.clone(),
            fenced: r.fenced,
        }
    }
}

/// The brokers clients are told about, by id: the live ones, as KRaft lists them, and with
/// `include_fenced` also those registered but fenced (DescribeCluster v2, KIP-1073). This broker
/// is listed even before its registration is applied, so a client always has somewhere to go.
pub fn client_brokers(
    ctx: &RequestContext<'_>,
    image: &ClusterImage,
    include_fenced: bool,
) -> Vec<ClientBroker> {
    let broker = ctx.broker;
    let mut out: Vec<ClientBroker> = image
        .brokers
        .values()
        .filter(|r| include_fenced || !r.fenced)
        .map(|r| ClientBroker::of(ctx, r))
        .collect();
    if !out.iter().any(|b| b.id == broker.node_id()) {
        let (host, port) = ctx.own_address();
        out.push(ClientBroker {
            id: broker.node_id(),
            host,
            port,
            rack: broker.config.rack.clone(),
            fenced: false,
        });
        out.sort_by_key(|b| b.id);
    }
    out
}

/// The live brokers as Metadata lists them (fenced brokers are left out).
pub fn brokers(ctx: &RequestContext<'_>, image: &ClusterImage) -> Vec<MetadataResponseBroker> {
    client_brokers(ctx, image, false)
        .into_iter()
        .map(|c| {
            let mut b = MetadataResponseBroker::default();
            b.node_id = BrokerId(c.id);
            b.host = StrBytes::from_string(c.host);
            b.port = c.port;
            b.rack = c.rack.map(StrBytes::from_string);
            b
        })
        .collect()
}

fn describable(ctx: &RequestContext<'_>, topic: &str) -> bool {
    ctx.authorized(Operation::Describe, ResourceType::Topic, topic)
}

/// Every topic the principal may describe (the others are left out, as Kafka does).
fn all_topics(ctx: &RequestContext<'_>, gone: &BTreeSet<i32>) -> Vec<MetadataResponseTopic> {
    ctx.broker
        .topics
        .all()
        .iter()
        .filter(|t| describable(ctx, &t.name))
        .map(|t| describe(ctx.broker, ctx.api_version, t, gone))
        .collect()
}

async fn by_name(
    ctx: &RequestContext<'_>,
    name: TopicName,
    may_create: bool,
    gone: &BTreeSet<i32>,
) -> MetadataResponseTopic {
    let (broker, version) = (ctx.broker, ctx.api_version);
    let visible = describable(ctx, &name.0);
    match broker.topics.get(&name.0) {
        Some(topic) if visible => return describe(broker, version, &topic, gone),
        Some(_) => return error_topic(Some(name), ResponseError::TopicAuthorizationFailed),
        None => {}
    }
    if !may_create || !ctx.may_create_topic(&name.0) {
        // A client that may not even see the name learns nothing about whether it exists.
        let error = match visible {
            true => ResponseError::UnknownTopicOrPartition,
            false => ResponseError::TopicAuthorizationFailed,
        };
        return error_topic(Some(name), error);
    }
    match auto_create(broker, &name.0).await {
        Ok(topic) => describe(broker, version, &topic, gone),
        Err((error, message)) => {
            tracing::info!(topic = %name.0, %message, "auto-create refused");
            error_topic(Some(name), error)
        }
    }
}

fn error_topic(name: Option<TopicName>, error: ResponseError) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.name = name;
    t.error_code = error.code();
    t
}

/// The brokers Metadata treats as gone though the image has them live: leaders this broker
/// follows whose connection its replica fetches found closed under them or refused. That is
/// what a dead process looks like, and the controller, which sees the same, is about to fence
/// it and elect new leaders. Until then Metadata lists neither the broker nor it as a leader
/// (`LEADER_NOT_AVAILABLE`, as during an election). A client whose connection to it dropped
/// asks at once; told of the dead leader, librdkafka keeps the partition's messages on that
/// connection and, when it learns of the new leader a second later, forgets it again as it
/// drops the broker the controller fenced meanwhile (another second). Told there is no leader,
/// it drops the broker and its requests at once and moves to the new leader when it next
/// looks. A fetch that gets through ends it.
fn gone_leaders(broker: &Broker, image: &ClusterImage) -> BTreeSet<i32> {
    let mut gone = broker.cluster.replicas.unreachable_leaders();
    gone.retain(|id| image.is_live(*id) && *id != broker.node_id());
    gone
}

/// A topic as Metadata describes it, from the image this broker applied: each partition's
/// leader and epoch, replicas, ISR, and the replicas on brokers that are not alive. A leader in
/// `gone` ([`gone_leaders`]) is reported as none.
pub fn describe(
    broker: &Broker,
    version: i16,
    topic: &Arc<Topic>,
    gone: &BTreeSet<i32>,
) -> MetadataResponseTopic {
    let image = broker.cluster.image();
    let mut t = MetadataResponseTopic::default();
    t.name = Some(TopicName(StrBytes::from_string(topic.name.clone())));
    if version >= 10 {
        t.topic_id = topic.id;
    }
    let ids = |ids: &[i32]| ids.iter().map(|id| BrokerId(*id)).collect::<Vec<_>>();
    t.partitions = topic
        .partitions
        .iter()
        .map(|p| {
            let mut m = MetadataResponsePartition::default();
            m.partition_index = p.index;
            match image.partition(&topic.name, p.index) {
                Some(state) => {
                    let leader = state.leader.filter(|l| !gone.contains(l));
                    m.leader_id = BrokerId(leader.unwrap_or(-1));
                    m.leader_epoch = state.leader_epoch;
                    m.replica_nodes = ids(&state.replicas);
                    m.isr_nodes = ids(&state.isr);
                    let offline: Vec<i32> = state
                        .replicas
                        .iter()
                        .copied()
                        .filter(|r| !image.is_live(*r) || gone.contains(r))
                        .collect();
                    m.offline_replicas = ids(&offline);
                    if leader.is_none() {
                        m.error_code = ResponseError::LeaderNotAvailable.code();
                    }
                }
                None => {
                    m.leader_id = BrokerId(-1);
                    m.error_code = ResponseError::LeaderNotAvailable.code();
                }
            }
            m
        })
        .collect();
    t
}
