//! The metadata quorum through the Kafka admin API: DescribeQuorum (voters, observers, their
//! log end offsets and lag behind the leader) and KIP-853's AddRaftVoter and RemoveRaftVoter.

use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::describe_quorum_response::ReplicaState;
use kafka_protocol::messages::{
    AddRaftVoterRequest, DescribeQuorumRequest, RemoveRaftVoterRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use crate::cluster::{Admin, AdminError, Result};

/// The metadata log's name in KRaft.
pub const METADATA_TOPIC: &str = "__cluster_metadata";
/// Kafka's DUPLICATE_VOTER: the broker already votes.
pub const DUPLICATE_VOTER: i16 = 126;

/// One voter or observer as the leader sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuorumMember {
    pub id: i32,
    /// Its data directory id (nil when the membership records none).
    pub directory: String,
    /// -1 when the leader has not heard from it.
    pub log_end_offset: i64,
    /// Entries behind the leader's log end.
    pub lag: i64,
    /// Unix milliseconds; -1 when unknown.
    pub last_fetch_ms: i64,
    pub last_caught_up_ms: i64,
}

/// The metadata quorum as its leader describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quorum {
    pub leader: i32,
    pub epoch: i32,
    pub high_watermark: i64,
    pub voters: Vec<QuorumMember>,
    pub observers: Vec<QuorumMember>,
}

impl Admin {
    /// DescribeQuorum on `__cluster_metadata`-0.
    pub fn describe_quorum(&mut self) -> Result<Quorum> {
        let mut partition = PartitionData::default();
        partition.partition_index = 0;
        let mut topic = TopicData::default();
        topic.topic_name = TopicName(StrBytes::from_static_str(METADATA_TOPIC));
        topic.partitions = vec![partition];
        let request = DescribeQuorumRequest::default().with_topics(vec![topic]);
        let response = self.call_controller(&request, 0..=2, |r| r.error_code)?;
        if response.error_code != 0 {
            return Err(AdminError::refused(
                "describing the metadata quorum",
                response.error_code,
                response.error_message.as_ref(),
            ));
        }
        let p = response
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or_else(|| AdminError::Refused {
                operation: "describing the metadata quorum".into(),
                detail: "the answer names no partition".into(),
            })?;
        if p.error_code != 0 {
            return Err(AdminError::refused(
                "describing the metadata quorum",
                p.error_code,
                p.error_message.as_ref(),
            ));
        }
        let leader_end = p
            .current_voters
            .iter()
            .find(|v| v.replica_id.0 == p.leader_id.0)
            .map_or(p.high_watermark, |v| v.log_end_offset);
        let member = |r: &ReplicaState| QuorumMember {
            id: r.replica_id.0,
            directory: r.replica_directory_id.to_string(),
            log_end_offset: r.log_end_offset,
            lag: if r.log_end_offset < 0 {
                -1
            } else {
                (leader_end - r.log_end_offset).max(0)
            },
            last_fetch_ms: r.last_fetch_timestamp,
            last_caught_up_ms: r.last_caught_up_timestamp,
        };
        Ok(Quorum {
            leader: p.leader_id.0,
            epoch: p.leader_epoch,
            high_watermark: p.high_watermark,
            voters: p.current_voters.iter().map(member).collect(),
            observers: p.observers.iter().map(member).collect(),
        })
    }

    /// Makes broker `id` (running, following the log as an observer) a voter. `Ok(false)`: it
    /// already was one.
    pub fn add_raft_voter(&mut self, id: i32) -> Result<bool> {
        let request = AddRaftVoterRequest::default()
            .with_voter_id(id)
            .with_timeout_ms(60_000);
        let response = self.call_controller(&request, 0..=0, |r| r.error_code)?;
        match response.error_code {
            0 => Ok(true),
            DUPLICATE_VOTER => Ok(false),
            code => Err(AdminError::refused(
                format!("adding broker {id} to the voters"),
                code,
                response.error_message.as_ref(),
            )),
        }
    }

    /// Takes broker `id` out of the voters; it stays an observer.
    pub fn remove_raft_voter(&mut self, id: i32) -> Result<()> {
        let request = RemoveRaftVoterRequest::default().with_voter_id(id);
        let response = self.call_controller(&request, 0..=0, |r| r.error_code)?;
        if response.error_code != 0 {
            return Err(AdminError::refused(
                format!("removing broker {id} from the voters"),
                response.error_code,
                response.error_message.as_ref(),
            ));
        }
        Ok(())
    }
}
