"""pytest plugin: the simulated operator, kubelet and fault proxy (needs tests.cluster.fixtures).

- ``kubelet``: session-wide log endpoint and Node (``tfjob-sim-node``) of ``kube_cluster``.
- ``simulator``: a :class:`tests.sim.operator.Operator` for the test's ``namespace``. Script
  replicas before creating the TFJob; each ``Fate`` is one container run, the last repeats::

      simulator.set_fate("mnist", "Worker", 0, Fate(duration=0.1, exit_code=137), Fate())
      simulator.set_fate("mnist", "Chief", 0, Fate(logs=["step 1", LogLine(0.5, "done")]))
      simulator.set_default_fate("Worker", RUNS_FOR_EVER)     # or "*" for every type
      simulator.set_default_fate("*", REAL)   # run each pod's tensorflow command locally

  Unscripted replicas exit 0 after 0.2 s, PS run for ever. ``REAL`` runs the container's
  ``command + args`` in ``tmp_path/pods/<ns>/<pod>/`` with TF_CONFIG pointing at free
  localhost ports; ``/dev/termination-log`` becomes a file there.
- ``fault_proxy``: a :class:`tests.sim.proxy.FaultProxy` in front of ``kube_cluster``; clients
  use ``fault_proxy.kubeconfig`` or ``fault_proxy.api_client()``, tests add faults
  (``fail``, ``throttle``, ``drop``, ``stall``, ``delay``, ``cut_watch``, ``gone``) and read
  ``requests(path)`` / ``open_streams(path)``.

Each fixture stops its threads, processes and sockets at teardown, failed test or not.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from tests.sim import kubelet as kubelet_mod
from tests.sim import operator as operator_mod
from tests.sim import proxy as proxy_mod


@pytest.fixture(scope="session")
def kubelet(kube_cluster: Any) -> Iterator[kubelet_mod.Kubelet]:
    """The kubelet stand-in: serves pod logs for pods bound to its Node."""
    client = kube_cluster.api_client()
    stand_in = kubelet_mod.Kubelet(client).start()
    try:
        yield stand_in
    finally:
        stand_in.stop()
        close_client(client)


def close_client(client: kubernetes.client.ApiClient) -> None:
    """Close an ``ApiClient`` for real: ``close()`` alone leaves its sockets to the GC."""
    client.rest_client.pool_manager.clear()
    client.close()


def start_simulator(
    client: kubernetes.client.ApiClient, namespace: str, kubelet: kubelet_mod.Kubelet, workdir: Path
) -> operator_mod.Operator:
    """A running simulated training operator for ``namespace``, its pods on ``kubelet``."""
    return operator_mod.Operator(
        client, namespace, store=kubelet.store, node_name=kubelet.node_name, workdir=workdir
    ).start()


@pytest.fixture
def simulator(
    kube_cluster: Any,
    namespace: str,
    kubelet: kubelet_mod.Kubelet,
    tmp_path: Path,
) -> Iterator[operator_mod.Operator]:
    """The simulated training operator for this test's namespace, already running."""
    client = kube_cluster.api_client()
    sim = start_simulator(client, namespace, kubelet, tmp_path / "pods")
    try:
        yield sim
    finally:
        sim.stop()
        close_client(client)


@pytest.fixture
def fault_proxy(kube_cluster: Any, tmp_path: Path) -> Iterator[proxy_mod.FaultProxy]:
    """A fault-injecting proxy in front of the test API server."""
    proxy = proxy_mod.FaultProxy.for_cluster(kube_cluster, workdir=tmp_path / "proxy").start()
    try:
        yield proxy
    finally:
        proxy.stop()
