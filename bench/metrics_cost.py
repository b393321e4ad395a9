#!/usr/bin/env python3
"""What the broker's metrics cost on the produce path, in one run: broker CPU per million
records produced (100 B, acks=all, `krait perf produce`), with /metrics scraped every second
and without scraping, alternating runs on one krait-broker; and what one scrape costs. The
counters themselves are always on (there is no build without them), so the figure is the cost
of being scraped on top of counting. Prints one JSON line per run and a summary with medians
and their ratio; never asserts a speed.

    bench/metrics_cost.py                         # 3 runs of each, 1M records, ABBA order
    bench/metrics_cost.py --runs 5 --records 2000000
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import brokers
from ports import free_port

ROOT = Path(__file__).resolve().parents[1]


def binary(env: str, name: str) -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return Path(os.environ.get(env, target / "release" / name))


class Scraper:
    """GETs /metrics every `period` seconds until stopped; keeps each scrape's wall time."""

    def __init__(self, port: int, period: float):
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.period = period
        self.times: list[float] = []
        self.bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            started = time.monotonic()
            with urllib.request.urlopen(self.url, timeout=10) as r:
                self.bytes = len(r.read())
            self.times.append(time.monotonic() - started)
            self._stop.wait(self.period)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=15)


def wait_idle(broker, limit: float = 0.05, timeout: float = 60.0) -> None:
    """Until the broker used under `limit` of a CPU over a second (or `timeout` passed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = broker.cpu()
        time.sleep(1)
        if broker.cpu() - before < limit:
            return


def produce(cli: Path, bootstrap: str, topic: str, records: int) -> dict:
    out = subprocess.run([str(cli), "perf", "produce", "--bootstrap-server", bootstrap, "--topic", topic,
                          "--num-records", str(records), "--record-size", "100", "--acks", "all",
                          "-o", "json"], capture_output=True, check=True, timeout=600)
    return json.loads(out.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="runs of each kind, alternating")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--period", type=float, default=1.0, help="seconds between scrapes")
    args = parser.parse_args()
    cli = binary("KRAIT_CLI_BIN", "krait")
    http = free_port()
    spec = brokers.BrokerSpec("krait", "krait", binary("KRAIT_BROKER_BIN", "krait-broker"),
                              args=("--http-listen", f"127.0.0.1:{http}"))
    with tempfile.TemporaryDirectory(prefix="krait-metrics-cost-") as work:
        broker = brokers.start(spec, Path(work))
        try:
            cpu = {"scraped": [], "unscraped": []}
            scrape_ms: list[float] = []
            size = 0
            # ABBA order, and each run starts once the broker is idle again (RocksDB flushes and
            # compactions of the run before land in no run's figure).
            kinds = ["unscraped", "scraped", "scraped", "unscraped"] * args.runs
            for run, kind in enumerate(kinds[:args.runs * 2]):
                topic = f"metrics-cost-{run}"
                broker.create_topic(topic, args.partitions)
                wait_idle(broker)
                before = broker.cpu()
                if kind == "scraped":
                    with Scraper(http, args.period) as s:
                        report = produce(cli, broker.bootstrap, topic, args.records)
                    scrape_ms += [t * 1000 for t in s.times]
                    size = s.bytes
                else:
                    report = produce(cli, broker.bootstrap, topic, args.records)
                per_million = (broker.cpu() - before) / args.records * 1e6
                cpu[kind].append(per_million)
                print(json.dumps({"run": run, "kind": kind, "records": args.records,
                                  "broker_cpu_s_per_million": round(per_million, 3),
                                  "records_per_s": report.get("records_per_sec")}), flush=True)
            summary = {kind: round(statistics.median(v), 3) for kind, v in cpu.items()}
            print(json.dumps({
                "summary": "broker CPU s per million records, median",
                **summary,
                "ratio_scraped_to_unscraped": round(summary["scraped"] / summary["unscraped"], 3),
                "scrape_ms_median": round(statistics.median(scrape_ms), 2) if scrape_ms else None,
                "scrapes": len(scrape_ms),
                "exposition_bytes": size,
                "load_average": os.getloadavg(),
            }), flush=True)
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
