"""The live tier: the provider inside a real Airflow deployment that the tests start themselves.

One deployment serves every test of this package (``scope="package"``): PostgreSQL, ``db
migrate``, api-server, scheduler (LocalExecutor), dag-processor and triggerer as separate
processes (:mod:`tests.live.deployment`). Its ``kubernetes_default`` connection reaches the test
cluster (the real training operator, the process kubelet) through a fault proxy, in a namespace
of its own. Fixtures:

- ``live``: the :class:`~tests.live.deployment.Deployment`. ``restart("triggerer",
  signal.SIGKILL)`` (or SIGTERM) stops a component and starts it again, healthy; for a gap in
  between, ``components["triggerer"].kill()`` (the whole session, as a crash) or ``.stop(sig)``,
  later ``.start()`` and ``live.wait_healthy("triggerer")``. ``components[name].read_log()``
  (``current=True``: since the latest start), ``.pid``, ``.send_signal(sig)`` (the command only).
  ``task_processes(ti["id"])``: supervisor and runner PIDs of a running task instance (then
  ``os.kill``). ``add_dag_file(name, source)`` (parsed within ~2 s), ``client(user)``,
  ``logs`` (component and task logs), ``timings``, ``cpu_seconds()``.
- ``live_api``: a REST client logged in as ``admin`` (:class:`~tests.live.rest.AirflowClient`):
  ``wait_for_dag``, ``trigger``, ``wait_for_run``, ``task_instances``, ``task_instance``,
  ``wait_for_task``, ``tries``, ``xcom``, ``set_task_state``, ``task_log``, ``request``.
  ``live.client("viewer")`` gives one for the viewer (who sees only ``public_*`` DAGs).
- ``live_proxy``: the :class:`~tests.faults.proxy.FaultProxy` between Airflow and the cluster: add
  faults (``fail``, ``throttle``, ``drop``, ``stall``, ``delay``, ``cut_watch``, ``gone``), count
  ``requests(path)`` / ``open_streams(path)``. Its history spans the package: compare counts
  before and after, or match paths of your TFJob's name.
- ``live_namespace`` / ``live_replicas``: the connection's namespace and its replica script
  (:class:`~tests.kubelet.fates.Script`): ``set_fate(job, type, index, *fates)``,
  ``set_default_fate(type, *fates)``; unscripted replicas exit 0 after 0.2 s, PS run for ever.
  TFJob names are ``<dag>-<task>-<hash>``: read ``tfjob_name`` from XCom, or script defaults.

After each test the proxy's rules and the replica scripts are cleared, and any component a
test left stopped is started again. A test wanting a namespace of its own uses the ``namespace``
and ``replicas`` fixtures of tests/cluster and tests/kubelet (per test) and hands the namespace to
its DAG through the run's conf: ``trigger(dag, {"namespace": namespace})`` and, in the DAG,
``TFJobOperator(..., namespace="{{ dag_run.conf['namespace'] }}")``.
DAG files live in ``tests/live/dags/`` (copied into the deployment at start).

At the end, the terminal summary shows the start-up times and the CPU the tier used.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from tests.cluster.fixtures import wait_for_default_account
from tests.faults.proxy import FaultProxy
from tests.kubelet.fates import REAL, Script
from tests.live.deployment import Deployment
from tests.live.jobs import Gate
from tests.live.pair import Credentials, add_connection, client_credentials, start_pair
from tests.live.rest import AirflowClient

_REPORT: list[str] = []
_PACKAGE_FIXTURES = {"live", "live_api", "live_proxy", "live_replicas", "live_namespace"}


def _cpu_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time of the whole machine so far, from /proc/stat."""
    fields = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


@pytest.fixture(scope="package")
def live_proxy(kube_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultProxy]:
    """The fault proxy in front of the test cluster that the deployment talks through."""
    workdir = tmp_path_factory.mktemp("live-proxy")
    proxy = FaultProxy.for_cluster(kube_cluster, workdir=workdir).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture(scope="package")
def live_namespace(kube_cluster: Any, kube_api: kubernetes.client.ApiClient) -> Iterator[str]:
    """The namespace of the deployment's ``kubernetes_default`` connection."""
    core = kubernetes.client.CoreV1Api(kube_api)
    name = f"live-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"tfjob-test": "true"}}})
    wait_for_default_account(core, name)
    yield name
    if kube_cluster.alive():
        core.delete_namespace(name, _preload_content=False)


@pytest.fixture(scope="module")
def events_namespace(
    kube_cluster: Any,
    kube_api: kubernetes.client.ApiClient,
    kubelet: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, Script]]:
    """A namespace of the test module's own, and its replica script, for TFJobs made outside
    Airflow (``tests.live.jobs.create_outside_airflow``) that the module's watchers see."""
    core = kubernetes.client.CoreV1Api(kube_api)
    name = f"events-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"tfjob-test": "true"}}})
    wait_for_default_account(core, name)
    try:
        yield name, kubelet.script(name)
    finally:
        kubelet.forget(name)
        core.delete_namespace(name, _preload_content=False)


@pytest.fixture(scope="package")
def live_replicas(live_namespace: str, kubelet: Any) -> Iterator[Script]:
    """The replica script of ``live_namespace`` (the kubelet runs in this pytest process)."""
    yield kubelet.script(live_namespace)
    kubelet.forget(live_namespace)


