"""Faults in a cluster under load: a leader killed, every broker killed at once, a follower
paused, the controller killed, a leader cut off from the network, replicas reassigned, a voter
and a broker back on empty volumes.

Every test runs the same workload (`workload.Workload`): an idempotent acks=all producer
writing keyed records to a topic with 3 partitions, replication factor 3 and
min.insync.replicas=2, and consumers reading all partitions at the same time. After the fault
and the recovery, production stops, the cluster must come back to full ISR, and the log read
from the beginning must hold every acknowledged record exactly once at its acknowledged offset,
each key's records in sequence order, and everything a consumer saw during the run.
"""
from __future__ import annotations

import shutil
import time

import pytest

from faults import (ACK_TIMEOUT_S, FAILOVER_TIMEOUT_S, PARTITIONS, RECOVERY_TIMEOUT_S, TOPIC_CONFIG,
                    WARM_UP_ACKS, check_nothing_lost, fault_the_leader, replaced)
from harness import consume, wait_until
from netns import NetnsUnavailable, NetworkLab
from workload import Workload, audit

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def test_killed_leader_is_replaced_from_the_isr_and_catches_up_after_restart(cluster_factory):
    cluster = cluster_factory(3)
    topic = cluster.create_topic(PARTITIONS, 3, TOPIC_CONFIG)
    with Workload(cluster.bootstrap, topic, PARTITIONS) as work:
        work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, "before the fault")
        fault_the_leader(cluster, topic, work, "killed", cluster.kill9, cluster.restart)
    check_nothing_lost(cluster, topic, work)


def test_every_broker_killed_at_once_and_started_again_loses_no_acknowledged_record(cluster_factory):
    # Replicas write their high watermarks every few seconds, not at every fetch, so each
    # broker comes back with one older than it served: the leaders must bring it back from the
    # replicas before consumers can read what was acknowledged.
    cluster = cluster_factory(3)
    topic = cluster.create_topic(PARTITIONS, 3, TOPIC_CONFIG)
    with Workload(cluster.bootstrap, topic, PARTITIONS) as work:
        work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, "before the fault")
        for i in sorted(cluster.nodes):
            cluster.kill9(i)
        acked = work.acked_count()
        cluster.start()
        work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, "after every broker started again")
        print(f"\n{acked} records acknowledged before every broker was killed")
    check_nothing_lost(cluster, topic, work)


def test_paused_follower_leaves_the_isr_after_the_lag_time_and_rejoins_when_resumed(cluster_factory):
    # The session timeout is longer than the pause, so the follower leaves the ISR because it
    # lags (replica.lag.time.max.ms), not because the controller fenced it: the kill -9 tests
    # cover fencing.
    lag_ms = 2000
    cluster = cluster_factory(3, heartbeat_interval_ms=250, session_timeout_ms=10000,
                              replica_lag_time_max_ms=lag_ms)
    follower = next(i for i in sorted(cluster.nodes, reverse=True) if i != cluster.controller())
    others = sorted(set(cluster.nodes) - {follower})
    # Preferred leaders are the others: the paused broker leads nothing.
    assignment = [[others[0], others[1], follower], [others[1], others[0], follower],
                  [others[0], others[1], follower]]
    topic = cluster.create_topic(replica_assignment=assignment, config=TOPIC_CONFIG)
    assert follower not in cluster.view([topic]).leaders(topic).values(), cluster.describe([topic])
    with Workload(cluster.bootstrap, topic, PARTITIONS) as work:
        work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, "before the pause")
        paused_at = time.monotonic()
        cluster.pause(follower)
        views = cluster.wait_for(lambda vs: all(follower not in p.isr for v in vs.values() for p in v.topic(topic)),
                                 lag_ms / 1000 + 8, f"paused broker {follower} to leave every ISR", topics=[topic])
        print(f"\nfollower {follower} paused: out of every ISR after {time.monotonic() - paused_at:.1f}s "
              f"(replica.lag.time.max.ms={lag_ms})")
        assert all(follower in v.brokers for v in views.values()), \
            f"broker {follower} was fenced rather than dropped from the ISR for lagging:\n{cluster.describe([topic])}"
        work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, f"with broker {follower} out of the ISR")
        cluster.resume(follower)
        cluster.wait_fully_replicated(topic, RECOVERY_TIMEOUT_S)
        work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, f"after broker {follower} rejoined")
    check_nothing_lost(cluster, topic, work)


