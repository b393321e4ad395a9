//! Krait's consumer group coordinator (Kafka's classic group protocol).
//!
//! `group` is the pure state machine of one group: it takes requests and the time, and returns
//! replies and effects; it owns no clock, no channel and no storage, so every transition is
//! tested directly. `runtime` is the shell: it parks JoinGroup and SyncGroup calls until the
//! state machine completes them, ticks the clock for session and rebalance timeouts, and tells
//! its caller when a group's durable metadata changed.

pub mod group;
pub mod messages;
pub mod runtime;

pub use group::{
    GroupError, GroupState, JoinRequest, JoinResponse, JoinedMember, Protocol, Settings,
    SyncRequest, SyncResponse,
};
pub use runtime::{Coordinator, GroupRecord, GroupView, MemberView};
