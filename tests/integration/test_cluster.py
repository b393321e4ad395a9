"""A replicated cluster as clients and operators meet it, beyond the fault tests: consumer groups
keep their committed offsets when the coordinator dies, acks=all honours min.insync.replicas
with Kafka's error, and a data directory never joins a cluster it was not formed in."""
import subprocess
import time

import confluent_kafka as ck
import pytest
from kafka import KafkaProducer
from kafka import errors as kafka_errors

from cluster import live_brokers, metadata
from harness import admin, create_topic, producer, unique, wait_until

pytestmark = pytest.mark.cluster


def test_a_group_keeps_its_committed_offsets_when_its_coordinator_is_killed(cluster_factory):
    c = cluster_factory(3)
    topic = create_topic(c.bootstrap, unique("grp"), partitions=1, replication_factor=3)
    p = producer(c.bootstrap, acks="all")
    for i in range(100):
        p.produce(topic, value=f"m{i}".encode())
    assert p.flush(30) == 0

    def group_consumer():
        return ck.Consumer({"bootstrap.servers": c.bootstrap, "group.id": "g",
                            "auto.offset.reset": "earliest", "enable.auto.commit": False,
                            "session.timeout.ms": 6000})

    first = group_consumer()
    first.subscribe([topic])
    seen = []
    deadline = time.monotonic() + 60
    while len(seen) < 40 and time.monotonic() < deadline:
        m = first.poll(1.0)
        if m is not None and not m.error():
            seen.append(m.offset())
    assert len(seen) >= 40
    first.commit(offsets=[ck.TopicPartition(topic, 0, 40)], asynchronous=False)
    first.close()

    coordinator = c.controller()
    print(f"killing the controller and group coordinator, broker {coordinator}")
    c.kill9(coordinator)
    wait_until(lambda: c.controller() != coordinator, 30, "a new controller")

    second = group_consumer()
    second.subscribe([topic])
    resumed = None
    deadline = time.monotonic() + 60
    while resumed is None and time.monotonic() < deadline:
        m = second.poll(1.0)
        if m is not None and not m.error():
            resumed = m.offset()
    committed = second.committed([ck.TopicPartition(topic, 0)], timeout=20)[0].offset
    second.close()
    print(f"committed before the kill: 40; after: {committed}; resumed at offset {resumed}")
    assert committed == 40
    assert resumed == 40, "the group resumes where it committed, not from the beginning"


def test_acks_all_below_min_insync_replicas_is_refused_with_not_enough_replicas(cluster_factory):
    c = cluster_factory(3)
    topic = create_topic(c.bootstrap, unique("isr"), partitions=1, replication_factor=3,
                         config={"min.insync.replicas": "3"})
    kp = KafkaProducer(bootstrap_servers=c.bootstrap, acks="all", retries=0,
                       request_timeout_ms=20000)
    kp.send(topic, b"all three in sync").get(timeout=30)
    leader = c.partition(topic, 0).leader
    follower = next(r for r in c.partition(topic, 0).replicas if r != leader)
    c.kill9(follower)
    c.wait_for(lambda views: all(v.partition(topic, 0) and len(v.partition(topic, 0).isr) == 2
                                 for v in views.values()), 30, "the ISR to shrink to two")
    with pytest.raises(kafka_errors.NotEnoughReplicasError):
        kp.send(topic, b"only two in sync").get(timeout=30)
    kp.close()
    # acks=1 still writes; the data is there for a consumer.
    p = producer(c.bootstrap, acks="1")
    p.produce(topic, value=b"acks=1")
    assert p.flush(30) == 0


def test_a_data_directory_from_another_cluster_refuses_to_join(broker_factory, cluster_factory):
    alone = broker_factory()
    create_topic(alone.bootstrap, unique("solo"), partitions=1)
    alone.stop()
    c = cluster_factory(3)
    # Broker 3 of the cluster, restarted on the single broker's data directory.
    node = c.node(3)
    c.kill9(3)
    node.broker.data_dir = alone.data_dir
    proc = node.broker.spawn()
    try:
        code = proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("the broker joined a cluster its data directory is not from")
    log = node.broker.log_since_start()
    assert code != 0
    assert "another cluster" in log, log[-2000:]