def test_killed_controller_is_succeeded_and_the_load_goes_on(cluster_factory):
    cluster = cluster_factory(3)
    topic = cluster.create_topic(PARTITIONS, 3, TOPIC_CONFIG)
    with Workload(cluster.bootstrap, topic, PARTITIONS) as work:
        work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, "before the fault")
        before = cluster.view([topic])
        old = cluster.controller()
        killed_at = time.monotonic()
        cluster.kill9(old)
        cluster.wait_for(lambda vs: replaced(vs, topic, old, before)
                         and len({v.controller_id for v in vs.values()}) == 1
                         and all(v.controller_id not in (old, -1) for v in vs.values()),
                         FAILOVER_TIMEOUT_S, f"a new controller after broker {old}", topics=[topic])
        print(f"\ncontroller {old} killed: succeeded after {time.monotonic() - killed_at:.1f}s")
        work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, "under the new controller")
        # The new controller changes metadata: a topic placed on the two live brokers.
        cluster.create_topic(1, 2, name=f"{topic}-after")
        cluster.restart(old)
        cluster.wait_fully_replicated(topic, RECOVERY_TIMEOUT_S)
        work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, f"after broker {old} rejoined")
    check_nothing_lost(cluster, topic, work)


@pytest.fixture
def network_lab():
    lab = NetworkLab([1, 2, 3])
    try:
        lab.setup()
    except NetnsUnavailable as e:
        pytest.skip(f"network namespaces are not available here: {e}")
    yield lab
    lab.teardown()


@pytest.mark.parametrize("peers_only", [False, True], ids=["whole-link", "peer-link-only"])
def test_leader_cut_off_from_the_network_is_replaced_and_rejoins_after_healing(network_lab, cluster_factory,
                                                                               peers_only):
    """Cut from everything, the old leader is simply gone. Cut from its peers only, it still
    takes produce requests from clients that have not yet learned of the new leader: it must not
    acknowledge any of them with acks=all (no follower can fetch them, and its ISR cannot shrink
    without the controller), and it must drop them when it rejoins."""
    with network_lab.clients():
        cluster = cluster_factory(3, placement=network_lab)
        topic = cluster.create_topic(PARTITIONS, 3, TOPIC_CONFIG)
        with Workload(cluster.bootstrap, topic, PARTITIONS, check_client_side=network_lab.check_client_side) as work:
            work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, "before the cut")
            fault_the_leader(cluster, topic, work, "cut off",
                             lambda v: cluster.cut(v, peers_only=peers_only), cluster.heal)
        check_nothing_lost(cluster, topic, work)


def test_reassignment_under_load_moves_replicas_to_new_brokers_without_loss(cluster_factory):
    from kafka import KafkaAdminClient, TopicPartition
    from kafka import errors as kafka_errors

    cluster = cluster_factory(4)
    topic = cluster.create_topic(replica_assignment=[[1, 2, 3], [2, 3, 1], [3, 1, 2]], config=TOPIC_CONFIG)
    target = {0: [2, 3, 4], 1: [3, 4, 2], 2: [4, 2, 3]}
    unsupported = (kafka_errors.UnsupportedVersionError, kafka_errors.IncompatibleBrokerVersion)
    with Workload(cluster.bootstrap, topic, PARTITIONS) as work:
        work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, "before the reassignment")
        client = KafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=30000)
        try:
            try:
                result = client.alter_partition_reassignments(
                    {TopicPartition(topic, p): r for p, r in target.items()}, timeout_ms=30000)
            except unsupported as e:
                pytest.xfail(f"AlterPartitionReassignments is not served: {e!r}")
            errors = {tp.partition: err for tp, err in result.items() if err is not None}
            if any(isinstance(err, type) and issubclass(err, unsupported) for err in errors.values()):
                pytest.xfail(f"AlterPartitionReassignments answered {errors}")
            assert not errors, f"reassignment refused: {errors}"
            requested_at = time.monotonic()
            cluster.wait_for(lambda vs: all(v.placed_on(topic, p, r) for v in vs.values() for p, r in target.items()),
                             RECOVERY_TIMEOUT_S, f"replicas of {topic} to move to {target}", topics=[topic])
            print(f"\nreassignment done after {time.monotonic() - requested_at:.1f}s")
            ongoing = client.list_partition_reassignments({topic: list(target)})
            assert not ongoing, f"reassignments still listed after completion: {ongoing}"
        finally:
            client.close()
        work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, "after the reassignment")
    check_nothing_lost(cluster, topic, work)


