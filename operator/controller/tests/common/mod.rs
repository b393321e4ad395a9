//! Shared by the reconciler tests: the fake API server, a fake Kafka, and the context.

#![allow(dead_code)]

pub mod broker;
pub mod fake_api;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use krait_operator::context::Context;
use krait_operator::kafka::{AdminError, KafkaConnector, ObservedTopic, TopicAdmin};
use krait_operator::metrics::Metrics;

pub use fake_api::FakeApi;

/// A Kafka cluster in memory, shared by every admin client the connector hands out.
#[derive(Clone, Default)]
pub struct FakeKafka {
    pub topics: Arc<Mutex<BTreeMap<String, ObservedTopic>>>,
    pub cluster_id: Option<String>,
    /// While set, every admin call fails as if the brokers were unreachable.
    pub unreachable: Arc<AtomicBool>,
}

impl KafkaConnector for FakeKafka {
    fn cluster_id(&self, _bootstrap: &str) -> BoxFuture<'static, Option<String>> {
        let id = self.cluster_id.clone();
        Box::pin(async move { id })
    }

    fn topic_admin(&self, _bootstrap: &str) -> Result<Box<dyn TopicAdmin>, AdminError> {
        Ok(Box::new(self.clone()))
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

/// A reconcile context on the fake API server and a fake Kafka.
pub fn context(api: &FakeApi, kafka: &FakeKafka) -> Arc<Context> {
    context_with(api, Arc::new(kafka.clone()))
}

/// A reconcile context on the fake API server and any Kafka connector.
pub fn context_with(api: &FakeApi, kafka: Arc<dyn KafkaConnector>) -> Arc<Context> {
    Arc::new(Context {
        client: api.client(),
        metrics: Arc::new(Metrics::default()),
        kafka,
    })
}
