//! krait-operator: reconciles `KafkaCluster` resources into StatefulSets, Services, ConfigMaps,
//! PodDisruptionBudgets and ServiceAccounts, `KafkaTopic` resources into Kafka topics, and
//! `KafkaUser` resources into SCRAM credentials and ACLs.
//! Stateless and level-triggered: every reconcile reads the world and converges it.

pub mod access;
pub mod cluster;
pub mod cluster_admin;
pub mod cluster_ref;
pub mod conditions;
pub mod context;
pub mod events;
pub mod finalized;
pub mod http;
pub mod kafka;
pub mod leader;
pub mod metrics;
pub mod names;
pub mod rack;
pub mod render;
pub mod run;
pub mod status;
pub mod topic;
pub mod user;
pub mod user_admin;
