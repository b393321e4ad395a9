"""Network namespaces for partition tests: a `cluster.Placement` whose brokers each run in a
namespace of their own, joined by veth pairs to a bridge in a switch namespace, with the
test's clients in one more namespace on the same bridge. Cutting a broker's link takes its
bridge port down: its TCP connections neither close nor reset, as in a real partition.

The lab's subnet exists only inside its namespaces, which have no other interface and no
default route, so nothing sent there can leave the machine. Two guards keep the test's own
traffic inside: `check_client_side` refuses to connect from a thread outside the client
namespace, and a blackhole route for the subnet in the host namespace drops anything sent
there by mistake instead of handing it to the host's gateway. Needs root and `ip` (iproute2).
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
from typing import Iterator

CLONE_NEWNET = 0x40000000
SUBNET_PREFIX = "10.213.77"
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
        self._blackhole = False
        self._client_inode = None

    # -- Placement

    def host(self, node_id: int) -> str:
        return f"{SUBNET_PREFIX}.{node_id}"

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

    def _port(self, node_id: int) -> str:
        """The broker's bridge port, in the switch namespace."""
        return f"b{node_id}"

    def _add_ns(self, name: str) -> None:
        _ip("netns", "add", name)
        self._made.append(name)
        _ip("-n", name, "link", "set", "lo", "up")

    def _attach(self, ns: str, port: str, address: str) -> None:
        _ip("link", "add", "lab0", "netns", ns, "type", "veth", "peer", "name", port, "netns", self.switch)
        _ip("-n", self.switch, "link", "set", port, "master", "br0", "up")
        _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "lab0")
        _ip("-n", ns, "link", "set", "lab0", "up")

    def setup(self) -> "NetworkLab":
        """Builds the lab; raises NetnsUnavailable with the failing command's error."""
        try:
            _ip("route", "replace", "blackhole", f"{SUBNET_PREFIX}.0/24")
            self._blackhole = True
            self._add_ns(self.switch)
            _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.switch, "link", "set", "br0", "up")
            self._add_ns(self.client_ns)
            self._attach(self.client_ns, "c", f"{SUBNET_PREFIX}.{CLIENT_HOST}")
            for i in self.broker_ids:
                self._add_ns(self.broker_ns(i))
                self._attach(self.broker_ns(i), self._port(i), self.host(i))
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
        if self._blackhole:
            with contextlib.suppress(NetnsUnavailable):
                _ip("route", "del", "blackhole", f"{SUBNET_PREFIX}.0/24")
            self._blackhole = False

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

    def cut(self, node_id: int) -> None:
        """Takes broker `node_id`'s bridge port down: no packet in or out."""
        _ip("-n", self.switch, "link", "set", self._port(node_id), "down")

    def heal(self, node_id: int) -> None:
        _ip("-n", self.switch, "link", "set", self._port(node_id), "up")
