"""What a process keeps per event loop: one value of each kind per running loop.

A triggerer runs one loop; a worker runs one per wait (``asyncio.run``); ``dag.test()`` one per
deferral. What belongs to a loop (its API clients, its log-stream budget, its shared watches, the
reads its event triggers share) must neither serve another loop nor be mistaken for another's:
each lives in a ``PerLoop``, keyed by the loop object itself (weakly), never by ``id(loop)``,
which a later loop may reuse.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    """A value per event loop, made by ``factory`` on the loop's first ``get``."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._values: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = (
            weakref.WeakKeyDictionary()
        )

    def get(self) -> T:
        """The running loop's value."""
        loop = asyncio.get_running_loop()
        value = self._values.get(loop)
        if value is None:
            value = self._values[loop] = self._factory()
        return value

    def values(self) -> list[T]:
        """Every loop's value still held (for tests and metrics)."""
        return list(self._values.values())
