//! Transactions through the admin protocol, as Kafka's `kafka-transactions.sh` sees them:
//! ListTransactions (asked of every broker, since any may coordinate some ids),
//! DescribeTransactions (asked of the id's coordinator, found with FindCoordinator),
//! DescribeProducers (asked of each partition's leader) and the abort of a hanging transaction
//! (WriteTxnMarkers with an ABORT marker, sent to the partition's leader).
//!
//! The answers become plain data here; what to abort is the caller's decision.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeTransactionsRequest, FindCoordinatorRequest,
    ListTransactionsRequest, ProducerId, TransactionalId, WriteTxnMarkersRequest,
};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use crate::cluster::{Admin, AdminError, BrokerInfo, Result, text, topic_name};
use crate::wire::Connection;

/// FindCoordinator's key type for transactional ids.
const TRANSACTION_COORDINATOR: i8 = 1;
/// A broker that coordinates no transactional ids may say so.
const NOT_COORDINATOR: i16 = 16;

/// One transactional id as ListTransactions reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransactionListing {
    pub transactional_id: String,
    pub producer_id: i64,
    pub state: String,
    /// The broker that answered: the id's coordinator.
    pub coordinator: i32,
}

/// One transactional id as DescribeTransactions reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransactionDescription {
    pub transactional_id: String,
    pub coordinator: i32,
    pub state: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    /// When the open transaction began, -1 when none is open.
    pub start_time_ms: i64,
    pub partitions: Vec<(String, i32)>,
}

/// One producer a partition leader keeps state for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProducerInfo {
    pub producer_id: i64,
    pub producer_epoch: i32,
    pub last_sequence: i32,
    pub last_timestamp: i64,
    pub coordinator_epoch: i32,
    /// The first offset of its open transaction on the partition, -1 when none is open.
    pub current_txn_start_offset: i64,
}

/// The producers of one partition, from its leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionProducers {
    pub topic: String,
    pub partition: i32,
    pub leader: i32,
    pub producers: Vec<ProducerInfo>,
}

/// What `kafka-transactions.sh abort` needs to end a hanging transaction on one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AbortSpec {
    pub topic: String,
    pub partition: i32,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub coordinator_epoch: i32,
}

/// The ListTransactions answers of several brokers as one list, sorted by id; an id two
/// brokers report (a coordinator moving) is listed once.
pub fn merge_listings(answers: Vec<Vec<TransactionListing>>) -> Vec<TransactionListing> {
    let mut by_id: BTreeMap<String, TransactionListing> = BTreeMap::new();
    for listing in answers.into_iter().flatten() {
        by_id
            .entry(listing.transactional_id.clone())
            .or_insert(listing);
    }
    by_id.into_values().collect()
}

/// The marker request that aborts `spec`'s transaction.
pub fn abort_request(spec: &AbortSpec) -> WriteTxnMarkersRequest {
    let topic = WritableTxnMarkerTopic::default()
        .with_name(topic_name(&spec.topic))
        .with_partition_indexes(vec![spec.partition]);
    let marker = WritableTxnMarker::default()
        .with_producer_id(ProducerId(spec.producer_id))
        .with_producer_epoch(spec.producer_epoch)
        .with_transaction_result(false)
        .with_coordinator_epoch(spec.coordinator_epoch)
        .with_topics(vec![topic]);
    WriteTxnMarkersRequest::default().with_markers(vec![marker])
}

impl Admin {
    /// Every transactional id the cluster's coordinators know, in `states` (all when empty).
    pub fn list_transactions(&mut self, states: &[String]) -> Result<Vec<TransactionListing>> {
        let brokers = self.describe_cluster()?.brokers;
        let request = ListTransactionsRequest::default().with_state_filters(
            states
                .iter()
                .map(|s| StrBytes::from_string(s.clone()))
                .collect(),
        );
        let mut answers = Vec::new();
        for broker in brokers.iter().filter(|b| !b.fenced) {
            let response = self.open(broker)?.call(&request, 0..=1)?;
            match response.error_code {
                0 => {}
                NOT_COORDINATOR => continue,
                code => {
                    return Err(AdminError::refused(
                        format!("ListTransactions on broker {}", broker.id),
                        code,
                        None,
                    ));
                }
            }
            if let Some(unknown) = response.unknown_state_filters.first() {
                return Err(AdminError::Refused {
                    operation: "ListTransactions".into(),
                    detail: format!("unknown transaction state {:?}", unknown.as_str()),
                });
            }
            answers.push(
                response
                    .transaction_states
                    .iter()
                    .map(|t| TransactionListing {
                        transactional_id: t.transactional_id.0.to_string(),
                        producer_id: t.producer_id.0,
                        state: text(&t.transaction_state),
                        coordinator: broker.id,
                    })
                    .collect(),
            );
        }
        Ok(merge_listings(answers))
    }

