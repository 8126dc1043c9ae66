"""Airflow's ``execution_timeout`` (SIGALRM) reaches the synchronous wait however busy its
event loop is: with Airflow's own timeout, not a stand-in."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
from airflow.providers.common.compat.sdk import AirflowTaskTimeout
from airflow.sdk.execution_time.timeout import timeout

from airflow_tfjob.backends.kubernetes.run import run_until_alarm


async def _busy_sibling_and_a_long_wait() -> str:
    """A wait of 6 s beside a task that keeps the loop busy, as log streams of chatty replicas
    do: the alarm almost always comes while the sibling runs."""

    async def chatty() -> None:
        while True:
            ends = time.monotonic() + 0.05
            while time.monotonic() < ends:
                pass
            await asyncio.sleep(0)

    sibling = asyncio.create_task(chatty())
    try:
        await asyncio.sleep(6)
        return "waited"
    finally:
        sibling.cancel()


def test_the_timeout_ends_the_wait_even_when_it_lands_in_another_task() -> None:
    began = time.monotonic()
    with pytest.raises(AirflowTaskTimeout) as raised, timeout(1):
        run_until_alarm(_busy_sibling_and_a_long_wait())
    assert time.monotonic() - began < 2.5
    # the task log's traceback is the timeout's alone (the campaign, seed 20261206 run 125)
    assert raised.value.__context__ is None and raised.value.__cause__ is None
    assert callable(signal.getsignal(signal.SIGALRM))  # never left at SIG_DFL (it ends processes)


def test_asyncio_run_alone_loses_it_there() -> None:
    """Why ``run_until_alarm`` exists: with plain ``asyncio.run`` the handler raised inside the
    busy task, which ended with it, and the wait went on to its end."""
    began = time.monotonic()
    with timeout(1):
        outcome = asyncio.run(_busy_sibling_and_a_long_wait())
    assert outcome == "waited" and time.monotonic() - began > 5


def test_a_wait_that_ends_in_time_returns_its_value_and_keeps_the_handler() -> None:
    async def quick() -> int:
        await asyncio.sleep(0.01)
        return 7

    with timeout(5):
        handler = signal.getsignal(signal.SIGALRM)
        assert run_until_alarm(quick()) == 7
        assert signal.getsignal(signal.SIGALRM) == handler
