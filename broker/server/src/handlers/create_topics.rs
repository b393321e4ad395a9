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

use krait_image::placement::{self, Load, PlacementError};
use krait_image::{BrokerId, MetadataRecord};

use crate::broker::Broker;
use crate::context::RequestContext;
use crate::handlers::changes::{PartitionBudget, Refusal, change_refusal};
use crate::topic_config::validate_topic_configs;
use crate::topics::{Topic, validate_topic_name};

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=7;

/// A topic creation that passed validation.
#[derive(Debug)]
pub struct NewTopic {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
    /// Replicas of each partition as the request gave them; placed by the broker when `None`.
    pub assignments: Option<Vec<Vec<BrokerId>>>,
}

/// Checks a creation request against Kafka's rules and this broker, resolving -1 defaults, and
/// takes its partitions from the request's `budget`.
pub fn validate(
    broker: &Broker,
    t: &CreatableTopic,
    budget: &mut PartitionBudget,
) -> Result<NewTopic, Refusal> {
    let name = t.name.0.as_str();
    validate_topic_name(name).map_err(|m| (ResponseError::InvalidTopicException, m))?;
    if broker.topics.get(name).is_some() {
        return Err((
            ResponseError::TopicAlreadyExists,
            format!("Topic '{name}' already exists."),
        ));
    }
    let (partitions, replication_factor, assignments) = if t.assignments.is_empty() {
        (
            resolve(t.num_partitions, broker.config.default_partitions),
            resolve(
                t.replication_factor,
                broker.config.default_replication_factor,
            ),
            None,
        )
    } else {
        let assignments = validate_assignments(broker, t)?;
        (
            assignments.len() as i32,
            assignments[0].len() as i16,
            Some(assignments),
        )
    };
    if partitions < 1 {
        return Err((
            ResponseError::InvalidPartitions,
            format!("Number of partitions must be at least 1, got {partitions}."),
        ));
    }
    budget.take(name, partitions.into(), partitions.into())?;
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
        assignments,
    })
}

fn resolve<T: PartialEq + From<i8>>(requested: T, default: T) -> T {
    if requested == T::from(-1) {
        default
    } else {
        requested
    }
}

fn validate_assignments(
    broker: &Broker,
    t: &CreatableTopic,
) -> Result<Vec<Vec<BrokerId>>, Refusal> {
    if t.num_partitions != -1 || t.replication_factor != -1 {
        return Err((
            ResponseError::InvalidRequest,
            "Both numPartitions or replicationFactor and replicasAssignments were set.".into(),
        ));
    }
    let mut sorted: Vec<_> = t.assignments.iter().collect();
    sorted.sort_by_key(|a| a.partition_index);
    if sorted
        .iter()
        .enumerate()
        .any(|(i, a)| a.partition_index != i as i32)
    {
        return Err((
            ResponseError::InvalidReplicaAssignment,
            "Partitions must be numbered 0..N without gaps.".into(),
        ));
    }
    let image = broker.cluster.image();
    let rf = sorted[0].broker_ids.len();
    let mut out = Vec::with_capacity(sorted.len());
    for a in sorted {
        let ids: Vec<BrokerId> = a.broker_ids.iter().map(|b| b.0).collect();
        let mut unique = ids.clone();
        unique.sort_unstable();
        unique.dedup();
        let unknown: Vec<_> = ids
            .iter()
            .filter(|b| !image.brokers.contains_key(b))
            .collect();
        if ids.is_empty() || ids.len() != rf || unique.len() != ids.len() || !unknown.is_empty() {
            return Err((
                ResponseError::InvalidReplicaAssignment,
                format!(
                    "Partition {} assigned to brokers {ids:?}: every partition needs {rf} distinct registered brokers (registered: {:?}).",
                    a.partition_index,
                    image.brokers.keys().collect::<Vec<_>>()
                ),
            ));
        }
        out.push(ids);
    }
    Ok(out)
}

/// Creates a validated topic through the controller and waits until this broker has it.
pub async fn create(broker: &Broker, t: NewTopic) -> Result<Arc<Topic>, Refusal> {
    let image = broker.cluster.image();
    let assignments = match t.assignments {
        Some(a) => a,
        None => placement::place(
            &placement::live_candidates(&image),
            &Load::of(&image),
            t.partitions as usize,
            t.replication_factor as usize,
        )
        .map_err(placement_refusal)?,
    };
    let id = uuid::Uuid::new_v4();
    let name = t.name.clone();
    broker
        .cluster
        .change(
            MetadataRecord::CreateTopic {
                name: t.name,
                id,
                assignments,
                configs: t.configs,
            },
            |image| image.topics.get(&name).is_some_and(|t| t.id == id),
        )
        .await
        .map_err(change_refusal)?;
    broker.topics.get(&name).ok_or_else(|| {
        (
            ResponseError::UnknownTopicOrPartition,
            format!("Topic '{name}' was deleted right after it was created."),
        )
    })
}

/// Creates `name` with broker defaults, as auto.create.topics.enable does.
pub async fn auto_create(broker: &Broker, name: &str) -> Result<Arc<Topic>, Refusal> {
    let mut request = CreatableTopic::default();
    request.name = TopicName(StrBytes::from_string(name.to_string()));
    request.num_partitions = -1;
    request.replication_factor = -1;
    let lost_race = |broker: &Broker| {
        broker.topics.get(name).ok_or_else(|| {
            (
                ResponseError::UnknownTopicOrPartition,
                format!("Topic '{name}' does not exist."),
            )
        })
    };
    match validate(broker, &request, &mut PartitionBudget::new(broker)) {
        Ok(t) => match create(broker, t).await {
            // Lost a race with another creator: the topic exists, which is all the caller
            // wanted.
            Err((ResponseError::TopicAlreadyExists, _)) => {
                let _ = broker
                    .cluster
                    .wait_applied(
                        |image| image.topics.contains_key(name),
                        crate::cluster::PROPOSE_TIMEOUT,
                    )
                    .await;
                lost_race(broker)
            }
            other => other,
        },
        Err((ResponseError::TopicAlreadyExists, _)) => lost_race(broker),
        Err(e) => Err(e),
    }
}

fn placement_refusal(e: PlacementError) -> Refusal {
    (ResponseError::InvalidReplicationFactor, e.to_string())
}

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let broker = ctx.broker;
    let version = ctx.api_version;
    let mut response = CreateTopicsResponse::default();
    let mut budget = PartitionBudget::new(broker);
    for t in &request.topics {
        let mut result = CreatableTopicResult::default();
        result.name = t.name.clone();
        result.error_message = None;
        let outcome = match validate(broker, t, &mut budget) {
            _ if !ctx.may_create_topic(&t.name.0) => Err((
                ResponseError::TopicAuthorizationFailed,
                "Authorization failed.".to_string(),
            )),
            Err(e) => Err(e),
            Ok(new) if request.validate_only => {
                Ok((None, new.partitions, new.replication_factor, new.configs))
            }
            Ok(new) => create(broker, new).await.map(|topic| {
                (
                    Some(topic.id),
                    topic.partitions.len() as i32,
                    topic.replication_factor,
                    topic.configs.clone(),
                )
            }),
        };
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
