"""@task.tfjob with every replica a real local process (the kubelet's REAL mode), through dag.test()."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_tfjob import TFJobSpecError
from tests.airflow_fixtures import task_instance, tfjob_hook
from tests.kubelet.fates import REAL, Script

HEADER = """
from airflow.sdk import task

@task.tfjob(
    task_config=TfJob(chief=Chief(), worker=Worker(replicas=2), evaluator=Evaluator(){groups}),
    image="python:3.11-slim", namespace=NAMESPACE, kubernetes_conn_id=None, config_file=KUBECONFIG,
    poll_interval=1, {extra}
)
"""


def _body(function: str, call: str, groups: str = "", extra: str = "") -> str:
    return HEADER.format(groups=groups, extra=extra) + function + "\n" + call


def test_the_chiefs_return_value_is_the_xcom_with_args_kwargs_and_templates(
    run_dag: Callable[..., Any], replicas: Script, namespace: str, kubeconfig: Path
) -> None:
    replicas.set_default_fate("*", REAL)
    function = """
def train(a, b, *, scale=1, run=None):
    from airflow_tfjob.runtime import context
    role = context()
    return {"sum": (a + b) * scale, "role": role.replica, "is_chief": role.is_chief, "run": run}
"""
    dagrun = run_dag(
        _body(function, 'train(1, 2, scale=10, run="{{ run_id }}")'),
        namespace=namespace,
        kubeconfig=str(kubeconfig),
    )
    ti = task_instance(dagrun, "train")
    assert ti.state == "success"
    assert ti.xcom_pull(task_ids="train") == {
        "sum": 30,
        "role": "chief-0",
        "is_chief": True,
        "run": dagrun.run_id,
    }


def test_every_role_sees_its_context_and_ps_can_be_handled_by_the_function(
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    replicas.set_default_fate("*", REAL)
    function = """
def roles(folder):
    import json, os
    from airflow_tfjob.runtime import context
    role = context()
    with open(os.path.join(folder, role.replica), "w") as out:
        json.dump({"type": role.task_type, "index": role.task_index, "chief": role.is_chief,
                   "cluster": sorted(role.cluster)}, out)
    if role.is_chief:  # the job succeeds with the chief: let the others write first
        import time
        deadline = time.monotonic() + 60
        while len(os.listdir(folder)) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
    return role.replica
"""
    folder = tmp_path / "roles"
    folder.mkdir()
    body = _body(function, f"roles({str(folder)!r})", groups=", ps=PS()", extra="ps_handled=True,")
    dagrun = run_dag(body, namespace=namespace, kubeconfig=str(kubeconfig))
    ti = task_instance(dagrun, "roles")
    assert ti.state == "success"
    assert ti.xcom_pull(task_ids="roles") == "chief-0"  # other replicas' values are ignored
    seen = {p.name: json.loads(p.read_text()) for p in folder.iterdir()}
    assert set(seen) == {"chief-0", "ps-0", "worker-0", "worker-1", "evaluator-0"}
    assert seen["evaluator-0"] == {
        "type": "evaluator",
        "index": 0,
        "chief": False,
        "cluster": ["chief", "evaluator", "ps", "worker"],
    }
    assert (
        seen["worker-1"]["index"] == 1
        and not seen["worker-0"]["chief"]
        and seen["chief-0"]["chief"]
    )


def test_an_exception_reaches_the_task_failure_with_its_traceback(
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    replicas.set_default_fate("*", REAL)
    function = """
def train(lr):
    from airflow_tfjob.runtime import context
    if context().replica == "worker-1":
        raise ValueError(f"learning rate {lr} diverged")
    import time
    time.sleep(3)
    return lr
"""
    dagrun = run_dag(_body(function, "train(0.5)"), namespace=namespace, kubeconfig=str(kubeconfig))
    assert task_instance(dagrun, "train").state == "failed"
    out = capfd.readouterr().out
    assert "Failed replicas: worker-1 (exit code 1)" in out
    assert "ValueError: learning rate 0.5 diverged" in out
    assert 'raise ValueError(f"learning rate {lr} diverged")' in out  # the traceback tail


def test_a_too_large_output_fails_clearly_or_goes_to_output_uri(
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    replicas.set_default_fate("*", REAL)
    function = "\ndef big():\n    return ['x' * 100] * 100\n"
    dagrun = run_dag(_body(function, "big()"), namespace=namespace, kubeconfig=str(kubeconfig))
    assert task_instance(dagrun, "big").state == "failed"
    assert (
        "over the 4096-byte termination message; return less, or set output_uri="
        in capfd.readouterr().out
    )
    uri = f"file://{tmp_path}/out.json"  # beside the replicas's pods/ folder
    dagrun = run_dag(
        _body(function, "big()", extra=f"output_uri={uri!r},"),
        namespace=namespace,
        kubeconfig=str(kubeconfig),
    )
    ti = task_instance(dagrun, "big")
    assert ti.state == "success"
    assert ti.xcom_pull(task_ids="big") == uri
    assert json.loads((tmp_path / "out.json").read_text()) == ["x" * 100] * 100


def test_unserializable_arguments_fail_at_once_before_anything_is_submitted(
    run_dag: Callable[..., Any], namespace: str, kubeconfig: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # a literal one fails the DAG parse (tests/arguments); one pulled from upstream is known only
    # when the task runs, where it fails the task without its retries: the next try pulls the same
    function = """
def train(when):
    return 1

