"""The fault tests' shared steps: fault the leader of a partition under load and wait until it is
replaced from the ISR, and check afterwards that nothing acknowledged was lost. They work on any
cluster with `cluster.Cluster`'s waits and views: processes on loopback, in network namespaces,
or containers (`containers.ContainerCluster`).
"""
from __future__ import annotations

import time

from cluster import Cluster, ClusterView
from harness import consume
from workload import Workload, audit

PARTITIONS = 3
TOPIC_CONFIG = {"min.insync.replicas": "2"}
WARM_UP_ACKS = 400
ACK_TIMEOUT_S = 30.0
FAILOVER_TIMEOUT_S = 20.0
RECOVERY_TIMEOUT_S = 60.0


def check_nothing_lost(cluster: Cluster, topic: str, work: Workload) -> None:
    """After the run: full ISR, then the log read back holds exactly what was acknowledged."""
    work.stop()
    cluster.wait_fully_replicated(topic, RECOVERY_TIMEOUT_S)
    final = consume(cluster.bootstrap, topic, range(PARTITIONS), timeout=RECOVERY_TIMEOUT_S)
    report = audit(work, final)
    print(f"\n{topic}: {report.summary()}\n{cluster.describe([topic])}")
    problems = report.problems()
    assert not problems, "\n".join(problems) + f"\n{report.summary()}"
    assert report.read >= report.acknowledged


def replaced(views: dict[int, ClusterView], topic: str, victim: int, before: ClusterView) -> bool:
    """`victim` is fenced in every view, and each partition it led has a new leader from the
    ISR it had, with a higher leader epoch; no partition keeps `victim` in its ISR."""
    for v in views.values():
        if victim in v.brokers:
            return False
        for p in v.topic(topic):
            old = before.partition(topic, p.partition)
            if old is None or p.leader < 0 or p.leader == victim or victim in p.isr:
                return False
            if old.leader == victim and (p.leader not in old.isr or p.leader_epoch <= old.leader_epoch):
                return False
    return True


def fault_the_leader(cluster, topic, work, what, fault, recover):
    """Faults the leader of partition 0 under load, waits until it is replaced from the ISR and
    writes go on, undoes the fault, and waits for full replication and more writes."""
    before = cluster.view([topic])
    victim = before.partition(topic, 0).leader
    started = time.monotonic()
    fault(victim)
    cluster.wait_for(lambda vs: replaced(vs, topic, victim, before), FAILOVER_TIMEOUT_S,
                     f"{what} broker {victim} fenced and its partitions led from the ISR", topics=[topic])
    print(f"\nleader {victim} {what}: replaced after {time.monotonic() - started:.1f}s")
    work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, f"with broker {victim} {what}")
    recover(victim)
    cluster.wait_fully_replicated(topic, RECOVERY_TIMEOUT_S)
    work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, f"after broker {victim} recovered")
