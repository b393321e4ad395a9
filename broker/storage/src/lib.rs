//! Krait's durable state on one RocksDB database per broker: partition logs (record batches
//! keyed by log id and base offset), per-log state, a timestamp index, and the topic catalog.
//!
//! This crate owns bytes on disk and nothing else: no sockets, no async runtime, no Kafka
//! request handling. Callers serialise appends per log; reads may run concurrently with them.

mod catalog;
pub mod epochs;
mod error;
mod groups;
mod keys;
mod log;
pub mod producers;
mod replica;
pub mod retention;
mod store;

pub use catalog::{PartitionRecord, TopicRecord};
pub use error::{Result, StorageError};
pub use groups::StoredGroup;
pub use keys::{log_end_key, log_key, parse_log_key};
pub use log::{AppendInfo, AppendOptions, LogOffsets, PartitionLog, ReadResult};
pub use store::{CF_RAFT_LOG, CF_RAFT_STATE, Store, StoreOptions};

#[cfg(test)]
mod replica_tests;
#[cfg(test)]
mod tests;
