"""pytest plugin: the process kubelet of ``kube_cluster`` (needs tests.cluster.fixtures).

- ``kubelet``: session-wide; binds and runs every pod of the cluster (its Node is
  ``tfjob-kubelet``). Unscripted replicas of a test namespace exit 0 after 0.2 s; PS run for ever.
- ``replicas``: the replica script of the test's ``namespace``. Script replicas before creating
  the TFJob or TrainJob (the same keys: job name, TF replica type, index); each ``Fate`` is one
  container run, the last repeats::

      replicas.set_fate("mnist", "Worker", 0, Fate(duration=0.1, exit_code=137), Fate())
      replicas.set_fate("mnist", "Chief", 0, Fate(logs=["step 1", LogLine(0.5, "done")]))
      replicas.set_default_fate("Worker", RUNS_FOR_EVER)     # or "*" for every type
      replicas.set_default_fate("*", REAL)   # run each pod's command as a local process

  ``REAL`` runs the container's ``command + args`` with the pod's env as the operator wrote it;
  ``/dev/termination-log`` becomes a file in the replica's directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.kubelet import fates
from tests.kubelet import kubelet as kubelet_mod


@pytest.fixture(scope="session")
def kubelet(
    kube_cluster: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[kubelet_mod.Kubelet]:
    """The process kubelet of ``kube_cluster``."""
    client = kube_cluster.api_client()
    stand_in = kubelet_mod.Kubelet(client, workdir=tmp_path_factory.mktemp("pods")).start()
    try:
        yield stand_in
    finally:
        stand_in.stop()
        client.close()  # a ClosingApiClient: its sockets too


@pytest.fixture
def replicas(kubelet: kubelet_mod.Kubelet, namespace: str) -> Iterator[fates.Script]:
    """What the replicas of this test's namespace do."""
    yield kubelet.script(namespace)
    kubelet.forget(namespace)
