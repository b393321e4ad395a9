"""Process control and client helpers for tests against a real `krait-broker` on loopback.

Everything here waits on a condition with a deadline; nothing sleeps to synchronise.
"""
from __future__ import annotations

import concurrent.futures
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, TypeVar

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from ports import free_port  # noqa: F401  (re-exported for the tests)

T = TypeVar("T")

DEFAULT_TARGET_DIR = Path(os.environ.get("CARGO_TARGET_DIR") or Path.home() / ".cache" / "krait" / "target")
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0


def binary_path(env_var: str, name: str) -> Path:
    """The binary named by `env_var`, else the release build under the cargo target dir."""
    return Path(os.environ.get(env_var) or DEFAULT_TARGET_DIR / "release" / name)


def wait_until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Polls `predicate` until it returns something truthy; raises TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def port_accepts(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class BrokerExited(AssertionError):
    """The broker process ended when it should have been serving."""


class Broker:
    """One `krait-broker` process with its own data directory, port and log file.

    `host` is the address it listens on (loopback unless it runs in a network namespace);
    `command_prefix` runs it through a wrapper such as `ip netns exec NS`, which execs the
    broker so that the process's pid is still the broker's.
    """

    def __init__(self, binary: Path, data_dir: Path, log_path: Path, port: Optional[int] = None,
                 args: Iterable[str] = (), env: Optional[dict] = None, host: str = "127.0.0.1",
                 command_prefix: Iterable[str] = ()):
        self.binary = Path(binary)
        self.host = host
        self.command_prefix = list(command_prefix)
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path)
        self.port = port or free_port()
        self.args = list(args)
        self.env = dict(env or {})
        self.proc: Optional[subprocess.Popen] = None
        self.starts = 0
        self._log_offset = 0

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [*self.command_prefix, str(self.binary), "--data-dir", str(self.data_dir), "--listen", self.bootstrap, *self.args]

    def spawn(self) -> subprocess.Popen:
        """Starts the process without waiting for it to be ready."""
        if not self.binary.exists():
            raise AssertionError(f"broker binary {self.binary} does not exist: build it with "
                                 "`cargo build --release --bins` or set KRAIT_BROKER_BIN")
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("KRAIT_")}
        env.setdefault("RUST_BACKTRACE", "1")
        env.update(self.env)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"===== start #{self.starts}: {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=env, start_new_session=True)
        return self.proc

    def start(self) -> "Broker":
        self.spawn()
        self.wait_ready()
        return self

    def log_since_start(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Waits until the log says it listens on our port and the port accepts connections."""
        marker = f"listening on {self.bootstrap}"

        def ready():
            if self.proc.poll() is not None:
                raise BrokerExited(f"krait-broker exited with {self.proc.returncode} before it was ready:\n"
                                   + self.log_tail())
            return marker in self.log_since_start() and port_accepts(self.port, self.host)

        try:
            wait_until(ready, timeout, f"krait-broker to log {marker!r} and accept connections")
        except TimeoutError as e:
            raise AssertionError(f"{e}\n{self.log_tail()}") from None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self) -> None:
        if not self.alive():
            code = None if self.proc is None else self.proc.returncode
            raise BrokerExited(f"krait-broker is not running (exit code {code}):\n{self.log_tail()}")

    def kill9(self) -> None:
        """SIGKILL: no chance to flush or clean up."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=STOP_TIMEOUT_S)

    def terminate(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM and wait for the exit; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def restart(self) -> "Broker":
        """Starts again on the same data directory and port (after a kill9, terminate, or live)."""
        if self.alive():
            self.terminate()
        return self.start()

    def stop(self) -> None:
        """Teardown: SIGTERM, then SIGKILL if it does not exit in time."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.terminate()
        except subprocess.TimeoutExpired:
            self.kill9()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 150) -> str:
        text = self.log_text().splitlines()
        return "\n".join(text[-lines:])


# ---------------------------------------------------------------- confluent-kafka helpers

class KeptAdminClient(AdminClient):
    """An AdminClient whose futures keep it alive.

    librdkafka fails every pending future with `_DESTROY` when its client is garbage
    collected, so `admin(b).create_topics(...)[name].result()` would fail on a temporary
    client; each future returned here holds a reference to its client instead.
    """


def _keeping_client_alive(name: str):
    method = getattr(AdminClient, name)

    def call(self, *args, **kwargs):
        result = method(self, *args, **kwargs)
        futures = result.values() if isinstance(result, dict) else [result]
        for f in futures:
            if isinstance(f, concurrent.futures.Future):
                f.krait_admin_client = self
        return result

    call.__name__ = name
    call.__doc__ = method.__doc__
    return call


for _name in dir(AdminClient):
    if not _name.startswith("_") and _name not in ("list_topics", "list_groups", "poll") \
            and callable(getattr(AdminClient, _name)):
        setattr(KeptAdminClient, _name, _keeping_client_alive(_name))


def admin(bootstrap: str, **conf) -> AdminClient:
    base = {"bootstrap.servers": bootstrap}
    base.update({k.replace("_", "."): v for k, v in conf.items()})
    return KeptAdminClient(base)


def create_topic(bootstrap: str, name: str, partitions: int = 1, replication_factor: int = 1,
                 config: Optional[dict] = None, timeout: float = 30) -> str:
    """Creates a topic with AdminClient and waits until metadata shows all its partitions."""
    a = admin(bootstrap)
    futures = a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=replication_factor,
                                        config=config or {})], operation_timeout=timeout)
    futures[name].result(timeout=timeout)
    wait_until(lambda: partition_count(bootstrap, name, a) == partitions, timeout,
               f"topic {name} to show {partitions} partitions in metadata")
    return name


def partition_count(bootstrap: str, topic: str, client: Optional[AdminClient] = None) -> int:
    md = (client or admin(bootstrap)).list_topics(topic=topic, timeout=10)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return 0
    return len(t.partitions)


def topic_names(bootstrap: str) -> set[str]:
    return set(admin(bootstrap).list_topics(timeout=10).topics)


def producer(bootstrap: str, **conf) -> Producer:
    base = {"bootstrap.servers": bootstrap, "linger.ms": 5, "message.timeout.ms": 30000}
    base.update({k.replace("_", "."): v for k, v in conf.items()})
    return Producer(base)


@dataclass
class Delivery:
    error: Optional[KafkaError]
    partition: int
    offset: int
    key: Optional[bytes]
    value: Optional[bytes]


def produce_all(p: Producer, topic: str, messages: Iterable[dict], timeout: float = 60) -> list[Delivery]:
    """Produces each `dict(value=..., key=..., partition=..., headers=..., timestamp=...)`, flushes,
    and returns one delivery report per message, in the order given."""
    reports: list[Optional[Delivery]] = []

    def on_delivery(index):
        def cb(err, msg):
            reports[index] = Delivery(err, msg.partition(), msg.offset(), msg.key(), msg.value())
        return cb

    for i, m in enumerate(messages):
        reports.append(None)
        kwargs = {k: v for k, v in m.items() if v is not None or k == "value"}
        p.produce(topic, on_delivery=on_delivery(i), **kwargs)
        p.poll(0)
    remaining = p.flush(timeout)
    assert remaining == 0, f"{remaining} messages still undelivered after {timeout}s"
    missing = [i for i, r in enumerate(reports) if r is None]
    assert not missing, f"no delivery report for messages {missing[:10]}"
    return reports  # type: ignore[return-value]


def assert_delivered(reports: list[Delivery]) -> None:
    failed = [(i, r.error) for i, r in enumerate(reports) if r.error is not None]
    assert not failed, f"{len(failed)} of {len(reports)} deliveries failed, first: {failed[:3]}"


@dataclass
class Rec:
    partition: int
    offset: int
    key: Optional[bytes]
    value: Optional[bytes]
    headers: list = field(default_factory=list)
    timestamp: int = -1


def consumer(bootstrap: str, **conf) -> Consumer:
    """A confluent consumer for manual assignment: the broker has no group coordinator yet."""
    base = {
        "bootstrap.servers": bootstrap,
        "group.id": unique("krait-tests"),
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
    }
    base.update({k.replace("_", "."): v for k, v in conf.items()})
    return Consumer(base)


def consume(bootstrap: str, topic: str, partitions: Iterable[int], expected: Optional[int] = None,
            start: int = OFFSET_BEGINNING, timeout: float = 30, **conf) -> list[Rec]:
    """Reads the given partitions from `start`.

    With `expected`, returns once that many records arrived; without, once every partition
    reported end of partition. Fails on a consume error or on the deadline.
    """
    parts = list(partitions)
    c = consumer(bootstrap, **conf)
    try:
        c.assign([TopicPartition(topic, p, start) for p in parts])
        records: list[Rec] = []
        at_end: set[int] = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if expected is not None and len(records) >= expected:
                break
            if expected is None and at_end >= set(parts):
                break
            for msg in c.consume(num_messages=10000, timeout=0.5):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        at_end.add(msg.partition())
                        continue
                    raise AssertionError(f"consume error on {topic}/{msg.partition()}: {err}")
                at_end.discard(msg.partition())
                records.append(Rec(msg.partition(), msg.offset(), msg.key(), msg.value(),
                                   list(msg.headers() or []), msg.timestamp()[1]))
        else:
            raise AssertionError(f"consume of {topic} {parts} timed out after {timeout}s with "
                                 f"{len(records)} records (expected {expected}), at end: {sorted(at_end)}")
        return records
    finally:
        c.close()


def watermarks(bootstrap: str, topic: str, partition: int) -> tuple[int, int]:
    """(log start offset, high watermark) through ListOffsets."""
    c = consumer(bootstrap)
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)
    finally:
        c.close()


# ---------------------------------------------------------------- kafka-python helpers

def kp_consume(bootstrap: str, topic: str, partitions: Iterable[int], expected: int,
               timeout: float = 30, start_offsets: Optional[dict] = None, **conf) -> list[Rec]:
    """Reads `expected` records with kafka-python's KafkaConsumer (manual assignment, no group)."""
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP

    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                      auto_offset_reset="earliest", **conf)
    try:
        tps = [KTP(topic, p) for p in partitions]
        c.assign(tps)
        for tp in tps:
            if start_offsets and tp.partition in start_offsets:
                c.seek(tp, start_offsets[tp.partition])
            else:
                c.seek_to_beginning(tp)
        records: list[Rec] = []
        deadline = time.monotonic() + timeout
        while len(records) < expected and time.monotonic() < deadline:
            for tp, msgs in c.poll(timeout_ms=500, max_records=10000).items():
                for m in msgs:
                    records.append(Rec(m.partition, m.offset, m.key, m.value,
                                       [(k, v) for k, v in (m.headers or [])], m.timestamp))
        assert len(records) >= expected, (f"kafka-python read {len(records)} of {expected} records "
                                          f"from {topic} in {timeout}s")
        return records
    finally:
        c.close()


# ---------------------------------------------------------------- command-line tools

def run(cmd: list[str], input: Optional[bytes | str] = None, timeout: float = 60,
        check: bool = True, env: Optional[dict] = None) -> subprocess.CompletedProcess:
    """Runs a command with a timeout; with `check`, a non-zero exit fails with its output."""
    if isinstance(input, str):
        input = input.encode()
    full_env = dict(os.environ)
    full_env.update(env or {})
    try:
        cp = subprocess.run(cmd, input=input, stdin=None if input is not None else subprocess.DEVNULL,
                            capture_output=True, timeout=timeout, env=full_env)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{' '.join(cmd)} did not finish in {timeout}s\nstdout: {e.stdout!r}\n"
                             f"stderr: {e.stderr!r}") from None
    if check and cp.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {cp.returncode}\nstdout:\n{cp.stdout.decode(errors='replace')}"
                             f"\nstderr:\n{cp.stderr.decode(errors='replace')}")
    return cp


