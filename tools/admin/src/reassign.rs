//! Moving replicas: AlterPartitionReassignments and ListPartitionReassignments to the
//! controller, the replication throttle Kafka's reassignment tool sets around them (dynamic
//! broker configs through IncrementalAlterConfigs), and UnregisterBroker for a broker that has
//! left for good. Starting a reassignment never waits for it to finish.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    IncrementalAlterConfigsRequest, ListPartitionReassignmentsRequest, UnregisterBrokerRequest,
};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use crate::cluster::{Admin, AdminError, BrokerInfo, Result, ids, topic_name};
use crate::wire::error_text;

/// The dynamic broker configs Kafka's reassignment tool throttles replication with.
pub const THROTTLE_CONFIGS: [&str; 2] = [
    "leader.replication.throttled.rate",
    "follower.replication.throttled.rate",
];
/// IncrementalAlterConfigs / DescribeConfigs resource type of a broker.
pub(crate) const BROKER_RESOURCE: i8 = 4;
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
/// The answer to cancelling a partition that is not moving.
pub const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;

/// One partition's requested replica list; `None` cancels its reassignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassignment {
    pub topic: String,
    pub partition: i32,
    pub replicas: Option<Vec<i32>>,
}

/// A reassignment in progress, as ListPartitionReassignments reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ongoing {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<i32>,
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

/// The AlterPartitionReassignments request for `reassignments`, grouped by topic in name
/// order, partitions in the order given.
pub fn alter_request(
    reassignments: &[Reassignment],
    timeout_ms: i32,
) -> AlterPartitionReassignmentsRequest {
    let mut by_topic: BTreeMap<&str, Vec<&Reassignment>> = BTreeMap::new();
    for r in reassignments {
        by_topic.entry(r.topic.as_str()).or_default().push(r);
    }
    let topics = by_topic
        .into_iter()
        .map(|(topic, partitions)| {
            ReassignableTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|p| {
                            ReassignablePartition::default()
                                .with_partition_index(p.partition)
                                .with_replicas(
                                    p.replicas
                                        .as_ref()
                                        .map(|r| r.iter().copied().map(BrokerId).collect()),
                                )
                        })
                        .collect(),
                )
        })
        .collect();
    AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(timeout_ms)
        .with_topics(topics)
}

/// Each partition's answer: (topic, partition) -> (error code, message).
pub fn answers(
    response: &AlterPartitionReassignmentsResponse,
) -> BTreeMap<(String, i32), (i16, Option<String>)> {
    response
        .responses
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    (t.name.0.to_string(), p.partition_index),
                    (
                        p.error_code,
                        p.error_message
                            .as_ref()
                            .map(|m| m.to_string())
                            .filter(|m| !m.is_empty()),
                    ),
                )
            })
        })
        .collect()
}

impl Admin {
    /// Sends every reassignment in one AlterPartitionReassignments to the controller. A
    /// top-level error is an `Err`; per-partition errors are in the response ([`answers`]).
    pub fn alter_reassignments(
        &mut self,
        reassignments: &[Reassignment],
    ) -> Result<AlterPartitionReassignmentsResponse> {
        let request = alter_request(reassignments, self.timeout_ms());
        let response = self.call_controller(&request, 0..=1, |r| r.error_code)?;
        if response.error_code != 0 {
            return Err(AdminError::refused(
                "AlterPartitionReassignments",
                response.error_code,
                response.error_message.as_ref(),
            ));
        }
        Ok(response)
    }

