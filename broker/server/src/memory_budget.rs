//! The broker's one memory budget (`memory.mb`) and the shares of it that the budgets of its
//! parts default to.
//!
//! | part | its own setting | share | of 128 MiB |
//! |---|---|---|---|
//! | RocksDB: memtables and block cache | `storage.memory.mb` | 3/8 | 48 MiB |
//! | request frames being read or handled | `queued.max.request.bytes` | 1/8 | 16 MiB |
//! | records of Fetch responses not yet written | `fetch.memory.max.bytes` | 1/8 | 16 MiB |
//! | one replica fetch response, served or received | `replica.fetch.response.max.bytes` | 1/64 | 2 MiB |
//! | the process: code, runtime, metadata, connections, copies in flight, allocator | – | the rest | ~48 MiB |
//!
//! The rest is measured, not counted: the broker takes about 25 MiB idle, and under load its
//! heap holds free pages between blocks still in use (returned by `malloc_trim` once the
//! resident size passes three quarters of the budget) and copies of what is being written (the
//! stored batch and RocksDB's write batch beside each request frame). At these shares, eight
//! producers of 1 KB records writing at once took the broker to 108-119 MiB and 32 consumers
//! reading at once to 76-80 MiB; with the defaults before this budget (RocksDB 64 MiB, Fetch
//! responses 64 MiB, request frames 256 MiB), to 127-128 and 168-185 MiB (`bench/memory.py
//! --records 800000 --readers 32 --producers 8`, alternating runs).
//!
//! A broker serves one fetch at a time to each follower and has one in flight to each leader,
//! so replication holds at most `2 × (brokers − 1)` replica fetch responses: 8 MiB in a cluster
//! of three at the default. A part whose own setting is given uses it as given, and the total
//! then holds only as far as that setting allows.

use crate::config::BrokerConfig;

/// The budget when `memory.mb` is not given.
pub const DEFAULT_MEMORY_MB: u64 = 128;
/// The least `memory.mb` accepted: the process itself takes about 25 MiB idle, and RocksDB's
/// share of it (24 MiB) is above the least RocksDB takes (16 MiB).
pub const MIN_MEMORY_MB: u64 = 64;
/// Kafka's default `socket.request.max.bytes`, the most a request frame defaults to.
pub const KAFKA_MAX_REQUEST_BYTES: usize = 100 << 20;
/// The most one replica fetch response may be set to carry: the replication gRPC messages
/// take 64 MiB, room for this and a batch larger than a partition's share.
pub const MAX_REPLICA_FETCH_BYTES: usize = 32 << 20;
/// What the replica fetch share defaults to at most: a larger response moves no faster.
const REPLICA_FETCH_SHARE_CAP: usize = 16 << 20;

impl BrokerConfig {
    fn memory_share(&self, denominator: u64) -> usize {
        usize::try_from((self.memory_mb << 20) / denominator).unwrap_or(usize::MAX)
    }

    /// The resident size above which the heap's free pages go back to the kernel: three
    /// quarters of the budget, or of what the parts set on their own add up to when that is
    /// more (they then take 5/8 of it, as their shares do of the budget), so a broker given a
    /// larger RocksDB budget is not trimmed every second for using it.
    pub fn trim_above_bytes(&self) -> usize {
        let parts = ((self.storage_memory_mb() << 20) as usize)
            .saturating_add(self.queued_max_request_bytes())
            .saturating_add(self.fetch_memory_max_bytes());
        let budget = self.memory_share(1).max(parts / 5 * 8);
        budget / 4 * 3
    }

    /// MiB RocksDB may hold in memory (storage.memory.mb).
    pub fn storage_memory_mb(&self) -> u64 {
        self.storage_memory_mb.unwrap_or(self.memory_mb * 3 / 8)
    }

    /// Bytes of request frames being read or handled at once (queued.max.request.bytes): never
    /// less than one frame of the largest size accepted.
    pub fn queued_max_request_bytes(&self) -> usize {
        self.queued_max_request_bytes
            .unwrap_or_else(|| self.memory_share(8).max(self.max_request_bytes()))
    }

    /// The largest request frame accepted (socket.request.max.bytes): by default what the
    /// request frames' share holds, so one frame always fits it, and no more than Kafka's.
    pub fn max_request_bytes(&self) -> usize {
        self.max_request_bytes.unwrap_or_else(|| {
            let share = self
                .queued_max_request_bytes
                .unwrap_or(self.memory_share(8));
            share.min(KAFKA_MAX_REQUEST_BYTES)
        })
    }

