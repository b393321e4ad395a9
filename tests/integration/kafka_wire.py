"""A minimal Kafka wire-protocol client for tests that need exact bytes: hand-built record
batches (v2, CRC-32C), raw frames, and a few requests (ApiVersions, Produce v3, Fetch v4,
ListOffsets v1, InitProducerId v0, AlterConfigs v0) with their response parsers. Not a general client.
"""
from __future__ import annotations

import gzip
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

API_PRODUCE = 0
API_FETCH = 1
API_LIST_OFFSETS = 2
API_METADATA = 3
API_API_VERSIONS = 18
API_DESCRIBE_CLUSTER = 60
API_OFFSET_FOR_LEADER_EPOCH = 23
API_INIT_PRODUCER_ID = 22
API_ALTER_CONFIGS = 33

ERR_NONE = 0
ERR_CORRUPT_MESSAGE = 2
ERR_UNKNOWN_TOPIC_OR_PARTITION = 3
ERR_MESSAGE_TOO_LARGE = 10
ERR_INVALID_TIMESTAMP = 32
ERR_INVALID_RECORD = 87
ERR_UNSUPPORTED_VERSION = 35
ERR_UNKNOWN_LEADER_EPOCH = 75

COMPRESSION = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


# ---------------------------------------------------------------- CRC-32C (Castagnoli)

def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC-32C, reflected polynomial 0x82F63B78, as Kafka's record batch v2 uses."""
    crc ^= 0xFFFFFFFF
    table = _CRC32C_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# ---------------------------------------------------------------- encoding

def i8(v: int) -> bytes:
    return struct.pack(">b", v)


def i16(v: int) -> bytes:
    return struct.pack(">h", v)


def i32(v: int) -> bytes:
    return struct.pack(">i", v)


def u32(v: int) -> bytes:
    return struct.pack(">I", v)


def i64(v: int) -> bytes:
    return struct.pack(">q", v)


def string(s: Optional[str]) -> bytes:
    if s is None:
        return i16(-1)
    b = s.encode()
    return i16(len(b)) + b


def nbytes(b: Optional[bytes]) -> bytes:
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def array(items: list, encode: Callable[[object], bytes]) -> bytes:
    return i32(len(items)) + b"".join(encode(x) for x in items)


def uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def varint(n: int) -> bytes:
    """Zig-zag signed varint (record fields use these)."""
    return uvarint((n << 1) ^ (n >> 63))


def compact_string(s: Optional[str]) -> bytes:
    if s is None:
        return uvarint(0)
    b = s.encode()
    return uvarint(len(b) + 1) + b


# ---------------------------------------------------------------- decoding

class Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if n > self.remaining():
            raise ValueError(f"need {n} bytes at {self.pos}, have {self.remaining()}")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def _unpack(self, fmt: str, n: int) -> int:
        return struct.unpack(fmt, self.take(n))[0]

    def i8(self) -> int:
        return self._unpack(">b", 1)

    def i16(self) -> int:
        return self._unpack(">h", 2)

    def i32(self) -> int:
        return self._unpack(">i", 4)

    def u32(self) -> int:
        return self._unpack(">I", 4)

    def i64(self) -> int:
        return self._unpack(">q", 8)

    def string(self) -> Optional[str]:
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def nbytes(self) -> Optional[bytes]:
        n = self.i32()
        return None if n < 0 else self.take(n)

    def array(self, decode: Callable[["Reader"], object]) -> list:
        n = self.i32()
        return [] if n < 0 else [decode(self) for _ in range(n)]

    def uvarint(self) -> int:
        shift = result = 0
        while True:
            b = self.take(1)[0]
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def varint(self) -> int:
        n = self.uvarint()
        return (n >> 1) ^ -(n & 1)

    def compact_string(self) -> Optional[str]:
        n = self.uvarint() - 1
        return None if n < 0 else self.take(n).decode()

    def compact_array(self, decode: Callable[["Reader"], object]) -> list:
        n = self.uvarint() - 1
        return [] if n < 0 else [decode(self) for _ in range(n)]

    def tagged_fields(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())


# ---------------------------------------------------------------- record batches (magic v2)

@dataclass
class Record:
    key: Optional[bytes]
    value: Optional[bytes]
    headers: list = field(default_factory=list)  # [(str, Optional[bytes])]
    timestamp_delta: int = 0


def encode_record(offset_delta: int, r: Record) -> bytes:
    def field_bytes(b: Optional[bytes]) -> bytes:
        return varint(-1) if b is None else varint(len(b)) + b

    body = (i8(0) + varint(r.timestamp_delta) + varint(offset_delta) + field_bytes(r.key) + field_bytes(r.value)
            + varint(len(r.headers))
            + b"".join(varint(len(k.encode())) + k.encode() + field_bytes(v) for k, v in r.headers))
    return varint(len(body)) + body


