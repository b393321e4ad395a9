//! The transaction coordinator's runtime. The controller coordinates every transactional id
//! (FindCoordinator names it, as for groups); each id's state is a `PutTransaction` record of
//! the metadata log, so a new controller finds what the old one began and completes it.
//!
//! A request on one transactional id runs under that id's lock: read the state from the
//! quorum's image, decide with `krait_image::transaction` (pure), propose the new state, and for
//! EndTxn write the markers (`cluster::markers`) before proposing the completion. A ticker on the
//! controller completes Prepare* states it finds (after a coordinator change), aborts open
//! transactions past their timeout and forgets transactional ids idle past
//! `transactional.id.expiration.ms`. This module must not decide a transition itself.

use krait_sync::MutexExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use krait_image::transaction::{self, InitDecision, InitRequest, PendingOffsets, TxnError};
use krait_image::{MetadataRecord, OffsetCommit, TransactionMetadata, TxnState};
use krait_protocol::kafka_protocol::error::ResponseError;
use tokio::sync::OwnedMutexGuard;

use crate::broker::Broker;
use crate::cluster::markers::{self, WriteMarkers};

/// How often the controller looks for transactions to complete or time out.
const TICK: Duration = Duration::from_millis(200);

/// Per-transactional-id locks, and the lock producer-id allocation runs under.
#[derive(Debug, Default)]
pub struct TxnCoordinator {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    allocate: tokio::sync::Mutex<()>,
}

impl TxnCoordinator {
    fn slot(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock_unpoisoned()
            .entry(id.to_string())
            .or_default()
            .clone()
    }

    /// Waits for the lock of transactional id `id`.
    pub async fn lock(&self, id: &str) -> OwnedMutexGuard<()> {
        self.slot(id).lock_owned().await
    }

    fn try_lock(&self, id: &str) -> Option<OwnedMutexGuard<()>> {
        self.slot(id).try_lock_owned().ok()
    }
}

/// Kafka's error for a refused transition.
pub fn error_code(e: TxnError) -> ResponseError {
    match e {
        TxnError::InvalidProducerIdMapping => ResponseError::InvalidProducerIdMapping,
        TxnError::ProducerFenced => ResponseError::ProducerFenced,
        TxnError::ConcurrentTransactions => ResponseError::ConcurrentTransactions,
        TxnError::InvalidTxnState => ResponseError::InvalidTxnState,
        TxnError::InvalidTransactionTimeout => ResponseError::InvalidTransactionTimeout,
    }
}

/// PRODUCER_FENCED became an error of its own in Kafka 2.7 (KIP-588); older request versions
/// get INVALID_PRODUCER_EPOCH for it.
pub fn fenced_for_version(error: ResponseError, version: i16, first: i16) -> ResponseError {
    match error {
        ResponseError::ProducerFenced if version < first => ResponseError::InvalidProducerEpoch,
        other => other,
    }
}

/// The state of transactional id `id` as the quorum last applied it on this broker.
pub fn current(broker: &Broker, id: &str) -> Option<TransactionMetadata> {
    broker
        .cluster
        .quorum
        .image()
        .borrow()
        .transactions
        .get(id)
        .cloned()
}

/// Proposes `records`; a broker that lost the controller role answers NOT_COORDINATOR.
async fn propose(broker: &Broker, records: Vec<MetadataRecord>) -> Result<(), ResponseError> {
    if !broker.cluster.quorum.is_leader() {
        return Err(ResponseError::NotCoordinator);
    }
    match broker.cluster.quorum.propose(records).await {
        Ok(results) => match results.into_iter().find_map(Result::err) {
            None => Ok(()),
            Some(e) => {
                tracing::warn!(error = %e, "transaction record refused");
                Err(ResponseError::CoordinatorNotAvailable)
            }
        },
        Err(e) => {
            tracing::debug!(error = %e, "transaction record not committed");
            Err(ResponseError::NotCoordinator)
        }
    }
}

/// Writes the new state of transactional id `id`.
pub async fn put(
    broker: &Broker,
    id: &str,
    transaction: TransactionMetadata,
) -> Result<(), ResponseError> {
    propose(
        broker,
        vec![MetadataRecord::PutTransaction {
            transactional_id: id.to_string(),
            transaction,
        }],
    )
    .await
}

/// Carries out a Prepare* state: writes it, writes its markers, then writes its completion
/// together with the offsets a commit makes visible. When the markers cannot all be written
/// now, the state stays Prepare* (the ticker tries again) and the caller hears
/// CONCURRENT_TRANSACTIONS, which clients retry.
pub async fn finish(
    broker: &Broker,
    id: &str,
    prepared: TransactionMetadata,
) -> Result<TransactionMetadata, ResponseError> {
    if current(broker, id).as_ref() != Some(&prepared) {
        put(broker, id, prepared.clone()).await?;
    }
    let request = WriteMarkers {
        coordinator: broker.node_id(),
        producer_id: prepared.producer_id,
        producer_epoch: prepared.producer_epoch,
        commit: prepared.state == TxnState::PrepareCommit,
        coordinator_epoch: 0,
        partitions: prepared.partitions.iter().cloned().collect(),
    };
    if let Err(why) = markers::write_all(&broker.cluster, request).await {
        tracing::warn!(transactional_id = id, %why, "transaction markers not written yet; retrying later");
        return Err(ResponseError::ConcurrentTransactions);
    }
    let Some((done, offsets)) = transaction::complete(&prepared, crate::cluster::now_ms()) else {
        return Ok(prepared);
    };
    let mut records = vec![MetadataRecord::PutTransaction {
        transactional_id: id.to_string(),
        transaction: done.clone(),
    }];
    records.extend(offset_records(offsets));
    propose(broker, records).await?;
    tracing::debug!(
        transactional_id = id,
        state = done.state.name(),
        producer_id = done.producer_id,
        "transaction completed"
    );
    Ok(done)
}

