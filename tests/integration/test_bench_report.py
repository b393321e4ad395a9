"""The benchmark report's targets table (bench/report.py): each verdict relative to a peer is
judged on the ratio of two medians of one run and names the peer and the ratio; without the
peer's figure it is "n/a", never "met" on Krait's figure alone. Pure: synthetic results."""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import report  # noqa: E402


def fig(workload: str, metric: str, broker: str, median: float) -> dict:
    return {"workload": workload, "metric": metric, "broker": broker, "median": median}


def rows(figures: list[dict], cluster: dict | None = None) -> dict[str, tuple[str, str]]:
    results = {"figures": figures, "cluster": cluster}
    return {target: (measured, verdict) for target, measured, verdict in report.targets(results)}


def test_a_goal_against_the_peer_names_the_peer_and_the_ratio_it_was_judged_on():
    w = "produce 1KB acks=all p1 krait-perf"
    got = rows([fig(w, "records/s", "krait", 600_000), fig(w, "records/s", "tansu-memory", 500_000),
                fig(w, "records/s", "tansu-sqlite", 100_000)])
    measured, verdict = got["produce 1 KB acks=all, 1 partition, krait-perf: ≥ 1.5× tansu-memory"]
    assert measured == f"600,000 rec/s ({w})"
    # 6× tansu-sqlite does not count: the goal is against Tansu in memory.
    assert verdict == "NOT met: 1.20× tansu-memory"


def test_lower_is_better_for_cpu_and_a_missing_peer_is_not_a_verdict():
    w = "produce 100B acks=all p1 krait-perf"
    got = rows([fig(w, "broker CPU s/M records", "krait", 0.2),
                fig(w, "broker CPU s/M records", "tansu-memory", 0.25),
                fig(w, "records/s", "krait", 1_500_000)])
    _, cpu = got["broker CPU per million records produced, 100B acks=all p1: ≤ tansu-memory"]
    assert cpu == "met: 0.80× tansu-memory"
    _, rate = got["produce 100 B acks=all, 1 partition, krait-perf: ≥ 1.0× tansu-memory"]
    assert rate == "n/a: no tansu-memory figure in this run"


def test_absolute_goals_and_the_cluster_rows():
    cluster = {"throughput": {"ratio": 0.77}, "failover": {"median_s": 1.2},
               "failover_controller": {"median_s": 1.7}}
    got = rows([fig("e2e 100B acks=all at 50%", "p99 ms", "krait", 23.4),
                fig("broker", "RSS after MiB", "krait", 100.0)], cluster)
    assert got["end-to-end p99 at half of the maximum rate ≤ 5 ms"][1] == "NOT met: absolute"
    assert got["RSS after the runs ≤ 128 MiB"][1] == "met: absolute"
    assert got["3 brokers RF=3 / one broker, acks=all 100 B: ≥ 0.9"] == (
        "0.77", "NOT met: Krait against itself, same run")
    assert got["failover, kill -9 of a leader → acks=all answered: median ≤ 1.5 s"][1] == "met: absolute"
    assert got["the same when that leader is also the controller: median ≤ 1.5 s"] == (
        "1.70 s", "NOT met: absolute")
