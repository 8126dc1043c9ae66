"""A real multi-process Airflow deployment for the live tier, started and stopped by the tests.

:meth:`Deployment.start` creates a throwaway PostgreSQL metadata DB (:mod:`tests.live.postgres`),
runs ``airflow db migrate`` once, then starts ``api-server``, ``scheduler``, ``dag-processor``
and ``triggerer`` as separate processes (:mod:`tests.live.component`) on a shared AIRFLOW_HOME,
with the LocalExecutor, and waits until the api-server answers and every other component
heartbeats. The DAG files of ``tests/live/dags`` are copied into the deployment's dags folder;
more can be added while it runs (:meth:`Deployment.add_dag_file`).

The components' environment is built from scratch: none of the pytest process's ``AIRFLOW*``
variables leak in. It holds the shared secrets (JWT, API secret key, Fernet key, so trigger
kwargs are encrypted), the auth manager of the UI tests (``tests.ui.auth.PrefixAuthManager``:
users ``admin`` and ``viewer``, see :data:`USERS`), Airflow connections given as
``AIRFLOW_CONN_*`` JSON, and intervals short enough for tests on two cores (:data:`CONFIG`).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import datetime
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from airflow_tfjob.backends.local.ports import free_ports
from tests.live.component import Component
from tests.live.postgres import Postgres
from tests.live.rest import AirflowClient

ROOT = Path(__file__).resolve().parents[2]
DAGS = Path(__file__).resolve().parent / "dags"
"""The live tier's committed DAG files."""
AIRFLOW = str(Path(sys.executable).parent / "airflow")
USERS = {"admin": "admin", "viewer": "viewer"}
"""Simple-auth-manager users (password = name): ``admin`` (role admin) and ``viewer`` (role
viewer, who may read only DAGs whose id starts with ``public_``)."""
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
"""The component names; each is also its log's stem and its ``airflow`` subcommand."""

CONFIG: dict[str, str] = {
    "core.executor": "LocalExecutor",
    "core.load_examples": "False",
    "database.check_migrations": "False",  # `db migrate` ran once; no alembic check per CLI
    # 20+ deferrable tasks at once: executor slots, per-DAG and per-query limits.
    "core.parallelism": "24",  # the LocalExecutor forks this many workers at start
    "core.max_active_tasks_per_dag": "64",
    "core.max_active_runs_per_dag": "32",
    "scheduler.max_tis_per_query": "0",  # = parallelism
    "scheduler.scheduler_idle_sleep_time": "0.5",
    # A SIGKILLed supervisor is noticed within ~2 min instead of 5. Not shorter: on two busy
    # cores a supervisor's heartbeats can lag tens of seconds, and a task declared dead while it
    # defers is killed (its job deleted by on_kill) and tried again.
    "scheduler.task_instance_heartbeat_timeout": "120",
    "scheduler.task_instance_heartbeat_timeout_detection_interval": "5",
    # One scheduler, never restarted by the tests: with 200 tasks starting on two cores its loop
    # stalled 56 s, it then found its own heartbeat older than the default 30 s, marked itself
    # failed and reset its 48 running tasks as orphans (seen in bench/end_from_trigger.py).
    "scheduler.scheduler_health_check_threshold": "600",
    # New DAG files are seen within ~2 s; changed ones are re-parsed at once; unchanged ones
    # are not re-parsed every 30 s.
    "dag_processor.refresh_interval": "2",
    "dag_processor.bundle_refresh_check_interval": "1",
    "dag_processor.min_file_process_interval": "120",
    "dag_processor.print_stats_interval": "0",
    # A SIGKILLed triggerer's triggers go to the next one after ~15 s instead of 30 s.
    "triggerer.job_heartbeat_sec": "2",
    "triggerer.triggerer_health_check_threshold": "15",
}
"""``section.option`` -> value: the deployment's Airflow settings (beyond ports, secrets and
paths). Pass ``config=`` to :class:`Deployment` to override or add."""


