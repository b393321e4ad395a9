//! The transaction coordinator's rules: one transactional id's state (producer id and epoch,
//! Empty / Ongoing / PrepareCommit / PrepareAbort / CompleteCommit / CompleteAbort, its
//! partitions, its pending offset commits, its timeout) and every transition a request or the
//! clock makes, as Kafka's `TransactionCoordinator` and `TransactionMetadata` decide them.
//!
//! Pure: state and the time come in, a new state (to be written to the metadata log as a
//! `PutTransaction` record) or a Kafka error comes out. It must not do I/O or read a clock; the
//! coordinator runtime writes the markers and proposes the records.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::OffsetCommit;

/// Offsets a transaction commits, by group: `(topic, partition, commit)`.
pub type PendingOffsets = BTreeMap<String, Vec<(String, i32, OffsetCommit)>>;

/// Where a transaction stands (Kafka's `TransactionState`, without `Dead`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnState {
    /// No transaction open: the producer is initialised, or its last one completed long ago.
    Empty,
    Ongoing,
    /// Decided to commit: the markers are being written, and the transaction will commit.
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
}

impl TxnState {
    /// Kafka's name of the state (DescribeTransactions, ListTransactions).
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
        }
    }

    /// No transaction is open or being completed.
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        )
    }
}

/// A transactional id's state, held in the cluster image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionMetadata {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    /// The partitions the open transaction wrote to (AddPartitionsToTxn).
    pub partitions: BTreeSet<(String, i32)>,
    /// Groups whose offsets the transaction commits (AddOffsetsToTxn).
    pub groups: BTreeSet<String>,
    /// TxnOffsetCommit's offsets by group: visible to the group only once the transaction
    /// commits, dropped when it aborts.
    pub pending_offsets: PendingOffsets,
    /// When the open transaction began (its first AddPartitionsToTxn / AddOffsetsToTxn), -1 when
    /// none is open; the timeout counts from it.
    pub start_ms: i64,
    pub last_update_ms: i64,
}

/// Why a request is refused; each is Kafka's error of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    #[error("the producer id does not match the transactional id's")]
    InvalidProducerIdMapping,
    #[error("a newer producer with the same transactional id has fenced this one")]
    ProducerFenced,
    #[error("the transaction is being completed; retry")]
    ConcurrentTransactions,
    #[error("the request is not valid in the transaction's state")]
    InvalidTxnState,
    #[error("the transaction timeout is larger than transaction.max.timeout.ms or not positive")]
    InvalidTransactionTimeout,
}

/// InitProducerId with a transactional id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitRequest {
    pub timeout_ms: i32,
    /// The broker's `transaction.max.timeout.ms`.
    pub max_timeout_ms: i32,
    /// A producer that already has an id and epoch (KIP-360, InitProducerId v3+) names them;
    /// they must be the current ones (or the epoch just before a bump the coordinator made).
    pub expected: Option<(i64, i16)>,
    pub now_ms: i64,
}

/// What InitProducerId does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitDecision {
    /// Write this state; the producer gets its id and epoch.
    Ready(TransactionMetadata),
    /// A transaction is open: abort it first (write this PrepareAbort state, its markers and
    /// its completion), then decide again.
    AbortFirst(TransactionMetadata),
}

/// The epoch after `epoch`, or `None` when it is exhausted and a new producer id is needed.
fn bumped(epoch: i16) -> Option<i16> {
    (epoch < i16::MAX - 1).then_some(epoch + 1)
}

/// InitProducerId for a transactional id whose state is `current`; `fresh_producer_id` is the
/// id to use if a new one is needed (a new transactional id, or an exhausted epoch).
pub fn init_producer(
    current: Option<&TransactionMetadata>,
    request: InitRequest,
    fresh_producer_id: i64,
) -> Result<InitDecision, TxnError> {
    if request.timeout_ms <= 0 || request.timeout_ms > request.max_timeout_ms {
        return Err(TxnError::InvalidTransactionTimeout);
    }
    let Some(current) = current else {
        return Ok(InitDecision::Ready(fresh(fresh_producer_id, request)));
    };
    if let Some((id, epoch)) = request.expected
        && (id != current.producer_id || epoch != current.producer_epoch)
    {
        return Err(
            if id == current.producer_id && epoch < current.producer_epoch {
                TxnError::ProducerFenced
            } else {
                TxnError::InvalidProducerIdMapping
            },
        );
    }
    match current.state {
        TxnState::PrepareCommit | TxnState::PrepareAbort => Err(TxnError::ConcurrentTransactions),
        TxnState::Ongoing => Ok(InitDecision::AbortFirst(prepare_abort_fencing(
            current,
            request.now_ms,
        ))),
        TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
            Ok(InitDecision::Ready(match bumped(current.producer_epoch) {
                Some(epoch) => TransactionMetadata {
                    producer_epoch: epoch,
                    timeout_ms: request.timeout_ms,
                    last_update_ms: request.now_ms,
                    ..settle(current)
                },
                None => fresh(fresh_producer_id, request),
            }))
        }
    }
}

