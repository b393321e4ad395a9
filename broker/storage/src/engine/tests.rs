//! The conformance suite every [`Engine`] runs: what the partition log, the catalog and the
//! Raft log rely on.

use super::*;

fn keys(engine: &dyn Engine, space: Space, from: &[u8], to: &[u8]) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    engine
        .scan(space, from, Some(to), &mut |k, _| {
            keys.push(k.to_vec());
            true
        })
        .unwrap();
    keys
}

fn be(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

fn conformance(engine: &dyn Engine) {
    let mut write = WriteSet::default();
    for i in 1..=5 {
        write.put(Space::Log, be(i), b"batch");
    }
    write.put(Space::Meta, b"cluster_id", b"abc");
    engine.write(write, true).unwrap();

    // Spaces are apart; a missing key is None.
    assert_eq!(
        engine.get(Space::Meta, b"cluster_id").unwrap(),
        Some(b"abc".to_vec())
    );
    assert_eq!(engine.get(Space::Log, b"cluster_id").unwrap(), None);
    assert_eq!(engine.get(Space::Topics, b"t").unwrap(), None);

    // Scans are ordered, bounded [from, to) and stop when told.
    assert_eq!(keys(engine, Space::Log, &be(2), &be(4)), vec![be(2), be(3)]);
    assert!(keys(engine, Space::Log, &be(4), &be(2)).is_empty());
    let mut seen = 0;
    engine
        .scan(Space::Log, &be(0), None, &mut |_, _| {
            seen += 1;
            seen < 2
        })
        .unwrap();
    assert_eq!(seen, 2, "the scan stops when told");

    // last: the greatest key in [from, to).
    assert_eq!(
        engine
            .last(Space::Log, &be(0), Some(&be(4)))
            .unwrap()
            .unwrap()
            .0,
        be(3)
    );
    assert_eq!(engine.last(Space::Log, &be(6), Some(&be(9))).unwrap(), None);
    assert_eq!(
        engine.last(Space::Log, &be(0), None).unwrap().unwrap().0,
        be(5)
    );

    // floor: the greatest key in [lower, key], also for keys between entries.
    let floor = |lower: u64, key: &[u8]| {
        let mut found = None;
        engine
            .floor(Space::Log, &be(lower), key, &mut |k, _| {
                found = Some(k.to_vec())
            })
            .unwrap();
        found
    };
    assert_eq!(floor(0, &be(3)), Some(be(3).to_vec()));
    assert_eq!(floor(0, &[0, 0, 0, 0, 0, 0, 0, 3, 7]), Some(be(3).to_vec()));
    assert_eq!(floor(0, &be(0)), None);
    assert_eq!(floor(4, &be(3)), None, "nothing below the lower bound");
    assert_eq!(floor(0, &be(99)), Some(be(5).to_vec()));

    // One write applies puts, deletes and range deletes in order.
    let mut write = WriteSet::default();
    write.delete_range(Space::Log, be(2), be(4));
    write.delete(Space::Log, be(5));
    write.put(Space::Log, be(5), b"again");
    write.delete(Space::Meta, b"cluster_id");
    write.delete_range(Space::Log, be(9), be(8));
    engine.write(write, false).unwrap();
    assert_eq!(
        keys(engine, Space::Log, &be(0), &be(99)),
        vec![be(1), be(4), be(5)]
    );
    assert_eq!(
        engine.get(Space::Log, &be(5)).unwrap(),
        Some(b"again".to_vec())
    );
    assert_eq!(engine.get(Space::Meta, b"cluster_id").unwrap(), None);
}

#[test]
fn memory_engine_conforms() {
    conformance(&MemoryEngine::new());
}

#[test]
fn rocksdb_engine_conforms_and_keeps_data_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = RocksEngine::open(dir.path(), crate::DEFAULT_MEMORY_BUDGET).unwrap();
        conformance(&engine);
    }
    let engine = RocksEngine::open(dir.path(), crate::DEFAULT_MEMORY_BUDGET).unwrap();
    assert_eq!(
        keys(&engine, Space::Log, &be(0), &be(99)),
        vec![be(1), be(4), be(5)]
    );
}

