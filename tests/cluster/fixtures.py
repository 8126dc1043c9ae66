"""pytest plugin: a real cluster per test session (``pytest_plugins`` in conftest).

- ``kube_cluster``: session-wide etcd, kube-apiserver (RBAC), kube-controller-manager, the
  training operator with its webhook, and JobSet and Trainer v2 with theirs and the TensorFlow
  runtimes of deploy/trainer; built on first use if the binaries are missing. A build or
  start failure is a test *error* with the reason, never a skip: the real-server suite always
  runs. Identities: ``admin`` (system:masters) and ``restricted`` (no rights but what a test
  grants).
- ``bare_cluster``: one without the TFJob CRD and operator (nor Trainer and JobSet), started
  only when a test asks.
- ``kube_api``: the admin ``ApiClient`` of ``kube_cluster``; ``kubeconfig``: its path.
- ``namespace``: a fresh namespace per test (its ``default`` ServiceAccount made by the
  controller-manager), deleted afterwards by the namespace controller.

Everything is stopped by PID at session end, and by tests.cluster.processes' atexit/signal
handlers and PDEATHSIG when the run is interrupted or killed.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from tests.cluster import cluster as cluster_mod


def _start(
    tmp_path_factory: pytest.TempPathFactory, *, crd: bool = True
) -> Iterator[cluster_mod.Cluster]:
    workdir = tmp_path_factory.mktemp("kube-cluster" if crd else "bare-cluster")
    try:
        cluster = cluster_mod.start_cluster(workdir=workdir, crd=crd, trainer=crd)
    except cluster_mod.ClusterError as e:
        failure = str(e)
    else:
        try:
            yield cluster
        finally:
            cluster.stop()
        return
    # Outside the except block, so the report shows the reason, not a chained traceback.
    pytest.fail(f"test cluster unavailable: {failure}", pytrace=False)


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster_mod.Cluster]:
    """etcd, kube-apiserver, kube-controller-manager, the training operator, JobSet and Trainer."""
    yield from _start(tmp_path_factory)


@pytest.fixture(scope="session")
def bare_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster_mod.Cluster]:
    """A cluster without the TFJob CRD (no training operator, no Trainer), started only when
    asked for."""
    yield from _start(tmp_path_factory, crd=False)


@pytest.fixture(scope="session")
def kubeconfig(kube_cluster: cluster_mod.Cluster) -> Path:
    """Admin kubeconfig of ``kube_cluster`` (context ``tfjob-test``)."""
    return kube_cluster.kubeconfig


@pytest.fixture(scope="session")
def kube_api(kube_cluster: cluster_mod.Cluster) -> Iterator[kubernetes.client.ApiClient]:
    """Admin ``ApiClient`` of ``kube_cluster``, shared by the session."""
    with kube_cluster.api_client() as client:
        yield client


def _namespace_name(node_name: str) -> str:
    stem = re.sub(r"[^a-z0-9-]+", "-", node_name.lower()).strip("-")[:40].strip("-")
    return f"{stem or 'test'}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def namespace(
    request: pytest.FixtureRequest,
    kube_cluster: cluster_mod.Cluster,
    kube_api: kubernetes.client.ApiClient,
    kubelet: Any,
) -> Iterator[str]:
    """A namespace of its own for this test (name derived from the test's), deleted after it;
    its pods run on the session's ``kubelet``."""
    core = kubernetes.client.CoreV1Api(kube_api)
    name = _namespace_name(request.node.name)
    core.create_namespace({"metadata": {"name": name, "labels": {"tfjob-test": "true"}}})
    wait_for_default_account(core, name)
    yield name
    if kube_cluster.alive():  # a Ctrl-C may have stopped the cluster already
        core.delete_namespace(name, _preload_content=False)


def wait_for_default_account(core: kubernetes.client.CoreV1Api, namespace: str) -> None:
    """Wait for the controller-manager to make ``default``: until then the ServiceAccount
    admission plugin refuses every pod of the namespace (the operator would retry, later)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            core.read_namespaced_service_account("default", namespace, _preload_content=False)
            return
        except kubernetes.client.ApiException as exc:
            if exc.status != 404:
                raise
        time.sleep(0.05)
    raise TimeoutError(f"no default ServiceAccount in {namespace} after 30 s")
