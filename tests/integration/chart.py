"""The Helm chart rendered with Helm's own engine (PyPI helm-python-sdk, no helm binary), for
the packaging tests."""
from __future__ import annotations

from pathlib import Path

import json

import helm_python as helm
import yaml
from helm_python import _native

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "krait-operator"


def docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


# The Prometheus Operator's kinds, as a cluster with its CRDs serves them.
PROMETHEUS_OPERATOR = ["monitoring.coreos.com/v1/PodMonitor", "monitoring.coreos.com/v1/ServiceMonitor"]


def render(values: dict | None = None, *, name: str = "krait", namespace: str = "krait-system",
           api_versions: list[str] | None = None) -> list[dict]:
    """`helm template`, with `api_versions` as `--api-versions` gives them (the API versions
    beyond Kubernetes' own that the cluster serves)."""
    chart = helm.Chart.load(CHART)
    if api_versions is None:
        rendered = chart.render(values or {}, name=name, namespace=namespace, is_install=True)
    else:
        # The SDK's Python wrapper has no parameter for them; its native call takes Helm's option.
        opts = {"name": name, "namespace": namespace, "is_install": True, "api_versions": api_versions}
        rendered = json.loads(_native.call_string("helm_render", chart._raw(), json.dumps(values or {}),
                                                  json.dumps(opts)))
    return [d for text in rendered.values() for d in docs(text)]


def find(manifests: list[dict], kind: str) -> list[dict]:
    return [m for m in manifests if m["kind"] == kind]


if __name__ == "__main__":
    # For the operator's Rust tests: `python3 chart.py '{"watchNamespaces": ["a"]}'` prints the
    # rendered manifests as one JSON list.
    import sys

    print(json.dumps(render(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {})))
