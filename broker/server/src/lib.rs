//! Krait's Kafka-compatible broker: the listener, the per-API request handlers and the state
//! they share. Wire encoding lives in `krait-protocol`, bytes on disk in `krait-storage`.

pub mod alloc;
pub mod broker;
pub mod cluster;
pub mod config;
pub mod context;
pub mod dispatch;
pub mod handlers;
pub mod http;
pub mod metrics;
pub mod net;
pub mod retention;
pub mod server;
pub mod topic_config;
pub mod topics;

pub use server::run;
