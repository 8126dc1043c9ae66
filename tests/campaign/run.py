"""One campaign run: a namespace on the real training operator, the scenario's DAG run as a worker
would run it (a process of its own, against the fault proxy), its faults at their moments, and a
``Record`` of everything the checks need."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes

from airflow_tfjob import Chief, RunPolicy, TfJob, Worker
from airflow_tfjob.model import naming
from tests.airflow_fixtures import LOGICAL_DATE
from tests.campaign import dags
from tests.campaign.observer import GROUP, PLURAL, VERSION, Observer
from tests.campaign.plan import API_FAULTS, ORPHAN_FAULTS, Fault, Scenario
from tests.cluster.fixtures import wait_for_default_account
from tests.faults.rules import Rule
from tests.kubelet.fates import REAL, RUNS_FOR_EVER, Fate

RUN_ID = f"manual__{LOGICAL_DATE.isoformat()}"
PROCESS_LIMIT = 240.0
"""A task process still alive after this long is hung: killed, and a violation."""
SENSOR_HEAD_START = 30.0
"""Seconds an external job runs longer, for the sensor task (Airflow start-up) to look at it."""
SETTLE = 30.0
ROOT_CA = "kube-root-ca.crt"
"""The ConfigMap kube-controller-manager's root-CA publisher puts in every namespace."""
"""How long clean-up (foreground deletion, pod removal) may take after the task ended."""


@dataclass
class Ground:
    """What every run shares: the cluster, kubelet and proxy; and a pool of Airflow homes (each
    a copy of the migrated SQLite DB with its own dags folder), one per run at a time, so runs
    can go in parallel without sharing a SQLite file."""

    cluster: Any
    kubelet: Any
    proxy: Any
    homes: queue.Queue[Path]
    workdir: Path

    @classmethod
    def homes_from(cls, database: Path, workdir: Path, count: int) -> queue.Queue[Path]:
        pool: queue.Queue[Path] = queue.Queue()
        for k in range(count):
            home = workdir / f"airflow-home-{k}"
            (home / "dags").mkdir(parents=True)
            shutil.copy(database, home / "airflow.db")
            pool.put(home)
        return pool


@dataclass
class Record:
    """What one run did and left behind."""

    scenario: Scenario
    namespace: str
    dag_id: str
    log: str = ""
    result: list[dict[str, Any]] | None = None
    wall: float = 0.0
    """Seconds from the first task process's start to the last one's end."""
    injected: list[str] = field(default_factory=list)
    """Faults that actually happened (an API rule that caught a request, a kill delivered)."""
    created: dict[str, list[str]] = field(default_factory=dict)
    most_live: dict[str, int] = field(default_factory=dict)
    deleted_unfinished: dict[str, list[str]] = field(default_factory=dict)
    left_jobs: list[dict[str, Any]] = field(default_factory=list)
    left_pods: list[dict[str, Any]] = field(default_factory=list)
    left_configmaps: list[str] = field(default_factory=list)
    hung: bool = False
    external_job: str = ""
    exit_codes: list[int | None] = field(default_factory=list)
    reaped: dict[str, Any] | None = None
    """The reaper's XCom, when it ran after an orphan fault (None if it did not report)."""
    reaper_log: str = ""


def _api_rule(fault: Fault, namespace: str) -> Rule:
    target = fault.params["target"]
    path = f"/namespaces/{namespace}/" + ("" if target == "any" else str(target))
    times = int(fault.params.get("times", 1))
    if fault.kind == "5xx":
        return Rule("error", path, status=int(fault.params["status"]), times=times)
    if fault.kind == "429":
        return Rule("error", path, status=429, retry_after=1, times=times)
    if fault.kind == "drop":
        return Rule("drop", path, times=times)
    if fault.kind == "stall":
        return Rule("stall", path, seconds=float(fault.params["seconds"]), times=times)
    if fault.kind == "watch_cut":
        seconds = float(fault.params["after_seconds"])
        return Rule("cut", path, watch=True, seconds=seconds, times=times)
    return Rule("gone", path, watch=True, times=1)


