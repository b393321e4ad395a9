"""The container images users run: built here from `docker/broker.Dockerfile` and
`docker/operator.Dockerfile`, inspected, run alone, and run as a three-broker cluster on a
private Docker network under faults (a broker stopped, one cut off the network, one re-created
on its volume) while real clients on the host produce and consume through published ports.

Where no Docker engine answers, every test here is skipped and says so; none fakes a pass.
"""
from __future__ import annotations

import subprocess

import pytest

import containers
from cluster import ClusterSettings
from containers import ContainerCluster, docker, inspect
from faults import (ACK_TIMEOUT_S, PARTITIONS, TOPIC_CONFIG, WARM_UP_ACKS, check_nothing_lost,
                    fault_the_leader)
from harness import free_port, kcat, unique, wait_until
from workload import Workload

pytestmark = [pytest.mark.containers, pytest.mark.slow]

RECORDS = 200


def answers(bootstrap: str) -> bool:
    """kcat gets Metadata from `bootstrap` within a few seconds."""
    try:
        return kcat(bootstrap, "-L", "-m", "3", check=False, timeout=10).returncode == 0
    except AssertionError:  # kcat itself timed out
        return False


def read_all(bootstrap: str, topic: str) -> list[str]:
    return kcat(bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q").stdout.decode().split()


@pytest.fixture(scope="module")
def images() -> containers.Images:
    missing = containers.docker_missing()
    if missing:
        pytest.skip(f"SKIP, not tested: the container tests need a Docker engine ({missing})")
    return containers.images()


def test_images_run_as_non_root_with_labels_volume_and_stop_signal(images):
    broker = inspect(images.broker)
    config = broker["Config"]
    assert config["User"] == "10001:10001"
    assert config["StopSignal"] == "SIGTERM"
    assert config["Entrypoint"] == ["krait-broker"]
    assert "/var/lib/krait" in config["Volumes"]
    assert {"9092/tcp", "9093/tcp", "9644/tcp"} <= set(config["ExposedPorts"])
    labels = config["Labels"]
    assert labels["org.opencontainers.image.source"] == "https://github.com/krait-dev/krait"
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.version"]
    assert len(labels["org.opencontainers.image.revision"]) == 40

    operator = inspect(images.operator)
    assert operator["Config"]["User"] == "65532:65532"
    assert operator["Config"]["Entrypoint"] == ["krait-operator"]
    assert operator["Config"]["Cmd"] == ["run"]
    assert operator["Config"]["Labels"]["org.opencontainers.image.title"] == "krait-operator"

    # Every binary's shared libraries resolve in the runtime base, and they run as the image user.
    assert "Usage: krait" in docker("run", "--rm", "--entrypoint", "krait", images.broker, "--help")
    assert "Usage: krait-broker" in docker("run", "--rm", images.broker, "--help")
    assert docker("run", "--rm", "--entrypoint", "id", images.broker, "-u").strip() == "10001"
    crds = docker("run", "--rm", images.operator, "crd")
    assert crds.count("kind: CustomResourceDefinition") == 3
    sizes = {name: inspect(ref)["Size"] / 1e6 for name, ref in
             (("base", containers.BASE_IMAGE), ("broker", images.broker), ("operator", images.operator))}
    print("\nimage sizes: " + ", ".join(f"{k} {v:.1f} MB" for k, v in sizes.items()))


def test_a_broker_container_serves_kafka_on_its_volume_and_stops_cleanly_on_sigterm(images):
    name, port = unique("krait-ct-single"), free_port()
    bootstrap = f"127.0.0.1:{port}"
    try:
        # The same port inside and outside, so the advertised address also works from inside
        # the container (where the CLI below runs), whichever connection librdkafka uses.
        docker("run", "--detach", "--name", name, "--volume", f"{name}-data:/var/lib/krait",
               "--publish", f"127.0.0.1:{port}:{port}", "--env", f"KRAIT_LISTEN=0.0.0.0:{port}",
               "--env", f"KRAIT_ADVERTISE={bootstrap}", images.broker)
        topic = unique("ct")
        payload = "".join(f"r{i}\n" for i in range(RECORDS))
        wait_until(lambda: answers(bootstrap), 60, "the broker container to answer Metadata", interval=0.5)
        kcat(bootstrap, "-P", "-t", topic, "-p", "0", input=payload)
        read = read_all(bootstrap, topic)
        assert read == payload.split()

        # The CLI in the image, as `kubectl exec` runs it.
        listed = docker("exec", "--env", f"KRAIT_BOOTSTRAP={bootstrap}", name, "krait", "topic", "list")
        assert topic in listed

        docker("stop", "--time", "20", name, timeout=60)
        state = inspect(name)["State"]
        logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True, timeout=30)
        assert state["ExitCode"] == 0, logs.stderr[-2000:]
        assert "SIGTERM received" in logs.stdout + logs.stderr

        # The same container again: the volume kept every record.
        docker("start", name)
        wait_until(lambda: answers(bootstrap), 60, "the restarted container to answer Metadata", interval=0.5)
        again = read_all(bootstrap, topic)
        assert again == payload.split()
        print(f"\nsingle container: produced {RECORDS}, read {len(read)}, after restart {len(again)}")
    finally:
        docker("rm", "--force", "--volumes", name, check=False)
        docker("volume", "rm", "--force", f"{name}-data", check=False)


@pytest.fixture
def container_cluster(images):
    made = []

    def make(size: int = 3) -> ContainerCluster:
        c = ContainerCluster(images.broker, size, ClusterSettings())
        made.append(c)
        return c.start()

    yield make
    for c in made:
        c.close()


def test_container_cluster_loses_no_acknowledged_record_under_node_loss_partition_and_restart(
        container_cluster):
    cluster = container_cluster(3)
    topic = cluster.create_topic(PARTITIONS, 3, TOPIC_CONFIG)
    try:
        with Workload(cluster.bootstrap, topic, PARTITIONS) as work:
            work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, "before the faults")
            fault_the_leader(cluster, topic, work, "stopped (docker stop)",
                             lambda v: cluster.nodes[v].stop(), cluster.start_again)
            fault_the_leader(cluster, topic, work, "disconnected from the network",
                             lambda v: cluster.nodes[v].disconnect(), cluster.reconnect)
            fault_the_leader(cluster, topic, work, "killed and re-created on its volume",
                             lambda v: cluster.nodes[v].kill(), cluster.recreate)
        check_nothing_lost(cluster, topic, work)
    except BaseException:
        print(cluster.logs())
        raise
