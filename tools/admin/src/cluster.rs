//! The cluster as an admin session sees it: brokers, the controller and partition states read
//! with Metadata and DescribeCluster, connections to a chosen broker, and calls that must reach
//! the controller (retried once on NOT_CONTROLLER after the controller is looked up again).
//!
//! The types here are plain data, so the pure parts of callers (summaries, plan checks,
//! operator decisions) take them without knowing the codec.

use std::ops::RangeInclusive;
use std::time::Duration;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    DescribeClusterRequest, DescribeClusterResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::{Request, StrBytes};
use serde::Serialize;

use crate::security::Security;
use crate::wire::{Connection, WireError, error_text};

/// Metadata v4 added `allow_auto_topic_creation`: describing a topic must never create it.
/// v5 added offline replicas, v7 leader epochs.
const METADATA_VERSIONS: RangeInclusive<i16> = 4..=12;
const NOT_CONTROLLER: i16 = 41;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

/// Why an admin call failed, naming the step.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("no bootstrap server given")]
    NoBootstrap,
    #[error("topic {0} does not exist")]
    UnknownTopic(String),
    #[error("cannot read metadata of topic {topic}: {detail}")]
    TopicMetadata { topic: String, detail: String },
    #[error("the cluster reports no reachable controller (controller id {0})")]
    NoController(i32),
    #[error("cannot reach broker {id}: {source}")]
    Broker { id: i32, source: WireError },
    /// The cluster answered with an error code: `operation` failed, `detail` is Kafka's error
    /// name, code and message.
    #[error("{operation} failed: {detail}")]
    Refused { operation: String, detail: String },
}

impl AdminError {
    /// An error answer to `operation`.
    pub fn refused(operation: impl Into<String>, code: i16, message: Option<&StrBytes>) -> Self {
        Self::Refused {
            operation: operation.into(),
            detail: error_text(code, message),
        }
    }
}

pub type Result<T, E = AdminError> = std::result::Result<T, E>;

/// One broker of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokerInfo {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
    /// Only DescribeCluster v2 reports fencing; false otherwise.
    pub fenced: bool,
}

impl BrokerInfo {
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A partition as Metadata reports it. Leader -1 means no leader; leader epoch -1 means the
/// broker's Metadata version has none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionState {
    pub topic: String,
    pub partition: i32,
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub offline_replicas: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicState {
    pub name: String,
    pub partitions: Vec<PartitionState>,
}

/// Brokers, controller and topics from one Metadata answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterMetadata {
    pub cluster_id: Option<String>,
    pub controller_id: i32,
    pub brokers: Vec<BrokerInfo>,
    pub topics: Vec<TopicState>,
}

impl ClusterMetadata {
    pub fn topic(&self, name: &str) -> Option<&TopicState> {
        self.topics.iter().find(|t| t.name == name)
    }
}

/// What DescribeCluster says (or Metadata, from brokers that predate DescribeCluster).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    pub cluster_id: Option<String>,
    pub controller_id: i32,
    pub brokers: Vec<BrokerInfo>,
}

pub(crate) fn text(s: &StrBytes) -> String {
    s.as_str().to_string()
}

pub(crate) fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

pub(crate) fn ids(v: &[kafka_protocol::messages::BrokerId]) -> Vec<i32> {
    v.iter().map(|b| b.0).collect()
}

