"""Log compaction and DeleteRecords with real clients: a compacted topic keeps the latest value
of each key at its original offset, tombstones last delete.retention.ms, a follower that fetches
across compacted ranges ends up with the same log, and DeleteRecords moves the log start on the
leader and its followers."""
from __future__ import annotations

import random
import re

from confluent_kafka import TopicPartition

from harness import (admin, consume, create_topic, produce_all, producer, unique, wait_until,
                     watermarks)

FAST_CLEANER = ["--retention-check-interval-ms", "200", "--log-cleaner-backoff-ms", "200"]
COMPACT = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01"}
SENTINEL = b"sentinel"


def updates(n: int, keys: int, deleted: set[int], seed: int = 7) -> list[dict]:
    """`n` updates over `keys` keys, then a tombstone for each key in `deleted`."""
    rng = random.Random(seed)
    out = [{"key": f"k{rng.randrange(keys)}".encode(), "value": f"v{i}".encode()} for i in range(n)]
    out += [{"key": f"k{k}".encode(), "value": None} for k in sorted(deleted)]
    return out


def latest(messages: list[dict], offsets: list[int]) -> dict[bytes, tuple[int, bytes | None]]:
    """The latest (offset, value) of each key, as compaction must leave it."""
    out: dict[bytes, tuple[int, bytes | None]] = {}
    for m, offset in zip(messages, offsets):
        out[m["key"]] = (offset, m["value"])
    return out


def produce_with_sentinel(bootstrap: str, topic: str, messages: list[dict], **conf) -> list[int]:
    """Produces `messages`, then one more record in a batch of its own: Krait never compacts a
    log's last batch (its active segment), so the sentinel keeps every update cleanable."""
    p = producer(bootstrap, **conf)
    reports = produce_all(p, topic, messages)
    assert all(r.error is None for r in reports), [r.error for r in reports if r.error][:3]
    produce_all(p, topic, [{"key": SENTINEL, "value": SENTINEL}])
    return [r.offset for r in reports]


def read_back(bootstrap: str, topic: str) -> dict[bytes, list[tuple[int, bytes | None]]]:
    """Every record a fresh consumer reads from the start, by key."""
    out: dict[bytes, list[tuple[int, bytes | None]]] = {}
    for r in consume(bootstrap, topic, [0]):
        out.setdefault(r.key, []).append((r.offset, r.value))
    return out


def compacted(bootstrap: str, topic: str, expected: dict, timeout: float = 60) -> dict:
    """Waits until a fresh consumer reads exactly `expected` (one record per key) plus the
    sentinel; returns what it read."""
    want = {k: [v] for k, v in expected.items()}

    def done():
        got = read_back(bootstrap, topic)
        got.pop(SENTINEL, None)
        return got if got == want else None

    return wait_until(done, timeout, f"{topic} to be compacted to the latest value of each key", interval=0.5)


def cleaned_mb_per_s(log: str) -> list[str]:
    return re.findall(r"compacted.*?mb_per_s=([0-9.]+)", log)


def test_a_compacted_topic_keeps_the_latest_value_of_each_key_at_its_offset(broker_factory):
    b = broker_factory(args=[*FAST_CLEANER, "--log-cleaner-io-max-bytes-per-second", "0"])
    deleted = set(range(0, 200, 10))
    messages = updates(20_000, 200, deleted)
    # Tombstones kept for an hour: the deleted keys still show, as tombstones.
    kept = create_topic(b.bootstrap, unique("compact"), config={**COMPACT, "delete.retention.ms": "3600000"})
    offsets = produce_with_sentinel(b.bootstrap, kept, messages)
    compacted(b.bootstrap, kept, latest(messages, offsets))
    # Tombstones kept for a second, and batches compressed: the deleted keys are gone.
    gone = create_topic(b.bootstrap, unique("compact"), config={**COMPACT, "delete.retention.ms": "1000"})
    offsets = produce_with_sentinel(b.bootstrap, gone, messages, compression_type="zstd")
    expected = {k: v for k, v in latest(messages, offsets).items() if v[1] is not None}
    assert len(expected) == 180
    compacted(b.bootstrap, gone, expected)
    low, high = watermarks(b.bootstrap, gone, 0)
    assert (low, high) == (0, len(messages) + 1), "compaction never moves the log start or end"
    print(f"compaction passes (MB/s read): {cleaned_mb_per_s(b.log_text())}")
    b.restart()
    compacted(b.bootstrap, gone, expected, timeout=30)


