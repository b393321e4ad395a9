"""The fault tests' workload and its audit.

`Workload` runs an idempotent acks=all producer writing keyed records `k<N>:<seq>` at a steady
rate and consumers reading every partition from the beginning at the same time, and records
every acknowledged delivery and everything the consumers saw. `audit` compares that record
with the log read back afterwards.
"""
from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

from confluent_kafka import OFFSET_BEGINNING, KafkaError, Producer, TopicPartition

from harness import Rec, consumer, wait_until

KEYS = 8
RATE_PER_S = 400
MAX_SECONDS = 240.0
FLUSH_TIMEOUT_S = 90.0
JOIN_TIMEOUT_S = FLUSH_TIMEOUT_S + 30.0


@dataclass(frozen=True)
class Stored:
    """A record at its place in the log: as acknowledged, or as a consumer saw it."""
    partition: int
    offset: int
    key: str
    value: str


def producer_config() -> dict:
    """Idempotent, acks=all; retries ride out a failover well within message.timeout.ms."""
    return {
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": 60000,
        "request.timeout.ms": 5000,
        "retry.backoff.ms": 50,
        "retry.backoff.max.ms": 500,
        "topic.metadata.refresh.interval.ms": 1000,
    }


class Workload:
    """`with Workload(bootstrap, topic, partitions) as w:` produces and consumes until the block
    ends (or MAX_SECONDS pass); `check_client_side` runs in each thread before it connects."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, keys: int = KEYS,
                 rate: int = RATE_PER_S, consumers: int = 2,
                 check_client_side: Callable[[], None] = lambda: None,
                 client_conf: Optional[dict] = None):
        self.bootstrap, self.topic, self.partitions = bootstrap, topic, partitions
        # Security settings (security.protocol, sasl.*, ssl.*) every client of the run uses.
        self.client_conf = dict(client_conf or {})
        self.keys, self.rate, self.consumer_count = keys, rate, consumers
        self.check_client_side = check_client_side
        self.produced = 0
        self.acked: list[Stored] = []
        self.failed: list[tuple[str, str]] = []  # (value, error)
        self.producer_errors: Counter = Counter()
        self.fatal: list[str] = []
        self.unflushed = 0
        self.seen: dict[tuple[int, int], str] = {}
        self.seen_changed: list[tuple[tuple[int, int], str, str]] = []
        self.consumer_errors: Counter = Counter()
        self._lock = threading.Lock()
        self._stop_producing = threading.Event()
        self._stop_consuming = threading.Event()
        self._threads: list[threading.Thread] = []
        self._thread_errors: list[BaseException] = []

    # -- lifecycle

    def __enter__(self) -> "Workload":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self._spawn(self._produce, "producer")
        for i in range(self.consumer_count):
            self._spawn(self._consume, f"consumer-{i}")

    def stop(self) -> None:
        """Stops producing, waits for the last deliveries (flush), then stops the consumers."""
        self._stop_producing.set()
        for t in self._threads[:1]:  # the producer
            t.join(JOIN_TIMEOUT_S)
        self._stop_consuming.set()
        for t in self._threads[1:]:
            t.join(30)
        alive = [t.name for t in self._threads if t.is_alive()]
        assert not alive, f"workload threads did not stop: {alive}"
        if self._thread_errors:
            raise AssertionError(f"a workload thread failed: {self._thread_errors[0]!r}") from self._thread_errors[0]

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        def run():
            try:
                self.check_client_side()
                target()
            except BaseException as e:  # surfaced by stop()
                self._thread_errors.append(e)
                self._stop_producing.set()

        t = threading.Thread(target=run, name=f"workload-{name}", daemon=True)
        self._threads.append(t)
        t.start()

    # -- progress

    def acked_count(self) -> int:
        with self._lock:
            return len(self.acked)

    def wait_for_acks(self, more: int, timeout: float, what: str) -> int:
        """Waits until `more` records beyond those acknowledged so far are acknowledged."""
        target = self.acked_count() + more

        def enough():
            if self._thread_errors:
                raise AssertionError(f"a workload thread failed: {self._thread_errors[0]!r}")
            return self.acked_count() >= target

        try:
            wait_until(enough, timeout, f"{more} more acknowledged records ({what})", interval=0.1)
        except TimeoutError as e:
            raise AssertionError(f"{e}; {self.progress()}") from None
        return self.acked_count()

    def progress(self) -> str:
        with self._lock:
            return (f"produced {self.produced}, acknowledged {len(self.acked)}, failed {len(self.failed)}, "
                    f"producer errors {dict(self.producer_errors)}, fatal {self.fatal[:3]}, "
                    f"consumers saw {len(self.seen)}, consumer errors {dict(self.consumer_errors)}")

    # -- threads

    def _on_delivery(self, err: Optional[KafkaError], msg) -> None:
        value = msg.value().decode()
        with self._lock:
            if err is None:
                self.acked.append(Stored(msg.partition(), msg.offset(), msg.key().decode(), value))
            else:
                self.failed.append((value, str(err)))
                if err.fatal():
                    self.fatal.append(str(err))

    def _on_error(self, err: KafkaError) -> None:
        with self._lock:
            self.producer_errors[err.name()] += 1
            if err.fatal():
                self.fatal.append(str(err))

    def _produce(self) -> None:
        p = Producer({"bootstrap.servers": self.bootstrap, "error_cb": self._on_error, **producer_config(),
                      **self.client_conf})
        seqs = [0] * self.keys
        started = time.monotonic()
        while not self._stop_producing.is_set() and time.monotonic() - started < MAX_SECONDS:
            if self.produced >= int((time.monotonic() - started) * self.rate) + 1:
                p.poll(0.005)  # ahead of the rate: serve callbacks while waiting
                continue
            k = self.produced % self.keys
            key = f"k{k}"
            try:
                p.produce(self.topic, key=key.encode(), value=f"{key}:{seqs[k]}".encode(),
                          on_delivery=self._on_delivery)
            except BufferError:
                p.poll(0.05)
                continue
            seqs[k] += 1
            self.produced += 1
            p.poll(0)
        self.unflushed = p.flush(FLUSH_TIMEOUT_S)

    def _consume(self) -> None:
        c = consumer(self.bootstrap, **{"enable.partition.eof": False, **self.client_conf})
        try:
            c.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in range(self.partitions)])
            deadline = time.monotonic() + MAX_SECONDS + JOIN_TIMEOUT_S
            while not self._stop_consuming.is_set() and time.monotonic() < deadline:
                for msg in c.consume(num_messages=1000, timeout=0.2):
                    err = msg.error()
                    if err is not None:
                        with self._lock:
                            self.consumer_errors[err.name()] += 1
                        continue
                    self._saw((msg.partition(), msg.offset()), msg.value().decode())
        finally:
            c.close()

    def _saw(self, at: tuple[int, int], value: str) -> None:
        with self._lock:
            first = self.seen.setdefault(at, value)
            if first != value:
                self.seen_changed.append((at, first, value))


# ---------------------------------------------------------------- audit

@dataclass
class Audit:
    acknowledged: int
    failed: int
    unflushed: int
    read: int
    duplicates: list = field(default_factory=list)    # values stored more than once
    lost: list = field(default_factory=list)          # acknowledged, not stored
    moved: list = field(default_factory=list)         # acknowledged at one offset, stored at another
    out_of_order: list = field(default_factory=list)  # (key, seq before, seq after) in log order
    split_keys: list = field(default_factory=list)    # keys found in more than one partition
    gaps: list = field(default_factory=list)          # (partition, offsets missing in the read)
    seen: int = 0
    vanished: list = field(default_factory=list)      # seen by a consumer during the run, gone after
    seen_changed: list = field(default_factory=list)  # one offset seen with two values
    fatal: list = field(default_factory=list)

    def summary(self) -> str:
        return (f"acknowledged={self.acknowledged} failed={self.failed} unflushed={self.unflushed} "
                f"read={self.read} duplicates={len(self.duplicates)} lost={len(self.lost)} "
                f"moved={len(self.moved)} out_of_order={len(self.out_of_order)} "
                f"split_keys={len(self.split_keys)} gaps={len(self.gaps)} seen_live={self.seen} "
                f"vanished={len(self.vanished)} seen_changed={len(self.seen_changed)} fatal={len(self.fatal)}")

    def problems(self) -> list[str]:
        checks = [
            ("acknowledged records lost", self.lost),
            ("acknowledged records stored at another offset", self.moved),
            ("records stored more than once", self.duplicates),
            ("per-key sequence out of order", self.out_of_order),
            ("keys in more than one partition", self.split_keys),
            ("offset gaps in the read", self.gaps),
            ("records consumers saw during the run that are gone", self.vanished),
            ("offsets consumers saw with two values", self.seen_changed),
            ("fatal producer errors", self.fatal),
        ]
        out = [f"{len(items)} {what}, e.g. {items[:5]}" for what, items in checks if items]
        if self.unflushed:
            out.append(f"{self.unflushed} records never got a delivery report")
        if self.acknowledged == 0:
            out.append("nothing was acknowledged")
        return out


def _seq(value: str) -> int:
    return int(value.rsplit(":", 1)[1])


def audit(work: Workload, final: Iterable[Rec]) -> Audit:
    """Checks the log read back after the run against what the workload recorded."""
    records = sorted(final, key=lambda r: (r.partition, r.offset))
    stored = {(r.partition, r.offset): r.value.decode() for r in records}
    counts = Counter(r.value.decode() for r in records)
    report = Audit(acknowledged=len(work.acked), failed=len(work.failed), unflushed=work.unflushed,
                   read=len(records), seen=len(work.seen), seen_changed=list(work.seen_changed),
                   fatal=list(work.fatal))
    report.duplicates = [v for v, n in counts.items() if n > 1]
    for a in work.acked:
        if counts[a.value] == 0:
            report.lost.append(a)
        elif stored.get((a.partition, a.offset)) != a.value:
            report.moved.append((a, stored.get((a.partition, a.offset))))
    last_seq: dict[str, int] = {}
    partitions_of_key: dict[str, set[int]] = defaultdict(set)
    offsets_of_partition: dict[int, list[int]] = defaultdict(list)
    for r in records:
        value = r.value.decode()
        key = r.key.decode()
        partitions_of_key[key].add(r.partition)
        offsets_of_partition[r.partition].append(r.offset)
        seq = _seq(value)
        if key in last_seq and seq <= last_seq[key]:
            report.out_of_order.append((key, last_seq[key], seq))
        last_seq[key] = seq
    report.split_keys = [k for k, ps in partitions_of_key.items() if len(ps) > 1]
    for p, offsets in offsets_of_partition.items():
        missing = sorted(set(range(offsets[0], offsets[-1] + 1)) - set(offsets))
        if missing or len(offsets) != len(set(offsets)):
            report.gaps.append((p, missing[:10]))
    report.vanished = [(at, v, stored.get(at)) for at, v in work.seen.items() if stored.get(at) != v]
    return report
