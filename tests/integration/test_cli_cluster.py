"""The krait CLI's cluster commands against real brokers: `cluster status`, `topic describe`
partition rows, `partition reassign` and `partition elect-leaders`, on a single broker and on
a three-broker cluster.

Reassignment and leader election go to the controller with AlterPartitionReassignments,
ListPartitionReassignments and ElectLeaders. On a single broker the tests accept either answer
a broker may give, and check the content of whichever they get: a broker that does not serve
those APIs must get a one-line error naming the API and a non-zero exit; one that does must
answer per partition. The three-broker test needs them served.
"""
from __future__ import annotations

import json
import re
import subprocess

import pytest

from harness import Cli, admin, create_topic, unique

NODE_ID = 3
THROTTLE_KEYS = ("leader.replication.throttled.rate", "follower.replication.throttled.rate")


@pytest.fixture
def node(broker_factory):
    """A broker with a node id other than the default, so ids in the output are its own."""
    return broker_factory(args=["--node-id", str(NODE_ID)])


@pytest.fixture
def krait(cli_bin, node) -> Cli:
    return Cli(cli_bin, node.bootstrap)


def stderr(cp: subprocess.CompletedProcess) -> str:
    return cp.stderr.decode(errors="replace")


def unsupported(cp: subprocess.CompletedProcess, api: str) -> bool:
    """Whether `cp` is the clear refusal of a broker without `api`: non-zero exit, nothing on
    stdout, and exactly one line on stderr naming the API."""
    err = stderr(cp)
    if f"does not support {api}" not in err:
        return False
    assert cp.returncode != 0, err
    assert err.strip().count("\n") == 0, f"expected one line:\n{err}"
    assert re.match(rf"^error: the broker at \S+ does not support {api} \(API key \d+\): ", err), err
    assert cp.stdout.decode().strip() == "", cp.stdout
    return True


def outcomes(cp: subprocess.CompletedProcess) -> dict[tuple[str, int], dict]:
    """The per-partition outcomes of a `-o json` reassign/elect run, by (topic, partition)."""
    rows = json.loads(cp.stdout.decode())
    assert isinstance(rows, list) and rows, cp.stdout
    return {(r["topic"], r["partition"]): r for r in rows}


def write_plan(tmp_path, partitions, version=1) -> str:
    path = tmp_path / f"plan-{unique('p')}.json"
    path.write_text(json.dumps({"version": version, "partitions": partitions}))
    return str(path)


def test_cluster_status_names_the_broker_as_controller_with_no_partition_problems(node, krait):
    name = create_topic(node.bootstrap, unique("status"), partitions=3)
    status = krait.json("cluster", "status")
    assert status["cluster_id"] == admin(node.bootstrap).list_topics(timeout=10).cluster_id
    assert status["controller_id"] == NODE_ID
    assert status["brokers"] == [{"id": NODE_ID, "host": "127.0.0.1", "port": node.port,
                                  "rack": None, "fenced": False, "controller": True}]
    assert status["topics"] >= 1 and status["partitions"] >= 3
    assert (status["under_replicated"], status["offline"], status["offline_replicas"]) == ([], [], [])

    cp = krait("cluster", "status")
    assert cp.returncode == 0
    text = cp.stdout.decode()
    assert f"Controller: {NODE_ID}" in text
    broker_rows = [line.split() for line in text.splitlines() if line.startswith(f"{NODE_ID} ")]
    assert broker_rows == [[str(NODE_ID), f"127.0.0.1:{node.port}", "-", "controller"]], text
    assert "Under-replicated partitions: 0" in text and "Offline partitions: 0" in text, text
    assert name not in text, "a healthy partition is not listed"


def test_topic_describe_rows_show_leader_epoch_replicas_isr_and_offline_replicas(node, krait):
    name = create_topic(node.bootstrap, unique("desc"), partitions=2)
    described = krait.json("topic", "describe", name)
    rows = described["partition_details"]
    assert [p["partition"] for p in rows] == [0, 1]
    for p in rows:
        assert (p["leader"], p["replicas"], p["isr"], p["offline_replicas"]) == (NODE_ID, [NODE_ID], [NODE_ID], []), p
        assert p["leader_epoch"] >= 0, p

    text = krait("topic", "describe", name).stdout.decode().splitlines()
    header = next(i for i, line in enumerate(text) if line.startswith("PARTITION"))
    assert text[header].split() == ["PARTITION", "LEADER", "LEADER-EPOCH", "REPLICAS", "ISR", "OFFLINE",
                                    "LOG-START", "HIGH-WATERMARK"]
    for i, line in enumerate(text[header + 1:]):
        partition, leader, epoch, replicas, isr, offline, *_ = line.split()
        assert (partition, leader, replicas, isr, offline) == (str(i), str(NODE_ID), str(NODE_ID), str(NODE_ID), "-")
        assert int(epoch) == rows[i]["leader_epoch"]