def record_batch(records: list[Record], base_timestamp: Optional[int] = None, base_offset: int = 0,
                 attributes: int = 0, producer_id: int = -1, producer_epoch: int = -1, base_sequence: int = -1,
                 crc_override: Optional[int] = None, max_timestamp: Optional[int] = None,
                 offset_deltas: Optional[list[int]] = None) -> bytes:
    """A v2 record batch, uncompressed, gzip (attributes & 7 == 1) or zstd (4); `crc_override` writes a chosen
    (wrong) CRC, `max_timestamp` a chosen header max timestamp (say -1, unset) and `offset_deltas`
    chosen record offset deltas, as a careless client might."""
    if base_timestamp is None:
        base_timestamp = int(time.time() * 1000)
    max_ts = base_timestamp + max((r.timestamp_delta for r in records), default=0)
    if max_timestamp is not None:
        max_ts = max_timestamp
    deltas = offset_deltas if offset_deltas is not None else range(len(records))
    body = b"".join(encode_record(d, r) for d, r in zip(deltas, records))
    if attributes & 0x07 == 1:
        body = gzip.compress(body)
    elif attributes & 0x07 == 4:
        import zstandard
        body = zstandard.ZstdCompressor().compress(body)
    after_crc = (i16(attributes) + i32(len(records) - 1) + i64(base_timestamp) + i64(max_ts) + i64(producer_id)
                 + i16(producer_epoch) + i32(base_sequence) + i32(len(records)) + body)
    crc = crc32c(after_crc) if crc_override is None else crc_override
    return frame_batch(base_offset, crc, after_crc)


def frame_batch(base_offset: int, crc: int, after_crc: bytes) -> bytes:
    """The batch around the part the CRC covers (attributes onwards)."""
    batch_length = 4 + 1 + 4 + len(after_crc)  # leader epoch, magic, crc, rest
    return i64(base_offset) + i32(batch_length) + i32(-1) + i8(2) + u32(crc) + after_crc


def zstd_bomb(value_len: int, base_timestamp: int) -> bytes:
    """A one-record zstd batch whose record holds `value_len` zero bytes, compressed as a stream
    (so neither side holds the expanded record): a few KB that inflate to `value_len`."""
    import zstandard
    head = i8(0) + varint(0) + varint(0) + varint(-1) + varint(value_len)
    tail = varint(0)
    compressor = zstandard.ZstdCompressor().compressobj()
    parts = [compressor.compress(varint(len(head) + value_len + len(tail)) + head)]
    chunk = bytes(1 << 20)
    for _ in range(value_len >> 20):
        parts.append(compressor.compress(chunk))
    parts.append(compressor.compress(bytes(value_len & ((1 << 20) - 1))))
    parts.append(compressor.compress(tail))
    parts.append(compressor.flush())
    body = b"".join(parts)
    after_crc = (i16(4) + i32(0) + i64(base_timestamp) + i64(base_timestamp) + i64(-1) + i16(-1) + i32(-1)
                 + i32(1) + body)
    return frame_batch(0, crc32c(after_crc), after_crc)


@dataclass
class ParsedRecord:
    offset: int
    timestamp: int
    key: Optional[bytes]
    value: Optional[bytes]
    headers: list


@dataclass
class Batch:
    base_offset: int
    batch_length: int
    leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    record_count: int
    crc_ok: bool
    raw: bytes
    records: Optional[list] = None  # parsed only when uncompressed

    @property
    def compression(self) -> int:
        return self.attributes & 0x07

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta


def _parse_records(r: Reader, base_offset: int, base_ts: int, count: int) -> list[ParsedRecord]:
    out = []
    for _ in range(count):
        length = r.varint()
        rec = Reader(r.take(length))
        rec.i8()
        ts_delta = rec.varint()
        offset_delta = rec.varint()
        klen = rec.varint()
        key = None if klen < 0 else rec.take(klen)
        vlen = rec.varint()
        value = None if vlen < 0 else rec.take(vlen)
        headers = []
        for _ in range(rec.varint()):
            hk = rec.take(rec.varint()).decode()
            hlen = rec.varint()
            headers.append((hk, None if hlen < 0 else rec.take(hlen)))
        out.append(ParsedRecord(base_offset + offset_delta, base_ts + ts_delta, key, value, headers))
    return out


