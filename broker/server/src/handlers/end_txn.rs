//! EndTxn: commit or abort a producer's transaction. The coordinator writes PrepareCommit /
//! PrepareAbort, appends a COMMIT / ABORT marker to every partition of the transaction (on
//! their leaders), then writes the completion with the offsets a commit makes visible, and only
//! then answers: when the client hears success, read-committed consumers can read the
//! transaction. (Kafka answers after the Prepare* record and writes markers afterwards; the
//! client sees the same outcome, later.)

use krait_acl::{Operation, ResourceType};
use krait_image::transaction::{self, EndDecision};
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};

use crate::context::RequestContext;
use crate::transactions::{current, error_code, fenced_for_version, finish};

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=3;

pub async fn handle(ctx: &RequestContext<'_>, request: EndTxnRequest) -> EndTxnResponse {
    let mut response = EndTxnResponse::default();
    response.producer_id = request.producer_id;
    response.producer_epoch = request.producer_epoch;
    if let Err(e) = end(ctx, &request).await {
        let e = fenced_for_version(e, ctx.api_version, 2);
        tracing::debug!(transactional_id = %request.transactional_id.0, error = ?e, "EndTxn refused");
        response.error_code = e.code();
    }
    response
}

async fn end(ctx: &RequestContext<'_>, request: &EndTxnRequest) -> Result<(), ResponseError> {
    let id = request.transactional_id.0.as_str();
    if !ctx.authorized(Operation::Write, ResourceType::TransactionalId, id) {
        return Err(ResponseError::TransactionalIdAuthorizationFailed);
    }
    let broker = ctx.broker;
    if let Some(e) = broker.not_coordinator() {
        return Err(e);
    }
    let _guard = broker.transactions.lock(id).await;
    let decision = transaction::end_transaction(
        current(broker, id).as_ref(),
        request.producer_id.0,
        request.producer_epoch,
        request.committed,
        crate::cluster::now_ms(),
    )
    .map_err(error_code)?;
    match decision {
        EndDecision::AlreadyDone => Ok(()),
        EndDecision::Prepare(prepared) => finish(broker, id, prepared).await.map(drop),
    }
}
