"""The crate graph keeps the roles the folders show: nothing in broker/ depends on operator/,
nothing in operator/ on broker/, and tools/ (what the CLI and the operator share) on neither.
One exception, for tests only: the operator's tests may use a broker crate as the peer that
must accept what the operator makes (its cluster certificates, by krait-peer's acceptor); the
operator itself never builds against the broker.
Read from `cargo metadata`, so a new dependency that crosses a boundary fails here."""

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def workspace():
    out = subprocess.run(
        ["cargo", "metadata", "--no-deps", "--format-version", "1", "--offline"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "CARGO_TERM_COLOR": "never"},
    ).stdout
    packages = json.loads(out)["packages"]
    folder = {
        p["name"]: Path(p["manifest_path"]).parent.relative_to(ROOT).parts[0] for p in packages
    }
    deps = {
        p["name"]: {d["name"] for d in p["dependencies"] if d["name"] in folder and d.get("kind") != "dev"}
        for p in packages
    }
    dev_deps = {
        p["name"]: {d["name"] for d in p["dependencies"] if d["name"] in folder and d.get("kind") == "dev"}
        for p in packages
    }
    return folder, deps, dev_deps


def test_every_crate_lives_in_a_role_folder():
    folder, _, _ = workspace()
    assert set(folder.values()) == {"broker", "operator", "tools"}, folder


def test_no_dependency_crosses_between_broker_and_operator_and_tools_stand_alone():
    folder, deps, dev_deps = workspace()
    allowed = {"broker": {"broker", "tools"}, "operator": {"operator", "tools"}, "tools": {"tools"}}
    # Tests only: the operator's tests may check what it makes against the broker's own code.
    allowed_in_tests = {**allowed, "operator": {"operator", "tools", "broker"}}
    crossing = [
        f"{name} ({folder[name]}/) -> {dep} ({folder[dep]}/)"
        for rules, graph in ((allowed, deps), (allowed_in_tests, dev_deps))
        for name, ds in graph.items()
        for dep in ds
        if folder[dep] not in rules[folder[name]]
    ]
    assert crossing == [], crossing
