"""Validates Kubernetes manifests against the schemas of every Kubernetes version the docs
support (PyPI kubernetes-validate, strict: unknown fields refused), for the operator's Rust tests:
`python3 kube_validate.py < manifests.json` (a JSON list) prints one line per failure and exits
1 if there is any. The supported versions are docs/kubernetes.md's "Kubernetes 1.N or later" up to
the newest that kubernetes-validate knows."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import kubernetes_validate

ROOT = Path(__file__).resolve().parents[2]


def supported_versions() -> list[str]:
    text = (ROOT / "docs" / "kubernetes.md").read_text()
    found = re.search(r"Kubernetes 1\.(\d+) or later", text)
    assert found, "docs/kubernetes.md names no minimum Kubernetes version"
    oldest = int(found.group(1))
    minors = {int(v.split(".")[1]) for v in kubernetes_validate.utils.all_versions()
              if v.startswith("1.")}
    return [f"1.{m}" for m in sorted(minors) if m >= oldest]


def failures(manifests: list[dict], versions: list[str]) -> list[str]:
    problems = []
    for manifest in manifests:
        name = f"{manifest.get('kind')} {manifest.get('metadata', {}).get('name')}"
        for version in versions:
            try:
                kubernetes_validate.validate(manifest, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                problems.append(f"{name} on Kubernetes {version}: {e.message} at {list(e.path)}")
    return problems


if __name__ == "__main__":
    versions = supported_versions()
    problems = failures(json.load(sys.stdin), versions)
    print(f"versions: {' '.join(versions)}", file=sys.stderr)
    print("\n".join(problems))
    sys.exit(1 if problems else 0)
