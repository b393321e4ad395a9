#!/usr/bin/env python3
"""Cluster figures for issue 4, measured on real broker processes on loopback:

- failover: kill -9 a partition leader, time to the first acks=all produce acknowledged by
  its successor (median of --failovers runs, the killed broker restarted and back in the ISR
  between runs);
- throughput: `krait perf produce` (acks=all, 100-byte records) against one broker alone and
  against three brokers with replication factor 3, same topic shape, alternating, median of
  --runs; the ratio is 3-broker / single;
- reassignment: every partition of a topic moved from brokers {1,2,3} to {2,3,4} with no
  throttle (and with --throttle B/s), MB/s moved, and the p50/p99 latency of a steady acks=all
  producer before and during the move.

Prints a JSON document and a short table. Usage:
  bench/cluster_bench.py [--records 300000] [--runs 3] [--failovers 5] [--move-mb 50]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import confluent_kafka as ck
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.admin import KafkaAdminClient
from kafka.structs import TopicPartition as KpTopicPartition

TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/krait/target")) / "release"
BROKER = Path(os.environ.get("KRAIT_BROKER_BIN", TARGET / "krait-broker"))
CLI = Path(os.environ.get("KRAIT_CLI_BIN", TARGET / "krait"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


class Cluster:
    """N brokers on loopback, each with its own data dir, log and ports."""

    def __init__(self, work: Path, n: int, voters: int | None = None, extra=()):
        self.work, self.extra = work, list(extra)
        self.ids = list(range(1, n + 1))
        self.kafka = {i: free_port() for i in self.ids}
        self.grpc = {i: free_port() for i in self.ids}
        voter_ids = self.ids[: voters or n]
        self.voters = ",".join(f"{i}@127.0.0.1:{self.grpc[i]}" for i in voter_ids)
        self.alone = n == 1
        self.procs: dict[int, subprocess.Popen] = {}
        work.mkdir(parents=True, exist_ok=True)

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.kafka[i]}" for i in self.ids if i in self.procs)

    def start(self, i: int) -> None:
        args = [str(BROKER), "--node-id", str(i), "--data-dir", str(self.work / f"d{i}"),
                "--listen", f"127.0.0.1:{self.kafka[i]}"]
        if not self.alone:
            args += ["--cluster-listen", f"127.0.0.1:{self.grpc[i]}", "--voters", self.voters]
        log = open(self.work / f"b{i}.log", "ab")
        self.procs[i] = subprocess.Popen(args + self.extra, stdout=log, stderr=log)

    def start_all(self) -> "Cluster":
        for i in self.ids:
            self.start(i)
        for i in self.ids:
            wait(lambda i=i: self.answers(i), 60, f"broker {i}")
        return self

    def answers(self, i: int) -> bool:
        try:
            md = AdminClient({"bootstrap.servers": f"127.0.0.1:{self.kafka[i]}"}).list_topics(timeout=2)
            return len(md.brokers) == len(self.procs)
        except Exception:
            return False

    def kill9(self, i: int) -> None:
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait()
        del self.procs[i]

    def stop(self) -> None:
        for p in self.procs.values():
            p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        self.procs.clear()

    def admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.bootstrap})

    def partitions(self, topic: str):
        admin = self.admin()
        md = admin.list_topics(topic, timeout=10)
        return md.topics[topic].partitions

    def create(self, topic: str, partitions: int, rf: int, assignment=None, configs=None) -> None:
        if assignment:
            # confluent-kafka's NewTopic refuses explicit assignments without a partition count
            # in some versions; kafka-python's sends them as they are.
            from kafka.admin import NewTopic as KpNewTopic
            kp = KafkaAdminClient(bootstrap_servers=self.bootstrap)
            kp.create_topics([KpNewTopic(topic, num_partitions=-1, replication_factor=-1,
                                         replica_assignments=dict(enumerate(assignment)),
                                         topic_configs=configs or {})])
            kp.close()
            return
        else:
            t = NewTopic(topic, num_partitions=partitions, replication_factor=rf, config=configs or {})
        admin = self.admin()  # must outlive its futures
        for f in admin.create_topics([t]).values():
            f.result(30)

    def full_isr(self, topic: str) -> bool:
        try:
            return all(len(p.isrs) == len(p.replicas) and p.leader >= 0
                       for p in self.partitions(topic).values())
        except Exception:
            return False


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def failover(work: Path, runs: int) -> dict:
    c = Cluster(work / "failover", 3).start_all()
    try:
        c.create("fo", 1, 3, configs={"min.insync.replicas": "2"})
        p = ck.Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 0, "message.timeout.ms": 60000,
                         "topic.metadata.refresh.interval.ms": 1000})
        times = []
        for run in range(runs):
            leader = c.partitions("fo")[0].leader
            acked: list[float] = []
            p.produce("fo", b"warm", on_delivery=lambda e, m: None)
            p.flush(30)
            t0 = time.monotonic()
            c.kill9(leader)
            # Probes sent after the kill can only be acknowledged by the new leader.
            def cb(err, msg):
                if err is None:
                    acked.append(time.monotonic())
            deadline = t0 + 60
            while not acked and time.monotonic() < deadline:
                p.produce("fo", b"probe", on_delivery=cb)
                p.poll(0.02)
            p.flush(60)
            if not acked:
                raise RuntimeError("no acknowledged produce within 60 s of the kill")
            times.append(acked[0] - t0)
            print(f"  failover {run + 1}: broker {leader} killed, acks=all on the new leader after "
                  f"{times[-1]:.2f} s", flush=True)
            c.start(leader)
            wait(lambda: c.full_isr("fo"), 60, "full ISR after restart")
        return {"runs_s": times, "median_s": statistics.median(times)}
    finally:
        c.stop()


def perf(bootstrap: str, topic: str, records: int) -> float:
    out = subprocess.run([str(CLI), "--bootstrap-server", bootstrap, "-o", "json", "perf", "produce",
                          "--topic", topic, "--num-records", str(records), "--record-size", "100",
                          "--acks", "all"], capture_output=True, text=True, timeout=600, check=True)
    return float(json.loads(out.stdout)["records_per_sec"])


def throughput(work: Path, records: int, runs: int) -> dict:
    single = Cluster(work / "single", 1).start_all()
    trio = Cluster(work / "trio", 3).start_all()
    try:
        single.create("tp", 3, 1)
        trio.create("tp", 3, 3, configs={"min.insync.replicas": "2"})
        one, three = [], []
        for _ in range(runs):
            one.append(perf(single.bootstrap, "tp", records))
            three.append(perf(trio.bootstrap, "tp", records))
            print(f"  single {one[-1]:,.0f} rec/s, 3 brokers RF=3 {three[-1]:,.0f} rec/s", flush=True)
        return {"single_rec_s": one, "rf3_rec_s": three,
                "ratio": statistics.median(three) / statistics.median(one)}
    finally:
        single.stop()
        trio.stop()


class LatencyProbe:
    """A steady acks=all producer (200 records/s) recording each record's latency."""

    def __init__(self, bootstrap: str, topic: str):
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()
        self.p = ck.Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
        self.topic = topic
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            sent = time.monotonic()
            self.p.produce(self.topic, b"x" * 100,
                           on_delivery=lambda e, m, s=sent: e is None and self.samples.append((s, time.monotonic() - s)))
            self.p.poll(0.005)
        self.p.flush(30)

    def between(self, a: float, b: float) -> list[float]:
        return [lat * 1000 for s, lat in self.samples if a <= s < b]

    def close(self):
        self.stop.set()
        self.thread.join(60)


