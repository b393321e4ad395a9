#!/usr/bin/env python3
"""Cluster figures for issue 4, measured on real broker processes on loopback:

- failover: kill -9 a partition leader while a producer sends an acks=all probe every 20 ms;
  the longest wait for an acknowledgement, until the successor has acknowledged a probe
  (median of --failovers runs, the broker restarted and back in the ISR between runs); and the
  same with SIGTERM, where the broker hands its leaderships over (controlled shutdown) first.
  `--failover-kill` chooses the broker: the partition's leader as it is (`leader`, the default),
  or a leader made to be the controller first (`controller`: the metadata quorum elects too) or
  made not to be (`not-controller`);
- throughput: `krait perf produce` (acks=all, 100-byte records) against one broker alone and
  against three brokers with replication factor 3, same topic shape, alternating, median of
  --runs; the ratio is 3-broker / single;
- reassignment: every partition of a topic moved from brokers {1,2,3} to {2,3,4} with no
  throttle (and with --throttle B/s), MB/s moved, and the p50/p99 latency of a steady acks=all
  producer before and during the move.

Prints a JSON document and a short table. Usage:
  bench/cluster_bench.py [--records 2000000] [--runs 3] [--failovers 5] [--move-mb 50]
                         [--only failover,throughput,reassignment] [--failover-kill leader]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from ports import free_port  # noqa: E402
from brokers import cpu_seconds, idle_jiffies  # noqa: E402

TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/krait/target")) / "release"
BROKER = Path(os.environ.get("KRAIT_BROKER_BIN", TARGET / "krait-broker"))
CLI = Path(os.environ.get("KRAIT_CLI_BIN", TARGET / "krait"))


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
        self.exiting: list[subprocess.Popen] = []
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
        self.signal(i, signal.SIGKILL)

    def signal(self, i: int, sig: int) -> None:
        """Sends `sig` to broker `i` without waiting for it to exit: a broker on SIGTERM hands
        its leaderships over while it still answers."""
        proc = self.procs.pop(i)
        proc.send_signal(sig)
        if sig == signal.SIGKILL:
            proc.wait()
        else:
            self.exiting.append(proc)

    def reap(self, timeout: float = 30) -> None:
        """Waits for brokers sent SIGTERM to exit (SIGKILL after `timeout`)."""
        for p in self.exiting:
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.exiting.clear()

    def stop(self) -> None:
        for p in self.procs.values():
            p.send_signal(signal.SIGTERM)
        self.exiting += self.procs.values()
        self.procs.clear()
        self.reap(15)

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


def controller(c: "Cluster") -> int:
    return c.admin().list_topics(timeout=10).controller_id


def lead_from(c: "Cluster", topic: str, want) -> int:
    """Moves the leadership of partition 0 of `topic` to a broker `b` for which
    `want(b, controller)` holds: the replicas reordered so that `b` is preferred, then a
    preferred election. Returns the leader once it is such a broker and the ISR is full."""
    for _ in range(20):
        ctrl, part = controller(c), c.partitions(topic)[0]
        if ctrl >= 0 and want(part.leader, ctrl) and len(part.isrs) == len(part.replicas):
            return part.leader
        target = next((b for b in part.replicas if want(b, ctrl)), None)
        if ctrl < 0 or target is None:
            time.sleep(0.5)
            continue
        order = [target] + [b for b in part.replicas if b != target]
        plan = c.work / "lead.json"
        plan.write_text(json.dumps({"version": 1, "partitions": [
            {"topic": topic, "partition": 0, "replicas": order}]}))
        for args in (["partition", "reassign", "--plan", str(plan)],
                     ["partition", "elect-leaders", "--topic", topic]):
            subprocess.run([str(CLI), "--bootstrap-server", c.bootstrap, *args],
                           capture_output=True, timeout=60)
        time.sleep(0.5)
    raise RuntimeError(f"could not move the leadership of {topic} as asked")


def failover(work: Path, runs: int, sig: int = signal.SIGKILL, kill: str = "leader") -> dict:
    """The leader of a partition stopped with `sig` while a producer sends an acks=all probe
    every 20 ms: the longest any probe sent from the signal on waits for its acknowledgement,
    until the successor leads and has acknowledged a probe. After kill -9 that is the session
    timeout plus the client finding the new leader; after SIGTERM the broker hands over first.
    `kill`: "leader" takes the leader as it is; "controller" makes the controller lead first,
    so the metadata quorum loses its leader too; "not-controller" makes another broker
    lead."""
    how = "killed" if sig == signal.SIGKILL else "sent SIGTERM"
    c = Cluster(work / f"failover-{int(sig)}-{kill}", 3).start_all()
    try:
        c.create("fo", 1, 3, configs={"min.insync.replicas": "2"})
        # Every run starts from a full ISR, the first one too.
        wait(lambda: c.full_isr("fo"), 60, "full ISR before the first fault")
        p = ck.Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 0, "message.timeout.ms": 60000,
                         "topic.metadata.refresh.interval.ms": 1000})
        times, elected, was_controller = [], [], []
        for run in range(runs):
            if kill == "controller":
                lead_from(c, "fo", lambda b, ctrl: b == ctrl)
            elif kill == "not-controller":
                lead_from(c, "fo", lambda b, ctrl: b != ctrl)
            leader = c.partitions("fo")[0].leader
            was_controller.append(leader == controller(c))
            p.produce("fo", b"warm", on_delivery=lambda e, m: None)
            p.flush(30)
            waits: list[tuple[float, float]] = []

            def acked(err, msg, sent):
                if err is None:
                    waits.append((sent, time.monotonic() - sent))

            t0 = time.monotonic()
            c.signal(leader, sig)
            successor_at, next_look = None, t0
            while time.monotonic() < t0 + 60:
                sent = time.monotonic()
                p.produce("fo", b"probe", on_delivery=lambda e, m, s=sent: acked(e, m, s))
                p.poll(0.02)
                now = time.monotonic()
                if successor_at is None and now >= next_look:
                    next_look = now + 0.1
                    try:
                        if c.partitions("fo")[0].leader not in (leader, -1):
                            successor_at = now
                    except Exception:  # noqa: BLE001 - a broker may be going; look again
                        pass
                if successor_at is not None and any(s >= successor_at for s, _ in waits):
                    break
            p.flush(60)
            if successor_at is None:
                raise RuntimeError(f"no new leader within 60 s of broker {leader} being {how}")
            times.append(max(w for s, w in waits if s >= t0))
            elected.append(successor_at - t0)
            role = " (the controller)" if was_controller[-1] else ""
            print(f"  failover {run + 1}: broker {leader}{role} {how}, new leader in metadata after "
                  f"{elected[-1]:.2f} s, longest acks=all wait {times[-1]:.2f} s", flush=True)
            c.reap()
            c.start(leader)
            wait(lambda: c.full_isr("fo"), 60, "full ISR after restart")
        # `elected`: the signal to the successor in the brokers' metadata (looked for every
        # 0.1 s), the broker's part; the rest of the wait is the client finding it.
        return {"kill": kill, "runs_s": times, "median_s": statistics.median(times),
                "elected_s": elected, "elected_median_s": statistics.median(elected),
                "was_controller": was_controller}
    finally:
        c.stop()


def perf(bootstrap: str, topic: str, records: int) -> float:
    out = subprocess.run([str(CLI), "--bootstrap-server", bootstrap, "-o", "json", "perf", "produce",
                          "--topic", topic, "--num-records", str(records), "--record-size", "100",
                          "--acks", "all"], capture_output=True, text=True, timeout=600, check=True)
    return float(json.loads(out.stdout)["records_per_sec"])


def controller_changes(c: "Cluster") -> int:
    """How many times, summed over the brokers' logs, a broker saw the controller change."""
    return sum(p.read_text(errors="replace").count("controller changed") for p in c.work.glob("b*.log"))


