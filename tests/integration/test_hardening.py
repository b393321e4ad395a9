"""Limits on every input (the Hardening issue): each test performs an attack against a real
broker process, checks that it is refused or bounded (memory measured from /proc), and that a
healthy producer and consumer are served during and after it with nothing lost."""
from __future__ import annotations

import selectors
import socket
import threading
import time
import urllib.request

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import NewPartitions, NewTopic

import kafka_wire as wire
from harness import admin, consume, create_topic, free_port, produce_all, producer, topic_names, unique

MiB = 1024 * 1024
# A second loopback address for the attacker, so limits per IP address spare the healthy
# client on 127.0.0.1.
ATTACKER = "127.0.0.9"
ERR_INVALID_PARTITIONS = 37
ERR_OFFSET_METADATA_TOO_LARGE = 12


def rss_bytes(broker) -> int:
    with open(f"/proc/{broker.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc status")


def metric(http_port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def healthy_round_trip(broker, topic: str, tag: str) -> None:
    """A producer's record is acknowledged and a consumer reads every record of the topic."""
    produce_all(producer(broker.bootstrap), topic, [{"value": tag.encode()}])
    values = [r.value for r in consume(broker.bootstrap, topic, [0])]
    assert values[-1] == tag.encode(), values[-3:]


def attacker_socket(port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((ATTACKER, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


def wait_closed_by_broker(socks: list[socket.socket], timeout: float) -> int:
    """Waits until the broker has closed every socket (EOF or reset) or `timeout` passes;
    returns how many it closed."""
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    closed = 0
    deadline = time.monotonic() + timeout
    while closed < len(socks) and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.2):
            try:
                data = key.fileobj.recv(4096)
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            except BlockingIOError:
                continue
            if not data:
                sel.unregister(key.fileobj)
                closed += 1
    sel.close()
    return closed


@pytest.fixture
def limited(broker_factory):
    """A broker with small connection limits and its metrics endpoint."""
    http = free_port()
    b = broker_factory(args=[
        "--http-listen", f"127.0.0.1:{http}",
        "--max-connections-per-ip", "200",
        "--connections-max-idle-ms", "3000",
        "--request-read-timeout-ms", "2000",
    ])
    b.http_port = http
    return b


def test_3000_idle_connections_from_one_address_are_capped_then_closed_for_idling(limited):
    topic = unique("idle")
    create_topic(limited.bootstrap, topic)
    before = rss_bytes(limited)
    socks = []
    try:
        for i in range(3000):
            socks.append(attacker_socket(limited.port))
            if i % 50 == 49:
                time.sleep(0.02)  # let the broker accept, so the kernel's accept queue never overflows
        # Everything past the per-address limit is closed as soon as it is accepted...
        refused = wait_closed_by_broker(socks[200:], timeout=20)
        assert refused == 2800, f"{refused} of 2800 connections over the limit closed"
        # ...by the broker (on a loaded machine the kernel may still reset a few of them itself
        # when its accept queue overflows; those never reach the broker).
        assert metric(limited.http_port, "krait_connections_refused_total") >= 2000
        # ...and the healthy client, from another address, is served meanwhile.
        healthy_round_trip(limited, topic, "during")
        grown = rss_bytes(limited) - before
        # ...and the 200 admitted ones once they idled past connections.max.idle.ms.
        idled = wait_closed_by_broker(socks[:200], timeout=15)
        assert idled == 200, f"{idled} of 200 idle connections closed"
        assert metric(limited.http_port, "krait_connections_timed_out_total") >= 200
    finally:
        for s in socks:
            s.close()
    print(f"RSS growth with 3000 connection attempts: {grown / MiB:.1f} MiB")
    assert grown < 64 * MiB
    healthy_round_trip(limited, topic, "after")


def test_500_slowloris_connections_are_closed_by_the_read_timeout(limited):
    topic = unique("slow")
    create_topic(limited.bootstrap, topic)
    # 500 connections from three attacker addresses (the per-address limit is 200), each
    # announcing a 1000-byte frame and then sending one byte every 200 ms: never idle, never done.
    socks = []
    for i in range(500):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((f"127.0.0.{10 + i % 3}", 0))
        s.connect(("127.0.0.1", limited.port))
        s.sendall(wire.i32(1000))
        socks.append(s)
    stop = threading.Event()

    def trickle():
        while not stop.is_set():
            for s in socks:
                try:
                    s.send(b"x")
                except OSError:
                    pass
            stop.wait(0.2)

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    started = time.monotonic()
    try:
        healthy_round_trip(limited, topic, "during")
        closed = wait_closed_by_broker(socks, timeout=20)
        took = time.monotonic() - started
    finally:
        stop.set()
        t.join(5)
        for s in socks:
            s.close()
    assert closed == 500, f"{closed} of 500 slowloris connections closed"
    print(f"500 slowloris connections closed within {took:.1f} s (read timeout 2 s)")
    assert metric(limited.http_port, "krait_connections_timed_out_total") >= 500
    healthy_round_trip(limited, topic, "after")


def test_partition_bomb_is_refused_without_committing_anything(broker_factory):
    b = broker_factory()
    topic = unique("healthy")
    create_topic(b.bootstrap, topic)
    before = rss_bytes(b)
    client = admin(b.bootstrap)
    bomb = unique("bomb")
    started = time.monotonic()
    # Raw CreateTopics v2: librdkafka itself refuses to send more than 100,000 partitions.
    with wire.KafkaConnection(b.bootstrap, timeout=30) as conn:
        body = (wire.array([bomb], lambda name: wire.string(name) + wire.i32(1_000_000) + wire.i16(1)
                           + wire.array([], None) + wire.array([], None))
                + wire.i32(30_000) + wire.i8(0))
        r = conn.recv_response(conn.send_request(19, 2, body))
        r.i32()
        (name, error, message), = r.array(lambda x: (x.string(), x.i16(), x.string()))
    took = time.monotonic() - started
    assert (name, error) == (bomb, ERR_INVALID_PARTITIONS), (name, error, message)
    assert "max-partitions-per-topic" in message
    # Growing a topic past the cap is refused the same way.
    grow = client.create_partitions([NewPartitions(topic, 20_000)], request_timeout=30)
    with pytest.raises(KafkaException) as grown:
        grow[topic].result(30)
    assert grown.value.args[0].code() == ERR_INVALID_PARTITIONS, grown.value
    # Many topics in one request are capped in total.
    many = [NewTopic(unique("many"), num_partitions=5_000, replication_factor=1) for _ in range(3)]
    results = client.create_topics(many, request_timeout=30)
    outcomes = []
    for t in many:
        try:
            results[t.topic].result(30)
            outcomes.append(0)
        except KafkaException as e:
            outcomes.append(e.args[0].code())
    assert outcomes == [0, 0, ERR_INVALID_PARTITIONS], outcomes
    print(f"1,000,000-partition CreateTopics refused in {took:.2f} s; RSS growth "
          f"{(rss_bytes(b) - before) / MiB:.1f} MiB (including two 5,000-partition topics)")
    assert bomb not in topic_names(b.bootstrap)
    healthy_round_trip(b, topic, "before-restart")
    # Nothing of the bomb was committed: a restart after kill -9 replays quickly and serves.
    b.kill9()
    b.start()
    assert bomb not in topic_names(b.bootstrap)
    values = [r.value for r in consume(b.bootstrap, topic, [0])]
    assert values == [b"before-restart"]
    healthy_round_trip(b, topic, "after-restart")


def test_fetch_naming_one_50mb_partition_200_times_is_bounded(broker_factory):
    b = broker_factory()
    big = unique("big")
    create_topic(b.bootstrap, big)
    p = producer(b.bootstrap, **{"linger.ms": 20, "batch.size": 1_000_000})
    value = b"v" * 10_000
    reports = produce_all(p, big, [{"value": value} for _ in range(5_000)], timeout=120)
    assert len(reports) == 5_000
    before = rss_bytes(b)
    with wire.KafkaConnection(b.bootstrap, timeout=60) as conn:
        body_partitions = [(big, 0, 0)] * 200
        result_sizes = []
        for _ in range(2):
            by_topic = wire.array([big], lambda t: wire.string(t) + wire.array(
                body_partitions, lambda po: wire.i32(po[1]) + wire.i64(po[2]) + wire.i32(0x7FFFFFFF)))
            body = wire.i32(-1) + wire.i32(100) + wire.i32(1) + wire.i32(0x7FFFFFFF) + wire.i8(0) + by_topic
            corr = conn.send_request(wire.API_FETCH, 4, body)
            r = conn.recv_response(corr)
            result_sizes.append(len(r.data))
            r.i32()
            topics = r.array(lambda x: (x.string(), x.array(lambda y: (
                y.i32(), y.i16(), y.i64(), y.i64(), y.array(lambda z: (z.i64(), z.i64())), y.nbytes()))))
            assert len(topics) == 1 and len(topics[0][1]) == 1, "the partition is answered once"
            (_, error, hw, _, _, records), = topics[0][1]
            assert error == 0 and hw == 5_000
    grown = rss_bytes(b) - before
    print(f"Fetch of one 50 MB partition named 200 times: responses {[s // MiB for s in result_sizes]} MiB, "
          f"RSS growth {grown / MiB:.0f} MiB")
    # fetch.max.bytes (55 MiB) plus at most one batch past it.
    assert all(s <= 57 * MiB for s in result_sizes), result_sizes
    assert grown < 400 * MiB
    assert len(consume(b.bootstrap, big, [0], expected=5_000)) == 5_000


def offset_commit_v8(group: str, topic: str, offset: int, metadata: str) -> bytes:
    partition = (wire.i32(0) + wire.i64(offset) + wire.i32(-1) + wire.compact_string(metadata)
                 + wire.uvarint(0))
    topics = wire.uvarint(2) + wire.compact_string(topic) + wire.uvarint(2) + partition + wire.uvarint(0)
    return (wire.compact_string(group) + wire.i32(-1) + wire.compact_string("")
            + wire.compact_string(None) + topics + wire.uvarint(0))


def commit(conn, group: str, topic: str, offset: int, metadata: str) -> int:
    corr = conn.send_request(8, 8, offset_commit_v8(group, topic, offset, metadata), flexible_header=True)
    r = conn.recv_response(corr, flexible_header=True)
    r.i32()
    assert r.uvarint() == 2 and r.take(r.uvarint() - 1).decode() == topic
    assert r.uvarint() == 2
    assert r.i32() == 0
    return r.i16()


def fetch_committed_v1(conn, group: str, topic: str) -> tuple[int, str, int]:
    body = wire.string(group) + wire.array([topic], lambda t: wire.string(t) + wire.array([0], wire.i32))
    corr = conn.send_request(9, 1, body)
    r = conn.recv_response(corr)
    (name, parts), = r.array(lambda x: (x.string(), x.array(lambda y: (y.i32(), y.i64(), y.string(), y.i16()))))
    (_, offset, metadata, error), = parts
    return offset, metadata, error


def test_offset_commit_with_10mib_of_metadata_is_refused_and_offset_fetch_keeps_working(broker_factory):
    b = broker_factory()
    topic = unique("commits")
    create_topic(b.bootstrap, topic)
    group = unique("group")
    before = rss_bytes(b)
    with wire.KafkaConnection(b.bootstrap, timeout=30) as conn:
        assert commit(conn, group, topic, 7, "m" * 4096) == 0, "4096 bytes, Kafka's default limit, is fine"
        assert commit(conn, group, topic, 9, "x" * (10 * MiB)) == ERR_OFFSET_METADATA_TOO_LARGE
        assert commit(conn, group, topic, 11, "y" * 4097) == ERR_OFFSET_METADATA_TOO_LARGE
        # OffsetFetch v1 (a 16-bit string length) still answers, with the last accepted commit.
        assert fetch_committed_v1(conn, group, topic) == (7, "m" * 4096, 0)
    print(f"RSS growth after a 10 MiB OffsetCommit: {(rss_bytes(b) - before) / MiB:.1f} MiB")
    healthy_round_trip(b, topic, "after")
