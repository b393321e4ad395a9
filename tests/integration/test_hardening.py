"""Limits on every input (the Hardening issue): each test performs an attack against a real
broker process, checks that it is refused or bounded (memory measured from /proc), and that a
healthy producer and consumer are served during and after it with nothing lost."""
from __future__ import annotations

import os
import selectors
import shutil
import socket
import struct
import subprocess
import threading
import time
import urllib.request

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import NewPartitions, NewTopic

import kafka_wire as wire
from harness import (admin, consume, create_topic, free_port, produce_all, producer, topic_names, unique,
                     wait_until)

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
    """The metric's value summed over its label sets (per listener, say)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as r:
        values = [float(line.split()[-1]) for line in r.read().decode().splitlines()
                  if line.startswith((name + " ", name + "{"))]
    if not values:
        raise AssertionError(f"{name} not in /metrics")
    return sum(values)


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
        # The broker counts a connection after closing it: the count follows the close.
        wait_until(lambda: metric(limited.http_port, "krait_connections_timed_out_total") >= 200, 5,
                   "200 idle connections counted as timed out")
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
    wait_until(lambda: metric(limited.http_port, "krait_connections_timed_out_total") >= 500, 5,
               "500 slow connections counted as timed out")
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


def status_bytes(broker, field: str) -> int:
    with open(f"/proc/{broker.proc.pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc status")


# Request frames (without their length prefix) that claim billions of elements in a few bytes.
# Header v1: api key, version, correlation id, client id; v2 adds tagged fields (0).
ELEMENT_BOMBS = {
    "DeleteTopics v1: 2^31 topic names (64 GiB decoded)":
        struct.pack(">hhih", 20, 1, 1, -1) + struct.pack(">i", 0x7FFFFFFF) + b"\x00\x01t",
    "Metadata v12: 2^32 topics, compact count":
        struct.pack(">hhih", 3, 12, 2, -1) + b"\x00" + b"\xff\xff\xff\xff\x0f" + bytes(24),
    "Produce v9: 2^28 topics":
        struct.pack(">hhih", 0, 9, 3, -1) + b"\x00" + b"\x00" + struct.pack(">hi", -1, 30000)
        + b"\xff\xff\xff\x7f" + bytes(16),
    "Fetch v4: one topic of 2^31 partitions":
        struct.pack(">hhih", 1, 4, 4, -1) + struct.pack(">iiiib", -1, 500, 1, 1 << 20, 0)
        + struct.pack(">ih", 1, 1) + b"t" + struct.pack(">i", 0x7FFFFFFF) + bytes(16),
}


def test_requests_claiming_billions_of_elements_are_refused_with_writable_memory_capped(broker_factory):
    """The codec sizes arrays from the count a request claims; the broker decodes each request
    within a budget its size sets (krait_protocol::budget). The broker runs with its writable
    memory capped (RLIMIT_DATA, which the kernel enforces as strict overcommit would): serving
    any bomb's claim, even lazily, would abort it."""
    cap = 1024 * MiB
    b = broker_factory(command_prefix=["prlimit", f"--data={cap}"])
    topic = unique("bombs")
    create_topic(b.bootstrap, topic)
    healthy_round_trip(b, topic, "before")
    data_before, rss_before = status_bytes(b, "VmData"), rss_bytes(b)
    print(f"broker VmData {data_before / MiB:.0f} MiB of the {cap / MiB:.0f} MiB cap")
    for round_ in range(25):
        for name, frame in ELEMENT_BOMBS.items():
            conn = wire.KafkaConnection(b.bootstrap, timeout=10)
            conn.send_frame(frame)
            assert conn.closed_by_peer(10), f"{name}: the connection is closed"
        b.assert_alive()
    grown = rss_bytes(b) - rss_before
    print(f"after {25 * len(ELEMENT_BOMBS)} bombs: VmData {status_bytes(b, 'VmData') / MiB:.0f} MiB, "
          f"RSS +{grown / MiB:.1f} MiB")
    assert grown < 64 * MiB, f"RSS grew by {grown / MiB:.1f} MiB"
    healthy_round_trip(b, topic, "after")
    assert "claims more than its" in b.log_text(), "the log says why the requests were refused"


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


def reset_peak_rss(broker) -> None:
    """Resets the broker's peak RSS (VmHWM) to its current RSS: a short-lived allocation shows in
    the peak even after it is freed."""
    with open(f"/proc/{broker.proc.pid}/clear_refs", "w") as f:
        f.write("5")