#[test]
fn rocksdb_reports_its_memtables_and_no_stall_while_the_memory_engine_reports_nothing() {
    assert_eq!(MemoryEngine::new().stats(), None);
    let dir = tempfile::tempdir().unwrap();
    let engine = RocksEngine::open(dir.path(), crate::DEFAULT_MEMORY_BUDGET).unwrap();
    let mut write = WriteSet::default();
    for i in 0..100 {
        write.put(Space::Log, be(i), [7u8; 1000]);
    }
    engine.write(write, true).unwrap();
    let stats = engine.stats().expect("RocksDB reports figures");
    assert!(
        stats.memtables_bytes >= 100_000,
        "100 KB written sit in the memtables: {stats:?}"
    );
    assert_eq!((stats.write_stopped, stats.delayed_write_rate), (0, 0));
}

#[test]
fn rocksdb_holds_memtables_and_cached_blocks_within_its_memory_budget_under_a_long_write() {
    let budget = super::rocks::MIN_MEMORY_BUDGET;
    let dir = tempfile::tempdir().unwrap();
    let engine = RocksEngine::open(dir.path(), budget).unwrap();
    let value = vec![7u8; 64 << 10];
    let mut most = EngineStats::default();
    // 160 MiB written, ten times the budget, 1 MiB per write as a busy partition gets it.
    for w in 0..160u64 {
        let mut write = WriteSet::default();
        for i in 0..16 {
            write.put(Space::Log, be(w * 16 + i), &value);
        }
        engine.write(write, false).unwrap();
        let now = engine.stats().unwrap();
        most.memtables_bytes = most.memtables_bytes.max(now.memtables_bytes);
        most.block_cache_bytes = most.block_cache_bytes.max(now.block_cache_bytes);
    }
    // Everything reads back, through the same cache.
    let mut read = 0usize;
    engine
        .scan(Space::Log, &be(0), None, &mut |_, v| {
            read += v.len();
            true
        })
        .unwrap();
    assert_eq!(read, 160 << 20);
    let after = engine.stats().unwrap();
    most.block_cache_bytes = most.block_cache_bytes.max(after.block_cache_bytes);
    let budget = budget as u64;
    assert!(
        most.memtables_bytes <= budget && most.block_cache_bytes <= budget + (1 << 20),
        "budget {budget}, at most {most:?}"
    );
    assert!(
        after.sst_files_bytes + after.blob_files_bytes >= 100 << 20,
        "flushed: {after:?}"
    );
}

#[test]
fn large_batches_are_flushed_to_blob_files_read_back_after_reopening_and_their_files_go_with_them()
{
    let dir = tempfile::tempdir().unwrap();
    let big = |i: u64| vec![(i % 251) as u8; 64 << 10];
    {
        let engine = RocksEngine::open(dir.path(), super::rocks::MIN_MEMORY_BUDGET).unwrap();
        // 64 MiB: several memtables of the smallest budget, so most of it is flushed.
        for w in 0..64u64 {
            let mut write = WriteSet::default();
            for i in w * 16..(w + 1) * 16 {
                write.put(Space::Log, be(i), big(i));
            }
            write.put(Space::Log, be(10_000 + w), b"small");
            engine.write(write, false).unwrap();
        }
        let stats = engine.stats().unwrap();
        assert!(
            stats.blob_files_bytes >= 32 << 20 && stats.sst_files_bytes < 8 << 20,
            "the batches went to blob files, their keys to the tree: {stats:?}"
        );
    }
    let engine = RocksEngine::open(dir.path(), super::rocks::MIN_MEMORY_BUDGET).unwrap();
    let mut seen = 0u64;
    engine
        .scan(Space::Log, &be(0), Some(&be(10_000)), &mut |key, value| {
            let i = u64::from_be_bytes(key.try_into().unwrap());
            assert_eq!(value, big(i).as_slice(), "batch {i}");
            seen += 1;
            true
        })
        .unwrap();
    assert_eq!(seen, 1024);
    assert_eq!(
        engine.get(Space::Log, &be(10_063)).unwrap().as_deref(),
        Some(&b"small"[..])
    );
    // Retention deletes a range; once compaction has dropped its keys, the blob files that
    // held only those batches are deleted, and the space is back.
    let before = engine.stats().unwrap().blob_files_bytes;
    let mut write = WriteSet::default();
    write.delete_range(Space::Log, be(0), be(960));
    engine.write(write, false).unwrap();
    engine.compact_all();
    let after = engine.stats().unwrap().blob_files_bytes;
    assert!(
        after < before / 4,
        "blob files of deleted batches removed: {before} -> {after} bytes"
    );
    let mut left = 0;
    engine
        .scan(Space::Log, &be(0), Some(&be(10_000)), &mut |_, _| {
            left += 1;
            true
        })
        .unwrap();
    assert_eq!(left, 64);
}

