#!/usr/bin/env python3
"""Krait side by side with the peer Tansu: the same workloads against each broker in turn.

Usually started by `bench/run`, which builds the binaries first. Each run starts every broker
afresh (Krait, then Tansu on SQLite, then Tansu in memory: runs alternate brokers), runs the
whole workload matrix against it, and stops it. Figures are medians over runs with min and
max; results go to JSON, a ratio table on stdout, PNG plots and docs/benchmarks.md.

    bench/driver.py --krait-broker-bin B --krait-cli-bin C [--tansu-bin T] [--records N] [--runs K] [--quick]
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import brokers  # noqa: E402
import cluster_bench  # noqa: E402
import report  # noqa: E402
import workloads  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
LINGER_MS = 5
E2E_LINGER_MS = 1
GROUP_MEMBERS = 3


def produce_matrix(records: int, records_1k: int):
    """(workload id, size, acks, partitions, client, records) for every produce workload."""
    for size, n in ((100, records), (1024, records_1k)):
        for acks in ("1", "all"):
            for partitions in (1, 6):
                for client in ("confluent", "krait-perf"):
                    label = "100B" if size == 100 else "1KB"
                    yield (f"produce {label} acks={acks} p{partitions} {client}", size, acks, partitions, client, n)


class Session:
    """One broker started for one run: runs workloads and records samples, CPU included."""

    def __init__(self, broker: brokers.RunningBroker, run: int, args, samples: list, errors: list):
        self.broker, self.run, self.args = broker, run, args
        self.samples, self.errors = samples, errors
        self.moved = 0  # records produced or consumed, for the whole-session CPU figure

    def add(self, workload: str, metric: str, value: float) -> None:
        self.samples.append({"broker": self.broker.spec.name, "run": self.run, "workload": workload,
                             "metric": metric, "value": value})

    def measure(self, workload: str, records: int, fn):
        """Runs `fn() -> records/s`, adding throughput and broker CPU s per million records.
        A failure is recorded and the session goes on with the next workload."""
        cpu0 = self.broker.cpu()
        try:
            rate = fn()
        except Exception as e:  # noqa: BLE001 - one failed workload must not lose the others
            self.fail(workload, e)
            return None
        cpu = self.broker.cpu() - cpu0
        self.moved += records
        self.add(workload, "records/s", rate)
        self.add(workload, "broker CPU s/M records", cpu / records * 1e6)
        print(f"  {self.broker.spec.name:13} {workload:38} {rate:>12,.0f} rec/s  "
              f"cpu {cpu / records * 1e6:6.2f} s/M", flush=True)
        return rate

    def fail(self, workload: str, e: BaseException) -> None:
        self.broker.assert_alive()  # a dead broker ends the session: nothing else can run
        msg = f"{self.broker.spec.name} run {self.run} {workload}: {e}"
        print(f"  FAILED {msg}", flush=True)
        self.errors.append(msg.splitlines()[0][:300])

    def topic(self, partitions: int) -> str:
        name = "bench-" + uuid.uuid4().hex[:10]
        self.broker.create_topic(name, partitions)
        return name

    def run_all(self) -> None:
        a, b = self.args, self.broker
        time.sleep(a.idle_s)  # let start-up allocations settle before the idle figure
        self.add("broker", "RSS idle MiB", b.rss())
        cpu_start = b.cpu()
        source = {}  # partitions -> a topic holding `records` 100 B records, for the consumers
        best_100b = None
        for workload, size, acks, partitions, client, n in produce_matrix(a.records, a.records_1k):
            if client not in a.clients:
                continue
            topic = self.topic(partitions)
            if client == "confluent":
                fn = lambda: workloads.produce_confluent(b.bootstrap, topic, n, size, acks, partitions, LINGER_MS)  # noqa: E731,B023
            else:
                fn = lambda: workloads.produce_krait_perf(a.krait_cli_bin, b.bootstrap, topic, n, size, acks, LINGER_MS)  # noqa: E731,B023
            rate = self.measure(workload, n, fn)
            if rate and size == 100 and acks == "all" and client == "confluent":
                source.setdefault(partitions, topic)
                if partitions == 1:
                    best_100b = rate
        self.consume(source)
        if best_100b:
            self.e2e(int(best_100b * a.e2e_load))
        self.add("broker", "RSS after MiB", b.rss())
        self.add("broker", "CPU s/M records moved", (b.cpu() - cpu_start) / max(self.moved, 1) * 1e6)

    def consume(self, source: dict) -> None:
        a, b = self.args, self.broker
        if 1 in source:
            if "confluent" in a.clients:
                self.measure("consume p1 single confluent", a.records,
                             lambda: workloads.consume_confluent(b.bootstrap, source[1], 1, a.records))
            if "krait-perf" in a.clients:
                self.measure("consume p1 single krait-perf", a.records,
                             lambda: workloads.consume_krait_perf(a.krait_cli_bin, b.bootstrap, source[1], a.records))
        if 6 in source:
            self.measure(f"consume p6 group-of-{GROUP_MEMBERS} confluent", a.records,
                         lambda: workloads.consume_group(b.bootstrap, source[6], 6, a.records, GROUP_MEMBERS))

    def e2e(self, rate: int) -> None:
        workload = f"e2e 100B acks=all p1 at {int(self.args.e2e_load * 100)}% of max"
        try:
            topic = self.topic(1)
            warmup = min(1.0, self.args.e2e_seconds / 4)
            if "krait-perf" in self.args.clients:
                f = workloads.e2e_latency_krait_perf(self.args.krait_cli_bin, self.broker.bootstrap, topic, rate,
                                                     self.args.e2e_seconds, warmup, linger_ms=E2E_LINGER_MS)
            else:
                f = workloads.e2e_latency(self.broker.bootstrap, topic, rate, self.args.e2e_seconds, warmup,
                                          linger_ms=E2E_LINGER_MS)
        except Exception as e:  # noqa: BLE001
            self.fail(workload, e)
            return
        for metric in ("p50_ms", "p99_ms", "p999_ms"):
            self.add(workload, metric.replace("_ms", " ms"), f[metric])
        self.add(workload, "rate records/s", f["achieved_rate"])
        print(f"  {self.broker.spec.name:13} {workload:38} at {f['achieved_rate']:,} rec/s: p50 {f['p50_ms']} "
              f"p99 {f['p99_ms']} p999 {f['p999_ms']} ms", flush=True)


def broker_specs(args) -> list[brokers.BrokerSpec]:
    specs = []
    for name in args.brokers:
        if name == "krait":
            specs.append(brokers.BrokerSpec("krait", "krait", args.krait_broker_bin))
        elif args.tansu_bin and Path(args.tansu_bin).exists():
            specs.append(brokers.BrokerSpec(name, "tansu", Path(args.tansu_bin), engine=name.split("-")[1]))
        else:
            print(f"skipping {name}: no tansu binary (--tansu-bin)", file=sys.stderr)
    return specs


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--krait-broker-bin", type=Path, required=True)
    ap.add_argument("--krait-cli-bin", type=Path, required=True)
    ap.add_argument("--tansu-bin", type=Path)
    ap.add_argument("--brokers", default="krait,tansu-sqlite,tansu-memory",
                    help="comma-separated, from krait, tansu-sqlite, tansu-memory")
    ap.add_argument("--clients", default="confluent,krait-perf", help="produce/consume clients")
    ap.add_argument("--records", type=int, help="records per 100 B workload (default 1,000,000)")
    ap.add_argument("--records-1k", type=int, help="records per 1 KB workload (default records/4)")
    ap.add_argument("--runs", type=int, help="runs per broker (default 3)")
    ap.add_argument("--e2e-seconds", type=float, help="duration of the latency workload (default 10)")
    ap.add_argument("--e2e-load", type=float, default=0.5, help="latency rate as a fraction of the max")
    ap.add_argument("--idle-s", type=float, help="seconds idle before the idle RSS (default 3)")
    ap.add_argument("--quick", action="store_true",
                    help="seconds, not minutes: 20,000 records, 1 run, 2 s latency run")
    ap.add_argument("--out-dir", type=Path, help="results.json (default: the plots dir)")
    ap.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmarks.md")
    ap.add_argument("--plots-dir", type=Path, help="PNG plots (default: docs/benchmarks/ next to --doc)")
    ap.add_argument("--work-dir", type=Path, default=Path.home() / ".cache" / "krait" / "bench",
                    help="broker data directories (on disk) and logs")
    ap.add_argument("--command", default=None, help="the command line to print in the doc")
    ap.add_argument("--cluster", action=argparse.BooleanOptionalAction, default=True,
                    help="also measure the cluster (bench/cluster_bench.py): failover, 3 brokers "
                         "RF=3 against one, reassignment (default on; --quick runs it in miniature)")
    ap.add_argument("--report-only", type=Path, metavar="RESULTS_JSON",
                    help="run nothing: redraw the table, plots and doc from a results.json")
    args = ap.parse_args(argv)
    quick = args.quick
    args.records = args.records or (20_000 if quick else 1_000_000)
    args.records_1k = args.records_1k or max(args.records // 4, 1)
    args.runs = args.runs or (1 if quick else 3)
    args.e2e_seconds = args.e2e_seconds or (2.0 if quick else 10.0)
    args.idle_s = args.idle_s if args.idle_s is not None else (0.5 if quick else 3.0)
    args.brokers = [b for b in args.brokers.split(",") if b]
    args.clients = [c for c in args.clients.split(",") if c]
    args.plots_dir = args.plots_dir or args.doc.parent / "benchmarks"
    args.out_dir = args.out_dir or args.plots_dir
    args.command = args.command or "bench/driver.py " + " ".join(sys.argv[1:] if argv is None else argv)
    return args


def run_bench(args) -> dict:
    """Runs every broker for every run and returns {meta, samples, figures, errors}; writes
    nothing. Every broker started is stopped before this returns or raises."""
    specs = broker_specs(args)
    samples, errors = [], []
    args.work_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=args.work_dir))
    started = time.time()
    for run in range(args.runs):
        for spec in specs:
            print(f"run {run + 1}/{args.runs}: {spec.name}", flush=True)
            try:
                broker = brokers.start(spec, work / spec.name)
            except Exception as e:  # noqa: BLE001 - the other brokers can still run
                errors.append(f"{spec.name} run {run}: did not start: {str(e).splitlines()[0][:300]}")
                print(e, file=sys.stderr)
                continue
            try:
                Session(broker, run, args, samples, errors).run_all()
            except Exception as e:  # noqa: BLE001 - a dead broker loses this session, not the bench
                errors.append(f"{spec.name} run {run}: {str(e).splitlines()[0][:300]}")
                traceback.print_exc()
            finally:
                broker.stop()
    cluster = run_cluster(args, errors) if args.cluster else None
    meta = report.machine_and_versions(args, specs)
    meta["duration_s"] = round(time.time() - started)
    return {"meta": meta, "samples": samples, "figures": report.aggregate(samples), "errors": errors,
            "cluster": cluster}


def run_cluster(args, errors: list) -> dict | None:
    """The cluster figures (Krait only: the peer has no replication to compare), or None with
    the failure in `errors`."""
    cluster_bench.BROKER, cluster_bench.CLI = args.krait_broker_bin, args.krait_cli_bin
    if args.quick:
        params = dict(records=20_000, runs=1, failovers=1, move_mb=2, throttle=2_000_000)
    else:
        # Long enough that every broker flushes and compacts many times over: at 300 k records
        # (the old figure) a run ended before the first compaction, and three brokers measured
        # twice as fast as they held up.
        params = dict(records=max(args.records * 2, 1), runs=args.runs, failovers=5,
                      move_mb=50, throttle=5_000_000)
    print(f"cluster: {params}", flush=True)
    try:
        return cluster_bench.run(**params)
    except Exception as e:  # noqa: BLE001 - the single-broker figures still stand
        errors.append(f"cluster: {str(e).splitlines()[0][:300]}")
        traceback.print_exc()
        return None


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.report_only:
        results = json.loads(args.report_only.read_text())
    else:
        results = run_bench(args)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "results.json").write_text(json.dumps(results, indent=1))
    print(report.table(results))
    plots = report.plots(results, args.plots_dir)
    report.write_doc(results, args.doc, plots)
    print(f"\nresults: {args.out_dir / 'results.json'}\ndoc: {args.doc}\nplots: {', '.join(map(str, plots))}")
    if results["errors"]:
        print("errors:\n  " + "\n  ".join(results["errors"]))
    return 0


if __name__ == "__main__":
    # SIGTERM must unwind through the `finally` that stops the broker, like ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
