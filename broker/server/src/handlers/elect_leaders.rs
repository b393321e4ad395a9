//! ElectLeaders: move leadership to the preferred replica, or (unclean) to any live replica
//! when no in-sync one is left. Elections are computed by `krait-image` from this broker's
//! image and committed through the controller.

use std::collections::BTreeMap;

use krait_acl::Operation;
use krait_image::PartitionChange;
use krait_image::election::{self, ElectionError};
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::elect_leaders_response::{
    PartitionResult, ReplicaElectionResult,
};
use krait_protocol::kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::context::RequestContext;
use crate::handlers::changes::{Refusal, commit_partition_changes, topic_name};

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=2;

const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;

fn election_refusal(e: ElectionError) -> Refusal {
    let code = match e {
        ElectionError::UnknownPartition => ResponseError::UnknownTopicOrPartition,
        ElectionError::ElectionNotNeeded => ResponseError::ElectionNotNeeded,
        ElectionError::PreferredNotAvailable => ResponseError::PreferredLeaderNotAvailable,
        ElectionError::EligibleLeadersNotAvailable => ResponseError::EligibleLeadersNotAvailable,
    };
    (code, e.to_string())
}

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: ElectLeadersRequest,
) -> ElectLeadersResponse {
    let broker = ctx.broker;
    let version = ctx.api_version;
    if !ctx.authorized_on_cluster(Operation::Alter) {
        let mut response = ElectLeadersResponse::default();
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return response;
    }
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
    let mut committed = commit_partition_changes(broker, changes).await.into_iter();
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
