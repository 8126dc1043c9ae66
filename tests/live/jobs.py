"""What the live tests check on the cluster and in the deployment's logs, and the gate that
holds the jobs of tests/live/dags/live.py running (see its docstring)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes

from airflow_tfjob import Chief, TfJob, Worker
from tests.live.deployment import Deployment
from tests.waiting import eventually

GROUP, VERSION, PLURAL = "kubeflow.org", "v1", "tfjobs"


@dataclass(frozen=True)
class Gate:
    """The file the replicas of one test wait for (the runs' ``conf["gate"]``)."""

    path: Path

    @property
    def conf(self) -> dict[str, str]:
        return {"gate": str(self.path)}

    def open(self) -> None:
        """Let every waiting replica end (exit 0 with ``{"index": i}``, or fail, see below)."""
        self.path.touch()

    def fail(self, index: int) -> None:
        """Replicas of this index fail once the gate opens (exit 3, "shard <index> is corrupt")."""
        Path(f"{self.path}.fail-{index}").touch()


def tfjob(
    kube_api: kubernetes.client.ApiClient, namespace: str, name: str
) -> dict[str, Any] | None:
    """The TFJob as the API server has it, ``None`` when there is none."""
    custom = kubernetes.client.CustomObjectsApi(kube_api)
    try:
        return custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)  # type: ignore[no-any-return]
    except kubernetes.client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def pods(kube_api: kubernetes.client.ApiClient, namespace: str, name: str) -> list[str]:
    """Names of the job's pods (by the training operator's ``training.kubeflow.org/job-name``)."""
    core = kubernetes.client.CoreV1Api(kube_api)
    found = core.list_namespaced_pod(
        namespace, label_selector=f"training.kubeflow.org/job-name={name}"
    )
    return [pod.metadata.name for pod in found.items]


def gone(kube_api: kubernetes.client.ApiClient, namespace: str, name: str) -> bool:
    """The job and all its pods are deleted."""
    return tfjob(kube_api, namespace, name) is None and not pods(kube_api, namespace, name)


def worker_runs(live: Deployment, run_id: str) -> dict[tuple[str, int], int]:
    """How many worker processes ran each task instance of ``run_id`` to the end: (task id,
    map index) -> the executor's finished events in the scheduler's log. A task that resumes
    on a worker after its deferral counts 2; one ended by its trigger counts 1."""
    pattern = re.compile(
        r"Received executor event with state (?:success|failed) for task instance "
        r"TaskInstanceKey\(dag_id='[^']*', task_id='([^']*)', run_id='([^']*)', "
        r"try_number=\d+, map_index=(-?\d+)\)"
    )
    counts: dict[tuple[str, int], int] = {}
    for task_id, run, index in pattern.findall(live.components["scheduler"].read_log()):
        if run == run_id:
            key = (task_id, int(index))
            counts[key] = counts.get(key, 0) + 1
    return counts


def triggers_started(live: Deployment, dag_id: str, run_id: str) -> int:
    """How many triggers of the run a triggerer has started: Airflow writes trigger lines to
    ``attempt=<n>.log.trigger.<triggerer job>.log`` beside the task's log."""
    run = live.logs / f"dag_id={dag_id}" / f"run_id={run_id}"
    started = re.compile(r"\(ID \d+\) starting")
    return sum(
        len(started.findall(path.read_text(errors="replace")))
        for path in run.glob("**/*.log.trigger.*.log")
    )


def replica_processes(gate: Gate) -> list[int]:
    """PIDs of the replica processes (tests/live/dags/live.py's GATE) waiting for ``gate``."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if str(gate.path) in (proc.info["cmdline"] or []):
            found.append(proc.info["pid"])
    return found


def create_outside_airflow(
    kube_api: kubernetes.client.ApiClient, namespace: str, name: str, labels: dict[str, str]
) -> dict[str, Any]:
    """A TFJob (chief + worker, image tf:2) made outside Airflow, as by a notebook: no labels of
    ours, only ``labels``."""
    manifest = TfJob(chief=Chief(), worker=Worker()).to_manifest(name, namespace, image="tf:2")
    manifest["metadata"]["labels"] = labels
    custom = kubernetes.client.CustomObjectsApi(kube_api)
    return custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest)  # type: ignore[no-any-return]


def last_condition(kube_api: kubernetes.client.ApiClient, namespace: str, name: str) -> str:
    """The type of the TFJob's newest true condition ("Succeeded", "Failed"...), "" if none."""
    custom = kubernetes.client.CustomObjectsApi(kube_api)
    obj = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    true = [
        c["type"]
        for c in (obj.get("status") or {}).get("conditions") or []
        if c["status"] == "True"
    ]
    return true[-1] if true else ""


@contextlib.contextmanager
def watching_dags(
    live: Deployment, proxy: Any, namespace: str, file_name: str, source: str, dag_ids: list[str]
) -> Iterator[str]:
    """A DAG file of watcher DAGs on ``namespace``: parsed, unpaused and watching (one watch of
    the namespace's TFJobs through ``proxy``) inside; removed and its DAGs paused afterwards."""
    path = live.add_dag_file(file_name, source)
    with live.client("admin") as api:
        for dag_id in dag_ids:
            api.wait_for_dag(dag_id, timeout=120)
        jobs = rf"/namespaces/{namespace}/tfjobs$"
        eventually(lambda: proxy.open_streams(jobs) == 1, timeout=120)
        try:
            yield namespace
        finally:
            path.unlink()
            for dag_id in dag_ids:
                api.call("PATCH", f"/dags/{dag_id}", json={"is_paused": True})
