//! krait-admin: a blocking client for the Kafka admin protocol, spoken directly through the
//! `kafka-protocol` codec, for what librdkafka's admin API does not expose: DescribeCluster
//! (with fenced brokers), partition reassignments and their throttle, UnregisterBroker,
//! DescribeConfigs of brokers, DescribeLogDirs, topic ids, ACLs, SCRAM users and transactions;
//! over PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (`Security`). The `krait` CLI and the operator
//! share it: neither frames a Kafka request of its own.
//!
//! It works against Krait and against Kafka: every call negotiates its version from the
//! broker's ApiVersions answer. It holds connections, not decisions: what to move or when is
//! the caller's (the planner's, the operator's) business.

pub mod acls;
pub mod cluster;
pub mod configs;
#[cfg(any(test, feature = "test-support"))]
pub mod fake_broker;
pub mod log_dirs;
pub mod quorum;
pub mod reassign;
pub mod security;
pub mod topic_id;
pub mod transactions;
pub mod users;
pub mod wire;

pub use cluster::{
    Admin, AdminError, BrokerInfo, ClusterDescription, ClusterMetadata, PartitionState, TopicState,
};
pub use krait_auth::scram::ScramMechanism;
pub use quorum::{Quorum, QuorumMember};
pub use reassign::{Ongoing, Reassignment, THROTTLE_CONFIGS};
pub use security::{SaslCredentials, SaslMechanism, Security};
pub use transactions::{
    AbortSpec, PartitionProducers, ProducerInfo, TransactionDescription, TransactionListing,
};
pub use users::{DEFAULT_ITERATIONS, ScramCredentialInfo, ScramUser};
pub use wire::{Connection, WireError, error_text};