def test_invalid_plans_are_refused_with_every_problem_named(node, krait, tmp_path):
    name = create_topic(node.bootstrap, unique("plan"), partitions=1)
    bad = write_plan(tmp_path, [
        {"topic": name, "partition": 0, "replicas": [NODE_ID, NODE_ID]},
        {"topic": name, "partition": 0, "replicas": []},
    ], version=2)
    cp = krait("partition", "reassign", "--plan", bad, check=False)
    err = stderr(cp)
    assert cp.returncode != 0
    for problem in ["version 2 is not supported",
                    f"{name}-0: replica {NODE_ID} is listed more than once",
                    f"{name}-0: the replica list is empty",
                    f"{name}-0 is listed more than once (partitions[0] and partitions[1])"]:
        assert problem in err, err

    missing = unique("missing")
    unknown = write_plan(tmp_path, [{"topic": name, "partition": 0, "replicas": [NODE_ID, 99]},
                                    {"topic": missing, "partition": 0, "replicas": [NODE_ID]}])
    cp = krait("partition", "reassign", "--plan", unknown, check=False)
    err = stderr(cp)
    assert cp.returncode != 0
    assert f"{name}-0: broker 99 is not in the cluster (brokers: {NODE_ID})" in err, err
    assert f"topic {missing} does not exist" in err, err

    cp = krait("partition", "reassign", "--plan", str(tmp_path / "nope.json"), check=False)
    assert cp.returncode != 0 and "cannot read plan" in stderr(cp)


def test_reassign_is_refused_clearly_or_answered_per_partition(node, krait, tmp_path):
    name = create_topic(node.bootstrap, unique("move"), partitions=2)
    plan = write_plan(tmp_path, [{"topic": name, "partition": p, "replicas": [NODE_ID]} for p in (0, 1)])
    cp = krait("partition", "reassign", "--plan", plan, check=False, json_output=True)
    if unsupported(cp, "AlterPartitionReassignments"):
        return
    got = outcomes(cp)
    assert set(got) == {(name, 0), (name, 1)}
    for o in got.values():
        if o["ok"]:
            assert o["outcome"] == f"reassignment to {NODE_ID} started", o
        else:
            assert o["outcome"].startswith("failed: "), o
    assert (cp.returncode == 0) == all(o["ok"] for o in got.values()), stderr(cp)


def test_reassign_status_says_none_in_progress_or_is_refused_clearly(node, krait):
    name = create_topic(node.bootstrap, unique("idle"), partitions=1)
    for args in (["--status"], ["--status", "--topic", name]):
        cp = krait("partition", "reassign", *args, check=False)
        if unsupported(cp, "ListPartitionReassignments"):
            continue
        assert cp.returncode == 0, stderr(cp)
        assert cp.stdout.decode().strip() == "No reassignments in progress."
        assert krait.json("partition", "reassign", *args) == []


def test_reassign_cancel_is_refused_clearly_or_finds_nothing_to_cancel(node, krait, tmp_path):
    name = create_topic(node.bootstrap, unique("cancel"), partitions=1)
    plan = write_plan(tmp_path, [{"topic": name, "partition": 0, "replicas": [NODE_ID]}])
    cp = krait("partition", "reassign", "--cancel", "--plan", plan, check=False, json_output=True)
    if unsupported(cp, "AlterPartitionReassignments"):
        return
    assert cp.returncode == 0, stderr(cp)
    (o,) = outcomes(cp).values()
    assert o["ok"] and o["outcome"] in ("no reassignment in progress", "reassignment cancelled"), o


def test_throttle_is_set_and_cleared_on_every_broker_or_refused_naming_the_broker(node, krait, tmp_path):
    name = create_topic(node.bootstrap, unique("throttle"), partitions=1)
    plan = write_plan(tmp_path, [{"topic": name, "partition": 0, "replicas": [NODE_ID]}])
    cp = krait("partition", "reassign", "--plan", plan, "--throttle", "1048576", check=False, json_output=True)
    if not unsupported(cp, "AlterPartitionReassignments"):
        err = stderr(cp)
        if "cannot set the replication throttle" in err:
            assert cp.returncode != 0 and f"on broker {NODE_ID}: " in err, err
            assert cp.stdout.decode().strip() == "", "no reassignment is sent when the throttle fails"
        else:
            assert f"Replication throttle set to 1048576 bytes/s on brokers {NODE_ID}" in err, err
            assert (name, 0) in outcomes(cp)

    cp = krait("partition", "reassign", "--clear-throttle", check=False)
    err = stderr(cp)
    if cp.returncode == 0:
        assert f"Replication throttle removed from brokers {NODE_ID}" in err, err
    else:
        # Krait's broker configs are static today: the refusal names the broker and the keys.
        assert f"cannot clear the replication throttle on broker {NODE_ID}: " in err, err
        assert all(key in err for key in THROTTLE_KEYS), err