# Long enough that only a controlled shutdown can move leadership within the test's waits: a
# broker that merely vanished would be fenced after a minute.
LONG_SESSION_MS = 60_000
HANDOVER_WAIT_S = 10.0


def test_a_sigtermed_broker_hands_over_its_leaderships_before_it_exits(cluster_factory):
    c = cluster_factory(3, session_timeout_ms=LONG_SESSION_MS)
    topic = c.create_topic(partitions=6, replication_factor=3)
    controller = c.controller()
    leaders = c.view([topic]).leaders(topic)
    victim = next(b for b in sorted(set(leaders.values())) if b != controller)
    led = sorted(p for p, b in leaders.items() if b == victim)
    print(f"broker {victim} leads partitions {led}; the controller is {controller}")

    c.node(victim).killed = True  # stopped on purpose: not a crash
    assert c.node(victim).broker.terminate(timeout=30) == 0
    assert "controlled shutdown: fenced, leadership moved" in c.node(victim).broker.log_text()

    def handed_over(views):
        return all(v.topic(topic) and all(p.leader >= 0 and p.leader != victim and victim not in p.isr
                                          for p in v.topic(topic)) and victim not in v.brokers
                   for v in views.values())

    c.wait_for(handed_over, HANDOVER_WAIT_S,
               f"partitions {led} led elsewhere and broker {victim} fenced, well within its "
               f"{LONG_SESSION_MS} ms session", topics=[topic])
    p = producer(c.bootstrap, acks="all")
    for i in range(200):
        p.produce(topic, value=f"after-{i}".encode(), partition=i % 6)
    assert p.flush(30) == 0, "acks=all goes on with the two brokers left (min.insync.replicas=2)"

    c.restart(victim)
    c.wait_fully_replicated(topic, timeout=60)


LEADER_NOT_AVAILABLE = 5


def test_a_follower_that_finds_its_leader_gone_tells_clients_there_is_no_leader_until_it_is_replaced(
        cluster_factory):
    """A follower whose replica fetches find the leader's connection closed or refused (its
    process died) answers Metadata without that leader: its partitions have none
    (LEADER_NOT_AVAILABLE) and the broker is not listed, so librdkafka drops it and its
    requests at once instead of waiting on it, though the image still has it live until the
    controller fences it. The controller is paused here, so nothing is fenced: the follower's
    view is all there is. A leader that is only paused (its kernel keeps the connection) is not
    taken for gone."""
    c = cluster_factory(3, heartbeat_interval_ms=250, session_timeout_ms=60_000)
    controller = c.controller()
    leader, follower = [i for i in sorted(c.nodes) if i != controller]
    topic = c.create_topic(replica_assignment=[[leader, follower, controller]])
    at_follower = c.node(follower).bootstrap

    def led_by(view) -> int:
        return view.partition(topic, 0).leader

    c.pause(leader)
    time.sleep(2)  # several fetches time out: a slow or paused leader proves nothing
    view = metadata(at_follower, follower, [topic])
    assert led_by(view) == leader and leader in view.brokers, view
    c.resume(leader)
    c.wait_fully_replicated(topic, 30)

    c.pause(controller)  # no quorum without it: the image cannot change
    c.kill9(leader)
    view = wait_until(lambda: (v := metadata(at_follower, follower, [topic])) and led_by(v) == -1 and v,
                      10, f"broker {follower} to stop naming dead broker {leader} as the leader")
    assert view.partition(topic, 0).error == LEADER_NOT_AVAILABLE, view
    assert leader not in view.brokers, view
    assert leader in view.partition(topic, 0).offline, view
    assert leader in live_brokers(at_follower), "the image still has it live: only the controller fences"

    c.resume(controller)
    view = wait_until(lambda: (v := metadata(at_follower, follower, [topic])) and led_by(v) not in (-1, leader) and v,
                      30, f"a new leader for broker {leader}'s partition")
    assert view.partition(topic, 0).error == 0, view
    assert leader not in live_brokers(at_follower), "fenced"