@dataclass(frozen=True)
class TaskProcesses:
    """The processes of one running task instance (PIDs, ``None`` when not found).

    SIGKILL the ``runner`` and the supervisor fails the try at once; SIGKILL the ``supervisor``
    and the runner lives on, orphaned, while the scheduler fails the try only when its
    heartbeat times out (``scheduler.task_instance_heartbeat_timeout``, 120 s here)."""

    supervisor: int | None
    """The LocalExecutor worker that took the task: it runs the supervisor itself (titled
    ``airflow worker -- LocalExecutor: <ti id>`` meanwhile), heartbeats and reports the end."""
    runner: int | None
    """``airflow worker -- <ti id>``, forked by the supervisor: it runs ``execute()``."""


@dataclass
class Timings:
    """Seconds spent starting the deployment."""

    postgres: float = 0.0
    migrate: float = 0.0
    components: float = 0.0
    """From starting the four components to all of them being healthy."""
    total: float = 0.0


@dataclass
class Deployment:
    """The running deployment; :meth:`start` it, :meth:`stop` it (also done at exit).

    :param home: AIRFLOW_HOME (an empty directory); logs go to ``home/logs/``.
    :param connections: Airflow connections, id -> ``{"conn_type": ..., "extra": {...}}``.
    :param config: ``section.option`` -> value, over :data:`CONFIG`.
    """

    home: Path
    connections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    config: Mapping[str, str] = field(default_factory=dict)
    triggerers: int = 1
    """How many triggerers: ``triggerer``, then ``triggerer-2``, ... (each started once the one
    before is healthy, so their job ids rise in that order), each with its own log server."""
    components: dict[str, Component] = field(default_factory=dict, init=False)
    """Name (see :data:`COMPONENTS`) -> :class:`Component`: ``send_signal``, ``stop``, ``kill``,
    ``start`` (then :meth:`wait_healthy`), ``log``/``read_log()``, ``pid``, ``session()``."""
    timings: Timings = field(default_factory=Timings, init=False)
    postgres: Postgres | None = field(default=None, init=False, repr=False)
    url: str = field(default="", init=False)
    """``http://127.0.0.1:PORT`` of the api-server."""

    @property
    def dags_folder(self) -> Path:
        return self.home / "dags"

    @property
    def logs(self) -> Path:
        """The components' logs (``<name>.log``) and Airflow's task logs (``dag_id=.../``)."""
        return self.home / "logs"

    # --- life cycle ------------------------------------------------------------------------

    def start(self, *, timeout: float = 180.0) -> Deployment:
        """Start everything and wait until it is healthy; on failure, stop what started."""
        began = time.monotonic()
        atexit.register(self.stop)
        self._stop_on_sigterm()
        try:
            self.postgres = Postgres.start()
            self.timings.postgres = self.postgres.startup_seconds
            self.logs.mkdir(parents=True, exist_ok=True)
            self.dags_folder.mkdir(exist_ok=True)
            for dag_file in sorted(DAGS.glob("*.py")):
                shutil.copy2(dag_file, self.dags_folder / dag_file.name)
            (self.home / "simple_auth_manager_passwords.json.generated").write_text(
                json.dumps(USERS)
            )
            env = self._environment()
            mark = time.monotonic()
            self._migrate(env)
            self.timings.migrate = time.monotonic() - mark
            mark = time.monotonic()
            for name in COMPONENTS:
                self.components[name] = Component(name, self._argv(name), env, self.logs).start()
            self.wait_healthy(*COMPONENTS, timeout=timeout)
            for n in range(2, self.triggerers + 1):
                own = {**env, "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_ports(1)[0])}
                name = f"triggerer-{n}"
                self.components[name] = Component(name, self._argv(name), own, self.logs).start()
                self.wait_healthy(name, timeout=timeout)
            self.timings.components = time.monotonic() - mark
        except BaseException:
            self.stop()
            raise
        self.timings.total = time.monotonic() - began
        return self

    def stop(self, *, grace: float = 10.0) -> None:
        """SIGTERM every component at once, wait up to ``grace`` seconds, SIGKILL what is left
        of their sessions; then stop PostgreSQL. Idempotent."""
        running = [c for c in self.components.values() if c.alive()]
        for component in running:
            component.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for component in self.components.values():
            if component.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    component.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            component.kill()
        if self.postgres is not None:
            self.postgres.stop()

    def leftovers(self) -> list[int]:
        """PIDs still running in any component's session (none after :meth:`stop`)."""
        return [pid for component in self.components.values() for pid in component.session()]

    def ensure_running(self) -> list[str]:
        """Start again every component that is not running (a test stopped it and failed
        before starting it again), wait until they are healthy; return their names."""
        stopped = [name for name, c in self.components.items() if not c.alive()]
        for name in stopped:
            self.components[name].start()
        if stopped:
            self.wait_healthy(*stopped)
        return stopped

    def wait_healthy(self, *names: str, timeout: float = 120.0) -> None:
        """Wait until each named component is healthy *since its latest start*: the api-server
        answers ``/api/v2/monitor/health``; the others have heartbeated after it."""
        deadline = time.monotonic() + timeout
        pending = set(names or COMPONENTS)
        while True:
            for name in sorted(pending):
                if not self.components[name].alive():
                    raise RuntimeError(f"{name} exited:\n{self._tail(name)}")
            health = self._health()
            if health is not None:
                pending = {n for n in pending if not self._healthy(n, health)}
            if not pending:
                return
            if time.monotonic() > deadline:
                tails = "\n".join(f"--- {n}:\n{self._tail(n)}" for n in sorted(pending))
                raise TimeoutError(f"not healthy after {timeout:.0f} s: {sorted(pending)}\n{tails}")
            time.sleep(0.5)

    def restart(self, name: str, signum: int = signal.SIGTERM, *, grace: float = 15.0) -> None:
        """Stop a component with ``signum`` (SIGKILL: the whole session at once, as a crash),
        start it again and wait until it is healthy."""
        component = self.components[name]
        if signum == signal.SIGKILL:
            component.kill()
        else:
            component.stop(signum, grace=grace)
        component.start()
        self.wait_healthy(name)

    # --- working with it -------------------------------------------------------------------

    def client(self, user: str = "admin") -> AirflowClient:
        """A REST client logged in as ``user`` (see :data:`USERS`); close it after use."""
        return AirflowClient(self.url, user, USERS[user])

    def add_dag_file(self, name: str, source: str) -> Path:
        """Write a DAG file into the dags folder (seen by the dag-processor within ~2 s)."""
        path = self.dags_folder / name
        path.write_text(source)
        return path

    def task_processes(self, ti_id: str) -> TaskProcesses:
        """Supervisor and runner of the task instance with this id (``task_instance()["id"]``
        of the REST client), found by their process titles in the scheduler's session."""
        import psutil

        found: dict[str, int] = {}
        for pid in self.components["scheduler"].session():
            try:
                title = " ".join(psutil.Process(pid).cmdline()).strip()
            except psutil.Error:
                continue
            if title == f"airflow worker -- {ti_id}":
                found["runner"] = pid
            elif title.endswith(f": {ti_id}"):  # "airflow worker -- LocalExecutor: <id>"
                found["supervisor"] = pid
        return TaskProcesses(found.get("supervisor"), found.get("runner"))

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds (user + system) used so far per component: its running processes plus
        the children they have reaped. Tasks that ended in a still-running worker are missed."""
        import psutil

        used: dict[str, float] = {}
        for name, component in self.components.items():
            total = 0.0
            for pid in component.session():
                try:
                    t = psutil.Process(pid).cpu_times()
                except psutil.Error:
                    continue
                total += t.user + t.system + t.children_user + t.children_system
            used[name] = total
        return used

    # --- internals -------------------------------------------------------------------------

    def _stop_on_sigterm(self) -> None:
        """Stop the deployment when pytest itself is SIGTERMed (atexit does not run then), and
        hand the signal on."""
        previous = signal.getsignal(signal.SIGTERM)
        if threading.current_thread() is not threading.main_thread() or previous == signal.SIG_IGN:
            return

        def handler(signum: int, frame: FrameType | None) -> None:
            self.stop(grace=2)
            if callable(previous):
                previous(signum, frame)
            else:
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)

        signal.signal(signal.SIGTERM, handler)

    def _environment(self) -> dict[str, str]:
        assert self.postgres is not None
        api_port, worker_logs, trigger_logs = free_ports(3)
        self.url = f"http://127.0.0.1:{api_port}"
        settings = {
            **CONFIG,
            "core.dags_folder": str(self.dags_folder),
            "core.fernet_key": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "core.execution_api_server_url": f"{self.url}/execution/",
            "core.auth_manager": "tests.ui.auth.PrefixAuthManager",
            "core.simple_auth_manager_users": ",".join(f"{u}:{u}" for u in USERS),
            "database.sql_alchemy_conn": self.postgres.url,
            "api.host": "127.0.0.1",
            "api.port": str(api_port),
            "api.base_url": self.url,
            "api.secret_key": secrets.token_hex(32),
            "api_auth.jwt_secret": secrets.token_hex(32),
            "logging.base_log_folder": str(self.logs),
            "logging.worker_log_server_port": str(worker_logs),
            "logging.trigger_log_server_port": str(trigger_logs),
            "dag_processor.dag_bundle_storage_path": str(self.home / "bundles"),
            **self.config,
        }
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.lstrip("_").startswith("AIRFLOW")
            and not k.startswith("PYTEST_")
            and k not in ("KUBECONFIG", "PYTHONPATH")
        }
        env = {**inherited, "AIRFLOW_HOME": str(self.home), "PYTHONPATH": str(ROOT)}
        for key, value in settings.items():
            section, option = key.split(".", 1)
            env[f"AIRFLOW__{section.upper()}__{option.upper()}"] = value
        for conn_id, conn in self.connections.items():
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)
        return env

    def _argv(self, name: str) -> list[str]:
        if name == "api-server":
            port = self.url.rsplit(":", 1)[1]
            return [AIRFLOW, "api-server", "-H", "127.0.0.1", "-p", port, "-w", "1"]
        return [AIRFLOW, name.split("-", maxsplit=1)[0] if name.startswith("triggerer") else name]

    def _migrate(self, env: Mapping[str, str]) -> None:
        log = self.logs / "db-migrate.log"
        with log.open("wb") as out:
            done = subprocess.run(
                [AIRFLOW, "db", "migrate"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=300,
                check=False,
            )
        if done.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{log.read_text()[-3000:]}")

    def _health(self) -> dict[str, Any] | None:
        try:
            response = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    def _healthy(self, name: str, health: dict[str, Any]) -> bool:
        if name == "api-server":
            return True
        several = name.startswith("triggerer") and self.triggerers > 1
        if several and "Starting the triggerer" not in self.components[name].read_log(current=True):
            return False  # the health answer has the latest heartbeat of any triggerer
        key = "triggerer" if several else name.replace("-", "_")
        part = health.get(key) or {}
        beat = part.get(f"latest_{key}_heartbeat")
        if part.get("status") != "healthy" or not beat:
            return False
        started = datetime.datetime.fromtimestamp(self.components[name].started_at, datetime.UTC)
        return datetime.datetime.fromisoformat(beat) >= started

    def _tail(self, name: str) -> str:
        return self.components[name].read_log(current=True)[-3000:]
