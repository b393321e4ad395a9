//! Errors of the storage layer, each naming the step that failed.

use std::path::PathBuf;

use crate::engine::EngineError;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot create data directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "data directory {path} is in use by another krait-broker process (lock file {lock} is held)"
    )]
    InUse { path: PathBuf, lock: PathBuf },
    #[error("cannot lock data directory {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[cfg(feature = "rocksdb")]
    #[error("cannot open RocksDB in {path}: {source}")]
    Open {
        path: PathBuf,
        source: rocksdb::Error,
    },
    #[error("storage {step} failed: {source}")]
    Db {
        step: &'static str,
        source: EngineError,
    },
    #[error("stored {what} is corrupt: {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error("producer {producer_id} sent sequence {got}, expected {expected}")]
    OutOfOrderSequence {
        producer_id: i64,
        expected: i32,
        got: i32,
    },
    #[error("producer {producer_id} sent epoch {got}, but epoch {current} has replaced it")]
    InvalidProducerEpoch {
        producer_id: i64,
        current: i16,
        got: i16,
    },
    #[error("replicated batch starts at offset {got}, but the log ends at {expected}")]
    NotContiguous { expected: i64, got: i64 },
    #[error("offset {offset} is outside the log [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
}

impl StorageError {
    pub(crate) fn db(step: &'static str) -> impl FnOnce(EngineError) -> Self {
        move |source| Self::Db { step, source }
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
