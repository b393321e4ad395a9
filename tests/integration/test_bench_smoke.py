"""The benchmark harness (bench/driver.py) in miniature, so it never rots: every workload runs
with 5,000 records, one run, Krait alone unless a Tansu binary is installed.

Asserts only that every figure was produced and is plausible (> 0), never speed.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from harness import binary_path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import driver  # noqa: E402

TANSU_BIN = Path(os.environ.get("TANSU_BIN") or Path.home() / ".cache" / "krait" / "tansu" / "bin" / "tansu")


@pytest.mark.slow
@pytest.mark.timeout(600)  # three brokers, each joining a consumer group, on a loaded machine
def test_bench_quick_run_produces_every_figure_and_the_report(tmp_path):
    brokers = "krait,tansu-sqlite,tansu-memory" if TANSU_BIN.exists() else "krait"
    argv = ["--krait-broker-bin", str(binary_path("KRAIT_BROKER_BIN", "krait-broker")),
            "--krait-cli-bin", str(binary_path("KRAIT_CLI_BIN", "krait")),
            "--tansu-bin", str(TANSU_BIN), "--brokers", brokers, "--quick",
            "--records", "5000", "--e2e-seconds", "1", "--idle-s", "0",
            "--out-dir", str(tmp_path / "results"), "--doc", str(tmp_path / "benchmarks.md"),
            "--work-dir", str(tmp_path / "work"),
            # The cluster part runs in miniature in the test below.
            "--no-cluster"]

    assert driver.main(argv) == 0

    results = json.loads((tmp_path / "results" / "results.json").read_text())
    assert results["errors"] == []
    names = brokers.split(",")
    workloads = {(f["workload"], f["metric"], f["broker"]): f for f in results["figures"]}
    produce = [w for w, *_ in driver.produce_matrix(5_000, 1_250)]
    expected = [(w, "records/s") for w in produce] + [
        ("consume p1 single confluent", "records/s"),
        ("consume p1 single krait-perf", "records/s"),
        ("consume p6 group-of-3 confluent", "records/s"),
        ("broker", "RSS idle MiB"),
        ("broker", "RSS after MiB"),
        ("broker", "CPU s/M records moved"),
    ]
    e2e = [w for w, *_ in workloads if w.startswith("e2e")]
    assert e2e, "no end-to-end latency figure"
    expected += [(e2e[0], m) for m in ("p50 ms", "p99 ms", "p999 ms")]
    for broker in names:
        for w, m in expected:
            f = workloads.get((w, m, broker))
            assert f is not None, f"{broker}: no figure for {w} / {m}"
            assert f["median"] > 0, f"{broker}: {w} / {m} is {f['median']}"
        # The broker burns some CPU moving records, and the percentiles are ordered.
        assert workloads[(produce[0], "broker CPU s/M records", broker)]["median"] >= 0
        p = [workloads[(e2e[0], m, broker)]["median"] for m in ("p50 ms", "p99 ms", "p999 ms")]
        assert p == sorted(p), f"{broker}: percentiles out of order {p}"

    doc = (tmp_path / "benchmarks.md").read_text()
    assert "| workload |" in doc and "## Cluster figures" in doc and "Not measured in this run" in doc
    for png in ("throughput.png", "latency.png", "resources.png"):
        path = tmp_path / "benchmarks" / png
        assert path.exists() and path.stat().st_size > 1000, f"missing plot {png}"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_cluster_bench_in_miniature_produces_every_figure(tmp_path, monkeypatch):
    """bench/cluster_bench.py with one failover, one throughput run and a 2 MB move: each figure is
    produced and plausible; nothing about speed is asserted."""
    monkeypatch.setenv("KRAIT_BROKER_BIN", str(binary_path("KRAIT_BROKER_BIN", "krait-broker")))
    monkeypatch.setenv("KRAIT_CLI_BIN", str(binary_path("KRAIT_CLI_BIN", "krait")))
    import cluster_bench as bench_cluster
    out = tmp_path / "cluster.json"
    assert bench_cluster.main(["--records", "20000", "--runs", "1", "--failovers", "1",
                               "--move-mb", "2", "--throttle", "2000000", "--out", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert 0 < figures["failover"]["median_s"] < 60
    assert figures["throughput"]["ratio"] > 0
    # Three brokers each store every record: they use CPU, the machine has some left or none.
    assert all(c > 0 for c in figures["throughput"]["rf3_cpu_s_per_m"])
    assert all(0 <= i <= 1 for i in figures["throughput"]["rf3_idle_share"])
    free, throttled = figures["reassignment"]
    assert free["mb_per_s"] > 0 and throttled["mb_per_s"] > 0
    assert throttled["p99_during_ms"] > 0
    assert 0 < figures["failover_sigterm"]["median_s"] < 60
    # The controller case kills a leader that was made the controller first.
    assert figures["failover_controller"]["was_controller"] == [True]
    assert 0 < figures["failover_controller"]["median_s"] < 60
    assert figures["throughput"]["controller_changes_under_load"] >= 0

    import report
    section = "\n".join(report.cluster_lines(figures))
    assert f"median **{figures['failover']['median_s']:.2f} s**" in section
    assert f"median **{figures['failover_sigterm']['median_s']:.2f} s**" in section
    assert f"median **{figures['failover_controller']['median_s']:.2f} s**" in section
    assert f"**{figures['throughput']['ratio']:.2f}**" in section
    assert "summed over the 3 brokers" in section
    assert section.count("MB/s**") == 2, section


def test_compaction_bench_in_miniature_produces_every_figure(capsys):
    """bench/compaction.py with a 20,000-record fill and no cleaner limit: the pass and both
    latency figures are produced and plausible; nothing about speed is asserted."""
    import compaction as bench_compaction
    assert bench_compaction.main([
        "--krait-broker-bin", str(binary_path("KRAIT_BROKER_BIN", "krait-broker")),
        "--fill", "20000", "--keys", "100", "--rate", "500", "--seconds", "1", "--settle", "0",
        "--rates", "0"]) == 0
    figures = {f["figure"]: f for f in map(json.loads, capsys.readouterr().out.splitlines())}
    compacted = figures["compaction pass"]
    assert compacted["records_removed"] >= 19_000, "all but the last value of 100 keys, and the last batch"
    assert compacted["bytes_read"] > 0 and compacted["mb_per_s_read"] > 0
    for name in ("produce latency, no compaction", "produce latency, while compacting"):
        assert figures[name]["records"] >= 400 and figures[name]["p99_ms"] > 0
