"""Network namespaces for partition tests: a `cluster.Placement` whose brokers each run in a
namespace of their own with two links, each a veth pair to a bridge in a switch namespace: one
to the client network (Kafka listeners, and the test's clients in a namespace of their own)
and one to the peer network (cluster listeners: Raft, heartbeats, follower fetches). Cutting a
link takes its bridge port down: TCP connections over it neither close nor reset, as in a real
partition. Cutting only the peer link leaves a broker reachable by clients but not by the rest
of the cluster.

The lab's subnets exist only inside its namespaces, which have no other interface and no
default route, so nothing sent there can leave the machine. Two guards keep the test's own
traffic inside: `check_client_side` refuses to connect from a thread outside the client
namespace, and blackhole routes for the subnets in the host namespace drop anything sent
there by mistake instead of handing it to the host's gateway. Needs root and `ip` (iproute2).
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
from typing import Iterator

CLONE_NEWNET = 0x40000000
CLIENT_NET = "10.213.77"
PEER_NET = "10.213.78"
CLIENT_HOST = 100
KAFKA_PORT = 9092
CLUSTER_PORT = 9093
IP_TIMEOUT_S = 10.0

_libc = ctypes.CDLL(None, use_errno=True)


class NetnsUnavailable(Exception):
    """This machine cannot make the lab (no root, no iproute2, no veth or bridge support)."""


def _ip(*args: str) -> None:
    try:
        cp = subprocess.run(["ip", *args], capture_output=True, timeout=IP_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise NetnsUnavailable(f"`ip {' '.join(args)}` failed: {e}") from None
    if cp.returncode != 0:
        raise NetnsUnavailable(f"`ip {' '.join(args)}` exited {cp.returncode}: "
                               f"{cp.stderr.decode(errors='replace').strip()}")


def _setns(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def _thread_netns() -> str:
    return os.readlink("/proc/thread-self/ns/net")


class NetworkLab:
    """Namespaces `<tag>-sw` (bridge), `<tag>-c` (clients) and `<tag>-b<ID>` (broker ID)."""

    def __init__(self, broker_ids: list[int]):
        self.tag = f"krait{os.getpid() % 100000}"
        self.broker_ids = list(broker_ids)
        self.switch = f"{self.tag}-sw"
        self.client_ns = f"{self.tag}-c"
        self._made: list[str] = []
        self._blackholes: list[str] = []
        self._client_inode = None

    # -- Placement

    def host(self, node_id: int) -> str:
        return f"{CLIENT_NET}.{node_id}"

    def cluster_host(self, node_id: int) -> str:
        return f"{PEER_NET}.{node_id}"

    def kafka_port(self, node_id: int) -> int:
        return KAFKA_PORT

    def cluster_port(self, node_id: int) -> int:
        return CLUSTER_PORT

    def command_prefix(self, node_id: int) -> list[str]:
        return ["ip", "netns", "exec", self.broker_ns(node_id)]

    def check_client_side(self) -> None:
        if self._client_inode is None or _thread_netns() != self._client_inode:
            raise AssertionError("refusing to connect to the lab's brokers from outside its client "
                                 "namespace: wrap the test in `with lab.clients():`")

    # -- building and tearing down

    def broker_ns(self, node_id: int) -> str:
        return f"{self.tag}-b{node_id}"

    def _ports(self, node_id: int) -> tuple[str, str]:
        """The broker's bridge ports in the switch namespace: client link, peer link."""
        return f"c{node_id}", f"p{node_id}"

    def _add_ns(self, name: str) -> None:
        _ip("netns", "add", name)
        self._made.append(name)
        _ip("-n", name, "link", "set", "lo", "up")

    def _attach(self, ns: str, dev: str, port: str, bridge: str, address: str) -> None:
        _ip("link", "add", dev, "netns", ns, "type", "veth", "peer", "name", port, "netns", self.switch)
        _ip("-n", self.switch, "link", "set", port, "master", bridge, "up")
        _ip("-n", ns, "addr", "add", f"{address}/24", "dev", dev)
        _ip("-n", ns, "link", "set", dev, "up")

    def setup(self) -> "NetworkLab":
        """Builds the lab; raises NetnsUnavailable with the failing command's error."""
        try:
            for net in (CLIENT_NET, PEER_NET):
                _ip("route", "replace", "blackhole", f"{net}.0/24")
                self._blackholes.append(net)
            self._add_ns(self.switch)
            for bridge in ("brc", "brp"):
                _ip("-n", self.switch, "link", "add", bridge, "type", "bridge")
                _ip("-n", self.switch, "link", "set", bridge, "up")
            self._add_ns(self.client_ns)
            self._attach(self.client_ns, "labc", "c", "brc", f"{CLIENT_NET}.{CLIENT_HOST}")
            for i in self.broker_ids:
                client_port, peer_port = self._ports(i)
                self._add_ns(self.broker_ns(i))
                self._attach(self.broker_ns(i), "labc", client_port, "brc", self.host(i))
                self._attach(self.broker_ns(i), "labp", peer_port, "brp", self.cluster_host(i))
        except NetnsUnavailable:
            self.teardown()
            raise
        # /run/netns/NAME is a bind mount, not a link: learn the namespace's id by entering it.
        with self._entered():
            self._client_inode = _thread_netns()
        return self

    def teardown(self) -> None:
        """Deletes the namespaces (their veths go with them) and the blackhole route. Brokers
        still running in a namespace keep it alive, isolated, until they exit."""
        for name in reversed(self._made):
            with contextlib.suppress(NetnsUnavailable):
                _ip("netns", "del", name)
        self._made.clear()
        for net in self._blackholes:
            with contextlib.suppress(NetnsUnavailable):
                _ip("route", "del", "blackhole", f"{net}.0/24")
        self._blackholes.clear()

    # -- the clients' side

    @contextlib.contextmanager
    def _entered(self) -> Iterator[None]:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            _setns(f"/run/netns/{self.client_ns}")
            try:
                yield
            finally:
                if _libc.setns(home, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back to the host namespace failed")
        finally:
            os.close(home)

    @contextlib.contextmanager
    def clients(self) -> Iterator[None]:
        """Runs the block with the calling thread in the client namespace. Threads it starts
        (the test's and librdkafka's) are created there and stay there for their lifetime."""
        with self._entered():
            self.check_client_side()
            yield

    # -- faults

    def cut(self, node_id: int, peers_only: bool = False) -> None:
        """Takes broker `node_id`'s bridge ports down (only the peer one with `peers_only`)."""
        client_port, peer_port = self._ports(node_id)
        for port in (peer_port,) if peers_only else (client_port, peer_port):
            _ip("-n", self.switch, "link", "set", port, "down")

    def heal(self, node_id: int) -> None:
        for port in self._ports(node_id):
            _ip("-n", self.switch, "link", "set", port, "up")
