"""Fixtures for the TFJobs page: simulated jobs in several states, and a real Airflow api-server
with this provider's plugin, two users and a per-DAG auth manager, served under a sub-path
(``[api] base_url`` ``http://127.0.0.1:<port>/airflow``): the newest Airflow's (``ui_server``),
and each Airflow version's the page supports (``airflow_ui``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import kubernetes
import pytest

from airflow_tfjob import Chief, TfJob, Worker
from airflow_tfjob.backends.local import ports
from airflow_tfjob.model import naming
from tests.airflow_fixtures import tfjob_hook
from tests.cluster import jobs as tfjobs
from tests.cluster.fixtures import wait_for_default_account
from tests.kubelet.fates import RUNS_FOR_EVER, Fate, Script
from tests.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
USERS = {"admin": "admin", "viewer": "viewer"}
DAGS = {
    "public_train": "train",
    "public_eval": "evaluate",
    "secret_train": "train",
    "public_mapped": "train",
}
"""Each DAG's one task; ``public_mapped``'s is mapped over three values."""
CHIEF_LOG = ["loading data", "epoch 1: loss 0.61", "epoch 2: loss 0.32", "saved model"]
WORKER_LOG = ["worker 1: gradients for shard 1"]
"""What worker 1 of the succeeded job prints."""
DEPLOYMENT = "localhost-8080"
"""The api-servers' ``[tfjob] deployment``, set explicitly (its default, the host and port of
``[api] base_url``, differs per server): every server shows the same simulated jobs."""
BASE_PATH = "/airflow"
"""The path of every test server's ``[api] base_url``: Airflow served under a sub-path."""
AIRFLOWS = {"3.1": ROOT / ".venv-airflow-3.1"}
"""The older Airflow versions the page is checked on besides this venv's (``airflow_ui``): each
in a venv of its own with this package installed editable (``.ci/setup`` makes them). The
oldest supported minor only: 3.2's UI embeds plugin views as 3.3's does (checked by hand on
2026-12-07, 20 passed with it), and CI's time is kept for the version matrix (.ci/matrix)."""
RUNS = {
    "succeeded": ("public_train", "manual__2026-11-01T00:00:00+00:00"),
    "failed": ("public_train", "manual__2026-11-02T00:00:00+00:00"),
    "running": ("public_eval", "manual__2026-11-03T00:00:00+00:00"),
    "secret": ("secret_train", "manual__2026-11-04T00:00:00+00:00"),
}
"""The DAG run behind each simulated job (``ui_server`` creates them, with their task instances)."""
MAPPED_RUN = "manual__2026-11-05T00:00:00+00:00"
"""A run of ``public_mapped``: task instances ``train`` [0], [1] and [2], and no job."""
TASK_STATES = {"running": "failed"}
"""Task instance states set by ``ui_server`` (others have none: queued runs): the running job's
task failed, so the job is an orphan."""


@dataclass(frozen=True)
class UiJobs:
    """The simulated TFJobs the page shows."""

    namespace: str
    names: dict[str, str]
    """Role in the test -> TFJob name."""
    replicas: Script
    """The simulated training operator of the namespace (script more jobs with it)."""


def manifest(
    name: str,
    namespace: str,
    dag_id: str,
    task_id: str,
    run_id: str,
    *,
    map_index: int = -1,
    try_number: int = 1,
) -> dict[str, Any]:
    """A chief and two workers, made as ``TFJobOperator`` makes them for that task instance."""
    made = TfJob(chief=Chief(), worker=Worker(replicas=2)).to_manifest(
        name, namespace, image="tf:2"
    )
    made["metadata"]["labels"] = naming.task_labels(
        dag_id, task_id, run_id, map_index, try_number, deployment=DEPLOYMENT
    )
    made["metadata"]["annotations"] = naming.task_annotations(dag_id, task_id, run_id, map_index)
    return made