    /// The coordinator of transactional id `id` (FindCoordinator, key type 1).
    pub fn transaction_coordinator(&mut self, id: &str) -> Result<BrokerInfo> {
        let conn = self.bootstrap_connection();
        let version = conn.version::<FindCoordinatorRequest>(1..=4)?;
        let request = FindCoordinatorRequest::default().with_key_type(TRANSACTION_COORDINATOR);
        let request = if version >= 4 {
            request.with_coordinator_keys(vec![StrBytes::from_string(id.to_string())])
        } else {
            request.with_key(StrBytes::from_string(id.to_string()))
        };
        let r = conn.call(&request, version..=version)?;
        let (code, node, host, port) = match r.coordinators.first() {
            Some(c) => (c.error_code, c.node_id.0, text(&c.host), c.port),
            None => (r.error_code, r.node_id.0, text(&r.host), r.port),
        };
        if code != 0 {
            return Err(AdminError::refused(
                format!("finding the coordinator of transactional id {id}"),
                code,
                None,
            ));
        }
        Ok(BrokerInfo {
            id: node,
            host,
            port,
            rack: None,
            fenced: false,
        })
    }

    /// The coordinator's state of transactional id `id`.
    pub fn describe_transaction(&mut self, id: &str) -> Result<TransactionDescription> {
        let coordinator = self.transaction_coordinator(id)?;
        let request = DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![TransactionalId(StrBytes::from_string(id.to_string()))]);
        let response = self.open(&coordinator)?.call(&request, 0..=0)?;
        let Some(s) = response.transaction_states.first() else {
            return Err(AdminError::Refused {
                operation: format!("describing transactional id {id}"),
                detail: "the coordinator answered nothing".into(),
            });
        };
        if s.error_code != 0 {
            return Err(AdminError::refused(
                format!("describing transactional id {id}"),
                s.error_code,
                None,
            ));
        }
        let mut partitions: Vec<(String, i32)> = s
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p)))
            .collect();
        partitions.sort();
        Ok(TransactionDescription {
            transactional_id: id.to_string(),
            coordinator: coordinator.id,
            state: text(&s.transaction_state),
            producer_id: s.producer_id.0,
            producer_epoch: s.producer_epoch,
            timeout_ms: s.transaction_timeout_ms,
            start_time_ms: s.transaction_start_time_ms,
            partitions,
        })
    }

    /// The leader of each of `partitions` of `topic` (all of them when `None`), with the
    /// connection details of the broker.
    fn leaders(
        &mut self,
        topic: &str,
        partitions: Option<&[i32]>,
    ) -> Result<Vec<(i32, BrokerInfo)>> {
        let md = self.metadata(Some(&[topic.to_string()]))?;
        let state = md
            .topic(topic)
            .ok_or_else(|| AdminError::UnknownTopic(topic.to_string()))?;
        let wanted: Vec<i32> = match partitions {
            Some(p) => p.to_vec(),
            None => state.partitions.iter().map(|p| p.partition).collect(),
        };
        wanted
            .into_iter()
            .map(|p| {
                let leader = state
                    .partitions
                    .iter()
                    .find(|s| s.partition == p)
                    .map(|s| s.leader)
                    .ok_or_else(|| AdminError::Refused {
                        operation: format!("finding partition {topic}-{p}"),
                        detail: "no such partition".into(),
                    })?;
                let broker = md
                    .brokers
                    .iter()
                    .find(|b| b.id == leader)
                    .cloned()
                    .ok_or_else(|| AdminError::Refused {
                        operation: format!("finding the leader of {topic}-{p}"),
                        detail: format!("leader {leader} is not among the brokers (none?)"),
                    })?;
                Ok((p, broker))
            })
            .collect()
    }

    /// The producers of `partitions` of `topic` (all when `None`), each from its leader.
    pub fn describe_producers(
        &mut self,
        topic: &str,
        partitions: Option<&[i32]>,
    ) -> Result<Vec<PartitionProducers>> {
        let mut out = Vec::new();
        for (partition, leader) in self.leaders(topic, partitions)? {
            let mut conn = self.open(&leader)?;
            out.push(describe_partition_producers(
                &mut conn, topic, partition, leader.id,
            )?);
        }
        Ok(out)
    }

    /// Aborts the transaction `spec` names on its partition: an ABORT marker written by the
    /// partition's leader. What `kafka-transactions.sh abort` does for a hanging transaction.
    pub fn abort_transaction(&mut self, spec: &AbortSpec) -> Result<()> {
        let (_, leader) = self
            .leaders(&spec.topic, Some(&[spec.partition]))?
            .pop()
            .ok_or_else(|| AdminError::UnknownTopic(spec.topic.clone()))?;
        let response = self.open(&leader)?.call(&abort_request(spec), 1..=1)?;
        let code = response
            .markers
            .iter()
            .flat_map(|m| &m.topics)
            .flat_map(|t| &t.partitions)
            .map(|p| p.error_code)
            .find(|c| *c != 0);
        match code {
            Some(code) => Err(AdminError::refused(
                format!(
                    "aborting the transaction of producer {} on {}-{}",
                    spec.producer_id, spec.topic, spec.partition
                ),
                code,
                None,
            )),
            None => Ok(()),
        }
    }
}

