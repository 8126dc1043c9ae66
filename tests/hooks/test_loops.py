"""``PerLoop``: one value per event loop, never shared with another loop, even one that reuses a
dead loop's ``id`` (the shared clients were keyed by ``id(loop)`` before)."""

from __future__ import annotations

import asyncio
import gc

import pytest

from airflow_tfjob.hooks.loops import PerLoop


def test_each_loop_gets_its_own_value_made_once() -> None:
    made: list[dict[str, int]] = []

    def factory() -> dict[str, int]:
        made.append({})
        return made[-1]

    per_loop = PerLoop(factory)

    async def twice() -> tuple[dict[str, int], dict[str, int]]:
        return per_loop.get(), per_loop.get()

    first = asyncio.run(twice())
    second = asyncio.run(twice())
    assert first[0] is first[1] and second[0] is second[1]  # made once per loop
    assert first[0] is not second[0] and len(made) == 2


def test_a_loops_value_goes_with_it_and_a_new_loop_never_sees_it() -> None:
    per_loop: PerLoop[list[str]] = PerLoop(list)

    async def put(item: str) -> list[str]:
        value = per_loop.get()
        value.append(item)
        return list(value)

    assert asyncio.run(put("a")) == ["a"]
    gc.collect()  # the first loop is gone; a new one may get its id
    assert per_loop.values() == []
    assert asyncio.run(put("b")) == ["b"]


def test_outside_a_loop_there_is_no_value() -> None:
    with pytest.raises(RuntimeError, match="no running event loop"):
        PerLoop(dict).get()
