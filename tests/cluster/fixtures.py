"""pytest plugin: a real kube-apiserver per test session (``pytest_plugins`` in conftest).

- ``kube_cluster``: session-wide, ``--authorization-mode AlwaysAllow``; built on first use if the
  binary is missing. A build or start failure is a test *error* with the reason, never a skip:
  the real-server suite always runs.
- ``rbac_cluster``: a second, RBAC-mode cluster, started only when a test asks for it.
- ``kube_api``: the admin ``ApiClient`` of ``kube_cluster``; ``kubeconfig``: its path.
- ``namespace``: a fresh namespace per test, deleted afterwards (it stays Terminating: no
  namespace controller runs, which is harmless).

Everything is stopped by PID at session end, and by tests.cluster.processes' atexit/signal
handlers and PDEATHSIG when the run is interrupted or killed.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest

from tests.cluster import cluster as cluster_mod


def _start(
    tmp_path_factory: pytest.TempPathFactory, *, rbac: bool, crd: bool = True
) -> Iterator[cluster_mod.Cluster]:
    workdir = tmp_path_factory.mktemp("rbac-cluster" if rbac else "kube-cluster")
    try:
        cluster = cluster_mod.start_cluster(rbac=rbac, workdir=workdir, crd=crd)
    except cluster_mod.ClusterError as e:
        failure = str(e)
    else:
        try:
            yield cluster
        finally:
            cluster.stop()
        return
    # Outside the except block, so the report shows the reason, not a chained traceback.
    pytest.fail(f"test kube-apiserver unavailable: {failure}", pytrace=False)


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster_mod.Cluster]:
    """etcd + kube-apiserver (AlwaysAllow) with the TFJob CRD established."""
    yield from _start(tmp_path_factory, rbac=False)


@pytest.fixture(scope="session")
def rbac_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster_mod.Cluster]:
    """Like ``kube_cluster`` but ``--authorization-mode RBAC``; identities admin, restricted."""
    yield from _start(tmp_path_factory, rbac=True)


@pytest.fixture(scope="session")
def bare_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster_mod.Cluster]:
    """A cluster without the TFJob CRD (no training operator), started only when asked for."""
    yield from _start(tmp_path_factory, rbac=False, crd=False)


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
) -> Iterator[str]:
    """A namespace of its own for this test (name derived from the test's), deleted after it."""
    core = kubernetes.client.CoreV1Api(kube_api)
    name = _namespace_name(request.node.name)
    core.create_namespace({"metadata": {"name": name, "labels": {"tfjob-test": "true"}}})
    yield name
    if kube_cluster.alive():  # a Ctrl-C may have stopped the cluster already
        core.delete_namespace(name, _preload_content=False)
