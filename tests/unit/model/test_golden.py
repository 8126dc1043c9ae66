"""Golden manifests for the seed's shapes; regenerate with UPDATE_GOLDEN=1 after a deliberate change
and read the diff: these files are what users' clusters receive."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_tfjob import (
    PS,
    Chief,
    CleanPodPolicy,
    Evaluator,
    Resources,
    RestartPolicy,
    RunPolicy,
    TfJob,
    Worker,
)

GOLDEN = Path(__file__).parent / "golden"


def chief_ps_workers() -> TfJob:
    return TfJob(
        chief=Chief(image="tensorflow/tensorflow:2.16.1", requests=Resources(cpu="1", mem="2Gi")),
        ps=PS(replicas=2, requests=Resources(cpu="500m", mem="1Gi")),
        worker=Worker(
            replicas=3,
            requests=Resources(cpu="2", mem="4Gi"),
            limits=Resources(cpu="4", mem="8Gi", gpu=1),
            restart_policy=RestartPolicy.EXIT_CODE,
            command=["python", "/app/train.py"],
            args=["--epochs", "10"],
            env={"TF_CPP_MIN_LOG_LEVEL": "2"},
        ),
    )


def with_evaluator() -> TfJob:
    return TfJob(
        chief=Chief(),
        worker=Worker(replicas=2),
        evaluator=Evaluator(image="trainer:eval", restart_policy="OnFailure"),
    )


def with_run_policy() -> TfJob:
    return TfJob(
        worker=Worker(replicas=4),
        run_policy=RunPolicy(
            clean_pod_policy=CleanPodPolicy.ALL,
            ttl_seconds_after_finished=3600,
            active_deadline_seconds=7200,
            backoff_limit=3,
        ),
        success_policy="AllWorkers",
    )


def legacy_num_arguments() -> TfJob:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return TfJob(
            chief=Chief(image="tf:legacy"),
            num_workers=2,
            num_ps_replicas=1,
            num_evaluator_replicas=1,
        )


def pod_template_escape_hatch() -> TfJob:
    return TfJob(
        worker=Worker(
            replicas=2,
            env={"MODE": "train"},
            tolerations=[{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
            volume_mounts=[{"name": "data", "mountPath": "/data"}],
            volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "train-data"}}],
            labels={"team": "vision"},
            pod_template={
                "metadata": {"labels": {"app": "mnist"}},
                "spec": {
                    "priorityClassName": "training",
                    "tolerations": [{"key": "spot", "operator": "Exists"}],
                    "containers": [
                        {
                            "name": "tensorflow",
                            "image": "from-template:1",
                            "env": [
                                {"name": "MODE", "value": "overridden"},
                                {"name": "KEEP", "value": "1"},
                            ],
                            "securityContext": {"runAsNonRoot": True},
                        },
                        {"name": "sidecar", "image": "busybox", "args": ["sleep", "inf"]},
                    ],
                },
            },
        ),
    )


CASES: dict[str, Callable[[], TfJob]] = {
    "chief_ps_workers": chief_ps_workers,
    "with_evaluator": with_evaluator,
    "with_run_policy": with_run_policy,
    "legacy_num_arguments": legacy_num_arguments,
    "pod_template_escape_hatch": pod_template_escape_hatch,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_manifest_matches_the_golden_file(case: str) -> None:
    manifest = CASES[case]().to_manifest(
        "mnist",
        "ml",
        image="tensorflow/tensorflow:2.16.1",
        labels={"airflow.apache.org/dag-id": "train"},
    )
    text = json.dumps(manifest, indent=2) + "\n"
    path = GOLDEN / f"{case}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_the_same_description_renders_byte_identical_json() -> None:
    first = json.dumps(chief_ps_workers().to_manifest("a", "b", image="i"))
    assert all(
        json.dumps(chief_ps_workers().to_manifest("a", "b", image="i")) == first for _ in range(5)
    )
