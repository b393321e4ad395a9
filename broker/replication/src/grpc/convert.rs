//! Between a replica fetch (`crate::FetchRequest`, `crate::wire`) and its protobuf form. Pure,
//! and lossless both ways; the one thing refused is an error code this build does not know,
//! which a follower must not mistake for success.

use crate::grpc::proto;
use crate::manager::FetchRequest;
use crate::wire::{Diverging, FetchPartition, FetchedPartition, ReplicaFetchError};

/// A leader's answer this broker cannot read (its fetch then fails as a `TransportError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown fetch error code {code} for {topic}-{partition}")]
    UnknownErrorCode {
        topic: String,
        partition: i32,
        code: i32,
    },
}

impl From<FetchRequest> for proto::FetchRequest {
    fn from(request: FetchRequest) -> Self {
        Self {
            replica_id: request.replica_id,
            max_wait_ms: request.max_wait_ms,
            max_bytes: u64::try_from(request.max_bytes).unwrap_or(u64::MAX),
            partitions: request.partitions.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<proto::FetchRequest> for FetchRequest {
    fn from(request: proto::FetchRequest) -> Self {
        Self {
            replica_id: request.replica_id,
            max_wait_ms: request.max_wait_ms,
            max_bytes: usize::try_from(request.max_bytes).unwrap_or(usize::MAX),
            partitions: request.partitions.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<FetchPartition> for proto::FetchPartition {
    fn from(p: FetchPartition) -> Self {
        Self {
            topic: p.topic,
            partition: p.partition,
            fetch_offset: p.fetch_offset,
            last_fetched_epoch: p.last_fetched_epoch,
            current_leader_epoch: p.current_leader_epoch,
            replica_id: p.replica_id,
        }
    }
}

impl From<proto::FetchPartition> for FetchPartition {
    fn from(p: proto::FetchPartition) -> Self {
        Self {
            topic: p.topic,
            partition: p.partition,
            fetch_offset: p.fetch_offset,
            last_fetched_epoch: p.last_fetched_epoch,
            current_leader_epoch: p.current_leader_epoch,
            replica_id: p.replica_id,
        }
    }
}

/// A leader's answers as the `Fetch` reply.
pub(crate) fn encode_answers(answers: Vec<FetchedPartition>) -> proto::FetchResponse {
    proto::FetchResponse {
        partitions: answers.into_iter().map(Into::into).collect(),
    }
}

/// The `Fetch` reply as the leader's answers.
pub(crate) fn decode_answers(
    response: proto::FetchResponse,
) -> Result<Vec<FetchedPartition>, DecodeError> {
    response
        .partitions
        .into_iter()
        .map(FetchedPartition::try_from)
        .collect()
}

impl From<FetchedPartition> for proto::FetchedPartition {
    fn from(p: FetchedPartition) -> Self {
        Self {
            topic: p.topic,
            partition: p.partition,
            error: error_code(p.error).into(),
            high_watermark: p.high_watermark,
            log_start_offset: p.log_start_offset,
            log_end_offset: p.log_end_offset,
            records: p.records,
            diverging: p.diverging.map(|d| proto::Diverging {
                epoch: d.epoch,
                end_offset: d.end_offset,
            }),
        }
    }
}

impl TryFrom<proto::FetchedPartition> for FetchedPartition {
    type Error = DecodeError;

    fn try_from(p: proto::FetchedPartition) -> Result<Self, DecodeError> {
        let Some(error) = fetch_error(p.error) else {
            return Err(DecodeError::UnknownErrorCode {
                topic: p.topic,
                partition: p.partition,
                code: p.error,
            });
        };
        Ok(Self {
            topic: p.topic,
            partition: p.partition,
            error,
            high_watermark: p.high_watermark,
            log_start_offset: p.log_start_offset,
            log_end_offset: p.log_end_offset,
            records: p.records,
            diverging: p.diverging.map(|d| Diverging {
                epoch: d.epoch,
                end_offset: d.end_offset,
            }),
        })
    }
}

fn error_code(error: Option<ReplicaFetchError>) -> proto::FetchError {
    use proto::FetchError as Code;
    match error {
        None => Code::None,
        Some(ReplicaFetchError::NotLeaderOrFollower) => Code::NotLeaderOrFollower,
        Some(ReplicaFetchError::FencedLeaderEpoch) => Code::FencedLeaderEpoch,
        Some(ReplicaFetchError::UnknownLeaderEpoch) => Code::UnknownLeaderEpoch,
        Some(ReplicaFetchError::OffsetOutOfRange) => Code::OffsetOutOfRange,
        Some(ReplicaFetchError::NotAReplica) => Code::NotAReplica,
        Some(ReplicaFetchError::Storage) => Code::Storage,
    }
}

/// The error a wire code stands for (`Some(None)` is success), `None` for an unknown code.
fn fetch_error(code: i32) -> Option<Option<ReplicaFetchError>> {
    use proto::FetchError as Code;
    Some(match Code::try_from(code).ok()? {
        Code::None => None,
        Code::NotLeaderOrFollower => Some(ReplicaFetchError::NotLeaderOrFollower),
        Code::FencedLeaderEpoch => Some(ReplicaFetchError::FencedLeaderEpoch),
        Code::UnknownLeaderEpoch => Some(ReplicaFetchError::UnknownLeaderEpoch),
        Code::OffsetOutOfRange => Some(ReplicaFetchError::OffsetOutOfRange),
        Code::NotAReplica => Some(ReplicaFetchError::NotAReplica),
        Code::Storage => Some(ReplicaFetchError::Storage),
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use prost::Message;

    use super::*;

    fn answer(error: Option<ReplicaFetchError>, diverging: Option<Diverging>) -> FetchedPartition {
        FetchedPartition {
            topic: "orders".into(),
            partition: 7,
            error,
            high_watermark: 40,
            log_start_offset: 3,
            log_end_offset: 42,
            records: Bytes::from_static(b"\x00\x01 batches verbatim \xff"),
            diverging,
        }
    }

    #[test]
    fn a_fetch_request_survives_the_protobuf_round_trip() {
        let request = FetchRequest {
            replica_id: 2,
            max_wait_ms: 500,
            max_bytes: 16 << 20,
            partitions: vec![
                FetchPartition {
                    topic: "orders".into(),
                    partition: 0,
                    fetch_offset: 0,
                    last_fetched_epoch: -1,
                    current_leader_epoch: 0,
                    replica_id: 2,
                },
                FetchPartition {
                    topic: "payments".into(),
                    partition: 11,
                    fetch_offset: 1_234_567_890_123,
                    last_fetched_epoch: 4,
                    current_leader_epoch: 5,
                    replica_id: 2,
                },
            ],
        };
        let bytes = proto::FetchRequest::from(request.clone()).encode_to_vec();
        let decoded = proto::FetchRequest::decode(bytes.as_slice()).unwrap();
        assert_eq!(FetchRequest::from(decoded), request);
    }

    #[test]
    fn every_answer_survives_the_protobuf_round_trip_records_unchanged() {
        let errors = [
            None,
            Some(ReplicaFetchError::NotLeaderOrFollower),
            Some(ReplicaFetchError::FencedLeaderEpoch),
            Some(ReplicaFetchError::UnknownLeaderEpoch),
            Some(ReplicaFetchError::OffsetOutOfRange),
            Some(ReplicaFetchError::NotAReplica),
            Some(ReplicaFetchError::Storage),
        ];
        let divergences = [
            None,
            Some(Diverging {
                epoch: 3,
                end_offset: 17,
            }),
            Some(Diverging {
                epoch: -1,
                end_offset: -1,
            }),
        ];
        let answers: Vec<FetchedPartition> = errors
            .iter()
            .flat_map(|e| divergences.iter().map(|d| answer(*e, *d)))
            .collect();
        let bytes = encode_answers(answers.clone()).encode_to_vec();
        let decoded = proto::FetchResponse::decode(Bytes::from(bytes)).unwrap();
        assert_eq!(decode_answers(decoded).unwrap(), answers);
    }

    #[test]
    fn an_unknown_error_code_is_refused_not_taken_for_success() {
        let mut wire = proto::FetchedPartition::from(answer(None, None));
        wire.error = 99;
        let refused = decode_answers(proto::FetchResponse {
            partitions: vec![wire],
        });
        assert_eq!(
            refused,
            Err(DecodeError::UnknownErrorCode {
                topic: "orders".into(),
                partition: 7,
                code: 99
            })
        );
    }
}
