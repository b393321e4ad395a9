//! The replicated state machine: a [`ClusterImage`] that committed entries are applied to, and
//! its snapshots (the serialized image, kept in the state space of the [`RaftKv`]).
//!
//! This module owns applying entries in log order and publishing each new image. It must not
//! decide anything: every rule is in `ClusterImage::apply`, which is pure, so every node that
//! applies the same entries holds the same image. The image itself is not persisted on apply;
//! a restart rebuilds it from the last snapshot plus the committed entries after it.

// openraft's storage traits return its `StorageError` (over 200 bytes) by value; the helpers
// here return the same type so `?` needs no conversion. Errors are rare: no hot-path cost.
#![allow(clippy::result_large_err)]

use krait_sync::MutexExt;
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use krait_image::ClusterImage;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use tokio::sync::watch;

use crate::kv::{RaftKv, Space};
use crate::log_store::{put_state, read_state, to_json};
use crate::types::{
    Applied, Entry, LogId, SnapshotMeta, StorageError, StorageIOError, StoredMembership,
    TypeConfig, io_error,
};

const SNAPSHOT_META: &[u8] = b"snapshot_meta";
const SNAPSHOT_DATA: &[u8] = b"snapshot_data";

/// What the state machine holds between applies.
#[derive(Default)]
struct SmState {
    image: ClusterImage,
    last_applied: Option<LogId>,
    membership: StoredMembership,
}

/// The state machine. Cloning shares it (the snapshot builder is a clone).
#[derive(Clone)]
pub struct StateMachine {
    state: Arc<Mutex<SmState>>,
    kv: Arc<dyn RaftKv>,
    image_tx: Arc<watch::Sender<Arc<ClusterImage>>>,
    /// Makes snapshot ids unique when two snapshots end at the same log id.
    snapshot_seq: Arc<AtomicU64>,
}

impl std::fmt::Debug for StateMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMachine").finish_non_exhaustive()
    }
}

impl StateMachine {
    /// Loads the last snapshot, if any, and returns the state machine and the image channel.
    pub fn open(
        kv: Arc<dyn RaftKv>,
    ) -> Result<(Self, watch::Receiver<Arc<ClusterImage>>), StorageError> {
        let mut state = SmState::default();
        if let Some((meta, data)) = read_snapshot(&*kv)? {
            state.image = decode_image(&meta, &data)?;
            state.last_applied = meta.last_log_id;
            state.membership = meta.last_membership;
        }
        let (image_tx, image_rx) = watch::channel(Arc::new(state.image.clone()));
        let machine = Self {
            state: Arc::new(Mutex::new(state)),
            kv,
            image_tx: Arc::new(image_tx),
            snapshot_seq: Arc::new(AtomicU64::new(0)),
        };
        Ok((machine, image_rx))
    }

    fn lock(&self) -> MutexGuard<'_, SmState> {
        // Applying never panics half-way (apply is whole-or-nothing), so a poisoned lock still
        // guards a consistent image.
        self.state.lock_unpoisoned()
    }

    fn publish(&self, image: &ClusterImage) {
        self.image_tx.send_replace(Arc::new(image.clone()));
    }

    fn save_snapshot(&self, meta: &SnapshotMeta, data: &[u8]) -> Result<(), StorageError> {
        let ops = vec![
            put_state(SNAPSHOT_META, to_json(meta)?),
            put_state(SNAPSHOT_DATA, data.to_vec()),
        ];
        krait_sync::blocking(|| self.kv.write(ops, true))
            .map_err(|e| io_error(StorageIOError::write_snapshot(Some(meta.signature()), &e)))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let (meta, data) = {
            let state = self.lock();
            let data = serde_json::to_vec(&state.image)
                .map_err(|e| io_error(StorageIOError::write_snapshot(None, &e)))?;
            let seq = self.snapshot_seq.fetch_add(1, Ordering::Relaxed);
            let snapshot_id = match state.last_applied {
                Some(id) => format!("{}-{}-{seq}", id.leader_id, id.index),
                None => format!("none-{seq}"),
            };
            let meta = SnapshotMeta {
                last_log_id: state.last_applied,
                last_membership: state.membership.clone(),
                snapshot_id,
            };
            (meta, data)
        };
        // Persisted before openraft may purge the entries it covers.
        self.save_snapshot(&meta, &data)?;
        tracing::info!(snapshot = %meta.snapshot_id, bytes = data.len(), "built metadata snapshot");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let state = self.lock();
        Ok((state.last_applied, state.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut state = self.lock();
        let mut responses = Vec::new();
        for entry in entries {
            state.last_applied = Some(entry.log_id);
            let applied = match entry.payload {
                EntryPayload::Blank => Applied::default(),
                EntryPayload::Normal(proposal) => Applied {
                    results: proposal
                        .records
                        .iter()
                        .map(|record| state.image.apply(record))
                        .collect(),
                },
                EntryPayload::Membership(membership) => {
                    state.membership = StoredMembership::new(Some(entry.log_id), membership);
                    Applied::default()
                }
            };
            responses.push(applied);
        }
        // One new image per batch of entries: watchers see every committed state that ends a
        // batch, never a half-applied entry.
        self.publish(&state.image);
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let image = decode_image(meta, &data)?;
        self.save_snapshot(meta, &data)?;
        let mut state = self.lock();
        state.image = image;
        state.last_applied = meta.last_log_id;
        state.membership = meta.last_membership.clone();
        self.publish(&state.image);
        tracing::info!(snapshot = %meta.snapshot_id, "installed metadata snapshot");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(read_snapshot(&*self.kv)?.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

fn read_snapshot(kv: &dyn RaftKv) -> Result<Option<(SnapshotMeta, Vec<u8>)>, StorageError> {
    let Some(meta) = read_state::<SnapshotMeta>(kv, SNAPSHOT_META)? else {
        return Ok(None);
    };
    let data = kv
        .get(Space::State, SNAPSHOT_DATA)
        .map_err(|e| io_error(StorageIOError::read_snapshot(Some(meta.signature()), &e)))?
        .unwrap_or_default();
    Ok(Some((meta, data)))
}

fn decode_image(meta: &SnapshotMeta, data: &[u8]) -> Result<ClusterImage, StorageError> {
    serde_json::from_slice(data)
        .map_err(|e| io_error(StorageIOError::read_snapshot(Some(meta.signature()), &e)))
}
