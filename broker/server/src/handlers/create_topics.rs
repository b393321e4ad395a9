//! CreateTopics, and the topic creation rules shared with auto-creation on Metadata/Produce.

use std::collections::BTreeMap;
use std::sync::Arc;

use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::create_topics_request::CreatableTopic;
use krait_protocol::kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use krait_protocol::kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, TopicName,
};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::topic_config::validate_topic_configs;
use crate::topics::{Topic, TopicError, validate_topic_name};

/// A refused topic change: the Kafka error and the message that explains it.
pub type Refusal = (ResponseError, String);

/// A topic creation that passed validation.
#[derive(Debug)]
pub struct NewTopic {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
}

/// Checks a creation request against Kafka's rules and this broker, resolving -1 defaults.
pub fn validate(broker: &Broker, t: &CreatableTopic) -> Result<NewTopic, Refusal> {
    let name = t.name.0.as_str();
    validate_topic_name(name).map_err(|m| (ResponseError::InvalidTopicException, m))?;
    if broker.topics.get(name).is_some() {
        return Err((
            ResponseError::TopicAlreadyExists,
            format!("Topic '{name}' already exists."),
        ));
    }
    let (partitions, replication_factor) = if t.assignments.is_empty() {
        (
            resolve(t.num_partitions, broker.config.default_partitions),
            resolve(t.replication_factor, 1),
        )
    } else {
        validate_assignments(broker, t)?
    };
    if partitions < 1 {
        return Err((
            ResponseError::InvalidPartitions,
            format!("Number of partitions must be at least 1, got {partitions}."),
        ));
    }
    if replication_factor < 1 || replication_factor as usize > broker.live_brokers() {
        return Err((
            ResponseError::InvalidReplicationFactor,
            format!(
                "Replication factor: {replication_factor} larger than available brokers: {}.",
                broker.live_brokers()
            ),
        ));
    }
    let mut configs = BTreeMap::new();
    for c in &t.configs {
        let Some(value) = &c.value else { continue };
        configs.insert(c.name.to_string(), value.to_string());
    }
    validate_topic_configs(&configs).map_err(|m| (ResponseError::InvalidConfig, m))?;
    Ok(NewTopic {
        name: name.to_string(),
        partitions,
        replication_factor,
        configs,
    })
}

fn resolve<T: PartialEq + From<i8>>(requested: T, default: T) -> T {
    if requested == T::from(-1) {
        default
    } else {
        requested
    }
}

fn validate_assignments(broker: &Broker, t: &CreatableTopic) -> Result<(i32, i16), Refusal> {
    if t.num_partitions != -1 || t.replication_factor != -1 {
        return Err((
            ResponseError::InvalidRequest,
            "Both numPartitions or replicationFactor and replicasAssignments were set.".into(),
        ));
    }
    let mut indexes: Vec<i32> = t.assignments.iter().map(|a| a.partition_index).collect();
    indexes.sort_unstable();
    if indexes.iter().enumerate().any(|(i, p)| *p != i as i32) {
        return Err((
            ResponseError::InvalidReplicaAssignment,
            "Partitions must be numbered 0..N without gaps.".into(),
        ));
    }
    let rf = t.assignments[0].broker_ids.len();
    for a in &t.assignments {
        if a.broker_ids.len() != rf || a.broker_ids.iter().any(|b| b.0 != broker.node_id()) {
            return Err((
                ResponseError::InvalidReplicaAssignment,
                format!(
                    "Partition {} assigned to brokers {:?}; live brokers are [{}].",
                    a.partition_index,
                    a.broker_ids.iter().map(|b| b.0).collect::<Vec<_>>(),
                    broker.node_id()
                ),
            ));
        }
    }
    Ok((t.assignments.len() as i32, rf as i16))
}

/// Creates a validated topic.
pub fn create(broker: &Broker, t: NewTopic) -> Result<Arc<Topic>, Refusal> {
    broker
        .topics
        .create(&t.name, t.partitions, t.replication_factor, t.configs)
        .map_err(refusal)
}

/// Creates `name` with broker defaults, as auto.create.topics.enable does.
pub fn auto_create(broker: &Broker, name: &str) -> Result<Arc<Topic>, Refusal> {
    let mut request = CreatableTopic::default();
    request.name = TopicName(StrBytes::from_string(name.to_string()));
    request.num_partitions = -1;
    request.replication_factor = -1;
    match validate(broker, &request) {
        Ok(t) => create(broker, t),
        // Lost a race with another creator: the topic exists, which is all the caller wanted.
        Err((ResponseError::TopicAlreadyExists, _)) => broker
            .topics
            .get(name)
            .ok_or_else(|| refusal(TopicError::Unknown(name.into()))),
        Err(e) => Err(e),
    }
}

/// Maps a registry error to its Kafka error.
pub fn refusal(e: TopicError) -> Refusal {
    let error = match &e {
        TopicError::AlreadyExists(_) => ResponseError::TopicAlreadyExists,
        TopicError::Unknown(_) => ResponseError::UnknownTopicOrPartition,
        TopicError::CannotShrink { .. } => ResponseError::InvalidPartitions,
        TopicError::Storage(_) => ResponseError::KafkaStorageError,
    };
    (error, e.to_string())
}

pub async fn handle(
    broker: &Broker,
    version: i16,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut response = CreateTopicsResponse::default();
    for t in &request.topics {
        let mut result = CreatableTopicResult::default();
        result.name = t.name.clone();
        result.error_message = None;
        let outcome = validate(broker, t).and_then(|new| {
            if request.validate_only {
                Ok((None, new.partitions, new.replication_factor, new.configs))
            } else {
                create(broker, new).map(|topic| {
                    (
                        Some(topic.id),
                        topic.partitions.len() as i32,
                        topic.replication_factor,
                        topic.configs.clone(),
                    )
                })
            }
        });
        match outcome {
            Ok((id, partitions, rf, configs)) => {
                if version >= 7 {
                    result.topic_id = id.unwrap_or_default();
                }
                if version >= 5 {
                    result.num_partitions = partitions;
                    result.replication_factor = rf;
                    result.configs = Some(described_configs(broker, &configs));
                }
            }
            Err((error, message)) => {
                tracing::info!(topic = %t.name.0, %message, "create topic refused");
                result.error_code = error.code();
                result.error_message = Some(StrBytes::from_string(message));
            }
        }
        response.topics.push(result);
    }
    response
}

fn described_configs(
    broker: &Broker,
    overrides: &BTreeMap<String, String>,
) -> Vec<CreatableTopicConfigs> {
    broker
        .defaults
        .topic_entries(overrides)
        .into_iter()
        .map(|e| {
            let mut c = CreatableTopicConfigs::default();
            c.name = StrBytes::from_string(e.name);
            c.value = Some(StrBytes::from_string(e.value));
            c.read_only = e.read_only;
            c.config_source = e.source as i8;
            c
        })
        .collect()
}
