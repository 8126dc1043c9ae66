"""``triggers._logpositions.Keeper``: what a trigger stores of where its logs were read, for the
next owner of the trigger (tests/live/test_handover.py runs it in a real hand-over)."""

from __future__ import annotations

import asyncio
from typing import Any

from airflow_tfjob.triggers._logpositions import INTERVAL_SECONDS, KEY, LAG_SECONDS, Keeper


class Follower:
    def __init__(self) -> None:
        self.positions: dict[str, Any] = {}

    def log_positions(self) -> dict[str, Any]:
        return dict(self.positions)


class Guard:
    holding = False


def test_positions_are_stored_once_they_are_lag_seconds_old_and_never_while_lines_are_held() -> (
    None
):
    follower, guard, stored = Follower(), Guard(), []

    async def push(ti: Any, key: str, value: Any) -> bool:
        stored.append((key, value))
        return True

    keeper = Keeper("ti", follower, guard, push=push)

    async def steps() -> None:
        now = 0.0
        for lines in (3, 8, 8, 8, 12, 12, 12, 12, 12):
            now += INTERVAL_SECONDS
            guard.holding = lines == 12 and now < 14  # a stall: lines 9-12 not logged yet
            follower.positions = {"uid-1": ["2026-12-06T10:00:00.000000000Z", 1, lines]}
            await keeper.step(now)

    asyncio.run(steps())
    read = [value["uid-1"][2] for key, value in stored if key == KEY]
    # taken at 2 s (3 lines) and 4 s (8), stored at 8 s and 10 s (2 s steps, 5 s lag); 8 again
    # is not stored again; 12 is taken only once the stall's hold ended (14 s), stored at 20 s
    assert LAG_SECONDS == 5.0 and INTERVAL_SECONDS == 2.0
    assert read == [3, 8]
    asyncio.run(keeper.step(20.0))
    assert [value["uid-1"][2] for _, value in stored] == [3, 8, 12]
