"""What the process kubelet reads from pods: the training operator's labels and container name.

The operator (v1.9) labels every replica pod with its job, replica type (lowercased) and index,
and runs the replica's code in the container named ``tensorflow``.
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


def stamp(when: datetime.datetime) -> str:
    """A Kubernetes timestamp (whole seconds, as the server stores them)."""
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def replica_of(pod: Obj) -> tuple[str, str, int]:
    """``(job name, replica type lowercased, index)`` from the operator's labels."""
    labels = pod["metadata"].get("labels") or {}
    return (
        labels.get(LABEL_JOB, ""),
        labels.get(LABEL_TYPE, "").lower(),
        int(labels.get(LABEL_INDEX, "0") or 0),
    )