def test_a_voter_restarted_on_an_empty_data_directory_refuses_to_rejoin_and_nothing_is_lost(cluster_factory):
    """A voter whose volume is lost must not come back as itself (it forgot its votes and the
    entries it acknowledged): it exits non-zero saying so, and the other two go on serving with
    every acknowledged record."""
    cluster = cluster_factory(3)
    topic = cluster.create_topic(PARTITIONS, 3, TOPIC_CONFIG)
    with Workload(cluster.bootstrap, topic, PARTITIONS) as work:
        work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, "before the fault")
        victim = next(i for i in sorted(cluster.nodes) if i != cluster.controller())
        node = cluster.node(victim)
        node.kill9()
        shutil.rmtree(node.broker.data_dir)
        node.spawn()
        node.killed = True  # expected to exit
        wait_until(lambda: node.broker.proc.poll() is not None, 60, f"wiped voter {victim} to refuse")
        log = node.broker.log_text()
        assert node.broker.proc.returncode != 0, log[-3000:]
        assert "data directory was lost" in log, log[-3000:]
        work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, f"with wiped voter {victim} refused")
    work.stop()
    final = consume(cluster.bootstrap, topic, range(PARTITIONS), timeout=RECOVERY_TIMEOUT_S)
    report = audit(work, final)
    print(f"\nwiped voter {victim} refused to rejoin; {topic}: {report.summary()}")
    assert not report.problems(), "\n".join(report.problems())
    assert report.read >= report.acknowledged


def test_a_broker_back_on_an_empty_volume_within_its_session_leads_nothing_and_loses_nothing(cluster_factory):
    """A broker killed and started again on an empty data directory before the controller fenced
    it (a replaced volume, a pod rescheduled onto a new disk) must not lead, or count in an ISR,
    with logs it no longer has. Its registration carries the new directory's id, which takes it
    out of every ISR and leadership in the same metadata record; it catches up as a follower and
    rejoins, and every acknowledged record survives. (Before directory ids it kept leading its
    partitions at the same epoch with empty logs: 814 acknowledged records lost.)"""
    # One voter, so the wiped broker is an observer that may start empty; a session long enough
    # that it is back before the controller would fence it.
    cluster = cluster_factory(3, voters=1, session_timeout_ms=20000)
    wiped = 2
    topic = cluster.create_topic(config=TOPIC_CONFIG, replica_assignment=[[2, 3, 1], [3, 2, 1], [1, 3, 2]])
    with Workload(cluster.bootstrap, topic, PARTITIONS) as work:
        work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, "before the fault")
        before = cluster.view([topic])
        assert before.partition(topic, 0).leader == wiped, cluster.describe([topic])
        node = cluster.node(wiped)
        node.kill9()
        shutil.rmtree(node.broker.data_dir)
        started = time.monotonic()
        cluster.restart(wiped)
        back = time.monotonic() - started
        assert back < 15, f"broker {wiped} took {back:.1f} s to register: the controller may have fenced it"

        def led_anew(views):
            for v in views.values():
                p = v.partition(topic, 0)
                old = before.partition(topic, 0)
                if p is None or p.leader < 0 or p.leader not in old.isr or p.leader_epoch <= old.leader_epoch:
                    return False
            return True

        cluster.wait_for(led_anew, FAILOVER_TIMEOUT_S, "partition 0 led anew from the rest of its ISR",
                         topics=[topic])
        print(f"\nbroker {wiped} back on an empty volume after {back:.1f} s; partition 0 led anew "
              f"after {time.monotonic() - started:.1f} s")
        log = cluster.node(cluster.controller()).broker.log_text()
        assert "back with a new data directory" in log, log[-3000:]
        work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, f"after broker {wiped} came back empty")
        cluster.wait_fully_replicated(topic, RECOVERY_TIMEOUT_S)
    check_nothing_lost(cluster, topic, work)


