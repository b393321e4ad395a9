//! DescribeCluster: the cluster id, the controller and the live brokers.

use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use krait_protocol::kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse,
};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;

/// Endpoint type 1 asks for brokers; 2 (controllers) is only meaningful with a separate quorum.
const BROKERS: i8 = 1;

pub async fn handle(
    broker: &Broker,
    version: i16,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let mut response = DescribeClusterResponse::default();
    response.error_message = None;
    if version >= 1 && request.endpoint_type != BROKERS {
        response.error_code = ResponseError::UnsupportedEndpointType.code();
        response.error_message = Some(StrBytes::from_static_str(
            "Only broker endpoints (type 1) are served.",
        ));
        return response;
    }
    response.cluster_id = StrBytes::from_string(broker.cluster_id());
    response.controller_id = BrokerId(broker.cluster.controller_id().unwrap_or(-1));
    let image = broker.cluster.image();
    response.brokers = crate::handlers::metadata::brokers(broker, &image)
        .into_iter()
        .map(|m| {
            let mut b = DescribeClusterBroker::default();
            b.broker_id = m.node_id;
            b.host = m.host;
            b.port = m.port;
            b.rack = m.rack;
            b
        })
        .collect();
    response
}