    /// The reassignments in progress (only `topic`'s when given), sorted by topic and
    /// partition.
    pub fn reassignments_in_progress(&mut self, topic: Option<&str>) -> Result<Vec<Ongoing>> {
        let topics = match topic {
            None => None,
            Some(name) => {
                let md = self.metadata(Some(&[name.to_string()]))?;
                let partitions = md
                    .topic(name)
                    .map(|t| t.partitions.iter().map(|p| p.partition).collect());
                Some(vec![
                    ListPartitionReassignmentsTopics::default()
                        .with_name(topic_name(name))
                        .with_partition_indexes(partitions.unwrap_or_default()),
                ])
            }
        };
        let request = ListPartitionReassignmentsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_topics(topics);
        let response = self.call_controller(&request, 0..=0, |r| r.error_code)?;
        if response.error_code != 0 {
            return Err(AdminError::refused(
                "ListPartitionReassignments",
                response.error_code,
                response.error_message.as_ref(),
            ));
        }
        let mut ongoing: Vec<Ongoing> = response
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| Ongoing {
                    topic: t.name.0.to_string(),
                    partition: p.partition_index,
                    replicas: ids(&p.replicas),
                    adding: ids(&p.adding_replicas),
                    removing: ids(&p.removing_replicas),
                })
            })
            .collect();
        ongoing.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(ongoing)
    }

    /// Sets (`Some(rate)`, bytes per second) or deletes (`None`) the throttle configs on every
    /// broker of `brokers`, each through a request to that broker, as Kafka's admin client
    /// sends broker resources. Every broker is tried; the error names each that failed.
    pub fn set_replication_throttle(
        &self,
        brokers: &[BrokerInfo],
        rate: Option<u64>,
    ) -> Result<()> {
        let configs: Vec<AlterableConfig> = THROTTLE_CONFIGS
            .iter()
            .map(|name| {
                AlterableConfig::default()
                    .with_name(StrBytes::from_static_str(name))
                    .with_config_operation(if rate.is_some() { OP_SET } else { OP_DELETE })
                    .with_value(rate.map(|r| StrBytes::from_string(r.to_string())))
            })
            .collect();
        let mut failures = Vec::new();
        for broker in brokers {
            let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
                AlterConfigsResource::default()
                    .with_resource_type(BROKER_RESOURCE)
                    .with_resource_name(StrBytes::from_string(broker.id.to_string()))
                    .with_configs(configs.clone()),
            ]);
            let response = match self.open(broker) {
                Ok(mut conn) => conn.call(&request, 0..=1).map_err(AdminError::from),
                Err(e) => Err(e),
            };
            match response {
                Ok(response) => {
                    for r in response.responses.iter().filter(|r| r.error_code != 0) {
                        failures.push(format!(
                            "broker {}: {}",
                            broker.id,
                            error_text(r.error_code, r.error_message.as_ref())
                        ));
                    }
                }
                Err(e) => failures.push(format!("broker {}: {e}", broker.id)),
            }
        }
        if failures.is_empty() {
            return Ok(());
        }
        Err(AdminError::Refused {
            operation: match rate {
                Some(_) => "setting the replication throttle".into(),
                None => "clearing the replication throttle".into(),
            },
            detail: failures.join("; "),
        })
    }

    /// Forgets broker `id` (it must be fenced and hold no replica; voters never can be).
    pub fn unregister_broker(&mut self, id: i32) -> Result<()> {
        let request = UnregisterBrokerRequest::default().with_broker_id(BrokerId(id));
        let response = self.call_controller(&request, 0..=0, |r| r.error_code)?;
        if response.error_code != 0 {
            return Err(AdminError::refused(
                format!("unregistering broker {id}"),
                response.error_code,
                response.error_message.as_ref(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::alter_partition_reassignments_response::{
        ReassignablePartitionResponse, ReassignableTopicResponse,
    };

    use super::*;

    fn moves() -> Vec<Reassignment> {
        let r = |topic: &str, partition, replicas: Option<Vec<i32>>| Reassignment {
            topic: topic.into(),
            partition,
            replicas,
        };
        vec![
            r("b", 1, Some(vec![3, 1])),
            r("a", 0, Some(vec![2])),
            r("b", 0, None),
        ]
    }

    #[test]
    fn the_request_groups_partitions_by_topic_and_a_cancel_sends_null_replicas() {
        let r = alter_request(&moves(), 500);
        assert_eq!(r.timeout_ms, 500);
        let names: Vec<&str> = r.topics.iter().map(|t| t.name.0.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            r.topics[1].partitions[0].replicas,
            Some(vec![BrokerId(3), BrokerId(1)])
        );
        assert_eq!(r.topics[1].partitions[1].replicas, None);
    }

    #[test]
    fn answers_are_keyed_by_topic_and_partition() {
        let response = AlterPartitionReassignmentsResponse::default().with_responses(vec![
            ReassignableTopicResponse::default()
                .with_name(topic_name("b"))
                .with_partitions(vec![
                    ReassignablePartitionResponse::default().with_partition_index(1),
                    ReassignablePartitionResponse::default()
                        .with_partition_index(0)
                        .with_error_code(39)
                        .with_error_message(Some(StrBytes::from_static_str("bad"))),
                ]),
        ]);
        let got = answers(&response);
        assert_eq!(got[&("b".to_string(), 1)], (0, None));
        assert_eq!(got[&("b".to_string(), 0)], (39, Some("bad".to_string())));
        assert_eq!(got.len(), 2);
    }
}
