#!/usr/bin/env python3
"""Throughput of a Kafka-compatible broker measured with confluent-kafka (librdkafka).

Prints one JSON line per run; a figure is the median of --runs runs, with min and max.
Not a test: it asserts nothing about speed.

    bench/clients.py --bootstrap 127.0.0.1:9092 --records 1000000 --partitions 1 --acks all
"""
import argparse
import json
import statistics
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition, OFFSET_BEGINNING
from confluent_kafka.admin import AdminClient, NewTopic

from workloads import send_round_robin


def create_topic(bootstrap, name, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    for f in futures.values():
        f.result(timeout=30)


def produce(bootstrap, topic, records, size, acks, linger_ms, partitions):
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": acks,
        "linger.ms": linger_ms,
        "batch.size": 1_000_000,
        "queue.buffering.max.messages": 2_000_000,
        "queue.buffering.max.kbytes": 2_000_000,
        "enable.idempotence": False,
    })
    remaining, failed, elapsed = send_round_robin(producer, topic, b"x" * size, records, partitions, 120)
    if remaining or failed:
        raise SystemExit(f"produce: {remaining} undelivered, {failed} failed")
    return records / elapsed


def consume(bootstrap, topic, records, partitions):
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "bench-" + uuid.uuid4().hex,
        "enable.auto.commit": False,
        "fetch.max.bytes": 52_428_800,
        "max.partition.fetch.bytes": 10_485_760,
        "queued.min.messages": 1_000_000,
    })
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    seen = 0
    start = time.perf_counter()
    deadline = start + 300
    while seen < records and time.perf_counter() < deadline:
        for msg in consumer.consume(num_messages=100_000, timeout=1.0):
            if msg.error() is None:
                seen += 1
    elapsed = time.perf_counter() - start
    consumer.close()
    if seen < records:
        raise SystemExit(f"consume: only {seen} of {records} records within 300 s")
    return records / elapsed


def summary(name, values, **labels):
    return {"workload": name, **labels, "median": round(statistics.median(values)),
            "min": round(min(values)), "max": round(max(values)), "runs": len(values)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--acks", default="all")
    ap.add_argument("--linger-ms", type=int, default=5)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--label", default="krait")
    args = ap.parse_args()
    produced, consumed = [], []
    for _ in range(args.runs):
        topic = "bench-" + uuid.uuid4().hex[:8]
        create_topic(args.bootstrap, topic, args.partitions)
        produced.append(produce(args.bootstrap, topic, args.records, args.size, args.acks, args.linger_ms, args.partitions))
        consumed.append(consume(args.bootstrap, topic, args.records, args.partitions))
    labels = dict(broker=args.label, records=args.records, size=args.size, partitions=args.partitions, acks=args.acks)
    print(json.dumps(summary("produce records/s", produced, **labels)))
    print(json.dumps(summary("consume records/s", consumed, **labels)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
