//! CreatePartitions: grow a topic; partitions never shrink.

use krait_acl::{Operation, ResourceType};
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use krait_protocol::kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use krait_protocol::kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use krait_image::placement::{self, Load};
use krait_image::{BrokerId, MetadataRecord};

use crate::broker::Broker;
use crate::context::RequestContext;
use crate::handlers::changes::{PartitionBudget, Refusal, change_refusal};

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=3;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let broker = ctx.broker;
    let mut response = CreatePartitionsResponse::default();
    let mut budget = PartitionBudget::new(broker);
    for t in &request.topics {
        let mut r = CreatePartitionsTopicResult::default();
        r.name = t.name.clone();
        r.error_message = None;
        let result = match validate(broker, t, &mut budget) {
            _ if !ctx.authorized(Operation::Alter, ResourceType::Topic, &t.name.0) => Err((
                ResponseError::TopicAuthorizationFailed,
                "Authorization failed.".to_string(),
            )),
            Ok(assignments) if !request.validate_only => {
                grow(broker, &t.name.0, t.count, assignments).await
            }
            other => other.map(|_| ()),
        };
        if let Err((error, message)) = result {
            r.error_code = error.code();
            r.error_message = Some(StrBytes::from_string(message));
        }
        response.results.push(r);
    }
    response
}

/// Adds partitions through the controller and waits until this broker has them.
async fn grow(
    broker: &Broker,
    topic: &str,
    count: i32,
    assignments: Vec<Vec<BrokerId>>,
) -> Result<(), Refusal> {
    broker
        .cluster
        .change(
            MetadataRecord::CreatePartitions {
                topic: topic.to_string(),
                assignments,
            },
            |image| {
                image
                    .topics
                    .get(topic)
                    .is_some_and(|t| t.partitions.len() >= count as usize)
            },
        )
        .await
        .map(|_| ())
        .map_err(change_refusal)
}

/// Checks the request; returns the new partitions' replicas (given, or placed here).
fn validate(
    broker: &Broker,
    t: &CreatePartitionsTopic,
    budget: &mut PartitionBudget,
) -> Result<Vec<Vec<BrokerId>>, Refusal> {
    let Some(topic) = broker.topics.get(&t.name.0) else {
        return Err((
            ResponseError::UnknownTopicOrPartition,
            format!("Topic '{}' does not exist.", t.name.0),
        ));
    };
    let current = topic.partitions.len() as i32;
    if t.count <= current {
        return Err((
            ResponseError::InvalidPartitions,
            format!(
                "Topic currently has {current} partitions, which is higher than or equal to the requested {}.",
                t.count
            ),
        ));
    }
    budget.take(&t.name.0, t.count.into(), (t.count - current).into())?;
    let added = (t.count - current) as usize;
    let image = broker.cluster.image();
    let rf = topic.replication_factor.max(1) as usize;
    if let Some(assignments) = t.assignments.as_ref().filter(|a| !a.is_empty()) {
        let given: Vec<Vec<BrokerId>> = assignments
            .iter()
            .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
            .collect();
        let valid = given.len() == added
            && given.iter().all(|ids: &Vec<BrokerId>| {
                let mut unique = ids.clone();
                unique.sort_unstable();
                unique.dedup();
                ids.len() == rf
                    && unique.len() == rf
                    && ids.iter().all(|b| image.brokers.contains_key(b))
            });
        if !valid {
            return Err((
                ResponseError::InvalidReplicaAssignment,
                format!(
                    "Expected {added} assignments of {rf} distinct registered brokers (registered: {:?}).",
                    image.brokers.keys().collect::<Vec<_>>()
                ),
            ));
        }
        return Ok(given);
    }
    placement::place(
        &placement::live_candidates(&image),
        &Load::of(&image),
        added,
        rf,
    )
    .map_err(|e| (ResponseError::InvalidReplicationFactor, e.to_string()))
}
