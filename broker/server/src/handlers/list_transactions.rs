//! ListTransactions (v0–v1): the transactional ids this coordinator (the controller) knows,
//! filtered by state, producer id and (v1+) how long they have been running; only those the
//! client may describe. v2's name pattern is not served.

use krait_acl::{Operation, ResourceType};
use krait_protocol::kafka_protocol::messages::list_transactions_response::TransactionState;
use krait_protocol::kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::context::RequestContext;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=1;

const STATES: [&str; 6] = [
    "Empty",
    "Ongoing",
    "PrepareCommit",
    "PrepareAbort",
    "CompleteCommit",
    "CompleteAbort",
];

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let broker = ctx.broker;
    let mut response = ListTransactionsResponse::default();
    if let Some(e) = broker.not_coordinator() {
        response.error_code = e.code();
        return response;
    }
    response.unknown_state_filters = request
        .state_filters
        .iter()
        .filter(|s| !STATES.contains(&s.as_str()))
        .cloned()
        .collect();
    let now = crate::cluster::now_ms();
    let image = broker.cluster.quorum.image().borrow().clone();
    for (id, t) in &image.transactions {
        let state = t.state.name();
        let wanted = (request.state_filters.is_empty()
            || request.state_filters.iter().any(|s| s.as_str() == state))
            && (request.producer_id_filters.is_empty()
                || request
                    .producer_id_filters
                    .contains(&ProducerId(t.producer_id)))
            && (request.duration_filter < 0
                || (t.start_ms >= 0 && now - t.start_ms >= request.duration_filter));
        if !wanted || !ctx.authorized(Operation::Describe, ResourceType::TransactionalId, id) {
            continue;
        }
        let mut s = TransactionState::default();
        s.transactional_id = TransactionalId(StrBytes::from_string(id.clone()));
        s.producer_id = ProducerId(t.producer_id);
        s.transaction_state = StrBytes::from_static_str(state);
        response.transaction_states.push(s);
    }
    response
}
