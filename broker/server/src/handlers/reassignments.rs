//! AlterPartitionReassignments, ListPartitionReassignments and ElectLeaders: the admin requests
//! that move partitions and their leadership. Each change is computed from this broker's image
//! by `krait-controller`'s pure functions and committed through the controller; a change made
//! from a stale image is refused by the partition epoch and reported as a retriable error.
//! The moves are throttled by the `*.replication.throttled.rate` broker configs.

use std::collections::BTreeMap;

use krait_controller::election::{self, ElectionError};
use krait_controller::reassignment::{self, ReassignError};
use krait_controller::{MetadataRecord, PartitionChange};
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use krait_protocol::kafka_protocol::messages::elect_leaders_response::{
    PartitionResult, ReplicaElectionResult,
};
use krait_protocol::kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use krait_protocol::kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ElectLeadersRequest, ElectLeadersResponse, ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse, TopicName,
};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::handlers::create_topics::Refusal;

const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;

fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn reassign_refusal(e: ReassignError) -> Refusal {
    let code = match e {
        ReassignError::UnknownPartition => ResponseError::UnknownTopicOrPartition,
        ReassignError::EmptyTarget | ReassignError::DuplicateBroker(_) => {
            ResponseError::InvalidReplicaAssignment
        }
        ReassignError::UnknownBroker(_) => ResponseError::InvalidReplicaAssignment,
        ReassignError::NoReassignmentInProgress => ResponseError::NoReassignmentInProgress,
    };
    (code, e.to_string())
}

/// Commits `changes` (one record each) and returns each one's outcome.
async fn commit(broker: &Broker, changes: Vec<PartitionChange>) -> Vec<Result<(), Refusal>> {
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

pub async fn alter(
    broker: &Broker,
    _version: i16,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let image = broker.cluster.image();
    // Every requested partition: where it is in the response, and the change to commit.
    let mut slots: Vec<(usize, usize, Result<Option<PartitionChange>, Refusal>)> = Vec::new();
    let mut response = AlterPartitionReassignmentsResponse::default();
    response.error_message = None;
    for (t, topic) in request.topics.iter().enumerate() {
        let mut out = ReassignableTopicResponse::default();
        out.name = topic.name.clone();
        for (p, partition) in topic.partitions.iter().enumerate() {
            let mut r = ReassignablePartitionResponse::default();
            r.partition_index = partition.partition_index;
            r.error_message = None;
            out.partitions.push(r);
            let change = match &partition.replicas {
                Some(target) => {
                    let target: Vec<i32> = target.iter().map(|b| b.0).collect();
                    reassignment::start(&image, &topic.name.0, partition.partition_index, &target)
                        .map_err(reassign_refusal)
                }
                None => reassignment::cancel(&image, &topic.name.0, partition.partition_index)
                    .map(Some)
                    .map_err(reassign_refusal),
            };
            slots.push((t, p, change));
        }
        response.responses.push(out);
    }
    let changes: Vec<PartitionChange> = slots
        .iter()
        .filter_map(|(_, _, c)| c.as_ref().ok().cloned().flatten())
        .collect();
    for c in &changes {
        tracing::info!(topic = %c.topic, partition = c.partition, replicas = ?c.replicas, adding = ?c.adding, removing = ?c.removing, "reassignment requested");
    }
    let mut committed = commit(broker, changes).await.into_iter();
    for (t, p, change) in slots {
        let outcome = match change {
            Err(e) => Err(e),
            Ok(None) => Ok(()),
            Ok(Some(_)) => committed.next().unwrap_or(Ok(())),
        };
        if let Err((code, message)) = outcome {
            let r = &mut response.responses[t].partitions[p];
            r.error_code = code.code();
            r.error_message = Some(StrBytes::from_string(message));
        }
    }
    response
}

pub async fn list(
    broker: &Broker,
    _version: i16,
    request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let image = broker.cluster.image();
    let wanted: Option<BTreeMap<String, Vec<i32>>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let ids = |v: &[i32]| v.iter().map(|b| BrokerId(*b)).collect::<Vec<_>>();
    let mut response = ListPartitionReassignmentsResponse::default();
    response.error_message = None;
    for (name, topic) in &image.topics {
        let filter = match &wanted {
            Some(w) => match w.get(name) {
                Some(partitions) => Some(partitions),
                None => continue,
            },
            None => None,
        };
        let partitions: Vec<OngoingPartitionReassignment> = topic
            .partitions
            .iter()
            .enumerate()
            .filter(|(i, state)| {
                state.is_reassigning() && filter.is_none_or(|f| f.contains(&(*i as i32)))
            })
            .map(|(i, state)| {
                let mut p = OngoingPartitionReassignment::default();
                p.partition_index = i as i32;
                p.replicas = ids(&state.replicas);
                p.adding_replicas = ids(&state.adding);
                p.removing_replicas = ids(&state.removing);
                p
            })
            .collect();
        if !partitions.is_empty() {
            let mut t = OngoingTopicReassignment::default();
            t.name = topic_name(name);
            t.partitions = partitions;
            response.topics.push(t);
        }
    }
    response
}

fn election_refusal(e: ElectionError) -> Refusal {
    let code = match e {
        ElectionError::UnknownPartition => ResponseError::UnknownTopicOrPartition,
        ElectionError::ElectionNotNeeded => ResponseError::ElectionNotNeeded,
        ElectionError::PreferredNotAvailable => ResponseError::PreferredLeaderNotAvailable,
        ElectionError::EligibleLeadersNotAvailable => ResponseError::EligibleLeadersNotAvailable,
    };
    (code, e.to_string())
}

pub async fn elect_leaders(
    broker: &Broker,
    version: i16,
    request: ElectLeadersRequest,
) -> ElectLeadersResponse {
    let image = broker.cluster.image();
    let election_type = if version >= 1 {
        request.election_type
    } else {
        PREFERRED
    };
    let partitions: Vec<(String, i32)> = match request.topic_partitions {
        Some(topics) => topics
            .into_iter()
            .flat_map(|t| {
                let name = t.topic.0.to_string();
                t.partitions.into_iter().map(move |p| (name.clone(), p))
            })
            .collect(),
        // Null: every partition of every topic.
        None => image
            .partitions()
            .map(|(t, p, _)| (t.to_string(), p))
            .collect(),
    };
    let mut response = ElectLeadersResponse::default();
    let outcomes = match election_type {
        PREFERRED => election::preferred(&image, &partitions),
        UNCLEAN => election::unclean(&image, &partitions),
        _ => {
            response.error_code = ResponseError::InvalidRequest.code();
            return response;
        }
    };
    let changes: Vec<PartitionChange> = outcomes.iter().filter_map(|o| o.clone().ok()).collect();
    let mut committed = commit(broker, changes).await.into_iter();
    let mut by_topic: BTreeMap<String, Vec<PartitionResult>> = BTreeMap::new();
    for ((topic, partition), outcome) in partitions.into_iter().zip(outcomes) {
        let result = match outcome {
            Ok(_) => committed.next().unwrap_or(Ok(())),
            Err(e) => Err(election_refusal(e)),
        };
        let mut r = PartitionResult::default();
        r.partition_id = partition;
        r.error_message = None;
        if let Err((code, message)) = result {
            r.error_code = code.code();
            r.error_message = Some(StrBytes::from_string(message));
        }
        by_topic.entry(topic).or_default().push(r);
    }
    response.replica_election_results = by_topic
        .into_iter()
        .map(|(topic, partition_result)| {
            let mut t = ReplicaElectionResult::default();
            t.topic = topic_name(&topic);
            t.partition_result = partition_result;
            t
        })
        .collect();
    response
}
