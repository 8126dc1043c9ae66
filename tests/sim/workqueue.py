"""A de-duplicating work queue with delayed adds, like client-go's ``workqueue``.

The operator reconciles one key at a time from a single thread; a key added while queued is not
queued twice; ``add(key, after=s)`` stands in for ``AddAfter`` (deadlines, TTLs, retries).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Hashable


class WorkQueue:
    """Keys ready now, plus keys due later."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._ready: dict[Hashable, None] = {}
        self._later: list[tuple[float, int, Hashable]] = []
        self._counter = itertools.count()
        self._closed = False

    def add(self, key: Hashable, *, after: float = 0.0) -> None:
        """Queue ``key`` now, or in ``after`` seconds."""
        with self._cond:
            if after > 0:
                heapq.heappush(self._later, (time.monotonic() + after, next(self._counter), key))
            else:
                self._ready[key] = None
            self._cond.notify_all()

    def get(self) -> Hashable | None:
        """The next due key; ``None`` once the queue is closed."""
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                while self._later and self._later[0][0] <= now:
                    self._ready[heapq.heappop(self._later)[2]] = None
                if self._ready:
                    key = next(iter(self._ready))
                    del self._ready[key]
                    return key
                timeout = self._later[0][0] - now if self._later else None
                self._cond.wait(timeout)
            return None

    def close(self) -> None:
        """Wake the consumer and make :meth:`get` return ``None``."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
