"""Growing and shrinking a running cluster. A broker the voters do not list joins as an
observer of the metadata quorum (it receives the log, never votes); partitions move onto it
and off it again under load; the drained broker is stopped and unregistered. A broker that
comes back on its old volume (a StatefulSet scaled 3 -> 4 -> 3 -> 4 reuses the fourth broker's
claim) serves nothing from what the volume remembers. The workload (`workload.Workload`,
idempotent acks=all) runs throughout and nothing acknowledged is lost.
"""
from __future__ import annotations

import json
from typing import Optional
import socket
import urllib.error
import urllib.request

import pytest
from confluent_kafka import TopicPartition

from cluster import metadata
from faults import (ACK_TIMEOUT_S, PARTITIONS, RECOVERY_TIMEOUT_S, TOPIC_CONFIG, WARM_UP_ACKS,
                    check_nothing_lost)
from harness import Cli, admin, assert_delivered, consume, port_accepts, produce_all, producer, wait_until, watermarks
from ports import free_port
from workload import Workload

# How long the voters stay paused while the returning broker starts: what it would serve from
# its volume's image, it serves within this.
QUORUM_PAUSE_S = 3.0

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def reassign(cli: Cli, tmp_path, topic: str, placement: dict[int, list[int]]) -> None:
    plan = tmp_path / f"plan-{abs(hash(json.dumps(placement, sort_keys=True)))}.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [
        {"topic": topic, "partition": p, "replicas": r} for p, r in placement.items()]}))
    cli("partition", "reassign", "--plan", str(plan))


def test_an_observer_joins_takes_partitions_is_drained_and_unregistered_without_losing_a_record(
        cluster_factory, cli_bin, tmp_path):
    cluster = cluster_factory(3)
    topic = cluster.create_topic(PARTITIONS, 3, TOPIC_CONFIG)
    cli = Cli(cli_bin, cluster.bootstrap)
    with Workload(cluster.bootstrap, topic, PARTITIONS) as work:
        work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, "before the new broker")

        new = cluster.add_broker()
        assert new == 4
        status = cli.json("cluster", "status")
        assert sorted(b["id"] for b in status["brokers"]) == [1, 2, 3, 4]
        assert status["controller_id"] in (1, 2, 3), "an observer never becomes the controller"

        # Each partition gives one replica to the new broker.
        onto = {p: [4 if r == p + 1 else r for r in (1, 2, 3)] for p in range(PARTITIONS)}
        reassign(cli, tmp_path, topic, onto)
        cluster.wait_for(lambda vs: all(v.placed_on(topic, p, r) for v in vs.values() for p, r in onto.items()),
                         RECOVERY_TIMEOUT_S, "every partition on its new replicas, the observer's in the ISR",
                         topics=[topic])
        work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, "with a replica on the new broker")

        # Alive, it cannot be unregistered; nor can a voter, ever.
        refused = cli("cluster", "unregister-broker", "4", check=False)
        assert refused.returncode != 0 and b"alive" in refused.stderr, refused.stderr
        voter = cli("cluster", "unregister-broker", "1", check=False)
        assert voter.returncode != 0 and b"voter" in voter.stderr, voter.stderr

        # Drain it: everything back on the voters.
        back = {p: [1, 2, 3] for p in range(PARTITIONS)}
        reassign(cli, tmp_path, topic, back)
        cluster.wait_for(lambda vs: all(v.placed_on(topic, p, r) for v in vs.values() for p, r in back.items()),
                         RECOVERY_TIMEOUT_S, "every partition back on brokers 1-3", topics=[topic])
        work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, "after draining the new broker")

        # Stopped and fenced, drained: unregistered, once.
        cluster.node(4).broker.stop()
        cluster.remove_node(4)
        cluster.wait_for(lambda vs: all(4 not in v.brokers for v in vs.values()), RECOVERY_TIMEOUT_S,
                         "broker 4 fenced")
        cli("cluster", "unregister-broker", "4")
        again = cli("cluster", "unregister-broker", "4", check=False)
        assert again.returncode != 0 and b"BrokerIdNotRegistered" in again.stderr, again.stderr
        work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, "after unregistering broker 4")
    check_nothing_lost(cluster, topic, work)