fn fresh(producer_id: i64, request: InitRequest) -> TransactionMetadata {
    TransactionMetadata {
        producer_id,
        producer_epoch: 0,
        timeout_ms: request.timeout_ms,
        state: TxnState::Empty,
        partitions: BTreeSet::new(),
        groups: BTreeSet::new(),
        pending_offsets: BTreeMap::new(),
        start_ms: -1,
        last_update_ms: request.now_ms,
    }
}

/// The state with no transaction open.
fn settle(current: &TransactionMetadata) -> TransactionMetadata {
    TransactionMetadata {
        state: TxnState::Empty,
        partitions: BTreeSet::new(),
        groups: BTreeSet::new(),
        pending_offsets: BTreeMap::new(),
        start_ms: -1,
        ..current.clone()
    }
}

/// PrepareAbort with a bumped epoch, so the old producer's requests are refused from the markers
/// on. The markers must carry the producer id the partitions know, so the id stays; the epoch
/// may reach `i16::MAX` here, and the next InitProducerId then moves to a fresh id (`bumped`
/// stops one short of it), as Kafka does.
fn prepare_abort_fencing(current: &TransactionMetadata, now_ms: i64) -> TransactionMetadata {
    TransactionMetadata {
        producer_epoch: current.producer_epoch.saturating_add(1),
        state: TxnState::PrepareAbort,
        last_update_ms: now_ms,
        ..current.clone()
    }
}

/// Checks a request's producer id and epoch against the state.
fn check_producer(
    current: &TransactionMetadata,
    producer_id: i64,
    epoch: i16,
) -> Result<(), TxnError> {
    if producer_id != current.producer_id {
        return Err(TxnError::InvalidProducerIdMapping);
    }
    if epoch != current.producer_epoch {
        return Err(TxnError::ProducerFenced);
    }
    Ok(())
}

/// The state an Add*ToTxn request starts from: an open transaction, or a new one.
fn open_transaction(
    current: Option<&TransactionMetadata>,
    producer_id: i64,
    epoch: i16,
    now_ms: i64,
) -> Result<TransactionMetadata, TxnError> {
    let current = current.ok_or(TxnError::InvalidProducerIdMapping)?;
    check_producer(current, producer_id, epoch)?;
    match current.state {
        TxnState::PrepareCommit | TxnState::PrepareAbort => Err(TxnError::ConcurrentTransactions),
        TxnState::Ongoing => Ok(TransactionMetadata {
            last_update_ms: now_ms,
            ..current.clone()
        }),
        TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
            Ok(TransactionMetadata {
                state: TxnState::Ongoing,
                start_ms: now_ms,
                last_update_ms: now_ms,
                ..settle(current)
            })
        }
    }
}

/// AddPartitionsToTxn: the transaction (opened if need be) includes `partitions`.
pub fn add_partitions(
    current: Option<&TransactionMetadata>,
    producer_id: i64,
    epoch: i16,
    partitions: &[(String, i32)],
    now_ms: i64,
) -> Result<TransactionMetadata, TxnError> {
    let mut next = open_transaction(current, producer_id, epoch, now_ms)?;
    next.partitions.extend(partitions.iter().cloned());
    Ok(next)
}

/// AddOffsetsToTxn: the transaction (opened if need be) will commit offsets of `group`.
pub fn add_offsets(
    current: Option<&TransactionMetadata>,
    producer_id: i64,
    epoch: i16,
    group: &str,
    now_ms: i64,
) -> Result<TransactionMetadata, TxnError> {
    let mut next = open_transaction(current, producer_id, epoch, now_ms)?;
    next.groups.insert(group.to_string());
    Ok(next)
}