def test_cleanup_policy_compact_delete_is_accepted_and_altered(broker_factory):
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    b = broker_factory(args=FAST_CLEANER)
    t = create_topic(b.bootstrap, unique("policy"), config={"cleanup.policy": "compact,delete"})
    a = admin(b.bootstrap)
    resource = ConfigResource(ConfigResource.Type.TOPIC, t)
    described = a.describe_configs([resource])[resource].result(timeout=10)
    assert described["cleanup.policy"].value == "compact,delete"
    change = ConfigResource(ConfigResource.Type.TOPIC, t, incremental_configs=[
        ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SUBTRACT)])
    a.incremental_alter_configs([change])[change].result(timeout=10)
    described = a.describe_configs([resource])[resource].result(timeout=10)
    assert described["cleanup.policy"].value == "compact"


def test_delete_records_moves_the_log_start_and_consumers_start_there(broker_factory):
    b = broker_factory()
    t = create_topic(b.bootstrap, unique("delrec"))
    produce_all(producer(b.bootstrap), t, [{"value": f"m{i}".encode()} for i in range(100)])
    a = admin(b.bootstrap)
    futures = a.delete_records([TopicPartition(t, 0, 40)])
    result = futures[TopicPartition(t, 0)].result(timeout=10)
    assert result.low_watermark == 40
    assert watermarks(b.bootstrap, t, 0) == (40, 100)
    records = consume(b.bootstrap, t, [0])
    assert [r.offset for r in records] == list(range(40, 100))
    assert records[0].value == b"m40"
    # Past the high watermark is refused; -1 (OFFSET_END) means the high watermark.
    refused = a.delete_records([TopicPartition(t, 0, 1000)])[TopicPartition(t, 0)]
    assert refused.exception(timeout=10) is not None
    b.restart()
    assert watermarks(b.bootstrap, t, 0) == (40, 100), "the new log start is durable"


def test_a_follower_fetching_across_compacted_ranges_serves_the_same_records(cluster_factory):
    c = cluster_factory(3, node_args=lambda _: FAST_CLEANER + ["--log-cleaner-io-max-bytes-per-second", "0"])
    topic = c.create_topic(replica_assignment=[[2, 3]], config={
        **COMPACT, "delete.retention.ms": "1000", "min.insync.replicas": "1"})
    c.kill9(3)  # the follower misses everything below
    deleted = set(range(0, 1000, 10))
    messages = updates(100_000, 1000, deleted)
    offsets = produce_with_sentinel(c.bootstrap, topic, messages, acks=1, compression_type="lz4",
                                    linger_ms=20)
    wait_until(lambda: cleaned_mb_per_s(c.node(2).broker.log_text()), 60, "the leader to compact")
    deleted_to = 10
    a = admin(c.bootstrap)
    assert a.delete_records([TopicPartition(topic, 0, deleted_to)])[TopicPartition(topic, 0)] \
        .result(timeout=10).low_watermark == deleted_to
    c.restart(3)
    c.wait_fully_replicated(topic, timeout=60)
    c.kill9(2)  # broker 3, which fetched across the leader's compacted ranges, takes over
    c.wait_for(lambda views: all(v.partition(topic, 0) and v.partition(topic, 0).leader == 3
                                 for n, v in views.items() if n != 2),
               30, "broker 3 to lead", topics=[topic])
    expected = {k: v for k, v in latest(messages, offsets).items() if v[1] is not None and v[0] >= deleted_to}
    compacted(c.bootstrap, topic, expected, timeout=90)
    assert watermarks(c.bootstrap, topic, 0) == (deleted_to, len(messages) + 1), \
        "the follower took the leader's log start"
    print(f"leader passes (MB/s read): {cleaned_mb_per_s(c.node(2).broker.log_text())}; "
          f"follower passes: {cleaned_mb_per_s(c.node(3).broker.log_text())}")


