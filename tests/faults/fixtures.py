"""pytest plugin: ``fault_proxy``, a :class:`tests.faults.proxy.FaultProxy` in front of
``kube_cluster``; clients use ``fault_proxy.kubeconfig`` or ``fault_proxy.api_client()``, tests add
faults (``fail``, ``throttle``, ``drop``, ``stall``, ``delay``, ``cut_watch``, ``gone``) and read
``requests(path)`` / ``open_streams(path)``. Stopped at teardown, failed test or not.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults import proxy as proxy_mod


@pytest.fixture
def fault_proxy(kube_cluster: Any, tmp_path: Path) -> Iterator[proxy_mod.FaultProxy]:
    """A fault-injecting proxy in front of the test API server."""
    proxy = proxy_mod.FaultProxy.for_cluster(kube_cluster, workdir=tmp_path / "proxy").start()
    try:
        yield proxy
    finally:
        proxy.stop()
