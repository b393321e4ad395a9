"""Broker processes for the benchmark: Krait and the peer Tansu, one at a time on loopback.

Each broker gets a fresh data directory and port, is polled until it answers Metadata, and
is always killed by `stop()` (the driver calls it from `finally`, so also on error and
ctrl-C). CPU time and RSS are read from /proc/PID, the kernel's own accounting, so the
figures need no cooperation from the broker.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from ports import free_port  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
READY_TIMEOUT_S = 60.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used (fields 14 and 15 of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        # The command name (field 2) may contain spaces; it ends at the last ')'.
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def idle_jiffies() -> tuple[int, int]:
    """(idle, total) jiffies of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return fields[3] + fields[4], sum(fields)


def status_mib(pid: int, field: str) -> float:
    """A size in /proc/PID/status (VmRSS, VmHWM, ...), in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for pid {pid}")


def rss_mb(pid: int) -> float:
    """Resident set size in MiB (VmRSS of /proc/PID/status)."""
    return status_mib(pid, "VmRSS")


@dataclass
class BrokerSpec:
    """What to start: `name` labels results ('krait', 'tansu-sqlite', 'tansu-memory')."""
    name: str
    kind: str  # "krait" or "tansu"
    binary: Path
    engine: str = ""  # tansu only: "sqlite" or "memory"
    args: tuple[str, ...] = ()  # krait only: more flags (with its own --log, in place of "warn")


@dataclass
class RunningBroker:
    spec: BrokerSpec
    proc: subprocess.Popen
    port: int
    work_dir: Path
    log_path: Path
    admin: AdminClient = field(repr=False, default=None)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu(self) -> float:
        self.assert_alive()
        return cpu_seconds(self.pid)

    def rss(self) -> float:
        self.assert_alive()
        return rss_mb(self.pid)

    def assert_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.spec.name} exited with {self.proc.returncode}; log tail:\n"
                               + log_tail(self.log_path))

    def create_topic(self, name: str, partitions: int) -> None:
        """CreateTopics through the Kafka API (both brokers serve it), then waits for metadata."""
        futures = self.admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                                           operation_timeout=30)
        futures[name].result(timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            md = self.admin.list_topics(topic=name, timeout=10)
            t = md.topics.get(name)
            if t is not None and t.error is None and len(t.partitions) == partitions:
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.spec.name}: topic {name} did not show {partitions} partitions")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; the whole process group, in case it forked."""
        self.admin = None  # its librdkafka threads would otherwise keep reconnecting, logging
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.work_dir / "data", ignore_errors=True)


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def command(spec: BrokerSpec, port: int, data_dir: Path) -> list[str]:
    listen = f"127.0.0.1:{port}"
    if spec.kind == "krait":
        log = [] if "--log" in spec.args else ["--log", "warn"]
        return [str(spec.binary), "--data-dir", str(data_dir), "--listen", listen, *log, *spec.args]
    if spec.engine == "sqlite":
        # Tansu resolves the SQLite path against its working directory (work_dir) even when
        # absolute, so give it the relative one.
        engine = f"sqlite://{data_dir.name}/tansu.db"
    else:
        engine = "memory://tansu/"
    return [str(spec.binary), "broker", "--listener-url", f"tcp://{listen}",
            "--advertised-listener-url", f"tcp://{listen}", "--storage-engine", engine]


def start(spec: BrokerSpec, work_dir: Path) -> RunningBroker:
    """Starts the broker on a free loopback port with an empty data dir and waits until it
    answers Metadata; a broker that dies or hangs raises with its log tail."""
    port = free_port()
    data_dir = work_dir / "data"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    log_path = work_dir / f"{spec.name}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KRAIT_")}
    env.setdefault("RUST_LOG", "warn")
    with open(log_path, "ab") as log:
        log.write(f"===== {' '.join(command(spec, port, data_dir))}\n".encode())
        log.flush()
        # A session of its own: ctrl-C in the terminal reaches only the driver, whose
        # `finally` then stops the broker in order.
        proc = subprocess.Popen(command(spec, port, data_dir), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, cwd=work_dir, start_new_session=True)
    broker = RunningBroker(spec, proc, port, work_dir, log_path)
    try:
        wait_ready(broker)
    except BaseException:
        broker.stop()
        raise
    return broker


def wait_ready(broker: RunningBroker) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        broker.assert_alive()
        try:
            with socket.create_connection(("127.0.0.1", broker.port), timeout=0.5):
                pass
            # Created once the port accepts, so librdkafka does not log refused connections.
            if broker.admin is None:
                broker.admin = AdminClient({"bootstrap.servers": broker.bootstrap, "log_level": 3})
            md = broker.admin.list_topics(timeout=2)
            if md.brokers:
                return
        except Exception:  # noqa: BLE001 - not listening yet, or metadata not served yet
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{broker.spec.name} not ready after {READY_TIMEOUT_S} s; log tail:\n"
                       + log_tail(broker.log_path))
