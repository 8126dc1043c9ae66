"""A Kubeflow Trainer v2 TrainJob and its pods read as the TFJob and pods the provider follows
(``rules.status`` and everything above it read those), so each wait, report, reaper and page
works on either API unchanged. Pure: no I/O. The layout annotation that makes this possible is
written by ``rules.trainjob.to_trainjob``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_tfjob.model.kube import KubeObject, ObjectMeta
from airflow_tfjob.rules.entrypoint import STEP
from airflow_tfjob.rules.trainjob import LAYOUT_ANNOTATION, parse_layout, replica_at

JOBSET_NAME_LABEL = "jobset.sigs.k8s.io/jobset-name"
"""On every pod of a TrainJob (the JobSet has the TrainJob's name)."""
INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
_CONDITIONS = {"Complete": "Succeeded", "Failed": "Failed", "Suspended": "Suspended"}


def job_view(trainjob: KubeObject) -> KubeObject:
    """A TrainJob as a TFJob: ``tfReplicaSpecs`` counts from its layout, and conditions in the
    training operator's words (``Complete`` → ``Succeeded``; ``Created``/``Running`` from the
    child Jobs). ``startTime`` is the creation time (a TrainJob records none); ``completionTime``
    the terminal condition's."""
    meta = trainjob.get("metadata") or {}
    spec = trainjob.get("spec") or {}
    status = trainjob.get("status") or {}
    parsed = parse_layout((meta.get("annotations") or {}).get(LAYOUT_ANNOTATION, ""))
    conditions: list[Mapping[str, Any]] = []
    jobs = status.get("jobsStatus") or []
    if jobs:
        since = meta.get("creationTimestamp")
        conditions.append({"type": "Created", "status": "True", "lastTransitionTime": since})
        if any((j.get("active") or 0) > 0 for j in jobs):
            conditions.append({"type": "Running", "status": "True", "reason": "JobsActive"})
    completion = None
    for condition in status.get("conditions") or []:
        mapped = _CONDITIONS.get(str(condition.get("type")))
        if mapped is None:
            continue
        conditions.append({**condition, "type": mapped})
        if mapped in ("Succeeded", "Failed") and condition.get("status") == "True":
            completion = condition.get("lastTransitionTime")
    run_policy = {}
    if spec.get("activeDeadlineSeconds"):
        run_policy["activeDeadlineSeconds"] = spec["activeDeadlineSeconds"]
    times = {"startTime": meta.get("creationTimestamp"), "completionTime": completion}
    return {
        **trainjob,
        "spec": {
            "tfReplicaSpecs": {rtype: {"replicas": n} for rtype, n in parsed},
            "runPolicy": run_policy,
        },
        "status": {"conditions": conditions, **{k: v for k, v in times.items() if v}},
    }


def pod_view(pod: KubeObject, job_label: str, type_label: str, index_label: str) -> KubeObject:
    """A TrainJob's pod as a TFJob's: the training operator's labels (``job_label`` and the
    others, given by the caller) from JobSet's and the layout, and its ``node`` container
    named ``tensorflow``. Any other pod is returned as it is."""
    meta = ObjectMeta(**(pod.get("metadata") or {}))
    labels: dict[str, str] = dict(meta.get("labels") or {})
    job = labels.get(JOBSET_NAME_LABEL)
    if not job or job_label in labels:
        return pod
    parsed = parse_layout((meta.get("annotations") or {}).get(LAYOUT_ANNOTATION, ""))
    index = str(labels.get(INDEX_LABEL, ""))
    replica = replica_at(parsed, int(index)) if index.isdigit() else None
    labels[job_label] = job
    if replica is not None:
        labels[type_label] = replica[0].lower()
        labels[index_label] = str(replica[1])
    meta["labels"] = labels
    status = dict(pod.get("status") or {})
    status["containerStatuses"] = [
        {**cs, "name": "tensorflow"} if cs.get("name") == STEP else cs
        for cs in status.get("containerStatuses") or []
    ]
    return {**pod, "metadata": meta, "status": status}
