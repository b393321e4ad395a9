//! What several admin handlers share: a refused change as a Kafka error and message, and
//! committing partition changes through the controller.

use krait_image::{ApplyError, MetadataRecord, PartitionChange};
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::TopicName;
use krait_protocol::kafka_protocol::protocol::StrBytes;

use krait_acl::{Operation, ResourceType};

use crate::broker::Broker;
use crate::cluster::ChangeError;
use crate::context::RequestContext;
use krait_metadata::ProposeError;

/// A refused change: the Kafka error and the message that explains it.
pub type Refusal = (ResponseError, String);

pub fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// Whether the principal may `operation` (DESCRIBE_CONFIGS or ALTER_CONFIGS) the configs of
/// a config resource: a topic's need the operation on the topic, a broker's on the cluster.
pub fn config_access(
    ctx: &RequestContext<'_>,
    resource_type: i8,
    name: &str,
    operation: Operation,
) -> Result<(), Refusal> {
    const TOPIC: i8 = 2;
    match resource_type {
        TOPIC if !ctx.authorized(operation, ResourceType::Topic, name) => Err((
            ResponseError::TopicAuthorizationFailed,
            format!("Not authorized to {operation} topic {name}"),
        )),
        TOPIC => Ok(()),
        _ if !ctx.authorized_on_cluster(operation) => Err((
            ResponseError::ClusterAuthorizationFailed,
            format!("Not authorized to {operation} the cluster"),
        )),
        _ => Ok(()),
    }
}

/// Commits `changes` (one record each) and returns each one's outcome.
pub async fn commit_partition_changes(
    broker: &Broker,
    changes: Vec<PartitionChange>,
) -> Vec<Result<(), Refusal>> {
    if changes.is_empty() {
        return Vec::new();
    }
    let count = changes.len();
    let records = changes
        .into_iter()
        .map(MetadataRecord::ChangePartition)
        .collect();
    match broker.cluster.propose(records).await {
        Ok(results) => results
            .into_iter()
            .map(|r| {
                r.map_err(|e| {
                    // A stale epoch means the partition changed meanwhile: the client retries.
                    (ResponseError::ReassignmentInProgress, e.to_string())
                })
            })
            .collect(),
        Err(e) => vec![Err((ResponseError::RequestTimedOut, e.to_string())); count],
    }
}

/// Maps a failed change through the controller to its Kafka error.
pub fn change_refusal(e: ChangeError) -> Refusal {
    let error = match &e {
        ChangeError::Refused(ApplyError::TopicExists(_)) => ResponseError::TopicAlreadyExists,
        ChangeError::Refused(ApplyError::UnknownTopic(_))
        | ChangeError::Refused(ApplyError::UnknownPartition { .. }) => {
            ResponseError::UnknownTopicOrPartition
        }
        ChangeError::Refused(ApplyError::InvalidAssignment { .. })
        | ChangeError::Refused(ApplyError::UnknownBroker(_)) => {
            ResponseError::InvalidReplicaAssignment
        }
        ChangeError::Refused(_) => ResponseError::InvalidRequest,
        ChangeError::Propose(ProposeError::TooLarge { .. }) => ResponseError::PolicyViolation,
        ChangeError::Propose(_) | ChangeError::NotApplied(_) => ResponseError::RequestTimedOut,
    };
    (error, e.to_string())
}

/// The partitions one CreateTopics or CreatePartitions request may add, against the broker's
/// caps: per topic (`--max-partitions-per-topic`), per request (`--max-request-partitions`)
/// and in the whole cluster (`max.partitions`). A request over a cap is refused with
/// INVALID_PARTITIONS before anything is proposed.
#[derive(Debug)]
pub struct PartitionBudget {
    per_topic: i64,
    left_in_request: i64,
    cluster_max: i64,
    /// Partitions the cluster has, plus those this request has taken so far.
    cluster_total: i64,
}

impl PartitionBudget {
    pub fn new(broker: &Broker) -> Self {
        let config = &broker.config;
        let image = broker.cluster.image();
        Self {
            per_topic: config.max_partitions_per_topic.into(),
            left_in_request: config.max_request_partitions.into(),
            cluster_max: config.max_partitions,
            cluster_total: image
                .topics
                .values()
                .map(|t| t.partitions.len() as i64)
                .sum(),
        }
    }

    /// Takes `added` partitions for `topic`, which then has `total` partitions.
    pub fn take(&mut self, topic: &str, total: i64, added: i64) -> Result<(), Refusal> {
        let refuse = |message: String| Err((ResponseError::InvalidPartitions, message));
        if total > self.per_topic {
            return refuse(format!(
                "Topic '{topic}' would have {total} partitions; the most a topic may have is {} (--max-partitions-per-topic).",
                self.per_topic
            ));
        }
        if added > self.left_in_request {
            return refuse(format!(
                "Adding {added} partitions for '{topic}' exceeds what one request may add: {} are left of --max-request-partitions.",
                self.left_in_request
            ));
        }
        if self.cluster_total + added > self.cluster_max {
            return refuse(format!(
                "Adding {added} partitions for '{topic}' would bring the cluster to {}; the most it may have is {} (max.partitions).",
                self.cluster_total + added,
                self.cluster_max
            ));
        }
        self.left_in_request -= added;
        self.cluster_total += added;
        Ok(())
    }
}
