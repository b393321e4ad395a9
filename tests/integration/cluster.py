"""A cluster of real `krait-broker` voters for fault tests.

Each broker is a process with its own data directory, log file, Kafka port and cluster
(gRPC) port, on loopback or, with a `netns.NetworkLab`, in a network namespace of its own.
A broker can be killed with SIGKILL, paused with SIGSTOP, resumed with SIGCONT and restarted
on the same data directory and ports. What the cluster looks like is read from each broker's
own Metadata answer (v7 on the wire: controller id, leader epoch, offline replicas), and every
wait is a condition polled until a deadline.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Protocol

from confluent_kafka.admin import NewTopic

import kafka_wire as wire
from harness import Broker, BrokerExited, admin, free_port, unique, wait_until

START_TIMEOUT_S = 60.0
PROBE_TIMEOUT_S = 1.0
POLL_INTERVAL_S = 0.1
SHUTDOWN_TIMEOUT_S = 15.0


# ---------------------------------------------------------------- settings and placement

@dataclass(frozen=True)
class ClusterSettings:
    """Cluster flags every broker gets: fast failure detection for tests."""
    heartbeat_interval_ms: int = 100
    session_timeout_ms: int = 1500
    replica_lag_time_max_ms: int = 3000
    min_insync_replicas: int = 2
    default_replication_factor: int = 3
    # KRAIT_TEST_BROKER_LOG (e.g. `info,krait_replication=debug`) to debug a failing test.
    log: str = os.environ.get("KRAIT_TEST_BROKER_LOG", "info")

    def args(self) -> list[str]:
        return [
            "--broker-heartbeat-interval-ms", str(self.heartbeat_interval_ms),
            "--broker-session-timeout-ms", str(self.session_timeout_ms),
            "--replica-lag-time-max-ms", str(self.replica_lag_time_max_ms),
            "--min-insync-replicas", str(self.min_insync_replicas),
            "--default-replication-factor", str(self.default_replication_factor),
            "--log", self.log,
        ]


class Placement(Protocol):
    """Where broker `node_id` listens and how it is started (loopback or a namespace)."""

    def host(self, node_id: int) -> str:
        """The Kafka listener's address."""

    def cluster_host(self, node_id: int) -> str:
        """The cluster (gRPC) listener's address."""

    def kafka_port(self, node_id: int) -> int: ...

    def cluster_port(self, node_id: int) -> int: ...

    def command_prefix(self, node_id: int) -> list[str]: ...

    def check_client_side(self) -> None:
        """Raises unless the calling thread may open connections to the brokers."""


class Loopback:
    """Every broker on 127.0.0.1 with two free ports of its own."""

    def __init__(self):
        self._ports: dict[int, tuple[int, int]] = {}

    def _pair(self, node_id: int) -> tuple[int, int]:
        if node_id not in self._ports:
            self._ports[node_id] = (free_port(), free_port())
        return self._ports[node_id]

    def host(self, node_id: int) -> str:
        return "127.0.0.1"

    def cluster_host(self, node_id: int) -> str:
        return "127.0.0.1"

    def kafka_port(self, node_id: int) -> int:
        return self._pair(node_id)[0]

    def cluster_port(self, node_id: int) -> int:
        return self._pair(node_id)[1]

    def command_prefix(self, node_id: int) -> list[str]:
        return []

    def check_client_side(self) -> None:
        pass


# ---------------------------------------------------------------- Metadata v7 on the wire

@dataclass(frozen=True)
class PartitionState:
    topic: str
    partition: int
    error: int
    leader: int
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    offline: tuple[int, ...]

    @property
    def fully_replicated(self) -> bool:
        """A live leader, every replica in the ISR, none offline."""
        return (self.error == 0 and self.leader >= 0 and self.leader in self.isr
                and set(self.isr) == set(self.replicas) and not self.offline)

    def __str__(self) -> str:
        return (f"{self.topic}/{self.partition}: leader {self.leader} epoch {self.leader_epoch} "
                f"replicas {list(self.replicas)} isr {list(self.isr)} offline {list(self.offline)}"
                + (f" error {self.error}" if self.error else ""))


