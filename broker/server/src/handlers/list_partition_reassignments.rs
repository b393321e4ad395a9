//! ListPartitionReassignments: the partitions moving now, from this broker's image.

use std::collections::BTreeMap;

use krait_acl::Operation;
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use krait_protocol::kafka_protocol::messages::{
    BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};

use crate::context::RequestContext;
use crate::handlers::changes::topic_name;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=0;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let broker = ctx.broker;
    if !ctx.authorized_on_cluster(Operation::Describe) {
        let mut response = ListPartitionReassignmentsResponse::default();
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return response;
    }
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
