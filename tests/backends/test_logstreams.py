"""The live log stream budget (``logstreams``): ranks, first come, preemption, release."""

from __future__ import annotations

import asyncio

from airflow_tfjob.backends.kubernetes import logstreams


def _granted(*slots: logstreams.Slot) -> list[bool]:
    return [slot.granted.is_set() for slot in slots]


def test_output_replicas_come_first_and_a_freed_stream_goes_to_the_best_waiting() -> None:
    async def scenario() -> None:
        budget = logstreams.Budget(2)
        a_worker, b_worker = budget.request(1), budget.request(1)  # the cap, with second replicas
        c_chief = budget.request(0)  # an output replica takes the newest lower-ranked stream
        assert _granted(a_worker, b_worker, c_chief) == [True, False, True]
        assert b_worker.revoked.is_set() and not a_worker.revoked.is_set()
        d_third = budget.request(2)  # ranks below every live one: waits
        assert _granted(d_third) == [False]
        budget.release(a_worker)  # b (rank 1) before d (rank 2) ... and
        assert _granted(b_worker, d_third) == [True, False]
        assert not b_worker.revoked.is_set()  # ... b streams again, from where it read
        budget.release(c_chief)
        assert _granted(d_third) == [True]
        budget.release(b_worker)
        budget.release(d_third)
        assert budget.live == set() and budget.waiting == []

    asyncio.run(scenario())


def test_equal_ranks_are_first_come_and_an_equal_rank_never_preempts() -> None:
    async def scenario() -> None:
        budget = logstreams.Budget(1)
        first, second, third = budget.request(0), budget.request(0), budget.request(0)
        assert _granted(first, second, third) == [True, False, False]
        budget.release(first)
        assert _granted(second, third) == [True, False]
        budget.release(third)  # a wait given up (its pod ended): nothing else changes
        assert _granted(second) == [True] and budget.waiting == []

    asyncio.run(scenario())


def test_the_cap_is_the_configuration_and_each_loop_has_its_budget(monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW__TFJOB__MAX_LOG_STREAMS", "7")

    async def get() -> logstreams.Budget:
        return logstreams.budget()

    one, two = asyncio.run(get()), asyncio.run(get())
    assert one.cap == two.cap == 7 and one is not two
    monkeypatch.setenv("AIRFLOW__TFJOB__MAX_LOG_STREAMS", "0")
    assert logstreams.max_live() == 1
    monkeypatch.delenv("AIRFLOW__TFJOB__MAX_LOG_STREAMS")
    assert logstreams.max_live() == logstreams.DEFAULT_MAX_LIVE