@dataclass(frozen=True)
class ClusterView:
    """One broker's answer to Metadata: what that broker believes right now."""
    answered_by: int
    brokers: dict
    controller_id: int
    topic_errors: dict
    partitions: dict

    def partition(self, topic: str, partition: int) -> Optional[PartitionState]:
        return self.partitions.get((topic, partition))

    def placed_on(self, topic: str, partition: int, replicas: Iterable[int]) -> bool:
        """The partition's replica set is `replicas` (in any order), all in the ISR."""
        p = self.partition(topic, partition)
        return p is not None and set(p.replicas) == set(replicas) and p.fully_replicated

    def topic(self, topic: str) -> list[PartitionState]:
        return sorted((p for (t, _), p in self.partitions.items() if t == topic), key=lambda p: p.partition)

    def leaders(self, topic: str) -> dict[int, int]:
        return {p.partition: p.leader for p in self.topic(topic)}

    def __str__(self) -> str:
        lines = [f"broker {self.answered_by} sees brokers {sorted(self.brokers)} controller {self.controller_id}"]
        lines += [f"  {p}" for p in sorted(self.partitions.values(), key=lambda p: (p.topic, p.partition))]
        return "\n".join(lines)


def _int32s(r: wire.Reader) -> tuple[int, ...]:
    return tuple(r.array(lambda x: x.i32()))


def _partition(topic: str, r: wire.Reader) -> PartitionState:
    error, index, leader, epoch = r.i16(), r.i32(), r.i32(), r.i32()
    return PartitionState(topic, index, error, leader, epoch, _int32s(r), _int32s(r), _int32s(r))


def metadata(bootstrap: str, answered_by: int, topics: Optional[Iterable[str]] = None,
             timeout: float = PROBE_TIMEOUT_S) -> ClusterView:
    """Metadata v7 from exactly the broker at `bootstrap` (no client-side cache, no redirect)."""
    names = None if topics is None else list(topics)
    body = (wire.i32(-1) if names is None else wire.array(names, wire.string)) + wire.i8(0)
    with wire.KafkaConnection(bootstrap, timeout=timeout) as conn:
        r = conn.recv_response(conn.send_request(wire.API_METADATA, 7, body))
    r.i32()  # throttle_time_ms
    brokers = {b[0]: f"{b[1]}:{b[2]}" for b in r.array(lambda x: (x.i32(), x.string(), x.i32(), x.string()))}
    r.string()  # cluster_id
    controller = r.i32()
    topic_errors: dict[str, int] = {}
    partitions: dict[tuple[str, int], PartitionState] = {}
    for _ in range(r.i32()):
        error, name, _internal = r.i16(), r.string(), r.i8()
        topic_errors[name] = error
        for p in r.array(lambda x, n=name: _partition(n, x)):
            partitions[(name, p.partition)] = p
    return ClusterView(answered_by, brokers, controller, topic_errors, partitions)


def live_brokers(bootstrap: str, timeout: float = PROBE_TIMEOUT_S) -> set[int]:
    """The brokers the one at `bootstrap` holds live in its cluster image: DescribeCluster v0's
    list, which, unlike Metadata's, does not leave out a broker it cannot reach."""
    body = wire.i8(0) + wire.uvarint(0)  # include_cluster_authorized_operations, no tags
    with wire.KafkaConnection(bootstrap, timeout=timeout) as conn:
        r = conn.recv_response(conn.send_request(wire.API_DESCRIBE_CLUSTER, 0, body, flexible_header=True),
                               flexible_header=True)
    r.i32()  # throttle_time_ms
    error, message = r.i16(), r.compact_string()
    if error:
        raise ValueError(f"DescribeCluster failed: error {error} {message}")
    r.compact_string()  # cluster_id
    r.i32()  # controller_id

    def broker(x: wire.Reader) -> int:
        node, _host, _port, _rack = x.i32(), x.compact_string(), x.i32(), x.compact_string()
        x.tagged_fields()
        return node

    return set(r.compact_array(broker))


# ---------------------------------------------------------------- one broker of the cluster

class ClusterNode:
    """A voter: its process (a `harness.Broker`), its id, and whether it is paused."""

    def __init__(self, node_id: int, broker: Broker):
        self.id = node_id
        self.broker = broker
        self.paused = False
        self.killed = False
        self.isolated = False

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    @property
    def serving(self) -> bool:
        """Running, not stopped and reachable: worth asking."""
        return self.broker.alive() and not self.paused and not self.isolated

    def spawn(self) -> None:
        self.killed = False
        self.broker.spawn()

    def kill9(self) -> None:
        self.killed = True
        self.paused = False
        self.broker.kill9()

    def assert_not_crashed(self) -> None:
        """Fails with the log's tail if the process ended without the test killing it."""
        proc = self.broker.proc
        if proc is not None and not self.killed and proc.poll() is not None:
            raise BrokerExited(f"{self} exited with {proc.returncode}:\n{self.broker.log_tail(80)}")

    def pause(self) -> None:
        self.broker.assert_alive()
        self.broker.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self.broker.alive():
            self.broker.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def __repr__(self) -> str:
        state = ("paused" if self.paused else "down" if not self.broker.alive()
                 else "cut off" if self.isolated else "running")
        return f"broker {self.id} ({self.bootstrap}, {state})"


