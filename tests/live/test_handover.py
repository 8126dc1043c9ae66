"""Issue 32 item 1, live: a trigger handed to another triggerer keeps its job.

Two triggerers (tests/live/pair.py), ``triggerer_health_check_threshold`` 10 s. While a deferred
task's trigger follows a job and prints its chief's numbered lines in triggerer A, A's whole
process group is stopped (SIGSTOP): its heartbeat goes stale and triggerer B takes the trigger.
A is then continued: Airflow cancels the trigger there "by user action" and calls ``on_kill``,
which must keep the job (the task is still deferred) — and A must print no replica line once it
no longer owns the trigger. The task ends through B with the chief's output.
"""

from __future__ import annotations

import collections
import datetime
import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import kubernetes

from airflow_tfjob.triggers._logpositions import INTERVAL_SECONDS, LAG_SECONDS
from tests.live.conftest import Pair, report
from tests.live.jobs import Gate, tfjob
from tests.live.pair import triggerer_of
from tests.waiting import eventually

DAG = "pair_handover"
TICK = re.compile(r"^\[chief-0\] tick (\d+)$")


def trigger_records(pair: Pair, run: str, job_id: int) -> list[tuple[float, str]]:
    """``(time logged, event)`` of every line triggerer ``job_id`` wrote for the run's trigger
    (its supervisor writes what its trigger runner logged, sometimes seconds later)."""
    path = (
        pair.live.logs / f"dag_id={DAG}" / f"run_id={run}" / "task_id=train"
        / f"attempt=1.log.trigger.{job_id}.log"
    )  # fmt: skip
    if not path.exists():
        return []
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        stamp = datetime.datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
        records.append((stamp.timestamp(), str(record.get("event", ""))))
    return records


def events(records: list[tuple[float, str]]) -> list[str]:
    return [event for _, event in records]


def ticks(lines: list[str]) -> list[int]:
    """The chief's numbered lines among ``lines``."""
    return [int(m.group(1)) for line in lines if (m := TICK.match(line))]


def triggerer_id(pair: Pair, run: str) -> int | None:
    trigger = pair.api.task_instance(DAG, run, "train").get("trigger") or {}
    return trigger.get("triggerer_id")


def test_a_trigger_handed_to_another_triggerer_keeps_its_job_and_ends_the_task_there(
    live_pair: Pair, kube_api: kubernetes.client.ApiClient, tmp_path: Path
) -> None:
    pair, api = live_pair, live_pair.api
    gate = Gate(tmp_path / "gate")
    api.wait_for_dag(DAG)
    run = api.trigger(DAG, gate.conf)
    api.wait_for_task(DAG, run, "train", ["deferred"], timeout=180)
    name = api.xcom(DAG, run, "train", "tfjob_name")
    uid = _job(kube_api, pair.namespace, name)["metadata"]["uid"]
    a_id = eventually(lambda: triggerer_id(pair, run), timeout=60)
    a = pair.live.components[triggerer_of(pair.live, api, a_id)]
    eventually(lambda: len(ticks(events(trigger_records(pair, run, a_id)))) >= 5, timeout=90)
    time.sleep(LAG_SECONDS + INTERVAL_SECONDS + 1)  # A has stored where its log was read to

    assert a.pid is not None
    stopped = time.time()
    os.killpg(a.pid, signal.SIGSTOP)  # the command, its trigger runner and its log server
    try:
        b_id = eventually(lambda: (t := triggerer_id(pair, run)) != a_id and t, timeout=90)
        eventually(lambda: len(ticks(events(trigger_records(pair, run, b_id)))) >= 5, timeout=60)
    finally:
        os.killpg(a.pid, signal.SIGCONT)

    kept = f"Keeping TFJob {pair.namespace}/{name}: the trigger was removed, but its task"
    a_events = eventually(
        lambda: (
            (ev := events(trigger_records(pair, run, a_id))) and any(kept in e for e in ev) and ev
        ),
        timeout=90,
    )
    cancelled = "Trigger cancelled by user action, invoking on_kill"
    assert cancelled in a_events and f"{kept} instance is still deferred" in "\n".join(a_events)
    job = _job(kube_api, pair.namespace, name)
    assert job["metadata"]["uid"] == uid and "deletionTimestamp" not in job["metadata"]

    gate.open()
    finished = api.wait_for_run(DAG, run, timeout=120)
    log = api.task_log(DAG, run, "train")
    assert finished["state"] == "success", log
    result = api.xcom(DAG, run, "train")
    assert result["name"] == name and result["uid"] == uid
    a_ticks = ticks(events(trigger_records(pair, run, a_id)))
    assert result["output"]["ticks"] >= max(a_ticks)
    assert "was deleted while the task waited" not in log
    assert api.task_instance(DAG, run, "train")["try_number"] == 1
    # A logged no replica line after it was stopped: once continued, it held them until Airflow
    # took the trigger away from it, then dropped them
    late = ticks([e for t, e in trigger_records(pair, run, a_id) if t >= stopped])
    assert not late, f"A printed {late} after it was stopped"
    assert any(e.startswith("Dropped ") for e in events(trigger_records(pair, run, a_id)))
    _duplicates(log, a_ticks)


def _job(kube_api: kubernetes.client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    job = tfjob(kube_api, namespace, name)
    assert job is not None, f"TFJob {namespace}/{name} is gone"
    return job


def _duplicates(log: str, a_ticks: list[int]) -> None:
    """Lines show twice only from A's last seconds before it was stopped: B goes on from where
    A's log had been read to 5 s before A last stored it (``triggers._logpositions``, every 2 s;
    a chief line every 0.2 s), not from the chief's first line; every line shows, none more than
    twice."""
    counts = collections.Counter(ticks([line.split(" ", 1)[-1] for line in log.splitlines()]))
    twice = sorted(n for n, c in counts.items() if c > 1)
    printed_by_a = sorted(set(a_ticks))
    assert twice == printed_by_a[len(printed_by_a) - len(twice) :], (twice, printed_by_a)
    assert len(twice) <= (LAG_SECONDS + INTERVAL_SECONDS + 2.0) / 0.2, twice
    assert not counts or max(counts.values()) <= 2
    assert set(counts) == set(range(1, max(counts) + 1))  # none lost
    report(
        f"hand-over: {len(twice)} of {len(counts)} chief lines twice in the task log "
        f"(A printed {len(printed_by_a)})"
    )
