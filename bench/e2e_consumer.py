#!/usr/bin/env python3
"""Consumer half of the end-to-end latency workload (bench/workloads.py starts it).

    e2e_consumer.py BOOTSTRAP TOPIC RECORDS WARMUP_S

Reads partition 0 of TOPIC from the beginning until RECORDS arrived; each record starts with
its send time (8 bytes, ns since the epoch). Prints "ready" once assigned, then one JSON line
with the latency percentiles in ms of the records sent after the warm-up.
"""
import json
import sys
import time
import uuid

import numpy as np
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition


def main():
    bootstrap, topic, records, warmup_s = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-e2e-" + uuid.uuid4().hex[:8],
                  "enable.auto.commit": False, "log_level": 3})
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    # Fetch once so the connection and the fetch session exist before the producer starts.
    c.consume(num_messages=1, timeout=0.5)
    print("ready", flush=True)
    sent = np.empty(records, dtype=np.int64)
    received = np.empty(records, dtype=np.int64)
    n = 0
    deadline = time.monotonic() + 120 + records / 5_000
    while n < records and time.monotonic() < deadline:
        # poll() returns as soon as one record is there; consume(n, 0) then takes the rest
        # queued without waiting (consume(n, t) would wait for n records or t).
        first = c.poll(0.1)
        msgs = [first, *c.consume(num_messages=10_000, timeout=0)] if first is not None else []
        # Every record in a batch reached the application now: one clock read per batch.
        now = time.time_ns()
        for m in msgs:
            if m.error() is None and n < records:
                sent[n] = int.from_bytes(m.value()[:8], "big")
                received[n] = now
                n += 1
    c.close()
    if n < records:
        sys.exit(f"e2e consumer: {n} of {records} records before the deadline")
    keep = sent >= sent[0] + int(warmup_s * 1e9)
    lat_ms = (received[keep] - sent[keep]) / 1e6
    if lat_ms.size == 0:
        lat_ms = (received - sent) / 1e6
    p50, p99, p999 = np.percentile(lat_ms, [50, 99, 99.9])
    print(json.dumps({"p50_ms": round(float(p50), 3), "p99_ms": round(float(p99), 3),
                      "p999_ms": round(float(p999), 3), "max_ms": round(float(lat_ms.max()), 3),
                      "samples": int(lat_ms.size)}))


if __name__ == "__main__":
    main()
