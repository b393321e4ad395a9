//! AddOffsetsToTxn: a transactional producer will commit a consumer group's offsets in its
//! transaction (TxnOffsetCommit follows); the offsets become the group's when it commits.
//!
//! Decided by `krait_image::transaction::add_offsets` on the coordinator (the controller, which
//! also coordinates the group).

use krait_acl::{Operation, ResourceType};
use krait_image::transaction;
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use crate::context::RequestContext;
use crate::transactions::{current, error_code, fenced_for_version, put};

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=3;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let mut response = AddOffsetsToTxnResponse::default();
    if let Err(e) = add(ctx, &request).await {
        response.error_code = e.code();
    }
    response
}

async fn add(
    ctx: &RequestContext<'_>,
    request: &AddOffsetsToTxnRequest,
) -> Result<(), ResponseError> {
    let id = request.transactional_id.0.as_str();
    let group = request.group_id.0.as_str();
    if !ctx.authorized(Operation::Write, ResourceType::TransactionalId, id) {
        return Err(ResponseError::TransactionalIdAuthorizationFailed);
    }
    if !ctx.authorized(Operation::Read, ResourceType::Group, group) {
        return Err(ResponseError::GroupAuthorizationFailed);
    }
    let broker = ctx.broker;
    if let Some(e) = broker.not_coordinator() {
        return Err(e);
    }
    let _guard = broker.transactions.lock(id).await;
    let before = current(broker, id);
    let next = transaction::add_offsets(
        before.as_ref(),
        request.producer_id.0,
        request.producer_epoch,
        group,
        crate::cluster::now_ms(),
    )
    .map_err(|e| fenced_for_version(error_code(e), ctx.api_version, 2))?;
    let unchanged = before
        .as_ref()
        .is_some_and(|b| b.state == next.state && b.groups == next.groups);
    if !unchanged {
        put(broker, id, next).await?;
    }
    Ok(())
}
