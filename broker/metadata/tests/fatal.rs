//! A metadata quorum whose storage fails stops, and says why through `fatal_error` (the broker
//! then fails, turning /healthz red and exiting non-zero); an orderly shutdown is not fatal.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use krait_image::MetadataRecord;
use krait_metadata::kv::{KvEntry, KvError, KvOp, Space};
use krait_metadata::{MetadataQuorum, QuorumConfig, RaftKv};
use krait_storage::{Store, StoreOptions};

/// The broker's store, whose writes fail once `broken` is set (a full or failed disk).
struct FailingKv {
    store: Store,
    broken: AtomicBool,
}

impl RaftKv for FailingKv {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        self.store.get(space, key)
    }

    fn write(&self, ops: Vec<KvOp>, sync: bool) -> Result<(), KvError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(KvError::new("write", "No space left on device"));
        }
        self.store.write(ops, sync)
    }

    fn scan_from(
        &self,
        space: Space,
        from: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), KvError> {
        self.store.scan_from(space, from, visit)
    }

    fn last(&self, space: Space) -> Result<Option<KvEntry>, KvError> {
        self.store.last(space)
    }
}

async fn single_voter(kv: Arc<FailingKv>) -> MetadataQuorum {
    let voters = BTreeMap::from([(1, "127.0.0.1:1".to_string())]);
    let quorum = MetadataQuorum::start(QuorumConfig::new(1, voters), kv)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !quorum.is_leader() {
        assert!(tokio::time::Instant::now() < deadline, "no leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    quorum
}

fn record(id: &str) -> Vec<MetadataRecord> {
    vec![MetadataRecord::InitCluster {
        cluster_id: id.into(),
    }]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_log_write_stops_the_quorum_and_says_why() {
    let kv = Arc::new(FailingKv {
        store: Store::in_memory(StoreOptions::default()),
        broken: AtomicBool::new(false),
    });
    let quorum = single_voter(kv.clone()).await;
    quorum.propose(record("c1")).await.unwrap();

    kv.broken.store(true, Ordering::SeqCst);
    assert!(quorum.propose(record("c1")).await.is_err());
    let why = tokio::time::timeout(Duration::from_secs(10), quorum.fatal_error())
        .await
        .expect("the quorum reports its fatal error");
    assert!(why.contains("No space left on device"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orderly_shutdown_is_not_a_fatal_error() {
    let kv = Arc::new(FailingKv {
        store: Store::in_memory(StoreOptions::default()),
        broken: AtomicBool::new(false),
    });
    let quorum = single_voter(kv).await;
    quorum.shutdown().await;
    let waited = tokio::time::timeout(Duration::from_millis(500), quorum.fatal_error()).await;
    assert!(waited.is_err(), "fatal_error stays pending: {waited:?}");
}
