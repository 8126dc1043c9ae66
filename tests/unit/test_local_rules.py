"""The local backend's pure parts: the training operator's decisions, the status it writes,
``TF_CONFIG``, and what a replica runs (CONTRACT.md)."""

from __future__ import annotations

import json

import pytest

from airflow_tfjob import Chief, Evaluator, TfJob, TFJobSpecError, Worker
from airflow_tfjob.backends.local import plan, rules
from airflow_tfjob.model import tfconfig


@pytest.mark.parametrize(
    ("policy", "code", "decision"),
    [
        ("Never", 0, "succeeded"),
        ("Never", 1, "failed"),
        ("Never", 137, "failed"),
        ("OnFailure", 0, "succeeded"),
        ("OnFailure", 1, "restart"),
        ("Always", 0, "restart"),
        ("Always", 2, "restart"),
        ("ExitCode", 0, "succeeded"),
        ("ExitCode", 127, "failed"),
        ("ExitCode", 128, "recreate"),
        ("ExitCode", 143, "recreate"),
    ],
)
def test_what_an_exit_means_under_each_restart_policy(
    policy: str, code: int, decision: str
) -> None:
    assert rules.after_exit(policy, code) == decision


def test_the_backoff_limit_is_reached_at_the_limit_and_zero_allows_no_restart() -> None:
    assert not rules.past_backoff_limit(None, 100)
    assert rules.past_backoff_limit(0, 1) and not rules.past_backoff_limit(0, 0)
    assert not rules.past_backoff_limit(3, 2) and rules.past_backoff_limit(3, 3)


def test_success_follows_the_chief_else_worker_0_else_all_workers() -> None:
    with_chief = {"Chief": 1, "Worker": 2, "PS": 1}
    assert rules.succeeded(with_chief, {("Chief", 0)}, None)
    assert not rules.succeeded(with_chief, {("Worker", 0), ("Worker", 1)}, "AllWorkers")
    workers = {"Worker": 3, "PS": 1}
    assert rules.succeeded(workers, {("Worker", 0)}, None)
    assert not rules.succeeded(workers, {("Worker", 1), ("Worker", 2)}, None)
    assert not rules.succeeded(workers, {("Worker", 0), ("Worker", 1)}, "AllWorkers")
    assert rules.succeeded(workers, {("Worker", i) for i in range(3)}, "AllWorkers")
    assert not rules.succeeded({"PS": 1, "Evaluator": 1}, {("PS", 0), ("Evaluator", 0)}, None)
    assert rules.succeeded({"Master": 1, "Worker": 1}, {("Master", 0)}, None)


def test_conditions_replace_each_other_as_the_operator_writes_them() -> None:
    status = rules.JobStatus("ml/mnist", {"Worker": 2})
    status.running()
    status.restarting("Worker")
    kinds = [(c["type"], c["status"]) for c in status.value["conditions"]]
    assert kinds == [("Created", "True"), ("Restarting", "True")]
    assert (
        "restarting because Worker replica(s) failed" in status.value["conditions"][-1]["message"]
    )
    status.running()
    status.succeed()
    kinds = [(c["type"], c["status"]) for c in status.value["conditions"]]
    assert kinds == [("Created", "True"), ("Running", "False"), ("Succeeded", "True")]
    assert status.finished and "completionTime" in status.value
    status.fail("too late")
    assert [c["type"] for c in status.value["conditions"]][-1] == "Succeeded"


def test_tf_config_lists_every_type_lowercased_in_index_order() -> None:
    counts = {"Worker": 2, "Chief": 1, "Evaluator": 1}
    config = json.loads(tfconfig.tf_config(counts, lambda t, i: f"{t.lower()}{i}:1", "Worker", 1))
    assert config == {
        "cluster": {
            "chief": ["chief0:1"],
            "evaluator": ["evaluator0:1"],
            "worker": ["worker0:1", "worker1:1"],
        },
        "task": {"type": "worker", "index": 1},
        "environment": "cloud",
    }
    assert not tfconfig.is_distributed({"Worker": 1}) and tfconfig.is_distributed({"Worker": 2})


def test_kubernetes_variable_references_expand_like_the_kubelet() -> None:
    env = {"A": "1", "B": "two"}
    assert plan.expand("$(A)-$(B)-$(C)", env) == "1-two-$(C)"
    assert plan.expand("$$(A) costs $$5", env) == "$(A) costs $5"


def test_replicas_come_chief_first_with_their_commands_and_env() -> None:
    job = TfJob(chief=Chief(), worker=Worker(replicas=2), evaluator=Evaluator())
    manifest = job.with_defaults(
        command=["python", "train.py", "--name=$(NAME)"], env={"NAME": "x"}
    ).to_manifest("mnist", "ml", image="tf")
    replicas = plan.replicas(manifest, "uid-1")
    assert [r.name for r in replicas] == ["chief-0", "worker-0", "worker-1", "evaluator-0"]
    assert replicas[1].command == ("python", "train.py", "--name=x")
    assert replicas[1].pod("mnist") == "mnist-worker-0"
    assert replicas[0].termination_path == "/dev/termination-log"


def test_what_cannot_run_locally_is_refused_by_name() -> None:
    no_command = TfJob().to_manifest("mnist", "ml", image="tf")
    with pytest.raises(TFJobSpecError, match=r"Worker\.command: got None"):
        plan.replicas(no_command)
    env_from = {
        "spec": {"containers": [{"name": "tensorflow", "envFrom": [{"secretRef": {"name": "s"}}]}]}
    }
    manifest = TfJob(worker=Worker(pod_template=env_from, command=["x"])).to_manifest(
        "mnist", "ml", image="tf"
    )
    with pytest.raises(TFJobSpecError, match=r"envFrom: got \[\{'secretRef'"):
        plan.replicas(manifest)
    manifest["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["name"] = (
        "main"
    )
    with pytest.raises(TFJobSpecError, match="must include a container named 'tensorflow'"):
        plan.replicas(manifest)
