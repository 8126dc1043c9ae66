"""``Events``: the queue a follower reads its job's and its pods' events from."""

from __future__ import annotations

import asyncio

from airflow_tfjob.model.kube import WatchEvent


class Events:
    """An unbounded queue for one consumer, as small as it can be (``asyncio.Queue`` holds three
    deques and an event, about 2 KiB, before its first item), whose ``get`` takes a timeout
    without a task of its own: one future and one timer while it waits."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[WatchEvent] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: WatchEvent) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self, timeout: float | None = None) -> WatchEvent | None:
        """The next item; None once ``timeout`` seconds pass without one (None: no limit).
        Cancelled while it waits, no item is lost."""
        if not self._items:
            if timeout is not None and timeout <= 0:
                return None
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = None if timeout is None else loop.call_later(timeout, _wake, waiter)
            try:
                await waiter
            finally:
                if timer is not None:
                    timer.cancel()
                if self._waiter is waiter:
                    self._waiter = None
            if not self._items:
                return None
        return self._items.pop(0)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
