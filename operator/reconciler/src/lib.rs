//! krait-operator: reconciles `KafkaCluster` resources into StatefulSets, Services, ConfigMaps,
//! PodDisruptionBudgets and ServiceAccounts, and `KafkaTopic` resources into Kafka topics.
//! Stateless and level-triggered: every reconcile reads the world and converges it.

pub mod access;
pub mod cluster;
pub mod cluster_admin;
pub mod conditions;
pub mod context;
pub mod events;
pub mod http;
pub mod kafka;
pub mod leader;
pub mod metrics;
pub mod names;
pub mod render;
pub mod run;
pub mod status;
pub mod topic;