def test_a_killed_leader_is_fenced_on_its_refused_port_long_before_its_session_ends_and_a_paused_one_is_not(
        cluster_factory):
    """A broker that misses a heartbeat has its cluster port probed by the controller: after
    kill -9 nothing listens there, the connection is refused, and the broker is fenced and its
    partitions led anew at once rather than after the session timeout (10 s here). A paused
    broker's kernel still accepts the connection, so pausing one never fences it early."""
    session_s = 10
    cluster, controller, victim, topic = led_by_a_victim(cluster_factory, heartbeat_interval_ms=250,
                                                         session_timeout_ms=session_s * 1000)
    with Workload(cluster.bootstrap, topic, PARTITIONS) as work:
        work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, "before the faults")
        logged = len(cluster.node(victim).broker.log_text())
        cluster.pause(victim)
        time.sleep(3)  # a dozen heartbeats missed, a probe every 375 ms
        views = cluster.views([topic])
        cluster.resume(victim)
        assert all(victim in v.brokers for v in views.values()), \
            f"paused broker {victim} was fenced before its session ended:\n{cluster.describe([topic])}"
        cluster.wait_fully_replicated(topic, RECOVERY_TIMEOUT_S)
        work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, f"after broker {victim} was resumed")
        # The 3 s the leader stood still are more than replica.lag.time.max.ms (3 s here), but
        # they were its own stall, not its followers' lag: it keeps them in its ISR.
        time.sleep(1)  # five ISR checks after the resume
        since_pause = cluster.node(victim).broker.log_text()[logged:]
        assert "stood still" in since_pause, since_pause[-3000:]
        assert "asking the controller to change the ISR" not in since_pause, \
            f"broker {victim} dropped its followers after its own pause:\n{since_pause[-3000:]}"

        # A voter resuming from a pause may call a Raft election and win it, so the controller
        # is looked up again: the broker killed leads partitions and is not the controller,
        # whose own failover is Raft's (the metadata quorum's election), not this probe's.
        controller = cluster.controller()
        before = cluster.view([topic])
        assert all(p.fully_replicated for p in before.topic(topic)), cluster.describe([topic])
        leaders = {p.leader for p in before.topic(topic)} - {controller}
        killed = victim if victim in leaders else max(leaders)
        # Well inside the session: only the refused probe can fence it this soon.
        kill_and_expect_fenced_within(cluster, topic, work, killed, before, controller, session_s / 2,
                                      f"session timeout {session_s} s")
    check_nothing_lost(cluster, topic, work)


def led_by_a_victim(cluster_factory, **settings):
    """Three brokers with `settings`, and a topic of which a broker other than the controller
    (the victim) leads two partitions of three and follows the third."""
    cluster = cluster_factory(3, **settings)
    controller = cluster.controller()
    victim = next(i for i in sorted(cluster.nodes, reverse=True) if i != controller)
    a, b = sorted(set(cluster.nodes) - {victim})
    topic = cluster.create_topic(replica_assignment=[[victim, a, b], [a, victim, b], [victim, b, a]],
                                 config=TOPIC_CONFIG)
    return cluster, controller, victim, topic


def kill_and_expect_fenced_within(cluster, topic, work, killed, before, controller, within_s, setting,
                                  reason: str = "cluster port refuses connections"):
    """kill -9 of `killed`; it must be fenced and its partitions led anew within `within_s`, the
    controller's log must give `reason`, and writes go on; then it is restarted and catches up."""
    killed_at = time.monotonic()
    cluster.kill9(killed)
    cluster.wait_for(lambda vs: replaced(vs, topic, killed, before), within_s,
                     f"broker {killed} fenced and its partitions led anew", topics=[topic])
    print(f"\nbroker {killed} killed: fenced and replaced after {time.monotonic() - killed_at:.2f} s ({setting})")
    log = cluster.node(controller).broker.log_text()
    assert "cluster port refuses connections" in log, log[-3000:]
    assert reason in log, log[-3000:]
    work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, f"after broker {killed} was killed")
    cluster.restart(killed)
    cluster.wait_fully_replicated(topic, RECOVERY_TIMEOUT_S)
    work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, f"after broker {killed} rejoined")


