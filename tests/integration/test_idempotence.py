"""Idempotent producers: the default kafka-python producer, librdkafka with
enable.idempotence, retries across a kill -9 of the broker that neither lose nor duplicate a
record, and producer ids unique across the brokers of a cluster and their restarts."""
from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Producer

import kafka_wire as wire

from harness import consume, kp_consume, wait_until


def test_default_kafka_python_producer_is_idempotent_and_works(broker, topic):
    from kafka import KafkaProducer

    t = topic(partitions=2)
    p = KafkaProducer(bootstrap_servers=broker.bootstrap)  # idempotent, acks=all by default
    assert p.config["enable_idempotence"] is True
    metadata = [p.send(t, f"v{i}".encode(), partition=i % 2).get(timeout=30) for i in range(500)]
    p.close()
    assert sorted(m.offset for m in metadata if m.partition == 0) == list(range(250))
    records = kp_consume(broker.bootstrap, t, [0, 1], expected=500)
    assert sorted(r.value for r in records) == sorted(f"v{i}".encode() for i in range(500))


def test_librdkafka_idempotent_producer_writes_each_record_exactly_once(broker, topic):
    t = topic(partitions=3)
    p = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "linger.ms": 2,
                  "batch.num.messages": 200, "max.in.flight.requests.per.connection": 5})
    n = 30_000
    for i in range(n):
        while True:
            try:
                p.produce(t, str(i).encode(), partition=i % 3)
                break
            except BufferError:
                p.poll(0.01)
    assert p.flush(60) == 0
    records = consume(broker.bootstrap, t, [0, 1, 2], expected=n)
    values = sorted(int(r.value) for r in records)
    assert values == list(range(n)), "every record exactly once"
    for part in range(3):
        offsets = [r.offset for r in records if r.partition == part]
        assert offsets == list(range(len(offsets))), f"partition {part} offsets contiguous"


def test_idempotent_retries_across_kill9_neither_lose_nor_duplicate(broker, topic):
    """100k keyed records from an idempotent producer while the broker is killed with -9 and
    restarted mid-stream. librdkafka retries what was not answered; the persisted producer
    state recognises the batches that did reach the log, so every acknowledged record is there
    exactly once, and each key's records are in the order they were sent."""
    t = topic(partitions=4)
    n, keys = 100_000, 64
    acked: list[int] = []
    errors: list[str] = []

    def on_delivery(err, msg):
        if err is None:
            acked.append(int(msg.value()))
        else:
            errors.append(str(err))

    p = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "linger.ms": 5,
                  "batch.num.messages": 1000, "message.timeout.ms": 120_000, "retry.backoff.ms": 100,
                  "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500})
    killed = threading.Event()

    def killer():
        wait_until(lambda: len(acked) >= 20_000, 60, "20000 acknowledged records before the kill")
        broker.kill9()
        killed.set()
        broker.restart()

    k = threading.Thread(target=killer, daemon=True)
    k.start()
    for i in range(n):
        while True:
            try:
                p.produce(t, str(i).encode(), key=f"k{i % keys}".encode(), on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.01)
        p.poll(0)
    remaining = p.flush(150)
    k.join(timeout=90)
    assert killed.is_set(), "the broker was killed mid-stream"
    assert remaining == 0 and not errors, f"{remaining} undelivered, errors: {errors[:3]}"
    print(f"\nacknowledged {len(acked)} of {n} records across a kill -9")
    records = consume(broker.bootstrap, t, [0, 1, 2, 3], expected=n, timeout=90)
    values = [int(r.value) for r in records]
    assert len(values) == len(set(values)), f"{len(values) - len(set(values))} duplicates"
    assert sorted(values) == sorted(acked) == list(range(n)), "every acknowledged record exactly once"
    by_key: dict[bytes, list[int]] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_key.setdefault(r.key, []).append(int(r.value))
    assert len(by_key) == keys
    for key, vals in by_key.items():
        assert vals == sorted(vals), f"records of key {key!r} out of order"


@pytest.mark.cluster
def test_producer_ids_are_unique_across_brokers_and_restarts(cluster_factory):
    """Each broker hands out ids from its own block of the cluster's counter: two producers
    initialised on different brokers never share an id (which would mix their sequence numbers
    on a partition), and a restarted broker takes a new block instead of reusing its old one."""
    cluster = cluster_factory(size=3)

    def ids_from_every_broker() -> list[int]:
        ids = []
        for node in cluster.nodes.values():
            with wire.KafkaConnection(node.bootstrap) as conn:
                for _ in range(3):
                    error, producer_id, epoch = wire.init_producer_id(conn)
                    assert (error, epoch) == (0, 0), f"{node}: error {error}"
                    ids.append(producer_id)
        return ids

    before = ids_from_every_broker()
    print(f"producer ids by broker: {before}")
    assert len(set(before)) == len(before), before
    assert min(before) >= 1 << 48, "ids come from the cluster's counter"
    restarted = next(iter(cluster.nodes))
    cluster.kill9(restarted)
    cluster.restart(restarted)
    after = ids_from_every_broker()
    print(f"after broker {restarted} restarted: {after}")
    assert len(set(before + after)) == len(before) + len(after)
