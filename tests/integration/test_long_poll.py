"""Fetch long polling: a waiting fetch is answered as soon as data arrives, and a fetch that
cannot reach min.bytes is answered at max.wait with what there is.

The delays here are the scenario (a record produced one second after the consumer starts
waiting), not synchronisation; the bounds are generous so a loaded machine does not flake,
and each is far from what a broken long poll would give.
"""
import threading
import time

from confluent_kafka import KafkaError, TopicPartition

import kafka_wire as wire
from harness import assert_delivered, consumer, produce_all, producer

PRODUCE_AFTER_S = 1.0
WAIT_MAX_MS = 5000
PROMPT_S = 2.5  # well under WAIT_MAX_MS: a fetch parked until max wait would take 5 s


def produce_later(bootstrap, topic, delay, records, partition=0):
    """Starts a thread that produces raw batches after `delay` s; returns (thread, times) where
    times[i] is when the i-th produce was acknowledged."""
    times: list[float] = []

    def run():
        time.sleep(delay)
        with wire.KafkaConnection(bootstrap) as conn:
            for value in records:
                result = wire.produce(conn, topic, partition, wire.record_batch([wire.Record(None, value)]))
                assert result.error_code == 0
                times.append(time.monotonic())

    t = threading.Timer(0, run)
    t.start()
    return t, times


def test_waiting_consumer_gets_a_record_produced_later_promptly(broker, topic):
    name = topic()
    c = consumer(broker.bootstrap, fetch_wait_max_ms=WAIT_MAX_MS, fetch_min_bytes=1)
    try:
        c.assign([TopicPartition(name, 0, 0)])
        p = producer(broker.bootstrap, linger_ms=0)
        start = time.monotonic()
        produced_at = received_at = None
        while time.monotonic() - start < 30:
            if produced_at is None and time.monotonic() - start >= PRODUCE_AFTER_S:
                produced_at = time.monotonic()
                assert_delivered(produce_all(p, name, [dict(value=b"wake up")]))
            msg = c.poll(0.05)
            if msg is None or (msg.error() and msg.error().code() == KafkaError._PARTITION_EOF):
                continue
            assert msg.error() is None, msg.error()
            assert (msg.offset(), msg.value()) == (0, b"wake up")
            received_at = time.monotonic()
            break
        assert received_at is not None, "the record never arrived"
        delay = received_at - produced_at
        assert delay < PROMPT_S, f"record arrived {delay:.2f}s after it was produced (fetch.wait.max.ms=5000)"
    finally:
        c.close()


def test_waiting_kafka_python_consumer_gets_a_record_produced_later_promptly(broker, topic):
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP

    name = topic()
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, fetch_max_wait_ms=WAIT_MAX_MS,
                      fetch_min_bytes=1, auto_offset_reset="earliest")
    try:
        c.assign([KTP(name, 0)])
        c.seek(KTP(name, 0), 0)
        thread, acked = produce_later(broker.bootstrap, name, PRODUCE_AFTER_S, [b"kp wake up"])
        received = []
        deadline = time.monotonic() + 30
        while not received and time.monotonic() < deadline:
            for msgs in c.poll(timeout_ms=200).values():
                received += [(m.offset, m.value, time.monotonic()) for m in msgs]
        thread.join(10)
        assert [(o, v) for o, v, _ in received] == [(0, b"kp wake up")]
        delay = received[0][2] - acked[0]
        assert delay < PROMPT_S, f"record arrived {delay:.2f}s after its acknowledgement"
    finally:
        c.close()


