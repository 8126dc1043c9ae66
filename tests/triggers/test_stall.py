"""A trigger's log lines after its event loop stalled (``triggers._stall``): held until the
trigger is known to still be this triggerer's, then printed in order; dropped if the trigger was
taken away meanwhile (the live tier stops a real triggerer: tests/live/test_handover.py). The
stalls here are real: the loop is blocked with ``time.sleep``."""

from __future__ import annotations

import asyncio
import logging
import time

from airflow_tfjob.triggers._stall import StallGuard
from tests.triggers.loglines import Lines, capture

THRESHOLD = 1.0
"""A stall is noticed past half of it; lines are then held for all of it."""


def _logger(name: str) -> tuple[logging.Logger, Lines]:
    return capture(f"tests.stall.{name}", propagate=False)


def _printed(lines: Lines) -> list[str]:
    return [line for line in lines.lines if line.startswith("[chief-0]")]


def test_lines_after_a_stall_are_held_for_the_threshold_then_printed_in_order() -> None:
    logger, lines = _logger("kept")

    async def scenario() -> float:
        guard = StallGuard(logger, THRESHOLD)
        watch = asyncio.create_task(guard.run())
        await asyncio.sleep(0.1)
        guard.info("[%s] %s", "chief-0", "tick 1")
        assert _printed(lines) == ["[chief-0] tick 1"]  # no stall: at once
        time.sleep(0.8)  # the loop stalls (a stopped process, a frozen host)
        stalled = time.monotonic()
        guard.info("[%s] %s", "chief-0", "tick 2")
        guard.warning("[chief-0] tick 3")
        assert _printed(lines) == ["[chief-0] tick 1"]  # held
        assert "The triggerer's loop stalled" in lines.lines[-1]
        await guard.settled()
        watch.cancel()
        return time.monotonic() - stalled

    waited = asyncio.run(scenario())
    assert _printed(lines) == ["[chief-0] tick 1", "[chief-0] tick 2", "[chief-0] tick 3"]
    assert THRESHOLD <= waited < THRESHOLD + 3


def test_lines_held_when_the_trigger_is_taken_away_are_never_printed() -> None:
    logger, lines = _logger("dropped")

    async def scenario() -> int:
        guard = StallGuard(logger, THRESHOLD)
        watch = asyncio.create_task(guard.run())
        await asyncio.sleep(0.1)
        time.sleep(0.8)
        guard.info("[chief-0] tick 7")
        guard.info("[chief-0] tick 8")
        await asyncio.sleep(0.2)  # Airflow cancels the trigger: another triggerer has it
        dropped = guard.drop()
        watch.cancel()
        await asyncio.sleep(THRESHOLD + 0.5)  # past the hold: nothing comes out
        return dropped

    assert asyncio.run(scenario()) == 2
    assert _printed(lines) == []


def test_a_loop_that_keeps_turning_holds_nothing() -> None:
    logger, lines = _logger("steady")

    async def scenario() -> None:
        guard = StallGuard(logger, 4.0)  # a busy test machine must not look like a stall
        watch = asyncio.create_task(guard.run())
        for n in range(30):
            guard.info("[chief-0] tick %d", n)
            await asyncio.sleep(0.05)
        await guard.settled()
        watch.cancel()

    asyncio.run(scenario())
    assert len(_printed(lines)) == 30 and not any("stalled" in line for line in lines.lines)
