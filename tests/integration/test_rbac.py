"""RBAC conformance: the chart's rules, rendered with Helm's own engine in both modes (Roles in
the watched namespaces, or one ClusterRole), allow every request the operator makes, and grant
nothing it does not use.

The requests come from the operator's scenario tests on the fake API server, which records
each authorization check a real kube-apiserver would make (verb, API group, resource,
subresource, namespace, name; `operator/reconciler/tests/common/access.rs`) and holds every
scenario to its file in `operator/reconciler/tests/rbac/` (the Rust test fails when the
operator's requests change and the file was not re-recorded). The same holds for the brokers'
rack init container (`krait-operator rack`, scope "broker") against the chart's broker-rack
ClusterRole, which the operator binds to each rack-aware cluster's ServiceAccount. Needs no
cluster and no build."""
from __future__ import annotations

import copy
import json

import pytest

from chart import ROOT, find, render

RECORDED = ROOT / "operator" / "reconciler" / "tests" / "rbac"
# The scenarios the operator's tests record; a missing file is a failure, not fewer checks.
SCENARIOS = {
    "cluster_create", "cluster_leftovers", "cluster_scale_up", "cluster_scale_down",
    "cluster_roll", "cluster_rebalance", "cluster_failure", "cluster_storage", "cluster_rack",
    "cluster_monitoring", "cluster_cert_manager",
    "broker_rack", "topic_lifecycle",
    "user_lifecycle",
    "leader_election",
    "controllers_watched_namespaces", "controllers_all_namespaces",
}
# The leader-election test's Lease namespace and name: the release's namespace and full name.
OPERATOR_NAMESPACE = "ops"
RELEASE = "krait-operator"
# Rules granted though no scenario uses them, with the reason. None today.
UNUSED_ALLOWED: dict[tuple[str, str, str], str] = {}


def recorded() -> dict[str, dict]:
    scenarios = {p.stem: json.loads(p.read_text()) for p in RECORDED.glob("*.json")}
    assert set(scenarios) == SCENARIOS, f"recorded scenarios in {RECORDED}"
    return scenarios


def requests(scope: str) -> list[dict]:
    """The requests the given mode must allow: the namespaced mode cannot (and need not)
    allow what the operator asks when it watches every namespace."""
    wanted = {"namespaced"} if scope == "namespaced" else {"namespaced", "all-namespaces"}
    return [r for s in recorded().values() if s["scope"] in wanted for r in s["requests"]]


def watched_namespaces() -> list[str]:
    return sorted({r["namespace"] for r in requests("namespaced")} - {OPERATOR_NAMESPACE, ""})


def render_mode(mode: str) -> list[dict]:
    values = {"watchNamespaces": watched_namespaces()} if mode == "namespaced" else {}
    return render(values, name=RELEASE, namespace=OPERATOR_NAMESPACE)


def resource_of(request: dict) -> str:
    sub = request["subresource"]
    return f"{request['resource']}/{sub}" if sub else request["resource"]


def rule_allows(rule: dict, request: dict) -> bool:
    """RBAC's rule matching (`pkg/apis/rbac/v1/evaluation_helpers.go`)."""
    resource = resource_of(request)
    names = rule.get("resourceNames") or []
    return (
        any(g in ("*", request["group"]) for g in rule.get("apiGroups", []))
        and any(r in ("*", resource) or (r.startswith("*/") and resource.endswith(r[1:]))
                for r in rule.get("resources", []))
        and any(v in ("*", request["verb"]) for v in rule["verbs"])
        and (not names or request["name"] in names)
    )


def operator_rules(manifests: list[dict]) -> list[tuple[str | None, dict]]:
    """Every rule bound to the operator's ServiceAccount, with the namespace it holds in
    (None: every namespace, and requests across all of them)."""
    deployment = find(manifests, "Deployment")[0]
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    namespace = deployment["metadata"]["namespace"]
    roles = {(m["kind"], m["metadata"].get("namespace"), m["metadata"]["name"]): m
             for m in manifests if m["kind"] in ("Role", "ClusterRole")}
    rules = []
    for binding in find(manifests, "RoleBinding") + find(manifests, "ClusterRoleBinding"):
        if {"kind": "ServiceAccount", "name": account, "namespace": namespace} not in binding["subjects"]:
            continue
        scope = binding["metadata"].get("namespace") if binding["kind"] == "RoleBinding" else None
        ref = binding["roleRef"]
        role = roles[(ref["kind"], scope if ref["kind"] == "Role" else None, ref["name"])]
        rules += [(scope, rule) for rule in role["rules"]]
    return rules


def refused(manifests: list[dict], reqs: list[dict]) -> list[dict]:
    rules = operator_rules(manifests)
    return [r for r in reqs
            if not any((scope is None or scope == r["namespace"]) and rule_allows(rule, r)
                       for scope, rule in rules)]


