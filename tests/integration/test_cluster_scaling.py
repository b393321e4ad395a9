"""Growing and shrinking a running cluster. A broker the voters do not list joins as an
observer of the metadata quorum (it receives the log, never votes); partitions move onto it
and off it again under load; the drained broker is stopped and unregistered. The workload
(`workload.Workload`, idempotent acks=all) runs throughout and nothing acknowledged is lost.
"""
from __future__ import annotations

import json

import pytest

from faults import (ACK_TIMEOUT_S, PARTITIONS, RECOVERY_TIMEOUT_S, TOPIC_CONFIG, WARM_UP_ACKS,
                    check_nothing_lost)
from harness import Cli
from workload import Workload

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