def parse_batches(data: bytes) -> list[Batch]:
    """Every complete batch in `data`; a truncated trailing batch (allowed in Fetch) is dropped."""
    batches = []
    pos = 0
    while len(data) - pos >= 12:
        base_offset, batch_length = struct.unpack(">qi", data[pos:pos + 12])
        end = pos + 12 + batch_length
        if end > len(data):
            break
        raw = data[pos:end]
        r = Reader(raw[12:])
        leader_epoch, magic, crc = r.i32(), r.i8(), r.u32()
        crc_ok = crc32c(raw[21:]) == crc
        attributes, last_delta = r.i16(), r.i32()
        base_ts, max_ts, pid = r.i64(), r.i64(), r.i64()
        r.i16()
        r.i32()
        count = r.i32()
        records = _parse_records(r, base_offset, base_ts, count) if attributes & 0x07 == 0 else None
        batches.append(Batch(base_offset, batch_length, leader_epoch, magic, crc, attributes, last_delta,
                             base_ts, max_ts, pid, count, crc_ok, raw, records))
        pos = end
    return batches


# ---------------------------------------------------------------- connection

class ConnectionClosed(Exception):
    pass


class KafkaConnection:
    """One TCP connection speaking length-prefixed Kafka frames."""

    def __init__(self, bootstrap: str, timeout: float = 10.0, client_id: str = "krait-wire-tests"):
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.settimeout(timeout)
        self.client_id = client_id
        self._next_correlation = 1

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_frame(self, payload: bytes) -> None:
        self.sock.sendall(i32(len(payload)) + payload)

    def header(self, api_key: int, version: int, correlation_id: int, flexible: bool = False) -> bytes:
        h = i16(api_key) + i16(version) + i32(correlation_id) + string(self.client_id)
        return h + uvarint(0) if flexible else h

    def send_request(self, api_key: int, version: int, body: bytes, flexible_header: bool = False,
                     correlation_id: Optional[int] = None) -> int:
        if correlation_id is None:
            correlation_id = self._next_correlation
            self._next_correlation += 1
        self.send_frame(self.header(api_key, version, correlation_id, flexible_header) + body)
        return correlation_id

    def _recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionClosed(f"peer closed after {len(buf)} of {n} bytes")
            buf += chunk
        return bytes(buf)

    def recv_frame(self) -> bytes:
        (length,) = struct.unpack(">i", self._recv_exact(4))
        return self._recv_exact(length)

    def recv_response(self, correlation_id: int, flexible_header: bool = False) -> Reader:
        """The response body for `correlation_id` (response header v0, or v1 when flexible)."""
        r = Reader(self.recv_frame())
        got = r.i32()
        if got != correlation_id:
            raise AssertionError(f"response correlation id {got}, expected {correlation_id}")
        if flexible_header:
            r.tagged_fields()
        return r

    def closed_by_peer(self, timeout: float) -> bool:
        """True if the broker closes (EOF or reset) within `timeout`, discarding anything it sends."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                if not self.sock.recv(65536):
                    return True
            except (ConnectionResetError, BrokenPipeError):
                return True
            except socket.timeout:
                return False
        return False


# ---------------------------------------------------------------- requests and responses

@dataclass
class ApiVersions:
    error_code: int
    versions: dict  # api key -> (min, max)


def api_versions(conn: KafkaConnection, version: int = 0) -> ApiVersions:
    """ApiVersions at `version`; an unsupported version is answered in the v0 form (KIP-511)."""
    flexible = version >= 3
    body = compact_string("krait-tests") + compact_string("1.0") + uvarint(0) if flexible else b""
    corr = conn.send_request(API_API_VERSIONS, version, body, flexible_header=flexible)
    # The ApiVersions response header is always v0, whatever the request version.
    return parse_api_versions(conn.recv_response(corr), version)


def parse_api_versions(r: Reader, version: int) -> ApiVersions:
    error = r.i16()
    if version >= 3 and error == ERR_NONE:
        entries = r.compact_array(lambda x: (x.i16(), x.i16(), x.i16(), x.tagged_fields())[:3])
    else:
        entries = r.array(lambda x: (x.i16(), x.i16(), x.i16()))
    return ApiVersions(error, {k: (lo, hi) for k, lo, hi in entries})


def produce_v3(topic: str, partition: int, records: bytes, acks: int = -1, timeout_ms: int = 10000) -> bytes:
    return (string(None) + i16(acks) + i32(timeout_ms)
            + array([topic], lambda t: string(t) + array([partition], lambda p: i32(p) + nbytes(records))))


@dataclass
class ProducePartition:
    error_code: int
    base_offset: int


def produce(conn: KafkaConnection, topic: str, partition: int, records: bytes, acks: int = -1) -> ProducePartition:
    corr = conn.send_request(API_PRODUCE, 3, produce_v3(topic, partition, records, acks))
    r = conn.recv_response(corr)
    result = {}
    for name, parts in r.array(lambda x: (x.string(), x.array(lambda y: (y.i32(), y.i16(), y.i64(), y.i64())))):
        for index, error, base_offset, _append_time in parts:
            result[(name, index)] = ProducePartition(error, base_offset)
    return result[(topic, partition)]


@dataclass
class FetchPartition:
    error_code: int
    high_watermark: int
    records: bytes

    def batches(self) -> list[Batch]:
        return parse_batches(self.records)


def fetch(conn: KafkaConnection, partitions: list[tuple[str, int, int]], max_wait_ms: int = 100,
          min_bytes: int = 1, max_bytes: int = 50 * 1024 * 1024, partition_max_bytes: int = 10 * 1024 * 1024,
          timeout: Optional[float] = None) -> dict:
    """Fetch v4 of [(topic, partition, offset)]; returns {(topic, partition): FetchPartition}."""
    by_topic: dict[str, list[tuple[int, int]]] = {}
    for t, p, o in partitions:
        by_topic.setdefault(t, []).append((p, o))
    body = (i32(-1) + i32(max_wait_ms) + i32(min_bytes) + i32(max_bytes) + i8(0)
            + array(list(by_topic.items()), lambda tp: string(tp[0])
                    + array(tp[1], lambda po: i32(po[0]) + i64(po[1]) + i32(partition_max_bytes))))
    if timeout is not None:
        conn.sock.settimeout(timeout)
    corr = conn.send_request(API_FETCH, 4, body)
    r = conn.recv_response(corr)
    r.i32()  # throttle time
    result = {}

    def partition(x: Reader):
        index, error, hw, _lso = x.i32(), x.i16(), x.i64(), x.i64()
        x.array(lambda y: (y.i64(), y.i64()))  # aborted transactions
        return index, FetchPartition(error, hw, x.nbytes() or b"")

    for name, parts in r.array(lambda x: (x.string(), x.array(partition))):
        for index, data in parts:
            result[(name, index)] = data
    return result


def list_offsets(conn: KafkaConnection, topic: str, partition: int, timestamp: int) -> tuple[int, int, int]:
    """ListOffsets v1: (error code, timestamp, offset); timestamp -2 earliest, -1 latest."""
    body = i32(-1) + array([topic], lambda t: string(t) + array([partition], lambda p: i32(p) + i64(timestamp)))
    corr = conn.send_request(API_LIST_OFFSETS, 1, body)
    r = conn.recv_response(corr)
    for _name, parts in r.array(lambda x: (x.string(), x.array(lambda y: (y.i32(), y.i16(), y.i64(), y.i64())))):
        for index, error, ts, offset in parts:
            if index == partition:
                return error, ts, offset
    raise AssertionError(f"no ListOffsets answer for {topic}/{partition}")


def offset_for_leader_epoch(conn: KafkaConnection, topic: str, partition: int, leader_epoch: int,
                            current_leader_epoch: int = -1) -> tuple[int, int, int]:
    """OffsetForLeaderEpoch v2: (error code, leader epoch, end offset) where `leader_epoch` ends."""
    body = array([topic], lambda t: string(t) + array(
        [partition], lambda p: i32(p) + i32(current_leader_epoch) + i32(leader_epoch)))
    corr = conn.send_request(API_OFFSET_FOR_LEADER_EPOCH, 2, body)
    r = conn.recv_response(corr)
    r.i32()  # throttle time
    for _name, parts in r.array(lambda x: (x.string(), x.array(lambda y: (y.i16(), y.i32(), y.i32(), y.i64())))):
        for error, index, epoch, end_offset in parts:
            if index == partition:
                return error, epoch, end_offset
    raise AssertionError(f"no OffsetForLeaderEpoch answer for {topic}/{partition}")


def init_producer_id(conn: KafkaConnection) -> tuple[int, int, int]:
    """InitProducerId v0 for an idempotent producer: (error code, producer id, epoch)."""
    body = i16(-1) + i32(60000)  # null transactional id, transaction timeout
    cid = conn.send_request(API_INIT_PRODUCER_ID, 0, body)
    r = conn.recv_response(cid)
    r.i32()  # throttle time
    return r.i16(), r.i64(), r.i16()


def alter_configs(conn: KafkaConnection, resource_type: int, name: str,
                  configs: dict[str, str]) -> tuple[int, Optional[str]]:
    """AlterConfigs v0 of one resource (replaces its whole set): (error code, error message).
    It can name the cluster-wide broker level (type 4, name ""), which the clients' admin APIs
    refuse to send."""
    body = array([(resource_type, name, configs)], lambda res: i8(res[0]) + string(res[1]) + array(
        list(res[2].items()), lambda kv: string(kv[0]) + string(kv[1]))) + i8(0)
    corr = conn.send_request(API_ALTER_CONFIGS, 0, body)
    r = conn.recv_response(corr)
    r.i32()  # throttle time
    [(error, message)] = r.array(lambda x: (x.i16(), x.string(), x.i8(), x.string())[:2])
    return error, message

