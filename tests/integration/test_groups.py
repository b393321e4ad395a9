"""Consumer groups with real clients: partitions shared without overlap, committed offsets
honoured, members lost to close and to kill -9, offsets surviving a broker kill -9, static
membership, kcat's balanced consumer, and the krait CLI's group commands."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from confluent_kafka import Consumer

from harness import create_topic, produce_all, producer, unique, wait_until

FAST_GROUPS = ["--group-initial-rebalance-delay-ms", "0"]
HERE = Path(__file__).parent


def kp_group_consume(bootstrap, topic, group, idle_ms=6000):
    from kafka import KafkaConsumer
    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                      enable_auto_commit=False, consumer_timeout_ms=idle_ms)
    try:
        records = [(m.partition, m.offset, m.value) for m in c]
        partitions = {tp.partition for tp in c.assignment()}
        c.commit()
        return partitions, records
    finally:
        c.close()


def test_two_kafka_python_consumers_split_partitions_and_a_new_member_reads_nothing_committed(broker_factory):
    b = broker_factory(args=FAST_GROUPS)
    t = create_topic(b.bootstrap, unique("grp"), partitions=4)
    produce_all(producer(b.bootstrap), t, [{"value": str(i).encode(), "partition": i % 4} for i in range(400)])
    group = unique("g")
    results = {}
    threads = [threading.Thread(target=lambda n=n: results.__setitem__(n, kp_group_consume(b.bootstrap, t, group)))
               for n in ("a", "b")]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    (pa, ra), (pb, rb) = results["a"], results["b"]
    assert pa and pb and not (pa & pb), f"partitions split without overlap: {pa} / {pb}"
    assert pa | pb == {0, 1, 2, 3}
    values = sorted(int(v) for _, _, v in ra + rb)
    assert values == list(range(400)), "every record read once between them"
    _, again = kp_group_consume(b.bootstrap, t, group, idle_ms=4000)
    assert again == [], "a new member of the group reads nothing already committed"


def start_member(bootstrap, topic, group, out: Path):
    return subprocess.Popen([sys.executable, str(HERE / "group_member.py"), bootstrap, topic, group, str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def processed(files) -> list[int]:
    return [int(line) for f in files if f.exists() for line in f.read_text().split()]


def test_group_of_three_loses_members_to_close_and_kill9_without_losing_records(broker_factory, tmp_path):
    b = broker_factory(args=FAST_GROUPS)
    t = create_topic(b.bootstrap, unique("grp"), partitions=6)
    group = unique("g")
    files = [tmp_path / f"member{i}.txt" for i in range(3)]
    members = [start_member(b.bootstrap, t, group, f) for f in files]
    try:
        # Produce in rounds until every member is processing: then each owns partitions.
        p, n = producer(b.bootstrap), 0
        deadline = time.monotonic() + 60
        while not all(f.exists() and f.stat().st_size > 0 for f in files):
            assert time.monotonic() < deadline, "all three members to get partitions"
            produce_all(p, t, [{"value": str(i).encode(), "partition": i % 6} for i in range(n, n + 60)])
            n += 60
            time.sleep(0.2)
        wait_until(lambda: set(processed(files)) >= set(range(n)), 60, f"the group to process the first {n}")
        members[0].kill()  # dies: its partitions move after the 6 s session timeout
        members[1].send_signal(signal.SIGTERM)  # leaves cleanly: LeaveGroup
        members[1].wait(timeout=30)
        lost_at = time.monotonic()
        total = n + 600
        produce_all(producer(b.bootstrap), t, [{"value": str(i).encode(), "partition": i % 6} for i in range(n, total)])
        wait_until(lambda: set(processed(files)) >= set(range(total)), 60, "the survivor to take over every partition")
        took = time.monotonic() - lost_at
        print(f"\nsurvivor finished all 6 partitions {took:.1f} s after losing two of three members")
        assert took < 6 + 20, "the dead member's partitions move once its 6 s session lapses"
        done = processed(files)
        assert set(done) == set(range(total)), "commit after process: nothing lost"
        print(f"processed {len(done)} records for {total} produced ({len(done) - total} reprocessed after the kill)")
    finally:
        for m in members:
            if m.poll() is None:
                m.kill()
                m.wait(timeout=10)


def test_committed_offsets_survive_a_broker_kill9(broker_factory):
    b = broker_factory(args=FAST_GROUPS)
    t = create_topic(b.bootstrap, unique("grp"), partitions=2)
    produce_all(producer(b.bootstrap), t, [{"value": str(i).encode(), "partition": i % 2} for i in range(100)])
    group = unique("g")
    _, first = kp_group_consume(b.bootstrap, t, group, idle_ms=4000)
    assert len(first) == 100
    b.kill9()
    b.restart()
    produce_all(producer(b.bootstrap), t, [{"value": b"after", "partition": 0}])
    _, second = kp_group_consume(b.bootstrap, t, group, idle_ms=4000)
    assert [v for _, _, v in second] == [b"after"], "only what came after the commit"


def static_consumer(bootstrap, topic, group, instance):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.instance.id": instance,
                  "auto.offset.reset": "earliest", "session.timeout.ms": 10000})
    c.subscribe([topic])
    return c


def wait_assigned(c, timeout=30):
    return wait_until(lambda: (c.poll(0.2), c.assignment())[1] or None, timeout, "a partition assignment")


def test_static_member_restarting_gets_its_partitions_back_and_a_duplicate_is_fenced(broker_factory):
    b = broker_factory(args=FAST_GROUPS)
    t = create_topic(b.bootstrap, unique("grp"), partitions=2)
    group = unique("g")
    first = static_consumer(b.bootstrap, t, group, "instance-1")
    before = {tp.partition for tp in wait_assigned(first)}
    assert before == {0, 1}
    # A second process with the same group.instance.id takes over; the first is fenced.
    second = static_consumer(b.bootstrap, t, group, "instance-1")
    after = {tp.partition for tp in wait_assigned(second)}
    assert after == before, "the same instance gets the same partitions, without a rebalance"
    fenced = wait_until(lambda: next((m.error() for m in [first.poll(0.5)] if m is not None and m.error()), None), 30,
                        "the old instance to be fenced")
    # librdkafka turns FENCED_INSTANCE_ID into a fatal error naming it.
    assert "fenced" in fenced.str().lower(), fenced
    second.close()
    try:
        first.close()
    except Exception:
        pass  # a fenced consumer may refuse to close cleanly


def test_kcat_balanced_consumer_reads_the_topic_as_a_group(broker_factory):
    b = broker_factory(args=FAST_GROUPS)
    t = create_topic(b.bootstrap, unique("grp"), partitions=3)
    produce_all(producer(b.bootstrap), t, [{"value": f"k{i}".encode(), "partition": i % 3} for i in range(30)])
    out = subprocess.run(["kcat", "-b", b.bootstrap, "-G", unique("kcat"), "-o", "beginning", "-e", "-q", t],
                         capture_output=True, timeout=60)
    assert sorted(out.stdout.decode().split()) == sorted(f"k{i}" for i in range(30)), out.stderr.decode()[-500:]


def test_cli_lists_describes_resets_and_deletes_groups(broker_factory, cli_bin):
    from harness import Cli
    b = broker_factory(args=FAST_GROUPS)
    cli = Cli(cli_bin, b.bootstrap)
    t = create_topic(b.bootstrap, unique("grp"), partitions=2)
    produce_all(producer(b.bootstrap), t, [{"value": str(i).encode(), "partition": i % 2} for i in range(20)])
    group = unique("g")
    kp_group_consume(b.bootstrap, t, group, idle_ms=3000)
    listed = cli.json("group", "list")
    assert any(g["group"] == group for g in listed)
    described = cli.json("group", "describe", group)
    lag = {(o["topic"], o["partition"]): (o["committed"], o["lag"]) for o in described["offsets"]}
    assert lag == {(t, 0): (10, 0), (t, 1): (10, 0)}
    cli("group", "reset-offsets", group, "--topic", t, "--to-earliest")
    described = cli.json("group", "describe", group)
    assert sorted(o["lag"] for o in described["offsets"]) == [10, 10]
    _, again = kp_group_consume(b.bootstrap, t, group, idle_ms=3000)
    assert len(again) == 20, "reset to earliest: the group reads everything again"
    cli("group", "delete", group)
    assert not any(g["group"] == group for g in cli.json("group", "list"))