def test_a_killed_leader_is_fenced_when_the_controller_loses_its_connection_before_any_heartbeat_is_missed(
        cluster_factory):
    """The controller sends the metadata log to every broker (Raft appends, every 100 ms when
    idle); an append that finds the broker's connection closed or refused has its cluster port
    probed at once, without waiting for a missed heartbeat. With heartbeats every 3 s, a probe
    for silence cannot start before 4.5 s without one, that is 1.5 s after the kill at the
    earliest: a leader fenced and replaced sooner was found through the lost connection."""
    heartbeat_s = 3
    # A probe for silence needs 1.5 heartbeat intervals without one: at best 1.5 s after the kill.
    earliest_by_silence_s = heartbeat_s * 1.5 - heartbeat_s
    cluster, controller, killed, topic = led_by_a_victim(cluster_factory, heartbeat_interval_ms=heartbeat_s * 1000,
                                                         session_timeout_ms=10_000)
    with Workload(cluster.bootstrap, topic, PARTITIONS) as work:
        work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, "before the fault")
        before = cluster.view([topic])
        assert all(p.fully_replicated for p in before.topic(topic)), cluster.describe([topic])
        kill_and_expect_fenced_within(cluster, topic, work, killed, before, controller, earliest_by_silence_s,
                                      f"heartbeats every {heartbeat_s} s",
                                      reason="the controller lost contact with it")
    check_nothing_lost(cluster, topic, work)


def test_a_killed_controller_is_succeeded_through_its_refused_port_before_the_quorum_would_elect_and_a_paused_one_is_not(
        cluster_factory):
    """A voter whose heartbeat finds the controller's connection gone probes the controller's
    cluster port; refused, it campaigns at once instead of waiting out the metadata quorum's
    leader lease and election timeout, and once elected fences the dead controller at its
    first tick. With a 10 s session the quorum's election timeout is 1-2 s and its lease 2 s: a
    follower calls an election on its own after 3 s of silence at the earliest, so a successor
    that leads, has fenced the old controller and has re-led its partitions sooner got there
    through the refused port. A paused controller's kernel still accepts connections, so a
    pause shorter than that changes no controller."""
    session_s = 10
    quorum_floor_s = 3.0  # the lease (the election timeout's maximum, 2 s) + its minimum (1 s)
    cluster = cluster_factory(3, heartbeat_interval_ms=250, session_timeout_ms=session_s * 1000)
    old = cluster.controller()
    a, b = sorted(set(cluster.nodes) - {old})
    topic = cluster.create_topic(replica_assignment=[[old, a, b], [a, old, b], [old, b, a]],
                                 config=TOPIC_CONFIG)
    with Workload(cluster.bootstrap, topic, PARTITIONS) as work:
        work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, "before the faults")
        cluster.pause(old)
        time.sleep(quorum_floor_s - 1)  # eight heartbeats to it unanswered
        views = cluster.views([topic])
        cluster.resume(old)
        assert all(v.controller_id in (old, -1) for v in views.values()), \
            f"a pause of controller {old} elected another:\n{cluster.describe([topic])}"
        assert cluster.controller() == old, cluster.describe([topic])
        cluster.wait_fully_replicated(topic, RECOVERY_TIMEOUT_S)

        before = cluster.view([topic])
        assert old in {p.leader for p in before.topic(topic)}, cluster.describe([topic])
        killed_at = time.monotonic()
        cluster.kill9(old)
        views = cluster.wait_for(lambda vs: replaced(vs, topic, old, before)
                                 and len({v.controller_id for v in vs.values()}) == 1
                                 and all(v.controller_id not in (old, -1) for v in vs.values()),
                                 quorum_floor_s - 0.5, f"a new controller after broker {old}, which it fenced",
                                 topics=[topic])
        new = next(iter(views.values())).controller_id
        print(f"\ncontroller {old} killed: broker {new} controls and {old} is fenced after "
              f"{time.monotonic() - killed_at:.2f} s (session {session_s} s)")
        log = cluster.node(new).broker.log_text()
        assert "the controller's cluster port refused a connection: campaigning to succeed it" in log, log[-3000:]
        assert "fencing broker: its cluster port refuses connections" in log, log[-3000:]
        work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, "under the new controller")
        cluster.restart(old)
        cluster.wait_fully_replicated(topic, RECOVERY_TIMEOUT_S)
        work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, f"after broker {old} rejoined")
    check_nothing_lost(cluster, topic, work)