def test_a_compacted_topic_refuses_records_without_a_key(broker_factory):
    b = broker_factory()
    t = create_topic(b.bootstrap, unique("compact"), config=COMPACT)
    [report] = produce_all(producer(b.bootstrap, retries=0), t, [{"value": b"no key"}])
    assert report.error is not None and report.error.name() == "INVALID_RECORD", report.error


def test_offset_delete_removes_a_groups_committed_offset_for_one_partition(broker_factory):
    """OffsetDelete (API 47) through kafka-python's admin client; confluent-kafka has none."""
    from confluent_kafka import Consumer
    from kafka import TopicPartition as KTopicPartition
    from kafka.admin import KafkaAdminClient
    from kafka.errors import NoError

    b = broker_factory()
    t = create_topic(b.bootstrap, unique("offdel"), partitions=2)
    group = unique("g")
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(t, 0, 5), TopicPartition(t, 1, 7)], asynchronous=False)
    finally:
        c.close()
    a = KafkaAdminClient(bootstrap_servers=b.bootstrap)
    try:
        result = a.delete_group_offsets(group, [KTopicPartition(t, 0)])
        assert result == {KTopicPartition(t, 0): NoError}
        left = a.list_group_offsets(group)[group]
    finally:
        a.close()
    assert {(tp.partition, o.offset) for tp, o in left.items() if tp.topic == t} == {(1, 7)}


def test_compaction_removes_aborted_transactions_and_then_their_markers(broker_factory):
    """A compacted topic written in transactions (3 committed, 2 aborted, over the same 10 keys):
    the aborted records and the superseded committed ones go, then the markers of the
    transactions left without records; either isolation level reads the last commit only."""
    from confluent_kafka import Producer

    b = broker_factory(args=[*FAST_CLEANER, "--log-cleaner-io-max-bytes-per-second", "0"])
    t = create_topic(b.bootstrap, unique("txn-compact"), config={**COMPACT, "delete.retention.ms": "1000"})
    p = Producer({"bootstrap.servers": b.bootstrap, "transactional.id": unique("tx"), "linger.ms": 5})
    p.init_transactions(30)
    for n, commit in enumerate([True, False, True, False, True]):
        p.begin_transaction()
        for k in range(10):
            p.produce(t, f"t{n}".encode(), key=f"k{k}".encode(), partition=0)
        p.flush(30)
        (p.commit_transaction if commit else p.abort_transaction)(30)
    produce_with_sentinel(b.bootstrap, t, [])
    # Transaction n holds offsets 11n..11n+9 and its marker 11n+10; the sentinel is at 55.
    expected = {f"k{k}".encode(): (44 + k, b"t4") for k in range(10)}
    compacted(b.bootstrap, t, expected)
    committed = consume(b.bootstrap, t, [0], isolation_level="read_committed")
    assert {r.key: (r.offset, r.value) for r in committed if r.key != SENTINEL} == expected

    def removed():
        return sum(int(n) for n in re.findall(r"compacted.*?records_removed=(\d+)", b.log_text()))

    # 40 records (t0 and t2 superseded, t1 and t3 aborted), then the markers of t0 to t3 once
    # delete.retention.ms (1 s) has passed; t4's marker stays with its records.
    wait_until(lambda: removed() == 44 or None, 30, "the four markers without records to go", interval=0.5)
    assert watermarks(b.bootstrap, t, 0) == (0, 56), "offsets never change"
    assert {r.key: (r.offset, r.value) for r in consume(b.bootstrap, t, [0], isolation_level="read_committed")
            if r.key != SENTINEL} == expected
