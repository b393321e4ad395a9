//! DescribeCluster: the cluster id, the controller and the live brokers; from v2 (KIP-1073) also
//! the fenced ones, marked, when the client asks for them.

use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use krait_protocol::kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse,
};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use krait_acl::ResourceType;

use crate::context::{CLUSTER_RESOURCE, RequestContext};
use crate::handlers::metadata::client_brokers;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=2;

/// Endpoint type 1 asks for brokers; 2 (controllers) is only meaningful with a separate quorum.
const BROKERS: i8 = 1;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let broker = ctx.broker;
    let version = ctx.api_version;
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
    // Before v2 a response has no `is_fenced` to mark them with, so fenced brokers stay out.
    let include_fenced = version >= 2 && request.include_fenced_brokers;
    let image = broker.cluster.image();
    response.brokers = client_brokers(ctx, &image, include_fenced)
        .into_iter()
        .map(|c| {
            let mut b = DescribeClusterBroker::default();
            b.broker_id = BrokerId(c.id);
            b.host = StrBytes::from_string(c.host);
            b.port = c.port;
            b.rack = c.rack.map(StrBytes::from_string);
            b.is_fenced = c.fenced;
            b
        })
        .collect();
    if request.include_cluster_authorized_operations {
        response.cluster_authorized_operations =
            ctx.authorized_operations(ResourceType::Cluster, CLUSTER_RESOURCE);
    }
    response
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use krait_protocol::kafka_protocol::messages::{ApiKey, DescribeClusterRequest};
    use krait_protocol::kafka_protocol::protocol::Encodable;

    use crate::handlers::tests::{broker, ctx, range, register_fenced_broker};

    fn request(include_fenced_brokers: bool) -> DescribeClusterRequest {
        let mut r = DescribeClusterRequest::default();
        r.endpoint_type = super::BROKERS;
        r.include_fenced_brokers = include_fenced_brokers;
        r
    }

    /// (id, host:port, rack, fenced) of each listed broker.
    fn listed(r: &super::DescribeClusterResponse) -> Vec<(i32, String, Option<String>, bool)> {
        r.brokers
            .iter()
            .map(|b| {
                (
                    b.broker_id.0,
                    format!("{}:{}", b.host, b.port),
                    b.rack.as_ref().map(|r| r.to_string()),
                    b.is_fenced,
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn v2_lists_a_fenced_broker_marked_only_when_asked_and_older_versions_never() {
        let dir = tempfile::tempdir().unwrap();
        let b = broker(&dir).await;
        register_fenced_broker(&b, 2).await;
        let me = format!("{}:{}", b.advertised.host, b.advertised.port);
        let live = (1, me, None, false);
        let fenced = (2, "10.0.0.2:9092".to_string(), Some("r2".to_string()), true);

        let asked = super::handle(&ctx(&b, 2), request(true)).await;
        assert_eq!(asked.error_code, 0);
        assert_eq!(listed(&asked), vec![live.clone(), fenced]);
        let not_asked = super::handle(&ctx(&b, 2), request(false)).await;
        assert_eq!(listed(&not_asked), vec![live.clone()]);

        for version in range(ApiKey::DescribeCluster) {
            // Below v2 the request has no flag and the response no `is_fenced`: live brokers only.
            let r = super::handle(&ctx(&b, version), request(true)).await;
            let expected = if version >= 2 { 2 } else { 1 };
            assert_eq!(r.brokers.len(), expected, "DescribeCluster v{version}");
            let mut buf = BytesMut::new();
            r.encode(&mut buf, version)
                .unwrap_or_else(|e| panic!("DescribeCluster v{version}: {e}"));
        }
    }

    #[tokio::test]
    async fn cluster_authorized_operations_are_every_cluster_operation_without_an_authorizer() {
        let dir = tempfile::tempdir().unwrap();
        let b = broker(&dir).await;
        let not_asked = super::handle(&ctx(&b, 1), request(false)).await;
        assert_eq!(not_asked.cluster_authorized_operations, i32::MIN);
        let mut asked = request(false);
        asked.include_cluster_authorized_operations = true;
        let r = super::handle(&ctx(&b, 1), asked).await;
        // CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS,
        // IDEMPOTENT_WRITE: Kafka's codes 5, 7, 8, 9, 10, 11, 12.
        let expected = [5, 7, 8, 9, 10, 11, 12].iter().map(|c| 1 << c).sum::<i32>();
        assert_eq!(r.cluster_authorized_operations, expected);
    }
}
