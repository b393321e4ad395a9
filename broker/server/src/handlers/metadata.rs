//! Metadata: brokers, the controller, and topics with their partitions, leaders and replicas.

use std::sync::Arc;

use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use krait_protocol::kafka_protocol::messages::{
    BrokerId, MetadataRequest, MetadataResponse, TopicName,
};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::broker::{Broker, LEADER_EPOCH};
use crate::handlers::create_topics::auto_create;
use crate::topics::Topic;

pub async fn handle(broker: &Broker, version: i16, request: MetadataRequest) -> MetadataResponse {
    let mut response = MetadataResponse::default();
    response.brokers = vec![self_entry(broker)];
    if version >= 2 {
        response.cluster_id = Some(StrBytes::from_string(broker.cluster_id.clone()));
    }
    response.controller_id = BrokerId(broker.node_id());
    // Before v4 there was no flag: every Metadata request could create topics.
    let may_create =
        broker.config.auto_create_topics && (version < 4 || request.allow_auto_topic_creation);
    response.topics = match request.topics {
        // v0 has no null: an empty list means every topic.
        None => all_topics(broker, version),
        Some(list) if version == 0 && list.is_empty() => all_topics(broker, version),
        Some(list) => list
            .into_iter()
            .map(|t| match (t.name, t.topic_id) {
                (Some(name), _) => by_name(broker, version, name, may_create),
                (None, id) => match broker.topics.get_by_id(id) {
                    Some(topic) => describe(broker, version, &topic),
                    None => {
                        let mut r = error_topic(None, ResponseError::UnknownTopicId);
                        r.topic_id = id;
                        r
                    }
                },
            })
            .collect(),
    };
    response
}

fn self_entry(broker: &Broker) -> MetadataResponseBroker {
    let mut b = MetadataResponseBroker::default();
    b.node_id = BrokerId(broker.node_id());
    b.host = StrBytes::from_string(broker.advertised.host.clone());
    b.port = broker.advertised.port;
    b
}

fn all_topics(broker: &Broker, version: i16) -> Vec<MetadataResponseTopic> {
    broker
        .topics
        .all()
        .iter()
        .map(|t| describe(broker, version, t))
        .collect()
}

fn by_name(
    broker: &Broker,
    version: i16,
    name: TopicName,
    may_create: bool,
) -> MetadataResponseTopic {
    if let Some(topic) = broker.topics.get(&name.0) {
        return describe(broker, version, &topic);
    }
    if !may_create {
        return error_topic(Some(name), ResponseError::UnknownTopicOrPartition);
    }
    match auto_create(broker, &name.0) {
        Ok(topic) => describe(broker, version, &topic),
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

/// A topic as Metadata describes it: every partition led by this broker, its only replica.
pub fn describe(broker: &Broker, version: i16, topic: &Arc<Topic>) -> MetadataResponseTopic {
    let node = BrokerId(broker.node_id());
    let mut t = MetadataResponseTopic::default();
    t.name = Some(TopicName(StrBytes::from_string(topic.name.clone())));
    if version >= 10 {
        t.topic_id = topic.id;
    }
    t.partitions = topic
        .partitions
        .iter()
        .map(|p| {
            let mut m = MetadataResponsePartition::default();
            m.partition_index = p.index;
            m.leader_id = node;
            m.leader_epoch = LEADER_EPOCH;
            m.replica_nodes = vec![node];
            m.isr_nodes = vec![node];
            m
        })
        .collect();
    t
}
