//! The operator's view of a Kafka cluster through the Kafka admin protocol: a small trait
//! (the seam tests replace) and its implementation on librdkafka's AdminClient.
//!
//! To ensure correctness, implementations must: report a topic as absent only when the
//! cluster's metadata lacks it (never on a connection error), never create a topic from a
//! read, and treat `alter_configs` as replacing all of the topic's overrides.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic,
    ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use krait_admin::Security;

use crate::cluster_admin::{ClusterAdmin, WireClusterAdmin};
use crate::user_admin::{UserAdmin, WireUserAdmin};

/// Where and how the operator's admin connection reaches a cluster: the bootstrap address of
/// the listener it uses, and the TLS trust and SASL credentials that listener asks for
/// (`access.rs` builds it from the cluster's Secrets).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminEndpoint {
    /// `HOST:PORT[,HOST:PORT...]`.
    pub bootstrap: String,
    pub security: Security,
}

impl AdminEndpoint {
    /// A PLAINTEXT listener at `bootstrap`.
    pub fn plaintext(bootstrap: &str) -> Self {
        Self {
            bootstrap: bootstrap.to_string(),
            security: Security::default(),
        }
    }

    /// The same listener at another address (tests reach brokers through loopback ports; the
    /// certificates then do not name the address, so the host name is not checked there).
    pub fn at(&self, bootstrap: &str) -> Self {
        let mut security = self.security.clone();
        if let Some(tls) = &mut security.tls {
            tls.verify_hostname = false;
        }
        Self {
            bootstrap: bootstrap.to_string(),
            security,
        }
    }

    /// Runs `work` on a fresh `krait-admin` session to this endpoint, on a blocking thread;
    /// `lost` is the error when that thread dies.
    pub fn session<T, E>(
        self: &Arc<Self>,
        timeout: Duration,
        lost: E,
        work: impl FnOnce(krait_admin::Admin) -> Result<T, E> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, E>>
    where
        T: Send + 'static,
        E: From<krait_admin::AdminError> + Send + 'static,
    {
        let endpoint = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                work(krait_admin::Admin::connect_with(
                    &endpoint.bootstrap,
                    timeout,
                    endpoint.security.clone(),
                )?)
            })
            .await
            .map_err(|_| lost)?
        })
    }

    /// librdkafka's settings for this endpoint.
    fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap)
            .set("log_level", "3")
            .set("security.protocol", self.security.protocol());
        if let Some(tls) = &self.security.tls {
            if let Some(pem) = &tls.truststore_pem {
                config.set("ssl.ca.pem", pem);
            }
            config.set(
                "ssl.endpoint.identification.algorithm",
                if tls.verify_hostname { "https" } else { "none" },
            );
        }
        if let Some(sasl) = &self.security.sasl {
            config
                .set("sasl.mechanisms", sasl.mechanism.name())
                .set("sasl.username", &sasl.username)
                .set("sasl.password", &sasl.password);
        }
        config
    }
}

/// A failed admin operation, naming the operation.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("connecting to {bootstrap}: {source}")]
    Connect {
        bootstrap: String,
        source: KafkaError,
    },
    #[error("{operation} {topic}: {message}")]
    Operation {
        operation: &'static str,
        topic: String,
        message: String,
    },
    #[error("{operation} {topic}: the admin task failed")]
    Task {
        operation: &'static str,
        topic: String,
    },
}

impl AdminError {
    fn op(operation: &'static str, topic: &str, message: impl ToString) -> Self {
        Self::Operation {
            operation,
            topic: topic.to_string(),
            message: message.to_string(),
        }
    }
}

/// A topic as the cluster reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedTopic {
    pub partitions: i32,
    /// Replicas per partition when every partition has the same count; 0 when they differ (a
    /// replication-factor change part-way, say), which no spec asks for.
    pub replication_factor: i32,
    /// The topic's config overrides (not defaults): what `alter_configs` replaces.
    pub overrides: BTreeMap<String, String>,
}

/// Admin operations on one cluster's topics.
pub trait TopicAdmin: Send + Sync {
    /// The topic, or `None` when the cluster does not have it.
    fn describe<'a>(
        &'a self,
        topic: &'a str,
    ) -> BoxFuture<'a, Result<Option<ObservedTopic>, AdminError>>;
    /// Creates a topic; `replication_factor` `None` takes the cluster's default.
    fn create<'a>(
        &'a self,
        topic: &'a str,
        partitions: i32,
        replication_factor: Option<i32>,
        config: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), AdminError>>;
    /// Grows a topic to `total` partitions.
    fn create_partitions<'a>(
        &'a self,
        topic: &'a str,
        total: i32,
    ) -> BoxFuture<'a, Result<(), AdminError>>;
    /// Replaces the topic's config overrides with `overrides`.
    fn alter_configs<'a>(
        &'a self,
        topic: &'a str,
        overrides: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), AdminError>>;
    /// Deletes a topic; an absent topic is success.
    fn delete<'a>(&'a self, topic: &'a str) -> BoxFuture<'a, Result<(), AdminError>>;
    /// The topic's id, when the cluster reports one; best effort.
    fn topic_id<'a>(&'a self, _topic: &'a str) -> BoxFuture<'a, Option<String>> {
        Box::pin(async { None })
    }
}

