"""Transactions with librdkafka (confluent-kafka): commits and aborts counted by read_committed
and read_uncommitted consumers, an open transaction holding the last stable offset back, zombie
fencing, consume-transform-produce with offsets committed in the transaction, an abandoned
transaction aborted by its timeout, an idle transactional id expiring, and transactions across
partitions led by different brokers of a 3-broker cluster, also with the coordinator killed -9
before the commit."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from harness import Cli, consume, create_topic, unique, wait_until


def txn_producer(bootstrap: str, transactional_id: str, **conf) -> Producer:
    base = {"bootstrap.servers": bootstrap, "transactional.id": transactional_id, "linger.ms": 5}
    base.update({k.replace("_", "."): v for k, v in conf.items()})
    p = Producer(base)
    p.init_transactions(30)
    return p


def write_transaction(p: Producer, topic: str, values: list[str], commit: bool,
                      partitions: int = 1) -> None:
    p.begin_transaction()
    for i, v in enumerate(values):
        p.produce(topic, v.encode(), partition=i % partitions)
    p.flush(30)
    if commit:
        p.commit_transaction(30)
    else:
        p.abort_transaction(30)


def read(bootstrap: str, topic: str, partitions: int, committed: bool, timeout: float = 30) -> list:
    """Everything a consumer of the isolation level sees, up to the end of every partition."""
    level = "read_committed" if committed else "read_uncommitted"
    return consume(bootstrap, topic, range(partitions), timeout=timeout, isolation_level=level)


def lso(bootstrap: str, topic: str, partition: int) -> int:
    """The latest offset a read_committed consumer is told (ListOffsets isolation_level=1)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("lso"),
                  "isolation.level": "read_committed"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)[1]
    finally:
        c.close()


def test_read_committed_sees_exactly_the_committed_transactions(broker, topic):
    t = topic(partitions=2)
    p = txn_producer(broker.bootstrap, unique("tx"))
    expected = []
    for n, commit in enumerate([True, False, True, False, True]):
        values = [f"t{n}-{i}" for i in range(100)]
        write_transaction(p, t, values, commit, partitions=2)
        if commit:
            expected += values
    committed = read(broker.bootstrap, t, 2, committed=True)
    assert len(committed) == 300
    assert sorted(r.value.decode() for r in committed) == sorted(expected)
    uncommitted = read(broker.bootstrap, t, 2, committed=False)
    assert len(uncommitted) == 500


def test_an_open_transaction_holds_read_committed_back_until_it_commits(broker, topic):
    t = topic(partitions=1)
    p = txn_producer(broker.bootstrap, unique("tx"))
    write_transaction(p, t, ["before"], commit=True)  # offsets 0 and its marker at 1
    p.begin_transaction()
    for i in range(50):
        p.produce(t, f"open-{i}".encode(), partition=0)
    p.flush(30)
    plain = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(10):
        plain.produce(t, f"plain-{i}".encode(), partition=0)
    assert plain.flush(30) == 0
    assert lso(broker.bootstrap, t, 0) == 2, "the LSO stops at the open transaction's first record"
    seen = [r.value.decode() for r in read(broker.bootstrap, t, 1, committed=True)]
    assert seen == ["before"], "nothing at or after the open transaction is read_committed"
    assert len(read(broker.bootstrap, t, 1, committed=False)) == 61
    p.commit_transaction(30)
    seen = [r.value.decode() for r in read(broker.bootstrap, t, 1, committed=True)]
    assert len(seen) == 61 and seen[1] == "open-0"
    assert lso(broker.bootstrap, t, 0) == 63


def test_a_second_producer_with_the_same_transactional_id_fences_the_first(broker, topic):
    t = topic(partitions=1)
    tid = unique("tx")
    zombie = txn_producer(broker.bootstrap, tid)
    zombie.begin_transaction()
    for i in range(20):
        zombie.produce(t, f"zombie-{i}".encode(), partition=0)
    zombie.flush(30)
    successor = txn_producer(broker.bootstrap, tid)  # aborts the zombie's open transaction
    with pytest.raises(KafkaException) as fenced:
        zombie.commit_transaction(30)
    error = fenced.value.args[0]
    assert error.fatal() or "fenced" in error.str().lower(), error
    write_transaction(successor, t, [f"ok-{i}" for i in range(10)], commit=True)
    seen = sorted(r.value.decode() for r in read(broker.bootstrap, t, 1, committed=True))
    assert seen == sorted(f"ok-{i}" for i in range(10))


def test_consume_transform_produce_commits_the_groups_offsets_with_the_transaction(broker, topic):
    source, sink = topic(partitions=1), topic(partitions=1)
    group = unique("ctp")
    plain = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(100):
        plain.produce(source, str(i).encode(), partition=0)
    assert plain.flush(30) == 0
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    c.assign([TopicPartition(source, 0, 0)])
    p = txn_producer(broker.bootstrap, unique("tx"))
    p.begin_transaction()
    got = 0
    deadline_reads = 0
    while got < 100 and deadline_reads < 200:
        deadline_reads += 1
        for m in c.consume(num_messages=100, timeout=0.5):
            assert m.error() is None, m.error()
            p.produce(sink, str(int(m.value()) * 2).encode(), partition=0)
            got += 1
    assert got == 100
    p.send_offsets_to_transaction(c.position([TopicPartition(source, 0)]), c.consumer_group_metadata(), 30)
    p.flush(30)

    def committed() -> int:
        probe = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
        try:
            return probe.committed([TopicPartition(source, 0)], timeout=10)[0].offset
        finally:
            probe.close()

    assert committed() < 0, "offsets in an open transaction are not the group's yet"
    p.commit_transaction(30)
    assert committed() == 100
    c.close()
    out = sorted(int(r.value) for r in read(broker.bootstrap, sink, 1, committed=True))
    assert out == [2 * i for i in range(100)]