@task
def upstream():
    import datetime
    return datetime.datetime(2026, 1, 1)

"""
    body = _body(
        function, "train(upstream())", extra="retries=3, retry_delay=datetime.timedelta(seconds=1),"
    )
    dagrun = run_dag(body, namespace=namespace, kubeconfig=str(kubeconfig))
    ti = task_instance(dagrun, "train")
    assert (ti.state, ti.try_number) == ("failed", 1)
    assert (
        "TFJobSpecFailure: arguments of train(): got datetime.datetime(2026, 1, 1, 0, 0"
        in capfd.readouterr().out
    )
    assert tfjob_hook(kubeconfig).list_jobs(namespace)[0] == []


def test_upstream_xcoms_pickled_arguments_and_multiple_outputs(
    run_dag: Callable[..., Any], replicas: Script, namespace: str, kubeconfig: Path
) -> None:
    replicas.set_default_fate("*", REAL)
    function = """
def train(base, when):
    return {"doubled": base * 2, "year": when.year}

@task
def upstream():
    return 21

train(upstream(), START)
"""
    body = _body(function, "", extra="use_pickle=True, multiple_outputs=True,")
    dagrun = run_dag(body, namespace=namespace, kubeconfig=str(kubeconfig))
    ti = task_instance(dagrun, "train")
    assert ti.state == "success"
    assert ti.xcom_pull(task_ids="train", key="doubled") == 42
    assert ti.xcom_pull(task_ids="train", key="year") == 2026


def test_a_payload_too_large_for_the_carrier_fails_before_submission(
    run_dag: Callable[..., Any], namespace: str, kubeconfig: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    function = "\ndef train(blob):\n    return len(blob)\n"
    body = _body(function, "train(BLOB)")
    dagrun = run_dag(
        body,
        namespace=namespace,
        kubeconfig=str(kubeconfig),
        blob=__import__("os").urandom(400_000).hex(),
    )
    assert task_instance(dagrun, "train").state == "failed"
    out = capfd.readouterr().out
    assert "payload of train(): got" in out and "must be at most 127 KiB" in out
    assert tfjob_hook(kubeconfig).list_jobs(namespace)[0] == []


def test_ps_replicas_serve_variables_with_a_real_tensorflow_server(
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    replicas.set_default_fate("*", REAL)
    function = """
def train():
    import json, os, time
    from airflow_tfjob.runtime import context
    ps = json.loads(os.environ["TF_CONFIG"])["cluster"]["ps"][0]
    host, port = ps.rsplit(":", 1)
    import socket
    for _ in range(600):  # the PS replica's TensorFlow server must be listening
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return {"ps_reachable": ps, "role": context().replica}
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"no TensorFlow server at {ps}")
"""
    body = (
        HEADER.format(groups=", ps=PS()", extra="").replace("evaluator=Evaluator(), ", "")
        + function
        + "\ntrain()"
    )
    dagrun = run_dag(body, namespace=namespace, kubeconfig=str(kubeconfig))
    ti = task_instance(dagrun, "train")
    assert ti.state == "success", capfd.readouterr().out[-3000:]
    assert ti.xcom_pull(task_ids="train")["role"] == "chief-0"


def test_what_the_function_task_cannot_do_is_refused_when_the_dag_is_parsed() -> None:
    from airflow.sdk import DAG, task

    with DAG("refusals", schedule=None):
        for arguments, message in (
            (
                {"command": ["python", "x.py"]},
                r"command: got \['python', 'x.py'\]; @task.tfjob runs the decorated function",
            ),
            (
                {"tfjob_template": {"spec": {}}},
                r"tfjob_template: got \{'spec': \{\}\}; @task.tfjob builds the job",
            ),
            ({"wait_until_finished": False}, "wait_until_finished: got False; @task.tfjob"),
        ):

            @task.tfjob(image="tf:2", **arguments)
            def train() -> int:
                return 1

            with pytest.raises(TFJobSpecError, match=message):
                train()


def test_the_pod_bootstrap_runs_where_neither_airflow_nor_the_package_is_installed(
    tmp_path: Path,
) -> None:
    """``python -I -S``: no site-packages, no PYTHONPATH, no current directory on the path, as
    in a bare ``python`` image: the runtime is stdlib-only and carried in the environment."""
    import os
    import subprocess
    import sys

    from airflow.sdk import DAG, task

    from airflow_tfjob import TfJob, Worker, runtime
    from airflow_tfjob.decorators.tfjob import _RUNTIME

    with DAG("bootstrap", schedule=None):

        @task.tfjob(task_config=TfJob(worker=Worker()), image="python:3.11-slim")
        def double(x: int) -> dict[str, object]:
            import sys

            from airflow_tfjob.runtime import context

            role = context()
            return {"twice": x * 2, "replica": role.replica, "site": "site" in sys.modules}

        op = double(21).operator
    termination = tmp_path / "termination-log"
    env = {
        runtime.PAYLOAD_ENV: op.payload("worker-0"),
        runtime.RUNTIME_ENV: _RUNTIME,
        runtime.TERMINATION_ENV: str(termination),
        "PATH": os.environ["PATH"],
    }
    probe = [sys.executable, "-I", "-S", "-c", "import airflow_tfjob"]
    assert subprocess.run(probe, env=env, capture_output=True, cwd=tmp_path).returncode != 0
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", runtime.BOOTSTRAP],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(termination.read_text()) == {
        "twice": 42,
        "replica": "worker-0",
        "site": False,
    }
