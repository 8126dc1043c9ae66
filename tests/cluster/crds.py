"""CustomResourceDefinitions installed as a platform team installs them: the release's own files,
each created once, then waited for until Established and served.

A plain POST each: the TFJob CRD is 611 KB and Trainer's runtime CRDs 926 KB, past what
``kubectl apply`` can keep in its last-applied annotation. Every file is created before any is
waited for, so the apiserver builds their schemas and CEL programs at once rather than one after
another, and the files are parsed with libyaml (the pure-Python parser took 1.6 s for the TFJob
CRD alone; libyaml reads all five in well under a second).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import kubernetes
import yaml

from tests.cluster.processes import ClusterError


def load(path: Path) -> dict[str, Any]:
    """One YAML document, parsed with libyaml where PyYAML has it."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    document: dict[str, Any] = yaml.load(path.read_text(), Loader=loader)
    return document


def install(api: kubernetes.client.ApiClient, files: Sequence[Path], timeout: float = 60) -> None:
    """Create the CRDs of ``files`` and return once each is Established and its resource
    answers a list; :class:`ClusterError` naming the ones that did not."""
    ext = kubernetes.client.ApiextensionsV1Api(api)
    custom = kubernetes.client.CustomObjectsApi(api)
    pending: dict[str, dict[str, Any]] = {}
    for path in files:
        body = load(path)
        ext.create_custom_resource_definition(body=body, _preload_content=False)
        pending[body["metadata"]["name"]] = body
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for name, body in list(pending.items()):
            if _established(ext, name) and _served(custom, body):
                del pending[name]
        if pending:
            time.sleep(0.1)
    if pending:
        raise ClusterError(f"CRDs not established within {timeout} s: {', '.join(sorted(pending))}")


def _established(ext: kubernetes.client.ApiextensionsV1Api, name: str) -> bool:
    raw = ext.read_custom_resource_definition(name, _preload_content=False)
    conditions = json.loads(raw.data).get("status", {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


def _served(custom: kubernetes.client.CustomObjectsApi, crd: dict[str, Any]) -> bool:
    """Whether a list of the resource answers (Established can come before the route)."""
    spec = crd["spec"]
    version = next(v["name"] for v in spec["versions"] if v.get("served", True))
    try:
        custom.list_cluster_custom_object(
            spec["group"], version, spec["names"]["plural"], limit=1, _preload_content=False
        )
    except kubernetes.client.ApiException as e:
        if e.status == 404:
            return False
        raise
    return True
