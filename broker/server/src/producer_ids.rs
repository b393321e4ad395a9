//! Producer ids for idempotent producers, unique across the cluster: the broker takes blocks of
//! ids from the cluster's producer-id counter (an `AllocateProducerIds` record of the metadata
//! log, through the controller, like Kafka's AllocateProducerIds) and hands them out one by one.
//!
//! Two producers with one id on one partition would share its sequence numbers, and a retry of
//! one could be acknowledged as a duplicate of the other's batch without being written; so ids
//! come from the same counter as the transactional ones, and a block is never handed out twice.
//! A block is not kept across a restart: the broker fetches a new one, and the rest of the old
//! one is never used. This module must not decide whether a block is free (the image's `apply`
//! does, refusing one that starts below the counter).

use krait_image::{ApplyError, MetadataRecord};
use krait_protocol::kafka_protocol::error::ResponseError;

use crate::cluster::Cluster;

/// Ids per block, as Kafka's `ProducerIdManager` takes them.
pub const BLOCK_SIZE: i64 = 1000;
/// Proposals per refill: another broker may take the block this one proposed meanwhile.
const ATTEMPTS: usize = 5;

/// The ids `next..end` this broker may still hand out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    pub next: i64,
    pub end: i64,
}

impl Block {
    pub fn new(first: i64, count: i64) -> Self {
        Self {
            next: first,
            end: first.saturating_add(count),
        }
    }

    /// The next id of the block, or `None` when it is used up.
    pub fn take(&mut self) -> Option<i64> {
        (self.next < self.end).then(|| {
            self.next += 1;
            self.next - 1
        })
    }
}

/// What to propose after the cluster refused a block: the counter's value it named.
pub fn retry_from(error: &ApplyError) -> Option<i64> {
    match error {
        ApplyError::ProducerIdTaken { next, .. } => Some(*next),
        _ => None,
    }
}

/// This broker's current block; refilled under its lock, so one refill runs at a time.
#[derive(Debug, Default)]
pub struct ProducerIds {
    block: tokio::sync::Mutex<Option<Block>>,
}

impl ProducerIds {
    /// A producer id no producer in the cluster has had. COORDINATOR_LOAD_IN_PROGRESS (which
    /// clients retry) when no block can be had now, as Kafka answers.
    pub async fn next(&self, cluster: &Cluster) -> Result<i64, ResponseError> {
        let mut block = self.block.lock().await;
        if let Some(id) = block.as_mut().and_then(Block::take) {
            return Ok(id);
        }
        let mut fresh = fetch_block(cluster).await?;
        let id = fresh
            .take()
            .ok_or(ResponseError::CoordinatorLoadInProgress)?;
        *block = Some(fresh);
        Ok(id)
    }
}

/// Proposes a block starting at the counter as this broker sees it; when another broker took
/// it first, proposes again from the counter the refusal names.
async fn fetch_block(cluster: &Cluster) -> Result<Block, ResponseError> {
    let mut first = cluster
        .quorum
        .image()
        .borrow()
        .next_transactional_producer_id
        .max(krait_image::image::FIRST_TRANSACTIONAL_PRODUCER_ID);
    for _ in 0..ATTEMPTS {
        let record = MetadataRecord::AllocateProducerIds {
            broker: cluster.node_id(),
            first,
            count: BLOCK_SIZE,
        };
        let outcome = match cluster.propose(vec![record]).await {
            Ok(mut results) => results.pop(),
            Err(e) => {
                tracing::warn!(error = %e, "no producer id block: the proposal failed");
                return Err(ResponseError::CoordinatorLoadInProgress);
            }
        };
        match outcome {
            Some(Ok(())) => {
                tracing::info!(first, count = BLOCK_SIZE, "producer id block allocated");
                return Ok(Block::new(first, BLOCK_SIZE));
            }
            Some(Err(e)) => match retry_from(&e) {
                Some(next) => first = next,
                None => {
                    tracing::warn!(error = %e, "producer id block refused");
                    return Err(ResponseError::CoordinatorLoadInProgress);
                }
            },
            None => return Err(ResponseError::CoordinatorLoadInProgress),
        }
    }
    Err(ResponseError::CoordinatorLoadInProgress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_hands_out_each_of_its_ids_once_then_runs_out() {
        let mut block = Block::new(10, 3);
        assert_eq!(block.take(), Some(10));
        assert_eq!(block.take(), Some(11));
        assert_eq!(block.take(), Some(12));
        assert_eq!(block.take(), None);
        assert_eq!(block.take(), None);
    }

    #[test]
    fn a_refused_block_is_retried_from_the_counter_it_names() {
        let taken = ApplyError::ProducerIdTaken {
            first: 5,
            next: 1005,
        };
        assert_eq!(retry_from(&taken), Some(1005));
        assert_eq!(retry_from(&ApplyError::UnknownBroker(1)), None);
    }
}
