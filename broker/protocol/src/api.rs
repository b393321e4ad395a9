//! The APIs and version ranges this broker implements, and the ApiVersions answer built from them.
//!
//! A client picks, for every API, the highest version both sides support, so this table is a
//! promise: an API appears here only when its handler exists, and only with versions whose
//! encoding the handler fills in completely.

use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};

/// One implemented API and the inclusive range of versions served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiSupport {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
}

const fn api(key: ApiKey, min: i16, max: i16) -> ApiSupport {
    ApiSupport { key, min, max }
}

/// Every API the broker answers. Versions stop where Kafka switched from topic names to topic
/// ids on the data path (Produce v13, Fetch v13): names are what every client in use still sends.
pub const SUPPORTED_APIS: &[ApiSupport] = &[
    api(ApiKey::Produce, 3, 12),
    api(ApiKey::Fetch, 4, 12),
    api(ApiKey::ListOffsets, 1, 6),
    api(ApiKey::OffsetForLeaderEpoch, 2, 4),
    api(ApiKey::Metadata, 0, 12),
    api(ApiKey::ApiVersions, 0, 3),
    api(ApiKey::CreateTopics, 2, 7),
    api(ApiKey::DeleteTopics, 1, 6),
    api(ApiKey::CreatePartitions, 0, 3),
    api(ApiKey::DescribeConfigs, 1, 4),
    api(ApiKey::DescribeCluster, 0, 2),
    api(ApiKey::DescribeLogDirs, 1, 4),
    api(ApiKey::InitProducerId, 0, 5),
    api(ApiKey::AlterConfigs, 0, 2),
    api(ApiKey::IncrementalAlterConfigs, 0, 1),
    api(ApiKey::FindCoordinator, 0, 4),
    api(ApiKey::JoinGroup, 0, 9),
    api(ApiKey::SyncGroup, 0, 5),
    api(ApiKey::Heartbeat, 0, 4),
    api(ApiKey::LeaveGroup, 0, 5),
    api(ApiKey::OffsetCommit, 2, 8),
    api(ApiKey::OffsetFetch, 1, 8),
    api(ApiKey::ListGroups, 0, 5),
    api(ApiKey::DescribeGroups, 0, 5),
    api(ApiKey::DeleteGroups, 0, 2),
    api(ApiKey::AlterPartitionReassignments, 0, 1),
    api(ApiKey::ListPartitionReassignments, 0, 0),
    api(ApiKey::ElectLeaders, 0, 2),
    api(ApiKey::UnregisterBroker, 0, 0),
];

/// The served range for a raw API key, if the broker implements that API at all.
pub fn supported(api_key: i16) -> Option<ApiSupport> {
    SUPPORTED_APIS
        .iter()
        .copied()
        .find(|a| a.key as i16 == api_key)
}

/// Whether `version` of `api_key` is served.
pub fn is_supported(api_key: i16, version: i16) -> bool {
    supported(api_key).is_some_and(|a| (a.min..=a.max).contains(&version))
}