def _script(sim: Any, scenario: Scenario, jobs: list[str]) -> None:
    """The replicas' fates: the chief's output, and the scenario's replica faults."""
    if scenario.shape == "function":
        sim.set_default_fate("*", REAL)
        return
    outputs = dags.outputs(scenario)
    for job, output in zip(jobs, outputs, strict=True):
        if scenario.fault("deadline") or any(scenario.fault(k) for k in ORPHAN_FAULTS):
            sim.set_fate(job, "Chief", 0, Fate(exit_code=None))  # runs until someone ends it
        else:
            message = json.dumps(output)
            # a sensor's job starts before the task does: give the task time to start waiting
            seconds = scenario.chief_seconds + (
                SENSOR_HEAD_START if scenario.shape == "sensor" else 0
            )
            sim.set_fate(job, "Chief", 0, Fate(duration=seconds, message=message))
        # Always restarts a container that exits 0 as well, and every restart counts against
        # backoffLimit: workers then run until the chief's success ends the job, as real ones do
        after = RUNS_FOR_EVER if dags.policy(scenario) == "Always" else Fate()
        for index in (0, 1):
            sim.set_fate(job, "Worker", index, after)
        failure, eviction = scenario.fault("replica_failure"), scenario.fault("eviction")
        if failure is not None:
            index = int(str(failure.params["replica"]).rsplit("-", 1)[1])
            code = int(failure.params["exit_code"])
            sim.set_fate(job, "Worker", index, Fate(duration=0.5, exit_code=code), after)
        if eviction is not None:
            sim.set_fate(job, "Worker", 1, Fate(duration=0.5, evicted=True), after)


def _job_names(scenario: Scenario, dag_id: str) -> list[str]:
    if scenario.shape == "sensor":
        return [f"ext-{scenario.index}"]
    if scenario.shape == "mapped":
        return [naming.job_name(dag_id, "train", RUN_ID, i) for i in (0, 1)]
    return [naming.job_name(dag_id, "train", RUN_ID, -1)]


