"""Krait's container images, built and run here with the Docker engine.

`images()` builds the broker and operator images from `docker/*.Dockerfile` exactly as a user's
CI does (binaries in a `bin/` context), on a Debian base built from Debian's packages by
`docker/base/build.sh` (the engine here cannot pull `debian:bookworm-slim`). `ContainerCluster`
runs broker containers on a private Docker network: brokers reach each other by container name,
and clients on the host reach each broker's external listener through a port published on
loopback. It is a `cluster.Cluster`, so the fault tests' waits and views work unchanged; a
broker is stopped, killed, cut off the network (`docker network disconnect`) and started again
with its volume.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from cluster import Cluster, ClusterSettings
from harness import BrokerExited, binary_path, free_port, unique

REPO = Path(__file__).resolve().parents[2]
BASE_IMAGE = "krait.local/debian:bookworm-slim"
BROKER_IMAGE = "krait.local/krait-broker:test"
OPERATOR_IMAGE = "krait.local/krait-operator:test"
DOCKER_TIMEOUT_S = 120.0
BASE_TIMEOUT_S = 600.0
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20


def docker(*args: str, timeout: float = DOCKER_TIMEOUT_S, check: bool = True) -> str:
    """Runs `docker ARGS`; returns stdout, raises with stderr when it fails and `check`."""
    r = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} exited {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def docker_missing() -> Optional[str]:
    """Why no image can be built or run here, or None when a Docker engine answers."""
    if shutil.which("docker") is None:
        return "no docker command on PATH"
    try:
        r = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                           text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "the Docker engine did not answer `docker info` within 30s"
    if r.returncode != 0 or not r.stdout.strip():
        return f"no Docker engine answers: {r.stderr.strip()[:200]}"
    return None


@dataclass(frozen=True)
class Images:
    broker: str
    operator: str


def _build(dockerfile: str, tag: str, binaries: dict[str, Path]) -> None:
    """`docker build -f docker/DOCKERFILE` on a context holding only bin/<binaries>."""
    with tempfile.TemporaryDirectory(prefix="krait-image-") as ctx:
        (Path(ctx) / "bin").mkdir()
        for name, path in binaries.items():
            assert path.is_file(), f"{path} is missing: build the release binaries first"
            shutil.copy2(path, Path(ctx) / "bin" / name)
            # As docker/README.md advises: the release profile keeps line tables (and RocksDB's
            # C++ full debug info), hundreds of MB an image does not need.
            subprocess.run(["strip", "--strip-debug", str(Path(ctx) / "bin" / name)], check=True, timeout=120)
        revision = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                                  text=True).stdout.strip() or "unknown"
        docker("build", "--quiet", "-f", str(REPO / "docker" / dockerfile), "--build-arg",
               f"BASE_IMAGE={BASE_IMAGE}", "--build-arg", f"REVISION={revision}", "-t", tag, ctx,
               timeout=DOCKER_TIMEOUT_S)


def images() -> Images:
    """Builds the base (once per engine) and both images from the current binaries."""
    r = subprocess.run([str(REPO / "docker" / "base" / "build.sh")], capture_output=True, text=True,
                       timeout=BASE_TIMEOUT_S, env={**os.environ, "BASE_TAG": BASE_IMAGE})
    if r.returncode != 0:
        raise RuntimeError(f"docker/base/build.sh failed: {r.stdout}{r.stderr}")
    _build("broker.Dockerfile", BROKER_IMAGE, {
        "krait-broker": binary_path("KRAIT_BROKER_BIN", "krait-broker"),
        "krait": binary_path("KRAIT_CLI_BIN", "krait"),
    })
    _build("operator.Dockerfile", OPERATOR_IMAGE, {
        "krait-operator": binary_path("KRAIT_OPERATOR_BIN", "krait-operator"),
    })
    return Images(BROKER_IMAGE, OPERATOR_IMAGE)


def inspect(ref: str) -> dict:
    return json.loads(docker("inspect", ref))[0]


# ---------------------------------------------------------------- a broker in a container

class ContainerNode:
    """One broker container: node id, container name (its host name on the network), the
    loopback port its external listener is published on, and its named volume."""

    def __init__(self, cluster: "ContainerCluster", node_id: int):
        self.cluster = cluster
        self.id = node_id
        self.name = f"{cluster.prefix}-{node_id}"
        self.volume = f"{self.name}-data"
        self.port = free_port()
        self.stopped = True  # stopped, killed or removed by the test
        self.isolated = False

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def state(self) -> dict:
        out = docker("inspect", "--format", "{{json .State}}", self.name, check=False)
        return json.loads(out) if out.strip() else {}

    def running(self) -> bool:
        return bool(self.state().get("Running"))

    @property
    def serving(self) -> bool:
        return not self.stopped and not self.isolated

    def assert_not_crashed(self) -> None:
        if self.stopped:
            return
        state = self.state()
        if not state.get("Running"):
            raise BrokerExited(f"{self} exited with {state.get('ExitCode')}:\n{self.logs(80)}")

    def logs(self, lines: int = 200) -> str:
        r = subprocess.run(["docker", "logs", "--tail", str(lines), self.name], capture_output=True,
                           text=True, timeout=30)
        return r.stdout + r.stderr

    def run(self) -> None:
        """`docker run`s the broker (a new container on the node's volume)."""
        c = self.cluster
        ids = sorted(c.nodes)
        voters = ",".join(f"{i}@{c.prefix}-{i}:9093" for i in ids)
        external = ",".join(f"127.0.0.1:{c.nodes[i].port}" for i in ids)
        s = c.settings
        docker("run", "--detach", "--name", self.name, "--hostname", self.name,
               "--network", c.network, "--network-alias", self.name,
               "--volume", f"{self.volume}:/var/lib/krait",
               "--publish", f"127.0.0.1:{self.port}:9094",
               "--stop-timeout", str(STOP_TIMEOUT_S),
               c.image,
               f"--node-id={self.id}", "--listen=0.0.0.0:9092", f"--advertise={self.name}:9092",
               "--cluster-listen=0.0.0.0:9093", "--allow-plaintext-cluster", f"--voters={voters}", f"--rack=rack{self.id}",
               "--external-listen=0.0.0.0:9094", f"--external-advertised-addresses={external}",
               *s.args())
        self.stopped = False

    def stop(self) -> int:
        """`docker stop` (SIGTERM, the image's STOPSIGNAL); returns the exit code."""
        self.stopped = True
        docker("stop", "--time", str(STOP_TIMEOUT_S), self.name, timeout=STOP_TIMEOUT_S + 30)
        return int(self.state().get("ExitCode", -1))

    def kill(self) -> None:
        self.stopped = True
        docker("kill", "--signal", "KILL", self.name)

    def start(self) -> None:
        """Starts the stopped container again (same container, same volume)."""
        docker("start", self.name)
        self.stopped = False

    def recreate(self) -> None:
        """Removes the container and runs a new one on the same volume."""
        self.stopped = True
        docker("rm", "--force", self.name)
        self.run()

    def disconnect(self) -> None:
        """Takes the container off the network: no peer and no client reaches it."""
        docker("network", "disconnect", self.cluster.network, self.name)
        self.isolated = True

    def connect(self) -> None:
        docker("network", "connect", "--alias", self.name, self.cluster.network, self.name)
        self.isolated = False

    def __repr__(self) -> str:
        state = "cut off" if self.isolated else "stopped" if self.stopped else "running"
        return f"broker {self.id} ({self.name}, {self.bootstrap}, {state})"


class _NoPlacement:
    def check_client_side(self) -> None:
        pass


class ContainerCluster(Cluster):
    """`size` broker containers (node ids 0..size-1, as the operator numbers pods) on a private
    bridge network of their own."""

    def __init__(self, image: str, size: int, settings: ClusterSettings = ClusterSettings()):
        self.settings = settings
        self.placement = _NoPlacement()
        self.image = image
        self.prefix = unique("krait-ct")
        self.network = f"{self.prefix}-net"
        self.nodes = {}
        for i in range(size):
            self.nodes[i] = ContainerNode(self, i)

    def start(self, timeout: float = START_TIMEOUT_S) -> "ContainerCluster":
        docker("network", "create", "--driver", "bridge", self.network)
        for node in self.nodes.values():
            node.run()
        every = set(self.nodes)
        self.wait_for(lambda views: all(set(v.brokers) == every for v in views.values())
                      and len({v.controller_id for v in views.values()}) == 1,
                      timeout, f"all {len(every)} broker containers to register and agree on a controller")
        return self

    def wait_registered(self, node_id: int, timeout: float = START_TIMEOUT_S) -> None:
        self.wait_for(lambda views: node_id in views and all(node_id in v.brokers for v in views.values()),
                      timeout, f"broker {node_id} to register again")

    def start_again(self, node_id: int) -> None:
        """`docker start`s a stopped broker container and waits until it is registered."""
        self.nodes[node_id].start()
        self.wait_registered(node_id)

    def reconnect(self, node_id: int) -> None:
        """Puts a disconnected broker back on the network and waits until it is registered."""
        self.nodes[node_id].connect()
        self.wait_registered(node_id)

    def recreate(self, node_id: int) -> None:
        """Replaces a broker's container with a new one on the same volume."""
        self.nodes[node_id].recreate()
        self.wait_registered(node_id)

    def logs(self) -> str:
        return "\n".join(f"---- {n}\n{n.logs(60)}" for n in self.nodes.values())

    def close(self) -> None:
        """Removes the containers, their volumes and the network; best effort, bounded."""
        names = [n.name for n in self.nodes.values()]
        docker("rm", "--force", "--volumes", *names, check=False, timeout=60)
        docker("volume", "rm", "--force", *[n.volume for n in self.nodes.values()], check=False, timeout=60)
        docker("network", "rm", self.network, check=False, timeout=60)