/// The ApiVersions response body listing every served API, with `error_code` set.
pub fn api_versions_response(error_code: i16) -> ApiVersionsResponse {
    let mut response = ApiVersionsResponse::default();
    response.error_code = error_code;
    response.api_keys = SUPPORTED_APIS
        .iter()
        .map(|a| {
            let mut v = ApiVersion::default();
            v.api_key = a.key as i16;
            v.min_version = a.min;
            v.max_version = a.max;
            v
        })
        .collect();
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::Message;

    fn library_range(key: ApiKey) -> (i16, i16) {
        let r = match key {
            ApiKey::Produce => ProduceRequest::VERSIONS,
            ApiKey::Fetch => FetchRequest::VERSIONS,
            ApiKey::ListOffsets => ListOffsetsRequest::VERSIONS,
            ApiKey::Metadata => MetadataRequest::VERSIONS,
            ApiKey::ApiVersions => ApiVersionsRequest::VERSIONS,
            ApiKey::CreateTopics => CreateTopicsRequest::VERSIONS,
            ApiKey::DeleteTopics => DeleteTopicsRequest::VERSIONS,
            ApiKey::CreatePartitions => CreatePartitionsRequest::VERSIONS,
            ApiKey::DescribeConfigs => DescribeConfigsRequest::VERSIONS,
            ApiKey::DescribeCluster => DescribeClusterRequest::VERSIONS,
            ApiKey::DescribeLogDirs => DescribeLogDirsRequest::VERSIONS,
            ApiKey::InitProducerId => InitProducerIdRequest::VERSIONS,
            ApiKey::AlterConfigs => AlterConfigsRequest::VERSIONS,
            ApiKey::IncrementalAlterConfigs => IncrementalAlterConfigsRequest::VERSIONS,
            ApiKey::FindCoordinator => FindCoordinatorRequest::VERSIONS,
            ApiKey::JoinGroup => JoinGroupRequest::VERSIONS,
            ApiKey::SyncGroup => SyncGroupRequest::VERSIONS,
            ApiKey::Heartbeat => HeartbeatRequest::VERSIONS,
            ApiKey::LeaveGroup => LeaveGroupRequest::VERSIONS,
            ApiKey::OffsetCommit => OffsetCommitRequest::VERSIONS,
            ApiKey::OffsetFetch => OffsetFetchRequest::VERSIONS,
            ApiKey::ListGroups => ListGroupsRequest::VERSIONS,
            ApiKey::DescribeGroups => DescribeGroupsRequest::VERSIONS,
            ApiKey::DeleteGroups => DeleteGroupsRequest::VERSIONS,
            ApiKey::OffsetForLeaderEpoch => OffsetForLeaderEpochRequest::VERSIONS,
            ApiKey::AlterPartitionReassignments => AlterPartitionReassignmentsRequest::VERSIONS,
            ApiKey::ListPartitionReassignments => ListPartitionReassignmentsRequest::VERSIONS,
            ApiKey::ElectLeaders => ElectLeadersRequest::VERSIONS,
            ApiKey::UnregisterBroker => UnregisterBrokerRequest::VERSIONS,
            other => panic!("no range for {other:?}"),
        };
        (r.min, r.max)
    }

    #[test]
    fn every_advertised_version_is_encodable_by_the_codec_library() {
        for a in SUPPORTED_APIS {
            let (min, max) = library_range(a.key);
            assert!(
                a.min >= min && a.max <= max,
                "{:?} {}..{} outside {min}..{max}",
                a.key,
                a.min,
                a.max
            );
            assert!(a.min <= a.max);
        }
    }

    #[test]
    fn unknown_and_out_of_range_versions_are_not_supported() {
        assert!(is_supported(ApiKey::Produce as i16, 9));
        assert!(!is_supported(ApiKey::Produce as i16, 2));
        assert!(!is_supported(ApiKey::Produce as i16, 13));
        assert!(!is_supported(ApiKey::EndTxn as i16, 0));
        assert!(!is_supported(-1, 0));
        assert!(!is_supported(999, 0));
    }

    #[test]
    fn describe_log_dirs_v0_removed_in_kafka_4_is_not_served_and_describe_cluster_v2_is() {
        assert!(!is_supported(ApiKey::DescribeLogDirs as i16, 0));
        assert!((1..=4).all(|v| is_supported(ApiKey::DescribeLogDirs as i16, v)));
        assert!(is_supported(ApiKey::DescribeCluster as i16, 2));
    }

    #[test]
    fn api_versions_response_lists_each_api_once() {
        let r = api_versions_response(0);
        assert_eq!(r.api_keys.len(), SUPPORTED_APIS.len());
        let mut keys: Vec<i16> = r.api_keys.iter().map(|k| k.api_key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), SUPPORTED_APIS.len());
    }
}