/// Opens admin connections to clusters by bootstrap address.
pub trait KafkaConnector: Send + Sync {
    /// The cluster id the brokers report, `None` when they cannot be reached.
    fn cluster_id(&self, endpoint: &AdminEndpoint) -> BoxFuture<'static, Option<String>>;
    /// An admin client for the cluster.
    fn topic_admin(&self, endpoint: &AdminEndpoint) -> Result<Box<dyn TopicAdmin>, AdminError>;
    /// The day-2 admin client for the cluster (brokers, partitions, reassignments).
    fn cluster_admin(&self, endpoint: &AdminEndpoint) -> Box<dyn ClusterAdmin>;
    /// The users-and-ACLs admin client for the cluster.
    fn user_admin(&self, endpoint: &AdminEndpoint) -> Box<dyn UserAdmin>;
}

/// The real connector, on librdkafka.
#[derive(Debug, Clone)]
pub struct RdKafkaConnector {
    /// Bound on every admin request, so a reconcile never hangs on an unreachable cluster.
    pub timeout: Duration,
}

impl Default for RdKafkaConnector {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
        }
    }
}

fn admin_client(endpoint: &AdminEndpoint) -> Result<AdminClient<DefaultClientContext>, AdminError> {
    endpoint
        .client_config()
        .create()
        .map_err(|source| AdminError::Connect {
            bootstrap: endpoint.bootstrap.clone(),
            source,
        })
}

impl KafkaConnector for RdKafkaConnector {
    fn cluster_id(&self, endpoint: &AdminEndpoint) -> BoxFuture<'static, Option<String>> {
        let admin = admin_client(endpoint);
        let timeout = self.timeout;
        Box::pin(async move {
            let admin = admin.ok()?;
            // librdkafka's call blocks the thread.
            tokio::task::spawn_blocking(move || admin.inner().fetch_cluster_id(timeout))
                .await
                .ok()
                .flatten()
        })
    }

    fn cluster_admin(&self, endpoint: &AdminEndpoint) -> Box<dyn ClusterAdmin> {
        Box::new(WireClusterAdmin::new(endpoint, self.timeout))
    }

    fn user_admin(&self, endpoint: &AdminEndpoint) -> Box<dyn UserAdmin> {
        Box::new(WireUserAdmin::new(endpoint, self.timeout))
    }

    fn topic_admin(&self, endpoint: &AdminEndpoint) -> Result<Box<dyn TopicAdmin>, AdminError> {
        Ok(Box::new(RdKafkaAdmin {
            admin: Arc::new(admin_client(endpoint)?),
            endpoint: endpoint.clone(),
            timeout: self.timeout,
        }))
    }
}

/// Topic admin over one librdkafka AdminClient.
pub struct RdKafkaAdmin {
    admin: Arc<AdminClient<DefaultClientContext>>,
    endpoint: AdminEndpoint,
    timeout: Duration,
}

impl RdKafkaAdmin {
    fn options(&self) -> AdminOptions {
        AdminOptions::new()
            .request_timeout(Some(self.timeout))
            .operation_timeout(Some(self.timeout))
    }

    /// Partitions and replication factor from the metadata of all topics: asking for one
    /// topic by name could auto-create it on brokers that allow that.
    async fn metadata(&self, topic: &str) -> Result<Option<(i32, i32)>, AdminError> {
        let admin = self.admin.clone();
        let timeout = self.timeout;
        let name = topic.to_string();
        let found = tokio::task::spawn_blocking(move || {
            let metadata = admin.inner().fetch_metadata(None, timeout)?;
            Ok::<_, KafkaError>(
                metadata
                    .topics()
                    .iter()
                    .find(|t| t.name() == name)
                    .map(|t| {
                        let counts = t.partitions().iter().map(|p| p.replicas().len());
                        (t.partitions().len() as i32, replication_factor(counts))
                    }),
            )
        })
        .await
        .map_err(|_| AdminError::Task {
            operation: "describe",
            topic: topic.to_string(),
        })?;
        found.map_err(|e| AdminError::op("describe", topic, e))
    }

    async fn overrides(&self, topic: &str) -> Result<BTreeMap<String, String>, AdminError> {
        let results = self
            .admin
            .describe_configs(&[ResourceSpecifier::Topic(topic)], &self.options())
            .await
            .map_err(|e| AdminError::op("describe configs of", topic, e))?;
        let mut overrides = BTreeMap::new();
        for result in results {
            let resource = result.map_err(|e| AdminError::op("describe configs of", topic, e))?;
            for entry in resource.entries {
                if entry.source == ConfigSource::DynamicTopic
                    && let Some(value) = entry.value
                {
                    overrides.insert(entry.name, value);
                }
            }
        }
        Ok(overrides)
    }
}