/// Plain data from a Metadata answer; topics the broker reports with an error are left out
/// (`topic_errors` says which), partitions are sorted by index.
fn from_metadata(r: MetadataResponse) -> (ClusterMetadata, Vec<(String, i16)>) {
    let mut errors = Vec::new();
    let mut topics = Vec::new();
    for t in r.topics {
        let name = t.name.as_ref().map(|n| text(&n.0)).unwrap_or_default();
        if t.error_code != 0 {
            errors.push((name, t.error_code));
            continue;
        }
        let mut partitions: Vec<PartitionState> = t
            .partitions
            .iter()
            .map(|p| PartitionState {
                topic: name.clone(),
                partition: p.partition_index,
                leader: p.leader_id.0,
                leader_epoch: p.leader_epoch,
                replicas: ids(&p.replica_nodes),
                isr: ids(&p.isr_nodes),
                offline_replicas: ids(&p.offline_replicas),
            })
            .collect();
        partitions.sort_by_key(|p| p.partition);
        topics.push(TopicState { name, partitions });
    }
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    let mut brokers: Vec<BrokerInfo> = r
        .brokers
        .iter()
        .map(|b| BrokerInfo {
            id: b.node_id.0,
            host: text(&b.host),
            port: b.port,
            rack: b.rack.as_ref().map(text),
            fenced: false,
        })
        .collect();
    brokers.sort_by_key(|b| b.id);
    let metadata = ClusterMetadata {
        cluster_id: r.cluster_id.as_ref().map(text),
        controller_id: r.controller_id.0,
        brokers,
        topics,
    };
    (metadata, errors)
}

fn from_describe_cluster(r: DescribeClusterResponse) -> ClusterDescription {
    let mut brokers: Vec<BrokerInfo> = r
        .brokers
        .iter()
        .map(|b| BrokerInfo {
            id: b.broker_id.0,
            host: text(&b.host),
            port: b.port,
            rack: b.rack.as_ref().map(text),
            fenced: b.is_fenced,
        })
        .collect();
    brokers.sort_by_key(|b| b.id);
    ClusterDescription {
        cluster_id: Some(text(&r.cluster_id)),
        controller_id: r.controller_id.0,
        brokers,
    }
}

/// An admin session: a connection to a bootstrap broker, and whatever others a command needs.
#[derive(Debug)]
pub struct Admin {
    timeout: Duration,
    security: Security,
    bootstrap: Connection,
}

impl Admin {
    /// Connects to the first of the comma-separated `bootstrap` addresses that answers; every
    /// request and connection is bounded by `timeout`.
    pub fn connect(bootstrap: &str, timeout: Duration) -> Result<Self> {
        Self::connect_with(bootstrap, timeout, Security::default())
    }

