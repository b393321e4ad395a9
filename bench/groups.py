#!/usr/bin/env python3
"""Consumer-group figures with confluent-kafka: how long a group of 3 takes to give a lost
member's partitions to the survivors (clean LeaveGroup, and death found by a 6 s session
timeout), and OffsetCommit/s from one consumer committing every message synchronously.

    bench/groups.py --bootstrap 127.0.0.1:9092 [--runs 3]
"""
import argparse
import json
import statistics
import subprocess
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

MEMBER = """
import sys, signal
from confluent_kafka import Consumer
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2], "session.timeout.ms": 6000,
              "heartbeat.interval.ms": 500, "auto.offset.reset": "earliest"})
c.subscribe([sys.argv[3]])
signal.signal(signal.SIGTERM, lambda *_: (c.close(), sys.exit(0)))
while True:
    c.poll(0.2)
"""


def consumer(bootstrap, group):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "session.timeout.ms": 6000,
                     "heartbeat.interval.ms": 500, "auto.offset.reset": "earliest"})


def covered(consumers, partitions, deadline):
    while time.monotonic() < deadline:
        for c in consumers:
            c.poll(0.05)
        owned = {tp.partition for c in consumers for tp in c.assignment()}
        if owned == set(range(partitions)):
            return True
    return False


def rebalance_once(bootstrap, topic, partitions, how):
    group = "bench-" + uuid.uuid4().hex[:8]
    survivors = [consumer(bootstrap, group) for _ in range(2)]
    for c in survivors:
        c.subscribe([topic])
    third = subprocess.Popen([sys.executable, "-c", MEMBER, bootstrap, group, topic])
    try:
        # Stable with three members: the survivors hold fewer than all partitions.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for c in survivors:
                c.poll(0.05)
            owned = sum(len(c.assignment()) for c in survivors)
            if 0 < owned < partitions and all(c.assignment() for c in survivors):
                break
        time.sleep(1)
        start = time.monotonic()
        if how == "leave":
            third.terminate()
        else:
            third.kill()
        ok = covered(survivors, partitions, start + 60)
        took = time.monotonic() - start
        return took if ok else None
    finally:
        third.kill()
        for c in survivors:
            c.close()


def commits_per_second(bootstrap, topic, n):
    p = Producer({"bootstrap.servers": bootstrap})
    for i in range(n):
        p.produce(topic, b"x", partition=0)
    p.flush(30)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-" + uuid.uuid4().hex[:8],
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    done, start = 0, None
    while done < n:
        m = c.poll(1.0)
        if m is None or m.error():
            continue
        start = start or time.monotonic()
        c.commit(message=m, asynchronous=False)
        done += 1
    rate = n / (time.monotonic() - start)
    c.close()
    return rate


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--commits", type=int, default=5000)
    args = ap.parse_args()
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    topic = "bench-groups-" + uuid.uuid4().hex[:8]
    admin.create_topics([NewTopic(topic, 6, 1)])[topic].result(30)
    for how in ("leave", "die"):
        times = [t for t in (rebalance_once(args.bootstrap, topic, 6, how) for _ in range(args.runs)) if t is not None]
        print(json.dumps({"figure": f"rebalance after a member {'leaves (LeaveGroup)' if how == 'leave' else 'dies (6 s session)'}",
                          "median_s": round(statistics.median(times), 2), "min_s": round(min(times), 2),
                          "max_s": round(max(times), 2), "runs": len(times)}))
    ctopic = topic + "-c"
    admin.create_topics([NewTopic(ctopic, 1, 1)])[ctopic].result(30)
    rates = [commits_per_second(args.bootstrap, ctopic, args.commits) for _ in range(args.runs)]
    print(json.dumps({"figure": "synchronous OffsetCommit/s, one consumer, every message",
                      "median": round(statistics.median(rates)), "min": round(min(rates)), "max": round(max(rates)),
                      "runs": len(rates)}))


if __name__ == "__main__":
    main()
