//! Kafka wire protocol for Krait: length-prefixed frames, request headers, the table of APIs
//! this broker serves, and record batch (magic v2) validation.
//!
//! Pure code: this crate owns no sockets, no storage and no clock. Message bodies are encoded
//! and decoded by the `kafka-protocol` crate, re-exported here so every crate uses one version,
//! except the old versions Kafka 4.0 dropped and Kafka 3.9 still serves (`legacy`).

pub mod api;
pub mod batch;
pub mod budget;
pub mod frame;
pub mod legacy;
pub mod response_frame;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;

pub use kafka_protocol;
