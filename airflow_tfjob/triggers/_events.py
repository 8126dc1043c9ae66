"""Waiting on several asyncio queues at once (the trigger's job and pod events)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def next_of(
    *queues: asyncio.Queue[dict[str, Any]], timeout: float
) -> tuple[asyncio.Queue[dict[str, Any]], dict[str, Any]] | None:
    """The first item from any queue (with the queue it came from), or None after ``timeout``."""
    for queue in queues:
        if not queue.empty():
            return queue, queue.get_nowait()
    getters = {asyncio.ensure_future(q.get()): q for q in queues}
    try:
        done, _ = await asyncio.wait(
            getters, timeout=max(0.0, timeout), return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for getter in getters:
            if not getter.done():
                getter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await getter
    for getter in done:
        queue = getters[getter]
        for other in done - {getter}:  # keep what another queue delivered at the same moment
            getters[other].put_nowait(other.result())
        return queue, getter.result()
    return None
