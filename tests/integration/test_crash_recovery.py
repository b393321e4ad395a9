"""Durability: kill -9 while producing with acks=all loses no acknowledged record, offsets
are kept, production continues at the next offset; SIGTERM is a clean exit; a second broker
on a data directory in use refuses to start."""
from __future__ import annotations

import threading
import time

from confluent_kafka import Producer

from harness import consume, wait_until, watermarks


def test_kill9_mid_stream_loses_no_acknowledged_record(broker, topic):
    t = topic(partitions=3)
    n = 60_000
    acked: dict[tuple[int, int], bytes] = {}
    lock = threading.Lock()

    def on_delivery(err, msg):
        if err is None:
            with lock:
                acked[(msg.partition(), msg.offset())] = msg.value()

    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 5,
                  "message.timeout.ms": 5000, "retries": 0, "enable.idempotence": False})
    killer = threading.Thread(target=lambda: (wait_until(lambda: len(acked) >= 15_000, 60, "15000 acks"), broker.kill9()))
    killer.start()
    for i in range(n):
        try:
            p.produce(t, f"v{i}".encode(), partition=i % 3, on_delivery=on_delivery)
        except BufferError:
            p.poll(0.05)
        p.poll(0)
    p.flush(30)  # undeliverable messages time out: they were never acknowledged
    killer.join(timeout=60)
    broker.restart()
    print(f"\n{len(acked)} of {n} records acknowledged before the kill -9")
    assert len(acked) >= 15_000
    for part in range(3):
        low, high = watermarks(broker.bootstrap, t, part)
        records = consume(broker.bootstrap, t, [part], expected=high - low, timeout=60)
        stored = {(r.partition, r.offset): r.value for r in records}
        mine = {k: v for k, v in acked.items() if k[0] == part}
        missing = [k for k in mine if stored.get(k) != mine[k]]
        assert not missing, f"partition {part}: {len(missing)} acknowledged records lost or changed, e.g. {missing[:3]}"
        assert [r.offset for r in records] == list(range(low, high)), "offsets contiguous"
    # Production continues at the next offset.
    p2 = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    before = watermarks(broker.bootstrap, t, 0)[1]
    got = []
    p2.produce(t, b"after-restart", partition=0, on_delivery=lambda e, m: got.append((e, m.offset())))
    p2.flush(10)
    assert got == [(None, before)]


def test_sigterm_stops_cleanly_and_data_survives(broker, topic):
    t = topic()
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(100):
        p.produce(t, str(i).encode())
    assert p.flush(10) == 0
    started = time.monotonic()
    assert broker.terminate() == 0
    assert time.monotonic() - started < 10
    assert "SIGTERM received" in broker.log_text()
    broker.restart()
    assert [int(r.value) for r in consume(broker.bootstrap, t, [0], expected=100)] == list(range(100))


def test_a_second_broker_on_a_data_dir_in_use_fails_at_once(broker, broker_factory):
    second = broker_factory(data_dir=broker.data_dir, start=False)
    proc = second.spawn()
    code = proc.wait(timeout=10)
    assert code != 0
    assert "in use" in second.log_since_start()
    broker.assert_alive()