ABANDONING_PRODUCER = textwrap.dedent("""
    import os, signal, sys
    from confluent_kafka import Producer
    bootstrap, topic, tid = sys.argv[1:4]
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid,
                  "transaction.timeout.ms": 2000, "linger.ms": 1})
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(20):
        p.produce(topic, b"abandoned", partition=0)
    p.flush(30)
    print("produced", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_an_abandoned_transaction_is_aborted_by_its_timeout(broker, topic):
    t = topic(partitions=1)
    run = subprocess.run([sys.executable, "-c", ABANDONING_PRODUCER, broker.bootstrap, t, unique("tx")],
                         capture_output=True, timeout=60)
    assert run.returncode == -signal.SIGKILL and b"produced" in run.stdout, run.stderr.decode()
    plain = Producer({"bootstrap.servers": broker.bootstrap})
    plain.produce(t, b"after", partition=0)
    assert plain.flush(30) == 0
    # 20 records, then "after"; the timeout's ABORT marker lands after both.
    wait_until(lambda: lso(broker.bootstrap, t, 0) >= 22, 20,
               "the coordinator to abort the abandoned transaction and the LSO to move on")
    seen = [r.value for r in read(broker.bootstrap, t, 1, committed=True)]
    assert seen == [b"after"]


def test_transactions_span_partitions_led_by_different_brokers(cluster_factory):
    cluster = cluster_factory(size=3)
    t = cluster.create_topic(replica_assignment=[[1, 2, 3], [2, 3, 1], [3, 1, 2]])
    leaders = cluster.view([t]).leaders(t)
    assert len(set(leaders.values())) == 3, leaders
    p = txn_producer(cluster.bootstrap, unique("tx"))
    write_transaction(p, t, [f"c-{i}" for i in range(300)], commit=True, partitions=3)
    write_transaction(p, t, [f"a-{i}" for i in range(300)], commit=False, partitions=3)
    committed = read(cluster.bootstrap, t, 3, committed=True)
    assert sorted(r.value.decode() for r in committed) == sorted(f"c-{i}" for i in range(300))
    assert {r.partition for r in committed} == {0, 1, 2}
    assert len(read(cluster.bootstrap, t, 3, committed=False)) == 600


def test_a_transaction_whose_coordinator_is_killed_ends_whole(cluster_factory):
    """The controller (the transaction coordinator) is killed -9 after the records are written
    and before the commit. Whatever the client hears, the transaction ends committed on every
    partition or aborted on every partition (the new coordinator completes or times it out)."""
    cluster = cluster_factory(size=3)
    t = cluster.create_topic(replica_assignment=[[1, 2, 3], [2, 3, 1], [3, 1, 2]])
    coordinator = cluster.controller()
    survivor = next(n for n in cluster.nodes.values() if n.id != coordinator)
    p = txn_producer(cluster.bootstrap, unique("tx"), transaction_timeout_ms=10000)
    p.begin_transaction()
    for i in range(300):
        p.produce(t, f"k-{i}".encode(), partition=i % 3)
    p.flush(30)
    cluster.kill9(coordinator)
    try:
        p.commit_transaction(30)
    except KafkaException:
        pass  # either outcome is allowed; a half-committed one is not
    bootstrap = survivor.bootstrap

    def settled():
        return all(lso(bootstrap, t, part) == high(bootstrap, t, part) for part in range(3))

    wait_until(settled, 60, "every partition's LSO to reach its high watermark")
    seen = read(bootstrap, t, 3, committed=True, timeout=60)
    assert len(seen) in (0, 300), f"{len(seen)} of 300 records committed: a half transaction"


def high(bootstrap: str, topic: str, partition: int) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("hw")})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)[1]
    finally:
        c.close()



def test_an_idle_transactional_id_expires_and_starts_afresh(broker_factory, cli_bin):
    """With transactional.id.expiration.ms short, the coordinator forgets an id whose last
    transaction completed; the next producer with the id starts with a new producer id."""
    b = broker_factory(args=["--transactional-id-expiration-ms", "2000"])
    cli = Cli(cli_bin, b.bootstrap)
    t = create_topic(b.bootstrap, unique("exp"), partitions=1)
    tid = unique("tx")
    write_transaction(txn_producer(b.bootstrap, tid), t, ["one"], commit=True)
    first_id = cli.json("transactions", "describe", tid)["producer_id"]

    def forgotten() -> bool:
        r = cli("transactions", "describe", tid, check=False)
        return r.returncode != 0 and "TransactionalIdNotFound" in r.stderr.decode()

    wait_until(forgotten, 20, "the coordinator to forget the idle transactional id")
    write_transaction(txn_producer(b.bootstrap, tid), t, ["two"], commit=True)
    again = cli.json("transactions", "describe", tid)
    assert again["producer_id"] != first_id and again["producer_epoch"] == 0
    assert [r.value for r in read(b.bootstrap, t, 1, committed=True)] == [b"one", b"two"]
