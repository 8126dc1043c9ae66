"""What the process kubelet reads from pods: which container is the replica, and which replica.

Two paths make replica pods. The training operator (v1.9) labels every TFJob replica pod with its
job, replica type (lowercased) and index, and runs the replica's code in the container
``tensorflow``. A Kubeflow Trainer v2 TrainJob ``J`` becomes JobSet ``J``, whose replicated job
``node`` is one Indexed Job ``J-node-0``: every replica is one of its pods, the container is
``node``, and the pod only knows its JobSet (``jobset.sigs.k8s.io/jobset-name``) and its
completion index (``batch.kubernetes.io/job-completion-index``). The provider puts the replica
types in index order on the pod template (:data:`ANNOTATION_LAYOUT`, ``Chief:1,Worker:2,PS:1``),
so a test scripts ``("J", "Worker", 1)`` the same way on both paths: :func:`replica_of` reads the
layout back.
"""

from __future__ import annotations

import datetime
from typing import Any

Obj = dict[str, Any]
"""A Kubernetes object as JSON."""

LABEL_JOB = "training.kubeflow.org/job-name"
LABEL_TYPE = "training.kubeflow.org/replica-type"
LABEL_INDEX = "training.kubeflow.org/replica-index"
LABEL_OPERATOR = "training.kubeflow.org/operator-name"
LABEL_ROLE = "training.kubeflow.org/job-role"
CONTAINER = "tensorflow"
"""The replica's container in a TFJob pod."""

LABEL_JOBSET = "jobset.sigs.k8s.io/jobset-name"
LABEL_REPLICATED_JOB = "jobset.sigs.k8s.io/replicatedjob-name"
LABEL_JOB_INDEX = "jobset.sigs.k8s.io/job-index"
LABEL_COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
"""Set by the Job controller as a label and an annotation (with the same value)."""
ANNOTATION_LAYOUT = "airflow-tfjob/replica-layout"
"""The provider's replica types and counts in completion-index order (airflow_tfjob.rules.
trainjob.LAYOUT_ANNOTATION; not imported: the stand-in reads what is on the pod, as a test of the
provider must)."""
JOBSET_CONTAINER = "node"
"""The replica's container in a TrainJob pod (the runtime's replicated job and container)."""


def stamp(when: datetime.datetime) -> str:
    """A Kubernetes timestamp (whole seconds, as the server stores them)."""
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def main_container(pod: Obj) -> Obj:
    """The container that is the replica: ``tensorflow``, else ``node``, else the first one.

    The others are sidecars (an injected proxy): they run until the pod is deleted. A pod of
    neither kind still runs its first container, so a bare test pod needs no special name.
    """
    containers: list[Obj] = pod["spec"]["containers"]
    for name in (CONTAINER, JOBSET_CONTAINER):
        for container in containers:
            if container["name"] == name:
                return container
    return containers[0]


def parse_layout(text: str) -> list[tuple[str, int]]:
    """``"Chief:1,Worker:2,PS:1,Evaluator:0"`` as ``[("Chief", 1), ...]``, in order.

    Strict: a malformed layout raises ``ValueError`` naming the part, because a pod read with a
    wrong layout would silently run another replica's fate.
    """
    layout = []
    for part in text.split(","):
        rtype, colon, count = (piece.strip() for piece in part.partition(":"))
        if not (rtype and colon and count.isdigit()):
            raise ValueError(f"replica layout {text!r}: {part!r} is not TYPE:COUNT")
        layout.append((rtype, int(count)))
    return layout


def position(layout: list[tuple[str, int]], index: int) -> tuple[str, int]:
    """``(type, index within the type)`` of completion index ``index`` under ``layout``."""
    first = 0
    for rtype, count in layout:
        if first <= index < first + count:
            return rtype, index - first
        first += count
    raise ValueError(f"completion index {index} is past the replica layout ({first} replicas)")


def completion_index(pod: Obj) -> int | None:
    """The pod's completion index in its Indexed Job (label, else annotation), if it has one."""
    meta = pod["metadata"]
    for table in (meta.get("labels") or {}, meta.get("annotations") or {}):
        if table.get(LABEL_COMPLETION_INDEX, "").isdigit():
            return int(table[LABEL_COMPLETION_INDEX])
    return None


def replica_of(pod: Obj) -> tuple[str, str, int]:
    """``(job name, replica type lowercased, index)`` of a TFJob or JobSet replica pod.

    A JobSet pod: the job is its JobSet (the TrainJob's name); type and index come from the
    provider's layout annotation and the completion index, or, without the annotation, they are
    the replicated job's name and the completion index. Raises ``ValueError`` for a layout that
    cannot place the pod.
    """
    labels = pod["metadata"].get("labels") or {}
    if LABEL_JOBSET in labels:
        index = completion_index(pod) or 0
        layout = (pod["metadata"].get("annotations") or {}).get(ANNOTATION_LAYOUT)
        if layout is None:
            return labels[LABEL_JOBSET], labels.get(LABEL_REPLICATED_JOB, "").lower(), index
        rtype, within = position(parse_layout(layout), index)
        return labels[LABEL_JOBSET], rtype.lower(), within
    return (
        labels.get(LABEL_JOB, ""),
        labels.get(LABEL_TYPE, "").lower(),
        int(labels.get(LABEL_INDEX, "0") or 0),
    )