# ---------------------------------------------------------------- the cluster

class Cluster:
    """N brokers started together, ids 1..N: the first `voters` (default all) vote in the
    metadata quorum, the others are observers."""

    def __init__(self, broker_factory: Callable[..., Broker], size: int,
                 settings: ClusterSettings = ClusterSettings(), placement: Optional[Placement] = None,
                 voters: Optional[int] = None, node_args: Optional[Callable[[int], list[str]]] = None,
                 rack: Callable[[int], str] = lambda i: f"rack{i}"):
        self.settings = settings
        # Each broker's own rack (`--rack`), by node id.
        self.rack = rack
        # Flags of one broker only (e.g. its --config file), by node id.
        self.node_args = node_args or (lambda _: [])
        self.placement = placement or Loopback()
        self.broker_factory = broker_factory
        place = self.placement
        self.voter_list = ",".join(f"{i}@{place.cluster_host(i)}:{place.cluster_port(i)}"
                                   for i in range(1, (voters or size) + 1))
        self.nodes: dict[int, ClusterNode] = {}
        for i in range(1, size + 1):
            self.nodes[i] = self._node(i)

    def _node(self, i: int) -> ClusterNode:
        place = self.placement
        address = f"{place.cluster_host(i)}:{place.cluster_port(i)}"
        args = ["--node-id", str(i), "--cluster-listen", address, "--cluster-advertise", address,
                "--voters", self.voter_list, "--rack", self.rack(i), *self.settings.args(), *self.node_args(i)]
        if not place.cluster_host(i).startswith("127."):
            # Brokers in network namespaces: the test's own private network.
            args.append("--allow-plaintext-cluster")
        broker = self.broker_factory(args=args, start=False, host=place.host(i), port=place.kafka_port(i),
                                     command_prefix=place.command_prefix(i))
        return ClusterNode(i, broker)

    def add_broker(self, timeout: float = START_TIMEOUT_S) -> int:
        """Starts one more broker (an observer, with the next id) and waits until every broker
        lists it; returns its id."""
        i = max(self.nodes) + 1
        self.nodes[i] = self._node(i)
        self.nodes[i].spawn()
        self.wait_for(lambda views: i in views and all(i in v.brokers for v in views.values()),
                      timeout, f"new broker {i} to register")
        return i

    def remove_node(self, node_id: int) -> None:
        """Forgets a stopped broker: it is no longer asked or expected."""
        node = self.nodes.pop(node_id)
        assert not node.broker.alive(), f"{node} is still running"

    # -- lifecycle

    def start(self, timeout: float = START_TIMEOUT_S) -> "Cluster":
        """Starts every voter, then waits until each is registered and sees all the others."""
        for node in self.nodes.values():
            node.spawn()
        every = set(self.nodes)
        self.wait_for(lambda views: all(set(v.brokers) == every for v in views.values())
                      and len({v.controller_id for v in views.values()}) == 1
                      and next(iter(views.values())).controller_id in every,
                      timeout, f"all {len(every)} brokers to register and agree on a controller")
        return self

    def node(self, node_id: int) -> ClusterNode:
        return self.nodes[node_id]

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes.values())

    def kill9(self, node_id: int) -> None:
        self.node(node_id).kill9()

    def pause(self, node_id: int) -> None:
        self.node(node_id).pause()

    def resume(self, node_id: int) -> None:
        self.node(node_id).resume()

    def cut(self, node_id: int, peers_only: bool = False) -> None:
        """Cuts the broker's network links, or with `peers_only` its link to the other brokers
        alone (the placement must support it, as NetworkLab does). Either way the broker's own
        view is no longer asked: cut off from the quorum, it can only be stale."""
        self.placement.cut(node_id, peers_only=peers_only)
        self.node(node_id).isolated = True

    def heal(self, node_id: int) -> None:
        self.placement.heal(node_id)
        self.node(node_id).isolated = False

    def restart(self, node_id: int, timeout: float = START_TIMEOUT_S) -> None:
        """Starts a stopped or killed broker again on the same data directory and ports, and
        waits until it is registered again (the others list it, it answers itself)."""
        node = self.node(node_id)
        assert not node.broker.alive(), f"{node} is still running"
        node.spawn()
        self.wait_for(lambda views: node_id in views and all(node_id in v.brokers for v in views.values()),
                      timeout, f"broker {node_id} to register again")

    def close(self) -> None:
        """Teardown: resumes paused brokers, SIGTERMs every broker at once and SIGKILLs whatever
        has not exited after SHUTDOWN_TIMEOUT_S (a broker waiting on peers that are already gone
        must not cost a timeout each). Prints which brokers needed the SIGKILL."""
        for node in self.nodes.values():
            node.resume()
            node.killed = True
            if node.broker.alive():
                node.broker.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + SHUTDOWN_TIMEOUT_S
        for node in self.nodes.values():
            if node.broker.proc is None:
                continue
            try:
                node.broker.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"{node} did not exit {SHUTDOWN_TIMEOUT_S:.0f}s after SIGTERM; sending SIGKILL")
                node.broker.kill9()

    # -- what the brokers say

    def views(self, topics: Optional[Iterable[str]] = None) -> dict[int, ClusterView]:
        """Metadata from every serving broker that answers within PROBE_TIMEOUT_S."""
        self.placement.check_client_side()
        names = None if topics is None else list(topics)
        out: dict[int, ClusterView] = {}
        for node in self.nodes.values():
            if not node.serving:
                continue
            try:
                out[node.id] = metadata(node.bootstrap, node.id, names)
            except (OSError, wire.ConnectionClosed, ValueError):
                continue  # not registered yet, shutting down, or just killed
        return out

    def view(self, topics: Optional[Iterable[str]] = None) -> ClusterView:
        """One serving broker's view (the first that answers)."""
        views = self.views(topics)
        if not views:
            raise AssertionError(f"no broker answered Metadata: {list(self.nodes.values())}")
        return next(iter(views.values()))

    def describe(self, topics: Optional[Iterable[str]] = None) -> str:
        views = self.views(topics)
        return "\n".join(str(v) for v in views.values()) or f"no broker answered: {list(self.nodes.values())}"

    def wait_for(self, predicate: Callable[[dict[int, ClusterView]], object], timeout: float, what: str,
                 topics: Optional[Iterable[str]] = None):
        """Polls every serving broker's view until `predicate(views)` holds and every serving
        broker answered; fails with each broker's last view and liveness."""
        names = None if topics is None else list(topics)

        def check():
            for node in self.nodes.values():
                node.assert_not_crashed()
            views = self.views(names)
            serving = {n.id for n in self.nodes.values() if n.serving}
            if set(views) != serving or not views:
                return None
            return predicate(views) and views

        try:
            return wait_until(check, timeout, what, interval=POLL_INTERVAL_S)
        except TimeoutError as e:
            raise AssertionError(f"{e}\n{self.describe(names)}") from None

    def controller(self, timeout: float = 20.0) -> int:
        """The controller every serving broker agrees on (it must be serving itself)."""
        def agreed(views):
            ids = {v.controller_id for v in views.values()}
            return len(ids) == 1 and (cid := next(iter(ids))) in self.nodes and self.node(cid).serving

        views = self.wait_for(agreed, timeout, "the brokers to agree on a serving controller")
        return next(iter(views.values())).controller_id

    def partition(self, topic: str, partition: int) -> PartitionState:
        state = self.view([topic]).partition(topic, partition)
        assert state is not None, f"{topic}/{partition} missing from metadata:\n{self.describe([topic])}"
        return state

    def wait_fully_replicated(self, topic: str, timeout: float = 30.0,
                              every_broker: bool = True) -> dict[int, ClusterView]:
        """Every serving broker sees every partition of `topic` with its whole replica set in
        the ISR and a leader; with `every_broker`, also every broker of the cluster registered."""
        every = set(self.nodes)

        def full(views):
            return all((not every_broker or set(v.brokers) == every) and v.topic(topic)
                       and v.topic_errors.get(topic) == 0 and all(p.fully_replicated for p in v.topic(topic))
                       for v in views.values())

        return self.wait_for(full, timeout, f"full ISR on every partition of {topic}", topics=[topic])

    # -- topics

    def create_topic(self, partitions: int = 3, replication_factor: int = 3, config: Optional[dict] = None,
                     replica_assignment: Optional[list[list[int]]] = None, name: Optional[str] = None,
                     timeout: float = 30.0) -> str:
        """CreateTopics through the controller (AdminClient finds it), then waits for full ISR."""
        self.placement.check_client_side()
        name = name or unique("faults")
        if replica_assignment is not None:
            # librdkafka wants the partition count with an assignment, and no replication factor.
            new = NewTopic(name, num_partitions=len(replica_assignment), replication_factor=-1,
                           replica_assignment=replica_assignment, config=config or {})
        else:
            new = NewTopic(name, num_partitions=partitions, replication_factor=replication_factor,
                           config=config or {})
        a = admin(self.bootstrap)
        a.create_topics([new], operation_timeout=timeout)[name].result(timeout=timeout)
        self.wait_fully_replicated(name, timeout, every_broker=False)
        return name
