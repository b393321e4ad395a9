//! ApiVersions: the list of APIs and versions this broker serves.

use krait_protocol::api::api_versions_response;
use krait_protocol::kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use crate::context::RequestContext;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=3;

pub async fn handle(
    _ctx: &RequestContext<'_>,
    _request: ApiVersionsRequest,
) -> ApiVersionsResponse {
    api_versions_response(super::SERVED, 0)
}
