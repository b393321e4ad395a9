#!/usr/bin/env python3
"""Where a Krait broker spends its CPU in one benchmark workload: starts a broker, samples it
with `perf record -g` (Debian's linux-perf) while `krait perf` produces or consumes, and
prints the hottest symbols (self time) and the hottest call chains.

    bench/profile.py --krait-broker-bin B --krait-cli-bin C produce|consume [--records N] [--acks all]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import brokers  # noqa: E402
import workloads  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--krait-broker-bin", type=Path, required=True)
    ap.add_argument("--krait-cli-bin", type=Path, required=True)
    ap.add_argument("workload", choices=("produce", "consume"))
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--acks", default="all")
    ap.add_argument("--top", type=int, default=35)
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "krait-perf.data")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="krait-profile-"))
    broker = brokers.start(brokers.BrokerSpec("krait", "krait", args.krait_broker_bin), work)
    perf = None
    try:
        topic = "profile-" + uuid.uuid4().hex[:8]
        broker.create_topic(topic, 1)
        if args.workload == "consume":
            workloads.produce_krait_perf(args.krait_cli_bin, broker.bootstrap, topic, args.records, args.size,
                                         args.acks, 5)
        # Sample only while the measured workload runs; DWARF-less frame walking (fp) is
        # enough for Rust release builds with line tables, and far cheaper.
        perf = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-p", str(broker.pid), "-o", str(args.out)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cpu0 = broker.cpu()
        if args.workload == "produce":
            rate = workloads.produce_krait_perf(args.krait_cli_bin, broker.bootstrap, topic, args.records,
                                                args.size, args.acks, 5)
        else:
            rate = workloads.consume_krait_perf(args.krait_cli_bin, broker.bootstrap, topic, args.records)
        cpu = broker.cpu() - cpu0
        print(f"{args.workload}: {rate:,.0f} records/s, broker CPU {cpu:.2f} s "
              f"({cpu / args.records * 1e6:.2f} s per million records)")
    finally:
        if perf is not None:
            perf.send_signal(2)  # SIGINT: perf writes its data and exits
            perf.wait(timeout=60)
        broker.stop()
    report = subprocess.run(["perf", "report", "-i", str(args.out), "--stdio", "--no-children",
                             "--sort", "dso,symbol", "-g", "none", "--percent-limit", "0.5"],
                            capture_output=True, text=True)
    lines = [line for line in report.stdout.splitlines() if line.strip() and not line.startswith("#")]
    print("\nself time by symbol:")
    print("\n".join(lines[: args.top]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
