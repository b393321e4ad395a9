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
    response.cluster_id = StrBytes::from_string(broker.cluster_id.clone());
    response.controller_id = BrokerId(broker.node_id());
    let mut b = DescribeClusterBroker::default();
    b.broker_id = BrokerId(broker.node_id());
    b.host = StrBytes::from_string(broker.advertised.host.clone());
    b.port = broker.advertised.port;
    response.brokers = vec![b];
    response
}
