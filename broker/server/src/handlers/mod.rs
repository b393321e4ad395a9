//! One module per Kafka API. Each takes the broker, the request version and the decoded
//! request, and returns the response body; errors travel as Kafka error codes inside it.

pub mod alter_configs;
pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod reassignments;
pub mod sync_group;
pub mod unregister_broker;

#[cfg(test)]
mod tests;

use krait_protocol::kafka_protocol::error::ResponseError;

/// Kafka's error code for an error, 0 for none.
pub fn code(error: Option<ResponseError>) -> i16 {
    error.map_or(0, |e| e.code())
}
