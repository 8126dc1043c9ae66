"""Helpers for tests that drive TFJobs through the real API: manifests, watches, waiting.

``tfjob("mnist", {"Worker": 2})`` builds a minimal valid TFJob; :func:`wait_for` follows the job
with a real watch until a predicate holds and returns every version seen, so a test can check
what happened on the way (a ``Restarting`` that came and went) and not only where it ended.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import kubernetes

from tests.kubelet.podspec import Obj

GROUP, VERSION, PLURAL = "kubeflow.org", "v1", "tfjobs"


def tfjob(
    name: str,
    replicas: dict[str, int],
    *,
    restart_policy: str | None = None,
    run_policy: Obj | None = None,
    success_policy: str | None = None,
    command: list[str] | None = None,
) -> Obj:
    """A TFJob with ``replicas`` per type, each a ``tensorflow`` container (image ``sim``)."""
    container: Obj = {"name": "tensorflow", "image": "sim:latest"}
    if command is not None:
        container["command"] = command
    specs: Obj = {}
    for rtype, count in replicas.items():
        spec: Obj = {"replicas": count, "template": {"spec": {"containers": [dict(container)]}}}
        if restart_policy is not None:
            spec["restartPolicy"] = restart_policy
        specs[rtype] = spec
    job: Obj = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TFJob",
        "metadata": {"name": name},
        "spec": {"tfReplicaSpecs": specs},
    }
    if run_policy is not None:
        job["spec"]["runPolicy"] = run_policy
    if success_policy is not None:
        job["spec"]["successPolicy"] = success_policy
    return job


def create(api: kubernetes.client.ApiClient, namespace: str, job: Obj) -> Obj:
    """Create the TFJob and return it as stored."""
    custom = kubernetes.client.CustomObjectsApi(api)
    created: Obj = custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, job)
    return created


def get(api: kubernetes.client.ApiClient, namespace: str, name: str) -> Obj:
    """Read the TFJob."""
    custom = kubernetes.client.CustomObjectsApi(api)
    job: Obj = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    return job


def condition(job: Obj, kind: str) -> Obj | None:
    """The condition ``kind`` of a TFJob, if present."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def has(kind: str, status: str = "True") -> Callable[[Obj], bool]:
    """A predicate: the job has condition ``kind`` with ``status``."""

    def check(job: Obj) -> bool:
        cond = condition(job, kind)
        return cond is not None and cond.get("status") == status

    return check


def wait_for(
    api: kubernetes.client.ApiClient,
    namespace: str,
    name: str,
    predicate: Callable[[Obj], bool],
    *,
    timeout: float = 15.0,
) -> list[Obj]:
    """Watch the TFJob until ``predicate`` holds; return every version seen, the last matching."""
    custom = kubernetes.client.CustomObjectsApi(api)
    listing = custom.list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, field_selector=f"metadata.name={name}"
    )
    seen: list[Obj] = list(listing["items"])
    if seen and predicate(seen[-1]):
        return seen
    watch = kubernetes.watch.Watch()
    deadline = time.monotonic() + timeout
    stream = watch.stream(
        custom.list_namespaced_custom_object,
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        field_selector=f"metadata.name={name}",
        resource_version=listing["metadata"]["resourceVersion"],
        timeout_seconds=max(1, int(timeout)),
    )
    try:
        for event in stream:
            seen.append(event["object"])
            if event["type"] != "DELETED" and predicate(event["object"]):
                return seen
            if time.monotonic() > deadline:
                break
    finally:
        watch.stop()
    raise AssertionError(f"TFJob {namespace}/{name}: condition not reached; last: {_brief(seen)}")


def _brief(seen: list[Obj]) -> Any:
    return (seen[-1].get("status") if seen else None) or "no status"


def eventually(check: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout}s: {check}")
        time.sleep(interval)
