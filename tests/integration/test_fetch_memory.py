"""fetch.memory.max.bytes against real consumers: many confluent-kafka consumers reading a
backlog at once, each asking for far more than the broker will hold, all read every record,
and the records Fetch responses held at once stay within the limit (plus one batch)."""
from __future__ import annotations

import socket
import threading
from typing import Callable, Sequence

import kafka_wire as wire
from harness import (assert_delivered, consume, create_topic, free_port, produce_all, producer, unique,
                     wait_until)
from test_hardening import metric, peak_rss_bytes, reset_peak_rss, rss_bytes

MiB = 1024 * 1024
LIMIT = 8 * MiB
PARTITIONS = 4
RECORDS = 4_000
VALUE = 10_000
CONSUMERS = 8
# The largest batch the producer below makes (batch.size), which a response may add beyond
# the limit (the first batch of a response is always returned whole).
BATCH = 1_000_000


def read_at_once(bootstrap: str, topic: str, partitions: int, records: int, consumers: int,
                 also: Sequence[Callable[[], None]] = (), timeout: float = 180, **conf) -> None:
    """`consumers` consumers each read all of `topic` from the start, at once, while each job in
    `also` runs in a thread of its own; fails with every error once all have ended, or unless
    every consumer got each record (numbered by its first four bytes) exactly once."""
    read: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def read_all(n: int) -> None:
        try:
            got = consume(bootstrap, topic, range(partitions), expected=records, timeout=timeout, **conf)
            read[n] = sorted(int.from_bytes(r.value[:4], "big") for r in got)
        except BaseException as e:  # reported below, with the other consumers' counts
            errors.append(e)

    def run(job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=read_all, args=(n,)) for n in range(consumers)]
    threads += [threading.Thread(target=run, args=(job,)) for job in also]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout + 60)
    assert not errors, errors
    assert sorted(read) == list(range(consumers))
    for n, ids in read.items():
        assert ids == list(range(records)), f"consumer {n}: {len(ids)} records, {len(set(ids))} distinct"


def test_eight_consumers_reading_a_backlog_at_once_stay_within_fetch_memory(broker_factory):
    http = free_port()
    b = broker_factory(args=["--fetch-memory-max-bytes", str(LIMIT),
                             "--http-listen", f"127.0.0.1:{http}"])
    topic = unique("backlog")
    create_topic(b.bootstrap, topic, partitions=PARTITIONS)
    p = producer(b.bootstrap, **{"linger.ms": 20, "batch.size": BATCH})
    reports = produce_all(p, topic, [{"value": i.to_bytes(4, "big") + b"v" * (VALUE - 4),
                                      "partition": i % PARTITIONS} for i in range(RECORDS)],
                          timeout=120)
    assert_delivered(reports)
    reset_peak_rss(b)
    before = rss_bytes(b)

    # Each asks for 40 MiB per fetch (10 MiB per partition): five times the limit.
    read_at_once(b.bootstrap, topic, PARTITIONS, RECORDS, CONSUMERS, timeout=120,
                 **{"fetch.max.bytes": 50 * MiB, "max.partition.fetch.bytes": 10 * MiB,
                    "fetch.wait.max.ms": 500})

    peak = metric(http, "krait_fetch_memory_peak_bytes")
    grown = peak_rss_bytes(b) - before
    print(f"{CONSUMERS} consumers x {RECORDS * VALUE // MiB} MiB with fetch.memory.max.bytes "
          f"{LIMIT // MiB} MiB: fetch memory peak {peak / MiB:.1f} MiB, peak RSS growth "
          f"{grown / MiB:.0f} MiB")
    assert 0 < peak <= LIMIT + BATCH + 1024, peak
    # Every response was written and its records dropped once the consumers closed.
    wait_until(lambda: metric(http, "krait_fetch_memory_bytes") == 0, 10, "fetch memory given back")


def timed_out(http: int) -> float:
    """Connections closed for timing out; the series appears with the first one."""
    try:
        return metric(http, "krait_connections_timed_out_total")
    except AssertionError:
        return 0


def test_a_client_that_stops_reading_its_fetch_response_is_closed_and_its_room_given_back(broker_factory):
    http = free_port()
    b = broker_factory(args=["--fetch-memory-max-bytes", str(LIMIT), "--request-read-timeout-ms", "1000",
                             "--http-listen", f"127.0.0.1:{http}"])
    topic = unique("unread")
    create_topic(b.bootstrap, topic)
    p = producer(b.bootstrap, **{"linger.ms": 20, "batch.size": BATCH})
    assert_delivered(produce_all(p, topic, [{"value": b"u" * VALUE} for _ in range(1_000)], timeout=120))

    # Fetch v4 for 8 MiB of the partition, then read nothing: the response fills the socket
    # buffers and the broker's write makes no progress.
    conn = wire.KafkaConnection(b.bootstrap, timeout=30)
    conn.sock.close()
    conn.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    conn.sock.settimeout(30)
    conn.sock.connect(("127.0.0.1", b.port))
    partitions = wire.array([(topic, 0)], lambda t: wire.string(t[0]) + wire.array(
        [t[1]], lambda p: wire.i32(p) + wire.i64(0) + wire.i32(LIMIT)))
    body = wire.i32(-1) + wire.i32(100) + wire.i32(1) + wire.i32(LIMIT) + wire.i8(0) + partitions
    conn.send_request(wire.API_FETCH, 4, body)
    try:
        wait_until(lambda: metric(http, "krait_fetch_memory_bytes") > LIMIT // 2, 10, "the response read")
        # Closed within the read timeout once the write stalls; the room comes back with it.
        wait_until(lambda: timed_out(http) >= 1, 15, "the reader closed")
        wait_until(lambda: metric(http, "krait_fetch_memory_bytes") == 0, 5, "fetch memory given back")
    finally:
        conn.close()
    assert len(consume(b.bootstrap, topic, [0], expected=1_000, timeout=60)) == 1_000
