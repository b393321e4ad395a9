"""Produce validates a batch's header against its records, as Kafka's log validator does: a max
timestamp a client left unset (-1) or wrong is recomputed from the records, so retention and
ListOffsets by time see the real one; offsets that do not run 0, 1, 2, ... are INVALID_RECORD;
a compressed batch that inflates past the bound is MESSAGE_TOO_LARGE. Hand-built batches on
the wire, against a real broker."""
from __future__ import annotations

import time

import kafka_wire as wire
from harness import consume, create_topic, unique, wait_until, watermarks

RETENTION_EVERY_SECOND = ["--retention-check-interval-ms", "1000"]
HOUR_MS = 3_600_000


def full_retention_pass_after_now(broker) -> None:
    """Returns once a whole retention pass has run after this call began: a sentinel topic with
    one-minute retention gets an hour-old batch three times in turn, each once the previous one
    is gone; the third goes in a pass later than the one that began after the first was written,
    so that pass finished."""
    sentinel = create_topic(broker.bootstrap, unique("sentinel"), config={"retention.ms": "60000"})
    old = int(time.time() * 1000) - HOUR_MS
    with wire.KafkaConnection(broker.bootstrap) as conn:
        for n in range(1, 4):
            batch = wire.record_batch([wire.Record(key=None, value=b"old")], base_timestamp=old)
            assert wire.produce(conn, sentinel, 0, batch).error_code == wire.ERR_NONE
            wait_until(lambda: watermarks(broker.bootstrap, sentinel, 0)[0] == n, 20,
                       f"retention to delete sentinel batch {n}")


def test_records_of_a_batch_with_unset_max_timestamp_survive_retention_and_are_found_by_time(
        broker_factory):
    b = broker_factory(args=RETENTION_EVERY_SECOND)
    t = create_topic(b.bootstrap, unique("unset-max-ts"))  # default retention: 7 days
    base = int(time.time() * 1000) - 1000
    records = [wire.Record(key=None, value=f"r{i}".encode(), timestamp_delta=100 * i) for i in range(5)]
    batch = wire.record_batch(records, base_timestamp=base, max_timestamp=-1)
    with wire.KafkaConnection(b.bootstrap) as conn:
        assert wire.produce(conn, t, 0, batch).error_code == wire.ERR_NONE
        stored = wire.fetch(conn, [(t, 0, 0)])[(t, 0)].batches()
        assert [s.max_timestamp for s in stored] == [base + 400], "the broker recomputed the max timestamp"
        assert all(s.crc_ok for s in stored), "and the CRC that covers it"

    full_retention_pass_after_now(b)

    assert watermarks(b.bootstrap, t, 0) == (0, 5), "retention deleted none of the five records"
    got = consume(b.bootstrap, t, [0], expected=5)
    assert [(r.offset, r.value) for r in got] == [(i, f"r{i}".encode()) for i in range(5)]
    with wire.KafkaConnection(b.bootstrap) as conn:
        for i in range(5):
            error, ts, offset = wire.list_offsets(conn, t, 0, base + 100 * i)
            assert (error, ts, offset) == (wire.ERR_NONE, base + 100 * i, i)
        assert wire.list_offsets(conn, t, 0, base + 401)[::2] == (wire.ERR_NONE, -1), "nothing after the newest"


def test_wrong_max_timestamp_in_a_gzip_batch_is_rewritten_and_the_records_stay_readable(broker):
    t = create_topic(broker.bootstrap, unique("gzip-max-ts"))
    base = int(time.time() * 1000)
    records = [wire.Record(key=b"k", value=f"z{i}".encode(), timestamp_delta=10 * i) for i in range(4)]
    batch = wire.record_batch(records, base_timestamp=base, attributes=1, max_timestamp=base + 10 ** 9)
    with wire.KafkaConnection(broker.bootstrap) as conn:
        assert wire.produce(conn, t, 0, batch).error_code == wire.ERR_NONE
        stored = wire.fetch(conn, [(t, 0, 0)])[(t, 0)].batches()
        assert [(s.compression, s.max_timestamp, s.crc_ok) for s in stored] == [(1, base + 30, True)]
        assert wire.list_offsets(conn, t, 0, base + 15)[::2] == (wire.ERR_NONE, 2)
    got = consume(broker.bootstrap, t, [0], expected=4)
    assert [r.value for r in got] == [f"z{i}".encode() for i in range(4)]


