"""The benchmark workloads, each run against one broker's bootstrap address.

Every function returns plain figures (records/s, milliseconds) and raises if a record was
lost or a deadline passed: a run that did not move all its records has no figure. Clients
are librdkafka in both flavours: confluent-kafka in this process, and `krait perf` (the
Krait CLI, Rust over librdkafka) as a subprocess, which is not limited by Python.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

E2E_CONSUMER = Path(__file__).with_name("e2e_consumer.py")


def deadline_s(records: int, floor_rate: float = 5_000) -> float:
    """A generous bound for moving `records`, so a stuck broker fails the run instead of
    hanging it: a minute plus the time at a rate far below either broker's."""
    return 60 + records / floor_rate


def produce_confluent(bootstrap: str, topic: str, records: int, size: int, acks: str, partitions: int,
                      linger_ms: int) -> float:
    """Records/s from the first send to the last delivery report (flush)."""
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": acks,
        "linger.ms": linger_ms,
        # Same batching limits as `krait perf produce`, so both clients build the same batches.
        "batch.size": 1_000_000,
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
        "enable.idempotence": False,
        "message.timeout.ms": int(deadline_s(records) * 1000),
        "log_level": 3,
    })
    remaining, failed, elapsed = send_round_robin(producer, topic, b"x" * size, records, partitions,
                                                  deadline_s(records))
    if remaining or failed:
        raise RuntimeError(f"produce to {topic}: {remaining} undelivered, {failed} failed")
    return records / elapsed


def send_round_robin(producer: Producer, topic: str, payload: bytes, records: int, partitions: int,
                     flush_timeout: float) -> tuple[int, int, float]:
    """Sends `records` copies of `payload` and flushes. Returns the records left undelivered,
    the failed deliveries, and the seconds from the first send to the last delivery report."""
    failed = [0]

    def on_delivery(err, _msg):
        if err is not None:
            failed[0] += 1

    start = time.perf_counter()
    produce = producer.produce
    for i in range(records):
        # Explicit round robin: every partition gets the same count, which the group
        # consumer relies on to know when it has read everything.
        while True:
            try:
                produce(topic, payload, partition=i % partitions, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.001)
        if i % 10_000 == 0:
            producer.poll(0)
    remaining = producer.flush(flush_timeout)
    return remaining, failed[0], time.perf_counter() - start


def krait_perf(cli: Path, bootstrap: str, *args: str, timeout: float) -> dict:
    """Runs `krait perf ...` with JSON output and returns its report."""
    cmd = [str(cli), "--bootstrap-server", bootstrap, "-o", "json", "--timeout-ms", "30000", "perf", *args]
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if cp.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {cp.returncode}:\n{cp.stderr[-2000:]}")
    return json.loads(cp.stdout)


def produce_krait_perf(cli: Path, bootstrap: str, topic: str, records: int, size: int, acks: str,
                       linger_ms: int) -> float:
    """`krait perf produce`: keyless records, so librdkafka's default partitioner spreads them."""
    report = krait_perf(cli, bootstrap, "produce", "--topic", topic, "--num-records", str(records),
                        "--record-size", str(size), "--acks", acks, "--linger-ms", str(linger_ms),
                        timeout=deadline_s(records))
    return float(report["records_per_sec"])


def take(consumer: Consumer, timeout: float, most: int = 100_000) -> list:
    """Waits up to `timeout` for one record, then takes whatever else is queued without waiting.
    (`consume(n, timeout)` alone blocks until it has n records or the timeout passed, which
    would add up to `timeout` to the last batch of every run.)"""
    first = consumer.poll(timeout)
    if first is None:
        return []
    return [first, *consumer.consume(num_messages=most - 1, timeout=0)]


def consumer_config(bootstrap: str, group: str) -> dict:
    # Fetch limits as in `krait perf consume`: large fetches, deep prefetch queue.
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "fetch.max.bytes": 52_428_800,
        "max.partition.fetch.bytes": 10_485_760,
        "queued.min.messages": 1_000_000,
        "log_level": 3,
    }


def consume_confluent(bootstrap: str, topic: str, partitions: int, records: int) -> float:
    """One consumer assigned every partition from the beginning: records/s from assign() to the
    last record, so the first fetch round trips count."""
    consumer = Consumer(consumer_config(bootstrap, "bench-" + uuid.uuid4().hex[:8]))
    try:
        seen = 0
        start = time.perf_counter()
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        end = start + deadline_s(records)
        while seen < records:
            if time.perf_counter() > end:
                raise RuntimeError(f"consume {topic}: {seen} of {records} records before the deadline")
            for msg in take(consumer, 0.5):
                if msg.error() is None:
                    seen += 1
        return records / (time.perf_counter() - start)
    finally:
        consumer.close()


def consume_krait_perf(cli: Path, bootstrap: str, topic: str, records: int) -> float:
    report = krait_perf(cli, bootstrap, "consume", "--topic", topic, "--num-records", str(records),
                        timeout=deadline_s(records))
    return float(report["records_per_sec"])


