"""Pure helpers that turn a TFJob into the objects the training operator v1.9 creates.

Names, labels, owner references, ``TF_CONFIG`` and the pod/service manifests, as the operator's
``tfjob_controller.go`` builds them. No API calls here: the operator module does the I/O.
"""

from __future__ import annotations

import copy
import json
from typing import Any

Obj = dict[str, Any]
"""A Kubernetes object as JSON."""

LABEL_JOB = "training.kubeflow.org/job-name"
LABEL_TYPE = "training.kubeflow.org/replica-type"
LABEL_INDEX = "training.kubeflow.org/replica-index"
LABEL_OPERATOR = "training.kubeflow.org/operator-name"
LABEL_ROLE = "training.kubeflow.org/job-role"
OPERATOR_NAME = "tfjob-controller"
CONTAINER = "tensorflow"
PORT_NAME = "tfjob-port"
DEFAULT_PORT = 2222
CHIEF_TYPES = ("Chief", "Master")
_POD_RESTART_POLICY = {"Always": "Always", "OnFailure": "OnFailure", "ExitCode": "Never"}


def replica_specs(job: Obj) -> dict[str, Obj]:
    """``spec.tfReplicaSpecs``, in the order written."""
    specs: dict[str, Obj] = job["spec"].get("tfReplicaSpecs") or {}
    return specs


def replica_count(spec: Obj) -> int:
    """``replicas`` with the operator's in-memory default of 1."""
    value = spec.get("replicas")
    return 1 if value is None else int(value)


def restart_policy(spec: Obj) -> str:
    """The TFJob-level restart policy, default ``Never``."""
    return str(spec.get("restartPolicy") or "Never")


def has_chief(job: Obj) -> bool:
    """Whether the job has a Chief (or legacy Master) replica spec."""
    return any(t in replica_specs(job) for t in CHIEF_TYPES)


def pod_name(job_name: str, replica_type: str, index: int) -> str:
    """``<job>-<type lowercased>-<index>``, the name of both the pod and its service."""
    return f"{job_name}-{replica_type.lower()}-{index}".replace("/", "-")


def job_labels(job_name: str) -> dict[str, str]:
    """Labels every pod and service of the job carries."""
    return {LABEL_OPERATOR: OPERATOR_NAME, LABEL_JOB: job_name}


def selector(job_name: str, replica_type: str | None = None) -> str:
    """A label selector string for the job's pods (of one replica type)."""
    labels = job_labels(job_name)
    if replica_type is not None:
        labels[LABEL_TYPE] = replica_type.lower()
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def is_master_role(job: Obj, replica_type: str, index: int) -> bool:
    """The chief, or worker 0 of a job without a chief, gets ``job-role=master``."""
    if has_chief(job):
        return replica_type in CHIEF_TYPES
    return replica_type == "Worker" and index == 0


def replica_labels(job: Obj, replica_type: str, index: int) -> dict[str, str]:
    """The operator's labels of one replica's pod and service."""
    labels = job_labels(job["metadata"]["name"])
    labels[LABEL_TYPE] = replica_type.lower()
    labels[LABEL_INDEX] = str(index)
    if is_master_role(job, replica_type, index):
        labels[LABEL_ROLE] = "master"
    return labels


def owner_reference(job: Obj) -> Obj:
    """The controller owner reference pointing at the TFJob."""
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "name": job["metadata"]["name"],
        "uid": job["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def replica_port(spec: Obj) -> int:
    """Port named ``tfjob-port`` of the ``tensorflow`` container, default 2222."""
    for container in spec.get("template", {}).get("spec", {}).get("containers", []):
        if container.get("name") != CONTAINER:
            continue
        for port in container.get("ports") or []:
            if port.get("name") == PORT_NAME:
                return int(port["containerPort"])
    return DEFAULT_PORT


def is_distributed(job: Obj) -> bool:
    """``TF_CONFIG`` is only set when the job has other than exactly one replica in total."""
    return sum(replica_count(spec) for spec in replica_specs(job).values()) != 1


def tf_config(job: Obj, replica_type: str, index: int) -> str:
    """The exact ``TF_CONFIG`` JSON the operator writes (Go's compact encoding, sorted keys)."""
    name, namespace = job["metadata"]["name"], job["metadata"]["namespace"]
    cluster: dict[str, list[str]] = {}
    for rtype, spec in replica_specs(job).items():
        port = replica_port(spec)
        cluster[rtype.lower()] = [
            f"{pod_name(name, rtype, i)}.{namespace}.svc:{port}" for i in range(replica_count(spec))
        ]
    config = {
        "cluster": dict(sorted(cluster.items())),
        "task": {"type": replica_type.lower(), "index": index},
        "environment": "cloud",
    }
    return json.dumps(config, separators=(",", ":"))


def pod_manifest(job: Obj, replica_type: str, index: int, *, node_name: str | None) -> Obj:
    """The pod the operator creates for one replica, bound to ``node_name`` when given."""
    spec = replica_specs(job)[replica_type]
    template = copy.deepcopy(spec.get("template") or {})
    metadata = template.get("metadata") or {}
    labels = {**(metadata.get("labels") or {}), **replica_labels(job, replica_type, index)}
    pod_spec = template.get("spec") or {}
    pod_spec["restartPolicy"] = _POD_RESTART_POLICY.get(restart_policy(spec), "Never")
    if node_name is not None:
        pod_spec["nodeName"] = node_name
    for container in pod_spec.get("containers", []):
        if container.get("name") == CONTAINER:
            _prepare_container(container, job, replica_type, index)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(job["metadata"]["name"], replica_type, index),
            "namespace": job["metadata"]["namespace"],
            "labels": labels,
            "annotations": metadata.get("annotations") or {},
            "ownerReferences": [owner_reference(job)],
        },
        "spec": pod_spec,
    }


def _prepare_container(container: Obj, job: Obj, replica_type: str, index: int) -> None:
    ports = container.setdefault("ports", [])
    if not any(p.get("name") == PORT_NAME for p in ports):
        ports.append({"name": PORT_NAME, "containerPort": DEFAULT_PORT})
    if is_distributed(job):
        env = container.setdefault("env", [])
        env.append({"name": "TF_CONFIG", "value": tf_config(job, replica_type, index)})


def service_manifest(job: Obj, replica_type: str, index: int) -> Obj:
    """The headless service the operator creates for one replica."""
    spec = replica_specs(job)[replica_type]
    labels = replica_labels(job, replica_type, index)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": pod_name(job["metadata"]["name"], replica_type, index),
            "namespace": job["metadata"]["namespace"],
            "labels": labels,
            "ownerReferences": [owner_reference(job)],
        },
        "spec": {
            "clusterIP": "None",
            "selector": labels,
            "ports": [{"name": PORT_NAME, "port": replica_port(spec)}],
        },
    }


def owned_by(obj: Obj, uid: str) -> bool:
    """Whether ``obj`` has an owner reference to the object with ``uid``."""
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid for ref in refs)
