//! What clients may hold of the broker at once: connections (in all and per IP address) and
//! bytes of request frames being read or handled. `net` asks before it serves a connection and
//! before it buffers a frame's bytes; what a connection holds is given back when it drops.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use krait_sync::MutexExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::BrokerConfig;

/// Open files kept for the broker's own use (RocksDB's files, the cluster port, logs) when
/// `max.connections` is derived from the open-file limit: this many, or a quarter of the limit
/// when that is more.
const RESERVED_FILES: usize = 1024;
/// The open-file limit assumed when `/proc/self/limits` cannot be read.
const ASSUMED_FILE_LIMIT: usize = 4096;

/// The limits on what clients hold, shared by every listener.
#[derive(Debug)]
pub struct Admission {
    max_connections: usize,
    max_per_ip: usize,
    open: Mutex<Open>,
    /// One permit per byte of request frames buffered or being handled.
    bytes: Arc<Semaphore>,
    budget: u32,
    pub idle_timeout: Duration,
    pub read_timeout: Duration,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// Why a connection was closed as soon as it was accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{0} client connections are open, the most max.connections allows")]
    Total(usize),
    #[error(
        "{0} client connections from this address are open, the most max.connections.per.ip allows"
    )]
    PerIp(usize),
}

/// A connection's place among the open ones; given back on drop.
#[derive(Debug)]
pub struct Admitted {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.admission.open.lock_unpoisoned();
        open.total -= 1;
        if let Some(n) = open.by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.by_ip.remove(&self.ip);
            }
        }
    }
}

impl Admission {
    pub fn new(config: &BrokerConfig) -> Arc<Self> {
        let budget = config
            .queued_max_request_bytes()
            .clamp(1, u32::MAX as usize) as u32;
        Arc::new(Self {
            max_connections: config
                .max_connections
                .unwrap_or_else(|| connections_for(open_file_limit())),
            max_per_ip: config.max_connections_per_ip,
            open: Mutex::default(),
            bytes: Arc::new(Semaphore::new(budget as usize)),
            budget,
            idle_timeout: Duration::from_millis(config.connections_max_idle_ms),
            read_timeout: Duration::from_millis(config.request_read_timeout_ms),
        })
    }

    /// The most client connections open at once.
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// Counts a new connection from `ip`, unless a limit is reached.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, Refused> {
        let mut open = self.open.lock_unpoisoned();
        if open.total >= self.max_connections {
            return Err(Refused::Total(open.total));
        }
        let from_ip = open.by_ip.get(&ip).copied().unwrap_or(0);
        if from_ip >= self.max_per_ip {
            return Err(Refused::PerIp(from_ip));
        }
        open.total += 1;
        *open.by_ip.entry(ip).or_default() += 1;
        Ok(Admitted {
            admission: self.clone(),
            ip,
        })
    }

    /// Room for `bytes` more bytes of a request frame, waiting until other requests give it
    /// back. A frame larger than the whole budget waits for all of it.
    pub async fn reserve(&self, bytes: usize) -> OwnedSemaphorePermit {
        let n = bytes.clamp(1, self.budget as usize) as u32;
        self.bytes
            .clone()
            .acquire_many_owned(n)
            .await
            .expect("the request byte budget is never closed")
    }

    /// Bytes of the budget not held by any request right now.
    pub fn available_bytes(&self) -> usize {
        self.bytes.available_permits()
    }
}

/// `max.connections` for an open-file limit: the limit less the broker's own reserve.
fn connections_for(file_limit: usize) -> usize {
    let reserve = RESERVED_FILES.max(file_limit / 4);
    file_limit.saturating_sub(reserve).max(100)
}

/// The soft limit on open files, from `/proc/self/limits`.
fn open_file_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| parse_file_limit(&text))
        .unwrap_or(ASSUMED_FILE_LIMIT)
}

fn parse_file_limit(limits: &str) -> Option<usize> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    match soft {
        "unlimited" => Some(usize::MAX / 2),
        n => n.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn admission(args: &[&str]) -> Arc<Admission> {
        let config = BrokerConfig::try_parse_from(
            std::iter::once("krait-broker").chain(args.iter().copied()),
        )
        .unwrap();
        Admission::new(&config)
    }

    #[test]
    fn connections_are_counted_in_all_and_per_address_and_given_back_on_drop() {
        let a = admission(&["--max-connections", "3", "--max-connections-per-ip", "2"]);
        let one: IpAddr = "127.0.0.1".parse().unwrap();
        let two: IpAddr = "127.0.0.2".parse().unwrap();
        let first = a.admit(one).unwrap();
        let _second = a.admit(one).unwrap();
        assert_eq!(a.admit(one).unwrap_err(), Refused::PerIp(2));
        let _third = a.admit(two).unwrap();
        assert_eq!(a.admit(two).unwrap_err(), Refused::Total(3));
        drop(first);
        let _again = a.admit(one).unwrap();
        assert_eq!(a.open.lock_unpoisoned().total, 3);
    }

    #[tokio::test]
    async fn request_bytes_wait_for_room_and_a_huge_frame_takes_the_whole_budget() {
        let a = admission(&[
            "--max-request-bytes",
            "2048",
            "--queued-max-request-bytes",
            "4096",
        ]);
        let held = a.reserve(3000).await;
        assert_eq!(a.available_bytes(), 1096);
        let waiting = tokio::time::timeout(Duration::from_millis(50), a.reserve(2000)).await;
        assert!(
            waiting.is_err(),
            "2000 bytes cannot fit beside 3000 of 4096"
        );
        drop(held);
        let whole = a.reserve(1 << 40).await;
        assert_eq!(whole.num_permits(), 4096);
        assert_eq!(a.available_bytes(), 0);
    }

    #[test]
    fn the_default_connection_limit_leaves_files_for_the_broker() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            20000                20000                files\n";
        assert_eq!(parse_file_limit(limits), Some(20000));
        assert_eq!(connections_for(20000), 15000);
        assert_eq!(connections_for(1024), 100);
        assert_eq!(connections_for(1 << 20), 786_432);
        assert!(parse_file_limit("nothing").is_none());
    }
}
