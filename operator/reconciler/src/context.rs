//! What every reconcile gets: the Kubernetes client, the metrics, the way to reach Kafka and
//! the event recorder. Nothing here remembers anything about a cluster between reconciles but
//! the recorder's recent events, which only make a repeat a count instead of a new event.

use std::sync::Arc;

use kube::Client;

use crate::cluster::build::RackInit;
use crate::events::Recorder;
use crate::kafka::KafkaConnector;
use crate::metrics::Metrics;

/// Shared by the cluster and topic reconcilers.
pub struct Context {
    pub client: Client,
    pub metrics: Arc<Metrics>,
    pub kafka: Arc<dyn KafkaConnector>,
    /// Publishes the Kubernetes Events `kubectl describe` shows.
    pub recorder: Recorder,
    /// The image and ClusterRole of rack-aware brokers' init container (the operator's flags).
    pub rack: RackInit,
}
