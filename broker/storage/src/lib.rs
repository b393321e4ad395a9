//! Krait's durable state, one store per broker: partition logs (record batches keyed by log id
//! and base offset), per-log state, a timestamp index, the topic catalog, group metadata and
//! the metadata quorum's Raft log.
//!
//! Everything is written against one seam, [`engine::Engine`] (ordered key spaces with atomic
//! writes), with two engines: RocksDB on disk ([`Store::open`]) and memory
//! ([`Store::in_memory`], for tests, tools and fuzzing). This crate owns bytes on disk and
//! nothing else: no sockets, no async runtime, no Kafka request handling. Callers serialise
//! appends per log; reads may run concurrently with them.

mod catalog;
mod cleaner;
pub mod compaction;
pub mod engine;
pub mod epochs;
mod error;
mod groups;
mod keys;
mod log;
mod log_txn;
pub mod producers;
pub mod raft;
mod replica;
pub mod retention;
mod store;
pub mod txn;

pub use catalog::{PartitionRecord, TopicRecord};
pub use cleaner::CompactionStats;
pub use engine::MemoryEngine;
pub use error::{Result, StorageError};
pub use groups::StoredGroup;
pub use keys::{log_end_key, log_key, parse_log_key};
pub use log::{AppendInfo, AppendOptions, LogOffsets, PartitionLog, ReadResult};
pub use log_txn::{ActiveProducer, CommittedRead};
pub use store::{DEFAULT_MEMORY_BUDGET, Store, StoreOptions};

#[cfg(test)]
mod cleaner_tests;
#[cfg(test)]
mod log_tests;
#[cfg(test)]
mod replica_tests;
