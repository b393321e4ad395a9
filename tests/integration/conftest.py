"""Fixtures: real `krait-broker` processes on loopback, the `krait` CLI, and kcat.

`KRAIT_BROKER_BIN` and `KRAIT_CLI_BIN` name the binaries (tests/run sets them); by default
the release builds under `${CARGO_TARGET_DIR:-~/.cache/krait/target}` are used.
When a test fails, the tail of every broker log it started is attached to its report.
"""
from __future__ import annotations

import pytest

from harness import Broker, Cli, binary_path, create_topic, kcat, unique

BROKER_LOG_LINES = 200


@pytest.fixture(scope="session")
def broker_bin():
    return binary_path("KRAIT_BROKER_BIN", "krait-broker")


@pytest.fixture(scope="session")
def cli_bin():
    return binary_path("KRAIT_CLI_BIN", "krait")


@pytest.fixture
def broker_factory(request, tmp_path, broker_bin):
    """Starts brokers: `broker_factory(args=[...], env={...}, start=True)`; each gets its own
    data dir and port (`host` and `command_prefix` as for `Broker`). All are stopped at teardown."""
    started: list[Broker] = []
    request.node.krait_brokers = started

    def make(args=(), env=None, start=True, data_dir=None, port=None, host="127.0.0.1",
             command_prefix=()) -> Broker:
        n = len(started)
        b = Broker(broker_bin, data_dir or tmp_path / f"broker{n}" / "data", tmp_path / f"broker{n}.log",
                   port=port, args=args, env=env, host=host, command_prefix=command_prefix)
        started.append(b)
        if start:
            b.start()
        return b

    yield make
    for b in started:
        b.stop()


@pytest.fixture
def cluster_factory(broker_factory):
    """Starts clusters: `cluster_factory(size=3, placement=None, voters=None, node_args=None,
    **ClusterSettings fields)` returns a started `cluster.Cluster` (the first `voters` brokers vote, default all). Teardown resumes paused brokers and stops
    every broker at once."""
    from cluster import Cluster, ClusterSettings

    made = []

    def make(size: int = 3, placement=None, voters=None, node_args=None, **settings) -> Cluster:
        c = Cluster(broker_factory, size, ClusterSettings(**settings), placement=placement, voters=voters,
                    node_args=node_args)
        made.append(c)
        return c.start()

    yield make
    for c in made:
        c.close()


@pytest.fixture
def pki(tmp_path):
    """A certificate authority of the test's own (security.Pki)."""
    from security import Pki
    return Pki(tmp_path / "pki")


@pytest.fixture
def secured(broker_factory, pki, tmp_path):
    """A broker with SASL_SSL, SASL_PLAINTEXT and SSL listeners and ACLs on
    (security.secured_broker)."""
    from security import secured_broker
    return secured_broker(broker_factory, pki, tmp_path)


@pytest.fixture
def broker(broker_factory) -> Broker:
    """A single broker with default settings."""
    return broker_factory()


@pytest.fixture
def cli(cli_bin, broker) -> Cli:
    return Cli(cli_bin, broker.bootstrap)


@pytest.fixture
def kcat_run(broker):
    """`kcat_run(*args, input=..., timeout=...)` runs `kcat -b BOOTSTRAP ...`."""
    def run(*args, **kwargs):
        return kcat(broker.bootstrap, *args, **kwargs)
    return run


@pytest.fixture
def topic(broker):
    """`topic(partitions=1, config=None, prefix='t')` creates a uniquely named topic."""
    def make(partitions: int = 1, config=None, prefix: str = "t") -> str:
        return create_topic(broker.bootstrap, unique(prefix), partitions=partitions, config=config)
    return make


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for i, b in enumerate(getattr(item, "krait_brokers", [])):
            state = "running" if b.alive() else f"exited {b.proc.returncode if b.proc else '-'}"
            report.sections.append((f"krait-broker #{i} log ({b.log_path}, {state})", b.log_tail(BROKER_LOG_LINES)))