def readyz(port: int) -> Optional[int]:
    """/readyz's status, or None while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, OSError):
        return None


def values(records) -> list[bytes]:
    return [r.value for r in records]


def test_a_broker_back_on_its_old_volume_serves_nothing_stale_and_resyncs_from_the_leaders(
        cluster_factory, cli_bin, tmp_path):
    """Kafka's stray replicas and stale registrations: broker 4 is killed holding replicas; while
    it is gone its partitions move away, one loses its first records (DeleteRecords), another
    topic is deleted and created again under the same name, and the broker is unregistered. Back
    on the same data directory, its volume's image says it is a live broker leading partitions:
    it must answer nobody by that image (not before the controller registered this process),
    drop the stray copies, and once partitions move back read exactly what the leaders hold."""
    http = free_port()
    cluster = cluster_factory(3, node_args=lambda i: ["--http-listen", f"127.0.0.1:{http}"] if i == 4 else [])
    topic = cluster.create_topic(PARTITIONS, 3, TOPIC_CONFIG)
    cli = Cli(cli_bin, cluster.bootstrap)
    with Workload(cluster.bootstrap, topic, PARTITIONS) as work:
        work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, "before the new broker")
        assert cluster.add_broker() == 4
        onto = {p: [4 if r == p + 1 else r for r in (1, 2, 3)] for p in range(PARTITIONS)}
        reassign(cli, tmp_path, topic, onto)
        trimmed = cluster.create_topic(replica_assignment=[[4, 1, 2]], config=TOPIC_CONFIG)
        recreated = cluster.create_topic(replica_assignment=[[4, 1, 2]], config=TOPIC_CONFIG)
        for name in (trimmed, recreated):
            assert_delivered(produce_all(producer(cluster.bootstrap, acks="all"), name,
                                         [dict(value=f"old-{i}".encode(), partition=0) for i in range(100)]))
        cluster.wait_for(lambda vs: all(v.placed_on(topic, p, r) for v in vs.values() for p, r in onto.items()),
                         RECOVERY_TIMEOUT_S, "a replica of every partition on broker 4, in the ISR", topics=[topic])

        # Killed holding replicas (and maybe leaderships): its volume keeps them, and an image
        # in which broker 4 is live.
        cluster.kill9(4)
        cluster.wait_for(lambda vs: all(4 not in v.brokers for v in vs.values()), RECOVERY_TIMEOUT_S,
                         "broker 4 fenced")

        # While it is gone: its partitions move away, one loses its first 60 records, another
        # topic is re-created under the same name, and it is unregistered.
        back = {p: [1, 2, 3] for p in range(PARTITIONS)}
        reassign(cli, tmp_path, topic, back)
        reassign(cli, tmp_path, trimmed, {0: [1, 2, 3]})
        cluster.wait_for(lambda vs: all(v.placed_on(topic, p, r) for v in vs.values() for p, r in back.items())
                         and all(v.placed_on(trimmed, 0, [1, 2, 3]) for v in vs.values()),
                         RECOVERY_TIMEOUT_S, "broker 4's replicas moved to brokers 1-3", topics=[topic, trimmed])
        a = admin(cluster.bootstrap)
        deleted = a.delete_records([TopicPartition(trimmed, 0, 60)])[TopicPartition(trimmed, 0)]
        assert deleted.result(timeout=30).low_watermark == 60
        a.delete_topics([recreated], operation_timeout=30)[recreated].result(timeout=30)
        cluster.wait_for(lambda vs: all(v.partition(recreated, 0) is None for v in vs.values()),
                         RECOVERY_TIMEOUT_S, f"{recreated} deleted everywhere")
        cluster.create_topic(replica_assignment=[[1, 2, 3]], config=TOPIC_CONFIG, name=recreated)
        assert_delivered(produce_all(producer(cluster.bootstrap, acks="all"), recreated,
                                     [dict(value=f"new-{i}".encode(), partition=0) for i in range(30)]))
        cli("cluster", "unregister-broker", "4")
        work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, "with broker 4 unregistered")

        # Back on its old volume while no voter answers: the image it restores says it is live
        # (and led partitions), and it must serve nothing by it.
        node = cluster.node(4)
        for voter in (1, 2, 3):
            cluster.pause(voter)
        try:
            node.spawn()
            # /readyz answers once the broker has opened its volume and its quorum node.
            assert wait_until(lambda: readyz(http), 30, "broker 4's /readyz to answer") == 503, \
                "ready before the controller registered this process"
            assert port_accepts(node.broker.port)
            with pytest.raises((socket.timeout, TimeoutError)):
                metadata(node.bootstrap, 4, [trimmed], timeout=QUORUM_PAUSE_S)
            assert readyz(http) == 503
            node.assert_not_crashed()
        finally:
            for voter in (1, 2, 3):
                cluster.resume(voter)
        cluster.wait_for(lambda vs: 4 in vs and all(4 in v.brokers for v in vs.values()), RECOVERY_TIMEOUT_S,
                         "broker 4 registered again")
        wait_until(lambda: readyz(http) == 200, 30, "broker 4 ready")
        log = node.broker.log_since_start()
        assert "dropped the data of a partition moved off this broker" in log, log[-5000:]
        assert "deleted topic" in log and recreated in log, log[-5000:]

        # Its replicas come back and it leads them: it reads what the leaders hold, no more.
        for name in (trimmed, recreated):
            reassign(cli, tmp_path, name, {0: [4, 1, 2]})
        cluster.wait_for(lambda vs: all(v.placed_on(n, 0, [4, 1, 2]) for v in vs.values() for n in (trimmed, recreated)),
                         RECOVERY_TIMEOUT_S, "broker 4 back in both ISRs", topics=[trimmed, recreated])
        for name in (trimmed, recreated):
            cli("partition", "elect-leaders", "--topic", name)
        cluster.wait_for(lambda vs: all(v.partition(n, 0).leader == 4 for v in vs.values() for n in (trimmed, recreated)),
                         RECOVERY_TIMEOUT_S, "broker 4 leading both", topics=[trimmed, recreated])
        assert watermarks(node.bootstrap, trimmed, 0) == (60, 100)
        got = consume(node.bootstrap, trimmed, [0], timeout=30)
        assert [r.offset for r in got] == list(range(60, 100))
        assert values(got) == [f"old-{i}".encode() for i in range(60, 100)]
        assert watermarks(node.bootstrap, recreated, 0) == (0, 30)
        got = consume(node.bootstrap, recreated, [0], timeout=30)
        assert values(got) == [f"new-{i}".encode() for i in range(30)], "the deleted topic's records came back"
        work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, "after broker 4 came back")
    check_nothing_lost(cluster, topic, work)