fn offset_records(offsets: PendingOffsets) -> impl Iterator<Item = MetadataRecord> {
    let now = crate::cluster::now_ms();
    offsets.into_iter().map(move |(group, offsets)| {
        let offsets = offsets
            .into_iter()
            .map(|(t, p, c)| {
                (
                    t,
                    p,
                    OffsetCommit {
                        commit_timestamp: now,
                        ..c
                    },
                )
            })
            .collect();
        MetadataRecord::CommitOffsets { group, offsets }
    })
}

/// InitProducerId for transactional id `id`: aborts an open transaction first, then bumps the
/// epoch (or allocates the id). Returns the producer id and epoch to hand out.
pub async fn init(
    broker: &Broker,
    id: &str,
    timeout_ms: i32,
    expected: Option<(i64, i16)>,
) -> Result<TransactionMetadata, ResponseError> {
    let _guard = broker.transactions.lock(id).await;
    // Two rounds suffice: abort what is open, then initialise; a third means a race we lost.
    for _ in 0..3 {
        let allocating = broker.transactions.allocate.lock().await;
        let fresh = broker
            .cluster
            .quorum
            .image()
            .borrow()
            .next_transactional_producer_id;
        let request = InitRequest {
            timeout_ms,
            max_timeout_ms: broker.config.transaction_max_timeout_ms,
            expected,
            now_ms: crate::cluster::now_ms(),
        };
        let decision = transaction::init_producer(current(broker, id).as_ref(), request, fresh)
            .map_err(error_code)?;
        match decision {
            InitDecision::Ready(t) => {
                put(broker, id, t.clone()).await?;
                tracing::info!(
                    transactional_id = id,
                    producer_id = t.producer_id,
                    producer_epoch = t.producer_epoch,
                    "transactional producer initialised"
                );
                return Ok(t);
            }
            InitDecision::AbortFirst(abort) => {
                drop(allocating);
                tracing::info!(
                    transactional_id = id,
                    "aborting the open transaction of a re-initialised producer"
                );
                finish(broker, id, abort).await?;
            }
        }
    }
    Err(ResponseError::ConcurrentTransactions)
}

/// Forgets transactional id `id` (state `t`), idle past `transactional.id.expiration.ms`.
async fn remove_expired(broker: &Broker, id: &str, t: &TransactionMetadata) {
    let record = MetadataRecord::RemoveTransaction {
        transactional_id: id.to_string(),
        producer_id: t.producer_id,
        producer_epoch: t.producer_epoch,
    };
    match propose(broker, vec![record]).await {
        Ok(()) => tracing::info!(
            transactional_id = id,
            producer_id = t.producer_id,
            "transactional id expired"
        ),
        Err(e) => {
            tracing::debug!(transactional_id = id, error = ?e, "transactional id not expired yet")
        }
    }
}

/// The controller's ticker: completes Prepare* transactions (left by a previous coordinator),
/// aborts open ones past their timeout and forgets ids idle past their expiration. Ids busy
/// with a request are skipped this round.
pub async fn ticker(broker: Arc<Broker>) {
    let mut tick = tokio::time::interval(TICK);
    loop {
        tick.tick().await;
        if !broker.cluster.quorum.is_leader() {
            continue;
        }
        let transactions = broker.cluster.quorum.image().borrow().transactions.clone();
        let now = crate::cluster::now_ms();
        let expiration_ms = broker.config.transactional_id_expiration_ms;
        for (id, t) in transactions {
            let forget = transaction::id_expired(&t, now, expiration_ms);
            let due = matches!(t.state, TxnState::PrepareCommit | TxnState::PrepareAbort)
                || transaction::expire(&t, now).is_some();
            if !due && !forget {
                continue;
            }
            let Some(_guard) = broker.transactions.try_lock(&id) else {
                continue;
            };
            // Decided again under the lock: a request may have moved it meanwhile.
            let Some(t) = current(&broker, &id) else {
                continue;
            };
            if transaction::id_expired(&t, now, expiration_ms) {
                remove_expired(&broker, &id, &t).await;
                continue;
            }
            let prepared = match t.state {
                TxnState::PrepareCommit | TxnState::PrepareAbort => Some(t),
                _ => transaction::expire(&t, now),
            };
            if let Some(prepared) = prepared {
                tracing::info!(transactional_id = %id, state = prepared.state.name(), "completing transaction on the coordinator's ticker");
                if let Err(e) = finish(&broker, &id, prepared).await {
                    tracing::debug!(transactional_id = %id, error = ?e, "transaction not completed yet");
                }
            }
        }
    }
}
