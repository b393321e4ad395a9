"""ListOffsets: earliest, latest, and by timestamp (record timestamps set by the producer),
through confluent-kafka, kafka-python and raw ListOffsets v1."""
import time

from confluent_kafka import TopicPartition

import kafka_wire as wire
from harness import assert_delivered, consumer, produce_all, producer, watermarks

EARLIEST = -2
LATEST = -1


def offsets_for_times(bootstrap, topic, partition, timestamps):
    """confluent-kafka's offsets_for_times, one request per timestamp: librdkafka answers
    every entry of one partition with the last one's result when asked together."""
    c = consumer(bootstrap)
    try:
        return [c.offsets_for_times([TopicPartition(topic, partition, ts)], timeout=10)[0].offset
                for ts in timestamps]
    finally:
        c.close()


def produce_timestamped(bootstrap, topic, stamps, single_batch_from: int):
    """Records `ts-<i>` with the given timestamps on partition 0: one batch per record before
    index `single_batch_from`, the rest together in one batch."""
    p = producer(bootstrap, linger_ms=0)
    reports = []
    for i, ts in enumerate(stamps[:single_batch_from]):
        reports += produce_all(p, topic, [dict(value=f"ts-{i}".encode(), timestamp=ts, partition=0)])
    p = producer(bootstrap, linger_ms=500)
    reports += produce_all(p, topic, [dict(value=f"ts-{i}".encode(), timestamp=ts, partition=0)
                                      for i, ts in enumerate(stamps) if i >= single_batch_from])
    assert_delivered(reports)
    assert [r.offset for r in reports] == list(range(len(stamps)))


def test_empty_partition_has_earliest_and_latest_zero(broker, topic):
    name = topic(partitions=2)
    assert watermarks(broker.bootstrap, name, 0) == (0, 0)
    with wire.KafkaConnection(broker.bootstrap) as conn:
        assert wire.list_offsets(conn, name, 1, EARLIEST)[::2] == (0, 0)
        assert wire.list_offsets(conn, name, 1, LATEST)[::2] == (0, 0)


def test_latest_is_the_offset_after_the_last_record_on_each_partition(broker, topic):
    name = topic(partitions=3)
    counts = {0: 7, 1: 0, 2: 31}
    assert_delivered(produce_all(producer(broker.bootstrap), name,
                                 [dict(value=b"x", partition=p) for p, n in counts.items() for _ in range(n)]))
    for p, n in counts.items():
        assert watermarks(broker.bootstrap, name, p) == (0, n)
    with wire.KafkaConnection(broker.bootstrap) as conn:
        for p, n in counts.items():
            assert wire.list_offsets(conn, name, p, EARLIEST)[::2] == (0, 0)
            assert wire.list_offsets(conn, name, p, LATEST)[::2] == (0, n)

    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP

    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None)
    try:
        tps = [KTP(name, p) for p in counts]
        assert c.beginning_offsets(tps) == {tp: 0 for tp in tps}
        assert c.end_offsets(tps) == {tp: counts[tp.partition] for tp in tps}
    finally:
        c.close()


def test_earliest_and_latest_survive_restart(broker, topic):
    name = topic()
    assert_delivered(produce_all(producer(broker.bootstrap), name, [dict(value=b"x")] * 12))
    broker.restart()
    assert watermarks(broker.bootstrap, name, 0) == (0, 12)


def test_offsets_for_times_finds_the_first_record_at_or_after_the_timestamp(broker, topic):
    name = topic()
    base = int(time.time() * 1000) - 60_000  # recent, so no time retention applies
    stamps = [base + i * 1000 for i in range(10)]
    produce_timestamped(broker.bootstrap, name, stamps, single_batch_from=5)

    queries = {
        base - 5000: 0,           # before everything: the first record
        base: 0,
        base + 2500: 3,           # between single-record batches
        base + 4000: 4,
        base + 5000: 5,           # first record of the multi-record batch
        base + 6500: 7,           # inside the multi-record batch
        base + 9000: 9,           # the last record
        base + 9001: -1,          # after everything: no offset
    }
    got = offsets_for_times(broker.bootstrap, name, 0, list(queries))
    assert dict(zip(queries, got)) == queries

    with wire.KafkaConnection(broker.bootstrap) as conn:
        for ts, offset in queries.items():
            error, found_ts, found = wire.list_offsets(conn, name, 0, ts)
            assert (error, found) == (0, offset), f"timestamp {ts - base:+} ms"
            assert found_ts == (stamps[offset] if offset >= 0 else -1), f"timestamp {ts - base:+} ms"

    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP

    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None)
    try:
        tp = KTP(name, 0)
        for ts, offset in queries.items():
            result = c.offsets_for_times({tp: ts})[tp]
            if offset < 0:
                assert result is None
            else:
                assert (result.offset, result.timestamp) == (offset, stamps[offset])
    finally:
        c.close()


def test_offsets_for_times_with_out_of_order_timestamps_returns_the_first_offset_reaching_it(broker, topic):
    name = topic()
    base = int(time.time() * 1000) - 60_000
    # Offsets 0..4 carry these timestamps: the log is ordered by offset, not by time.
    stamps = [base + 5000, base + 1000, base + 3000, base + 7000, base + 2000]
    produce_timestamped(broker.bootstrap, name, stamps, single_batch_from=2)
    queries = {base: 0, base + 4000: 0, base + 5000: 0, base + 5001: 3, base + 7000: 3, base + 7001: -1}
    got = offsets_for_times(broker.bootstrap, name, 0, list(queries))
    assert dict(zip(queries, got)) == queries


def test_offset_for_leader_epoch_answers_the_log_end_for_the_current_epoch_across_restart(broker, topic):
    name = topic(partitions=2)
    assert_delivered(produce_all(producer(broker.bootstrap), name, [dict(value=b"x", partition=0)] * 7))
    for restart in (False, True):
        if restart:
            broker.restart()
        with wire.KafkaConnection(broker.bootstrap) as conn:
            assert wire.offset_for_leader_epoch(conn, name, 0, 0) == (0, 0, 7)
            assert wire.offset_for_leader_epoch(conn, name, 1, 0) == (0, 0, 0), "empty partition"
            assert wire.offset_for_leader_epoch(conn, name, 0, 0, current_leader_epoch=0) == (0, 0, 7)
            error, _, _ = wire.offset_for_leader_epoch(conn, name, 0, 0, current_leader_epoch=3)
            assert error == wire.ERR_UNKNOWN_LEADER_EPOCH
            error, _, _ = wire.offset_for_leader_epoch(conn, "no-such-topic", 0, 0)
            assert error == wire.ERR_UNKNOWN_TOPIC_OR_PARTITION