def peak_rss_bytes(broker) -> int:
    with open(f"/proc/{broker.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def test_zstd_bomb_is_refused_and_list_offsets_by_time_walks_a_large_batch_as_a_stream(broker_factory):
    b = broker_factory()
    topic = unique("zstd")
    create_topic(b.bootstrap, topic)
    now = int(time.time() * 1000)
    bomb = wire.zstd_bomb(1 << 30, now)
    assert len(bomb) < MiB, len(bomb)
    n = 50_000
    # ~51 MiB of records (under the 64 MiB bound) that zstd shrinks to a few hundred KB, each
    # record a millisecond newer than the one before.
    big = wire.record_batch([wire.Record(key=None, value=bytes(1024), timestamp_delta=i) for i in range(n)],
                            base_timestamp=now, attributes=4)
    with wire.KafkaConnection(b.bootstrap, timeout=60) as conn:
        reset_peak_rss(b)
        before = rss_bytes(b)
        started = time.monotonic()
        assert wire.produce(conn, topic, 0, bomb).error_code == wire.ERR_MESSAGE_TOO_LARGE
        refused_in = time.monotonic() - started
        bomb_peak = peak_rss_bytes(b) - before

        assert wire.produce(conn, topic, 0, big).error_code == wire.ERR_NONE
        reset_peak_rss(b)
        before = rss_bytes(b)
        assert wire.list_offsets(conn, topic, 0, now + 1234) == (0, now + 1234, 1234)
        assert wire.list_offsets(conn, topic, 0, now + n - 1) == (0, now + n - 1, n - 1)
        assert wire.list_offsets(conn, topic, 0, now + n)[2] == -1, "no record is that new"
        lookup_peak = peak_rss_bytes(b) - before

        fetched = wire.fetch(conn, [(topic, 0, 0)])[(topic, 0)]
        assert (fetched.error_code, fetched.high_watermark) == (0, n)
        # The batch comes back as it was sent, but for the leader epoch the broker stamps.
        assert len(fetched.records) == len(big) and fetched.records[16:] == big[16:]
    print(f"1 GiB zstd bomb ({len(bomb)} bytes) refused in {refused_in:.2f} s, peak RSS growth "
          f"{bomb_peak / MiB:.1f} MiB; ListOffsets by time in a {len(big) // 1024} KB batch of 51 MiB "
          f"of records: peak RSS growth {lookup_peak / MiB:.1f} MiB")
    assert bomb_peak < 64 * MiB
    assert lookup_peak < 32 * MiB
    healthy_round_trip(b, topic, "after")


def test_a_full_disk_stops_the_broker_and_no_acknowledged_record_is_lost(broker_factory, tmp_path):
    """The data directory on a 48 MiB tmpfs: produce incompressible batches until a write fails.
    The broker must stop (exit non-zero, saying why) rather than serve on a store whose last
    write half happened; a copy of the directory then opens with every acknowledged record."""
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(small)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"a full disk needs a small tmpfs, and mounting one failed: {mounted.stderr.strip()}")
    try:
        b = broker_factory(data_dir=small / "data")
        topic = unique("full")
        create_topic(b.bootstrap, topic)
        acked: list[bytes] = []
        refused = 0
        with wire.KafkaConnection(b.bootstrap, timeout=30) as conn:
            for n in range(240):  # 120 MiB offered to a 48 MiB disk, 512 KiB per batch
                values = [n.to_bytes(4, "big") + i.to_bytes(4, "big") + os.urandom(128 * 1024) for i in range(4)]
                batch = wire.record_batch([wire.Record(key=None, value=v) for v in values])
                try:
                    result = wire.produce(conn, topic, 0, batch)
                except (wire.ConnectionClosed, OSError):
                    break
                if result.error_code == wire.ERR_NONE:
                    acked.extend(values)
                else:
                    refused += 1
                    if not b.alive():
                        break
        wait_until(lambda: b.proc.poll() is not None, timeout=30, what="the broker to stop after the failed write")
        code = b.proc.returncode
        log = b.log_text()
        assert code != 0, log[-2000:]
        assert "No space left on device" in log and "offline" in log, log[-3000:]
        assert 0 < len(acked) < 240 * 4, f"{len(acked)} acknowledged, {refused} refused"
        rescued = tmp_path / "rescued"
        shutil.copytree(small / "data", rescued)
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)

    again = broker_factory(data_dir=rescued)
    values = [r.value for r in consume(again.bootstrap, topic, [0], timeout=60)]
    missing = set(acked) - set(values)
    print(f"full disk: {len(acked)} records acknowledged ({len(acked) * 128 // 1024} MiB), {refused} batches "
          f"refused, broker exited {code}; after restart on a copy: {len(values)} records, {len(missing)} missing")
    assert not missing, f"{len(missing)} acknowledged records lost"
    healthy_round_trip(again, topic, "after")