@pytest.fixture(scope="package")
def ui_jobs(
    kube_cluster: Any,
    kube_api: kubernetes.client.ApiClient,
    kubelet: Any,
    kubeconfig: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[UiJobs]:
    """Four jobs of three DAGs: succeeded, failed, running (public) and succeeded (secret)."""
    namespace = f"ui-{uuid.uuid4().hex[:8]}"
    core = kubernetes.client.CoreV1Api(kube_api)
    core.create_namespace({"metadata": {"name": namespace}})
    wait_for_default_account(core, namespace)
    sim = kubelet.script(namespace)
    names = {
        "succeeded": "public-train-ok",
        "failed": "public-train-bad",
        "running": "public-eval-live",
        "secret": "secret-train-ok",
    }
    sim.set_fate(
        names["succeeded"], "Chief", 0, Fate(duration=0.5, logs=CHIEF_LOG, message='{"loss": 0.32}')
    )
    sim.set_fate(names["succeeded"], "Worker", 1, Fate(logs=WORKER_LOG))
    sim.set_fate(
        names["failed"], "Worker", 1, Fate(exit_code=1, message="CUDA error: out of memory")
    )
    sim.set_fate(names["failed"], "Chief", 0, RUNS_FOR_EVER)
    sim.set_fate(names["running"], "Chief", 0, Fate(exit_code=None, logs=["evaluating"]))
    hook = tfjob_hook(kubeconfig)
    for role, (dag_id, run_id) in RUNS.items():
        hook.create(manifest(names[role], namespace, dag_id, DAGS[dag_id], run_id))
    phases = {
        "succeeded": "Succeeded",
        "failed": "Failed",
        "running": "Running",
        "secret": "Succeeded",
    }
    for role, phase in phases.items():
        tfjobs.wait_for(kube_api, namespace, names[role], lambda j, p=phase: _is(j, p), timeout=60)
    try:
        yield UiJobs(namespace, names, sim)
    finally:
        kubelet.forget(namespace)
        core.delete_namespace(namespace, _preload_content=False)


def _is(job: dict[str, Any], phase: str) -> bool:
    return any(
        c.get("type") == phase and c.get("status") == "True"
        for c in (job.get("status") or {}).get("conditions") or []
    )


@dataclass(frozen=True)
class UiServer:
    """A running ``airflow api-server`` with the plugin."""

    url: str
    """Where Airflow is served: ``http://127.0.0.1:<port>/airflow`` (``BASE_PATH``)."""
    log: Path
    env: dict[str, str]
    """The api-server's environment (its AIRFLOW_HOME, DB, connections)."""
    version: str
    """Its Airflow version."""

    @property
    def base_path(self) -> str:
        """The path part of ``url`` (``/airflow``)."""
        return urlparse(self.url).path

    def token(self, user: str) -> str:
        """A JWT for ``user``, from the simple auth manager's login endpoint."""
        response = httpx.post(
            f"{self.url}/auth/token", json={"username": user, "password": USERS[user]}, timeout=30
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def get(self, path: str, user: str | None) -> httpx.Response:
        """GET ``path`` as ``user`` (``None``: no credentials)."""
        return self.request("GET", path, user)

    def request(self, method: str, path: str, user: str | None, body: Any = None) -> httpx.Response:
        """``method`` on ``path`` as ``user`` (``None``: no credentials), ``body`` as JSON."""
        headers = {"Authorization": f"Bearer {self.token(user)}"} if user else {}
        return httpx.request(method, f"{self.url}{path}", headers=headers, json=body, timeout=60)

    def create_run(self, dag_id: str, run_id: str, task_state: str | None = None) -> None:
        """A DAG run (and its task instances) in the api-server's metadata DB, through the REST
        API as admin; ``task_state``: then set every task instance's state to it."""
        created = self.request(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns", "admin",
            body={"dag_run_id": run_id, "logical_date": None},
        )  # fmt: skip
        assert created.status_code == 200, created.text
        if task_state is None:
            return
        task_id = DAGS[dag_id]
        changed = self.request(
            "PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}", "admin",
            body={"new_state": task_state},
        )  # fmt: skip
        assert changed.status_code == 200, changed.text


DAG_FILE = """
import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
with DAG({dag_id!r}, schedule=None, start_date=datetime.datetime(2026, 1, 1)):
    EmptyOperator(task_id={task_id!r})
"""
MAPPED_DAG_FILE = """
import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.bash import BashOperator
with DAG({dag_id!r}, schedule=None, start_date=datetime.datetime(2026, 1, 1)):
    BashOperator.partial(task_id={task_id!r}).expand(bash_command=["true", "true", "true"])
"""


@pytest.fixture(scope="package")
def ui_server(
    ui_jobs: UiJobs, kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UiServer]:
    """This venv's ``airflow api-server`` (see ``serve``)."""
    yield from serve(Path(sys.executable).parent, ui_jobs, kubeconfig, tmp_path_factory)


@pytest.fixture(scope="package", params=["main", *AIRFLOWS])
def airflow_ui(
    request: pytest.FixtureRequest,
    ui_jobs: UiJobs,
    kubeconfig: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[UiServer]:
    """The api-server of each Airflow version the page is checked on: this venv's
    (``ui_server``), then each of ``AIRFLOWS``. A missing venv skips its case, saying so."""
    if request.param == "main":
        yield request.getfixturevalue("ui_server")
        return
    venv = AIRFLOWS[request.param]
    if not (venv / "bin" / "airflow").exists():
        pytest.skip(
            f"Airflow {request.param} is not installed: no {venv.relative_to(ROOT)}/bin/airflow "
            "(bash .ci/setup makes it)"
        )
    for server in serve(venv / "bin", ui_jobs, kubeconfig, tmp_path_factory):
        assert server.version.startswith(f"{request.param}."), (request.param, server.version)
        yield server


def serve(
    bin_dir: Path, ui_jobs: UiJobs, kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UiServer]:
    """``airflow api-server`` of the venv ``bin_dir`` on a home of its own, served under
    ``BASE_PATH``: four DAGs, users admin and viewer (who may read only ``public_*`` DAGs), the
    test cluster as connection ``tfjob_test`` and an unreachable one as ``tfjob_down``."""
    home = tmp_path_factory.mktemp("ui-home")
    env = _environment(home, ui_jobs, kubeconfig)
    airflow = str(bin_dir / "airflow")
    version = subprocess.run(
        [str(bin_dir / "python"), "-c", "import airflow; print(airflow.__version__)"],
        env=env, check=True, capture_output=True, text=True, timeout=120,
    ).stdout.strip()  # fmt: skip
    for command in (["db", "migrate"], ["dags", "reserialize"]):
        subprocess.run([airflow, *command], env=env, check=True, capture_output=True, timeout=300)
    port, log = ports.free_ports(1)[0], home / "api-server.log"
    env["AIRFLOW__API__BASE_URL"] = url = f"http://127.0.0.1:{port}{BASE_PATH}"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [airflow, "api-server", "-H", "127.0.0.1", "-p", str(port), "-w", "1"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        eventually(lambda: _healthy(url) or server.poll() is not None, timeout=120, interval=0.5)
        assert server.poll() is None, log.read_text()[-3000:]
        ui = UiServer(url, log, env, version)
        for role, (dag_id, run_id) in RUNS.items():
            ui.create_run(dag_id, run_id, task_state=TASK_STATES.get(role))
        ui.create_run("public_mapped", MAPPED_RUN)
        yield ui
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _environment(home: Path, ui_jobs: UiJobs, kubeconfig: Path) -> dict[str, str]:
    """The api-server's environment, with its DAG files and passwords written under ``home``."""
    dags = home / "dags"
    dags.mkdir()
    for dag_id, task_id in DAGS.items():
        source = MAPPED_DAG_FILE if dag_id == "public_mapped" else DAG_FILE
        (dags / f"{dag_id}.py").write_text(source.format(dag_id=dag_id, task_id=task_id))
    (home / "simple_auth_manager_passwords.json.generated").write_text(json.dumps(USERS))
    down = {"conn_type": "kubernetes", "extra": {"kube_config_path": str(_down_kubeconfig(home))}}
    test = {
        "conn_type": "kubernetes",
        "extra": {"kube_config_path": str(kubeconfig), "namespace": ui_jobs.namespace},
    }
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{u}" for u in USERS),
        "AIRFLOW__CORE__AUTH_MANAGER": "tests.ui.auth.PrefixAuthManager",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__TFJOB__DEPLOYMENT": DEPLOYMENT,
        "AIRFLOW__TFJOB__UI_CONNECTIONS": "tfjob_test,tfjob_down",
        "AIRFLOW_CONN_TFJOB_TEST": json.dumps(test),
        "AIRFLOW_CONN_TFJOB_DOWN": json.dumps(down),
        "PYTHONPATH": str(ROOT),
    }


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v2/monitor/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _down_kubeconfig(home: Path) -> Path:
    """A kubeconfig naming a port nobody listens on."""
    port = ports.free_ports(1)[0]
    path = home / "down.kubeconfig"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "down", "cluster": {"server": f"https://127.0.0.1:{port}"}}],
                "users": [{"name": "down", "user": {"token": "not-a-real-token"}}],
                "contexts": [{"name": "down", "context": {"cluster": "down", "user": "down"}}],
                "current-context": "down",
            }
        )
    )
    return path
