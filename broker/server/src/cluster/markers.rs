//! Transaction markers on their way to the partitions: the coordinator groups a transaction's
//! partitions by leader, appends the markers it leads itself and asks every other leader over
//! the cluster gRPC (`Controller.WriteTxnMarkers`, Kafka's WriteTxnMarkers between brokers).
//! A marker is written like a produce with acks=all: appended by the leader, then waited for
//! until the high watermark passes it, so the followers have it too.
//!
//! This module carries markers; it must not decide when a transaction ends (the coordinator's
//! state machine, `krait_image::transaction`, does).

use std::collections::BTreeMap;
use std::time::Duration;

use krait_image::BrokerId;
use krait_protocol::batch::{Marker, MarkerKind, encode_marker, validate_batches};
use krait_replication::{ReplicaError, ReplicaManager};
use serde::{Deserialize, Serialize};

use super::Cluster;

/// How long one marker may wait to be replicated before the attempt counts as failed.
const MARKER_REPLICATION_TIMEOUT: Duration = Duration::from_secs(5);

/// The markers one leader is asked to append: one per partition, for one producer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WriteMarkers {
    /// The coordinator asking (the caller must be it).
    pub coordinator: BrokerId,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub coordinator_epoch: i32,
    pub partitions: Vec<(String, i32)>,
}

/// How one partition's marker went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MarkerOutcome {
    Written,
    /// The partition no longer exists here: the topic was deleted, nothing to end.
    UnknownPartition,
    NotLeader,
    /// The partition knows a newer epoch of the producer: the marker comes from a fenced view.
    StaleEpoch,
    Failed(String),
}

impl WriteMarkers {
    fn marker(&self, now_ms: i64) -> Marker {
        Marker {
            kind: if self.commit {
                MarkerKind::Commit
            } else {
                MarkerKind::Abort
            },
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            coordinator_epoch: self.coordinator_epoch,
            timestamp: now_ms,
        }
    }
}

/// Appends the markers of `request` to the partitions this broker leads, each waited for until
/// replicated. Runs on the partition leaders (the coordinator's own, or a gRPC call's).
pub async fn append_local(
    replicas: &ReplicaManager,
    request: &WriteMarkers,
) -> Vec<((String, i32), MarkerOutcome)> {
    let bytes = encode_marker(&request.marker(super::now_ms()));
    let mut outcomes = Vec::new();
    for (topic, partition) in &request.partitions {
        let outcome = append_one(replicas, topic, *partition, &bytes).await;
        tracing::debug!(
            topic,
            partition,
            producer_id = request.producer_id,
            commit = request.commit,
            ?outcome,
            "transaction marker"
        );
        outcomes.push(((topic.clone(), *partition), outcome));
    }
    outcomes
}

async fn append_one(
    replicas: &ReplicaManager,
    topic: &str,
    partition: i32,
    bytes: &bytes::Bytes,
) -> MarkerOutcome {
    let Some(replica) = replicas.get(topic, partition) else {
        return MarkerOutcome::UnknownPartition;
    };
    let batches = match validate_batches(bytes) {
        Ok(b) => b,
        Err(e) => return MarkerOutcome::Failed(e.to_string()),
    };
    let info = match krait_sync::blocking(|| replica.append_as_leader(&batches, None, None)) {
        Ok(info) => info,
        Err(ReplicaError::NotLeader | ReplicaError::StaleAnswer) => {
            return MarkerOutcome::NotLeader;
        }
        Err(ReplicaError::Storage(krait_storage::StorageError::InvalidProducerEpoch {
            ..
        })) => {
            return MarkerOutcome::StaleEpoch;
        }
        Err(e) => return MarkerOutcome::Failed(e.to_string()),
    };
    replicas.notify_appended();
    match replica
        .wait_acks_all(info.last_offset + 1, 1, MARKER_REPLICATION_TIMEOUT)
        .await
    {
        Ok(krait_image::isr::AcksAll::Complete) => MarkerOutcome::Written,
        Ok(other) => MarkerOutcome::Failed(format!("marker not replicated: {other:?}")),
        Err(_) => MarkerOutcome::NotLeader,
    }
}

/// Writes a transaction's markers to every partition in `partitions`, wherever its leader is.
/// `Ok` once every partition has its marker (or no longer exists); `Err` names one that has
/// not, and the caller tries again later (a marker written twice is harmless: the second finds
/// no open transaction).
pub async fn write_all(cluster: &Cluster, request: WriteMarkers) -> Result<(), String> {
    let image = cluster.image();
    let mut by_leader: BTreeMap<BrokerId, Vec<(String, i32)>> = BTreeMap::new();
    for (topic, partition) in &request.partitions {
        match image.partition(topic, *partition) {
            None => continue, // deleted with its topic
            Some(state) => match state.leader {
                Some(leader) => by_leader
                    .entry(leader)
                    .or_default()
                    .push((topic.clone(), *partition)),
                None => return Err(format!("{topic}-{partition} has no leader")),
            },
        }
    }
    for (leader, partitions) in by_leader {
        let part = WriteMarkers {
            partitions,
            ..request.clone()
        };
        let outcomes = if leader == cluster.node_id() {
            append_local(&cluster.replicas, &part).await
        } else {
            let address = cluster
                .cluster_address(leader)
                .ok_or_else(|| format!("no address for broker {leader}"))?;
            super::rpc::write_txn_markers(cluster.client(&address), &part)
                .await
                .map_err(|e| format!("broker {leader}: {e}"))?
        };
        if let Some(((topic, partition), outcome)) = outcomes
            .into_iter()
            .find(|(_, o)| !matches!(o, MarkerOutcome::Written | MarkerOutcome::UnknownPartition))
        {
            return Err(format!(
                "{topic}-{partition} on broker {leader}: {outcome:?}"
            ));
        }
    }
    Ok(())
}
