"""The package as Airflow and DAG authors meet it: registration, public names, import cost."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import airflow_tfjob
from airflow_tfjob.get_provider_info import get_provider_info

ROOT = Path(__file__).parents[2]
HEAVY = ("tensorflow", "kubernetes", "kubernetes_asyncio", "airflow")
MODULE_SECTIONS = {
    "operators": "python-modules",
    "sensors": "python-modules",
    "hooks": "python-modules",
    "triggers": "python-modules",
}


def test_the_provider_is_registered_through_its_entry_point() -> None:
    (ep,) = [
        e
        for e in entry_points(group="apache_airflow_provider")
        if e.value.startswith("airflow_tfjob")
    ]
    info = ep.load()()
    assert info["package-name"] == "airflow-tfjob"
    assert info["versions"][0] == airflow_tfjob.__version__
    assert {"name", "description", "integrations"} <= set(info)


def test_every_module_path_the_provider_names_imports() -> None:
    info = get_provider_info()
    paths: list[str] = []
    for section in MODULE_SECTIONS:
        for entry in info.get(section, []):
            paths.extend(entry["python-modules"])
    paths += [link.rsplit(".", 1)[0] for link in info.get("extra-links", [])]
    paths += [d["class-name"].rsplit(".", 1)[0] for d in info.get("task-decorators", [])]
    paths += [
        c.rsplit(".", 1)[0]
        for c in [h["hook-class-name"] for h in info.get("connection-types", [])]
    ]
    for path in paths:
        importlib.import_module(path)
    for name in (
        "Chief",
        "PS",
        "Worker",
        "Evaluator",
        "RunPolicy",
        "CleanPodPolicy",
        "RestartPolicy",
        "TfJob",
        "Resources",
        "SuccessPolicy",
        "SchedulingPolicy",
    ):
        assert name in airflow_tfjob.__all__ and getattr(airflow_tfjob, name)


def test_airflow_lists_the_provider(tmp_path: Path) -> None:
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
    airflow = Path(sys.executable).parent / "airflow"
    out = subprocess.run(
        [str(airflow), "providers", "list", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    providers = {p["package_name"]: p for p in json.loads(out)}
    assert providers["airflow-tfjob"]["version"] == airflow_tfjob.__version__


def test_importing_the_package_imports_nothing_heavy() -> None:
    code = "import sys, json, airflow_tfjob; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = json.loads(out)
    heavy = [m for m in loaded if m.split(".")[0] in HEAVY]
    assert heavy == []
    assert "airflow_tfjob.model.job" in loaded  # the check saw the package's own modules


def test_the_crd_copy_is_unchanged_from_upstream() -> None:
    digest = hashlib.sha256((ROOT / "tests/data/kubeflow.org_tfjobs.yaml").read_bytes()).hexdigest()
    assert digest == "6028ab677922ee558d279c9cc2028500372875eec327ed6819fc4dc2796cda9e"


@pytest.mark.parametrize("backend", ["kubernetes", "local"])
def test_the_example_dags_parse_on_either_backend_without_heavy_imports(
    tmp_path: Path, backend: str
) -> None:
    code = (
        "import sys, json\n"
        "try:\n    from airflow.dag_processing.dagbag import DagBag\n"
        "except ImportError:\n    from airflow.models.dagbag import DagBag  # Airflow 3.1\n"
        f"bag = DagBag(dag_folder={str(ROOT / 'dags')!r}, safe_mode=False);"
        "print(json.dumps({'errors': bag.import_errors, 'dags': sorted(bag.dags),"
        " 'modules': sorted(sys.modules)}))"
    )
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__TFJOB__BACKEND": backend}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    parsed = json.loads(out.stdout.strip().splitlines()[-1])
    assert parsed["errors"] == {}
    assert parsed["dags"] == [
        "example_tfjob_asset_watcher",
        "example_tfjob_function",
        "example_tfjob_operator",
        "example_tfjob_ps",
        "example_tfjob_sensor",
        "tfjob_reaper",
    ]
    clients = ("tensorflow", "kubernetes", "kubernetes_asyncio")
    assert [m for m in parsed["modules"] if m.split(".")[0] in clients] == []


def test_importing_the_operator_sensor_and_trigger_does_not_import_the_kubernetes_clients(
    tmp_path: Path,
) -> None:
    code = (
        "import sys, json, airflow_tfjob.operators.tfjob, airflow_tfjob.sensors.tfjob,"
        " airflow_tfjob.triggers.events;"
        "print(json.dumps(sorted(sys.modules)))"
    )
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert [
        m for m in loaded if m.split(".")[0] in ("tensorflow", "kubernetes", "kubernetes_asyncio")
    ] == []
    assert "airflow_tfjob.operators.tfjob" in loaded
