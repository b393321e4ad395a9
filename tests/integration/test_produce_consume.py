"""Produce and Fetch with real clients: keys and partitions, every compression codec through
confluent-kafka and kafka-python, headers and null/empty fields, large records, acks levels,
kcat, contiguous offsets, mid-batch fetches and multi-partition fetches."""
import os
import random
import zlib

import pytest
from confluent_kafka import KafkaError

import kafka_wire as wire
from harness import (assert_delivered, consume, create_topic, kcat, kp_consume, produce_all, producer, unique,
                     wait_until, watermarks)

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def payloads(n: int, seed: int) -> list[dict]:
    """Records mixing compressible text, random bytes, null keys, and headers."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if i % 10 == 3:
            value = rng.randbytes(rng.randint(1, 300))
        else:
            value = (f"value-{i}-" * rng.randint(1, 40)).encode()
        key = None if i % 7 == 0 else f"key-{i % 13}".encode()
        headers = [("seq", str(i).encode()), ("bin", bytes([i % 256, 0, 255]))] if i % 5 == 0 else None
        out.append(dict(key=key, value=value, headers=headers))
    return out


def raw_fetch_all(bootstrap, topic, partition, offset=0):
    with wire.KafkaConnection(bootstrap) as conn:
        return wire.fetch(conn, [(topic, partition, offset)])[(topic, partition)]


# ---------------------------------------------------------------- keys, partitions, offsets

def test_keyed_records_keep_one_partition_per_key_and_consume_in_order(broker, topic):
    name = topic(partitions=6)
    sent = [dict(key=f"key-{i % 20}".encode(), value=f"key-{i % 20}:{i}".encode()) for i in range(600)]
    reports = produce_all(producer(broker.bootstrap), name, sent)
    assert_delivered(reports)

    partition_of: dict[bytes, int] = {}
    for r in reports:
        assert partition_of.setdefault(r.key, r.partition) == r.partition, f"key {r.key} moved partitions"
    assert len(set(partition_of.values())) > 1, "20 keys all hashed to one of 6 partitions"

    records = consume(broker.bootstrap, name, range(6), expected=600)
    assert len(records) == 600
    assert {(r.partition, r.offset): r.value for r in records} == {(d.partition, d.offset): d.value for d in reports}
    for key, part in partition_of.items():
        seqs = [int(r.value.split(b":")[1]) for r in records if r.key == key]
        assert all(r.partition == part for r in records if r.key == key)
        assert seqs == sorted(seqs) and len(seqs) == 30, f"key {key}: {seqs}"


def test_offsets_are_contiguous_per_partition_across_many_produce_requests(broker, topic):
    name = topic(partitions=3)
    reports = []
    for round_ in range(5):
        p = producer(broker.bootstrap, linger_ms=0 if round_ % 2 else 20)
        reports += produce_all(p, name, [dict(value=f"{round_}-{i}".encode(), partition=i % 3)
                                         for i in range(round_ * 37 + 11)])
    assert_delivered(reports)
    for part in range(3):
        offsets = sorted(r.offset for r in reports if r.partition == part)
        assert offsets == list(range(len(offsets))), f"partition {part} offsets have gaps or repeats"
        assert watermarks(broker.bootstrap, name, part) == (0, len(offsets))
    records = consume(broker.bootstrap, name, range(3), expected=len(reports))
    for part in range(3):
        assert [r.offset for r in records if r.partition == part] == \
            list(range(sum(1 for r in reports if r.partition == part)))


def test_produce_to_an_unknown_topic_auto_creates_it(broker):
    name = unique("autoprod")
    reports = produce_all(producer(broker.bootstrap), name, [dict(value=b"first")])
    assert_delivered(reports)
    assert (reports[0].partition, reports[0].offset) == (0, 0)
    assert [r.value for r in consume(broker.bootstrap, name, [0], expected=1)] == [b"first"]


def test_produce_to_missing_topic_with_auto_create_off_is_unknown_topic_or_partition(broker_factory):
    b = broker_factory(args=["--auto-create-topics", "false"])
    batch = wire.record_batch([wire.Record(b"k", b"v")])
    with wire.KafkaConnection(b.bootstrap) as conn:
        result = wire.produce(conn, unique("nope"), 0, batch)
    assert result.error_code == wire.ERR_UNKNOWN_TOPIC_OR_PARTITION
    assert result.base_offset == -1


def test_produce_to_a_partition_beyond_the_topic_is_unknown_topic_or_partition(broker, topic):
    name = topic(partitions=2)
    with wire.KafkaConnection(broker.bootstrap) as conn:
        result = wire.produce(conn, name, 2, wire.record_batch([wire.Record(None, b"v")]))
        assert result.error_code == wire.ERR_UNKNOWN_TOPIC_OR_PARTITION
        assert wire.produce(conn, name, 1, wire.record_batch([wire.Record(None, b"v")])).error_code == 0


# ---------------------------------------------------------------- byte-exact storage and codecs

def test_hand_built_batch_is_stored_and_fetched_byte_exact(broker, topic):
    name = topic()
    records = [wire.Record(b"k1", b"v1", [("h", b"x")]), wire.Record(None, b"", timestamp_delta=5),
               wire.Record(b"", None, [("n", None)], timestamp_delta=9)]
    first = wire.record_batch(records[:1], base_timestamp=1_700_000_000_000)
    second = wire.record_batch(records, base_timestamp=1_700_000_001_000)
    with wire.KafkaConnection(broker.bootstrap) as conn:
        assert wire.produce(conn, name, 0, first) == wire.ProducePartition(0, 0)
        assert wire.produce(conn, name, 0, second) == wire.ProducePartition(0, 1)
        data = wire.fetch(conn, [(name, 0, 0)])[(name, 0)]
    assert data.error_code == 0 and data.high_watermark == 4
    b1, b2 = data.batches()
    assert (b1.base_offset, b2.base_offset) == (0, 1)
    for sent, got in ((first, b1), (second, b2)):
        assert got.crc_ok
        # Only the base offset (bytes 0-8) and partition leader epoch (12-16) may be rewritten.
        assert got.raw[8:12] == sent[8:12] and got.raw[16:] == sent[16:]
    assert [(r.offset, r.key, r.value, r.headers) for r in b2.records] == [
        (1, b"k1", b"v1", [("h", b"x")]), (2, None, b"", []), (3, b"", None, [("n", None)])]
    assert [r.timestamp for r in b2.records] == [1_700_000_001_000, 1_700_000_001_005, 1_700_000_001_009]


def confluent_produce(bootstrap, name, codec, sent):
    p = producer(bootstrap, compression_type=codec, linger_ms=50, acks="all")
    reports = produce_all(p, name, [dict(m, partition=0) for m in sent])
    assert_delivered(reports)
    return [r.offset for r in reports]


def kafka_python_produce(bootstrap, name, codec, sent):
    from kafka import KafkaProducer

    p = KafkaProducer(bootstrap_servers=bootstrap, compression_type=None if codec == "none" else codec,
                      acks="all", linger_ms=50)
    try:
        futures = [p.send(name, value=m["value"], key=m["key"], partition=0, headers=m["headers"] or [])
                   for m in sent]
        p.flush(timeout=60)
        return [f.get(timeout=30).offset for f in futures]
    finally:
        p.close(timeout=10)


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("client", ["confluent", "kafka-python"])
def test_compressed_batches_round_trip_byte_exact_through_both_clients(broker, topic, client, codec):
    name = topic(prefix=f"codec-{codec}")
    sent = payloads(300, seed=zlib.crc32(f"{client}/{codec}".encode()))
    produce_fn = confluent_produce if client == "confluent" else kafka_python_produce
    offsets = produce_fn(broker.bootstrap, name, codec, sent)
    assert offsets == list(range(300))

    def expected_headers(m):
        return [(k, v) for k, v in (m["headers"] or [])]

    for reader in ("confluent", "kafka-python"):
        if reader == "confluent":
            got = consume(broker.bootstrap, name, [0], expected=300)
        else:
            got = kp_consume(broker.bootstrap, name, [0], expected=300)
        assert [r.offset for r in got] == list(range(300)), reader
        for m, r in zip(sent, got):
            assert (r.key, r.value) == (m["key"], m["value"]), f"{reader} offset {r.offset}"
            assert r.headers == expected_headers(m), f"{reader} headers at offset {r.offset}"

    # Stored as sent: every batch still carries the producer's codec and a valid CRC.
    data = raw_fetch_all(broker.bootstrap, name, 0)
    batches = data.batches()
    assert batches and sum(b.record_count for b in batches) == 300
    # librdkafka sends lz4 uncompressed unless the broker advertises FindCoordinator (its LZ4
    # feature probe): a silently ignored compression.type is a failure too. A client may still
    # send a batch uncompressed when compressing would not shrink it (a last one-record batch).
    codecs = {b.compression for b in batches}
    assert wire.COMPRESSION[codec] in codecs and codecs <= {wire.COMPRESSION[codec], 0}, \
        f"{client} asked for {codec}, the stored batches carry codec ids {sorted(codecs)}"
    assert all(b.crc_ok and b.magic == 2 for b in batches)


# (topic compression.type, what the producer sends): every target from something else.
RECOMPRESSIONS = [("zstd", "none"), ("gzip", "lz4"), ("snappy", "zstd"), ("lz4", "gzip"),
                  ("uncompressed", "snappy")]


@pytest.mark.parametrize("target,sent_codec", RECOMPRESSIONS)
def test_topic_compression_type_recompresses_what_the_producer_sent(broker, topic, target, sent_codec):
    """A topic-level compression.type other than `producer` stores every batch with that codec,
    recompressing what an (idempotent) producer compressed otherwise, as Kafka does; both clients
    read the records back unchanged."""
    name = topic(prefix=f"recompress-{target}", config={"compression.type": target})
    sent = payloads(300, seed=zlib.crc32(f"{target}/{sent_codec}".encode()))
    p = producer(broker.bootstrap, compression_type=sent_codec, linger_ms=50, acks="all",
                 enable_idempotence=True)
    reports = produce_all(p, name, [dict(m, partition=0) for m in sent])
    assert_delivered(reports)
    assert [r.offset for r in reports] == list(range(300))

    batches = raw_fetch_all(broker.bootstrap, name, 0).batches()
    want = wire.COMPRESSION["none" if target == "uncompressed" else target]
    assert {b.compression for b in batches} == {want}, f"{sent_codec} sent, {target} configured"
    assert all(b.crc_ok and b.magic == 2 for b in batches)
    assert all(b.producer_id >= 0 for b in batches), "the producer id survives recompression"
    assert sum(b.record_count for b in batches) == 300

    for reader in (consume, kp_consume):
        got = reader(broker.bootstrap, name, [0], expected=300)
        assert [(r.offset, r.key, r.value) for r in got] == \
            [(i, m["key"], m["value"]) for i, m in enumerate(sent)], reader.__name__

    # The idempotent producer's sequence numbers were kept: its next batch follows on.
    more = produce_all(p, name, [dict(m, partition=0) for m in sent[:10]])
    assert [r.offset for r in more] == list(range(300, 310))


def test_headers_null_key_null_value_and_empty_value_round_trip(broker, topic):
    name = topic()
    sent = [
        dict(key=b"k", value=b"v", headers=[("a", b"1"), ("a", b"2"), ("empty", b""), ("null", None)]),
        dict(key=None, value=b"null-key"),
        dict(key=b"null-value", value=None),
        dict(key=b"empty-value", value=b""),
        dict(key=b"", value=b"empty-key"),
    ]
    reports = produce_all(producer(broker.bootstrap), name, [dict(m, partition=0) for m in sent])
    assert_delivered(reports)
    # What the broker stores, record by record: null (-1) and empty (0) lengths stay distinct.
    stored = [r for b in raw_fetch_all(broker.bootstrap, name, 0).batches() for r in b.records]
    assert [(r.key, r.value) for r in stored] == [(m["key"], m["value"]) for m in sent]
    assert stored[0].headers == [("a", b"1"), ("a", b"2"), ("empty", b""), ("null", None)]

    got = consume(broker.bootstrap, name, [0], expected=5)
    assert got[0].headers == [("a", b"1"), ("a", b"2"), ("empty", b""), ("null", None)]
    assert (got[1].key, got[1].value) == (None, b"null-key")
    assert (got[2].key, got[2].value) == (b"null-value", None)
    assert got[3].key == b"empty-value" and got[3].value in (b"", None)
    kp = kp_consume(broker.bootstrap, name, [0], expected=5)
    assert [(r.key, r.value) for r in kp] == [(m["key"], m["value"]) for m in sent]
    assert kp[0].headers == [("a", b"1"), ("a", b"2"), ("empty", b""), ("null", None)]


def test_record_of_900_kib_round_trips(broker, topic):
    name = topic()
    big = os.urandom(900 * 1024)
    reports = produce_all(producer(broker.bootstrap), name,
                          [dict(key=b"big", value=big), dict(key=b"small", value=b"after")])
    assert_delivered(reports)
    got = consume(broker.bootstrap, name, [0], expected=2)
    assert [(r.key, len(r.value)) for r in got] == [(b"big", len(big)), (b"small", 5)]
    assert got[0].value == big
    kp = kp_consume(broker.bootstrap, name, [0], expected=2)
    assert kp[0].value == big


def test_record_over_1_mib_is_rejected_with_message_too_large_and_nothing_is_stored(broker, topic):
    name = topic()
    p = producer(broker.bootstrap, message_max_bytes=5_000_000, compression_type="none")
    (report,) = produce_all(p, name, [dict(value=os.urandom(1536 * 1024))])
    assert report.error is not None and report.error.code() == KafkaError.MSG_SIZE_TOO_LARGE, report.error
    assert watermarks(broker.bootstrap, name, 0) == (0, 0)
    (ok,) = produce_all(producer(broker.bootstrap), name, [dict(value=b"fits")])
    assert ok.error is None and ok.offset == 0


def test_kafka_python_record_over_1_mib_is_rejected_with_message_too_large(broker, topic):
    from kafka import KafkaProducer
    from kafka.errors import MessageSizeTooLargeError

    name = topic()
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, max_request_size=5_000_000, acks=1)
    try:
        with pytest.raises(MessageSizeTooLargeError):
            p.send(name, value=os.urandom(1536 * 1024), partition=0).get(timeout=30)
    finally:
        p.close(timeout=10)
    assert watermarks(broker.bootstrap, name, 0) == (0, 0)


def test_topic_max_message_bytes_override_limits_batch_size(broker, topic):
    name = topic(config={"max.message.bytes": "2000"})
    p = producer(broker.bootstrap, compression_type="none", linger_ms=0)
    small, large = produce_all(p, name, [dict(value=b"s" * 500)]), produce_all(p, name, [dict(value=os.urandom(5000))])
    assert small[0].error is None and small[0].offset == 0
    assert large[0].error is not None and large[0].error.code() == KafkaError.MSG_SIZE_TOO_LARGE
    with wire.KafkaConnection(broker.bootstrap) as conn:
        result = wire.produce(conn, name, 0, wire.record_batch([wire.Record(None, b"x" * 3000)]))
    assert result.error_code == wire.ERR_MESSAGE_TOO_LARGE
    assert watermarks(broker.bootstrap, name, 0) == (0, 1)


# ---------------------------------------------------------------- acks

@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_every_acks_level_stores_every_record(broker, topic, acks):
    name = topic(partitions=2)
    sent = [dict(value=f"acks{acks}-{i}".encode(), partition=i % 2) for i in range(400)]
    reports = produce_all(producer(broker.bootstrap, acks=acks), name, sent)
    assert_delivered(reports)
    if acks != "0":
        for part in (0, 1):
            assert sorted(r.offset for r in reports if r.partition == part) == list(range(200))
    # acks=0 gets no answer: wait until the broker shows everything.
    wait_until(lambda: [watermarks(broker.bootstrap, name, p)[1] for p in (0, 1)] == [200, 200], 30,
               "both partitions to reach 200 records")
    got = consume(broker.bootstrap, name, [0, 1], expected=400)
    for part in (0, 1):
        assert [r.value for r in got if r.partition == part] == \
            [m["value"] for m in sent if m["partition"] == part]


def test_raw_produce_with_acks_zero_gets_no_response_but_stores(broker, topic):
    name = topic()
    with wire.KafkaConnection(broker.bootstrap) as conn:
        conn.send_request(wire.API_PRODUCE, 3, wire.produce_v3(name, 0, wire.record_batch([wire.Record(None, b"a0")]),
                                                               acks=0))
        # The next response on this connection must answer the next request, not the acks=0 one.
        versions = wire.api_versions(conn, 0)
        assert versions.error_code == 0
    wait_until(lambda: watermarks(broker.bootstrap, name, 0)[1] == 1, 15, "the acks=0 record")


# ---------------------------------------------------------------- kcat

def test_kcat_produces_keyed_lines_that_confluent_reads(broker, topic):
    name = topic(partitions=2)
    lines = [f"k{i}:line {i}" for i in range(50)]
    kcat(broker.bootstrap, "-P", "-t", name, "-p", "1", "-K", ":", input="\n".join(lines) + "\n", timeout=60)
    got = consume(broker.bootstrap, name, [1], expected=50)
    assert [(r.key, r.value) for r in got] == [(f"k{i}".encode(), f"line {i}".encode()) for i in range(50)]
    assert [r.offset for r in got] == list(range(50))


def test_kcat_consumes_from_beginning_to_end(broker, topic):
    name = topic(partitions=3)
    sent = [dict(key=f"k{i}".encode(), value=f"v{i}".encode(), partition=i % 3) for i in range(90)]
    assert_delivered(produce_all(producer(broker.bootstrap, compression_type="zstd"), name, sent))
    out = kcat(broker.bootstrap, "-C", "-t", name, "-o", "beginning", "-e", "-f", "%p|%o|%k|%s\n",
               timeout=60).stdout.decode()
    rows = [line.split("|") for line in out.splitlines() if line]
    assert len(rows) == 90
    for part in range(3):
        mine = [(int(o), k, v) for p, o, k, v in rows if int(p) == part]
        assert mine == [(n, f"k{i}", f"v{i}") for n, i in enumerate(range(part, 90, 3))]


def test_kcat_consumes_from_an_offset_in_the_middle_of_a_batch(broker, topic):
    name = topic()
    assert_delivered(produce_all(producer(broker.bootstrap, linger_ms=500), name,
                                 [dict(value=f"m{i}".encode()) for i in range(10)]))
    out = kcat(broker.bootstrap, "-C", "-t", name, "-p", "0", "-o", "6", "-e", "-f", "%o %s\n",
               timeout=60).stdout.decode()
    assert out.splitlines() == [f"{i} m{i}" for i in range(6, 10)]


# ---------------------------------------------------------------- fetch shapes

def test_fetch_from_mid_batch_offset_returns_whole_batch_and_clients_skip_earlier_records(broker, topic):
    name = topic()
    reports = produce_all(producer(broker.bootstrap, linger_ms=500), name,
                          [dict(value=f"r{i}".encode()) for i in range(10)])
    assert_delivered(reports)
    (only,) = raw_fetch_all(broker.bootstrap, name, 0, offset=0).batches()
    assert (only.base_offset, only.last_offset) == (0, 9), "expected the 10 records in one batch"

    mid = raw_fetch_all(broker.bootstrap, name, 0, offset=5)
    (batch,) = mid.batches()
    assert (batch.base_offset, batch.last_offset, batch.raw) == (0, 9, only.raw)

    got = consume(broker.bootstrap, name, [0], expected=5, start=5)
    assert [(r.offset, r.value) for r in got] == [(i, f"r{i}".encode()) for i in range(5, 10)]
    kp = kp_consume(broker.bootstrap, name, [0], expected=5, start_offsets={0: 5})
    assert [(r.offset, r.value) for r in kp] == [(i, f"r{i}".encode()) for i in range(5, 10)]


def test_fetch_at_the_high_watermark_returns_nothing_and_beyond_it_is_out_of_range(broker, topic):
    name = topic()
    assert_delivered(produce_all(producer(broker.bootstrap), name, [dict(value=b"a"), dict(value=b"b")]))
    with wire.KafkaConnection(broker.bootstrap) as conn:
        at_end = wire.fetch(conn, [(name, 0, 2)], max_wait_ms=0)[(name, 0)]
        assert (at_end.error_code, at_end.high_watermark, at_end.records) == (0, 2, b"")
        beyond = wire.fetch(conn, [(name, 0, 50)], max_wait_ms=0)[(name, 0)]
        assert beyond.error_code == 1, "OFFSET_OUT_OF_RANGE expected"


def test_one_fetch_serves_many_partitions(broker, topic):
    name = topic(partitions=24)
    sent = [dict(value=f"p{i % 24}-{i // 24}".encode(), partition=i % 24) for i in range(24 * 25)]
    assert_delivered(produce_all(producer(broker.bootstrap), name, sent))
    with wire.KafkaConnection(broker.bootstrap) as conn:
        result = wire.fetch(conn, [(name, p, 0) for p in range(24)], max_wait_ms=0)
    assert sorted(p for _, p in result) == list(range(24))
    for (_, p), data in result.items():
        assert (data.error_code, data.high_watermark) == (0, 25)
        assert sum(b.record_count for b in data.batches()) == 25
    got = consume(broker.bootstrap, name, range(24), expected=600)
    for p in range(24):
        assert [r.value for r in got if r.partition == p] == [f"p{p}-{j}".encode() for j in range(25)]


def test_fetch_max_bytes_still_returns_the_first_batch_whole(broker, topic):
    name = topic(partitions=3)
    sent = [dict(value=os.urandom(2000), partition=p) for p in range(3)]
    assert_delivered(produce_all(producer(broker.bootstrap, compression_type="none"), name, sent))
    with wire.KafkaConnection(broker.bootstrap) as conn:
        result = wire.fetch(conn, [(name, p, 0) for p in range(3)], max_wait_ms=0, max_bytes=100,
                            partition_max_bytes=100)
    first = result[(name, 0)].batches()
    assert len(first) == 1 and first[0].records[0].value == sent[0]["value"]
    assert sum(len(result[(name, p)].records) for p in (1, 2)) == 0


@pytest.mark.parametrize("codec", CODECS)
def test_kcat_produces_with_every_codec_and_batches_keep_it(broker, topic, codec):
    name = topic(prefix=f"kcat-{codec}")
    lines = [f"{i}:" + f"kcat {codec} line {i} " * 10 for i in range(200)]
    kcat(broker.bootstrap, "-P", "-t", name, "-p", "0", "-K", ":", "-z", codec,
         "-X", "linger.ms=50", input="\n".join(lines) + "\n", timeout=60)
    got = consume(broker.bootstrap, name, [0], expected=200)
    assert [(r.key, r.value) for r in got] == [tuple(x.encode() for x in line.split(":", 1)) for line in lines]
    batches = raw_fetch_all(broker.bootstrap, name, 0).batches()
    # librdkafka before 2.10 (Debian's kcat has 2.0.2) only compresses with gzip, snappy or lz4
    # when the broker advertises Produce v0, which Kafka 4.0 dropped (KIP-896) and Krait, like
    # it, does not serve: it then sends those batches uncompressed, to Kafka 4.0 as to Krait.
    # zstd is gated on Produce v7 / Fetch v10 instead, which both serve.
    expected = wire.COMPRESSION[codec] if codec in ("none", "zstd") else wire.COMPRESSION["none"]
    assert {b.compression for b in batches} == {expected}, \
        f"kcat asked for {codec}, the stored batches carry codec ids {sorted({b.compression for b in batches})}"
