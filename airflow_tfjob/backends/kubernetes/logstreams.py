"""How many replica logs an event loop follows live at once, shared fairly across its jobs.

A triggerer follows the logs of every deferred task's replicas; with the defaults that is one
stream per replica, and 1,000 tasks of 3 replicas would hold 3,000 connections. So live streams
are capped per event loop (``[tfjob] max_log_streams``; a triggerer runs one loop, a worker one
per wait) and granted by rank: a job's output replica (the chief, or worker 0) ranks 0, its other
replicas 1, 2, ... in their order; lower ranks first, then first come. Every job's output replica
is followed live before any job's second replica.
A request that arrives while the cap is full with streams of a higher rank takes the slot of the
most recent of them; that replica's follower stops and goes on from where it read
(``LogCursor``) when a slot frees or when its pod ends. A replica whose pod has ended is read to
its end at once (``Budget.end_reads``: its lines are all there), beside the cap, ``END_READS`` at a
time. So no line is lost to the cap: it only decides which lines are printed as they come and
which when their replica ends.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

from airflow_tfjob.hooks.loops import PerLoop

DEFAULT_MAX_LIVE = 500
"""The default cap: what a 2-core triggerer holds within +300 MiB at 1,000 tasks of 3 replicas
(a live stream holds a TLS connection, about 350 KiB of the process's memory with asyncio's read
buffer: bench/RESULTS.md, "Trigger fan-in with replica logs")."""
END_READS = 64
"""Logs of ended replicas read at once, beside the cap (32 made a job's end wait behind others'
when many ended together: p99 event latency 1.8 s against 0.6 s at N=1,000)."""


def max_live() -> int:
    """``[tfjob] max_log_streams`` (at least 1)."""
    from airflow.configuration import conf

    return max(1, conf.getint("tfjob", "max_log_streams", fallback=DEFAULT_MAX_LIVE))


@dataclass(eq=False)
class Slot:
    """A grant (or a wait for one) of one live stream."""

    rank: int
    order: int
    granted: asyncio.Event = field(default_factory=asyncio.Event)
    revoked: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a lower-ranked request took this stream: stop, and ask again."""


class Budget:
    """The live log streams of one event loop, up to ``cap``."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.live: set[Slot] = set()
        self.waiting: list[Slot] = []
        self._order = itertools.count()
        self.end_reads = asyncio.Semaphore(END_READS)
        """Room to read ended replicas' logs to their end, beside the cap."""

    def request(self, rank: int) -> Slot:
        """Ask for a live stream; ``slot.granted`` is set when it may stream."""
        slot = Slot(rank, next(self._order))
        if len(self.live) < self.cap:
            self._grant(slot)
            return slot
        victim = max(self.live, key=lambda s: (s.rank, s.order))
        if victim.rank > rank:  # a stream of a lower priority gives way, and waits
            self.live.discard(victim)
            victim.granted.clear()
            victim.revoked.set()
            self.waiting.append(victim)
            self._grant(slot)
        else:
            self.waiting.append(slot)
        return slot

    def release(self, slot: Slot) -> None:
        """The stream ended (or the wait was given up): the next waiting request goes live."""
        if slot in self.live:
            self.live.discard(slot)
        elif slot in self.waiting:
            self.waiting.remove(slot)
        while self.waiting and len(self.live) < self.cap:
            best = min(self.waiting, key=lambda s: (s.rank, s.order))
            self.waiting.remove(best)
            self._grant(best)

    def _grant(self, slot: Slot) -> None:
        slot.revoked.clear()
        slot.granted.set()
        self.live.add(slot)


_BUDGETS: PerLoop[Budget] = PerLoop(lambda: Budget(max_live()))


def budget() -> Budget:
    """This event loop's budget (a worker's loop per task, a triggerer's one loop)."""
    return _BUDGETS.get()