def reassignment(work: Path, move_mb: int, throttle: int | None) -> dict:
    c = Cluster(work / f"move-{throttle or 'free'}", 4).start_all()
    try:
        partitions = 6
        assignment = [[1 + (p + k) % 3 for k in range(3)] for p in range(partitions)]
        c.create("mv", partitions, 3, assignment=assignment, configs={"min.insync.replicas": "2"})
        c.create("probe", 1, 3, assignment=[[2, 3, 4]])
        records = move_mb * 1_000_000 // 100
        perf(c.bootstrap, "mv", records)
        probe = LatencyProbe(c.bootstrap, "probe")
        time.sleep(8)  # 3 s of warm-up (connections, metadata), then the 5 s "before" window
        kp = KafkaAdminClient(bootstrap_servers=c.bootstrap)
        if throttle:
            # As `krait partition reassign --throttle` does: both rates on every broker.
            from kafka.admin import ConfigResource, ConfigResourceType
            kp.alter_configs([ConfigResource(ConfigResourceType.BROKER, str(i), configs={
                "leader.replication.throttled.rate": str(throttle),
                "follower.replication.throttled.rate": str(throttle)}) for i in c.ids])
        t0 = time.monotonic()
        kp.alter_partition_reassignments({KpTopicPartition("mv", p): [2, 3, 4] for p in range(partitions)})
        wait(lambda: not kp.list_partition_reassignments(), 600, "reassignment", interval=0.1)
        took = time.monotonic() - t0
        time.sleep(1)
        probe.close()
        before, during = probe.between(t0 - 5, t0), probe.between(t0, t0 + took)
        # Broker 4 received a full copy of every partition.
        moved_mb = records * 100 / 1e6
        result = {"throttle_bytes_s": throttle, "seconds": took, "moved_mb": moved_mb,
                  "mb_per_s": moved_mb / took,
                  "p50_before_ms": pct(before, 0.5), "p99_before_ms": pct(before, 0.99),
                  "p50_during_ms": pct(during, 0.5), "p99_during_ms": pct(during, 0.99)}
        print(f"  reassignment (throttle {throttle or 'none'}): {moved_mb:.0f} MB in {took:.1f} s = "
              f"{result['mb_per_s']:.1f} MB/s; producer p99 {result['p99_before_ms']:.1f} ms before, "
              f"{result['p99_during_ms']:.1f} ms during", flush=True)
        return result
    finally:
        c.stop()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=300_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--failovers", type=int, default=5)
    ap.add_argument("--move-mb", type=int, default=50)
    ap.add_argument("--throttle", type=int, default=5_000_000)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="krait-cluster-bench-"))
    try:
        results = {"load_average": os.getloadavg(), "cpus": os.cpu_count()}
        print("failover", flush=True)
        results["failover"] = failover(work, args.failovers)
        print("throughput", flush=True)
        results["throughput"] = throughput(work, args.records, args.runs)
        print("reassignment", flush=True)
        results["reassignment"] = [reassignment(work, args.move_mb, None),
                                   reassignment(work, args.move_mb, args.throttle)]
        text = json.dumps(results, indent=2)
        print(text)
        if args.out:
            args.out.write_text(text + "\n")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