def measured_perf(c: "Cluster", records: int) -> tuple[float, float, float]:
    """`perf` against cluster `c`: (records/s, CPU seconds all its brokers used per million
    records, the share of the machine's CPU time left idle while it ran)."""
    cpu0 = sum(cpu_seconds(p.pid) for p in c.procs.values())
    idle0, total0 = idle_jiffies()
    rate = perf(c.bootstrap, "tp", records)
    cpu = sum(cpu_seconds(p.pid) for p in c.procs.values()) - cpu0
    idle1, total1 = idle_jiffies()
    return rate, cpu / records * 1e6, (idle1 - idle0) / max(total1 - total0, 1)


def throughput(work: Path, records: int, runs: int) -> dict:
    single = Cluster(work / "single", 1).start_all()
    trio = Cluster(work / "trio", 3).start_all()
    try:
        single.create("tp", 3, 1)
        trio.create("tp", 3, 3, configs={"min.insync.replicas": "2"})
        changes_before = controller_changes(trio)
        one, three, cpu_one, cpu_three, idle_one, idle_three = [], [], [], [], [], []
        for _ in range(runs):
            for c, rates, cpus, idles in ((single, one, cpu_one, idle_one),
                                          (trio, three, cpu_three, idle_three)):
                rate, cpu, idle = measured_perf(c, records)
                rates.append(rate)
                cpus.append(cpu)
                idles.append(idle)
            print(f"  single {one[-1]:,.0f} rec/s ({cpu_one[-1]:.2f} broker CPU s/M records, "
                  f"{idle_one[-1]:.0%} idle), 3 brokers RF=3 {three[-1]:,.0f} rec/s "
                  f"({cpu_three[-1]:.2f} CPU s/M over the three, {idle_three[-1]:.0%} idle)",
                  flush=True)
        # Fencing is the controller's verdict that a broker is gone; a healthy broker fenced
        # under load (a missed heartbeat, a probe misread) would show here.
        fenced = sum(p.read_text(errors="replace").count("fencing broker")
                     for p in trio.work.glob("b*.log"))
        # A metadata quorum election under load (a controller's heartbeats late past the
        # election timeout) shows as every broker logging a controller change.
        elections = controller_changes(trio) - changes_before
        print(f"  brokers fenced during the 3-broker runs: {fenced}; controller changes seen: "
              f"{elections}", flush=True)
        return {"single_rec_s": one, "rf3_rec_s": three,
                "single_cpu_s_per_m": cpu_one, "rf3_cpu_s_per_m": cpu_three,
                "single_idle_share": idle_one, "rf3_idle_share": idle_three,
                "ratio": statistics.median(three) / statistics.median(one),
                "fenced_under_load": fenced, "controller_changes_under_load": elections}
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