def test_non_consecutive_offset_deltas_are_refused_with_invalid_record_and_nothing_is_appended(broker):
    t = create_topic(broker.bootstrap, unique("offset-deltas"))
    records = [wire.Record(key=None, value=f"d{i}".encode()) for i in range(3)]
    bad = wire.record_batch(records, offset_deltas=[0, 2, 1])
    with wire.KafkaConnection(broker.bootstrap) as conn:
        assert wire.produce(conn, t, 0, bad).error_code == wire.ERR_INVALID_RECORD
        assert wire.produce(conn, t, 0, wire.record_batch(records)).error_code == wire.ERR_NONE, \
            "the same connection keeps working"
    assert watermarks(broker.bootstrap, t, 0) == (0, 3), "only the good batch was appended"


def test_gzip_batch_inflating_past_the_bound_is_refused_with_message_too_large(broker):
    t = create_topic(broker.bootstrap, unique("bomb"))
    # 80 MiB of zeros (over the 64 MiB bound) gzip to about 80 KB, well within max.message.bytes.
    bomb = wire.record_batch([wire.Record(key=None, value=bytes(80 << 20))], attributes=1)
    assert len(bomb) < 1 << 20
    with wire.KafkaConnection(broker.bootstrap, timeout=30) as conn:
        assert wire.produce(conn, t, 0, bomb).error_code == wire.ERR_MESSAGE_TOO_LARGE
        ok = wire.record_batch([wire.Record(key=None, value=b"fine")], attributes=1)
        assert wire.produce(conn, t, 0, ok).error_code == wire.ERR_NONE
    assert watermarks(broker.bootstrap, t, 0) == (0, 1)


def test_record_timestamps_outside_the_topics_window_are_refused_with_invalid_timestamp(broker):
    """message.timestamp.after.max.ms (Kafka 4.0's default: one hour) and .before.max.ms
    (default: unbounded) bound every record's CreateTime against the broker's clock, compressed
    batches included; a topic with LogAppendTime accepts any."""
    default = create_topic(broker.bootstrap, unique("ts-window"))
    strict = create_topic(broker.bootstrap, unique("ts-strict"),
                          config={"message.timestamp.before.max.ms": str(HOUR_MS),
                                  "message.timestamp.after.max.ms": str(10 * HOUR_MS)})
    appended = create_topic(broker.bootstrap, unique("ts-append"),
                            config={"message.timestamp.type": "LogAppendTime"})
    now = int(time.time() * 1000)

    def batch(*timestamps, attributes=0):
        records = [wire.Record(key=None, value=f"at {t}".encode(), timestamp_delta=t - timestamps[0])
                   for t in timestamps]
        return wire.record_batch(records, base_timestamp=timestamps[0], attributes=attributes)

    cases = [
        (default, batch(now, now + 2 * HOUR_MS), wire.ERR_INVALID_TIMESTAMP),
        (default, batch(now, now + 2 * HOUR_MS, attributes=1), wire.ERR_INVALID_TIMESTAMP),
        (default, batch(now - 365 * 24 * HOUR_MS, now + HOUR_MS // 2), wire.ERR_NONE),
        (strict, batch(now - 2 * HOUR_MS, now), wire.ERR_INVALID_TIMESTAMP),
        (strict, batch(now, now + 2 * HOUR_MS), wire.ERR_NONE),
        (appended, batch(now + 100 * HOUR_MS), wire.ERR_NONE),
    ]
    with wire.KafkaConnection(broker.bootstrap) as conn:
        for i, (topic, records, expected) in enumerate(cases):
            got = wire.produce(conn, topic, 0, records).error_code
            assert got == expected, f"case {i}: error {got}, expected {expected}"
        # Refused batches left nothing behind.
        assert watermarks(broker.bootstrap, default, 0)[1] == 2
        assert watermarks(broker.bootstrap, strict, 0)[1] == 2