def unused(manifests: list[dict], reqs: list[dict]) -> set[tuple[str, str, str]]:
    granted = {(g, res, verb) for _, rule in operator_rules(manifests)
               for g in rule["apiGroups"] for res in rule["resources"] for verb in rule["verbs"]}
    used = {(r["group"], resource_of(r), r["verb"]) for r in reqs}
    return granted - used - set(UNUSED_ALLOWED)


@pytest.mark.parametrize("mode", ["namespaced", "cluster-wide"])
def test_the_chart_allows_every_request_the_operator_makes(mode):
    manifests = render_mode(mode)
    assert find(manifests, "ClusterRole" if mode == "cluster-wide" else "Role")
    not_allowed = refused(manifests, requests(mode))
    assert not_allowed == [], \
        f"the {mode} chart refuses (403) requests the operator makes: {json.dumps(not_allowed, indent=1)}"


@pytest.mark.parametrize("mode", ["namespaced", "cluster-wide"])
def test_the_chart_grants_nothing_the_operator_does_not_use(mode):
    manifests = render_mode(mode)
    extra = unused(manifests, requests(mode))
    assert extra == set(), f"the {mode} chart grants (group, resource, verb) no scenario uses: {sorted(extra)}"


def test_the_namespaced_chart_refuses_what_only_watching_every_namespace_needs():
    cluster_wide = recorded()["controllers_all_namespaces"]["requests"]
    assert cluster_wide and refused(render_mode("namespaced"), cluster_wide) == cluster_wide


def test_restarts_are_evictions_and_the_chart_allows_them_only():
    roll = recorded()["cluster_roll"]["requests"]
    evictions = [r for r in roll if r["resource"] == "pods" and r["subresource"] == "eviction"]
    assert evictions and {r["verb"] for r in evictions} == {"create"}
    assert not [r for r in requests("cluster-wide") if r["resource"] == "pods" and r["verb"] == "delete"]
    # The check fails loudly when a rule goes missing.
    manifests = copy.deepcopy(render_mode("cluster-wide"))
    role = find(manifests, "ClusterRole")[0]
    role["rules"] = [r for r in role["rules"] if "pods/eviction" not in r["resources"]]
    assert refused(manifests, roll) == evictions


def test_storage_classes_are_read_cluster_wide_in_both_modes():
    storage = recorded()["cluster_storage"]["requests"]
    classes = [r for r in storage if r["resource"] == "storageclasses"]
    assert classes and {(r["verb"], r["namespace"]) for r in classes} == {("get", "")}
    for mode in ("namespaced", "cluster-wide"):
        manifests = copy.deepcopy(render_mode(mode))
        assert refused(manifests, classes) == []
        # A Role cannot grant a cluster-scoped read: without the ClusterRole it is refused.
        manifests = [m for m in manifests
                     if not m["metadata"]["name"].endswith("-storage-classes")]
        assert refused(manifests, classes) == classes


def broker_rules(manifests: list[dict]) -> list[tuple[str | None, dict]]:
    """The broker-rack ClusterRole's rules, cluster-wide: what the operator's per-cluster
    ClusterRoleBinding gives a rack-aware cluster's brokers (its roleRef is the role the
    operator is told, KRAIT_OPERATOR_RACK_CLUSTER_ROLE)."""
    container = find(manifests, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    name = {e["name"]: e.get("value") for e in container["env"]}["KRAIT_OPERATOR_RACK_CLUSTER_ROLE"]
    [role] = [r for r in find(manifests, "ClusterRole") if r["metadata"]["name"] == name]
    return [(None, rule) for rule in role["rules"]]


@pytest.mark.parametrize("mode", ["namespaced", "cluster-wide"])
def test_the_broker_rack_role_allows_the_init_container_exactly_what_it_asks(mode):
    manifests = render_mode(mode)
    reqs = recorded()["broker_rack"]["requests"]
    assert reqs and {(r["verb"], r["resource"]) for r in reqs} == {("get", "nodes")}
    rules = broker_rules(manifests)
    assert [r for r in reqs if not any(rule_allows(rule, r) for _, rule in rules)] == []
    granted = {(g, res, verb) for _, rule in rules
               for g in rule["apiGroups"] for res in rule["resources"] for verb in rule["verbs"]}
    assert granted == {(r["group"], resource_of(r), r["verb"]) for r in reqs}


def test_rack_bindings_are_cluster_scoped_and_bind_only_the_broker_rack_role():
    rack = recorded()["cluster_rack"]["requests"]
    cluster_scoped = [r for r in rack if r["resource"] in ("clusterrolebindings", "clusterroles")]
    assert cluster_scoped and {r["namespace"] for r in cluster_scoped} == {""}
    binds = [r for r in rack if r["verb"] == "bind"]
    assert {(r["resource"], r["name"]) for r in binds} == {("clusterroles", f"{RELEASE}-broker-rack")}
    for mode in ("namespaced", "cluster-wide"):
        manifests = copy.deepcopy(render_mode(mode))
        assert refused(manifests, cluster_scoped) == []
        # bind is granted on that role by name: binding any other role is refused.
        other = [{**r, "name": "cluster-admin"} for r in binds]
        assert refused(manifests, other) == other
