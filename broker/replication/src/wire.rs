//! What a follower asks its leader for and what it gets back, one partition at a time. The
//! transport (gRPC between brokers, or in-process in tests) carries these unchanged.

use bytes::Bytes;
use krait_image::BrokerId;

/// One partition of a follower's fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPartition {
    pub topic: String,
    pub partition: i32,
    /// The follower's log end offset: it has every record before it.
    pub fetch_offset: i64,
    /// The leader epoch of the follower's last batch (-1 for an empty log), so the leader can
    /// tell whether the follower's log diverged from its own.
    pub last_fetched_epoch: i32,
    /// The leader epoch the follower believes current; a mismatch is fenced.
    pub current_leader_epoch: i32,
    pub replica_id: BrokerId,
}

/// Where a follower's log diverged from the leader's: the largest epoch they share and the
/// offset where it ends in the leader's log. The follower truncates there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Diverging {
    pub epoch: i32,
    pub end_offset: i64,
}

/// Why a leader did not serve a follower's fetch; each maps to Kafka's code of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplicaFetchError {
    #[error("this broker does not lead the partition")]
    NotLeaderOrFollower,
    #[error("the follower's leader epoch is older than the leader's")]
    FencedLeaderEpoch,
    #[error("the follower's leader epoch is newer than the leader's")]
    UnknownLeaderEpoch,
    #[error("the fetch offset is outside the leader's log")]
    OffsetOutOfRange,
    #[error("the broker is not a replica of the partition")]
    NotAReplica,
    #[error("the leader's storage failed")]
    Storage,
}

/// The leader's answer for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedPartition {
    pub topic: String,
    pub partition: i32,
    pub error: Option<ReplicaFetchError>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    /// Whole batches from the fetch offset, exactly as the leader stored them.
    pub records: Bytes,
    pub diverging: Option<Diverging>,
}

impl FetchedPartition {
    pub(crate) fn error(request: &FetchPartition, error: ReplicaFetchError) -> Self {
        Self {
            topic: request.topic.clone(),
            partition: request.partition,
            error: Some(error),
            high_watermark: -1,
            log_start_offset: -1,
            log_end_offset: -1,
            records: Bytes::new(),
            diverging: None,
        }
    }
}
