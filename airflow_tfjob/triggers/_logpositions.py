"""Where a trigger's log streams had read to a little while ago, kept as an XCom of its task
instance.

A trigger handed to another triggerer (its triggerer missed
``[triggerer] triggerer_health_check_threshold``), or started again after a triggerer restart,
follows the job again. Without knowing what the previous owner printed, it would print every
replica's log from its start again. So every ``INTERVAL_SECONDS`` the owner stores where each
replica's log had been read to ``LAG_SECONDS`` before (pod uid -> ``LogCursor.position``) as the
XCom ``KEY``, and a new owner goes on from there.

Why a lag: a line the trigger has logged is not yet in the task log. The triggerer's trigger
runner hands it to the triggerer's supervisor, which writes it, and a triggerer stopped in
between (the live tier stops one with SIGSTOP) never writes it. Positions from ``LAG_SECONDS``
ago are of lines written long since, so the new owner prints again only the lines of the old
one's last ``LAG_SECONDS`` + ``INTERVAL_SECONDS``, and loses none unless the old triggerer held a
line unwritten for longer than ``LAG_SECONDS``. Positions are taken only while no line is held
after a stall (``_stall``): what is taken has been logged.

One small XCom write per task every ``INTERVAL_SECONDS`` at most, and only while its replicas
print, through the Task SDK's async calls on the trigger's loop.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any

from airflow_tfjob.triggers import _xcoms

KEY = "tfjob_log_positions"
INTERVAL_SECONDS = 2.0
LAG_SECONDS = 5.0
LOAD_SECONDS = 10.0


async def load(ti: Any, log: Any) -> dict[str, object]:
    """What an earlier owner stored (the task pushes ``{}`` before it defers); ``{}`` when the
    Task SDK cannot say within ``LOAD_SECONDS``: then the logs start from the start. Each value
    as stored: ``LogCursor.at`` reads what it can of it."""
    try:
        reading = _xcoms.get(ti, KEY)
        stored = await asyncio.wait_for(reading, LOAD_SECONDS)
    except Exception as exc:  # no supervisor (not in a triggerer), an API error, too slow
        log.warning("Following the logs from their start: %s reading %s", type(exc).__name__, KEY)
        return {}
    return stored if isinstance(stored, dict) else {}


class Keeper:
    """Stores a follower's log positions of ``LAG_SECONDS`` ago for ``ti`` when they change."""

    def __init__(self, ti: Any, follower: Any, guard: Any, push: Any = _xcoms.apush) -> None:
        self.ti, self.follower, self.guard, self.push = ti, follower, guard, push
        self._taken: collections.deque[tuple[float, dict[str, list[Any]]]] = collections.deque()
        self._stored: dict[str, list[Any]] | None = None

    async def step(self, now: float) -> None:
        """Take the positions now (unless lines are held), and store the newest taken at least
        ``LAG_SECONDS`` before ``now`` if it differs from what was stored."""
        if self.guard is None or not self.guard.holding:
            self._taken.append((now, self.follower.log_positions()))
        due = None
        while self._taken and now - self._taken[0][0] >= LAG_SECONDS:
            due = self._taken.popleft()[1]
        if due and due != self._stored and await self.push(self.ti, KEY, due):
            self._stored = due

    async def run(self) -> None:
        """Step every ``INTERVAL_SECONDS`` (run as a task; cancel it to stop)."""
        while True:
            await asyncio.sleep(INTERVAL_SECONDS)
            await self.step(time.monotonic())
