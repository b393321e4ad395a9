#!/usr/bin/env python3
"""What security costs: one krait-broker with a PLAINTEXT and a SASL_SSL (SCRAM-SHA-512)
listener, the same confluent-kafka workload on each, alternating, and medians of the runs:

- produce (acks=all) and consume of 100 B records, records per second, and the ratio of
  SASL_SSL to PLAINTEXT in the same run;
- broker CPU seconds per million records produced on each listener (from /proc);
- SCRAM-SHA-512 logins per second: one client logging in again and again, over SASL_PLAINTEXT
  (the exchange alone) and SASL_SSL (with the TLS handshake).

Found while measuring (2026-12-05): a confluent-kafka consumer reads ~185k rec/s from Krait
on either listener except, sometimes, the first in a process (~1.8M rec/s): the consume rows
compare like with like only when both show the same regime. That is a performance issue of its
own, not one of TLS.

Figures are printed, never asserted: `python3 bench/security.py --records 200000 --runs 3`.
Needs a built krait-broker (KRAIT_BROKER_BIN, else the release build in the cargo target dir).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
import socket
import ssl
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from harness import Broker, free_port  # noqa: E402
from security import ADMIN_PASSWORD, Pki  # noqa: E402

VALUE = b"x" * 100


def broker_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def produce(conf: dict, topic: str, records: int) -> float:
    p = Producer({**conf, "acks": "all", "linger.ms": 5, "batch.num.messages": 10000,
                  "queue.buffering.max.messages": 1000000})
    started = time.perf_counter()
    for _ in range(records):
        while True:
            try:
                p.produce(topic, VALUE)
                break
            except BufferError:
                p.poll(0.001)
    assert p.flush(120) == 0
    return records / (time.perf_counter() - started)


def consume(conf: dict, topic: str, records: int) -> float:
    """Records per second from the first record on: the consumer's start (metadata, offsets)
    is the same on both listeners and would dominate a short run."""
    c = Consumer({**conf, "group.id": f"bench-{time.monotonic_ns()}", "enable.auto.commit": False,
                  "fetch.max.bytes": 52428800})
    c.assign([TopicPartition(topic, 0, 0)])
    seen, started = 0, None
    while seen < records:
        for m in c.consume(num_messages=10000, timeout=1.0):
            if m.error() is None:
                started = started or time.perf_counter()
                seen += 1
    elapsed = time.perf_counter() - started
    c.close()
    return (records - 1) / elapsed


def scram_login(sock, user: str, salted: dict) -> None:
    """One SaslHandshake v1 + SCRAM-SHA-512 exchange on a fresh connection."""
    def call(api_key: int, version: int, body: bytes) -> bytes:
        header = struct.pack(">hhi", api_key, version, 1) + struct.pack(">h", 5) + b"bench"
        frame = header + body
        sock.sendall(struct.pack(">i", len(frame)) + frame)
        size = struct.unpack(">i", recv(sock, 4))[0]
        return recv(sock, size)[4:]

    mech = b"SCRAM-SHA-512"
    call(17, 1, struct.pack(">h", len(mech)) + mech)
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n={user},r={nonce}"
    reply = call(36, 1, bytes_field(f"n,,{first_bare}".encode()))
    server_first = read_bytes(reply[2:])[0].decode()
    attrs = dict(a.split("=", 1) for a in server_first.split(","))
    key = (attrs["s"], attrs["i"])
    if key not in salted:
        salted[key] = hashlib.pbkdf2_hmac("sha512", ADMIN_PASSWORD.encode(), base64.b64decode(attrs["s"]),
                                          int(attrs["i"]))
    client_key = hmac.new(salted[key], b"Client Key", "sha512").digest()
    without_proof = f"c=biws,r={attrs['r']}"
    auth = f"{first_bare},{server_first},{without_proof}".encode()
    signature = hmac.new(hashlib.sha512(client_key).digest(), auth, "sha512").digest()
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature))).decode()
    reply = call(36, 1, bytes_field(f"{without_proof},p={proof}".encode()))
    assert struct.unpack(">h", reply[:2])[0] == 0, "login refused"


def bytes_field(b: bytes) -> bytes:
    return struct.pack(">i", len(b)) + b


def read_bytes(buf: bytes) -> tuple[bytes, bytes]:
    """Skips the error message (nullable string) and reads auth_bytes."""
    (n,) = struct.unpack(">h", buf[:2])
    rest = buf[2 + max(n, 0):]
    (size,) = struct.unpack(">i", rest[:4])
    return rest[4:4 + size], rest[4 + size:]


def recv(sock, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed")
        out += chunk
    return bytes(out)


def logins_per_second(port: int, tls: ssl.SSLContext | None, seconds: float) -> float:
    salted: dict = {}
    done = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        with socket.create_connection(("127.0.0.1", port)) as raw:
            sock = tls.wrap_socket(raw, server_hostname="localhost") if tls else raw
            scram_login(sock, "admin", salted)
            done += 1
    return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--login-seconds", type=float, default=5.0)
    args = parser.parse_args()
    binary = os.environ.get("KRAIT_BROKER_BIN") or str(
        Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/krait/target")) / "release/krait-broker")
    work = Path(tempfile.mkdtemp(prefix="krait-security-bench-"))
    pki = Pki(work / "pki")
    keystore = pki.keystore("broker", "/CN=localhost")
    plain, sasl_ssl, sasl_plain = free_port(), free_port(), free_port()
    props = work / "server.properties"
    props.write_text(f"listeners=PLAINTEXT://127.0.0.1:{plain},SASL_SSL://127.0.0.1:{sasl_ssl},"
                     f"SASL_PLAINTEXT://127.0.0.1:{sasl_plain}\n"
                     f"ssl.keystore.location={keystore}\nsasl.enabled.mechanisms=SCRAM-SHA-512\n")
    broker = Broker(binary, work / "data", work / "broker.log", port=plain,
                    args=["--config", str(props), "--add-scram", f"SCRAM-SHA-512=[name=admin,password={ADMIN_PASSWORD}]"])
    broker.start()
    try:
        # librdkafka leaves Nagle on by default; with it, every consumer after the first on a
        # broker process reads at ~185k rec/s on either listener (40 ms delayed ACKs between a
        # request's segments), which would hide what TLS costs. Both listeners get the same.
        nagle_off = {"socket.nagle.disable": True}
        confs = {
            "PLAINTEXT": {"bootstrap.servers": f"127.0.0.1:{plain}", **nagle_off},
            "SASL_SSL": {"bootstrap.servers": f"127.0.0.1:{sasl_ssl}", "security.protocol": "SASL_SSL",
                         "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "admin",
                         "sasl.password": ADMIN_PASSWORD, "ssl.ca.location": str(pki.ca), **nagle_off},
        }
        results: dict[str, dict[str, list[float]]] = {k: {"produce": [], "consume": [], "cpu": []} for k in confs}
        admin = AdminClient(confs["PLAINTEXT"])
        for run in range(args.runs):
            for name, conf in confs.items():
                topic = f"bench-{name.lower()}-{run}"
                admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
                cpu = broker_cpu_seconds(broker.proc.pid)
                results[name]["produce"].append(produce(conf, topic, args.records))
                results[name]["cpu"].append((broker_cpu_seconds(broker.proc.pid) - cpu) * 1e6 / args.records)
                results[name]["consume"].append(consume(conf, topic, args.records))
        tls = ssl.create_default_context(cafile=str(pki.ca))
        logins = {"SASL_PLAINTEXT": logins_per_second(sasl_plain, None, args.login_seconds),
                  "SASL_SSL": logins_per_second(sasl_ssl, tls, args.login_seconds)}
    finally:
        broker.stop()
    med = {n: {k: statistics.median(v) for k, v in r.items()} for n, r in results.items()}
    print(f"records={args.records} x 100 B, runs={args.runs}, medians; one broker, confluent-kafka")
    print(f"{'figure':<40}{'PLAINTEXT':>14}{'SASL_SSL':>14}{'ratio':>8}")
    for key, label in [("produce", "produce acks=all, rec/s"), ("consume", "consume, rec/s"),
                       ("cpu", "broker CPU s per 1M produced")]:
        p, s = med["PLAINTEXT"][key], med["SASL_SSL"][key]
        print(f"{label:<40}{p:>14,.2f}{s:>14,.2f}{s / p:>8.2f}")
    for name, rate in logins.items():
        print(f"SCRAM-SHA-512 logins/s over {name} (one client, sequential): {rate:,.0f}")


if __name__ == "__main__":
    main()
