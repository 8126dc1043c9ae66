"""Hold a trigger's log lines after its event loop stalled, until it still owns the trigger.

A triggerer whose heartbeat is older than ``[triggerer] triggerer_health_check_threshold`` (a
stopped process, a host that froze, a loop blocked for long) loses its triggers to another
triggerer, which follows the job again from the start. When the old one runs again, the lines
its log streams had buffered meanwhile would be printed into the task log by a trigger it no
longer owns, and only then would Airflow cancel that trigger there. So once the loop has not
turned for half the threshold, every line of the follower is held for a whole threshold: if the
trigger is cancelled meanwhile (it was handed over), the held lines are dropped (:meth:`drop`);
if not, it still owns the trigger and they are printed, in order.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

LEVELS = frozenset({"debug", "info", "warning", "error", "exception", "critical"})
TICK_SECONDS = 1.0


def health_threshold() -> float:
    """``[triggerer] triggerer_health_check_threshold`` (Airflow's default: 30 s)."""
    try:
        from airflow.configuration import conf

        return conf.getfloat("triggerer", "triggerer_health_check_threshold", fallback=30.0)
    except Exception:  # no Airflow configuration (a test outside a deployment)
        return 30.0


class StallGuard:
    """A logger for the follower: passes lines on, or holds them after a stall (see above).

    :param log: Where lines go.
    :param threshold: The triggerer health-check threshold, in seconds.
    """

    def __init__(self, log: Any, threshold: float) -> None:
        self._log, self.stall, self.hold = log, threshold / 2, threshold
        self.tick = min(TICK_SECONDS, self.stall / 4)
        """How often the loop is seen to turn: well within a stall."""
        self._beat = time.monotonic()
        self._until = 0.0
        self._held: list[tuple[str, str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._log, name)
        if name not in LEVELS:
            return method

        def emit(msg: str, *args: Any, **kwargs: Any) -> None:
            self._check(time.monotonic())
            if self._held or time.monotonic() < self._until:
                self._held.append((name, msg, args, kwargs))
            else:
                method(msg, *args, **kwargs)

        return emit

    def _check(self, now: float) -> None:
        if now - self._beat > self.stall and self._until < self._beat + self.hold:
            self._until = now + self.hold
            self._log.warning(
                "The triggerer's loop stalled %.0f s: holding log lines for %.0f s, until this "
                "triggerer is known to still own the trigger",
                now - self._beat,
                self.hold,
            )

    async def run(self) -> None:
        """Notice stalls, and print what was held once the hold has passed (run as a task)."""
        while True:
            await asyncio.sleep(self.tick)
            now = time.monotonic()
            self._check(now)
            self._beat = now
            if self._held and now >= self._until:
                held, self._held = self._held, []
                for name, msg, args, kwargs in held:
                    getattr(self._log, name)(msg, *args, **kwargs)

    async def settled(self) -> None:
        """Return once no line is held and no hold lasts (at once, unless the loop stalled):
        the trigger fires only once it is known to still own the trigger."""
        self._check(time.monotonic())
        while self._held or time.monotonic() < self._until:
            await asyncio.sleep(self.tick)

    @property
    def holding(self) -> bool:
        """Whether lines are (or would now be) held: those read are not all printed."""
        return bool(self._held) or time.monotonic() < self._until

    def drop(self) -> int:
        """Forget the held lines (the trigger was cancelled); how many there were."""
        dropped, self._held = len(self._held), []
        return dropped
