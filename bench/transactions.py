#!/usr/bin/env python3
"""Transactional produce against plain idempotent produce, same broker, same run, with
confluent-kafka (librdkafka): records of 100 B to one partition, transactions of 1,000 records
(begin, produce, commit) against one idempotent producer that only flushes at the end. Prints
one JSON line per figure; it never asserts a speed.

    bench/transactions.py                                   # starts its own krait-broker
    bench/transactions.py --bootstrap 127.0.0.1:9092        # or measures a running broker
    bench/transactions.py --records 100000 --runs 3 --txn-size 1000
"""
import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

import brokers

VALUE = b"x" * 100


def idempotent_rate(bootstrap: str, topic: str, n: int) -> float:
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    start = time.monotonic()
    for _ in range(n):
        while True:
            try:
                p.produce(topic, VALUE, partition=0)
                break
            except BufferError:
                p.poll(0.01)
    if p.flush(120) != 0:
        raise RuntimeError("idempotent producer did not deliver everything")
    return n / (time.monotonic() - start)


def transactional_rate(bootstrap: str, topic: str, n: int, size: int) -> tuple[float, float]:
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": "bench-" + uuid.uuid4().hex[:8],
                  "linger.ms": 5})
    p.init_transactions(30)
    start = time.monotonic()
    transactions = 0
    for first in range(0, n, size):
        p.begin_transaction()
        for _ in range(min(size, n - first)):
            while True:
                try:
                    p.produce(topic, VALUE, partition=0)
                    break
                except BufferError:
                    p.poll(0.01)
        p.commit_transaction(60)
        transactions += 1
    elapsed = time.monotonic() - start
    return n / elapsed, transactions / elapsed


def measure(bootstrap: str, args) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    idem, txn, txn_per_s = [], [], []
    for run in range(args.runs):
        t = f"bench-txn-{uuid.uuid4().hex[:8]}"
        admin.create_topics([NewTopic(t, 1, 1)])[t].result(30)
        idem.append(idempotent_rate(bootstrap, t, args.records))
        rate, per_s = transactional_rate(bootstrap, t, args.records, args.txn_size)
        txn.append(rate)
        txn_per_s.append(per_s)
    for name, values in (("idempotent produce, records/s", idem),
                         (f"transactional produce ({args.txn_size} records per transaction), records/s", txn),
                         ("transactions committed/s", txn_per_s)):
        print(json.dumps({"figure": name, "median": round(statistics.median(values)),
                          "min": round(min(values)), "max": round(max(values)), "runs": len(values),
                          "records": args.records, "value_bytes": len(VALUE)}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", help="a running broker; default: start one")
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/krait/target"))
    ap.add_argument("--krait-broker-bin", default=f"{target}/release/krait-broker")
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--txn-size", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if args.bootstrap:
        measure(args.bootstrap, args)
        return
    spec = brokers.BrokerSpec("krait", "krait", Path(args.krait_broker_bin))
    with tempfile.TemporaryDirectory(prefix="krait-bench-txn-") as work:
        broker = brokers.start(spec, Path(work))
        try:
            measure(broker.bootstrap, args)
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
