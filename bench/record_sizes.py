#!/usr/bin/env python3
"""Produce and consume throughput by record size: records/s, MB/s and broker CPU per GB, for
1 KB, 10 KB and 100 KB records (acks=all, one partition, `krait perf`), with what RocksDB did
meanwhile, from its LOG: tables written by flushes and compactions per byte produced
(`flush_x`, `compaction_x`) and how often it slowed or stopped writes (`stalls`, `stops`).

Each run is `LABEL` or `LABEL:BROKER FLAGS` (flags split on spaces; a `NAME=VALUE` among them is
set in the broker's environment instead), run in the order given, each
on a fresh broker and data directory; alternate the settings compared (A B A B) so drift on the
machine falls on both:

    bench/record_sizes.py --krait-broker-bin B --krait-cli-bin C [--mb 400] base base
    bench/record_sizes.py --krait-broker-bin B --krait-cli-bin C "a:--storage-memory-mb 64" "b:--storage-memory-mb 256" a b
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import brokers  # noqa: E402
import workloads  # noqa: E402

MB = 1_000_000


def rocksdb_writes(data_dir: Path) -> dict:
    """What RocksDB wrote so far, from its own LOG: MB of tables written by flushes and by
    compactions (their sum over the bytes produced is the write amplification past the WAL),
    and how often writes were slowed or stopped for flushes or compactions that lag."""
    out = {"flush_mb": 0.0, "compaction_mb": 0.0, "stalls": 0, "stops": 0}
    kinds: dict[int, str] = {}
    for log in data_dir.rglob("LOG"):
        for line in log.read_text(errors="replace").splitlines():
            if "Stalling writes" in line:
                out["stalls"] += 1
            elif "Stopping writes" in line:
                out["stops"] += 1
            elif "EVENT_LOG_v1" in line:
                try:
                    event = json.loads(line.split("EVENT_LOG_v1", 1)[1])
                except ValueError:
                    continue
                kind = event.get("event")
                if kind in ("flush_started", "compaction_started"):
                    kinds[event.get("job", -1)] = kind.split("_")[0]
                elif kind == "table_file_creation":
                    job = kinds.get(event.get("job", -1), "flush")
                    out[f"{job}_mb"] += event.get("file_size", 0) / MB
    return out


def measure(broker_bin: Path, cli: Path, label: str, flags: list[str], sizes: list[int], mb: int) -> list[dict]:
    env = dict(f.split("=", 1) for f in flags if f[:1].isupper() and "=" in f)
    flags = [f for f in flags if not (f[:1].isupper() and "=" in f)]
    spec = brokers.BrokerSpec(f"krait-{label}", "krait", broker_bin, args=tuple(flags))
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the broker's environment (a name without KRAIT_, which is not passed)
    try:
        b = brokers.start(spec, Path(tempfile.mkdtemp(prefix="krait-sizes-")))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    rows = []
    try:
        time.sleep(1)
        for size in sizes:
            records = max(1_000, mb * MB // size)
            topic = f"sizes-{size}-{uuid.uuid4().hex[:8]}"
            b.create_topic(topic, 1)
            cpu = b.cpu()
            before = rocksdb_writes(b.work_dir / "data")
            rate = workloads.produce_krait_perf(cli, b.bootstrap, topic, records, size, "all", 5)
            produce_cpu = b.cpu() - cpu
            time.sleep(2)  # the flushes and compactions the produce left behind
            after = rocksdb_writes(b.work_dir / "data")
            written = {k: after[k] - before[k] for k in after}
            cpu = b.cpu()
            consumed = workloads.consume_krait_perf(cli, b.bootstrap, topic, records)
            consume_cpu = b.cpu() - cpu
            gb = records * size / 1e9
            rows.append({"run": label, "size": size, "records": records,
                         "produce_rec_s": rate, "produce_mb_s": rate * size / MB,
                         "produce_cpu_s_per_gb": produce_cpu / gb,
                         "flush_x": written["flush_mb"] * MB / (records * size),
                         "compaction_x": written["compaction_mb"] * MB / (records * size),
                         "stalls": written["stalls"], "stops": written["stops"],
                         "consume_rec_s": consumed, "consume_mb_s": consumed * size / MB,
                         "consume_cpu_s_per_gb": consume_cpu / gb,
                         "rss_mib": b.rss()})
            print(json.dumps({k: (round(v, 2) if isinstance(v, float) else v) for k, v in rows[-1].items()}),
                  flush=True)
    finally:
        b.stop()
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--krait-broker-bin", type=Path, required=True)
    ap.add_argument("--krait-cli-bin", type=Path, required=True)
    ap.add_argument("--sizes", default="1024,10240,102400", help="record sizes in bytes")
    ap.add_argument("--mb", type=int, default=400, help="MB produced per size and run")
    ap.add_argument("--out", type=Path, help="write the rows as JSON here too")
    ap.add_argument("runs", nargs="+", help="LABEL or LABEL:FLAGS, in the order to run them")
    args = ap.parse_args(argv)
    defined: dict[str, list[str]] = {}
    for run in args.runs:
        label, _, flags = run.partition(":")
        if flags:
            defined[label] = [f for f in flags.split(" ") if f]
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for run in args.runs:
        label = run.partition(":")[0]
        rows += measure(args.krait_broker_bin, args.krait_cli_bin, label, defined.get(label, []), sizes, args.mb)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
