"""Fetch from follower (KIP-392) on a real three-broker cluster, one rack per broker: with
`--replica-selector rack-aware`, a confluent-kafka consumer that gives its `client.rack` reads
from the in-sync replica in that rack, every record in order; one without stays on the leader.
The evidence is librdkafka's own per-broker byte counters (what librdkafka's 0101 checks)."""
from __future__ import annotations

import json
import time

from confluent_kafka import Consumer

from harness import produce_all, producer, unique

RECORDS = 2000
SIZE = 100


def consume_counting_bytes(bootstrap: str, topic: str, **conf) -> dict[int, int]:
    """Consumes the topic from the start and returns librdkafka's rxbytes per broker id."""
    stats: dict[int, int] = {}

    def on_stats(raw: str) -> None:
        for b in json.loads(raw)["brokers"].values():
            if b.get("nodeid", -1) >= 0:
                stats[b["nodeid"]] = b["rxbytes"]

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("fff"), "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "statistics.interval.ms": 200, "stats_cb": on_stats, **conf})
    try:
        c.subscribe([topic])
        seen = []
        deadline = time.monotonic() + 60
        while len(seen) < RECORDS and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None or m.error():
                assert m is None or m.error().retriable() or m.error().name() == "_PARTITION_EOF", m.error()
                continue
            seen.append(int(m.value()[:8]))
        assert seen == list(range(RECORDS)), f"read {len(seen)} of {RECORDS}, in order: {seen[:5]}..."
        stats.clear()
        deadline = time.monotonic() + 10
        while not stats and time.monotonic() < deadline:
            c.poll(0.2)
        assert stats, "no statistics arrived"
        return dict(stats)
    finally:
        c.close()


def test_a_consumer_reads_from_the_replica_in_its_rack_and_one_without_a_rack_from_the_leader(cluster_factory):
    c = cluster_factory(3, node_args=lambda _: ["--replica-selector", "rack-aware"])
    topic = c.create_topic(name=unique("fff"), replica_assignment=[[1, 2, 3]])
    c.wait_fully_replicated(topic, timeout=60)
    reports = produce_all(producer(c.bootstrap, acks="all"), topic,
                          [{"value": f"{i:08d}".encode().ljust(SIZE, b".")} for i in range(RECORDS)])
    assert all(r.error is None for r in reports)
    assert c.view([topic]).leaders(topic) == {0: 1}

    near = consume_counting_bytes(c.bootstrap, topic, **{"client.rack": "rack2"})
    assert near.get(2, 0) > RECORDS * SIZE, near
    assert near.get(2, 0) > max(near.get(1, 0), near.get(3, 0)), f"broker 2 (rack2) served most: {near}"

    plain = consume_counting_bytes(c.bootstrap, topic)
    assert plain.get(1, 0) > RECORDS * SIZE, plain
    assert plain.get(1, 0) > max(plain.get(2, 0), plain.get(3, 0)), f"the leader served most: {plain}"
    print(f"rxbytes by broker: client.rack=rack2 {near}; no client.rack {plain}")
