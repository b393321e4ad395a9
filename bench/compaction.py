#!/usr/bin/env python3
"""Log compaction's throughput, and what it does to produce latency, on one krait-broker in
one run, with confluent-kafka (librdkafka). Prints one JSON line per figure; never asserts a
speed.

For each cleaner rate (`--log-cleaner-io-max-bytes-per-second`; 0 is no limit) a fresh broker:
1. fills a compacted topic with `--fill` records of 100 B over `--keys` keys, with
   `min.compaction.lag.ms` at an hour so that nothing is cleaned yet;
2. waits `--settle` seconds (RocksDB flushing the fill), then measures an acks=all idempotent
   producer at a fixed `--rate` on another topic for `--seconds` with no compaction running
   (the baseline);
3. lowers `min.compaction.lag.ms` to 0 (IncrementalAlterConfigs) and measures the same producer
   from then until the broker logs the pass as done (at least `--seconds`).
The cleaner's own figures (bytes read and MB/s of each pass) come from the broker's
`compacted` log lines; latency is from produce() to the delivery report.

    bench/compaction.py                               # 1M records over 10k keys, 0 and 32 MiB/s
    bench/compaction.py --fill 200000 --rates 0 --seconds 5
"""
import argparse
import json
import os
import re
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

import brokers

VALUE = b"x" * 100
PASS = re.compile(r"compacted.*?bytes_read=(\d+).*?records_removed=(\d+).*?mb_per_s=([0-9.]+)")


def fill(bootstrap: str, topic: str, n: int, keys: int) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1_000_000})
    for i in range(n):
        while True:
            try:
                p.produce(topic, VALUE, key=b"key-%d" % (i % keys), partition=0)
                break
            except BufferError:
                p.poll(0.01)
    if p.flush(120) != 0:
        raise RuntimeError("the fill did not deliver everything")
    # A batch of its own at the end: the log's last batch is never cleaned.
    p.produce(topic, VALUE, key=b"sentinel", partition=0)
    if p.flush(30) != 0:
        raise RuntimeError("the fill did not deliver everything")


def latencies(bootstrap: str, topic: str, rate: int, min_seconds: float, done=lambda: True,
              max_seconds: float = 300) -> list[float]:
    """Delivery latencies (ms) of records sent at `rate`/s, for at least `min_seconds` and
    until `done()`."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 1})
    # Connected and holding a producer id before the clock starts: the first records of a new
    # idempotent producer wait for InitProducerId, which is not what is measured.
    p.produce(topic, VALUE, partition=0)
    if p.flush(30) != 0:
        raise RuntimeError("the latency producer could not start")
    out: list[float] = []
    failed = []

    def report(err, _msg, sent=0.0):
        if err is not None:
            failed.append(err)
        else:
            out.append((time.monotonic() - sent) * 1000)

    start = time.monotonic()
    sent = 0
    while True:
        now = time.monotonic()
        elapsed = now - start
        if elapsed >= max_seconds or (elapsed >= min_seconds and done()):
            break
        for _ in range(int(elapsed * rate) - sent):
            p.produce(topic, VALUE, partition=0,
                      on_delivery=lambda err, msg, t=time.monotonic(): report(err, msg, t))
            sent += 1
        p.poll(0.001)
    if p.flush(60) != 0 or failed:
        raise RuntimeError(f"the latency producer lost records: {failed[:3]}")
    return out


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def passes(log_path: Path) -> list[tuple[int, int, float]]:
    text = log_path.read_text(errors="replace")
    return [(int(b), int(r), float(m)) for b, r, m in PASS.findall(text)]


def measure(broker, args, cleaner_rate: int) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    compacted, load = f"bench-compact-{uuid.uuid4().hex[:6]}", f"bench-load-{uuid.uuid4().hex[:6]}"
    topics = [NewTopic(compacted, 1, 1, config={"cleanup.policy": "compact",
                                                "min.compaction.lag.ms": "3600000"}),
              NewTopic(load, 1, 1)]
    for f in admin.create_topics(topics).values():
        f.result(30)
    fill_start = time.monotonic()
    fill(broker.bootstrap, compacted, args.fill, args.keys)
    fill_s = time.monotonic() - fill_start
    # RocksDB flushes and compacts what the fill wrote for a few seconds: not the cleaner's cost.
    time.sleep(args.settle)
    baseline = latencies(broker.bootstrap, load, args.rate, args.seconds)
    if passes(broker.log_path):
        raise RuntimeError("the cleaner ran before it was allowed to")
    change = ConfigResource(ConfigResource.Type.TOPIC, compacted, incremental_configs=[
        ConfigEntry("min.compaction.lag.ms", "0", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([change])[change].result(timeout=10)
    window_start = time.monotonic()
    during = latencies(broker.bootstrap, load, args.rate, args.seconds,
                       done=lambda: bool(passes(broker.log_path)))
    window_s = time.monotonic() - window_start
    cleaned = passes(broker.log_path)
    if not cleaned:
        raise RuntimeError("no compaction pass finished within the window")
    common = {"cleaner_rate_bytes_per_s": cleaner_rate, "fill_records": args.fill, "keys": args.keys,
              "value_bytes": len(VALUE), "produce_rate": args.rate}
    print(json.dumps({"figure": "compaction pass", "mb_per_s_read": cleaned[0][2],
                      "bytes_read": cleaned[0][0], "records_removed": cleaned[0][1],
                      "fill_s": round(fill_s, 1), **common}))
    for name, values, seconds in (("produce latency, no compaction", baseline, args.seconds),
                                  ("produce latency, while compacting", during, window_s)):
        print(json.dumps({"figure": name, "p50_ms": round(statistics.median(values), 2),
                          "p99_ms": round(percentile(values, 0.99), 2),
                          "max_ms": round(max(values), 2), "records": len(values),
                          "seconds": round(seconds, 1), **common}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/krait/target"))
    ap.add_argument("--krait-broker-bin", default=f"{target}/release/krait-broker")
    ap.add_argument("--fill", type=int, default=1_000_000)
    ap.add_argument("--keys", type=int, default=10_000)
    ap.add_argument("--rate", type=int, default=5_000, help="latency producer, records/s")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--settle", type=float, default=10, help="seconds between the fill and the baseline")
    ap.add_argument("--rates", default=f"0,{32 * 1024 * 1024}",
                    help="cleaner rates to compare, bytes/s, comma-separated (0: no limit)")
    args = ap.parse_args(argv)
    for rate in (int(r) for r in args.rates.split(",")):
        spec = brokers.BrokerSpec("krait", "krait", Path(args.krait_broker_bin), args=(
            "--log", "warn,krait_server::retention=info", "--retention-check-interval-ms", "200",
            "--log-cleaner-backoff-ms", "200",
            "--log-cleaner-io-max-bytes-per-second", str(rate)))
        with tempfile.TemporaryDirectory(prefix="krait-bench-compaction-") as work:
            broker = brokers.start(spec, Path(work))
            try:
                measure(broker, args, rate)
            finally:
                broker.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
