//! Fetch within `fetch.memory.max.bytes`: a fetch reads only the room that is free, waits while
//! less than a batch's worth is, and the room comes back when the records are dropped.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use krait_protocol::kafka_protocol::messages::FetchResponse;

use super::tests::{batch, create, ctx, fetch_request, produce_request, ready};
use crate::broker::Broker;
use crate::config::BrokerConfig;

const LIMIT: usize = 2 << 20;
const VALUE: usize = 400_000;

async fn broker_with_little_fetch_memory(dir: &tempfile::TempDir) -> Arc<Broker> {
    let config = BrokerConfig::parse_from([
        "krait-broker",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--fetch-memory-max-bytes",
        &LIMIT.to_string(),
    ]);
    ready(config).await
}

/// Three batches of one 400 KB record in each of `partitions`.
async fn fill(b: &Broker, partitions: i32) {
    create(b, "t", partitions).await;
    let value = "x".repeat(VALUE);
    for partition in 0..partitions {
        for _ in 0..3 {
            let produced = super::produce::handle(
                &ctx(b, 9),
                produce_request("t", partition, batch(&[value.as_str()], 0), 1),
            )
            .await
            .0
            .unwrap();
            assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
        }
    }
}

/// Fetches `partition` from offset 0, up to 1.5 MiB, waiting up to `max_wait_ms`.
async fn fetch(b: &Broker, partition: i32, max_wait_ms: i32) -> FetchResponse {
    let mut request = fetch_request("t", partition, 0, max_wait_ms, 1);
    request.topics[0].partitions[0].partition_max_bytes = 3 << 19;
    super::fetch::handle(&ctx(b, 12), request).await
}

fn records_len(r: &FetchResponse) -> usize {
    r.responses[0].partitions[0]
        .records
        .as_ref()
        .map_or(0, |r| r.len())
}

#[tokio::test]
async fn a_fetch_waits_for_room_that_held_records_give_back_when_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker_with_little_fetch_memory(&dir).await;
    fill(&b, 2).await;

    let first = fetch(&b, 0, 0).await;
    let held = records_len(&first);
    assert!(held > 3 * VALUE, "all three batches: {held}");
    assert_eq!(b.fetch_memory.used(), held, "the records hold their size");

    // Less than a batch's worth (1 MiB) is free: the next fetch waits until the first's records
    // are dropped, as when its response has been written.
    let waiting = {
        let b = b.clone();
        tokio::spawn(async move { records_len(&fetch(&b, 1, 10_000).await) })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "{} bytes free", LIMIT - held);
    drop(first);
    let second = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the dropped records woke it")
        .unwrap();
    assert!(second > 3 * VALUE, "{second}");
    assert_eq!(b.fetch_memory.used(), 0, "its records were dropped too");
    assert!(b.fetch_memory.peak() <= LIMIT, "{}", b.fetch_memory.peak());
}

#[tokio::test]
async fn a_fetch_that_finds_no_room_by_its_max_wait_is_answered_without_records() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker_with_little_fetch_memory(&dir).await;
    fill(&b, 2).await;
    let first = fetch(&b, 0, 0).await;
    assert!(records_len(&first) > 0);

    let answered = tokio::time::timeout(Duration::from_secs(5), fetch(&b, 1, 100))
        .await
        .expect("answered at its max.wait.ms");
    let p = &answered.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert_eq!(
        p.high_watermark, 3,
        "the partition's state is still reported"
    );
    assert_eq!(records_len(&answered), 0, "no room, no records");

    drop(first);
    assert!(records_len(&fetch(&b, 1, 0).await) > 0, "the room is back");
}

#[tokio::test]
async fn a_fetch_reads_only_the_room_that_is_free() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker_with_little_fetch_memory(&dir).await;
    fill(&b, 3).await;
    let mut one_batch = fetch_request("t", 0, 0, 0, 1);
    one_batch.topics[0].partitions[0].partition_max_bytes = 500_000;
    let first = super::fetch::handle(&ctx(&b, 12), one_batch).await;
    assert!(records_len(&first) > VALUE && records_len(&first) < 2 * VALUE);
    let free = LIMIT - b.fetch_memory.used();

    // Partitions 1 and 2 at 1.5 MiB each: 2.4 MB is stored, only what is free is read, in
    // whole batches.
    let mut request = fetch_request("t", 1, 0, 0, 1);
    let mut p = request.topics[0].partitions[0].clone();
    p.partition_max_bytes = 3 << 19;
    request.topics[0].partitions = vec![p.clone(), {
        p.partition = 2;
        p
    }];
    let answer = super::fetch::handle(&ctx(&b, 12), request).await;
    let read: usize = answer.responses[0]
        .partitions
        .iter()
        .map(|p| p.records.as_ref().map_or(0, |r| r.len()))
        .sum();
    assert!(read <= free, "read {read} of {free} free");
    assert!(read > 3 * VALUE, "more than one partition was read: {read}");
    drop((first, answer));
    assert_eq!(b.fetch_memory.used(), 0);
}