PARTS = ("failover", "throughput", "reassignment")


def run(records: int = 2_000_000, runs: int = 3, failovers: int = 5, move_mb: int = 50,
        throttle: int = 5_000_000, only=PARTS, failover_kill: str = "leader") -> dict:
    """Every cluster figure (or those `only` names), as one JSON-ready dict."""
    work = Path(tempfile.mkdtemp(prefix="krait-cluster-bench-"))
    try:
        results = {"params": {"records": records, "runs": runs, "failovers": failovers,
                              "move_mb": move_mb, "throttle_bytes_s": throttle},
                   "cpus": os.cpu_count()}
        if "failover" in only:
            print(f"failover (kill -9 of the {failover_kill})", flush=True)
            results["failover"] = failover(work, failovers, signal.SIGKILL, failover_kill)
            if failover_kill == "leader":
                print("failover (kill -9 of a leader that is also the controller)", flush=True)
                results["failover_controller"] = failover(work, failovers, signal.SIGKILL, "controller")
            print("failover (SIGTERM: controlled shutdown)", flush=True)
            results["failover_sigterm"] = failover(work, failovers, signal.SIGTERM, failover_kill)
        if "throughput" in only:
            print("throughput", flush=True)
            results["throughput"] = throughput(work, records, runs)
        if "reassignment" in only:
            print("reassignment", flush=True)
            results["reassignment"] = [reassignment(work, move_mb, None),
                                       reassignment(work, move_mb, throttle)]
        results["load_average"] = os.getloadavg()
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=2_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--failovers", type=int, default=5)
    ap.add_argument("--move-mb", type=int, default=50)
    ap.add_argument("--throttle", type=int, default=5_000_000)
    ap.add_argument("--only", default=",".join(PARTS), help="which figures, comma-separated")
    ap.add_argument("--failover-kill", choices=("leader", "controller", "not-controller"),
                    default="leader", help="which partition leader the failover kills")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    only = set(args.only.split(","))
    if not only <= set(PARTS):
        ap.error(f"--only takes {', '.join(PARTS)}")
    results = run(args.records, args.runs, args.failovers, args.move_mb, args.throttle, only,
                  args.failover_kill)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
