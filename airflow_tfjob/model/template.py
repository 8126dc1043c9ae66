"""Checks for a raw TFJob manifest given as ``tfjob_template`` (a dict, YAML or JSON).

First the CRD's own schema, read as a closed one (``closed``: types and shapes, what the API server
would refuse with a 422, and Kubernetes' core rules), then what neither the schema nor the training
operator's webhook catches (CONTRACT.md): replica counts, enum values, a chief or evaluator more
than once, the ``tensorflow`` container. All before anything is submitted.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, cast

from airflow_tfjob.model import checks, core, enums
from airflow_tfjob.model.enums import CleanPodPolicy, RestartPolicy, SuccessPolicy
from airflow_tfjob.model.errors import TFJobSpecError
from airflow_tfjob.model.job import API_VERSION, KIND
from airflow_tfjob.model.kube import KubeObject
from airflow_tfjob.model.replicas import CONTAINER_NAME

REPLICA_TYPES = ("Chief", "Master", "PS", "Worker", "Evaluator")
SINGLETONS = ("Chief", "Master", "Evaluator")
MANAGERS = ("kubeflow.org/training-operator", "kueue.x-k8s.io/multikueue")
"""``runPolicy.managedBy`` values the training operator's webhook accepts (v1.9.4)."""


def normalize(template: Mapping[str, Any]) -> KubeObject:
    """A full manifest from a manifest, a ``{"spec": ...}`` or a bare spec; checked."""
    if not isinstance(template, Mapping):
        raise TFJobSpecError(
            "tfjob_template", template, "must be a mapping (a TFJob manifest or its spec)"
        )
    manifest = copy.deepcopy(dict(template))
    if "tfReplicaSpecs" in manifest:
        manifest = {"spec": manifest}
    manifest.setdefault("apiVersion", API_VERSION)
    manifest.setdefault("kind", KIND)
    if (manifest["apiVersion"], manifest["kind"]) != (API_VERSION, KIND):
        raise TFJobSpecError(
            "tfjob_template.apiVersion/kind",
            (manifest["apiVersion"], manifest["kind"]),
            f"must be {API_VERSION} {KIND}",
        )
    spec = manifest.get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("tfReplicaSpecs"), dict):
        raise TFJobSpecError(
            "tfjob_template.spec.tfReplicaSpecs", spec, "is required: a mapping of replica types"
        )
    core.manifest(manifest, "tfjob_template")  # types and shapes first: the checks below trust them
    _check_replicas(spec["tfReplicaSpecs"])
    _check_policies(spec)
    return cast(KubeObject, manifest)  # a manifest, its schema checked


def _check_replicas(specs: dict[str, Any]) -> None:
    field = "tfjob_template.spec.tfReplicaSpecs"
    for rtype, rspec in specs.items():
        where = f"{field}.{rtype}"
        if rtype not in REPLICA_TYPES:
            raise TFJobSpecError(where, rtype, f"replica types are {', '.join(REPLICA_TYPES)}")
        if not isinstance(rspec, dict):
            raise TFJobSpecError(where, rspec, "must be a ReplicaSpec mapping")
        replicas = checks.integer(rspec.get("replicas", 1), f"{where}.replicas")
        if rtype in SINGLETONS and replicas > 1:
            raise TFJobSpecError(
                f"{where}.replicas", replicas, f"TensorFlow allows at most one {rtype}"
            )
        if "restartPolicy" in rspec:
            rspec["restartPolicy"] = enums.parse(
                RestartPolicy, rspec["restartPolicy"], f"{where}.restartPolicy"
            ).value
        containers = ((rspec.get("template") or {}).get("spec") or {}).get("containers") or []
        if not any(isinstance(c, dict) and c.get("name") == CONTAINER_NAME for c in containers):
            raise TFJobSpecError(
                f"{where}.template.spec.containers",
                containers,
                f"needs a container named '{CONTAINER_NAME}'",
            )
    if "Chief" in specs and "Master" in specs:
        raise TFJobSpecError(
            field, sorted(specs), "Chief and Master are one role: give one of them, not both"
        )
    counts = {t: int(s.get("replicas", 1)) for t, s in specs.items()}
    if not (counts.get("Chief") or counts.get("Master") or counts.get("Worker")):
        raise TFJobSpecError(
            field,
            sorted(specs),
            "a job needs a Chief or at least one Worker, or it can never succeed",
        )


def _check_policies(spec: dict[str, Any]) -> None:
    policy = spec.setdefault("runPolicy", {})
    if "managedBy" in policy and policy["managedBy"] not in MANAGERS:
        raise TFJobSpecError(
            "tfjob_template.spec.runPolicy.managedBy",
            policy["managedBy"],
            f"the training operator accepts {' or '.join(MANAGERS)}",
        )
    if "cleanPodPolicy" in policy:
        policy["cleanPodPolicy"] = enums.parse(
            CleanPodPolicy, policy["cleanPodPolicy"], "tfjob_template.spec.runPolicy.cleanPodPolicy"
        ).value
    if "successPolicy" in spec:
        spec["successPolicy"] = enums.parse(
            SuccessPolicy, spec["successPolicy"], "tfjob_template.spec.successPolicy"
        ).value


def images_missing(manifest: KubeObject) -> list[str]:
    """Replica types whose ``tensorflow`` container has no image."""
    missing = []
    for rtype, rspec in manifest["spec"]["tfReplicaSpecs"].items():
        for container in rspec["template"]["spec"]["containers"]:
            if container.get("name") == CONTAINER_NAME and not container.get("image"):
                missing.append(rtype)
    return missing
