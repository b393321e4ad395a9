"""The broker's /metrics as Prometheus and a platform team read them: `promtool check metrics`
(Debian's prometheus package, installed by tests/setup) on a live broker's output, the
documented table (docs/metrics.md) against what is served, and the figures against what real
clients did: records and bytes in per topic, consumer lag against the client's own committed
offsets and watermarks, under-replicated partitions while a follower is down.
"""
from __future__ import annotations

import re
import shutil
import ssl
import subprocess
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from harness import (assert_delivered, consume, create_topic, produce_all, producer, unique, wait_until,
                     watermarks)
from ports import free_port
from security import Pki

DOCS = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(http_port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers["Content-Type"]
        return r.read().decode()


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"unparsable sample line {line!r}"
        out.append((m.group(1), dict(LABEL.findall(m.group(3) or "")), float(m.group(4))))
    return out


def value(text: str, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    return sum(v for n, ls, v in samples(text) if n == name and labels.items() <= ls.items())


def families(text: str) -> set[str]:
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def documented() -> dict[str, bool]:
    """Each broker metric in docs/metrics.md's tables, and whether it has labels (the operator's,
    `krait_operator_*`, are checked against the operator in operator_prometheus.rs)."""
    rows = re.findall(r"^\| `([a-z_]+)` \| (\w+) \|([^|]*)\|", DOCS.read_text(), flags=re.M)
    return {name: bool(labels.strip()) for name, _, labels in rows if not name.startswith("krait_operator_")}


@pytest.fixture
def monitored(broker_factory):
    http = free_port()
    b = broker_factory(args=["--http-listen", f"127.0.0.1:{http}"])
    b.http_port = http
    return b


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is missing: `tests/setup test` installs Debian's prometheus package"
    return path


def test_a_live_brokers_metrics_pass_promtool_and_are_the_documented_ones(monitored):
    topic = create_topic(monitored.bootstrap, unique("metrics"))
    assert_delivered(produce_all(producer(monitored.bootstrap), topic, [{"value": b"x"}] * 10))
    text = scrape(monitored.http_port)
    checked = subprocess.run([promtool(), "check", "metrics"], input=text.encode(), capture_output=True,
                             timeout=60)
    assert checked.returncode == 0 and not checked.stdout.strip() and not checked.stderr.strip(), (
        checked.stdout.decode() + checked.stderr.decode())
    served, listed = families(text), documented()
    assert len(listed) >= 40, listed
    assert served - set(listed) == set(), "served but not in docs/metrics.md"
    # A labelled metric has no series until something happens to one of its label values (a
    # refused connection, a follower, a consumer group); every other one is always there.
    unlabelled = {name for name, labelled in listed.items() if not labelled}
    assert unlabelled - served == set(), "in docs/metrics.md but not served"


def test_records_bytes_and_requests_count_what_a_real_producer_and_consumer_did(monitored):
    topic = create_topic(monitored.bootstrap, unique("metrics"), partitions=2)
    values = [f"value-{i}".encode() for i in range(250)]
    assert_delivered(produce_all(producer(monitored.bootstrap, linger_ms=5), topic,
                                 [{"value": v, "partition": i % 2} for i, v in enumerate(values)]))
    text = scrape(monitored.http_port)
    assert value(text, "krait_topic_records_in_total", topic=topic) == 250
    assert value(text, "krait_topic_bytes_in_total", topic=topic) >= sum(map(len, values))
    produces = value(text, "krait_requests_total", api="Produce")
    assert produces >= 1
    # Each answered Produce is one latency sample; the count lags the counter by at most the
    # requests in flight, and there are none now.
    assert value(text, "krait_request_duration_seconds_count", api="Produce") == produces
    assert value(text, "krait_partition_leaders") == 2
    assert value(text, "krait_under_replicated_partitions") == 0
    assert value(text, "krait_active_controller") == 1
    assert value(text, "krait_connections_open", listener="PLAINTEXT") >= 0

    # To the end of both partitions: the last fetches wait at the end of the log.
    assert len(consume(monitored.bootstrap, topic, [0, 1])) == 250
    text = scrape(monitored.http_port)
    assert value(text, "krait_topic_bytes_out_total", topic=topic) >= sum(map(len, values))
    assert value(text, "krait_requests_total", api="Fetch") >= 1
    assert value(text, "krait_request_remote_duration_seconds_count", api="Fetch") >= 1, \
        "a consumer at the end of the log long-polls"


def test_consumer_lag_is_the_high_watermark_minus_what_the_group_committed(monitored):
    topic = create_topic(monitored.bootstrap, unique("lag"), partitions=2)
    assert_delivered(produce_all(producer(monitored.bootstrap), topic,
                                 [{"value": b"v", "partition": i % 2} for i in range(200)]))
    group = unique("lagging")
    c = Consumer({"bootstrap.servers": monitored.bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(topic, 0, 30), TopicPartition(topic, 1, 95)], asynchronous=False)
        committed = {tp.partition: tp.offset for tp in
                     c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)}
    finally:
        c.close()
    assert committed == {0: 30, 1: 95}
    text = scrape(monitored.http_port)
    for p in (0, 1):
        _, high = watermarks(monitored.bootstrap, topic, p)
        assert high == 100
        labels = dict(group=group, topic=topic, partition=str(p))
        assert value(text, "krait_consumer_group_committed_offset", **labels) == committed[p]
        assert value(text, "krait_consumer_group_lag_records", **labels) == high - committed[p]
        assert value(text, "krait_partition_high_watermark", topic=topic, partition=str(p)) == high
    # The group has no members: Empty, on the coordinator (the only broker).
    assert value(text, "krait_consumer_groups", state="Empty") >= 1


def test_under_replicated_partitions_follow_a_stopped_follower_and_clear_when_it_returns(cluster_factory):
    ports = {i: free_port() for i in (1, 2, 3)}
    cluster = cluster_factory(3, node_args=lambda i: ["--http-listen", f"127.0.0.1:{ports[i]}"])
    topic = cluster.create_topic(3, 3, {"min.insync.replicas": "2"})
    live = lambda: [i for i in (1, 2, 3) if cluster.node(i).serving]  # noqa: E731

    def total(name: str, **labels: str) -> float:
        return sum(value(scrape(ports[i]), name, **labels) for i in live())

    assert total("krait_active_controller") == 1
    assert total("krait_under_replicated_partitions") == 0
    assert total("krait_partition_leaders") == 3
    controller = cluster.controller()
    victim = next(i for i in (1, 2, 3) if i != controller)
    # The leaders of the partitions it follows shrink their ISRs; those it leads get a new
    # leader (a new epoch, with the ISR the controller gives it: no shrink of the new leader's).
    followed = sum(1 for leader in cluster.view([topic]).leaders(topic).values() if leader != victim)
    cluster.kill9(victim)
    # Every partition still has a leader, and each has lost one in-sync replica.
    wait_until(lambda: total("krait_under_replicated_partitions") == 3, 30,
               f"3 under-replicated partitions with broker {victim} down")
    assert total("krait_under_min_isr_partitions") == 0
    assert total("krait_at_min_isr_partitions") == 3
    assert total("krait_offline_partitions") == 0
    assert total("krait_brokers", state="fenced") == 1
    assert total("krait_isr_shrinks_total") >= followed
    cluster.restart(victim)
    wait_until(lambda: total("krait_under_replicated_partitions") == 0, 60,
               f"no under-replicated partition once broker {victim} is back")
    assert total("krait_isr_expands_total") >= 3
    assert total("krait_brokers", state="live") == 3
    assert total("krait_replica_lag_records") == 0


def not_after(keystore: Path) -> float:
    """When the certificate in a PEM keystore (key, then certificate) expires, Unix time."""
    cert = keystore.with_suffix(".crt")
    text = keystore.read_text()
    cert.write_text(text[text.index("-----BEGIN CERTIFICATE-----"):])
    return float(ssl.cert_time_to_seconds(ssl._ssl._test_decode_cert(str(cert))["notAfter"]))


def test_a_tls_listener_reports_when_its_certificate_expires_and_follows_a_renewal(broker_factory, tmp_path):
    pki = Pki(tmp_path / "pki")
    keystore = pki.keystore("broker", "/CN=localhost/O=Krait", days=2)
    port, http = free_port(), free_port()
    props = tmp_path / "server.properties"
    props.write_text(f"listeners=SSL://127.0.0.1:{port}\nssl.keystore.type=PEM\nssl.keystore.location={keystore}\n")
    broker_factory(port=port, args=["--config", str(props), "--http-listen", f"127.0.0.1:{http}"])
    first = not_after(keystore)
    assert value(scrape(http), "krait_tls_certificate_expiry_timestamp_seconds", listener="SSL") == first
    # Renewed in place, as the operator (or cert-manager) rewrites the Secret's file: the next
    # scrape reports the certificate the next connection gets.
    renewed = pki.keystore("renewed", "/CN=localhost/O=Krait", days=30)
    keystore.write_text(renewed.read_text())
    second = not_after(keystore)
    assert second > first + 20 * 86400
    wait_until(lambda: value(scrape(http), "krait_tls_certificate_expiry_timestamp_seconds", listener="SSL")
               == second, 10, "the renewed certificate's expiry")