    /// Bytes of records all Fetch responses hold at once (fetch.memory.max.bytes).
    pub fn fetch_memory_max_bytes(&self) -> usize {
        self.fetch_memory_max_bytes
            .unwrap_or_else(|| self.memory_share(8))
    }

    /// The most records one replica fetch response carries (replica.fetch.response.max.bytes):
    /// what a follower asks a leader for, and the most a leader answers with.
    pub fn replica_fetch_response_max_bytes(&self) -> usize {
        self.replica_fetch_response_max_bytes
            .unwrap_or_else(|| self.memory_share(64).min(REPLICA_FETCH_SHARE_CAP))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::config::tests::parse as config;

    #[test]
    fn the_default_budget_is_128_mib_and_its_shares_leave_three_eighths_to_the_process() {
        let c = config(&[]);
        assert_eq!(c.memory_mb, 128);
        assert_eq!(c.storage_memory_mb(), 48);
        assert_eq!(c.queued_max_request_bytes(), 16 << 20);
        assert_eq!(c.max_request_bytes(), 16 << 20);
        assert_eq!(c.fetch_memory_max_bytes(), 16 << 20);
        assert_eq!(c.replica_fetch_response_max_bytes(), 2 << 20);
        assert_eq!(c.trim_above_bytes(), 96 << 20);
        // What the shares count in a cluster of three: two followers served, two leaders
        // fetched from.
        let counted = (c.storage_memory_mb() << 20) as usize
            + c.queued_max_request_bytes()
            + c.fetch_memory_max_bytes()
            + 4 * c.replica_fetch_response_max_bytes();
        assert_eq!(
            counted,
            88 << 20,
            "40 MiB of 128 left to the process itself"
        );
        assert!(c.validate().is_ok());
    }

    #[test]
    fn every_share_follows_the_budget() {
        let c = config(&["--memory-mb", "1024"]);
        assert_eq!(c.storage_memory_mb(), 384);
        assert_eq!(c.queued_max_request_bytes(), 128 << 20);
        assert_eq!(
            c.max_request_bytes(),
            100 << 20,
            "never above Kafka's default"
        );
        assert_eq!(c.fetch_memory_max_bytes(), 128 << 20);
        assert_eq!(c.replica_fetch_response_max_bytes(), 16 << 20);
        let c = config(&["--memory-mb", "65536"]);
        assert_eq!(c.replica_fetch_response_max_bytes(), 16 << 20, "capped");
        let c = config(&["--memory-mb", "64"]);
        assert_eq!(c.storage_memory_mb(), 24);
        assert_eq!(c.max_request_bytes(), 8 << 20);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn a_part_set_on_its_own_is_used_as_given_and_the_others_keep_their_shares() {
        let c = config(&[
            "--memory-mb",
            "256",
            "--storage-memory-mb",
            "200",
            "--fetch-memory-max-bytes",
            "1048576",
        ]);
        assert_eq!(c.storage_memory_mb(), 200);
        assert_eq!(
            c.trim_above_bytes(),
            ((200 + 32 + 1) << 20) / 5 * 8 / 4 * 3,
            "trimmed above three quarters of what the parts add up to"
        );
        assert_eq!(c.fetch_memory_max_bytes(), 1 << 20);
        assert_eq!(c.queued_max_request_bytes(), 32 << 20);
        // A larger frame than the share holds makes room for one such frame.
        let c = config(&["--max-request-bytes", "52428800"]);
        assert_eq!(c.max_request_bytes(), 50 << 20);
        assert_eq!(c.queued_max_request_bytes(), 50 << 20);
        assert!(c.validate().is_ok());
        // A smaller queue than the budget's share limits frames to it.
        let c = config(&["--queued-max-request-bytes", "4194304"]);
        assert_eq!(c.max_request_bytes(), 4 << 20);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn a_budget_below_the_least_the_process_needs_is_refused_by_name() {
        let err = BrokerConfig::try_parse_from(["krait-broker", "--memory-mb", "32"]).unwrap_err();
        assert!(err.to_string().contains("memory-mb"), "{err}");
        let err = config(&[
            "--max-request-bytes",
            "8388608",
            "--queued-max-request-bytes",
            "4194304",
        ])
        .validate()
        .unwrap_err();
        assert!(
            err.to_string().contains("queued-max-request-bytes"),
            "{err}"
        );
        let err = config(&["--replica-fetch-response-max-bytes", "67108864"])
            .validate()
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("replica-fetch-response-max-bytes must be at most 33554432"),
            "{err}"
        );
    }
}