@pytest.fixture(scope="package")
def live(
    live_proxy: FaultProxy,
    live_namespace: str,
    live_replicas: Script,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployment]:
    """The running deployment (started once for the package, stopped after it)."""
    connection = {
        "conn_type": "kubernetes",
        "extra": {"kube_config_path": str(live_proxy.kubeconfig), "namespace": live_namespace},
    }
    trainjob = {**connection, "extra": {**connection["extra"], "tfjob_api": "trainjob"}}
    deployment = Deployment(
        tmp_path_factory.mktemp("live-home"),
        connections={"kubernetes_default": connection, "kubernetes_trainjob": trainjob},
    )
    cpu0, wall0 = _cpu_jiffies(), time.monotonic()
    deployment.start()
    cpu1 = _cpu_jiffies()
    try:
        yield deployment
    finally:
        used = deployment.cpu_seconds()
        deployment.stop(grace=5)
        cpu2, wall2 = _cpu_jiffies(), time.monotonic()
        _report(deployment, used, (cpu0, cpu1, cpu2), wall2 - wall0)
    leftovers = deployment.leftovers()
    assert not leftovers, f"processes of the deployment still running: {leftovers}"


@pytest.fixture(scope="package")
def live_api(live: Deployment) -> Iterator[AirflowClient]:
    """The deployment's REST API, as ``admin``."""
    with live.client("admin") as client:
        yield client


@dataclass
class Pair:
    """The second deployment (tests/live/pair.py), its REST client, namespace, credentials."""

    live: Deployment
    api: AirflowClient
    namespace: str
    credentials: Credentials


@pytest.fixture(scope="package")
def live_pair(
    kube_cluster: Any,
    kube_api: kubernetes.client.ApiClient,
    kubelet: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Pair]:
    """Two triggerers and a connection with a token and a client key (tests/live/pair.py), in a
    namespace of its own whose replicas all run their real commands."""
    core = kubernetes.client.CoreV1Api(kube_api)
    namespace = f"pair-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": namespace, "labels": {"tfjob-test": "true"}}})
    wait_for_default_account(core, namespace)
    kubelet.script(namespace).set_default_fate("*", REAL)
    credentials = client_credentials(kube_cluster, tmp_path_factory.mktemp("pair-pki"))
    deployment = start_pair(tmp_path_factory.mktemp("pair-home"))
    try:
        with deployment.client("admin") as api:
            add_connection(api, credentials, namespace)
            yield Pair(deployment, api, namespace, credentials)
    finally:
        deployment.stop(grace=5)
        kubelet.forget(namespace)
        if kube_cluster.alive():
            core.delete_namespace(namespace, _preload_content=False)
    assert not deployment.leftovers(), "processes of the pair deployment still running"


@pytest.fixture(autouse=True)
def _live_reset(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that used the deployment: no faults, no scripts, every component running."""
    yield
    if not _PACKAGE_FIXTURES.intersection(request.fixturenames):
        return
    request.getfixturevalue("live_proxy").clear()
    script = request.getfixturevalue("live_replicas")
    with script.lock:
        script.defaults.clear()
        script.fates.clear()
    request.getfixturevalue("live").ensure_running()


def _report(
    deployment: Deployment,
    used: dict[str, float],
    cpu: tuple[tuple[int, int], ...],
    wall: float,
) -> None:
    hz = os.sysconf("SC_CLK_TCK")
    (b0, t0), (b1, t1), (b2, t2) = cpu
    cores = os.cpu_count() or 1
    t = deployment.timings
    _REPORT.extend(
        [
            f"start-up {t.total:.1f} s: postgres {t.postgres:.1f} s, db migrate {t.migrate:.1f} s, "
            f"components healthy {t.components:.1f} s",
            f"machine CPU busy: start-up {(b1 - b0) / hz:.0f} CPU-s "
            f"({(b1 - b0) / max(t1 - t0, 1) * cores:.2f} of {cores} cores), whole tier "
            f"{(b2 - b0) / hz:.0f} CPU-s in {wall:.0f} s ({(b2 - b0) / max(t2 - t0, 1) * cores:.2f}"
            f" of {cores} cores); load average {os.getloadavg()[0]:.2f}",
            "components' CPU-s: " + ", ".join(f"{k} {v:.1f}" for k, v in used.items()),
        ]
    )


def report(line: str) -> None:
    """Add a line to the tier's summary at the end of the session (e.g. a measured time)."""
    _REPORT.append(line)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests of the second deployment (``live_pair``) run last, so that it starts only once
    the first one has done its work: two deployments at once are too much for two cores."""
    items.sort(key=lambda item: "live_pair" in getattr(item, "fixturenames", ()))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _REPORT:
        terminalreporter.section("live deployment")
        for line in _REPORT:
            terminalreporter.write_line(line)


@pytest.fixture
def gate(tmp_path: Path, live_replicas: Script) -> Gate:
    """The gate of this test's jobs (tests/live/dags/live.py); every replica of the live
    namespace runs its real command (the ``REAL`` fate) for the test."""
    live_replicas.set_default_fate("*", REAL)
    return Gate(tmp_path / "gate")
