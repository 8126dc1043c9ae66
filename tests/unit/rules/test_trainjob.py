"""The TrainJob translation (rules.trainjob) and its read-back (rules.trainjobview), pure."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_tfjob.hooks import _resource as res
from airflow_tfjob.model.errors import TFJobSpecError
from airflow_tfjob.model.tfconfig import tf_config
from airflow_tfjob.rules import entrypoint, status, trainjob, trainjobview

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = ROOT / "tests" / "unit" / "model" / "golden" / "chief_ps_workers.json"
EXAMPLE_PS = ROOT / "tests" / "operators" / "golden" / "example_tfjob_ps.train_ps.yaml"


def _tfjob() -> dict[str, Any]:
    manifest = json.loads(GOLDEN.read_text())
    manifest["spec"]["tfReplicaSpecs"]["Worker"]["restartPolicy"] = "Never"
    return manifest


def _run(command: list[str], index: int) -> dict[str, str]:
    """What the entry point exports and execs for completion index ``index``: the replica's
    command is replaced by ``env``, so its output is the environment the command would get."""
    env = {"JOB_COMPLETION_INDEX": str(index), "PATH": os.environ["PATH"]}
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_every_replica_gets_the_operators_tf_config() -> None:
    manifest = _tfjob()
    for spec in manifest["spec"]["tfReplicaSpecs"].values():
        spec["template"]["spec"]["containers"][0]["command"] = ["env"]
        spec["template"]["spec"]["containers"][0].pop("args", None)
    job = trainjob.to_trainjob(manifest)
    counts = {"Chief": 1, "Worker": 3, "PS": 2}
    assert job["spec"]["trainer"]["numNodes"] == 6
    assert job["metadata"]["annotations"][trainjob.LAYOUT_ANNOTATION] == "Chief:1,Worker:3,PS:2"
    first = {"Chief": 0, "Worker": 1, "PS": 4}  # each type's first completion index
    seen = []
    for index in range(6):
        env = _run(job["spec"]["trainer"]["command"], index)
        rtype, k = trainjob.replica_at(trainjob.parse_layout("Chief:1,Worker:3,PS:2"), index) or (
            "",
            0,
        )

        def address(kind: str, i: int) -> str:
            return entrypoint.host("mnist", first[kind] + i, 2222)

        assert json.loads(env["TF_CONFIG"]) == json.loads(tf_config(counts, address, rtype, k))
        # the Worker's own env var is the Worker's only
        assert ("TF_CPP_MIN_LOG_LEVEL" in env) == (rtype == "Worker")
        seen.append((rtype, k))
        # the Worker's own env var is the Worker's only
        assert ("TF_CPP_MIN_LOG_LEVEL" in env) == (rtype == "Worker")
    assert seen == [("Chief", 0), ("Worker", 0), ("Worker", 1), ("Worker", 2), ("PS", 0), ("PS", 1)]


def test_each_type_execs_its_own_command_and_a_lone_replica_gets_no_tf_config() -> None:
    manifest = _tfjob()
    specs = manifest["spec"]["tfReplicaSpecs"]
    for rtype, spec in specs.items():
        spec["template"]["spec"]["containers"][0]["command"] = ["sh", "-c", f"echo ROLE={rtype}"]
        spec["template"]["spec"]["containers"][0].pop("args", None)
    job = trainjob.to_trainjob(manifest)
    assert _run(job["spec"]["trainer"]["command"], 5)["ROLE"] == "PS"
    alone = copy.deepcopy(manifest)
    alone["spec"]["tfReplicaSpecs"] = {"Worker": specs["Worker"] | {"replicas": 1}}
    alone["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["command"] = [
        "env"
    ]
    env = _run(trainjob.to_trainjob(alone)["spec"]["trainer"]["command"], 0)
    assert "TF_CONFIG" not in env


def test_resources_per_node_are_the_largest_of_each_type() -> None:
    job = trainjob.to_trainjob(_tfjob())
    assert job["spec"]["trainer"]["resourcesPerNode"] == {
        "requests": {"cpu": "2", "memory": "4Gi"},
        "limits": {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": "1"},
    }


def test_the_examples_translate_with_their_identity_on_the_pods() -> None:
    manifest = yaml.safe_load(EXAMPLE_PS.read_text())
    job = trainjob.to_trainjob(manifest)
    assert job["spec"]["runtimeRef"]["name"] == "tensorflow-distributed"
    assert job["spec"]["activeDeadlineSeconds"] == 1800
    assert job["metadata"]["labels"] == manifest["metadata"]["labels"]
    (patch,) = job["spec"]["runtimePatches"]
    pods = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0]
    labels = pods["template"]["spec"]["template"]["metadata"]["labels"]
    chief = manifest["spec"]["tfReplicaSpecs"]["Chief"]["template"]["metadata"]["labels"]
    assert labels == chief


def _refusal(manifest: dict[str, Any]) -> str:
    with pytest.raises(TFJobSpecError) as caught:
        trainjob.to_trainjob(manifest)
    return str(caught.value)


def test_what_a_trainjob_cannot_carry_is_refused_naming_the_field() -> None:
    manifest = _tfjob()
    specs = manifest["spec"]["tfReplicaSpecs"]
    specs["Chief"]["template"]["spec"]["containers"][0]["image"] = "train:1"
    specs["Worker"]["template"]["spec"]["containers"][0]["image"] = "train:1"
    specs["PS"]["template"]["spec"]["containers"][0]["image"] = "ps:1"
    message = _refusal(manifest)
    docs = (ROOT / "docs" / "trainer-v2.md").read_text()
    assert f"TFJobSpecError: {message}" in docs  # the page quotes it as it is
    for change, field in (
        (lambda m: m["spec"]["runPolicy"].update(ttlSecondsAfterFinished=60), "ttl_seconds"),
        (lambda m: m["spec"]["runPolicy"].update(backoffLimit=3), "RunPolicy.backoff_limit"),
        (lambda m: m["spec"]["runPolicy"].update(cleanPodPolicy="All"), "clean_pod_policy"),
        (lambda m: m["spec"]["tfReplicaSpecs"]["PS"].update(restartPolicy="OnFailure"), "PS."),
        (lambda m: m["metadata"].update(name="n" * 50), "name: got"),
    ):
        again = _tfjob()
        change(again)
        assert field in _refusal(again)


def test_a_trainjob_reads_as_a_tfjob() -> None:
    job = trainjob.to_trainjob(_tfjob())
    job["metadata"]["creationTimestamp"] = "2026-12-07T10:00:00Z"
    job["status"] = {
        "jobsStatus": [{"name": "node", "active": 6}],
        "conditions": [
            {"type": "Complete", "status": "True", "reason": "AllJobsCompleted",
             "message": "jobset completed successfully", "lastTransitionTime": "2026-12-07T10:05:00Z"},
        ],
    }  # fmt: skip
    view = trainjobview.job_view(job)
    state = status.job_state(view)
    assert state.phase == "Succeeded"
    assert state.start_time == "2026-12-07T10:00:00Z"
    assert state.completion_time == "2026-12-07T10:05:00Z"
    assert status.replica_counts(view) == {"Chief": 1, "Worker": 3, "PS": 2}
    assert status.output_replica(status.replica_counts(view)) == "chief-0"


def test_a_trainjob_pod_reads_as_a_tfjob_pod() -> None:
    pod = {
        "metadata": {
            "name": "mnist-node-0-4-abcde",
            "uid": "u",
            "labels": {trainjobview.JOBSET_NAME_LABEL: "mnist", trainjobview.INDEX_LABEL: "4"},
            "annotations": {trainjob.LAYOUT_ANNOTATION: "Chief:1,Worker:3,PS:2"},
        },
        "status": {
            "containerStatuses": [
                {"name": "node", "state": {"terminated": {"exitCode": 3, "message": "boom"}}}
            ]
        },
    }
    view = res.TRAINJOB.pod(pod)  # type: ignore[arg-type]
    outcome = status.replica_outcome(view)
    assert (outcome.replica, outcome.exit_code, outcome.message) == ("ps-0", 3, "boom")
    assert res.pods_selector("mnist", api=res.TRAINJOB) == "jobset.sigs.k8s.io/jobset-name=mnist"
    assert res.TRAINJOB.log_container("tensorflow") == "node"
    assert re.fullmatch(r"trainjobs\.trainer\.kubeflow\.org", res.TRAINJOB.resource)


def test_the_operator_refuses_at_parse_time_what_a_trainjob_cannot_carry() -> None:
    from airflow_tfjob import PS, Chief, TfJob, Worker
    from airflow_tfjob.operators.tfjob import TFJobOperator

    job = TfJob(chief=Chief(image="train:1"), worker=Worker(replicas=2), ps=PS(image="ps:1"))
    TFJobOperator(task_id="fits_a_tfjob", tfjob=job, image="train:1", command=["t"])
    with pytest.raises(TFJobSpecError, match=r"^PS\.image: got 'ps:1'; must equal Chief\.image"):
        TFJobOperator(
            task_id="not_a_trainjob", tfjob=job, image="train:1", command=["t"], api="trainjob"
        )
    with pytest.raises(TFJobSpecError, match="api: got 'v2'; must be one of 'tfjob', 'trainjob'"):
        TFJobOperator(task_id="bad_api", tfjob=job, image="x", command=["t"], api="v2")


def test_a_derived_name_fits_a_trainjobs_pods() -> None:
    from airflow_tfjob.model import naming

    long = ("live_example_tfjob_function_trainjob", "train", "manual__2026-12-07", -1)
    assert len(naming.job_name(*long)) == 51  # a TFJob's pods allow it
    name = naming.job_name(*long, limit=trainjob.DERIVED_NAME_MAX)
    assert len(name) == trainjob.DERIVED_NAME_MAX == 46
    manifest = _tfjob()
    manifest["metadata"]["name"] = name
    manifest["spec"]["tfReplicaSpecs"]["Worker"]["replicas"] = 997  # 1,000 replicas in all
    assert trainjob.to_trainjob(manifest)["metadata"]["name"] == name


def test_a_trainjobs_replica_statuses_come_from_its_pods() -> None:
    ledger = status.ReplicaLedger("chief-0")
    for name, index, state in (
        ("t-node-0-0-a", 0, {"terminated": {"exitCode": 0}}),
        ("t-node-0-1-b", 1, {"terminated": {"exitCode": 0}}),
        ("t-node-0-2-c", 2, {"running": {}}),
    ):
        pod = {
            "metadata": {
                "name": name,
                "uid": name,
                "labels": {
                    trainjobview.JOBSET_NAME_LABEL: "t",
                    trainjobview.INDEX_LABEL: str(index),
                },
                "annotations": {trainjob.LAYOUT_ANNOTATION: "Chief:1,Worker:1,PS:1"},
            },
            "status": {"containerStatuses": [{"name": "node", "state": state}]},
        }
        ledger.observe(res.TRAINJOB.pod(pod))  # type: ignore[arg-type]
    assert ledger.replica_statuses() == {
        "Chief": {"succeeded": 1},
        "Worker": {"succeeded": 1},
        "PS": {"active": 1},
    }


def test_a_cluster_without_the_trainjob_crd_is_told_so() -> None:
    from airflow_tfjob import errors

    error = errors.translate(
        404, "Not Found", "404 page not found", verb="create",
        resource=res.TRAINJOB.resource, namespace="ml", name="x",
    )  # fmt: skip
    assert isinstance(error, errors.TFJobCRDNotInstalled)
    assert str(error).startswith(
        "cannot create trainjobs.trainer.kubeflow.org ml/x: the TrainJob CRD is not installed"
    )
    assert "is Kubeflow Trainer v2 deployed" in str(error)