#[test]
fn a_deleted_partitions_batches_in_blob_files_shared_with_a_live_one_are_given_back_by_reclaim() {
    let dir = tempfile::tempdir().unwrap();
    let engine = RocksEngine::open(dir.path(), super::rocks::MIN_MEMORY_BUDGET).unwrap();
    let batch = |i: u64| vec![(i % 251) as u8; 64 << 10];
    // Two partitions written together, as a broker writes every partition it leads: three
    // batches of the first for each of the second, so every blob file holds both.
    let (first, second) = (0u64, 1_000_000u64);
    for w in 0..128u64 {
        let mut write = WriteSet::default();
        for i in w * 3..(w + 1) * 3 {
            write.put(Space::Log, be(first + i), batch(i));
        }
        write.put(Space::Log, be(second + w), batch(w));
        engine.write(write, false).unwrap();
    }
    engine.compact_all();
    let stored = engine.stats().unwrap();
    assert!(stored.blob_files_bytes >= 30 << 20, "{stored:?}");
    assert_eq!(engine.reclaim(0).unwrap(), None, "nothing deleted yet");

    // The first partition is deleted (a deleted topic, or retention far shorter than the
    // other's). Reclaim compacts the deleted range, so its keys are dropped even with no
    // more writes; asked for more than there is to free, it stops there. No blob file holds
    // only the deleted batches, so every file stays.
    let mut write = WriteSet::default();
    write.delete_range(Space::Log, be(first), be(second));
    engine.write(write, false).unwrap();
    assert_eq!(engine.reclaim(1 << 40).unwrap(), None);
    let deleted = engine.stats().unwrap();
    assert!(
        deleted.blob_files_bytes > stored.blob_files_bytes * 9 / 10
            && deleted.blob_garbage_bytes > deleted.blob_files_bytes * 6 / 10,
        "the deleted batches still take their files: {stored:?} -> {deleted:?}"
    );

    let reclaimed = engine.reclaim(1 << 20).unwrap().expect("due");
    let after = engine.stats().unwrap();
    assert!(
        reclaimed.files_after < reclaimed.files_before / 3
            && reclaimed.garbage_after < 1 << 20
            && after.blob_files_bytes < stored.blob_files_bytes / 3,
        "{reclaimed:?}, {after:?}"
    );
    // The live partition reads back whole, from its new files, and again after reopening.
    let check = |engine: &RocksEngine| {
        let mut seen = 0u64;
        engine
            .scan(Space::Log, &be(first), None, &mut |key, value| {
                let i = u64::from_be_bytes(key.try_into().unwrap()) - second;
                assert_eq!(value, batch(i).as_slice(), "batch {i}");
                seen += 1;
                true
            })
            .unwrap();
        assert_eq!(seen, 128);
    };
    check(&engine);
    assert_eq!(engine.reclaim(0).unwrap(), None, "nothing left to free");
    let log = persisted_cf_options(dir.path(), Space::Log.name());
    assert_eq!(
        log["enable_blob_garbage_collection"], "false",
        "collection is off again for the compactions that follow"
    );
    drop(engine);
    check(&RocksEngine::open(dir.path(), super::rocks::MIN_MEMORY_BUDGET).unwrap());
}

