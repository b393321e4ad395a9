//! A request frame (without its length prefix) as the broker reads it: the fixed header, then
//! for every API key and version kafka-protocol knows, and the older ones krait-protocol's
//! `legacy` module decodes, the full request header and the body, with krait-protocol's
//! decoders, within the memory budget the frame's size sets. Any input must give a value or an
//! error, never a panic.
#![no_main]

use bytes::Bytes;
use kafka_protocol::messages::{self, ApiKey};
use krait_protocol::frame::{FixedHeader, decode_body, decode_header};
use libfuzzer_sys::fuzz_target;

// The broker's allocator (see krait_fuzz).
use krait_fuzz as _;

/// Decodes the body of `api` with `decode_body`, as the broker does: within the memory budget
/// the frame's size sets (krait_protocol::budget).
macro_rules! body_decoders {
    ($($key:ident => $ty:ident,)*) => {
        fn decode_any_body(api: ApiKey, frame: &mut Bytes, version: i16) {
            match api {
                $(ApiKey::$key => {
                    let _ = decode_body::<messages::$ty>(frame, api, version);
                })*
            }
        }
    };
}

body_decoders! {
            Produce => ProduceRequest,
            Fetch => FetchRequest,
            ListOffsets => ListOffsetsRequest,
            Metadata => MetadataRequest,
            OffsetCommit => OffsetCommitRequest,
            OffsetFetch => OffsetFetchRequest,
            FindCoordinator => FindCoordinatorRequest,
            JoinGroup => JoinGroupRequest,
            Heartbeat => HeartbeatRequest,
            LeaveGroup => LeaveGroupRequest,
            SyncGroup => SyncGroupRequest,
            DescribeGroups => DescribeGroupsRequest,
            ListGroups => ListGroupsRequest,
            SaslHandshake => SaslHandshakeRequest,
            ApiVersions => ApiVersionsRequest,
            CreateTopics => CreateTopicsRequest,
            DeleteTopics => DeleteTopicsRequest,
            DeleteRecords => DeleteRecordsRequest,
            InitProducerId => InitProducerIdRequest,
            OffsetForLeaderEpoch => OffsetForLeaderEpochRequest,
            AddPartitionsToTxn => AddPartitionsToTxnRequest,
            AddOffsetsToTxn => AddOffsetsToTxnRequest,
            EndTxn => EndTxnRequest,
            WriteTxnMarkers => WriteTxnMarkersRequest,
            TxnOffsetCommit => TxnOffsetCommitRequest,
            DescribeAcls => DescribeAclsRequest,
            CreateAcls => CreateAclsRequest,
            DeleteAcls => DeleteAclsRequest,
            DescribeConfigs => DescribeConfigsRequest,
            AlterConfigs => AlterConfigsRequest,
            AlterReplicaLogDirs => AlterReplicaLogDirsRequest,
            DescribeLogDirs => DescribeLogDirsRequest,
            SaslAuthenticate => SaslAuthenticateRequest,
            CreatePartitions => CreatePartitionsRequest,
            CreateDelegationToken => CreateDelegationTokenRequest,
            RenewDelegationToken => RenewDelegationTokenRequest,
            ExpireDelegationToken => ExpireDelegationTokenRequest,
            DescribeDelegationToken => DescribeDelegationTokenRequest,
            DeleteGroups => DeleteGroupsRequest,
            ElectLeaders => ElectLeadersRequest,
            IncrementalAlterConfigs => IncrementalAlterConfigsRequest,
            AlterPartitionReassignments => AlterPartitionReassignmentsRequest,
            ListPartitionReassignments => ListPartitionReassignmentsRequest,
            OffsetDelete => OffsetDeleteRequest,
            DescribeClientQuotas => DescribeClientQuotasRequest,
            AlterClientQuotas => AlterClientQuotasRequest,
            DescribeUserScramCredentials => DescribeUserScramCredentialsRequest,
            AlterUserScramCredentials => AlterUserScramCredentialsRequest,
            Vote => VoteRequest,
            BeginQuorumEpoch => BeginQuorumEpochRequest,
            EndQuorumEpoch => EndQuorumEpochRequest,
            DescribeQuorum => DescribeQuorumRequest,
            AlterPartition => AlterPartitionRequest,
            UpdateFeatures => UpdateFeaturesRequest,
            Envelope => EnvelopeRequest,
            FetchSnapshot => FetchSnapshotRequest,
            DescribeCluster => DescribeClusterRequest,
            DescribeProducers => DescribeProducersRequest,
            BrokerRegistration => BrokerRegistrationRequest,
            BrokerHeartbeat => BrokerHeartbeatRequest,
            UnregisterBroker => UnregisterBrokerRequest,
            DescribeTransactions => DescribeTransactionsRequest,
            ListTransactions => ListTransactionsRequest,
            AllocateProducerIds => AllocateProducerIdsRequest,
            ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest,
            ConsumerGroupDescribe => ConsumerGroupDescribeRequest,
            ControllerRegistration => ControllerRegistrationRequest,
            GetTelemetrySubscriptions => GetTelemetrySubscriptionsRequest,
            PushTelemetry => PushTelemetryRequest,
            AssignReplicasToDirs => AssignReplicasToDirsRequest,
            ListConfigResources => ListConfigResourcesRequest,
            DescribeTopicPartitions => DescribeTopicPartitionsRequest,
            ShareGroupHeartbeat => ShareGroupHeartbeatRequest,
            ShareGroupDescribe => ShareGroupDescribeRequest,
            ShareFetch => ShareFetchRequest,
            ShareAcknowledge => ShareAcknowledgeRequest,
            AddRaftVoter => AddRaftVoterRequest,
            RemoveRaftVoter => RemoveRaftVoterRequest,
            UpdateRaftVoter => UpdateRaftVoterRequest,
            InitializeShareGroupState => InitializeShareGroupStateRequest,
            ReadShareGroupState => ReadShareGroupStateRequest,
            WriteShareGroupState => WriteShareGroupStateRequest,
            DeleteShareGroupState => DeleteShareGroupStateRequest,
            ReadShareGroupStateSummary => ReadShareGroupStateSummaryRequest,
            DescribeShareGroupOffsets => DescribeShareGroupOffsetsRequest,
            AlterShareGroupOffsets => AlterShareGroupOffsetsRequest,
            DeleteShareGroupOffsets => DeleteShareGroupOffsetsRequest,
}

fuzz_target!(|data: &[u8]| {
    let Ok(fixed) = FixedHeader::peek(data) else {
        return;
    };
    let Ok(api) = ApiKey::try_from(fixed.api_key) else {
        return;
    };
    // Every version with a codec, the legacy ones (krait_protocol::legacy) included.
    let versions = krait_protocol::legacy::valid_versions(api);
    if fixed.api_version < versions.min || fixed.api_version > versions.max {
        return;
    }
    let mut frame = Bytes::copy_from_slice(data);
    if decode_header(&mut frame, api, fixed.api_version).is_ok() {
        decode_any_body(api, &mut frame, fixed.api_version);
    }
});
