//! Fixtures shared by the crate's specifications: a broker's replica on its own RocksDB in a
//! tempdir, record batches, three managed brokers, and waiting on a condition with a deadline.
//! The transport between the brokers is each specification's own.

use std::sync::Arc;
use std::time::Duration;

use krait_image::BrokerId;
use krait_protocol::batch::{ValidBatch, validate_batches};
use krait_protocol::testing::TestBatch;
use krait_storage::{Store, StoreOptions};

use crate::*;

pub(crate) struct Broker {
    _dir: tempfile::TempDir,
    _store: Store,
    pub(crate) replica: Arc<PartitionReplica>,
}

pub(crate) fn broker(id: BrokerId) -> Broker {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let log = store.open_log(1).unwrap();
    Broker {
        replica: Arc::new(PartitionReplica::new(id, log)),
        _store: store,
        _dir: dir,
    }
}

pub(crate) fn batch(values: &[&str]) -> ValidBatch {
    let batch = TestBatch::of(values.iter().map(|v| v.to_string())).first_timestamp(1_000);
    validate_batches(&batch.encode()).unwrap().remove(0)
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Waits until `condition` holds, failing the test after ten seconds.
pub(crate) async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Fetch loops quick enough for tests: a short long poll and retry backoff.
pub(crate) fn test_fetch_settings() -> FetchSettings {
    FetchSettings {
        max_wait_ms: 100,
        retry_backoff: Duration::from_millis(20),
        ..FetchSettings::default()
    }
}

/// Three brokers' managers and their replicas of partition t-0.
pub(crate) struct Cluster {
    pub(crate) managers: Vec<Arc<ReplicaManager>>,
    pub(crate) replicas: Vec<Arc<PartitionReplica>>,
    _brokers: Vec<Broker>,
}

/// Brokers 1, 2, 3 with partition t-0 led by 1 at epoch 0, ISR all three. No fetcher runs yet:
/// the caller connects the brokers and calls `ensure_fetchers`.
pub(crate) fn cluster() -> Cluster {
    cluster_with(test_fetch_settings())
}

/// [`cluster`] with fetch loops tuned by `settings`.
pub(crate) fn cluster_with(settings: FetchSettings) -> Cluster {
    let (mut managers, mut replicas, mut brokers) = (Vec::new(), Vec::new(), Vec::new());
    for id in 1..=3 {
        let b = broker(id);
        let manager = ReplicaManager::new(id, Arc::new(now_ms), settings);
        manager.insert("t", 0, b.replica.clone());
        managers.push(manager);
        replicas.push(b.replica.clone());
        brokers.push(b);
    }
    replicas[0]
        .lead(0, &[1, 2, 3], &[1, 2, 3], now_ms())
        .unwrap();
    for r in &replicas[1..] {
        r.follow(1, 0);
    }
    Cluster {
        managers,
        replicas,
        _brokers: brokers,
    }
}
