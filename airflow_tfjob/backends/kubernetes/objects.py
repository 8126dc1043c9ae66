"""What the shared watches keep of an object, and where they route it.

A store of 20,000 objects is kept for hours by a triggerer: ``slim`` keeps only what a follower
reads (``rules.follow``, ``rules.status``, ``rules.report``), and ``packed`` keeps that as compact
JSON. Jobs (TFJobs, or TrainJobs read as TFJobs) are routed by their name, pods by their job's
label; ``pods_kind`` says which of the two pod watches sees a job's pods.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast

from airflow_tfjob.model import naming
from airflow_tfjob.model.kube import KubeObject, ObjectMeta
from airflow_tfjob.rules.status import JOB_NAME_LABEL

PODS, OUR_PODS = "pods", "our-pods"
"""The two pod watches: every job's pods, and only those the provider labelled."""

_META_KEPT = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "labels",
    "creationTimestamp",
    "deletionTimestamp",
)

_POD_STATUS_KEPT = ("phase", "reason", "message", "startTime", "containerStatuses")
"""What ``rules.status`` reads of a pod's status (its conditions, addresses and QoS class not)."""


def by_name(obj: KubeObject) -> str | None:
    """Jobs are routed by their own name."""
    return (obj.get("metadata") or {}).get("name")


def by_job_label(obj: KubeObject) -> str | None:
    """Pods are routed by the operator's job-name label (a TrainJob's pods get it from
    ``rules.trainjobview``)."""
    return ((obj.get("metadata") or {}).get("labels") or {}).get(JOB_NAME_LABEL)


def own_key(obj: KubeObject) -> str:
    """Where a store keeps an object among its routed name's: by uid, as a re-created replica's
    pod takes the dead one's name (the old pod's late DELETED must not drop the new one)."""
    meta = obj.get("metadata") or {}
    return str(meta.get("uid") or meta.get("name") or "")


def slim(kind: str, obj: KubeObject) -> KubeObject:
    """What a follower reads of an object (``rules.follow``, ``rules.status``, ``rules.report``):
    identity, labels and times; a TFJob's status, run policy and replica counts and policies, and
    of its pod templates only their labels (``pods_kind``); a pod's phase, reason, message and
    container statuses. A pod's spec and every ``managedFields`` are left out."""
    meta: Mapping[str, Any] = obj.get("metadata") or {}
    kept: KubeObject = {"metadata": cast(ObjectMeta, {k: meta[k] for k in _META_KEPT if k in meta})}
    state = obj.get("status")
    if state is not None and kind != "tfjobs" and isinstance(state, dict):
        state = {k: state[k] for k in _POD_STATUS_KEPT if k in state}
    if state is not None:
        kept["status"] = state
    if kind == "tfjobs" and "spec" in obj:
        spec = obj["spec"] or {}
        replicas = spec.get("tfReplicaSpecs") or {}
        kept["spec"] = {k: v for k, v in spec.items() if k != "tfReplicaSpecs"}
        kept["spec"]["tfReplicaSpecs"] = {
            rtype: {k: v for k, v in (rspec or {}).items() if k != "template"}
            | _template_labels(rspec or {})
            for rtype, rspec in replicas.items()
        }
    return kept


def _pod_labels(rspec: dict[str, Any]) -> dict[str, str]:
    return ((rspec.get("template") or {}).get("metadata") or {}).get("labels") or {}


def _template_labels(rspec: dict[str, Any]) -> dict[str, Any]:
    labels = _pod_labels(rspec)
    return {"template": {"metadata": {"labels": labels}}} if labels else {}


def pods_kind(job: KubeObject) -> str:
    """The pod watch that sees ``job``'s pods: ``OUR_PODS`` when every replica's pod template
    carries the provider's labels, else ``PODS`` (a TrainJob's, whose view has no templates)."""
    replicas = ((job.get("spec") or {}).get("tfReplicaSpecs") or {}).values()
    labelled = [naming.POD_SELECTOR in _pod_labels(rspec or {}) for rspec in replicas]
    return OUR_PODS if labelled and all(labelled) else PODS


def packed(obj: KubeObject) -> str:
    """How the store keeps an object: as compact JSON, a third of the size of its dicts, and
    nothing for the garbage collector to walk (a store of 20,000 objects as dicts is some
    200,000 containers, traversed by every full collection)."""
    return json.dumps(obj, separators=(",", ":"))