def test_preferred_election_is_refused_clearly_or_finds_the_preferred_leader_in_place(node, krait):
    name = create_topic(node.bootstrap, unique("elect"), partitions=2)
    for args in (["--topic", name, "--partition", "1"], ["--topic", name]):
        cp = krait("partition", "elect-leaders", *args, check=False, json_output=True)
        if unsupported(cp, "ElectLeaders"):
            continue
        assert cp.returncode == 0, stderr(cp)
        got = outcomes(cp)
        expected = {(name, 1)} if "--partition" in args else {(name, 0), (name, 1)}
        assert set(got) == expected
        for o in got.values():
            assert o["ok"] and o["outcome"] in ("already led by its preferred replica", "preferred leader elected"), o


def test_unclean_election_is_refused_clearly_or_finds_a_leader_in_place(node, krait):
    name = create_topic(node.bootstrap, unique("unclean"), partitions=1)
    cp = krait("partition", "elect-leaders", "--type", "unclean", "--topic", name, check=False, json_output=True)
    if unsupported(cp, "ElectLeaders"):
        return
    assert cp.returncode == 0, stderr(cp)
    (o,) = outcomes(cp).values()
    assert o["ok"] and o["outcome"] in ("already has a leader", "leader elected (unclean)"), o


def test_elect_leaders_needs_a_topic_or_every_partition(krait):
    cp = krait("partition", "elect-leaders", check=False)
    assert cp.returncode == 2 and "--all-topic-partitions" in stderr(cp)
    cp = krait("partition", "elect-leaders", "--partition", "0", check=False)
    assert cp.returncode == 2 and "--topic" in stderr(cp)


# ---------------------------------------------------------------- a three-broker cluster

@pytest.fixture
def trio(broker_factory):
    """Three brokers forming one cluster (ids 1, 2, 3) over their cluster listeners."""
    from harness import free_port

    cluster_ports = {i: free_port() for i in (1, 2, 3)}
    voters = ",".join(f"{i}@127.0.0.1:{p}" for i, p in cluster_ports.items())
    brokers = [broker_factory(args=["--node-id", str(i), "--cluster-listen", f"127.0.0.1:{p}",
                                    "--voters", voters], start=False)
               for i, p in cluster_ports.items()]
    for b in brokers:
        b.spawn()
    for b in brokers:
        b.wait_ready()
    return brokers


def test_cluster_commands_follow_a_reassignment_an_election_and_a_lost_broker(trio, cli_bin, tmp_path):
    from harness import wait_until

    krait = Cli(cli_bin, ",".join(b.bootstrap for b in trio))
    wait_until(lambda: len(krait.json("cluster", "status")["brokers"]) == 3, 60, "three registered brokers")
    status = krait.json("cluster", "status")
    assert [b["id"] for b in status["brokers"]] == [1, 2, 3]
    assert [b["id"] for b in status["brokers"] if b["controller"]] == [status["controller_id"]]

    name = unique("moving")
    krait("topic", "create", name, "--partitions", "1", "--replication-factor", "2")
    krait("produce", name, input="".join(f"record {i}\n" for i in range(50)))
    (before,) = krait.json("topic", "describe", name)["partition_details"]
    target = [b for b in (1, 2, 3) if b not in before["replicas"]] + [before["replicas"][0]]

    plan = write_plan(tmp_path, [{"topic": name, "partition": 0, "replicas": target}])
    (started,) = outcomes(krait("partition", "reassign", "--plan", plan, json_output=True)).values()
    assert started["ok"] and started["outcome"] == f"reassignment to {','.join(map(str, target))} started"

    def moved():
        (p,) = krait.json("topic", "describe", name)["partition_details"]
        return p if p["replicas"] == target and sorted(p["isr"]) == sorted(target) else None

    wait_until(lambda: krait.json("partition", "reassign", "--status") == [], 60, "the reassignment to finish")
    wait_until(moved, 60, f"{name}-0 on replicas {target}, all in sync")
    assert "No reassignments in progress." in krait("partition", "reassign", "--status").stdout.decode()

    elected = outcomes(krait("partition", "elect-leaders", "--topic", name, json_output=True))[(name, 0)]
    assert elected["ok"], elected
    wait_until(lambda: moved() and moved()["leader"] == target[0], 30, f"the preferred replica {target[0]} to lead")
    again = outcomes(krait("partition", "elect-leaders", "--topic", name, json_output=True))[(name, 0)]
    assert again == {"topic": name, "partition": 0, "ok": True, "outcome": "already led by its preferred replica"}

    follower = target[1]
    trio[follower - 1].stop()

    def under_replicated():
        s = krait.json("cluster", "status")
        return [p for p in s["under_replicated"] if p["topic"] == name]

    (p,) = wait_until(under_replicated, 60, f"{name}-0 to be under-replicated without broker {follower}")
    assert p["leader"] == target[0] and p["replicas"] == target and p["isr"] == [target[0]], p
    text = krait("cluster", "status").stdout.decode()
    assert "Under-replicated partitions: 1" in text and "Offline partitions: 0" in text, text