/// TxnOffsetCommit: `offsets` of `group` wait in the open transaction until it ends.
pub fn commit_offsets(
    current: Option<&TransactionMetadata>,
    producer_id: i64,
    epoch: i16,
    group: &str,
    offsets: Vec<(String, i32, OffsetCommit)>,
    now_ms: i64,
) -> Result<TransactionMetadata, TxnError> {
    let current = current.ok_or(TxnError::InvalidProducerIdMapping)?;
    check_producer(current, producer_id, epoch)?;
    if current.state != TxnState::Ongoing || !current.groups.contains(group) {
        return Err(TxnError::InvalidTxnState);
    }
    let mut next = TransactionMetadata {
        last_update_ms: now_ms,
        ..current.clone()
    };
    let pending = next.pending_offsets.entry(group.to_string()).or_default();
    for (topic, partition, commit) in offsets {
        pending.retain(|(t, p, _)| !(*t == topic && *p == partition));
        pending.push((topic, partition, commit));
    }
    Ok(next)
}

/// What EndTxn does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndDecision {
    /// Write this Prepare* state, then the markers, then its completion.
    Prepare(TransactionMetadata),
    /// A retry of an EndTxn that already completed: answer success, change nothing.
    AlreadyDone,
}

/// EndTxn: commit (`commit`) or abort the open transaction.
pub fn end_transaction(
    current: Option<&TransactionMetadata>,
    producer_id: i64,
    epoch: i16,
    commit: bool,
    now_ms: i64,
) -> Result<EndDecision, TxnError> {
    let current = current.ok_or(TxnError::InvalidProducerIdMapping)?;
    check_producer(current, producer_id, epoch)?;
    let prepare = |state| {
        EndDecision::Prepare(TransactionMetadata {
            state,
            last_update_ms: now_ms,
            ..current.clone()
        })
    };
    match (current.state, commit) {
        (TxnState::Ongoing, true) => Ok(prepare(TxnState::PrepareCommit)),
        (TxnState::Ongoing, false) => Ok(prepare(TxnState::PrepareAbort)),
        (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
            Ok(EndDecision::AlreadyDone)
        }
        (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
            Err(TxnError::ConcurrentTransactions)
        }
        _ => Err(TxnError::InvalidTxnState),
    }
}

/// The completion of a Prepare* state once its markers are written: the state to write, and
/// the offsets the groups get (a commit's pending offsets; none on abort).
pub fn complete(
    current: &TransactionMetadata,
    now_ms: i64,
) -> Option<(TransactionMetadata, PendingOffsets)> {
    let (state, offsets) = match current.state {
        TxnState::PrepareCommit => (TxnState::CompleteCommit, current.pending_offsets.clone()),
        TxnState::PrepareAbort => (TxnState::CompleteAbort, BTreeMap::new()),
        _ => return None,
    };
    let done = TransactionMetadata {
        state,
        last_update_ms: now_ms,
        ..settle(current)
    };
    Some((done, offsets))
}

/// The transaction.timeout.ms rule: an open transaction older than its timeout is aborted, with
/// a bumped epoch so the producer that let it expire is fenced (Kafka's
/// `abortTimedOutTransactions`). `None` when it has not expired.
pub fn expire(current: &TransactionMetadata, now_ms: i64) -> Option<TransactionMetadata> {
    let expired = current.state == TxnState::Ongoing
        && now_ms.saturating_sub(current.start_ms) > i64::from(current.timeout_ms);
    expired.then(|| prepare_abort_fencing(current, now_ms))
}

/// The `transactional.id.expiration.ms` rule: a transactional id with no transaction open or
/// being completed, and no request for longer than `expiration_ms`, is forgotten (Kafka's
/// `TransactionStateManager` removes it). Its producer id is not handed out again; a later
/// InitProducerId with the id starts afresh with a new one.
pub fn id_expired(current: &TransactionMetadata, now_ms: i64, expiration_ms: i64) -> bool {
    current.state.is_settled() && now_ms.saturating_sub(current.last_update_ms) > expiration_ms
}

#[cfg(test)]
#[path = "transaction_tests.rs"]
mod tests;
