#!/usr/bin/env python3
"""Draws the "Krait / Cluster overview" dashboard from a real run, as a PNG for the docs (Grafana
is not packaged for Debian; the panels' own PromQL is evaluated by a real Prometheus, Debian's
package, and plotted with matplotlib).

The run: three brokers on loopback scraped every second; two topics (RF 3) under a steady
acks=all load from `krait perf produce --throughput`; a consumer group reading one of them
slower than it is written; broker 3 killed with SIGKILL a third of the way in and started again
at two thirds. Then every overview panel named in PANELS is queried over the run
(`query_range`, 2 s steps) and drawn.

    bench/dashboard_png.py                        # 120 s, writes docs/metrics-overview.png
    bench/dashboard_png.py --seconds 60 --out /tmp/overview.png
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from confluent_kafka import Consumer, KafkaException  # noqa: E402

from cluster_bench import CLI, Cluster, wait  # noqa: E402
from ports import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OVERVIEW = ROOT / "charts" / "krait-operator" / "files" / "dashboards" / "krait-overview.json"
PANELS = [
    "Under-replicated partitions",
    "Brokers by state",
    "Bytes in per second",
    "Bytes out per second",
    "Request latency p99 by API",
    "Time waiting on replicas or data, p99",
    "Partition leaders per broker",
    "ISR shrinks and expands per second",
    "Broker CPU",
    "Broker memory (RSS)",
]


class MonitoredCluster(Cluster):
    """The benchmark's cluster, each broker with its /metrics port."""

    def __init__(self, work: Path, n: int):
        super().__init__(work, n)
        self.http = {i: free_port() for i in self.ids}

    def start(self, i: int) -> None:
        saved = self.extra
        self.extra = saved + ["--http-listen", f"127.0.0.1:{self.http[i]}"]
        try:
            super().start(i)
        finally:
            self.extra = saved


class Prometheus:
    def __init__(self, work: Path, targets: list[str]):
        self.port = free_port()
        config = work / "prometheus.yml"
        config.write_text(json.dumps({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "krait", "static_configs": [
                {"targets": targets, "labels": {"krait_cluster": "main", "namespace": "kafka"}}]}],
        }))
        binary = shutil.which("prometheus")
        if not binary:
            raise SystemExit("prometheus is missing: `tests/setup test` installs Debian's package")
        self.proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={work / 'tsdb'}",
                                      f"--web.listen-address=127.0.0.1:{self.port}"],
                                     stdout=open(work / "prometheus.log", "wb"), stderr=subprocess.STDOUT)
        wait(self.ready, 60, "Prometheus")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def range(self, expr: str, start: float, end: float, step: str = "2s") -> list:
        query = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v1/query_range?{query}", timeout=30) as r:
            answer = json.loads(r.read())
        if answer["status"] != "success":
            raise RuntimeError(f"{expr}: {answer}")
        return answer["data"]["result"]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=15)


def load(bootstrap: str, topic: str, rate: int, seconds: float) -> subprocess.Popen:
    records = int(rate * seconds)
    return subprocess.Popen([str(CLI), "perf", "produce", "--bootstrap-server", bootstrap, "--topic", topic,
                             "--num-records", str(records), "--record-size", "200", "--acks", "all",
                             "--throughput", str(rate), "--timeout-ms", "60000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def slow_consumer(bootstrap: str, topic: str, stop: threading.Event, per_second: int) -> None:
    """A group member reading `per_second` records a second and committing each second."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "billing", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    try:
        while not stop.is_set():
            started = time.monotonic()
            got = c.consume(num_messages=per_second, timeout=1.0)
            if got:
                try:
                    c.commit(asynchronous=False)
                except KafkaException:
                    pass  # a rebalance (the killed broker's partitions moving) fenced this commit
            time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    finally:
        c.close()


def legend(labels: dict, fmt: str) -> str:
    out = fmt
    for k, v in labels.items():
        out = out.replace("{{" + k + "}}", v)
    return out


def draw(prom: Prometheus, start: float, end: float, events: list[tuple[float, str]], out: Path) -> None:
    board = json.loads(OVERVIEW.read_text())
    panels = {p["title"]: p for p in board["panels"]}
    fig, axes = plt.subplots((len(PANELS) + 1) // 2, 2, figsize=(14, 3.0 * ((len(PANELS) + 1) // 2)), sharex=True)
    for ax, title in zip(axes.flat, PANELS):
        panel = panels[title]
        unit = panel["fieldConfig"]["defaults"]["unit"]
        scale, suffix = {"Bps": (1 / 1e6, " MB/s"), "bytes": (1 / 2**20, " MiB"), "s": (1000, " ms"),
                         "percentunit": (100, " %")}.get(unit, (1, ""))
        for target in panel["targets"]:
            expr = target["expr"].replace("$cluster", ".*").replace("$__rate_interval", "10s")
            for series in prom.range(expr, start, end):
                xs = [float(t) - start for t, _ in series["values"]]
                ys = [float(v) * scale for _, v in series["values"]]
                ax.plot(xs, ys, label=legend(series["metric"], target.get("legendFormat", "")) or None)
        for at, what in events:
            ax.axvline(at - start, color="grey", linestyle="--", linewidth=0.8)
        ax.set_title(title + (f" ({suffix.strip()})" if suffix else ""), fontsize=10)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper left")
    for ax in axes.flat[len(PANELS):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("seconds")
    marks = "; ".join(f"{what} at {at - start:.0f} s" for at, what in events)
    fig.suptitle(f"Krait / Cluster overview, from a real run: three brokers, {marks} (dashed lines)", fontsize=12)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--rate", type=int, default=5000, help="records per second per topic")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "metrics-overview.png")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="krait-dashboard-"))
    cluster = MonitoredCluster(work, 3).start_all()
    prom = None
    stop = threading.Event()
    try:
        for topic, partitions in (("orders", 6), ("payments", 3)):
            cluster.create(topic, partitions, 3)
            wait(lambda t=topic: cluster.full_isr(t), 60, f"{topic} fully replicated")
        prom = Prometheus(work, [f"127.0.0.1:{cluster.http[i]}" for i in cluster.ids])
        start = time.time()
        producers = [load(cluster.bootstrap, t, args.rate, args.seconds) for t in ("orders", "payments")]
        reader = threading.Thread(target=slow_consumer, args=(cluster.bootstrap, "orders", stop, args.rate // 2),
                                  daemon=True)
        reader.start()
        events = []
        time.sleep(args.seconds / 3)
        cluster.kill9(3)
        events.append((time.time(), "broker 3 killed"))
        time.sleep(args.seconds / 3)
        cluster.start(3)
        events.append((time.time(), "restarted"))
        time.sleep(args.seconds / 3)
        end = time.time()
        stop.set()
        for p in producers:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=30)
        reader.join(timeout=10)
        draw(prom, start, end, events, args.out)
        print(f"wrote {args.out}")
    finally:
        stop.set()
        if prom:
            prom.stop()
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
