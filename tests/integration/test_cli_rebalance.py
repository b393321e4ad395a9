"""`krait partition rebalance` against a real three-broker cluster (one rack per broker).

A topic crowded onto brokers 1 and 2 is planned onto all three: the dry run shows the moves
onto broker 3 and changes nothing, `--plan-out` writes them in Kafka's reassignment format,
`--execute` starts them and the replicas end up four per broker, and planning again finds the
cluster already balanced. A target too small for a topic's replication factor is refused,
naming the topic, and nothing is submitted.
"""
from __future__ import annotations

import json
import subprocess
from collections import Counter

import pytest

from harness import Cli, unique, wait_until

pytestmark = pytest.mark.cluster

PARTITIONS = 6
REASSIGN_TIMEOUT_S = 90.0


def stderr(cp: subprocess.CompletedProcess) -> str:
    return cp.stderr.decode(errors="replace")


def replicas_per_broker(view, topic: str) -> Counter:
    return Counter(r for p in view.topic(topic) for r in p.replicas)


def placement(view, topic: str) -> dict[int, tuple[int, ...]]:
    return {p.partition: p.replicas for p in view.topic(topic)}


def test_rebalance_plans_moves_onto_the_idle_broker_executes_them_and_then_finds_nothing_to_do(
        cluster_factory, cli_bin, tmp_path):
    cluster = cluster_factory(3)
    crowded = cluster.create_topic(name=unique("crowded"),
                                   replica_assignment=[[1, 2], [2, 1]] * (PARTITIONS // 2))
    krait = Cli(cli_bin, cluster.bootstrap)
    before = placement(cluster.view([crowded]), crowded)

    # Dry run, as a person reads it: totals, counts per broker, and moves onto broker 3.
    dry = krait("partition", "rebalance")
    text = dry.stdout.decode()
    assert "Target brokers: 1,2,3" in text and "Replicas moved: 4" in text, text
    rows = [line.split() for line in text.splitlines()]
    assert ["3", "rack3", "yes", "0", "->", "4"] in [r[:6] for r in rows], text
    moves = [r for r in rows if r and r[0] == crowded]
    assert len(moves) >= 4, text
    assert "Add --execute" in stderr(dry), stderr(dry)

    # As a script reads it: the planner's Plan.
    plan = krait.json("partition", "rebalance")
    summary = plan["summary"]
    assert (summary["replicasMoved"], summary["bytesMoved"]) == (4, 0), summary
    assert summary["replicasPerBrokerBefore"] == {"1": 6, "2": 6, "3": 0}, summary
    assert summary["replicasPerBrokerAfter"] == {"1": 4, "2": 4, "3": 4}, summary
    assert summary["leadersPerBrokerAfter"] == {"1": 2, "2": 2, "3": 2}, summary
    assert sum(3 in m["to"] for m in plan["moves"]) == 4, plan["moves"]
    for m in plan["moves"]:
        assert m["topic"] == crowded and tuple(m["from"]) == before[m["partition"]], m

    # Kafka's reassignment format, for the moves alone.
    out = tmp_path / "rebalance.json"
    krait("partition", "rebalance", "--plan-out", str(out))
    written = json.loads(out.read_text())
    assert written == {"version": 1, "partitions": [
        {"topic": m["topic"], "partition": m["partition"], "replicas": m["to"]} for m in plan["moves"]]}

    # Nothing changed.
    assert krait.json("partition", "reassign", "--status") == []
    assert placement(cluster.view([crowded]), crowded) == before

    # Execute: every move started in one go; the command does not wait.
    started = krait("partition", "rebalance", "--execute", json_output=True)
    outcomes = json.loads(started.stdout.decode())
    assert sorted((o["topic"], o["partition"]) for o in outcomes) == sorted(
        (m["topic"], m["partition"]) for m in plan["moves"])
    assert all(o["ok"] and o["outcome"].startswith("reassignment to ") for o in outcomes), outcomes
    assert "krait partition reassign --status" in stderr(started), stderr(started)

    target = dict(before) | {m["partition"]: m["to"] for m in plan["moves"]}
    cluster.wait_for(
        lambda views: all(v.placed_on(crowded, p, r) for v in views.values() for p, r in target.items())
        and all(replicas_per_broker(v, crowded) == {1: 4, 2: 4, 3: 4} for v in views.values()),
        REASSIGN_TIMEOUT_S, "four replicas of the topic on each of brokers 1-3, all in sync", topics=[crowded])
    wait_until(lambda: krait.json("partition", "reassign", "--status") == [], REASSIGN_TIMEOUT_S,
               "no reassignment in progress")

    # Planned again: nothing left to do.
    again = krait("partition", "rebalance")
    assert "Already balanced" in again.stdout.decode(), again.stdout
    assert krait.json("partition", "rebalance")["moves"] == []
    idle = krait("partition", "rebalance", "--execute")
    assert "Already balanced" in idle.stdout.decode(), idle.stdout


def test_a_target_too_small_for_a_topics_replication_factor_is_refused_naming_it(cluster_factory, cli_bin):
    cluster = cluster_factory(3)
    narrow = cluster.create_topic(name=unique("narrow"), partitions=2, replication_factor=2)
    wide = cluster.create_topic(name=unique("wide"), partitions=1, replication_factor=3)
    krait = Cli(cli_bin, cluster.bootstrap)
    before = placement(cluster.view([narrow, wide]), narrow), placement(cluster.view([narrow, wide]), wide)

    for extra in ([], ["--execute"]):
        cp = krait("partition", "rebalance", "--brokers", "1,2", *extra, check=False)
        err = stderr(cp)
        assert cp.returncode != 0, err
        assert f"cannot plan the rebalance: 2 target broker(s) cannot hold the replicas of {wide} " \
               "(replication factor 3)" in err, err
        assert narrow not in err, err
        assert cp.stdout.decode().strip() == "", cp.stdout

    assert krait.json("partition", "reassign", "--status") == []
    view = cluster.view([narrow, wide])
    assert (placement(view, narrow), placement(view, wide)) == before
