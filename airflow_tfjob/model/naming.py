"""Deterministic, label-safe names for what Airflow creates.

A task instance always gets the same job name (every try, every worker), so a retried or
restarted worker finds the job it created instead of creating another: a readable prefix from the
dag and task ids plus a hash of (dag_id, task_id, run_id, map_index).
"""

from __future__ import annotations

import hashlib
import re
from typing import TypedDict

from airflow_tfjob.model import checks
from airflow_tfjob.model.job import MAX_NAME_LENGTH
from airflow_tfjob.model.kube import KubeObject

LABEL_PREFIX = "airflow-tfjob"
MANAGED_BY = {"app.kubernetes.io/managed-by": "airflow-tfjob"}
DEPLOYMENT_LABEL = f"{LABEL_PREFIX}/deployment"
"""Names the Airflow deployment that created a job: its reaper touches no other's."""
POD_SELECTOR = f"{LABEL_PREFIX}/dag-id"
"""Selects the pods of the jobs the provider created: each replica's pod template carries the
task instance's identity labels (``identity``), and the training operator copies a template's
labels to its pods (a TrainJob's pods get them from its runtime patch: ``rules.trainjob``)."""
_HASH_CHARS = 10


class TaskIdentity(TypedDict):
    """The task instance that created a job (read from its annotations: ``task_identity``)."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    """-1 for a task that is not mapped."""


def _digest(*parts: object) -> str:
    joined = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(joined.encode()).hexdigest()[:_HASH_CHARS]


def job_name(
    dag_id: str, task_id: str, run_id: str, map_index: int = -1, *, limit: int = MAX_NAME_LENGTH
) -> str:
    """``<dag>-<task>-<hash>``: a DNS-1035 label of at most ``limit`` characters (a TrainJob's
    pods have longer suffixes than a TFJob's: ``rules.trainjob.DERIVED_NAME_MAX``)."""
    stem = re.sub(r"[^a-z0-9]+", "-", f"{dag_id}-{task_id}".lower()).strip("-")
    stem = stem[: limit - _HASH_CHARS - 1].strip("-")
    if not stem or not stem[0].isalpha():
        stem = f"tfjob-{stem}"[: limit - _HASH_CHARS - 1].strip("-")
    return f"{stem}-{_digest(dag_id, task_id, run_id, map_index)}"


def label_value(value: object) -> str:
    """``value`` as a valid label value: unchanged when it already is one, else sanitized + hash."""
    text = str(value)
    if len(text) <= checks.DNS_LABEL_MAX and re.fullmatch(
        r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?", text
    ):
        return text
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-_.")
    safe = safe[: checks.DNS_LABEL_MAX - _HASH_CHARS - 1].rstrip("-_.")
    return f"{safe}-{_digest(text)}" if safe else _digest(text)


def task_labels(
    dag_id: str,
    task_id: str,
    run_id: str,
    map_index: int,
    try_number: int,
    *,
    deployment: str | None = None,
) -> dict[str, str]:
    """Labels that tie a job to its task instance (selectable) and to the Airflow deployment
    that created it, made label-safe."""
    raw = {"dag-id": dag_id, "task-id": task_id, "run-id": run_id, "map-index": map_index}
    labels = {f"{LABEL_PREFIX}/{k}": label_value(v) for k, v in raw.items()}
    labels[f"{LABEL_PREFIX}/try-number"] = label_value(try_number)
    if deployment is not None:
        labels[DEPLOYMENT_LABEL] = label_value(deployment)
    return {**MANAGED_BY, **labels}


def task_annotations(dag_id: str, task_id: str, run_id: str, map_index: int) -> dict[str, str]:
    """The same identity unabridged (annotations have no length or character limits)."""
    raw = {"dag-id": dag_id, "task-id": task_id, "run-id": run_id, "map-index": map_index}
    return {f"{LABEL_PREFIX}/{k}": str(v) for k, v in raw.items()}


def identity(labels: dict[str, str]) -> dict[str, str]:
    """The labels every try of the task instance shares, from ``task_labels``' output."""
    keys = [f"{LABEL_PREFIX}/{k}" for k in ("dag-id", "task-id", "run-id", "map-index")]
    return {key: labels[key] for key in keys}


def selector(deployment: str | None = None) -> str:
    """Label selector of the jobs the provider created (of one deployment, if given)."""
    labels = {**MANAGED_BY, **({DEPLOYMENT_LABEL: label_value(deployment)} if deployment else {})}
    return ",".join(f"{k}={v}" for k, v in labels.items())


def task_identity(obj: KubeObject) -> TaskIdentity | None:
    """``{dag_id, task_id, run_id, map_index}`` of the task instance that created a job, read
    from the annotations ``task_annotations`` wrote (unabridged, unlike labels)."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    keys = ("dag-id", "task-id", "run-id", "map-index")
    values = [annotations.get(f"{LABEL_PREFIX}/{k}") for k in keys]
    if any(v is None for v in values):
        return None
    dag_id, task_id, run_id, map_index = (str(v) for v in values)
    try:
        index = int(map_index)
    except ValueError:
        return None
    return {"dag_id": dag_id, "task_id": task_id, "run_id": run_id, "map_index": index}


def labelled_identity(obj: KubeObject, deployment: str) -> TaskIdentity | None:
    """The task identity of a job this provider created for ``deployment``, ``None`` for any
    other. Annotations are free text anyone who may create a job can write: the identity they
    name counts only when the labels ``task_labels`` set agree with it (``managed-by``, this
    deployment, and each identity label the label-safe form of its annotation)."""
    found = task_identity(obj)
    if found is None:
        return None
    labels = (obj.get("metadata") or {}).get("labels") or {}
    expected = task_labels(
        found["dag_id"], found["task_id"], found["run_id"], found["map_index"], 0,
        deployment=deployment,
    )  # fmt: skip
    del expected[f"{LABEL_PREFIX}/try-number"]
    return found if all(labels.get(k) == v for k, v in expected.items()) else None
