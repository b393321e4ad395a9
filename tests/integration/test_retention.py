"""Retention: time and size limits delete whole batches in the background, the log start
offset advances durably, and consumers behind it reset the way Kafka clients do."""
from __future__ import annotations

import time

from confluent_kafka import KafkaError, TopicPartition

from harness import admin, consume, consumer, create_topic, produce_all, producer, unique, wait_until, watermarks
from ports import free_port
from test_metrics import scrape, value

FAST_RETENTION = ["--retention-check-interval-ms", "200"]


def old_records(n: int, age_ms: int = 3_600_000) -> list[dict]:
    ts = int(time.time() * 1000) - age_ms
    return [{"value": f"old{i}".encode(), "timestamp": ts} for i in range(n)]


def test_expired_batches_are_deleted_and_the_log_start_advances(broker_factory):
    b = broker_factory(args=FAST_RETENTION)
    t = create_topic(b.bootstrap, unique("ret"), config={"retention.ms": "60000"})
    produce_all(producer(b.bootstrap), t, old_records(100))
    fresh = [{"value": f"new{i}".encode()} for i in range(10)]
    produce_all(producer(b.bootstrap), t, fresh)
    low, high = wait_until(lambda: (lambda w: w if w[0] >= 100 else None)(watermarks(b.bootstrap, t, 0)), 30,
                           "retention to delete the hour-old batches")
    assert (low, high) == (100, 110), "only the expired batches go; the fresh ones stay"
    records = consume(b.bootstrap, t, [0], expected=10)
    assert [r.value for r in records] == [f"new{i}".encode() for i in range(10)]
    b.restart()
    assert watermarks(b.bootstrap, t, 0) == (100, 110), "the log start offset is durable"


def test_consumer_below_log_start_gets_out_of_range_and_resets(broker_factory):
    b = broker_factory(args=FAST_RETENTION)
    t = create_topic(b.bootstrap, unique("ret"), config={"retention.ms": "60000"})
    produce_all(producer(b.bootstrap), t, old_records(50))
    wait_until(lambda: watermarks(b.bootstrap, t, 0)[0] == 50, 30, "retention to delete everything")
    produce_all(producer(b.bootstrap), t, [{"value": b"after"}])
    # auto.offset.reset=error surfaces Kafka's OFFSET_OUT_OF_RANGE to the application.
    c = consumer(b.bootstrap, **{"auto.offset.reset": "error", "enable.partition.eof": False})
    try:
        c.assign([TopicPartition(t, 0, 10)])
        err = wait_until(lambda: next((m.error() for m in c.consume(10, 0.5) if m.error()), None), 20,
                         "an offset-out-of-range error")
        assert err.code() == KafkaError._AUTO_OFFSET_RESET, err
    finally:
        c.close()
    # auto.offset.reset=earliest resumes from the log start.
    records = consume(b.bootstrap, t, [0], expected=1, start=10)
    assert (records[0].offset, records[0].value) == (50, b"after")


def test_size_limit_keeps_at_least_retention_bytes(broker_factory):
    b = broker_factory(args=FAST_RETENTION)
    t = create_topic(b.bootstrap, unique("ret"), config={"retention.bytes": "20000", "retention.ms": "-1"})
    p = producer(b.bootstrap, linger_ms=0)
    for i in range(60):  # one ~1 KB batch per flush
        produce_all(p, t, [{"value": bytes([i % 256]) * 1000}])
    # Each batch is 1000 bytes of value plus ~70 of batch and record overhead: Kafka's rule keeps
    # the fewest newest batches that still hold at least retention.bytes, i.e. 19 of them.
    low, high = wait_until(lambda: (lambda w: w if w[1] - w[0] <= 19 else None)(watermarks(b.bootstrap, t, 0)), 30,
                           "retention.bytes to delete down to the limit")
    assert (low, high) == (41, 60)


def test_a_deleted_topics_disk_space_comes_back_though_it_shared_files_with_a_live_topic(broker_factory):
    """Batches of 4 KiB and more live in RocksDB blob files, and each file holds what every
    partition wrote while it filled: deleting one topic leaves each file partly live. The next
    retention check compacts the deleted range and, with the deleted batches over half of the
    files' bytes (and over --storage-reclaim-min-mb), moves the live batches to new files so the
    old ones go."""
    http = free_port()
    b = broker_factory(args=FAST_RETENTION + ["--storage-reclaim-min-mb", "1", "--http-listen", f"127.0.0.1:{http}"])
    gone, kept = create_topic(b.bootstrap, unique("gone")), create_topic(b.bootstrap, unique("kept"))

    def metric(name: str) -> float:
        return value(scrape(http), name)

    # Three records to the topic deleted for each one to the topic kept, 64 MiB in all: many
    # memtable flushes, each into a blob file holding both topics.
    p = producer(b.bootstrap, linger_ms=20, batch_size=256 * 1024)
    kept_values = [i.to_bytes(4, "big") * 256 for i in range(16384)]
    for i, v in enumerate(kept_values):
        for _ in range(3):
            p.produce(gone, bytes(1024))
        p.produce(kept, v)
        if i % 512 == 511:
            p.flush(30)
    assert p.flush(30) == 0
    stored = wait_until(lambda: (lambda n: n if n >= 32 << 20 else None)(metric("krait_rocksdb_blob_files_bytes")),
                        30, "the batches flushed to blob files")

    admin(b.bootstrap).delete_topics([gone], operation_timeout=10)[gone].result(timeout=10)
    left = wait_until(lambda: (lambda n: n if n < stored * 0.4 else None)(metric("krait_rocksdb_blob_files_bytes")),
                      60, f"the deleted topic's space back (blob files held {stored:.0f} bytes)")
    print(f"blob files: {stored:.0f} bytes with both topics, {left:.0f} after the delete")
    assert metric("krait_rocksdb_blob_garbage_bytes") < 1 << 20, "no deleted batch is left on disk"
    assert left >= 4 << 20, f"the live topic's batches are still in blob files: {left:.0f} bytes"
    records = consume(b.bootstrap, kept, [0], expected=len(kept_values))
    assert [r.value for r in records] == kept_values, "the live topic's records were moved intact"
    b.restart()
    records = consume(b.bootstrap, kept, [0], expected=len(kept_values))
    assert [r.value for r in records] == kept_values, "and read back after a restart"
