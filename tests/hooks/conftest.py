"""Run one test body against both twin hooks: ``call(hook.method, ...)`` awaits when needed."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_tfjob.hooks.tfjob import AsyncTFJobHook, TFJobHook


def call(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a hook method; run coroutines and drain (async) generators into lists."""
    result = method(*args, **kwargs)
    if inspect.isasyncgen(result):

        async def drain() -> list[Any]:
            return [item async for item in result]

        return asyncio.run(drain())
    if inspect.iscoroutine(result):
        return asyncio.run(result)
    if inspect.isgenerator(result):
        return list(result)
    return result


@pytest.fixture(params=["sync", "async"])
def hook(request: pytest.FixtureRequest, kubeconfig: Path) -> TFJobHook | AsyncTFJobHook:
    """Each twin, configured from the test cluster's kubeconfig file (no Airflow connection)."""
    cls = TFJobHook if request.param == "sync" else AsyncTFJobHook
    return cls(kubernetes_conn_id=None, config_file=str(kubeconfig))
