//! What every reconcile gets: the Kubernetes client, the metrics, and the way to reach Kafka.
//! Nothing here remembers anything about a cluster between reconciles.

use std::sync::Arc;

use kube::Client;

use crate::kafka::KafkaConnector;
use crate::metrics::Metrics;

/// Shared by the cluster and topic reconcilers.
pub struct Context {
    pub client: Client,
    pub metrics: Arc<Metrics>,
    pub kafka: Arc<dyn KafkaConnector>,
}
