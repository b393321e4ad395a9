"""The Helm chart rendered with Helm's own engine (PyPI helm-python-sdk, no helm binary), for
the packaging tests."""
from __future__ import annotations

from pathlib import Path

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "krait-operator"


def docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def render(values: dict | None = None, *, name: str = "krait", namespace: str = "krait-system") -> list[dict]:
    chart = helm.Chart.load(CHART)
    rendered = chart.render(values or {}, name=name, namespace=namespace, is_install=True)
    return [d for text in rendered.values() for d in docs(text)]


def find(manifests: list[dict], kind: str) -> list[dict]:
    return [m for m in manifests if m["kind"] == kind]


if __name__ == "__main__":
    # For the operator's Rust tests: `python3 chart.py '{"watchNamespaces": ["a"]}'` prints the
    # rendered manifests as one JSON list.
    import json
    import sys

    print(json.dumps(render(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {})))
