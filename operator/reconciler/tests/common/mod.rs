//! Shared by the reconciler tests: the fake API server, a fake Kafka, the context, and for the
//! tests on real brokers a kubelet and a client workload.

#![allow(dead_code)]

pub mod access;
pub mod admission;
pub mod broker;
pub mod cert_manager;
pub mod disruption;
pub mod fake_api;
pub mod kubelet;
pub mod pod_security;
pub mod secured;
pub mod workload;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use krait_acl::AclBinding;
use krait_admin::Reassignment;
use krait_operator::cluster::build::RackInit;
use krait_operator::cluster_admin::{ClusterAdmin, ClusterAdminError, ClusterState};
use krait_operator::context::Context;
use krait_operator::events::Recorder;
use krait_operator::kafka::{AdminEndpoint, AdminError, KafkaConnector, ObservedTopic, TopicAdmin};
use krait_operator::metrics::Metrics;
use krait_operator::user_admin::{UserAdmin, UserAdminError};

pub use fake_api::FakeApi;

/// A Kafka cluster in memory, shared by every admin client the connector hands out.
#[derive(Clone, Default)]
pub struct FakeKafka {
    pub topics: Arc<Mutex<BTreeMap<String, ObservedTopic>>>,
    pub cluster_id: Option<String>,
    /// While set, every admin call fails as if the brokers were unreachable.
    pub unreachable: Arc<AtomicBool>,
    /// The running cluster day-2 operations see; unreachable when `None`.
    pub cluster: Option<FakeCluster>,
    /// SCRAM users and ACLs.
    pub users: FakeUsers,
}

impl KafkaConnector for FakeKafka {
    fn cluster_id(&self, _: &AdminEndpoint) -> BoxFuture<'static, Option<String>> {
        let id = self.cluster_id.clone();
        Box::pin(async move { id })
    }

    fn topic_admin(&self, _: &AdminEndpoint) -> Result<Box<dyn TopicAdmin>, AdminError> {
        Ok(Box::new(self.clone()))
    }

    fn cluster_admin(&self, _: &AdminEndpoint) -> Box<dyn ClusterAdmin> {
        match &self.cluster {
            Some(cluster) => Box::new(cluster.clone()),
            None => Box::new(Unreachable),
        }
    }

    fn user_admin(&self, _: &AdminEndpoint) -> Box<dyn UserAdmin> {
        Box::new(self.users.clone())
    }
}

/// SCRAM users (name -> password) and ACLs in memory; every call is counted by kind.
#[derive(Clone, Default)]
pub struct FakeUsers {
    pub passwords: Arc<Mutex<BTreeMap<String, String>>>,
    pub acls: Arc<Mutex<BTreeSet<AclBinding>>>,
    pub calls: Arc<Mutex<Vec<&'static str>>>,
}

impl FakeUsers {
    fn call(&self, kind: &'static str) {
        self.calls.lock().unwrap().push(kind);
    }

    pub fn count(&self, kind: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| **c == kind)
            .count()
    }
}

impl UserAdmin for FakeUsers {
    fn has_scram(&self, user: &str) -> BoxFuture<'static, Result<bool, UserAdminError>> {
        self.call("has_scram");
        let has = self.passwords.lock().unwrap().contains_key(user);
        Box::pin(async move { Ok(has) })
    }
    fn set_scram(
        &self,
        user: &str,
        password: &str,
    ) -> BoxFuture<'static, Result<(), UserAdminError>> {
        self.call("set_scram");
        self.passwords
            .lock()
            .unwrap()
            .insert(user.to_string(), password.to_string());
        Box::pin(async { Ok(()) })
    }
    fn delete_scram(&self, user: &str) -> BoxFuture<'static, Result<(), UserAdminError>> {
        self.call("delete_scram");
        self.passwords.lock().unwrap().remove(user);
        Box::pin(async { Ok(()) })
    }
    fn acls(&self, principal: &str) -> BoxFuture<'static, Result<Vec<AclBinding>, UserAdminError>> {
        self.call("acls");
        let found = self
            .acls
            .lock()
            .unwrap()
            .iter()
            .filter(|b| b.principal == principal)
            .cloned()
            .collect();
        Box::pin(async move { Ok(found) })
    }
    fn create_acls(
        &self,
        bindings: Vec<AclBinding>,
    ) -> BoxFuture<'static, Result<(), UserAdminError>> {
        self.call("create_acls");
        self.acls.lock().unwrap().extend(bindings);
        Box::pin(async { Ok(()) })
    }
    fn delete_acls(
        &self,
        bindings: Vec<AclBinding>,
    ) -> BoxFuture<'static, Result<(), UserAdminError>> {
        self.call("delete_acls");
        let mut acls = self.acls.lock().unwrap();
        for b in &bindings {
            acls.remove(b);
        }
        Box::pin(async { Ok(()) })
    }
}

/// A running cluster in memory for day-2 decisions: observe returns `state` as set by the
/// test; every action is recorded (and changes nothing: the test plays the cluster).
#[derive(Clone, Default)]
pub struct FakeCluster {
    pub state: Arc<Mutex<ClusterState>>,
    pub actions: Arc<Mutex<Vec<String>>>,
}

impl FakeCluster {
    pub fn take_actions(&self) -> Vec<String> {
        std::mem::take(&mut self.actions.lock().unwrap())
    }

    fn record(&self, action: String) -> BoxFuture<'_, Result<(), ClusterAdminError>> {
        self.actions.lock().unwrap().push(action);
        Box::pin(async { Ok(()) })
    }
}

