#!/usr/bin/env python3
"""End-to-end latency of one broker (Krait, or Tansu with --tansu-bin) at several fixed rates,
to see where the tail comes from: the same workload as the benchmark's latency row (100 B,
acks=all, linger.ms=1, one partition), at each rate in turn, with the broker's CPU share and the
machine's idle share over each step. With --krait-cli-bin the load is `krait perf e2e` (a Rust
producer and consumer in one process); without it, confluent-kafka with the consumer in another
Python process, which cannot drive the broker much past 200k records/s.

    bench/latency_sweep.py --krait-broker-bin B --krait-cli-bin C [--rates 10000,50000,100000,200000,450000] [--seconds 10]
    bench/latency_sweep.py --tansu-bin T [--engine memory|sqlite] --krait-cli-bin C ...
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import brokers  # noqa: E402
import workloads  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--krait-broker-bin", type=Path)
    ap.add_argument("--tansu-bin", type=Path, help="measure Tansu instead of Krait")
    ap.add_argument("--krait-cli-bin", type=Path, help="the load generator: `krait perf e2e`")
    ap.add_argument("--engine", default="memory", choices=("memory", "sqlite"), help="Tansu's storage engine")
    ap.add_argument("--rates", default="10000,50000,100000,200000,450000")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--broker-arg", action="append", default=[],
                    help="a flag for krait-broker, repeated for each word: --broker-arg=--storage-memory-mb --broker-arg=256")
    ap.add_argument("--out", type=Path, help="write the rows as JSON here too")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="krait-latency-"))
    if args.tansu_bin:
        spec = brokers.BrokerSpec(f"tansu-{args.engine}", "tansu", args.tansu_bin, engine=args.engine)
    elif args.krait_broker_bin:
        spec = brokers.BrokerSpec("krait", "krait", args.krait_broker_bin, args=tuple(args.broker_arg))
    else:
        ap.error("give --krait-broker-bin or --tansu-bin")
    broker = brokers.start(spec, work)
    harness = "krait perf e2e" if args.krait_cli_bin else "confluent-kafka (Python)"
    print(f"{spec.name} {' '.join(args.broker_arg)}, {args.seconds:g} s per rate, load from {harness}")
    rows = []
    try:
        print(f"{'target rec/s':>12} {'achieved':>10} {'p50 ms':>8} {'p99 ms':>8} {'p999 ms':>8} "
              f"{'broker CPU':>10} {'machine idle':>12}")
        for rate in (int(r) for r in args.rates.split(",") if r):
            topic = "lat-" + uuid.uuid4().hex[:8]
            broker.create_topic(topic, 1)
            cpu0, (idle0, total0), t0 = broker.cpu(), brokers.idle_jiffies(), time.monotonic()
            warmup = min(1.0, args.seconds / 4)
            if args.krait_cli_bin:
                f = workloads.e2e_latency_krait_perf(args.krait_cli_bin, broker.bootstrap, topic, rate,
                                                     args.seconds, warmup)
            else:
                f = workloads.e2e_latency(broker.bootstrap, topic, rate, args.seconds, warmup)
            wall = time.monotonic() - t0
            idle1, total1 = brokers.idle_jiffies()
            row = {"target": rate, "achieved": f["achieved_rate"], "p50_ms": f["p50_ms"],
                   "p99_ms": f["p99_ms"], "p999_ms": f["p999_ms"],
                   "broker_cpu_share": (broker.cpu() - cpu0) / wall,
                   "machine_idle_share": (idle1 - idle0) / max(total1 - total0, 1)}
            rows.append(row)
            print(f"{rate:>12,} {row['achieved']:>10,} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} "
                  f"{row['p999_ms']:>8.2f} {row['broker_cpu_share']:>9.0%} {row['machine_idle_share']:>11.0%}",
                  flush=True)
    finally:
        broker.stop()
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
