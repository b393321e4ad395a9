"""The chart's alerts and Grafana dashboards against a real Prometheus (Debian's package, installed
by tests/setup) scraping a real three-broker cluster: `promtool check rules` on the rule file,
every dashboard query and every alert expression evaluated through Prometheus' HTTP API (each
parses; each dashboard query returns series), and the under-replicated and broker-down alerts
firing while a broker is down, then resolving once it is back.

Prometheus runs with the rule file as the chart ships it, except that each `for` is shortened to
1 s so the test does not wait out production hold times; the expressions are the chart's.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from confluent_kafka import Consumer, TopicPartition

from harness import assert_delivered, produce_all, producer, unique, wait_until
from ports import free_port

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

CHART_FILES = Path(__file__).resolve().parents[2] / "charts" / "krait-operator" / "files"
RULES = CHART_FILES / "alerts.yaml"
# The operator's dashboard reads the operator's series: its queries and the operator alerts are
# evaluated on a real Prometheus scraping the operator and the brokers it runs in
# operator/reconciler/tests/operator_prometheus.rs.
DASHBOARDS = sorted(p for p in (CHART_FILES / "dashboards").glob("*.json") if p.name != "krait-operator.json")
# How the dashboards' variables read when every cluster, topic and group is selected, the rate
# window Grafana would pick for a 1 s scrape interval, and a dashboard range.
VARIABLES = {"$cluster": ".*", "$topic": ".*", "$group": ".*", "$__rate_interval": "15s", "$__range": "5m"}


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: `tests/setup test` installs Debian's prometheus package"
    return path


class Prometheus:
    def __init__(self, work: Path, targets: list[str], rules: Path):
        self.port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            # The labels the chart's PodMonitor gives every broker target.
            "scrape_configs": [{"job_name": "krait", "static_configs": [
                {"targets": targets, "labels": {"krait_cluster": "main", "namespace": "kafka"}}]}],
        }
        (work / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = open(work / "prometheus.log", "wb")
        self.proc = subprocess.Popen(
            [tool("prometheus"), f"--config.file={work / 'prometheus.yml'}",
             f"--storage.tsdb.path={work / 'tsdb'}", f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited with {self.proc.returncode}; see {self.log.name}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def api(self, path: str, **params) -> dict:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            return json.loads(e.read())

    def query(self, expr: str) -> dict:
        return self.api("query", query=expr)

    def series(self, expr: str) -> list:
        answer = self.query(expr)
        assert answer["status"] == "success", f"{expr}: {answer}"
        return answer["data"]["result"]

    def alerts(self) -> dict[str, str]:
        """Alert name -> state (pending or firing) of the active alerts."""
        return {a["labels"]["alertname"]: a["state"] for a in self.api("alerts")["data"]["alerts"]}

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def dashboard_queries() -> list[tuple[str, str, str]]:
    out = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                expr = target["expr"]
                for var, value in VARIABLES.items():
                    expr = expr.replace(var, value)
                out.append((path.name, panel["title"], expr))
    return out


def alert_rules() -> list[dict]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def test_the_rule_file_passes_promtool():
    checked = subprocess.run([tool("promtool"), "check", "rules", str(RULES)], capture_output=True, timeout=60)
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
    assert b"SUCCESS" in checked.stdout


def test_every_dashboard_query_and_alert_runs_on_prometheus_and_the_alerts_follow_a_broker_down(
        cluster_factory, tmp_path):
    ports = {i: free_port() for i in (1, 2, 3)}
    cluster = cluster_factory(3, node_args=lambda i: ["--http-listen", f"127.0.0.1:{ports[i]}"])
    topic = cluster.create_topic(3, 3, {"min.insync.replicas": "2"})
    assert_delivered(produce_all(producer(cluster.bootstrap, acks="all"), topic,
                                 [{"value": f"v{i}".encode(), "partition": i % 3} for i in range(300)]))
    group = unique("dashboards")
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(topic, p, 40) for p in range(3)], asynchronous=False)
    finally:
        c.close()

    rules = tmp_path / "alerts.yaml"
    shortened = yaml.safe_load(RULES.read_text())
    for g in shortened["groups"]:
        for r in g["rules"]:
            if "for" in r:
                r["for"] = "1s"
    rules.write_text(yaml.safe_dump(shortened))
    prom = Prometheus(tmp_path, [f"127.0.0.1:{ports[i]}" for i in (1, 2, 3)], rules)
    try:
        wait_until(prom.ready, 60, "Prometheus to start")
        wait_until(lambda: len(prom.series("up == 1")) == 3, 60,
                   "Prometheus to scrape all three brokers")

        # Rates need two samples in their window; more produce and a consumer that keeps
        # fetching give every counter-based panel something to show.
        def traffic():
            assert_delivered(produce_all(producer(cluster.bootstrap, acks="all"), topic,
                                         [{"value": b"more", "partition": i % 3} for i in range(30)]))
            c2 = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group,
                           "enable.auto.commit": False, "auto.offset.reset": "earliest"})
            try:
                c2.assign([TopicPartition(topic, p, 40) for p in range(3)])
                c2.consume(num_messages=100, timeout=1)
                # The group stays at offset 40 while the log grows: its lag only grows.
                c2.commit(offsets=[TopicPartition(topic, p, 40) for p in range(3)], asynchronous=False)
            finally:
                c2.close()
        empty = []
        deadline = time.monotonic() + 45
        pending = dashboard_queries()
        while pending and time.monotonic() < deadline:
            traffic()
            time.sleep(2)
            empty = [(board, title, expr) for board, title, expr in pending if not prom.series(expr)]
            pending = empty
        assert not empty, "dashboard queries without series:\n" + "\n".join(f"{b} / {t}: {e}" for b, t, e in empty)
        for rule in alert_rules():
            answer = prom.query(rule["expr"])
            assert answer["status"] == "success", f"{rule['alert']}: {answer}"
        # The traffic above writes faster than the group commits: its lag grows, and that alert
        # (alone) fires.
        def lag_alert_fires():
            traffic()
            return prom.alerts().get("KraitConsumerLagGrowing") == "firing"
        wait_until(lag_alert_fires, 60, "the consumer-lag alert to fire for a group falling behind", interval=1)
        assert set(prom.alerts()) == {"KraitConsumerLagGrowing"}, "a healthy cluster fires nothing else"

        # Consumer lag as Prometheus has it is the high watermark minus the committed offset.
        lag = prom.series(f'sum(krait_consumer_group_lag_records{{group="{group}"}})')
        hw = prom.series(f'sum(krait_partition_high_watermark{{topic="{topic}"}})')
        committed = prom.series(f'sum(krait_consumer_group_committed_offset{{group="{group}", topic="{topic}"}})')
        assert float(lag[0]["value"][1]) == float(hw[0]["value"][1]) - float(committed[0]["value"][1])

        victim = next(i for i in (1, 2, 3) if i != cluster.controller())
        cluster.kill9(victim)
        wait_until(lambda: {"KraitUnderReplicatedPartitions", "KraitBrokerDown"} <= {
            name for name, state in prom.alerts().items() if state == "firing"}, 60,
            f"the under-replicated and broker-down alerts to fire with broker {victim} down")
        assert "KraitOfflinePartitions" not in prom.alerts(), "every partition kept a leader"
        cluster.restart(victim)
        wait_until(lambda: not ({"KraitUnderReplicatedPartitions", "KraitBrokerDown"} & set(prom.alerts())), 90,
                   f"the alerts to resolve with broker {victim} back")
        assert float(prom.series("sum(krait_under_replicated_partitions)")[0]["value"][1]) == 0
    finally:
        prom.stop()
