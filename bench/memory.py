#!/usr/bin/env python3
"""The broker's resident memory against its RocksDB budget, with the throughput it costs.

For each budget in turn (alternate them, so drift on the machine falls on both), one krait-broker
with `--storage-memory-mb MB` on a fresh data directory: `krait perf` produces RECORDS of 100 B
and RECORDS/4 of 1 KB (acks=all, one partition each), then consumes the 100 B topic; RSS is
read from /proc/PID/status after the produce runs and after the consume. Then READERS
`krait perf consume` processes read the 1 KB topic at once (each asks for 10 MiB per partition
and 50 MiB per fetch): the peak RSS while they read (VmHWM, reset before they start) is what
`fetch.memory.max.bytes` bounds. Malloc settings in GLIBC_TUNABLES reach only the broker (they
override its own allocator settings).

With `--producers N`, N `krait perf produce` processes then write RECORDS/4 records of 1 KB each
to a topic of their own at once, and the peak RSS while they write is reported the same way.

Each run is `STORAGE_MB` or `STORAGE_MB/FETCH_MEMORY_MIB` (fetch.memory.max.bytes in MiB; the
broker's default when not given), or krait-broker flags without their dashes, `flag=value`
joined by commas (`memory-mb=128`, `memory-mb=256,storage-memory-mb=64`, `default`):

    bench/memory.py --krait-broker-bin B --krait-cli-bin C [--records 2000000] 64 256 64 256
    bench/memory.py --krait-broker-bin B --krait-cli-bin C --readers 8 64/64 64/4096 64/64 64/4096
    bench/memory.py --krait-broker-bin B --krait-cli-bin C --readers 32 --producers 16 default memory-mb=256
"""
from __future__ import annotations

import argparse
import concurrent.futures
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


def concurrent_reads(b, cli: Path, topic: str, records: int, readers: int) -> dict:
    """`readers` consumers of `topic` at once; the broker's peak RSS while they read."""
    with open(f"/proc/{b.pid}/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(readers) as pool:
        rates = list(pool.map(lambda _: workloads.consume_krait_perf(cli, b.bootstrap, topic, records),
                              range(readers)))
    return {"readers": readers, "readers_peak_rss_mib": brokers.status_mib(b.pid, "VmHWM"),
            "readers_seconds": time.monotonic() - start,
            "readers_rec_s_total": readers * records / (time.monotonic() - start),
            "reader_rec_s_min": min(rates)}


def concurrent_writes(b, cli: Path, records: int, producers: int) -> dict:
    """`producers` producers of 1 KB records at once, each to its own topic; the broker's peak
    RSS while they write."""
    topics = [f"mem-{uuid.uuid4().hex[:8]}" for _ in range(producers)]
    for topic in topics:
        b.create_topic(topic, 1)
    with open(f"/proc/{b.pid}/clear_refs", "w") as f:
        f.write("5")
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(producers) as pool:
        list(pool.map(lambda t: workloads.produce_krait_perf(cli, b.bootstrap, t, records, 1000, "all", 5),
                      topics))
    return {"producers": producers, "producers_peak_rss_mib": brokers.status_mib(b.pid, "VmHWM"),
            "producers_rec_s_total": producers * records / (time.monotonic() - start)}


def broker_args(run: str) -> list[str]:
    """The krait-broker flags of one run (see the module's doc)."""
    if run == "default":
        return []
    if "=" in run:
        args = []
        for pair in run.split(","):
            flag, _, value = pair.partition("=")
            args += [f"--{flag}", value]
        return args
    budget_mb, _, fetch_mib = run.partition("/")
    args = ["--storage-memory-mb", budget_mb]
    if fetch_mib:
        args += ["--fetch-memory-max-bytes", str(int(fetch_mib) << 20)]
    return args


def measure(broker_bin: Path, cli: Path, run: str, records: int, readers: int, producers: int) -> dict:
    spec = brokers.BrokerSpec(f"krait-{run}", "krait", broker_bin, args=tuple(broker_args(run)))
    b = brokers.start(spec, Path(tempfile.mkdtemp(prefix="krait-memory-")))
    # The broker has its malloc settings; the load generators keep glibc's own.
    tunables = os.environ.pop("GLIBC_TUNABLES", None)
    try:
        time.sleep(2)
        row = {"run": run, "rss_idle_mib": b.rss()}
        small, large = f"mem-{uuid.uuid4().hex[:8]}", f"mem-{uuid.uuid4().hex[:8]}"
        b.create_topic(small, 1)
        b.create_topic(large, 1)
        cpu = b.cpu()
        row["produce_100b_rec_s"] = workloads.produce_krait_perf(cli, b.bootstrap, small, records, 100, "all", 5)
        row["cpu_s_per_m_100b"] = (b.cpu() - cpu) / records * 1e6
        cpu = b.cpu()
        row["produce_1kb_rec_s"] = workloads.produce_krait_perf(cli, b.bootstrap, large, records // 4, 1000, "all", 5)
        row["cpu_s_per_m_1kb"] = (b.cpu() - cpu) / (records // 4) * 1e6
        row["rss_after_produce_mib"] = b.rss()
        row["consume_100b_rec_s"] = workloads.consume_krait_perf(cli, b.bootstrap, small, records)
        row["rss_after_consume_mib"] = b.rss()
        if readers:
            row.update(concurrent_reads(b, cli, large, records // 4, readers))
        if producers:
            row.update(concurrent_writes(b, cli, records // 4, producers))
        return row
    finally:
        b.stop()
        if tunables is not None:
            os.environ["GLIBC_TUNABLES"] = tunables


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--krait-broker-bin", type=Path, required=True)
    ap.add_argument("--krait-cli-bin", type=Path, required=True)
    ap.add_argument("--records", type=int, default=2_000_000, help="100 B records; a quarter as many of 1 KB")
    ap.add_argument("--readers", type=int, default=0, help="consumers of the 1 KB topic at once, at the end")
    ap.add_argument("--producers", type=int, default=0, help="producers of 1 KB records at once, at the end")
    ap.add_argument("--out", type=Path, help="write the rows as JSON here too")
    ap.add_argument("runs", nargs="+", help="STORAGE_MB[/FETCH_MEMORY_MIB], flag=value,... or default; in order")
    args = ap.parse_args(argv)
    rows = []
    for run in args.runs:
        row = measure(args.krait_broker_bin, args.krait_cli_bin, run, args.records, args.readers, args.producers)
        rows.append(row)
        print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