    /// As [`Admin::connect`], with TLS and/or SASL on every connection of the session (the
    /// bootstrap one and those to the brokers it names).
    pub fn connect_with(bootstrap: &str, timeout: Duration, security: Security) -> Result<Self> {
        let mut last = None;
        for address in bootstrap.split(',').map(str::trim) {
            if address.is_empty() {
                continue;
            }
            match Connection::open_with(address, timeout, &security) {
                Ok(bootstrap) => {
                    return Ok(Self {
                        timeout,
                        security,
                        bootstrap,
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.map_or(AdminError::NoBootstrap, AdminError::Wire))
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The connection to the bootstrap broker, for requests any broker answers.
    pub fn bootstrap_connection(&mut self) -> &mut Connection {
        &mut self.bootstrap
    }

    pub fn timeout_ms(&self) -> i32 {
        i32::try_from(self.timeout.as_millis()).unwrap_or(i32::MAX)
    }

    /// Metadata for `topics` (every topic when `None`). A named topic the broker does not
    /// know is an error.
    pub fn metadata(&mut self, topics: Option<&[String]>) -> Result<ClusterMetadata> {
        let request = MetadataRequest::default()
            .with_topics(topics.map(|names| {
                names
                    .iter()
                    .map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(n))))
                    .collect()
            }))
            .with_allow_auto_topic_creation(false);
        let response = self.bootstrap.call(&request, METADATA_VERSIONS)?;
        let (metadata, errors) = from_metadata(response);
        if let Some((name, code)) = errors.into_iter().next() {
            if code == UNKNOWN_TOPIC_OR_PARTITION {
                return Err(AdminError::UnknownTopic(name));
            }
            return Err(AdminError::TopicMetadata {
                topic: name,
                detail: error_text(code, None),
            });
        }
        Ok(metadata)
    }

    /// Cluster id, controller and brokers from DescribeCluster; from Metadata when the broker
    /// predates DescribeCluster (Kafka before 2.8).
    pub fn describe_cluster(&mut self) -> Result<ClusterDescription> {
        // Only v2 can ask for fenced brokers; the codec refuses the field below it.
        let fenced = matches!(
            self.bootstrap.version::<DescribeClusterRequest>(2..=2),
            Ok(2)
        );
        let request = DescribeClusterRequest::default().with_include_fenced_brokers(fenced);
        match self.bootstrap.call(&request, 0..=2) {
            Ok(r) if r.error_code != 0 => Err(AdminError::refused(
                "DescribeCluster",
                r.error_code,
                r.error_message.as_ref(),
            )),
            Ok(r) => Ok(from_describe_cluster(r)),
            Err(WireError::Unsupported { .. }) => {
                let md = self.metadata(Some(&[]))?;
                Ok(ClusterDescription {
                    cluster_id: md.cluster_id,
                    controller_id: md.controller_id,
                    brokers: md.brokers,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    pub fn open(&self, broker: &BrokerInfo) -> Result<Connection> {
        Connection::open_with(&broker.address(), self.timeout, &self.security).map_err(|source| {
            AdminError::Broker {
                id: broker.id,
                source,
            }
        })
    }

    /// A connection to the controller as the cluster names it. KRaft clusters name a broker,
    /// which forwards controller requests.
    pub fn controller(&mut self) -> Result<Connection> {
        let cluster = self.describe_cluster()?;
        let id = cluster.controller_id;
        let Some(controller) = cluster.brokers.iter().find(|b| b.id == id) else {
            return Err(AdminError::NoController(id));
        };
        self.open(controller)
    }

    /// Sends `request` to the controller; when the answer says NOT_CONTROLLER, looks the
    /// controller up again and retries once. `top_error` reads the answer's top-level code.
    pub fn call_controller<R: Request>(
        &mut self,
        request: &R,
        wanted: RangeInclusive<i16>,
        top_error: impl Fn(&R::Response) -> i16,
    ) -> Result<R::Response> {
        let mut controller = self.controller()?;
        let response = controller.call(request, wanted.clone())?;
        if top_error(&response) != NOT_CONTROLLER {
            return Ok(response);
        }
        let mut controller = self.controller()?;
        Ok(controller.call(request, wanted)?)
    }

    /// Fails early, naming the API, when the controller does not serve `R` within `wanted`.
    pub fn require_on_controller<R: Request>(&mut self, wanted: RangeInclusive<i16>) -> Result<()> {
        self.controller()?.version::<R>(wanted)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, OnceLock};

    use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::{
        ApiVersionsRequest, BrokerId, ElectLeadersRequest, ElectLeadersResponse,
    };

    use super::*;
    use crate::fake_broker::{FakeBroker, answer, api_versions};

    /// A one-broker cluster (id 1, its own controller) whose first `refusals` ElectLeaders
    /// requests are answered NOT_CONTROLLER, as while the controller moves.
    fn moving_controller(refusals: usize) -> FakeBroker {
        let own: Arc<OnceLock<(String, i32)>> = Arc::new(OnceLock::new());
        let elections = AtomicUsize::new(0);
        let me = Arc::clone(&own);
        let fake = FakeBroker::start(move |h, _| {
            let v = h.request_api_version;
            match h.request_api_key {
                ApiVersionsRequest::KEY => answer(
                    h,
                    &api_versions(&[
                        (DescribeClusterRequest::KEY, 0, 1),
                        (ElectLeadersRequest::KEY, 0, 2),
                    ]),
                    v,
                ),
                DescribeClusterRequest::KEY => {
                    let (host, port) = me.get().unwrap().clone();
                    let broker = DescribeClusterBroker::default()
                        .with_broker_id(BrokerId(1))
                        .with_host(StrBytes::from_string(host))
                        .with_port(port);
                    let r = DescribeClusterResponse::default()
                        .with_controller_id(BrokerId(1))
                        .with_brokers(vec![broker]);
                    answer(h, &r, v)
                }
                ElectLeadersRequest::KEY => {
                    let n = elections.fetch_add(1, Ordering::SeqCst);
                    let code = if n < refusals { NOT_CONTROLLER } else { 0 };
                    answer(h, &ElectLeadersResponse::default().with_error_code(code), v)
                }
                other => panic!("unexpected API {other}"),
            }
        });
        let (host, port) = fake.address.rsplit_once(':').unwrap();
        own.set((host.to_string(), port.parse().unwrap())).unwrap();
        fake
    }

    fn admin(fake: &FakeBroker) -> Admin {
        Admin::connect(&fake.address, Duration::from_secs(5)).unwrap()
    }

    fn count(fake: &FakeBroker, key: i16) -> usize {
        fake.requests().iter().filter(|(k, _)| *k == key).count()
    }

    #[test]
    fn not_controller_looks_the_controller_up_again_and_retries_once() {
        let fake = moving_controller(1);
        let response = admin(&fake)
            .call_controller(&ElectLeadersRequest::default(), 0..=2, |r| r.error_code)
            .unwrap();
        assert_eq!(response.error_code, 0);
        assert_eq!(count(&fake, ElectLeadersRequest::KEY), 2);
        assert_eq!(
            count(&fake, DescribeClusterRequest::KEY),
            2,
            "looked up again"
        );
    }

    #[test]
    fn a_second_not_controller_is_returned_not_retried_again() {
        let fake = moving_controller(usize::MAX);
        let response = admin(&fake)
            .call_controller(&ElectLeadersRequest::default(), 0..=2, |r| r.error_code)
            .unwrap();
        assert_eq!(response.error_code, NOT_CONTROLLER);
        assert_eq!(count(&fake, ElectLeadersRequest::KEY), 2);
    }

    #[test]
    fn metadata_becomes_sorted_plain_data_and_topic_errors_are_set_apart() {
        let partition = |index: i32, leader: i32| {
            MetadataResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(BrokerId(leader))
                .with_leader_epoch(4)
                .with_replica_nodes(vec![BrokerId(1), BrokerId(2)])
                .with_isr_nodes(vec![BrokerId(1)])
                .with_offline_replicas(vec![BrokerId(2)])
        };
        let response = MetadataResponse::default()
            .with_controller_id(BrokerId(2))
            .with_brokers(vec![
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(2))
                    .with_host(StrBytes::from_static_str("b"))
                    .with_port(9093),
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(1))
                    .with_host(StrBytes::from_static_str("a"))
                    .with_port(9092)
                    .with_rack(Some(StrBytes::from_static_str("r1"))),
            ])
            .with_topics(vec![
                MetadataResponseTopic::default()
                    .with_name(Some(topic_name("orders")))
                    .with_partitions(vec![partition(1, -1), partition(0, 1)]),
                MetadataResponseTopic::default()
                    .with_name(Some(topic_name("gone")))
                    .with_error_code(UNKNOWN_TOPIC_OR_PARTITION),
            ]);
        let (md, errors) = from_metadata(response);
        assert_eq!(
            errors,
            vec![("gone".to_string(), UNKNOWN_TOPIC_OR_PARTITION)]
        );
        assert_eq!(md.controller_id, 2);
        assert_eq!(
            md.brokers.iter().map(|b| b.address()).collect::<Vec<_>>(),
            ["a:9092", "b:9093"]
        );
        assert_eq!(md.brokers[0].rack.as_deref(), Some("r1"));
        let orders = md.topic("orders").unwrap();
        assert_eq!(
            orders.partitions[0],
            PartitionState {
                topic: "orders".into(),
                partition: 0,
                leader: 1,
                leader_epoch: 4,
                replicas: vec![1, 2],
                isr: vec![1],
                offline_replicas: vec![2],
            }
        );
        assert_eq!(orders.partitions[1].leader, -1);
    }
}
