"""The follower's one failure policy: an unavailable API server (500, 503, 429, a connection
dropped or refused) at any moment of a wait — the first read, a re-read, the deletion at the
deadline, a log's opening or its reading — is tried again until the task's own limits.

The faults come from the fault proxy in front of the real API server. The hook is built with
``max_attempts=1`` so each injected fault reaches the follower (the default hook's own eight
tries would absorb two faults, and so would hide the follower's policy)."""

from __future__ import annotations

import asyncio
import copy
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_tfjob import TfJob, Worker
from airflow_tfjob.backends.kubernetes.follower import JobFollower, TFJobEvent, settings_key
from airflow_tfjob.errors import TFJobNotFound
from airflow_tfjob.hooks.tfjob import AsyncTFJobHook, TFJobHook
from airflow_tfjob.model import naming
from airflow_tfjob.rules.follow import Limits
from airflow_tfjob.rules.jobref import JobRef
from tests.faults.proxy import FaultProxy
from tests.faults.rules import Rule
from tests.kubelet.fates import RUNS_FOR_EVER, Fate, Script
from tests.triggers.loglines import Lines, capture

LINES_A = [f"first run line {i}" for i in range(3)]
LINES_B = [f"second run line {i}" for i in range(3)]
TIMES = 2
"""Faults in a row at each moment: the follower must try again past each of them."""


def _logger(name: str) -> tuple[logging.Logger, Lines]:
    return capture(f"tests.follower.{name}")


def _job(hook: TFJobHook, name: str, namespace: str, **worker: Any) -> dict[str, Any]:
    manifest = TfJob(worker=Worker(**worker)).to_manifest(name, namespace, image="tf:2")
    manifest["metadata"].setdefault("labels", {}).update(naming.MANAGED_BY)
    return hook.create(manifest)


def _follower(
    settings: dict[str, Any], obj: dict[str, Any], log: logging.Logger, **limits: Any
) -> JobFollower:
    return JobFollower(
        AsyncTFJobHook(None, max_attempts=1, **settings),
        JobRef.of(obj),
        Limits(**limits),
        key=settings_key(settings),
        log=log,
        get_logs=True,
        poll_interval=1,
    )


ERRORS: dict[str, Callable[[FaultProxy, str, str], Rule]] = {
    "500": lambda proxy, path, method: proxy.fail(path, status=500, times=TIMES, method=method),
    "503": lambda proxy, path, method: proxy.fail(path, status=503, times=TIMES, method=method),
    "429": lambda proxy, path, method: proxy.throttle(path, times=TIMES, method=method),
    "dropped": lambda proxy, path, method: proxy.drop(path, times=TIMES, method=method),
}
MOMENTS = ["start", "re-read", "deadline delete", "log open", "log read"]


@pytest.mark.parametrize("error", list(ERRORS))
@pytest.mark.parametrize("moment", MOMENTS)
def test_an_unavailable_api_at_any_moment_is_outwaited(
    moment: str, error: str, replicas: Script, namespace: str, fault_proxy: FaultProxy
) -> None:
    name = "outage"
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(fault_proxy.kubeconfig))
    job_path = rf"/tfjobs/{name}$"
    log_path = rf"/pods/{name}-worker-0/log$"
    limits: dict[str, Any] = {}
    worker: dict[str, Any] = {}
    if moment == "deadline delete":
        replicas.set_fate(name, "Worker", 0, RUNS_FOR_EVER)
        limits["deadline"] = time.time() + 6
    elif moment == "log read":  # the log is read again after the container restarts in place
        worker["restart_policy"] = "OnFailure"
        replicas.set_fate(
            name,
            "Worker",
            0,
            Fate(duration=1.5, exit_code=1, logs=LINES_A),
            Fate(duration=1.5, logs=LINES_B, message="done"),
        )
    else:
        replicas.set_fate(name, "Worker", 0, Fate(duration=3.0, logs=LINES_A, message="done"))
    obj = _job(hook, name, namespace, **worker)
    if moment in ("start", "re-read"):  # the watch cannot serve: the follower reads the job
        fault_proxy.fail(r"/tfjobs$", status=403, times=None, watch=False)
    log, lines = _logger(f"{moment}-{error}")
    target, method = {
        "start": (job_path, "GET"),
        "re-read": (job_path, "GET"),
        "deadline delete": (job_path, "DELETE"),
        "log open": (log_path, "GET"),
        "log read": (log_path, "GET"),
    }[moment]
    later = moment in ("re-read", "log read")  # after the first request of its kind
    rules: list[Rule] = []

    async def run() -> TFJobEvent:
        if not later:
            rules.append(ERRORS[error](fault_proxy, target, method))
        task = asyncio.create_task(_follower(hook.trigger_settings(), obj, log, **limits).run())
        if later:
            ends = time.monotonic() + 20
            while fault_proxy.requests(target, method=method) < 1 and time.monotonic() < ends:
                await asyncio.sleep(0.05)
            rules.append(ERRORS[error](fault_proxy, target, method))
        return await task

    event = asyncio.run(run())
    assert rules and rules[0].hits == TIMES, "the faults were met"
    if moment == "deadline delete":
        assert event["kind"] == "deadline", event
        assert event["message"].endswith("; it was deleted"), event
        assert _gone_or_going(hook, name, namespace)
        return
    assert event["kind"] == "finished", event
    assert event["result"] and event["result"]["state"] == "Succeeded", event
    expected = LINES_A + (LINES_B if moment == "log read" else [])
    for line in expected:
        assert lines.lines.count(f"[worker-0] {line}") == 1, (line, lines.lines)
    if moment in ("start", "deadline delete", "log open"):
        assert any("trying again in" in line for line in lines.lines), lines.lines


def _gone_or_going(hook: TFJobHook, name: str, namespace: str) -> bool:
    try:
        return bool(hook.get(name, namespace)["metadata"].get("deletionTimestamp"))
    except TFJobNotFound:
        return True


def test_a_wait_that_never_reaches_the_api_server_ends_at_its_deadline_and_says_so(
    replicas: Script, namespace: str, fault_proxy: FaultProxy
) -> None:
    """Connection refused from the first read on: no failure before the deadline, then a
    message that says the job's state is unknown and that it could not be deleted."""
    replicas.set_fate("refused", "Worker", 0, RUNS_FOR_EVER)
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(fault_proxy.kubeconfig))
    obj = _job(hook, "refused", namespace)
    with socket.socket() as sock:  # a port nobody listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = copy.deepcopy(hook.trigger_settings())
    settings["config_dict"]["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    log, lines = _logger("refused")
    began = time.time()
    event = asyncio.run(_follower(settings, obj, log, deadline=began + 5).run())
    assert event["kind"] == "deadline", event
    assert time.time() - began >= 5 - 0.5, "not given up before the deadline"
    message = event["message"]
    assert "state unknown: the API server was unavailable" in message, message
    assert "could NOT be deleted" in message and "the reaper deletes it" in message, message
    assert hook.get("refused", namespace)["metadata"]["uid"] == obj["metadata"]["uid"]
    assert sum("trying again in" in line for line in lines.lines) >= 2, lines.lines
