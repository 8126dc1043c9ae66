"""How replica endings read in failure messages (pure: pod dicts in, text out)."""

from __future__ import annotations

from typing import Any

from airflow_tfjob.rules import report, status


def _pod(index: int, *, phase: str, reason: str = "", exit_code: int | None = None) -> Any:
    container: dict[str, Any] = {"name": "tensorflow", "restartCount": 0, "state": {}}
    if exit_code is not None:
        container["state"] = {"terminated": {"exitCode": exit_code, "reason": "Error"}}
    labels = {status.REPLICA_TYPE_LABEL: "worker", status.REPLICA_INDEX_LABEL: str(index)}
    return {
        "metadata": {"name": f"job-worker-{index}", "labels": labels},
        "status": {"phase": phase, "reason": reason, "containerStatuses": [container]},
    }


def _message(*pods: Any) -> str:
    ledger = status.ReplicaLedger("chief-0")
    for pod in pods:
        ledger.observe(pod)
    state = status.job_state({"status": {"conditions": [
        {"type": "Failed", "status": "True", "reason": "TFJobFailed", "message": "1 failed"}
    ]}})  # fmt: skip
    return report.failure_message("ns/job", state, ledger.failures, lambda _: [])


def test_an_eviction_that_killed_the_container_says_both() -> None:
    evicted = _pod(1, phase="Failed", reason="Evicted", exit_code=137)
    assert "Failed replicas: worker-1 (exit code 137, Evicted)" in _message(evicted)


def test_an_eviction_before_the_container_ran_says_evicted() -> None:
    evicted = _pod(1, phase="Failed", reason="Evicted")
    evicted["status"]["containerStatuses"] = []
    assert "Failed replicas: worker-1 (Evicted)" in _message(evicted)


def test_a_crash_says_its_exit_code_only() -> None:
    crashed = _pod(0, phase="Failed", exit_code=2)
    assert "Failed replicas: worker-0 (exit code 2)\n" in _message(crashed) + "\n"


def test_the_output_replica_is_the_chief_or_master_else_worker_0() -> None:
    from airflow_tfjob.rules import status

    assert status.output_replica({"Chief": 1, "Worker": 2}) == "chief-0"
    assert status.output_replica({"Master": 1, "Worker": 2}) == "master-0"
    assert status.output_replica({"Worker": 2, "PS": 1}) == "worker-0"
    ledger = status.ReplicaLedger.for_job(
        {"spec": {"tfReplicaSpecs": {"Master": {"replicas": 1}, "Worker": {"replicas": 1}}}}
    )
    assert ledger.output_replica == "master-0"


def test_a_replica_recreated_under_its_name_is_two_pods_and_reported_by_the_last() -> None:
    first, second = _pod(0, phase="Failed", exit_code=137), _pod(0, phase="Failed", exit_code=1)
    first["metadata"]["uid"], second["metadata"]["uid"] = "uid-dead", "uid-last"
    first["status"]["containerStatuses"][0]["state"]["terminated"]["message"] = "dead pod"
    second["status"]["containerStatuses"][0]["state"]["terminated"]["message"] = "last pod"
    ledger = status.ReplicaLedger("chief-0")
    ledger.observe(first)
    ledger.observe(second)
    assert ledger.finished_pods == {"uid-dead", "uid-last"}  # one name, two pods
    state = status.job_state({"status": {"conditions": [{"type": "Failed", "status": "True"}]}})
    asked: list[str] = []
    text = report.failure_message(
        "ns/job", state, ledger.failures, lambda failed: asked.append(failed.uid) or []
    )
    assert "worker-0 (exit code 137), worker-0 (exit code 1)" in text
    assert "worker-0 termination message: last pod" in text and "dead pod" not in text
    second["status"]["containerStatuses"][0]["state"]["terminated"]["message"] = ""
    ledger = status.ReplicaLedger("chief-0")
    ledger.observe(first)
    ledger.observe(second)
    report.failure_message("ns/job", state, ledger.failures, lambda f: asked.append(f.uid) or [])
    assert asked == ["uid-last"]  # the tail asked of the last pod, by its uid
