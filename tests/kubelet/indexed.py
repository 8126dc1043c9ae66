"""TrainJob pods and Indexed Jobs as JobSet and the Job controller make them, written by hand.

A test of the kubelet's half of the TrainJob path needs neither controller: :func:`pod` is pod
``i`` of TrainJob ``J`` (the Job controller's name, hostname, completion index as label,
annotation and ``JOB_COMPLETION_INDEX`` reference, JobSet's labels and subdomain ``J``, the
provider's layout annotation, container ``node``); :func:`job` is the Indexed Job ``J-node-0``
JobSet makes of the provider's runtime (deploy/trainer/tensorflow-runtime.yaml), for the real Job
controller to make those pods of.
"""

from __future__ import annotations

from tests.kubelet import podspec
from tests.kubelet.podspec import Obj

LAYOUT = "Chief:1,Worker:2,PS:1,Evaluator:0"
IMAGE = "tensorflow/tensorflow:2.21.0"
HOLD = "tfjob-test.example.com/held"
"""Holds a deleted pod in the API as the Job controller's ``batch.kubernetes.io/job-tracking``
does. That one cannot serve on a pod written by hand: the Job controller takes it off at once
from pods no Job owns."""
SUFFIX = "x7k2q"
"""Stands for the five random characters the Job controller's ``generateName`` adds."""


def _labels(job: str) -> dict[str, str]:
    return {
        podspec.LABEL_JOBSET: job,
        podspec.LABEL_REPLICATED_JOB: "node",
        podspec.LABEL_JOB_INDEX: "0",
    }


def pod(
    job: str, index: int, *, layout: str | None = LAYOUT, command: list[str] | None = None,
    env: tuple[Obj, ...] = (), held: bool = False,
) -> Obj:  # fmt: skip
    """Pod ``index`` of TrainJob ``job`` (named ``<job>-node-0-<index>-x7k2q``); ``held``: with
    the finalizer :data:`HOLD`."""
    labels = {**_labels(job), podspec.LABEL_COMPLETION_INDEX: str(index)}
    annotations = {**labels, **({podspec.ANNOTATION_LAYOUT: layout} if layout else {})}
    index_ref = f"metadata.labels['{podspec.LABEL_COMPLETION_INDEX}']"
    from_label = {"fieldRef": {"fieldPath": index_ref}}
    container: Obj = {"name": podspec.JOBSET_CONTAINER, "image": IMAGE}
    container["env"] = [*env, {"name": "JOB_COMPLETION_INDEX", "valueFrom": from_label}]
    if command is not None:
        container["command"] = command
    metadata: Obj = {"name": f"{job}-node-0-{index}-{SUFFIX}", "labels": labels}
    metadata.update(annotations=annotations, finalizers=[HOLD] if held else [])
    spec = {"hostname": f"{job}-node-0-{index}", "subdomain": job, "restartPolicy": "Never"}
    return {"metadata": metadata, "spec": {**spec, "containers": [container]}}


def job(name: str, layout: str) -> Obj:
    """The Indexed Job ``<name>-node-0`` of TrainJob ``name``: one pod per replica of
    ``layout``, index 0 decides (``successPolicy``), any failure fails it (``backoffLimit`` 0)."""
    size = sum(count for _, count in podspec.parse_layout(layout))
    labels = _labels(name)
    template = {
        "metadata": {
            "labels": labels,
            "annotations": {**labels, podspec.ANNOTATION_LAYOUT: layout},
        },
        "spec": {
            "subdomain": name,
            "restartPolicy": "Never",
            "containers": [{"name": podspec.JOBSET_CONTAINER, "image": IMAGE}],
        },
    }
    spec = {"completionMode": "Indexed", "completions": size, "parallelism": size}
    spec.update(backoffLimit=0, successPolicy={"rules": [{"succeededIndexes": "0"}]})
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": f"{name}-node-0", "labels": labels},
        "spec": {**spec, "template": template},
    }