def consume_group(bootstrap: str, topic: str, partitions: int, records: int, members: int = 3) -> float:
    """A group of `members` confluent consumers (threads; librdkafka releases the GIL while it
    fetches) subscribed to `topic`. Records/s from the first record any member gets to the
    moment every partition is read to its end: joining the group is excluded, as it measures
    the group's initial rebalance delay, not the data path (bench/groups.py measures that).

    Progress is the highest offset read per partition, not a count, so records a member reads
    twice after a rebalance do not end the run early."""
    per_partition = [records // partitions + (1 if p < records % partitions else 0) for p in range(partitions)]
    next_offset = [0] * partitions
    first_at: list[float] = []
    lock = threading.Lock()
    done = threading.Event()
    errors: list[BaseException] = []
    group = "bench-group-" + uuid.uuid4().hex[:8]

    def member():
        c = Consumer(consumer_config(bootstrap, group))
        try:
            c.subscribe([topic])
            while not done.is_set():
                msgs = take(c, 0.2, 10_000)
                if not msgs:
                    continue
                now = time.perf_counter()
                with lock:
                    if not first_at:
                        first_at.append(now)
                    for m in msgs:
                        if m.error() is None and m.offset() + 1 > next_offset[m.partition()]:
                            next_offset[m.partition()] = m.offset() + 1
                    if all(n >= want for n, want in zip(next_offset, per_partition)):
                        first_at.append(time.perf_counter())
                        done.set()
        except BaseException as e:  # noqa: BLE001 - reported by the caller
            errors.append(e)
            done.set()
        finally:
            c.close()

    threads = [threading.Thread(target=member, daemon=True) for _ in range(members)]
    for t in threads:
        t.start()
    finished = done.wait(deadline_s(records))
    done.set()
    for t in threads:
        t.join(30)
    if errors:
        raise RuntimeError(f"group consume of {topic}: {errors[0]!r}")
    if not finished or len(first_at) < 2:
        raise RuntimeError(f"group consume of {topic}: read {sum(next_offset)} of {records} before the deadline")
    return records / max(first_at[1] - first_at[0], 1e-6)


def e2e_latency_krait_perf(cli: Path, bootstrap: str, topic: str, rate: int, seconds: float, warmup_s: float,
                           size: int = 100, linger_ms: int = 1) -> dict:
    """End-to-end latency at a fixed `rate` with `krait perf e2e`: a Rust producer and consumer
    (librdkafka through the rdkafka crate) in one process, each record stamped with its send
    time on one monotonic clock, so neither side is held back by an interpreter. The same
    figures as `e2e_latency`, and the produce acknowledgement's p50 and p99 besides."""
    figures = krait_perf(cli, bootstrap, "e2e", "--topic", topic, "--rate", str(rate),
                         "--seconds", str(seconds), "--warmup-seconds", str(warmup_s),
                         "--record-size", str(size), "--linger-ms", str(linger_ms),
                         timeout=deadline_s(int(rate * seconds)) + seconds)
    return figures


def e2e_latency(bootstrap: str, topic: str, rate: int, seconds: float, warmup_s: float, size: int = 100,
                linger_ms: int = 1) -> dict:
    """End-to-end latency at a fixed `rate`: this process produces records carrying their send
    time (acks=all), a separate consumer process reads them as they arrive and reports
    percentiles of (receive time - send time) in ms, skipping the first `warmup_s`.

    Two processes because neither Python client could keep up with the other's GIL at the
    rates measured; both use CLOCK_REALTIME, shared on one machine."""
    records = max(int(rate * seconds), 1)
    consumer = subprocess.Popen([sys.executable, str(E2E_CONSUMER), bootstrap, topic, str(records),
                                 str(warmup_s)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if consumer.stdout.readline().strip() != "ready":
            raise RuntimeError(f"e2e consumer did not start: {consumer.stderr.read()[-2000:]}")
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": linger_ms,
                             "enable.idempotence": False, "log_level": 3})
        pad = b"x" * max(size - 8, 0)
        start = time.perf_counter()
        sent = 0
        while sent < records:
            # Send what is due by now, then wait a little: a steady rate without a sleep per record.
            due = min(records, int((time.perf_counter() - start) * rate) + 1)
            while sent < due:
                try:
                    producer.produce(topic, time.time_ns().to_bytes(8, "big") + pad, partition=0)
                    sent += 1
                except BufferError:
                    producer.poll(0.001)
            producer.poll(0)
            time.sleep(0.0005)
        if producer.flush(60):
            raise RuntimeError("e2e: records undelivered after 60 s")
        achieved = records / (time.perf_counter() - start)
        out, err = consumer.communicate(timeout=deadline_s(records))
        if consumer.returncode != 0:
            raise RuntimeError(f"e2e consumer exited {consumer.returncode}: {err[-2000:]}")
        figures = json.loads(out)
        figures["target_rate"] = rate
        figures["achieved_rate"] = round(achieved)
        return figures
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait()
