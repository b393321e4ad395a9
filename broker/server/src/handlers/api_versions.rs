//! ApiVersions: the list of APIs and versions this broker serves.

use krait_protocol::api::api_versions_response;
use krait_protocol::kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use crate::broker::Broker;

pub async fn handle(
    _broker: &Broker,
    _version: i16,
    _request: ApiVersionsRequest,
) -> ApiVersionsResponse {
    api_versions_response(0)
}
