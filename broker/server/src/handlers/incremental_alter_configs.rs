//! IncrementalAlterConfigs: set, delete, append to or subtract from single config keys of a
//! topic (or a broker's dynamic configs), validated and written as a whole like AlterConfigs.

use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse as IncrementalResult;
use krait_protocol::kafka_protocol::messages::{
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};

use crate::context::RequestContext;
use crate::handlers::alter_configs::{Change, alter, outcome};
use crate::topic_config::ConfigOp;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=1;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut response = IncrementalAlterConfigsResponse::default();
    for r in request.resources {
        let changes: Result<Vec<_>, String> = r
            .configs
            .iter()
            .map(|c| {
                ConfigOp::from_kafka(c.config_operation, c.value.as_ref().map(|v| v.to_string()))
                    .map(|op| (c.name.to_string(), op))
                    .map_err(|e| format!("{}: {e}", c.name.as_str()))
            })
            .collect();
        let result = match changes {
            Err(m) => Err((ResponseError::InvalidConfig, m)),
            Ok(c) => {
                alter(
                    ctx,
                    r.resource_type,
                    &r.resource_name,
                    Change::Incremental(c),
                    request.validate_only,
                )
                .await
            }
        };
        let mut out = IncrementalResult::default();
        (out.resource_type, out.resource_name) = (r.resource_type, r.resource_name);
        (out.error_code, out.error_message) = outcome(result);
        response.responses.push(out);
    }
    response
}