def test_parked_fetch_returns_as_soon_as_a_record_is_appended(broker, topic):
    name = topic()
    with wire.KafkaConnection(broker.bootstrap, timeout=30) as conn:
        thread, acked = produce_later(broker.bootstrap, name, PRODUCE_AFTER_S, [b"appended"])
        start = time.monotonic()
        result = wire.fetch(conn, [(name, 0, 0)], max_wait_ms=10_000, min_bytes=1)[(name, 0)]
        answered = time.monotonic()
        thread.join(10)
    assert acked, "the producer thread failed"
    assert [r.value for b in result.batches() for r in b.records] == [b"appended"]
    assert answered - start >= PRODUCE_AFTER_S * 0.8, "answered before any record existed"
    assert answered - acked[0] < PROMPT_S, f"answered {answered - acked[0]:.2f}s after the append (max wait 10 s)"


def test_fetch_with_unreachable_min_bytes_returns_after_max_wait_with_what_it_has(broker, topic):
    name = topic()
    assert_delivered(produce_all(producer(broker.bootstrap), name, [dict(value=b"only one")]))
    with wire.KafkaConnection(broker.bootstrap, timeout=30) as conn:
        start = time.monotonic()
        result = wire.fetch(conn, [(name, 0, 0)], max_wait_ms=1000, min_bytes=10 * 1024 * 1024)[(name, 0)]
        elapsed = time.monotonic() - start
    assert result.error_code == 0
    assert [r.value for b in result.batches() for r in b.records] == [b"only one"]
    assert 0.9 <= elapsed < 6, f"min.bytes unreachable, max.wait 1 s: answered after {elapsed:.2f}s"


def test_empty_fetch_waits_for_max_wait_then_returns_empty(broker, topic):
    name = topic()
    with wire.KafkaConnection(broker.bootstrap, timeout=30) as conn:
        start = time.monotonic()
        result = wire.fetch(conn, [(name, 0, 0)], max_wait_ms=1000, min_bytes=1)[(name, 0)]
        elapsed = time.monotonic() - start
    assert (result.error_code, result.high_watermark, result.records) == (0, 0, b"")
    assert 0.9 <= elapsed < 6, f"empty partition, max.wait 1 s: answered after {elapsed:.2f}s"


def test_fetch_waits_until_min_bytes_accumulate_across_appends(broker, topic):
    name = topic()
    value = b"m" * 600
    with wire.KafkaConnection(broker.bootstrap, timeout=30) as conn:
        # Three appends of ~700 bytes, 0.5 s apart: min.bytes 1200 is reached by the second.
        thread, acked = produce_later(broker.bootstrap, name, 0.5, [value, value, value])
        start = time.monotonic()
        result = wire.fetch(conn, [(name, 0, 0)], max_wait_ms=10_000, min_bytes=1200)[(name, 0)]
        elapsed = time.monotonic() - start
        thread.join(10)
    assert len(result.records) >= 1200, f"answered with {len(result.records)} bytes, min.bytes 1200"
    assert elapsed < 8, f"min.bytes reached after two appends, but answered after {elapsed:.2f}s"


def test_a_parked_fetch_does_not_block_other_connections(broker, topic):
    name = topic()
    parked = wire.KafkaConnection(broker.bootstrap, timeout=30)
    try:
        parked.send_request(wire.API_FETCH, 4, b"")  # placeholder replaced below
    except OSError:
        pass
    parked.close()
    parked = wire.KafkaConnection(broker.bootstrap, timeout=30)
    try:
        body_conn = parked
        results = {}

        def long_fetch():
            results["fetch"] = wire.fetch(body_conn, [(name, 0, 0)], max_wait_ms=5000, min_bytes=1 << 20)

        t = threading.Thread(target=long_fetch)
        t.start()
        start = time.monotonic()
        with wire.KafkaConnection(broker.bootstrap) as other:
            for _ in range(20):
                assert wire.api_versions(other, 3).error_code == 0
            assert wire.produce(other, name, 0, wire.record_batch([wire.Record(None, b"x")])).error_code == 0
        assert time.monotonic() - start < 3, "other connections waited for a parked fetch"
        t.join(15)
        assert not t.is_alive()
        assert results["fetch"][(name, 0)].high_watermark == 1
    finally:
        parked.close()
