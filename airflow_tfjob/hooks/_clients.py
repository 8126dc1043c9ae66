"""One API client per cluster and event loop, shared by every async hook on that loop.

cncf's ``AsyncKubernetesHook.get_conn()`` builds a client (an aiohttp session, its TLS context, a
connection pool) per call: a triggerer following thousands of jobs would open a TLS connection
for every request and every log stream. Within ``shared(hook, key)``, a hook's requests and log
streams go through the one client of its cluster instead (``key``: the connection settings, so
equal settings share), with a pool sized for the log streams a loop may follow
(``logstreams.max_live`` live, plus ``REQUEST_CONNECTIONS`` for requests and end reads). The
last user closes it. The client reads its configuration at each request, so refreshed
credentials apply.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from airflow_tfjob.hooks.loops import PerLoop

REQUEST_CONNECTIONS = 96
"""Connections a shared client keeps beside its live log streams: the logs read at their end
(``logstreams.END_READS``, 64), and requests and watches."""


@dataclass
class _Shared:
    client: Any
    users: int = 0


_CLIENTS: PerLoop[dict[str, _Shared]] = PerLoop(dict)
"""Each loop's shared clients, by connection settings (a client serves the loop it was made on)."""


def _client_class() -> Any:
    """cncf's client (its default timeout for a request that sets none), as its get_conn
    builds; kubernetes_asyncio's own where a cncf release has no such class."""
    from airflow.providers.cncf.kubernetes import kube_client
    from kubernetes_asyncio.client import ApiClient

    return getattr(kube_client, "_TimeoutAsyncK8sApiClient", ApiClient)


def open_clients() -> int:
    """How many shared clients this process holds (for tests and benchmarks)."""
    return sum(len(clients) for clients in _CLIENTS.values())


@contextlib.asynccontextmanager
async def shared(cncf: Any, key: str, streams: int) -> AsyncIterator[Any]:
    """The shared client of ``key`` on this loop, built from ``cncf`` (an
    ``AsyncKubernetesHook``) by the first user, closed by the last; its pool holds ``streams``
    log streams plus ``REQUEST_CONNECTIONS``."""
    clients = _CLIENTS.get()
    if key not in clients:
        await cncf._load_config()  # what cncf's get_conn does before building its client
        if key not in clients:  # (another user may have built it meanwhile)
            configuration = copy.copy(cncf.client_configuration)
            configuration.connection_pool_maxsize = streams + REQUEST_CONNECTIONS
            clients[key] = _Shared(_client_class()(configuration))
    entry = clients[key]
    entry.users += 1
    try:
        yield entry.client
    finally:
        entry.users -= 1
        if entry.users == 0 and clients.get(key) is entry:
            del clients[key]
            await entry.client.close()
