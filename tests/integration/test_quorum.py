"""Changing the metadata quorum's voters while the cluster serves (KIP-853's AddRaftVoter and
RemoveRaftVoter, DescribeQuorum), with the `krait cluster quorum|add-voter|remove-voter`
commands, on real brokers under an idempotent acks=all workload.

One cluster of four brokers formed with a single voter (broker 1) goes through, in order:
growing to three voters; the controller removing its own voter (it steps down, another voter
leads); broker 4 made a voter while a voter is killed with SIGKILL part-way; and a voter whose
data directory is wiped, refused on restart, then replaced (removed, started empty, added).
Throughout, a prober times a metadata write (CreateTopics) every 100 ms: the longest one is
how long metadata writes stalled, printed with each step. Nothing acknowledged is lost.
"""
from __future__ import annotations

import shutil
import threading
import time

import pytest

from faults import ACK_TIMEOUT_S, PARTITIONS, TOPIC_CONFIG, WARM_UP_ACKS, check_nothing_lost

assert PARTITIONS == 3, "the workload topic's placement below has three partitions"
from harness import Cli, admin, unique, wait_until
from workload import Workload

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


class MetadataProber:
    """Creates a one-partition topic every 100 ms and keeps each creation's latency."""

    def __init__(self, bootstrap: str):
        self.admin = admin(bootstrap)
        self.stop_flag = threading.Event()
        self.samples: list[tuple[float, float]] = []
        self.failures: list[str] = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        from confluent_kafka.admin import NewTopic
        while not self.stop_flag.is_set():
            started = time.monotonic()
            name = unique("probe")
            try:
                self.admin.create_topics([NewTopic(name, 1, 1)], operation_timeout=30)[name].result(60)
            except Exception as e:  # a failed write is recorded, and the next one tried
                self.failures.append(f"{name}: {e}")
            self.samples.append((started, time.monotonic() - started))
            self.stop_flag.wait(0.1)

    def longest_since(self, since: float) -> float:
        return max((took for at, took in self.samples if at >= since), default=0.0)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        self.thread.join(90)


def quorum(cli: Cli) -> dict:
    return cli.json("cluster", "quorum")


def voters(cli: Cli) -> list[int]:
    return sorted(v["id"] for v in quorum(cli)["voters"])


def step(prober: MetadataProber, what: str, action) -> float:
    started = time.monotonic()
    action()
    took = time.monotonic() - started
    time.sleep(1.0)
    stall = prober.longest_since(started)
    print(f"{what}: {took:.2f} s; longest metadata write meanwhile {stall * 1000:.0f} ms")
    return stall


def test_voters_grow_shrink_and_are_replaced_while_serving_without_losing_a_record(cluster_factory, cli_bin):
    cluster = cluster_factory(4, voters=1)
    cli = Cli(cli_bin, cluster.bootstrap)
    q = quorum(cli)
    assert [v["id"] for v in q["voters"]] == [1] and q["leader"] == 1, q
    wait_until(lambda: sorted(o["id"] for o in quorum(cli)["observers"]) == [2, 3, 4], 30,
               "brokers 2-4 to follow the metadata log as observers")
    # Broker 4, whose volume is wiped below, leads one of the workload's partitions and follows
    # another: its replicas come back empty and must catch up before they count again.
    topic = cluster.create_topic(config=TOPIC_CONFIG, replica_assignment=[[1, 2, 3], [2, 3, 4], [4, 1, 2]])
    with Workload(cluster.bootstrap, topic, PARTITIONS) as work, MetadataProber(cluster.bootstrap) as prober:
        work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, "before the quorum changes")

        # Grow: one voter, then three.
        step(prober, "add-voter 2", lambda: cli("cluster", "add-voter", "2"))
        step(prober, "add-voter 3", lambda: cli("cluster", "add-voter", "3"))
        assert voters(cli) == [1, 2, 3]
        again = cli("cluster", "add-voter", "3").stdout.decode()
        assert "already is a voter" in again, again
        q = quorum(cli)
        assert all(v["log_end_offset"] > 0 and v["lag"] >= 0 for v in q["voters"]), q
        assert [o["id"] for o in q["observers"]] == [4], q

        # The controller removes its own voter: it steps down and another voter leads.
        controller = cluster.controller()
        step(prober, f"remove-voter {controller} (the controller)",
             lambda: cli("cluster", "remove-voter", str(controller)))
        wait_until(lambda: quorum(cli)["leader"] not in (controller, -1), 30,
                   f"a voter other than {controller} to lead")
        rest = sorted({1, 2, 3} - {controller})
        assert voters(cli) == rest
        assert controller in [o["id"] for o in quorum(cli)["observers"]], "it stays an observer"
        work.wait_for_acks(100, ACK_TIMEOUT_S, "after the controller left the voters")

        # Broker 4 becomes a voter while a voter is killed part-way: the joint change still has
        # a majority of the old voters and of the new ones.
        victim = next(v for v in rest if v != cluster.controller())
        adding = threading.Thread(target=lambda: cli("cluster", "add-voter", "4"))
        started = time.monotonic()
        adding.start()
        time.sleep(0.2)
        cluster.kill9(victim)
        adding.join(90)
        print(f"add-voter 4 with voter {victim} killed: {time.monotonic() - started:.2f} s; "
              f"longest metadata write meanwhile {prober.longest_since(started) * 1000:.0f} ms")
        assert voters(cli) == sorted(set(rest) | {4})
        cluster.restart(victim)
        work.wait_for_acks(100, ACK_TIMEOUT_S, "after the killed voter came back")
        cluster.wait_fully_replicated(topic, 60)

        # A voter whose data directory is lost must not come back as itself: refused, then
        # replaced by one documented sequence (remove, start empty, add).
        wiped = 4
        node = cluster.node(wiped)
        cluster.kill9(wiped)
        shutil.rmtree(node.broker.data_dir)
        proc = node.broker.spawn()
        code = proc.wait(60)
        log = node.broker.log_since_start()
        assert code != 0, log[-2000:]
        assert "data directory was lost" in log and f"remove-voter {wiped}" in log, log[-2000:]
        step(prober, f"remove-voter {wiped} (lost)", lambda: cli("cluster", "remove-voter", str(wiped)))
        cluster.restart(wiped)
        step(prober, f"add-voter {wiped} (replaced)", lambda: cli("cluster", "add-voter", str(wiped)))
        assert voters(cli) == sorted(set(rest) | {wiped})

        assert not prober.failures, prober.failures[:5]
        print(f"longest metadata write over the whole run: {prober.longest_since(0) * 1000:.0f} ms")
    check_nothing_lost(cluster, topic, work)
