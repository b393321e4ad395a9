//! DescribeTransactions: the coordinator's state of each transactional id asked for (state,
//! producer id and epoch, timeout, start time, partitions), read from the metadata image.
//! Answered by the coordinator only (the controller), as in Kafka.

use std::collections::BTreeMap;

use krait_acl::{Operation, ResourceType};
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::describe_transactions_response::{
    TopicData, TransactionState,
};
use krait_protocol::kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName,
};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::context::RequestContext;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=0;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let broker = ctx.broker;
    let not_coordinator = broker.not_coordinator();
    let image = broker.cluster.quorum.image().borrow().clone();
    let mut response = DescribeTransactionsResponse::default();
    for id in request.transactional_ids {
        let mut s = TransactionState::default();
        s.transaction_state = StrBytes::from_static_str("");
        s.producer_id = ProducerId(-1);
        s.producer_epoch = -1;
        s.transaction_start_time_ms = -1;
        let found = image.transactions.get(id.0.as_str());
        let error = if !ctx.authorized(Operation::Describe, ResourceType::TransactionalId, &id.0) {
            Some(ResponseError::TransactionalIdAuthorizationFailed)
        } else if let Some(e) = not_coordinator {
            Some(e)
        } else if found.is_none() {
            Some(ResponseError::TransactionalIdNotFound)
        } else {
            None
        };
        match (error, found) {
            (None, Some(t)) => {
                s.transaction_state = StrBytes::from_static_str(t.state.name());
                s.transaction_timeout_ms = t.timeout_ms;
                s.transaction_start_time_ms = t.start_ms;
                s.producer_id = ProducerId(t.producer_id);
                s.producer_epoch = t.producer_epoch;
                let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
                for (topic, partition) in &t.partitions {
                    topics.entry(topic).or_default().push(*partition);
                }
                s.topics = topics
                    .into_iter()
                    .map(|(topic, partitions)| {
                        let mut d = TopicData::default();
                        d.topic = TopicName(StrBytes::from_string(topic.to_string()));
                        d.partitions = partitions;
                        d
                    })
                    .collect();
            }
            (e, _) => s.error_code = e.map_or(0, |e| e.code()),
        }
        s.transactional_id = id;
        response.transaction_states.push(s);
    }
    response
}