/// RocksDB's own record of the options a column family was opened with (the OPTIONS file it
/// writes beside the data), as `name=value` pairs.
fn persisted_cf_options(
    dir: &std::path::Path,
    cf: &str,
) -> std::collections::HashMap<String, String> {
    let latest = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("OPTIONS-"))
        .max_by_key(|n| n["OPTIONS-".len()..].parse::<u64>().unwrap_or(0))
        .expect("RocksDB writes an OPTIONS file");
    let text = std::fs::read_to_string(dir.join(latest)).unwrap();
    let header = format!("[CFOptions \"{cf}\"]");
    text.lines()
        .skip_while(|l| l.trim() != header)
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .filter_map(|l| l.trim().split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn the_log_has_room_for_a_lagging_flush_and_all_its_memtables_stay_within_half_the_budget() {
    for budget in [
        super::rocks::MIN_MEMORY_BUDGET,
        crate::DEFAULT_MEMORY_BUDGET,
        1 << 30,
    ] {
        let dir = tempfile::tempdir().unwrap();
        drop(RocksEngine::open(dir.path(), budget).unwrap());
        let log = persisted_cf_options(dir.path(), Space::Log.name());
        let number: usize = log["max_write_buffer_number"].parse().unwrap();
        let size: usize = log["write_buffer_size"].parse().unwrap();
        assert!(
            number >= 4,
            "one memtable filling and several flushing, not RocksDB's two: {number}"
        );
        assert!(
            number * size <= budget / 2,
            "{number} memtables of {size} bytes within half of {budget}"
        );
        assert!(size >= 1 << 20, "memtables of {size} bytes flush too often");
    }
}

/// The child process of the kill -9 test: writes 16 KB values under keys 0, 1, 2, ... from
/// the one after the last in `dir`, printing each key once its write has returned, until killed.
fn crash_writer(dir: &std::path::Path) -> ! {
    use std::io::Write;
    let engine = RocksEngine::open(dir, super::rocks::MIN_MEMORY_BUDGET).unwrap();
    let mut next = match engine.last(Space::Log, &be(0), None).unwrap() {
        Some((key, _)) => u64::from_be_bytes(key.try_into().unwrap()) + 1,
        None => 0,
    };
    let mut out = std::io::stdout().lock();
    loop {
        let mut write = WriteSet::default();
        write.put(Space::Log, be(next), crash_value(next));
        engine.write(write, false).unwrap();
        writeln!(out, "acked {next}").unwrap();
        out.flush().unwrap();
        next += 1;
    }
}

fn crash_value(key: u64) -> Vec<u8> {
    let mut value = vec![(key % 251) as u8; 16 << 10];
    value[..8].copy_from_slice(&key.to_be_bytes());
    value
}

/// A child process killed when dropped, whatever the test's outcome.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// kill -9 in the middle of writes, three times over, with memtables small enough that the
/// write-ahead log rolls every ~128 writes and old log files are written over: every write
/// that returned is there after reopening, with its value, and the keys have no hole (writes
/// from a log's previous use are never taken for new ones).
#[test]
fn rocksdb_keeps_every_returned_write_across_kill_9_while_it_reuses_log_files() {
    use std::io::BufRead;
    const CHILD: &str = "KRAIT_STORAGE_CRASH_WRITER_DIR";
    if let Some(dir) = std::env::var_os(CHILD) {
        crash_writer(std::path::Path::new(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    let mut stored = 0u64;
    for cycle in 0..3 {
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "engine::tests::rocksdb_keeps_every_returned_write_across_kill_9_while_it_reuses_log_files",
                "--exact",
                "--nocapture",
            ])
            .env(CHILD, dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut child = Killed(child);
        let lines = std::io::BufReader::new(child.0.stdout.take().unwrap()).lines();
        let mut acked = None;
        for line in lines {
            let line = line.unwrap();
            if let Some(key) = line.strip_prefix("acked ") {
                let key: u64 = key.parse().unwrap();
                acked = Some(key);
                if key >= stored + 3_000 {
                    break;
                }
            }
        }
        let acked = acked.expect("the writer acknowledged writes");
        assert!(
            acked >= stored + 3_000,
            "cycle {cycle}: the writer stopped at {acked}"
        );
        child.0.kill().unwrap(); // SIGKILL
        child.0.wait().unwrap();
        drop(child);

        let engine = RocksEngine::open(dir.path(), super::rocks::MIN_MEMORY_BUDGET).unwrap();
        let mut expected = 0u64;
        engine
            .scan(Space::Log, &be(0), None, &mut |key, value| {
                assert_eq!(
                    key,
                    be(expected),
                    "cycle {cycle}: a hole before key {expected}"
                );
                assert!(
                    value == crash_value(expected),
                    "cycle {cycle}: key {expected} changed"
                );
                expected += 1;
                true
            })
            .unwrap();
        assert!(
            expected > acked,
            "cycle {cycle}: {expected} keys stored, but key {acked} was acknowledged"
        );
        stored = expected;
    }
    // RocksDB's info logs of every open (the older ones renamed LOG.old.*).
    let logs: String = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("LOG"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let reused = logs.matches("from recycle list").count();
    assert!(
        reused >= 3,
        "the test must have written over recycled log files: {reused} times"
    );
}