class Run:
    """Carries out one scenario on the ground."""

    def __init__(self, ground: Ground, scenario: Scenario) -> None:
        self.ground, self.scenario = ground, scenario
        self.client = ground.cluster.api_client()
        self.core = kubernetes.client.CoreV1Api(self.client)
        self.custom = kubernetes.client.CustomObjectsApi(self.client)
        tag = f"{scenario.seed}-{scenario.index}-{uuid.uuid4().hex[:4]}"
        self.namespace = f"campaign-{tag}"
        self.record = Record(scenario, self.namespace, f"campaign_{tag.replace('-', '_')}")
        self.logs = ground.workdir / self.namespace
        self.timers: list[threading.Timer] = []
        self.home = Path()

    def execute(self) -> Record:
        scenario, record = self.scenario, self.record
        self.home = self.ground.homes.get()
        self.core.create_namespace({"metadata": {"name": self.namespace}})
        wait_for_default_account(self.core, self.namespace)
        self.logs.mkdir(parents=True, exist_ok=True)
        sim = self.ground.kubelet.script(self.namespace)
        observer = Observer(self.client, self.namespace).start()
        rules: list[tuple[Fault, Rule]] = []
        try:
            jobs = _job_names(scenario, record.dag_id)
            _script(sim, scenario, jobs)
            if scenario.shape == "sensor":
                record.external_job = jobs[0]
                self._create_external(jobs[0])
            path = self.home / "dags" / f"{record.dag_id}.py"
            path.write_text(
                dags.dag_source(
                    scenario, dag_id=record.dag_id, namespace=self.namespace,
                    kubeconfig=str(self.ground.proxy.kubeconfig),
                    logical=LOGICAL_DATE.isoformat(), job_name=record.external_job,
                )
            )  # fmt: skip
            for fault in scenario.faults:
                if fault.kind in API_FAULTS:
                    rule = _api_rule(fault, self.namespace)
                    rules.append((fault, rule))
                    self._later(fault.at, self.ground.proxy.add, rule)
            started = time.monotonic()
            self._run_task(path, jobs)
            record.wall = time.monotonic() - started
        finally:
            for timer in self.timers:
                timer.cancel()
            self._remove_rules([rule for _, rule in rules])
            record.injected += [f.kind for f, rule in rules if rule.hits]
            if set(ORPHAN_FAULTS) & set(record.injected):
                self._reap()
            self._settle(record)
            observer.stop()
            record.created = {k: list(v) for k, v in observer.created.items()}
            record.most_live = dict(observer.most_live)
            record.deleted_unfinished = {k: list(v) for k, v in observer.deleted_unfinished.items()}
            self.ground.kubelet.forget(self.namespace)
            self.core.delete_namespace(self.namespace, _preload_content=False)
            self.client.close()
            self.ground.homes.put(self.home)
        return record

    def _later(self, delay: float, fn: Any, *args: Any) -> None:
        timer = threading.Timer(delay, fn, args)
        timer.daemon = True
        timer.start()
        self.timers.append(timer)

    def _remove_rules(self, rules: list[Rule]) -> None:
        proxy = self.ground.proxy
        with proxy.lock:
            proxy.rules = [r for r in proxy.rules if all(r is not mine for mine in rules)]

    def _create_external(self, name: str) -> None:
        workers = Worker(replicas=2, restart_policy=dags.policy(self.scenario))
        job = TfJob(chief=Chief(), worker=workers, run_policy=RunPolicy(backoff_limit=3))
        manifest = job.to_manifest(name, self.namespace, image="tf:2")
        self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, manifest
        )

    def _start(
        self, path: Path, attempt: int, *, log_name: str = "", env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """The DAG file's ``dag.test()`` as its own process (a worker), in this run's home."""
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.home / "dags"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
            **(env or {}),
        }
        with (self.logs / (log_name or f"task-{attempt}.log")).open("wb") as out:
            return subprocess.Popen(
                [sys.executable, str(path)],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )

    def _run_task(self, path: Path, jobs: list[str]) -> None:
        scenario, record = self.scenario, self.record
        proc = self._start(path, 1)
        kills = ("worker_sigkill", "user_kill", "external_delete", *ORPHAN_FAULTS)
        kill = next((f for f in scenario.faults if f.kind in kills), None)
        job = self._running(jobs, proc) if kill is not None else None
        if kill is not None and job is not None and self._waiting(job, proc):
            if kill.kind in ("mark_failed_on_defer", "triggerer_down_mark_failed"):
                self._deferred(proc)
            time.sleep(kill.at)
            if proc.poll() is None:
                self._apply(kill, proc, job)
        self._wait(proc)
        if kill is not None and kill.kind == "worker_sigkill" and kill.kind in record.injected:
            retry = self._start(path, 2)  # the task's retry, on another worker
            self._wait(retry)
        record.log = "\n".join(
            p.read_text(errors="replace") for p in sorted(self.logs.glob("task-*.log"))
        )
        record.result = dags.parse_result(record.log)
        for fault in scenario.faults:
            scripted = fault.kind in ("replica_failure", "eviction", "deadline")
            if scripted or (fault.kind == "triggerer_restart" and dags.RESTART_MARK in record.log):
                record.injected.append(fault.kind)

    def _apply(self, fault: Fault, proc: subprocess.Popen[bytes], job: str) -> None:
        if fault.kind == "worker_sigkill":
            os.killpg(proc.pid, signal.SIGKILL)
        elif fault.kind in ORPHAN_FAULTS:
            os.killpg(proc.pid, signal.SIGKILL)  # the worker, and the in-line trigger with it
            proc.wait()
            self._end_task_instances(fault.kind)
        elif fault.kind == "user_kill":
            os.kill(proc.pid, signal.SIGTERM)  # what Airflow sends when a user kills the task
        else:
            obj = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, job
            )
            ended = {c.get("type") for c in (obj.get("status") or {}).get("conditions") or []}
            if ended & {"Succeeded", "Failed"}:
                return  # too late: deleting a finished job dooms nothing (not injected)
            try:
                self.custom.delete_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, job,
                    body={"propagationPolicy": "Foreground"},
                )  # fmt: skip
            except kubernetes.client.ApiException as exc:
                if exc.status == 404:
                    return
                raise
        self.record.injected.append(fault.kind)

    def _end_task_instances(self, kind: str) -> None:
        """What Airflow does meanwhile, in the run's metadata DB: the scheduler fails the
        SIGKILLed worker's task instance (heartbeat timeout), a user marks the deferred one
        failed (no triggerer runs its trigger), or deletes the DAG run."""
        import sqlite3

        with sqlite3.connect(self.home / "airflow.db") as db:
            if kind == "run_deleted":
                db.execute("DELETE FROM task_instance WHERE dag_id = ?", (self.record.dag_id,))
                db.execute("DELETE FROM dag_run WHERE dag_id = ?", (self.record.dag_id,))
            else:
                db.execute(
                    "UPDATE task_instance SET state = 'failed', end_date = ? WHERE dag_id = ?",
                    (time.strftime("%Y-%m-%d %H:%M:%S.000000", time.gmtime()), self.record.dag_id),
                )

    def _deferred(self, proc: subprocess.Popen[bytes]) -> bool:
        """Wait until the task has deferred (``dag.test()`` then runs its trigger in line)."""
        log, ends = self.logs / "task-1.log", time.monotonic() + 90
        while time.monotonic() < ends and proc.poll() is None:
            if "[DAG TEST] running trigger in line" in log.read_text(errors="replace"):
                return True
            time.sleep(0.05)
        return False

    def _reap(self) -> None:
        """Run the reaper once, as its maintenance DAG would after the task instance ended."""
        path = self.home / "dags" / f"reaper_{self.record.dag_id}.py"
        path.write_text(dags.reaper_source(self.record.dag_id, self.namespace))
        connection = {
            "conn_type": "kubernetes",
            "extra": {"kube_config_path": str(self.ground.proxy.kubeconfig)},
        }
        env = {"AIRFLOW_CONN_CAMPAIGN_CLUSTER": json.dumps(connection)}
        proc = self._start(path, 0, log_name="reaper.log", env=env)
        self._wait(proc)
        self.record.reaper_log = (self.logs / "reaper.log").read_text(errors="replace")
        self.record.reaped = dags.parse_reaper(self.record.reaper_log)

    def _running(self, jobs: list[str], proc: subprocess.Popen[bytes]) -> str | None:
        """Wait until one of the jobs has a status (it runs; ``dag.test()`` may run map index 1
        first): its name; None if the task ended first."""
        ends = time.monotonic() + 90
        while time.monotonic() < ends and proc.poll() is None:
            for job in jobs:
                try:
                    obj = self.custom.get_namespaced_custom_object(
                        GROUP, VERSION, self.namespace, PLURAL, job
                    )
                except kubernetes.client.ApiException:
                    obj = {}
                if (obj.get("status") or {}).get("conditions"):
                    return job
            time.sleep(0.1)
        return None

    def _waiting(self, job: str, proc: subprocess.Popen[bytes]) -> bool:
        """A sensor's job exists before the task starts: wait until the sensor has looked at it
        (its first check logs the job's state), so a fault hits a task that is waiting."""
        if self.scenario.shape != "sensor":
            return True
        log, mark = self.logs / "task-1.log", f"TFJob {self.namespace}/{job}: "
        ends = time.monotonic() + 90
        while time.monotonic() < ends and proc.poll() is None:
            if mark in log.read_text(errors="replace"):
                return True
            time.sleep(0.1)
        return False

    def _wait(self, proc: subprocess.Popen[bytes]) -> None:
        try:
            proc.wait(timeout=PROCESS_LIMIT)
        except subprocess.TimeoutExpired:
            self.record.hung = True
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        self.record.exit_codes.append(proc.returncode)

    def _settle(self, record: Record) -> None:
        """What is left once clean-up had its time: jobs, pods, ConfigMaps."""
        ends = time.monotonic() + SETTLE
        while True:
            jobs = self.custom.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL
            )["items"]
            pods = self.core.list_namespaced_pod(self.namespace).to_dict()["items"]
            names = {j["metadata"]["name"] for j in jobs}
            terminating = [j for j in jobs if j["metadata"].get("deletionTimestamp")]
            orphans = [p for p in pods if _job_of(p) not in names]
            if (not terminating and not orphans) or time.monotonic() > ends:
                break
            time.sleep(0.5)
        record.left_jobs, record.left_pods = jobs, pods
        record.left_configmaps = [
            c.metadata.name
            for c in self.core.list_namespaced_config_map(self.namespace).items
            if c.metadata.name != ROOT_CA  # kube-controller-manager's, in every namespace
        ]


def _job_of(pod: dict[str, Any]) -> str:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return str(labels.get("training.kubeflow.org/job-name", ""))