def kcat(bootstrap: str, *args: str, input: Optional[bytes | str] = None, timeout: float = 60,
         check: bool = True) -> subprocess.CompletedProcess:
    return run(["kcat", "-b", bootstrap, *args], input=input, timeout=timeout, check=check)


class Cli:
    """The `krait` command-line client against one broker."""

    def __init__(self, binary: Path, bootstrap: str):
        self.binary = Path(binary)
        self.bootstrap = bootstrap

    def __call__(self, *args: str, input: Optional[bytes | str] = None, timeout: float = 120,
                 check: bool = True, json_output: bool = False) -> subprocess.CompletedProcess:
        if not self.binary.exists():
            raise AssertionError(f"CLI binary {self.binary} does not exist: build it with "
                                 "`cargo build --release --bins` or set KRAIT_CLI_BIN")
        fmt = ["-o", "json"] if json_output else []
        return run([str(self.binary), "--bootstrap-server", self.bootstrap, *fmt, *args],
                   input=input, timeout=timeout, check=check)

    def json(self, *args: str, input: Optional[bytes | str] = None, timeout: float = 120):
        """Runs with `-o json` and parses stdout: one JSON document, or JSON lines."""
        import json

        out = self(*args, input=input, timeout=timeout, json_output=True).stdout.decode()
        try:
            return json.loads(out)
        except json.JSONDecodeError:
            lines = [line for line in out.splitlines() if line.strip()]
            try:
                return [json.loads(line) for line in lines]
            except json.JSONDecodeError as e:
                raise AssertionError(f"`krait -o json {' '.join(args)}` printed no JSON ({e}):\n{out}") from None