fn describe_partition_producers(
    conn: &mut Connection,
    topic: &str,
    partition: i32,
    leader: i32,
) -> Result<PartitionProducers> {
    let request = DescribeProducersRequest::default().with_topics(vec![
        TopicRequest::default()
            .with_name(topic_name(topic))
            .with_partition_indexes(vec![partition]),
    ]);
    let response = conn.call(&request, 0..=0)?;
    let Some(p) = response
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == partition)
    else {
        return Err(AdminError::Refused {
            operation: format!("describing the producers of {topic}-{partition}"),
            detail: "the leader answered nothing for it".into(),
        });
    };
    if p.error_code != 0 {
        return Err(AdminError::refused(
            format!("describing the producers of {topic}-{partition}"),
            p.error_code,
            p.error_message.as_ref(),
        ));
    }
    Ok(PartitionProducers {
        topic: topic.to_string(),
        partition,
        leader,
        producers: p
            .active_producers
            .iter()
            .map(|s| ProducerInfo {
                producer_id: s.producer_id.0,
                producer_epoch: s.producer_epoch,
                last_sequence: s.last_sequence,
                last_timestamp: s.last_timestamp,
                coordinator_epoch: s.coordinator_epoch,
                current_txn_start_offset: s.current_txn_start_offset,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(id: &str, coordinator: i32) -> TransactionListing {
        TransactionListing {
            transactional_id: id.into(),
            producer_id: 1,
            state: "Ongoing".into(),
            coordinator,
        }
    }

    #[test]
    fn listings_of_several_brokers_merge_sorted_and_once_per_id() {
        let merged = merge_listings(vec![
            vec![listing("b", 1), listing("a", 1)],
            vec![listing("b", 2), listing("c", 2)],
        ]);
        let ids: Vec<_> = merged
            .iter()
            .map(|l| (l.transactional_id.as_str(), l.coordinator))
            .collect();
        assert_eq!(ids, vec![("a", 1), ("b", 1), ("c", 2)]);
    }

    #[test]
    fn an_abort_is_one_abort_marker_for_one_partition() {
        let r = abort_request(&AbortSpec {
            topic: "t".into(),
            partition: 3,
            producer_id: 42,
            producer_epoch: 7,
            coordinator_epoch: 5,
        });
        let m = &r.markers[0];
        assert!(!m.transaction_result, "false is ABORT");
        assert_eq!((m.producer_id.0, m.producer_epoch), (42, 7));
        assert_eq!(m.coordinator_epoch, 5);
        assert_eq!(m.topics[0].name.0.as_str(), "t");
        assert_eq!(m.topics[0].partition_indexes, vec![3]);
    }
}
