"""A replica re-created under the same pod name (eviction, ``ExitCode`` retry): both pods' logs
are followed, and the failure report shows the last pod's tail.

The training operator deletes a failed retryable pod and creates its replacement under the same
name, with a new uid; the follower tells them apart by uid."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from airflow_tfjob import TfJob, Worker
from airflow_tfjob.hooks.tfjob import TFJobHook
from airflow_tfjob.model import naming
from airflow_tfjob.triggers.tfjob import TFJobTrigger
from tests.kubelet.fates import Fate, Script

FIRST = [f"first pod line {i}" for i in range(4)]
LAST = [f"last pod line {i}" for i in range(4)]
LAST_FATE = Fate(duration=1.2, exit_code=1, logs=LAST, pending_for=1.0)
"""The replacement waits to be scheduled a moment, as a real one does: the first pod's end is
seen before the second's container runs."""


@pytest.mark.parametrize(
    "first",
    [
        Fate(duration=1.2, exit_code=137, logs=FIRST),
        Fate(duration=1.2, evicted=True, exit_code=137, logs=FIRST),
    ],
    ids=["exit-137", "evicted"],
)
def test_both_pods_of_a_recreated_replica_are_logged_once_and_the_last_tail_is_reported(
    first: Fate,
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    replicas.set_fate("recreated", "Worker", 0, first, LAST_FATE)
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig))
    manifest = TfJob(worker=Worker(restart_policy="ExitCode")).to_manifest(
        "recreated", namespace, image="tf:2"
    )
    manifest["metadata"].setdefault("labels", {}).update(naming.MANAGED_BY)
    obj = hook.create(manifest)
    meta = obj["metadata"]
    trigger = TFJobTrigger(
        name=meta["name"],
        namespace=namespace,
        uid=meta["uid"],
        settings=hook.trigger_settings(),
        poll_interval=1,
        get_logs=True,
    )

    async def first_event() -> dict[str, object]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("no event")

    event = asyncio.run(first_event())
    assert event["kind"] == "finished", event
    out = capfd.readouterr().out
    for line in FIRST + LAST:
        assert len(re.findall(rf"\[worker-0\] {line}\s", out)) == 1, (line, out)
    failure = str(event["failure"])
    assert "worker-0 last log lines:\n" + "\n".join(LAST) in failure, failure
    assert "first pod line" not in failure, failure
