//! Krait's Kafka-compatible broker: the listener, the per-API request handlers and the state
//! they share. Wire encoding lives in `krait-protocol`, bytes on disk in `krait-storage`.
// A connection's future holds every handler's future: its layout is deeper than rustc's
// default limit once TLS and plain streams both instantiate the request loop.
#![recursion_limit = "256"]

pub mod admission;
pub mod broker;
pub mod cluster;
pub mod config;
pub mod config_file;
pub mod context;
pub mod disk;
pub mod dispatch;
pub mod dynamic_config;
pub mod fetch_memory;
pub mod handlers;
pub mod http;
pub mod listeners;
pub mod memory_budget;
pub mod metrics;
pub mod net;
pub mod producer_ids;
pub mod retention;
pub mod sasl;
pub mod security;
pub mod server;
pub mod topic_config;
pub mod topics;
pub mod transactions;

pub use server::run;
