//! One module per Kafka API, and the registry of them. Each module declares the versions it
//! serves (`VERSIONS`) next to its `handle(ctx, request)`, which returns the response body;
//! errors travel as Kafka error codes inside it. The `served_apis!` list below is the only
//! place an API is registered: it builds both the ApiVersions answer (`SERVED`) and the
//! dispatch (`route`), so the two cannot disagree.

pub mod acls;
pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod add_raft_voter;
pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod changes;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_quorum;
pub mod describe_transactions;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod remove_raft_voter;
pub mod sasl_authenticate;
pub mod sasl_handshake;
pub mod sync_group;
pub mod txn_offset_commit;
pub mod unregister_broker;
pub mod write_txn_markers;

#[cfg(test)]
mod fetch_memory_tests;
#[cfg(test)]
mod security_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod transaction_tests;
#[cfg(test)]
mod txn_admin_tests;

use bytes::Bytes;
use krait_protocol::api::ApiSupport;
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::ApiKey;

use crate::context::RequestContext;
use crate::dispatch::{Outcome, serve};

/// Kafka's error code for an error, 0 for none.
pub fn code(error: Option<ResponseError>) -> i16 {
    error.map_or(0, |e| e.code())
}

macro_rules! served_apis {
    ($($key:ident => $module:ident,)*) => {
        /// Every API the broker answers, with the versions its handler declares.
        pub const SERVED: &[ApiSupport] = &[
            $(ApiSupport::new(ApiKey::$key, $module::VERSIONS),)*
        ];

        /// Decodes the body of a served request and runs its handler.
        pub(crate) async fn route(ctx: &RequestContext<'_>, api: ApiKey, body: Bytes) -> Outcome {
            match api {
                $(ApiKey::$key => serve(ctx, api, body, |ctx, request| $module::handle(ctx, request)).await,)*
                other => crate::dispatch::unrouted(ctx, other),
            }
        }
    };
}

// Versions stop where Kafka switched from topic names to topic ids on the data path (Produce
// v13, Fetch v13): names are what every client in use still sends.
served_apis! {
    Produce => produce,
    Fetch => fetch,
    ListOffsets => list_offsets,
    OffsetForLeaderEpoch => offset_for_leader_epoch,
    Metadata => metadata,
    ApiVersions => api_versions,
    CreateTopics => create_topics,
    DeleteTopics => delete_topics,
    CreatePartitions => create_partitions,
    DescribeConfigs => describe_configs,
    DescribeCluster => describe_cluster,
    DescribeLogDirs => describe_log_dirs,
    InitProducerId => init_producer_id,
    AddPartitionsToTxn => add_partitions_to_txn,
    AddOffsetsToTxn => add_offsets_to_txn,
    EndTxn => end_txn,
    TxnOffsetCommit => txn_offset_commit,
    DescribeTransactions => describe_transactions,
    ListTransactions => list_transactions,
    DescribeProducers => describe_producers,
    WriteTxnMarkers => write_txn_markers,
    AlterConfigs => alter_configs,
    IncrementalAlterConfigs => incremental_alter_configs,
    FindCoordinator => find_coordinator,
    JoinGroup => join_group,
    SyncGroup => sync_group,
    Heartbeat => heartbeat,
    LeaveGroup => leave_group,
    OffsetCommit => offset_commit,
    OffsetFetch => offset_fetch,
    ListGroups => list_groups,
    DescribeGroups => describe_groups,
    DeleteGroups => delete_groups,
    DeleteRecords => delete_records,
    OffsetDelete => offset_delete,
    AlterPartitionReassignments => alter_partition_reassignments,
    ListPartitionReassignments => list_partition_reassignments,
    ElectLeaders => elect_leaders,
    UnregisterBroker => unregister_broker,
    DescribeQuorum => describe_quorum,
    AddRaftVoter => add_raft_voter,
    RemoveRaftVoter => remove_raft_voter,
    SaslHandshake => sasl_handshake,
    SaslAuthenticate => sasl_authenticate,
    CreateAcls => create_acls,
    DescribeAcls => describe_acls,
    DeleteAcls => delete_acls,
    DescribeUserScramCredentials => describe_user_scram_credentials,
    AlterUserScramCredentials => alter_user_scram_credentials,
}
