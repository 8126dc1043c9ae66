"""``python -m airflow_tfjob``: the dry run's stdout is the manifest alone, its errors are one line
on stderr, and ``demo`` is a sub-command. Run as a user runs them: a separate process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.airflow_fixtures import write_dag

NOISY = """
print("a print() in the DAG file")
TFJobOperator(task_id="train", tfjob=TfJob(ps=PS(), worker=Worker()), image="tf:2",
              namespace=NAMESPACE, labels={"team": "vision"})  # PS without a chief: a warning
TFJobOperator(task_id="anywhere", tfjob=TfJob(worker=Worker()), image="tf:2")
TFJobOperator(task_id="templated", tfjob=TfJob(worker=Worker()), image="tf:2",
              name="{{ params.name }}", params={"name": "Nightly_Run"})
"""


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airflow_tfjob", *args],
        capture_output=True,
        text=True,
        timeout=180,
    )


def _no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr and 'File "' not in stderr, stderr


def test_stdout_is_the_manifest_alone_and_the_noise_goes_to_stderr(airflow_db: Path) -> None:
    _, path = write_dag(airflow_db, NOISY, namespace="ml")
    done = _cli("render", str(path), "train")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("apiVersion: kubeflow.org/v1\n")  # `> job.yaml` is clean
    manifest = yaml.safe_load(done.stdout)
    assert manifest["metadata"]["namespace"] == "ml"
    assert manifest["metadata"]["labels"]["team"] == "vision"
    assert "a print() in the DAG file" in done.stderr
    assert "TfJob has PS replicas but no chief" in done.stderr


def test_namespace_is_used_where_the_task_sets_none(airflow_db: Path) -> None:
    _, path = write_dag(airflow_db, NOISY, namespace="ml")
    anywhere = _cli("render", str(path), "anywhere", "--namespace", "team-a")
    assert anywhere.returncode == 0, anywhere.stderr
    assert yaml.safe_load(anywhere.stdout)["metadata"]["namespace"] == "team-a"
    own = _cli("render", str(path), "train", "--namespace", "team-a")  # the task's own wins
    assert yaml.safe_load(own.stdout)["metadata"]["namespace"] == "ml"
    default = _cli("render", str(path), "anywhere")
    assert yaml.safe_load(default.stdout)["metadata"]["namespace"] == "default"


def test_a_spec_error_is_one_line_on_stderr_and_a_failing_exit_code(airflow_db: Path) -> None:
    _, path = write_dag(airflow_db, NOISY, namespace="ml")
    rendered = _cli("render", str(path), "templated")  # refused once rendered
    assert rendered.returncode == 1 and rendered.stdout == ""
    assert (
        f"error: task 'templated' in {path}: TFJobSpecError: name: got 'Nightly_Run'; must be "
        "a DNS-1035 label"
    ) in rendered.stderr
    _no_traceback(rendered.stderr)

    _, broken = write_dag(
        airflow_db, 'TFJobOperator(task_id="train", image="tf:2", namespace="ML")'
    )
    parsed = _cli("render", str(broken), "train")  # refused when the DAG file is parsed
    assert parsed.returncode == 1 and parsed.stdout == ""
    assert parsed.stderr.strip().splitlines()[-1] == (
        f"error: cannot import {broken}: TFJobSpecError: namespace: got 'ML'; must be a DNS-1123 "
        "label: at most 63 lowercase letters, digits or '-', starting and ending with a letter or "
        "digit"
    )
    _no_traceback(parsed.stderr)


def test_a_missing_file_or_task_is_named_as_such(airflow_db: Path, tmp_path: Path) -> None:
    missing = _cli("render", str(tmp_path / "nope.py"), "train")
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"error: DAG file {tmp_path / 'nope.py'} does not exist"
    _, path = write_dag(airflow_db, NOISY, namespace="ml")
    no_task = _cli("render", str(path), "evaluate")
    assert no_task.returncode == 1
    assert f"error: no task 'evaluate' in {path} (its tasks: anywhere, templated, train)" in (
        no_task.stderr
    )


def test_demo_is_a_sub_command_and_the_help_lists_what_exists(tmp_path: Path) -> None:
    usage = _cli("--help")
    assert usage.returncode == 0
    assert "render DAG_FILE TASK_ID" in usage.stdout and "demo [--dags DIR]" in usage.stdout
    demo = _cli("demo", "--help")
    assert demo.returncode == 0, demo.stderr
    assert demo.stdout.startswith("usage: python -m airflow_tfjob demo [-h] [--dags DIR]")
    # its own arguments reach it (it used to refuse "demo" itself as an unrecognized argument)
    elsewhere = _cli("demo", "--dags", str(tmp_path))
    assert elsewhere.returncode == 2
    assert "example_tfjob_function.py not found; pass --dags DIR" in elsewhere.stdout
    assert "unrecognized arguments" not in elsewhere.stderr
    unknown = _cli("train")
    assert unknown.returncode == 2 and "unknown command 'train'" in unknown.stderr


EXAMPLES = [
    ("example_tfjob_operator.py", "train"),
    ("example_tfjob_function.py", "train"),
    ("example_tfjob_ps.py", "train_ps"),
    ("example_tfjob_sensor.py", "submit"),
]
GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize(("dag_file", "task_id"), EXAMPLES)
def test_the_example_dags_render_their_golden_manifests(
    airflow_db: Path, monkeypatch: pytest.MonkeyPatch, dag_file: str, task_id: str
) -> None:
    # what the examples send a cluster; regenerate with UPDATE_GOLDEN=1 after a deliberate
    # change and read the diff
    from airflow_tfjob.cli.render import render

    monkeypatch.setenv("AIRFLOW_TFJOB_BACKEND", "kubernetes")
    dags = Path(__file__).parents[2] / "dags"
    text = render(dags / dag_file, task_id)
    path = GOLDEN / f"{dag_file.removesuffix('.py')}.{task_id}.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text()


@pytest.mark.parametrize(
    ("dag_file", "task_id"),
    [("example_tfjob_function.py", "train"), ("example_tfjob_ps.py", "train_ps")],
)
def test_the_training_examples_render_their_golden_trainjobs(
    airflow_db: Path, monkeypatch: pytest.MonkeyPatch, dag_file: str, task_id: str
) -> None:
    # what they send a cluster on Kubeflow Trainer v2 (render --api trainjob); as above
    from airflow_tfjob.cli.render import render

    monkeypatch.setenv("AIRFLOW_TFJOB_BACKEND", "kubernetes")
    text = render(Path(__file__).parents[2] / "dags" / dag_file, task_id, api="trainjob")
    path = GOLDEN / f"{dag_file.removesuffix('.py')}.{task_id}.trainjob.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()
    assert "export TF_CONFIG=" in text and "numNodes: 3" in text
