//! CreatePartitions: grow a topic; partitions never shrink.

use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use krait_protocol::kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use krait_protocol::kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::handlers::create_topics::{Refusal, refusal};

pub async fn handle(
    broker: &Broker,
    _version: i16,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut response = CreatePartitionsResponse::default();
    for t in &request.topics {
        let mut r = CreatePartitionsTopicResult::default();
        r.name = t.name.clone();
        r.error_message = None;
        let result = validate(broker, t).and_then(|()| {
            if request.validate_only {
                Ok(())
            } else {
                broker
                    .topics
                    .grow(&t.name.0, t.count)
                    .map(|_| ())
                    .map_err(refusal)
            }
        });
        if let Err((error, message)) = result {
            r.error_code = error.code();
            r.error_message = Some(StrBytes::from_string(message));
        }
        response.results.push(r);
    }
    response
}

fn validate(broker: &Broker, t: &CreatePartitionsTopic) -> Result<(), Refusal> {
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
    if let Some(assignments) = t.assignments.as_ref().filter(|a| !a.is_empty()) {
        let added = (t.count - current) as usize;
        let valid = assignments.len() == added
            && assignments.iter().all(|a| {
                !a.broker_ids.is_empty() && a.broker_ids.iter().all(|b| b.0 == broker.node_id())
            });
        if !valid {
            return Err((
                ResponseError::InvalidReplicaAssignment,
                format!(
                    "Expected {added} assignments naming only live broker {}.",
                    broker.node_id()
                ),
            ));
        }
    }
    Ok(())
}
