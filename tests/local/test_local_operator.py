"""TFJobOperator on the local backend, through ``dag.test()``: the training operator's rules
for replicas that are local processes, and nothing left running afterwards (checked by PID)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_tfjob.backends.local import reaper
from tests.airflow_fixtures import RESULT_KEYS, task_instance
from tests.local.conftest import LocalRuns, alive

CHIEF_AND_TWO = "TfJob(chief=Chief(), worker=Worker(replicas=2))"


def test_replicas_run_with_tf_config_their_env_and_a_directory_each(
    local: LocalRuns, capfd: pytest.CaptureFixture[str]
) -> None:
    job = (
        "TfJob(chief=Chief(), worker=Worker(replicas=2), evaluator=Evaluator(),"
        " run_policy=RunPolicy(clean_pod_policy=CleanPodPolicy.ALL))"
    )
    plan = {"*": ["print hello from $(ROLE)", "env"]}
    pod_env = (
        'pod_template={"spec": {"containers": [{"name": "tensorflow", "env": ['
        '{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},'
        '{"name": "ROLE", "valueFrom": {"fieldRef": {"fieldPath": '
        "\"metadata.labels['training.kubeflow.org/replica-type']\"}}},"
        '{"name": "GREETING", "value": "hi $(ROLE) in $(POD), $$(ROLE)"}]}]}}'
    )
    job = job.replace("chief=Chief()", f"chief=Chief({pod_env})")
    dagrun = local.run(job, plan)
    ti = task_instance(dagrun, "train")
    assert ti.state == "success"
    result = ti.xcom_pull(task_ids="train")
    assert set(result) == RESULT_KEYS
    assert result["state"] == "Succeeded"
    assert result["replica_statuses"]["Chief"] == {"succeeded": 1}
    name = result["name"]
    assert ti.xcom_pull(task_ids="train", key="tfjob_name") == name

    seen = result["output"]  # the chief's termination log: its env, cwd and argv
    env = seen["env"]
    config = json.loads(env["TF_CONFIG"])
    assert config["task"] == {"type": "chief", "index": 0}
    assert config["environment"] == "cloud"
    assert sorted(config["cluster"]) == ["chief", "evaluator", "worker"]
    addresses = [a for kind in config["cluster"].values() for a in kind]
    assert len(addresses) == 4 and len(set(addresses)) == 4
    assert all(a.startswith("localhost:") for a in addresses)
    assert env["POD"] == f"{name}-chief-0"
    assert env["GREETING"] == f"hi chief in {name}-chief-0, $(ROLE)"
    assert env["TF_NUM_INTRAOP_THREADS"] == "1" and env["TF_NUM_INTEROP_THREADS"] == "2"
    assert not [k for k in env if k.startswith("AIRFLOW") and k != reaper.MARKER_ENV]
    assert seen["argv"][-1] != "/dev/termination-log"  # mapped to a file of the replica's own
    run_dir = local.run_dir / "default" / name / result["uid"][:8]
    assert seen["cwd"] == str(run_dir / "chief-0")
    assert seen["argv"][-1] == str(run_dir / "chief-0.termination-log")

    out = capfd.readouterr().out
    for replica in ("chief-0", "worker-0", "worker-1", "evaluator-0"):
        assert f"[{replica}] hello from" in out
        assert "hello from" in (run_dir / f"{replica}.log").read_text()
    assert "[chief-0] hello from chief" in out
    assert "images are ignored: tf:2" in out
    assert not (run_dir / "chief-0").exists()  # the "pods" went with the succeeded job


def test_a_failing_worker_fails_the_job_and_stops_the_others(
    local: LocalRuns, capfd: pytest.CaptureFixture[str]
) -> None:
    plan = {
        "worker-1": ["sleep 1", "output CUDA error: out of memory", "exit 3"],
        "*": ["sleep inf"],
    }
    dagrun = local.run(CHIEF_AND_TWO, plan)
    assert task_instance(dagrun, "train").state == "failed"
    out = capfd.readouterr().out
    assert "has failed because 1 Worker replica(s) failed." in out
    assert "Failed replicas: worker-1 (exit code 3)" in out
    assert "worker-1 termination message: CUDA error: out of memory" in out
    assert "Stopping chief-0, worker-0, still running" in out
    pids = local.pids()
    assert {"chief-0.1", "worker-0.1", "worker-1.1"} <= set(pids)
    assert not [pid for pid in local.all_pids() if alive(pid)]


def test_ps_replicas_are_stopped_once_the_chief_succeeds(
    local: LocalRuns, capfd: pytest.CaptureFixture[str]
) -> None:
    job = "TfJob(chief=Chief(), worker=Worker(replicas=1), ps=PS(replicas=2))"
    plan = {"chief-0": ["sleep 1", 'output {"loss": 0.25}'], "*": ["listen", "sleep inf"]}
    dagrun = local.run(job, plan)
    ti = task_instance(dagrun, "train")
    assert ti.state == "success"
    assert ti.xcom_pull(task_ids="train")["output"] == {"loss": 0.25}
    out = capfd.readouterr().out
    assert "Stopping worker-0, ps-0, ps-1, still running (cleanPodPolicy Running)" in out
    assert all(not alive(pid) for pid in local.pids()["ps-0.1"] + local.pids()["ps-1.1"])


def test_a_replica_ignoring_sigterm_is_killed_after_the_grace_period(
    local: LocalRuns, capfd: pytest.CaptureFixture[str]
) -> None:
    job = "TfJob(chief=Chief(), ps=PS())"
    plan = {"chief-0": ["sleep 1"], "ps-0": ["ignore-term", "sleep inf"]}
    dagrun = local.run(job, plan)
    assert task_instance(dagrun, "train").state == "success"
    out = capfd.readouterr().out
    assert "ps-0 ignored SIGTERM and were killed with SIGKILL after the grace period" in out
    assert not alive(local.pids()["ps-0.1"][0])


def test_active_deadline_fails_the_job_and_stops_every_replica(
    local: LocalRuns, capfd: pytest.CaptureFixture[str]
) -> None:
    job = "TfJob(chief=Chief(), worker=Worker(), run_policy=RunPolicy(active_deadline_seconds=2))"
    dagrun = local.run(job, {"*": ["sleep inf"]})
    assert task_instance(dagrun, "train").state == "failed"
    out = capfd.readouterr().out
    assert "was active longer than specified deadline (2 s, activeDeadlineSeconds)" in out
    assert len(local.all_pids()) == 2
    assert not [pid for pid in local.all_pids() if alive(pid)]


def test_execution_timeout_stops_every_replica(
    local: LocalRuns, capfd: pytest.CaptureFixture[str]
) -> None:
    dagrun = local.run(
        CHIEF_AND_TWO,
        {"*": ["sleep inf"]},
        code="execution_timeout=datetime.timedelta(seconds=8),",
    )
    assert task_instance(dagrun, "train").state == "failed"
    out = capfd.readouterr().out
    assert (
        "did not finish before the task's execution_timeout (Running); its replicas were stopped"
        in out
    )
    assert len(local.all_pids()) == 3
    assert not [pid for pid in local.all_pids() if alive(pid)]


def test_on_failure_restarts_in_place_until_the_backoff_limit(
    local: LocalRuns, capfd: pytest.CaptureFixture[str]
) -> None:
    job = (
        "TfJob(worker=Worker(replicas=2, restart_policy=RestartPolicy.FAILURE),"
        " run_policy=RunPolicy(backoff_limit=3))"
    )
    plan = {"worker-0": ["print crashing", "exit 1"], "worker-1": ["sleep inf"]}
    dagrun = local.run(job, plan)
    assert task_instance(dagrun, "train").state == "failed"
    out = capfd.readouterr().out
    assert local.attempts("worker-0") == 3  # the 3rd restart reaches backoffLimit 3
    assert local.attempts("worker-1") == 1  # restarts are in place: the others run on
    assert "worker-0 exited with code 1; restarting it (restartPolicy OnFailure, restart 2" in out
    assert "has reached the specified backoff limit (3 restarts, backoffLimit)" in out
    assert "Failed replicas: worker-0 (exit code 1)" in out


def test_a_restart_that_then_succeeds_completes_the_job(
    local: LocalRuns, capfd: pytest.CaptureFixture[str]
) -> None:
    job = "TfJob(worker=Worker(restart_policy=RestartPolicy.FAILURE))"
    plan = {"worker-0": {"1": ["exit 2"], "2": ["output 42"]}}
    dagrun = local.run(job, plan)
    ti = task_instance(dagrun, "train")
    assert ti.state == "success"
    assert ti.xcom_pull(task_ids="train")["output"] == 42
    assert local.attempts("worker-0") == 2


def test_exit_code_policy_retries_only_retryable_exit_codes(
    local: LocalRuns, capfd: pytest.CaptureFixture[str]
) -> None:
    job = (
        "TfJob(worker=Worker(restart_policy=RestartPolicy.EXIT_CODE),"
        " run_policy=RunPolicy(backoff_limit=0))"
    )
    plan = {"worker-0": {"1": ["exit 137"], "2": ["exit 139"], "3": ["exit 2"]}}
    dagrun = local.run(job, plan)
    assert task_instance(dagrun, "train").state == "failed"
    out = capfd.readouterr().out
    assert local.attempts("worker-0") == 3  # 137 and 139 retried, uncounted; 2 is permanent
    assert "Failed replicas: worker-0 (exit code 2)" in out
    assert "backoff limit" not in out


def test_a_replica_that_never_comes_up_fails_at_the_startup_timeout(
    local: LocalRuns, capfd: pytest.CaptureFixture[str]
) -> None:
    plan = {"worker-1": ["sleep inf"], "*": ["listen", "sleep inf"]}
    dagrun = local.run(CHIEF_AND_TWO, plan, startup_timeout_seconds=3)
    assert task_instance(dagrun, "train").state == "failed"
    out = capfd.readouterr().out
    assert "did not come up within 3 s (startup_timeout_seconds)" in out
    assert "worker-1: not listening on localhost:" in out
    assert "chief-0: not listening" not in out
    assert not [pid for pid in local.all_pids() if alive(pid)]


def test_a_lost_bind_race_starts_every_replica_again_on_fresh_ports(
    local: LocalRuns, capfd: pytest.CaptureFixture[str]
) -> None:
    plan: dict[str, Any] = {
        "chief-0": {"1": ["steal worker-0", "sleep inf"], "*": ["bind", "sleep 1", "output ok"]},
        "worker-0": {"1": ["sleep 0.5", "bind", "sleep inf"], "*": ["bind", "sleep inf"]},
    }
    dagrun = local.run("TfJob(chief=Chief(), worker=Worker())", plan)
    ti = task_instance(dagrun, "train")
    out = capfd.readouterr().out
    assert ti.state == "success", out[-3000:]
    assert "worker-0 lost a race for port" in out
    assert "starting every replica again on fresh ports" in out
    assert local.attempts("chief-0") == 2 and local.attempts("worker-0") == 2
    assert ti.xcom_pull(task_ids="train")["output"] == "ok"


def test_local_backend_arguments_are_checked_when_the_dag_is_parsed() -> None:
    from airflow_tfjob import Chief, TfJob, TFJobSpecError, Worker
    from airflow_tfjob.operators.tfjob import TFJobOperator

    with pytest.raises(TFJobSpecError, match=r"Worker.command: got None; the local backend runs"):
        TFJobOperator(task_id="t", backend="local", tfjob=TfJob(), image="tf")
    secret = {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
    template = {"spec": {"containers": [{"name": "tensorflow", "env": [secret]}]}}
    with pytest.raises(TFJobSpecError, match=r"Worker env 'TOKEN': got 'valueFrom.secretKeyRef'"):
        TFJobOperator(
            task_id="t",
            backend="local",
            tfjob=TfJob(worker=Worker(pod_template=template)),
            image="tf",
            command=["python", "train.py"],
        )
    with pytest.raises(ValueError, match="wait_until_finished: got False; the local backend"):
        TFJobOperator(
            task_id="t",
            backend="local",
            tfjob=TfJob(chief=Chief()),
            image="tf",
            command=["true"],
            wait_until_finished=False,
        )
    with pytest.raises(ValueError, match="backend: got 'docker'; must be one of"):
        TFJobOperator(task_id="t", backend="docker", image="tf", command=["true"])


def test_the_default_backend_comes_from_the_tfjob_section(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_tfjob.operators.tfjob import TFJobOperator

    assert TFJobOperator(task_id="a", image="tf", command=["true"]).backend == "kubernetes"
    monkeypatch.setenv("AIRFLOW__TFJOB__BACKEND", "local")
    assert TFJobOperator(task_id="b", image="tf", command=["true"]).backend == "local"
    assert TFJobOperator(task_id="c", image="tf", backend="kubernetes").backend == "kubernetes"


def test_a_template_takes_the_operators_command_args_and_env_where_it_has_none(
    local: LocalRuns,
) -> None:
    own = [{"name": "OWN", "value": "from the template"}]
    container = {"name": "tensorflow", "image": "tf:2", "env": own}
    pod = {"spec": {"containers": [container]}}
    template = {"spec": {"tfReplicaSpecs": {"Worker": {"replicas": 1, "template": pod}}}}
    dagrun = local.run("None", {"worker-0": ["env"]}, tfjob_template=template)
    ti = task_instance(dagrun, "train")
    assert ti.state == "success"
    seen = ti.xcom_pull(task_ids="train")["output"]
    assert seen["env"]["OWN"] == "from the template"
    assert seen["env"]["ACTOR_PIDS"] == str(local.pid_dir)  # the operator's env, added
    assert seen["argv"][0].endswith("actor.py") and seen["argv"][1] == "--termination"
