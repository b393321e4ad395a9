"""The crate graph keeps the roles the folders show: nothing in broker/ depends on operator/,
nothing in operator/ on broker/, and tools/ (what the CLI and the operator share) on neither.
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
        p["name"]: {d["name"] for d in p["dependencies"] if d["name"] in folder}
        for p in packages
    }
    return folder, deps


def test_every_crate_lives_in_a_role_folder():
    folder, _ = workspace()
    assert set(folder.values()) == {"broker", "operator", "tools"}, folder


def test_no_dependency_crosses_between_broker_and_operator_and_tools_stand_alone():
    folder, deps = workspace()
    allowed = {"broker": {"broker", "tools"}, "operator": {"operator", "tools"}, "tools": {"tools"}}
    crossing = [
        f"{name} ({folder[name]}/) -> {dep} ({folder[dep]}/)"
        for name, ds in deps.items()
        for dep in ds
        if folder[dep] not in allowed[folder[name]]
    ]
    assert crossing == [], crossing