/// librdkafka's answer to a batch admin call: one result per topic.
type BatchResult<T> = Result<Vec<Result<T, (T, RDKafkaErrorCode)>>, KafkaError>;

/// Collapses librdkafka's per-topic results into one result.
fn topic_results<T>(
    operation: &'static str,
    topic: &str,
    results: BatchResult<T>,
    tolerated: RDKafkaErrorCode,
) -> Result<(), AdminError> {
    for result in results.map_err(|e| AdminError::op(operation, topic, e))? {
        match result {
            Ok(_) => {}
            Err((_, code)) if code == tolerated => {}
            Err((_, code)) => return Err(AdminError::op(operation, topic, code)),
        }
    }
    Ok(())
}

impl TopicAdmin for RdKafkaAdmin {
    fn describe<'a>(
        &'a self,
        topic: &'a str,
    ) -> BoxFuture<'a, Result<Option<ObservedTopic>, AdminError>> {
        Box::pin(async move {
            let Some((partitions, replication_factor)) = self.metadata(topic).await? else {
                return Ok(None);
            };
            Ok(Some(ObservedTopic {
                partitions,
                replication_factor,
                overrides: self.overrides(topic).await?,
            }))
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
            let mut new = NewTopic::new(
                topic,
                partitions,
                TopicReplication::Fixed(replication_factor.unwrap_or(-1)),
            );
            for (key, value) in config {
                new = new.set(key, value);
            }
            let results = self.admin.create_topics(&[new], &self.options()).await;
            // Created by a concurrent reconcile or by someone else: describe sorts it out.
            topic_results(
                "create",
                topic,
                results,
                RDKafkaErrorCode::TopicAlreadyExists,
            )
        })
    }

    fn create_partitions<'a>(
        &'a self,
        topic: &'a str,
        total: i32,
    ) -> BoxFuture<'a, Result<(), AdminError>> {
        Box::pin(async move {
            let new = NewPartitions::new(topic, total.max(0) as usize);
            let results = self.admin.create_partitions(&[new], &self.options()).await;
            topic_results(
                "grow partitions of",
                topic,
                results,
                RDKafkaErrorCode::NoError,
            )
        })
    }

    fn alter_configs<'a>(
        &'a self,
        topic: &'a str,
        overrides: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), AdminError>> {
        Box::pin(async move {
            let mut alter = AlterConfig::new(ResourceSpecifier::Topic(topic));
            for (key, value) in overrides {
                alter = alter.set(key, value);
            }
            let results = self
                .admin
                .alter_configs(&[alter], &self.options())
                .await
                .map_err(|e| AdminError::op("alter configs of", topic, e))?;
            for result in results {
                result.map_err(|(_, code)| AdminError::op("alter configs of", topic, code))?;
            }
            Ok(())
        })
    }

    fn delete<'a>(&'a self, topic: &'a str) -> BoxFuture<'a, Result<(), AdminError>> {
        Box::pin(async move {
            let results = self.admin.delete_topics(&[topic], &self.options()).await;
            topic_results(
                "delete",
                topic,
                results,
                RDKafkaErrorCode::UnknownTopicOrPartition,
            )
        })
    }

    fn topic_id<'a>(&'a self, topic: &'a str) -> BoxFuture<'a, Option<String>> {
        let (endpoint, timeout, name) = (self.endpoint.clone(), self.timeout, topic.to_string());
        Box::pin(async move {
            // krait-admin blocks; the whole read is bounded so a reconcile never waits longer.
            let read = tokio::task::spawn_blocking(move || {
                krait_admin::Admin::connect_with(&endpoint.bootstrap, timeout, endpoint.security)?
                    .topic_id(&name)
            });
            let error = match tokio::time::timeout(timeout, read).await {
                Ok(Ok(Ok(id))) => return id,
                Ok(Ok(Err(e))) => e.to_string(),
                Ok(Err(_)) => "the admin task failed".to_string(),
                Err(_) => format!("timed out after {timeout:?}"),
            };
            tracing::debug!(%error, topic, "topic id unavailable");
            None
        })
    }
}

/// A topic's replication factor from its partitions' replica counts: the count when all agree,
/// 0 when they differ (or the topic has no partition).
fn replication_factor(counts: impl Iterator<Item = usize>) -> i32 {
    let counts: BTreeSet<usize> = counts.collect();
    match (counts.len(), counts.first()) {
        (1, Some(&n)) => i32::try_from(n).unwrap_or(i32::MAX),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_replication_factor_is_reported_only_when_every_partition_agrees() {
        assert_eq!(super::replication_factor([3, 3, 3].into_iter()), 3);
        assert_eq!(super::replication_factor([3, 1, 3].into_iter()), 0);
        assert_eq!(super::replication_factor(std::iter::empty()), 0);
    }
}
