"""Packaging: the Helm chart lints and renders with Helm's own engine (PyPI helm-python-sdk,
no helm binary), and every manifest — rendered chart, crds/, examples/ — validates against the
Kubernetes schemas (PyPI kubernetes-validate); the examples also validate against the CRDs'
own OpenAPI schemas. Needs no cluster and no broker."""
from __future__ import annotations

import copy
import json
import re
import textwrap
from pathlib import Path

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

from chart import CHART, PROMETHEUS_OPERATOR, ROOT, docs, find, render

CRDS = ROOT / "crds"
EXAMPLES = ROOT / "examples"
FIXTURES = ROOT / "operator" / "reconciler" / "tests" / "fixtures"
KUBE_VERSION = "1.37"


def validate_k8s(manifest: dict) -> None:
    kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)


def test_chart_lints_without_warnings():
    report = helm.lint(CHART, strict=True, kube_version=f"v{KUBE_VERSION}.0")
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == []


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"watchNamespaces": ["team-a", "team-b"], "replicaCount": 2},
        {"leaderElection": {"enabled": False}, "logLevel": "debug",
         "metrics": {"serviceMonitor": {"enabled": True}}},
    ],
    ids=["defaults", "namespaced", "no-leader-election"],
)
def test_rendered_manifests_validate_against_kubernetes_schemas(values):
    manifests = render(values)
    assert find(manifests, "Deployment")
    for m in manifests:
        if m["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # not a Kubernetes API; checked by its own test below
        validate_k8s(m)


def test_defaults_watch_all_namespaces_with_a_cluster_role():
    manifests = render()
    assert [r["metadata"]["name"] for r in find(manifests, "ClusterRole")] == [
        "krait-krait-operator", "krait-krait-operator-storage-classes",
        "krait-krait-operator-broker-rack", "krait-krait-operator-rack-bindings"]
    deployment = find(manifests, "Deployment")[0]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KRAIT_OPERATOR_NAMESPACES"] == ""
    assert env["KRAIT_OPERATOR_LEASE_NAME"] == "krait-krait-operator"
    assert container["args"] == ["run"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_watched_namespaces_get_roles_and_only_the_cluster_scoped_reads_cluster_wide():
    manifests = render({"watchNamespaces": ["team-a", "team-b"]})
    # StorageClasses, Nodes and ClusterRoleBindings are cluster-scoped: only a ClusterRole can
    # grant them.
    cluster_roles = {r["metadata"]["name"]: r for r in find(manifests, "ClusterRole")}
    assert set(cluster_roles) == {"krait-krait-operator-storage-classes",
                                  "krait-krait-operator-broker-rack",
                                  "krait-krait-operator-rack-bindings"}
    assert cluster_roles["krait-krait-operator-storage-classes"]["rules"] == [
        {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": ["get"]}]
    # The broker-rack role is bound by the operator, per cluster, never by the chart.
    assert [b["roleRef"]["name"] for b in find(manifests, "ClusterRoleBinding")] == [
        "krait-krait-operator-storage-classes", "krait-krait-operator-rack-bindings"]
    roles = {(r["metadata"]["namespace"], r["metadata"]["name"]) for r in find(manifests, "Role")}
    assert roles == {("team-a", "krait-krait-operator"), ("team-b", "krait-krait-operator"),
                     ("krait-system", "krait-krait-operator-leader-election")}
    deployment = find(manifests, "Deployment")[0]
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["KRAIT_OPERATOR_NAMESPACES"] == "team-a,team-b"


def test_rbac_is_least_privilege():
    manifests = render()
    rules = find(manifests, "ClusterRole")[0]["rules"]
    for rule in rules:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
    # Secrets: the certificates and credentials the operator issues, read back by label (list,
    # watch) and applied (create, patch), and the password Secret a KafkaUser names (get); it
    # never updates or deletes a Secret (garbage collection removes them with their
    # KafkaCluster or KafkaUser).
    secrets = [r for r in rules if "secrets" in r["resources"]]
    assert [(r["resources"], sorted(r["verbs"])) for r in secrets] == [
        (["secrets"], ["create", "get", "list", "patch", "watch"])]
    # Brokers restart through the Eviction API (PodDisruptionBudgets respected), never by
    # deleting pods, which the operator may not do.
    pods = [r for r in rules if r["resources"] == ["pods"]]
    assert pods and set(pods[0]["verbs"]) == {"list"}
    evictions = [r for r in rules if "pods/eviction" in r["resources"]]
    assert [(e["apiGroups"], e["resources"], e["verbs"]) for e in evictions] == [([""], ["pods/eviction"], ["create"])]
    lease_role = [r for r in find(manifests, "Role") if r["metadata"]["name"].endswith("leader-election")][0]
    scoped = [r for r in lease_role["rules"] if "resourceNames" in r][0]
    assert scoped["resourceNames"] == ["krait-krait-operator"]
    assert set(scoped["verbs"]) == {"get", "update"}


@pytest.mark.parametrize("values", [{}, {"watchNamespaces": ["team-a"]}], ids=["cluster-wide", "namespaced"])
def test_rack_awareness_lets_brokers_get_nodes_and_the_operator_bind_only_that(values):
    manifests = render(values, name="kafka", namespace="ops")
    roles = {r["metadata"]["name"]: r for r in find(manifests, "ClusterRole")}
    # What a rack-aware cluster's brokers may do: read a Node, nothing more.
    assert roles["kafka-krait-operator-broker-rack"]["rules"] == [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]
    # What the operator may do to give it to them: manage ClusterRoleBindings (which RBAC lets
    # it point only at roles it holds or may bind) and bind that one role.
    bindings = roles["kafka-krait-operator-rack-bindings"]["rules"]
    assert bindings == [
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterrolebindings"],
         "verbs": ["get", "create", "patch", "delete"]},
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
         "resourceNames": ["kafka-krait-operator-broker-rack"], "verbs": ["bind"]}]
    [binding] = [b for b in find(manifests, "ClusterRoleBinding")
                 if b["roleRef"]["name"] == "kafka-krait-operator-rack-bindings"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "kafka-krait-operator", "namespace": "ops"}]
    # The operator is told the role's name and its own image, which the init container runs.
    container = find(manifests, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KRAIT_OPERATOR_RACK_CLUSTER_ROLE"] == "kafka-krait-operator-broker-rack"
    assert env["KRAIT_OPERATOR_IMAGE"] == container["image"]
    assert env["KRAIT_OPERATOR_IMAGE"].startswith("ghcr.io/krait-dev/krait-operator:")


def test_service_monitor_is_optional_and_only_where_its_crd_is_served():
    assert find(render(api_versions=PROMETHEUS_OPERATOR), "ServiceMonitor") == []
    enabled = {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}}
    assert find(render(enabled), "ServiceMonitor") == [], "rendered for a cluster without the CRD"
    assert find(render(enabled, api_versions=["monitoring.coreos.com/v1/PodMonitor"]), "ServiceMonitor") == []
    monitors = find(render(enabled, api_versions=PROMETHEUS_OPERATOR), "ServiceMonitor")
    assert len(monitors) == 1
    assert monitors[0]["metadata"]["labels"]["release"] == "prom"
    assert monitors[0]["spec"]["endpoints"][0]["path"] == "/metrics"
    # The operator's per-cluster series keep the KafkaCluster's namespace.
    assert monitors[0]["spec"]["endpoints"][0]["honorLabels"] is True


def test_broker_pod_monitor_is_optional_only_where_its_crd_is_served_and_follows_the_watched_namespaces():
    assert find(render(api_versions=PROMETHEUS_OPERATOR), "PodMonitor") == []
    enabled = {"metrics": {"brokerPodMonitor": {"enabled": True, "labels": {"release": "prom"}}}}
    assert find(render(enabled), "PodMonitor") == [], "rendered for a cluster without the CRD"
    assert find(render(enabled, api_versions=["monitoring.coreos.com/v1/ServiceMonitor"]), "PodMonitor") == []
    monitor = find(render(enabled, api_versions=PROMETHEUS_OPERATOR), "PodMonitor")[0]
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["namespaceSelector"] == {"any": True}
    # The labels every broker pod carries (operator/reconciler/src/names.rs).
    assert monitor["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "krait", "app.kubernetes.io/component": "broker",
        "app.kubernetes.io/managed-by": "krait-operator"}
    assert monitor["spec"]["podMetricsEndpoints"] == [{
        "port": "http", "path": "/metrics", "interval": "30s",
        # The labels the alerts and dashboards group by.
        "relabelings": [
            {"sourceLabels": ["__meta_kubernetes_pod_label_app_kubernetes_io_instance"], "targetLabel": "krait_cluster"},
            {"sourceLabels": ["__meta_kubernetes_namespace"], "targetLabel": "namespace"}]}]
    scoped = find(render({**enabled, "watchNamespaces": ["kafka", "kafka2"]}, api_versions=PROMETHEUS_OPERATOR),
                  "PodMonitor")[0]
    assert scoped["spec"]["namespaceSelector"] == {"matchNames": ["kafka", "kafka2"]}


def test_alerts_render_as_a_prometheus_rule_only_where_its_crd_is_served():
    enabled = {"prometheusRule": {"enabled": True, "labels": {"release": "prom"}}}
    assert find(render(enabled), "PrometheusRule") == [], "rendered for a cluster without the CRD"
    assert find(render(api_versions=["monitoring.coreos.com/v1/PrometheusRule"]), "PrometheusRule") == []
    (rule,) = find(render(enabled, api_versions=["monitoring.coreos.com/v1/PrometheusRule"]), "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "prom"
    # The rule file itself, unchanged (promtool checks that file in test_prometheus.py).
    assert rule["spec"] == yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert {"KraitUnderReplicatedPartitions", "KraitOfflinePartitions", "KraitUnderMinIsrPartitions",
            "KraitNoActiveController", "KraitBrokerDown", "KraitConsumerLagGrowing",
            "KraitDiskAlmostFull", "KraitBrokerCertificateExpiringSoon", "KraitCertificateExpiringSoon",
            "KraitClusterDegraded", "KraitOperatorReconcileErrors"} <= alerts


def test_dashboards_render_in_a_configmap_grafanas_sidecar_finds():
    assert not [c for c in find(render(), "ConfigMap") if c["metadata"]["name"].endswith("-dashboards")]
    (cm,) = [c for c in find(render({"grafanaDashboards": {"enabled": True, "namespace": "monitoring"}}), "ConfigMap")
             if c["metadata"]["name"].endswith("-dashboards")]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["namespace"] == "monitoring"
    assert sorted(cm["data"]) == ["krait-consumer-groups.json", "krait-operator.json", "krait-overview.json",
                                  "krait-topics.json"]
    for name, text in cm["data"].items():
        board = json.loads(text)
        assert board["uid"].startswith("krait-") and board["panels"], name
        assert all(t["expr"] for p in board["panels"] for t in p["targets"]), name
    validate_k8s(cm)


def rendered_crds(values: dict | None = None, **kwargs) -> dict[str, dict]:
    return {c["metadata"]["name"]: c for c in find(render(values, **kwargs), "CustomResourceDefinition")}


@pytest.mark.parametrize("upgrade", [False, True], ids=["install", "upgrade"])
def test_the_chart_installs_and_upgrades_exactly_the_generated_crds(upgrade):
    # Helm never upgrades what a chart's crds/ directory holds: the CRDs are templates instead.
    assert helm.Chart.load(CHART).crds == [], "nothing in charts/krait-operator/crds/"
    chart = helm.Chart.load(CHART)
    rendered = chart.render({}, name="krait", namespace="krait-system", is_install=not upgrade,
                            is_upgrade=upgrade)
    crds = {c["metadata"]["name"]: c for text in rendered.values() for c in docs(text)
            if c["kind"] == "CustomResourceDefinition"}
    generated = {c["metadata"]["name"]: c for p in CRDS.glob("*.yaml") for c in docs(p.read_text())}
    assert set(crds) == set(generated)
    for name, crd in crds.items():
        meta = crd["metadata"]
        # Kept on helm uninstall: deleting a CRD deletes every resource of its kind.
        assert meta.pop("annotations") == {"helm.sh/resource-policy": "keep"}, name
        assert meta.pop("labels")["app.kubernetes.io/managed-by"] == "Helm", name
        assert crd == generated[name], f"charts/krait-operator/files/crds/ differs from crds/ for {name}"


def test_the_chart_ships_copies_of_the_generated_crd_files():
    shipped = {p.name: p.read_text() for p in (CHART / "files" / "crds").glob("*.yaml")}
    generated = {p.name: p.read_text() for p in CRDS.glob("*.yaml")}
    assert shipped == generated, "copy crds/*.yaml to charts/krait-operator/files/crds/"


def test_crds_can_be_left_to_the_user_or_deleted_on_uninstall():
    assert rendered_crds({"crds": {"install": False}}) == {}
    crds = rendered_crds({"crds": {"keep": False}})
    assert len(crds) == 3
    assert all("helm.sh/resource-policy" not in c["metadata"].get("annotations", {}) for c in crds.values())


def documented_values() -> list[tuple[str, dict]]:
    """The values docs/*.md shows: each `--set` of a helm command, and each `values` or
    `valuesObject` of an Argo CD Application or a Flux HelmRelease."""
    found = []
    for doc in sorted((ROOT / "docs").glob("*.md")):
        text = doc.read_text()
        for i, expression in enumerate(re.findall(r"--set\s+([^\s\\]+)", text)):
            found.append((f"{doc.name}:--set{i}", helm.parse_set_string(expression.replace("'", ""))))
        for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
            for manifest in docs(textwrap.dedent(block)):
                kind = manifest.get("kind", "snippet")
                found += [(f"{doc.name}:{kind}", v) for v in values_in(manifest)]
    return found


def values_in(node) -> list[dict]:
    if isinstance(node, dict):
        own = [v for k, v in node.items() if k in ("values", "valuesObject") and isinstance(v, dict)]
        return own + [v for child in node.values() for v in values_in(child)]
    if isinstance(node, list):
        return [v for child in node for v in values_in(child)]
    return []


def test_the_values_schema_accepts_the_defaults_and_every_documented_example():
    examples = documented_values()
    assert {name.split(":")[1] for name, _ in examples} >= {"--set0", "snippet", "HelmRelease"}, examples
    chart = helm.Chart.load(CHART)
    chart.validate_schema(chart.values)
    for name, values in examples:
        assert render(values), name


@pytest.mark.parametrize("values", [
    {"replicaCount": "two"},
    {"watchNamespaces": "kafka"},
    {"watchNamespaces": ["Kafka_Prod"]},
    {"leaderElection": {"leaseSeconds": 1}},
    {"image": {"pullPolicy": "Sometimes"}},
    {"metrics": {"port": 0}},
    {"metrics": {"serviceMonitor": {"enabled": "yes"}}},
    {"crds": {"install": "true"}},
    {"imagePullSecret": [{"name": "x"}]},
    {"resources": {"request": {"cpu": "1"}}},
], ids=lambda v: json.dumps(v))
def test_the_values_schema_refuses_a_bad_value_before_anything_renders(values):
    with pytest.raises(helm.HelmValuesError):
        render(values)


@pytest.mark.parametrize("path", sorted(CRDS.glob("*.yaml")), ids=lambda p: p.name)
def test_crds_validate_against_kubernetes_schemas(path):
    for crd in docs(path.read_text()):
        validate_k8s(crd)


def crd_schemas() -> dict[tuple[str, str], dict]:
    schemas = {}
    for path in CRDS.glob("*.yaml"):
        for crd in docs(path.read_text()):
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schemas[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return schemas


def closed(schema: dict) -> dict:
    """The schema with unknown fields refused wherever it lists properties: the API server
    would silently prune a misspelt field, a test should name it."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    # metadata is validated by the API server itself, not by the CRD's schema.
    schema.setdefault("properties", {})["metadata"] = {"type": "object"}
    schema["properties"].setdefault("apiVersion", {"type": "string"})
    schema["properties"].setdefault("kind", {"type": "string"})
    return schema


def custom_resources(paths) -> list[tuple[str, dict]]:
    """Krait's resources in the files (an example may also hold a plain Secret it refers to)."""
    return [(f"{p.name}:{d['metadata']['name']}", d) for p in paths for d in docs(p.read_text())
            if d["apiVersion"].startswith("krait.dev/")]


EXAMPLE_RESOURCES = custom_resources(sorted(EXAMPLES.rglob("*.yaml")))
VALID_FIXTURES = custom_resources(sorted(p for p in FIXTURES.glob("*.yaml") if not p.name.startswith("invalid-")))


@pytest.mark.parametrize("resource", [r for _, r in EXAMPLE_RESOURCES + VALID_FIXTURES],
                         ids=[i for i, _ in EXAMPLE_RESOURCES + VALID_FIXTURES])
def test_examples_and_fixtures_validate_against_the_crd_schemas(resource):
    schema = crd_schemas()[(resource["apiVersion"], resource["kind"])]
    jsonschema.Draft7Validator(closed(schema)).validate(resource)


def test_crd_schema_check_catches_mistakes():
    cluster = docs((EXAMPLES / "kafkacluster.yaml").read_text())[0]
    schema = closed(crd_schemas()[("krait.dev/v1alpha1", "KafkaCluster")])
    for mutate in (lambda c: c["spec"].update(replicas=0),
                   lambda c: c["spec"].update(replica=3),
                   lambda c: c["spec"].pop("image"),
                   lambda c: c["spec"].update(imagePullPolicy="Sometimes")):
        bad = copy.deepcopy(cluster)
        mutate(bad)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft7Validator(schema).validate(bad)


@pytest.mark.parametrize("interval,valid", [
    ("30s", True), ("1m", True), ("1m30s", True), ("500ms", True), ("1h5m", True),
    ("", False), ("30", False), ("0", False), ("1s1m", False), ("30 s", False), ("1.5s", False),
    ("thirty", False)])
def test_the_crd_refuses_a_pod_monitor_interval_that_is_not_a_prometheus_duration(interval, valid):
    cluster = docs((EXAMPLES / "kafkacluster.yaml").read_text())[0]
    cluster["spec"]["metrics"] = {"podMonitor": {"enabled": True, "interval": interval,
                                                 "labels": {"release": "prometheus"}}}
    validator = jsonschema.Draft7Validator(closed(crd_schemas()[("krait.dev/v1alpha1", "KafkaCluster")]))
    assert validator.is_valid(cluster) == valid, [e.message for e in validator.iter_errors(cluster)]


def test_examples_have_a_three_broker_cluster_and_topics_for_it():
    # The top directory is what `kubectl apply -f examples/` applies; subdirectories need more
    # installed first (cert-manager/).
    resources = [r for _, r in custom_resources(sorted(EXAMPLES.glob("*.yaml")))]
    clusters = [r for r in resources if r["kind"] == "KafkaCluster"]
    topics = [r for r in resources if r["kind"] == "KafkaTopic"]
    assert [c["spec"]["replicas"] for c in clusters] == [3]
    assert len(topics) >= 2
    assert {t["spec"]["clusterRef"] for t in topics} == {clusters[0]["metadata"]["name"]}
