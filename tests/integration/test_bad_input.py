"""Bad input gets a clear answer and loses nothing: unknown APIs and versions are answered
with UNSUPPORTED_VERSION, unreadable frames close only their own connection, corrupt batches
get CORRUPT_MESSAGE with nothing appended — and the broker keeps serving everyone else."""
from __future__ import annotations

import socket
import struct
import threading

import pytest

import kafka_wire as wire
from harness import consume, produce_all, producer, watermarks


def still_serving(broker, topic_name):
    broker.assert_alive()
    produce_all(producer(broker.bootstrap), topic_name, [{"value": b"after-bad-input"}])
    records = consume(broker.bootstrap, topic_name, [0])
    assert records[-1].value == b"after-bad-input"


def raw_frame(broker, payload: bytes) -> wire.KafkaConnection:
    conn = wire.KafkaConnection(broker.bootstrap)
    conn.send_frame(payload)
    return conn


def test_unknown_api_key_gets_unsupported_version_and_the_connection_closes(broker, topic):
    t = topic()
    conn = raw_frame(broker, struct.pack(">hhih", 999, 0, 77, -1))
    frame = conn.recv_frame()
    assert struct.unpack(">ih", frame[:6]) == (77, wire.ERR_UNSUPPORTED_VERSION)
    assert conn.closed_by_peer(5)
    still_serving(broker, t)


def test_api_versions_beyond_the_served_range_answers_v0_with_the_supported_list(broker):
    with wire.KafkaConnection(broker.bootstrap) as conn:
        corr = conn.send_request(wire.API_API_VERSIONS, 99, b"")
        r = conn.recv_response(corr)
        result = wire.parse_api_versions(r, 0)
        assert result.error_code == wire.ERR_UNSUPPORTED_VERSION
        assert wire.API_PRODUCE in result.versions and result.versions[wire.API_API_VERSIONS][1] >= 3
        # The connection stays usable: the client retries with a version we serve.
        again = wire.api_versions(conn, 3)
        assert again.error_code == 0


@pytest.mark.parametrize("name,payload", [
    ("metadata claiming 2^31 topics", struct.pack(">hhih", 3, 1, 5, -1) + struct.pack(">i", 0x7FFFFFFF)),
    ("create topics claiming 2^31 topics", struct.pack(">hhih", 19, 2, 5, -1) + struct.pack(">i", 0x7FFFFFF0)),
    ("create topics v0 (legacy codec) claiming 2^31 topics",
     struct.pack(">hhih", 19, 0, 5, -1) + struct.pack(">i", 0x7FFFFFF0)),
    ("offset commit v1 (legacy codec) claiming 2^31 topics",
     struct.pack(">hhih", 8, 1, 5, -1) + struct.pack(">h", 1) + b"g" + struct.pack(">ihi", -1, 0, 0x7FFFFFF0)),
    ("produce body of garbage", struct.pack(">hhih", 0, 9, 5, -1) + bytes(range(256)) * 4),
    ("header shorter than its client id", struct.pack(">hhih", 3, 1, 5, 300) + b"abc"),
])
def test_undecodable_requests_close_only_their_connection(broker, topic, name, payload):
    t = topic()
    bystander = wire.KafkaConnection(broker.bootstrap)
    conn = raw_frame(broker, payload)
    assert conn.closed_by_peer(10), f"{name}: connection closed"
    assert wire.api_versions(bystander, 3).error_code == 0, "another connection is unaffected"
    still_serving(broker, t)


def test_truncated_negative_and_oversized_frames_close_the_connection(broker_factory):
    b = broker_factory(args=["--max-request-bytes", "1048576"])
    t = "bad-frames"
    produce_all(producer(b.bootstrap), t, [{"value": b"first"}])  # auto-created
    for raw in [struct.pack(">i", 100) + b"only-part", struct.pack(">i", -5), struct.pack(">i", 2_000_000_000),
                struct.pack(">i", 1_048_577) + b"x" * 16, struct.pack(">i", 3) + b"abc"]:
        s = socket.create_connection(("127.0.0.1", b.port), timeout=5)
        s.sendall(raw)
        if raw.endswith(b"only-part"):
            s.shutdown(socket.SHUT_WR)  # truncated: the peer gives up mid-frame
        s.settimeout(5)
        try:
            assert s.recv(100) == b"", f"closed after {raw[:8]!r}"
        except ConnectionResetError:
            pass
        s.close()
    still_serving(b, t)


def test_corrupt_batch_is_refused_with_corrupt_message_and_nothing_is_appended(broker, topic):
    t = topic()
    good = wire.record_batch([wire.Record(key=b"k", value=b"v")])
    bad = wire.record_batch([wire.Record(key=b"k", value=b"v")], crc_override=0xDEADBEEF)
    with wire.KafkaConnection(broker.bootstrap) as conn:
        assert wire.produce(conn, t, 0, good).error_code == 0
        refused = wire.produce(conn, t, 0, bad)
        assert refused.error_code == wire.ERR_CORRUPT_MESSAGE
        truncated = wire.produce(conn, t, 0, good[:-3])
        assert truncated.error_code == wire.ERR_CORRUPT_MESSAGE
        assert wire.produce(conn, t, 0, good).error_code == 0, "the same connection keeps working"
    assert watermarks(broker.bootstrap, t, 0) == (0, 2), "only the two good batches were appended"


def test_produce_to_a_missing_topic_without_auto_create_is_unknown_topic(broker_factory):
    b = broker_factory(args=["--auto-create-topics", "false"])
    with wire.KafkaConnection(b.bootstrap) as conn:
        r = wire.produce(conn, "does-not-exist", 0, wire.record_batch([wire.Record(key=None, value=b"x")]))
        assert r.error_code == wire.ERR_UNKNOWN_TOPIC_OR_PARTITION


def test_many_hostile_connections_at_once_leave_the_broker_serving(broker, topic):
    t = topic()
    payloads = [struct.pack(">hhih", 3, 1, i, -1) + struct.pack(">i", 0x7FFFFFFF) for i in range(50)]

    def attack(p):
        try:
            c = raw_frame(broker, p)
            c.closed_by_peer(10)
        except OSError:
            pass

    threads = [threading.Thread(target=attack, args=(p,)) for p in payloads]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=30)
    still_serving(broker, t)