impl ClusterAdmin for FakeCluster {
    fn observe(&self) -> BoxFuture<'_, Result<ClusterState, ClusterAdminError>> {
        let state = self.state.lock().unwrap().clone();
        Box::pin(async move { Ok(state) })
    }
    fn reassign(&self, moves: Vec<Reassignment>) -> BoxFuture<'_, Result<(), ClusterAdminError>> {
        let moves: Vec<String> = moves
            .iter()
            .map(|m| {
                format!(
                    "{}-{}:{:?}",
                    m.topic,
                    m.partition,
                    m.replicas.clone().unwrap_or_default()
                )
            })
            .collect();
        self.record(format!("reassign {}", moves.join(" ")))
    }
    fn set_throttle(&self, rate: Option<u64>) -> BoxFuture<'_, Result<(), ClusterAdminError>> {
        self.record(format!("throttle {rate:?}"))
    }
    fn unregister(&self, broker: i32) -> BoxFuture<'_, Result<(), ClusterAdminError>> {
        self.record(format!("unregister {broker}"))
    }
    fn add_voter(&self, broker: i32) -> BoxFuture<'_, Result<(), ClusterAdminError>> {
        self.record(format!("add-voter {broker}"))
    }
    fn remove_voter(&self, broker: i32) -> BoxFuture<'_, Result<(), ClusterAdminError>> {
        self.record(format!("remove-voter {broker}"))
    }
}

/// A cluster admin whose brokers never answer: day-2 operations must do nothing harmful.
pub struct Unreachable;

fn unreachable() -> ClusterAdminError {
    ClusterAdminError::Admin(krait_admin::AdminError::NoBootstrap)
}

impl ClusterAdmin for Unreachable {
    fn observe(&self) -> BoxFuture<'_, Result<ClusterState, ClusterAdminError>> {
        Box::pin(async { Err(unreachable()) })
    }
    fn reassign(&self, _: Vec<Reassignment>) -> BoxFuture<'_, Result<(), ClusterAdminError>> {
        Box::pin(async { Err(unreachable()) })
    }
    fn set_throttle(&self, _: Option<u64>) -> BoxFuture<'_, Result<(), ClusterAdminError>> {
        Box::pin(async { Err(unreachable()) })
    }
    fn unregister(&self, _: i32) -> BoxFuture<'_, Result<(), ClusterAdminError>> {
        Box::pin(async { Err(unreachable()) })
    }
    fn add_voter(&self, _: i32) -> BoxFuture<'_, Result<(), ClusterAdminError>> {
        Box::pin(async { Err(unreachable()) })
    }
    fn remove_voter(&self, _: i32) -> BoxFuture<'_, Result<(), ClusterAdminError>> {
        Box::pin(async { Err(unreachable()) })
    }
}

impl TopicAdmin for FakeKafka {
    fn describe<'a>(
        &'a self,
        topic: &'a str,
    ) -> BoxFuture<'a, Result<Option<ObservedTopic>, AdminError>> {
        Box::pin(async move {
            if self.unreachable.load(Ordering::Relaxed) {
                return Err(AdminError::Operation {
                    operation: "describe",
                    topic: topic.to_string(),
                    message: "Local: Broker transport failure".into(),
                });
            }
            Ok(self.topics.lock().unwrap().get(topic).cloned())
        })
    }

    fn create<'a>(
        &'a self,
        topic: &'a str,
        partitions: i32,
        replication_factor: Option<i32>,
        config: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), AdminError>> {
        Box::pin(async move {
            self.topics
                .lock()
                .unwrap()
                .entry(topic.to_string())
                .or_insert(ObservedTopic {
                    partitions,
                    replication_factor: replication_factor.unwrap_or(1),
                    overrides: config.clone(),
                });
            Ok(())
        })
    }

    fn create_partitions<'a>(
        &'a self,
        topic: &'a str,
        total: i32,
    ) -> BoxFuture<'a, Result<(), AdminError>> {
        Box::pin(async move {
            self.topics
                .lock()
                .unwrap()
                .get_mut(topic)
                .unwrap()
                .partitions = total;
            Ok(())
        })
    }

    fn alter_configs<'a>(
        &'a self,
        topic: &'a str,
        overrides: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), AdminError>> {
        Box::pin(async move {
            self.topics
                .lock()
                .unwrap()
                .get_mut(topic)
                .unwrap()
                .overrides = overrides.clone();
            Ok(())
        })
    }

    fn delete<'a>(&'a self, topic: &'a str) -> BoxFuture<'a, Result<(), AdminError>> {
        Box::pin(async move {
            self.topics.lock().unwrap().remove(topic);
            Ok(())
        })
    }

    fn topic_id<'a>(&'a self, topic: &'a str) -> BoxFuture<'a, Option<String>> {
        let known = self.topics.lock().unwrap().contains_key(topic);
        Box::pin(async move { known.then(|| format!("id-{topic}")) })
    }
}

/// A YAML fixture of `tests/fixtures` as JSON, as `kubectl apply` would send it.
pub fn fixture(name: &str) -> serde_json::Value {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A reconcile context on the fake API server and a fake Kafka.
pub fn context(api: &FakeApi, kafka: &FakeKafka) -> Arc<Context> {
    context_with(api, Arc::new(kafka.clone()))
}

/// A reconcile context on the fake API server and any Kafka connector.
pub fn context_with(api: &FakeApi, kafka: Arc<dyn KafkaConnector>) -> Arc<Context> {
    let client = api.client();
    Arc::new(Context {
        recorder: Recorder::new(client.clone(), "krait-operator", "krait-operator-test"),
        client,
        metrics: Arc::new(Metrics::default()),
        kafka,
        rack: RackInit::default(),
    })
}
