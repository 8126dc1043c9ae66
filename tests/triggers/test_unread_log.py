"""A replica whose log the API server cannot give is said in the task log, with why: never a
silent loss. kube-apiserver answers 204 (no content) for a pod bound to no node; the fan-in bench
once took that for an empty log that had ended, and whole logs went missing without a word."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import kubernetes
import pytest

from airflow_tfjob import TfJob, Worker
from airflow_tfjob.backends.kubernetes import replicalogs
from airflow_tfjob.backends.kubernetes.follower import JobFollower, settings_key
from airflow_tfjob.backends.kubernetes.messages import UNREAD_LOG
from airflow_tfjob.hooks.tfjob import AsyncTFJobHook, TFJobHook
from airflow_tfjob.model import naming
from airflow_tfjob.rules.follow import Limits
from airflow_tfjob.rules.jobref import JobRef
from tests.cluster.jobs import eventually
from tests.triggers.loglines import capture


def _status(state: dict[str, Any], phase: str) -> dict[str, Any]:
    container = {"name": "tensorflow", "image": "tf:2", "imageID": "", "ready": phase == "Running",
                 "restartCount": 0, "state": state}  # fmt: skip
    return {"status": {"phase": phase, "containerStatuses": [container]}}


def test_a_replica_log_the_server_cannot_give_is_said_unread_with_why(
    namespace: str, kubeconfig: Any, kube_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replicalogs, "LOG_DRAIN_SECONDS", 2.0)
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig))
    manifest = TfJob(worker=Worker()).to_manifest("nolog", namespace, image="tf:2")
    manifest["metadata"].setdefault("labels", {}).update(naming.MANAGED_BY)
    template = manifest["spec"]["tfReplicaSpecs"]["Worker"]["template"]
    template["spec"]["schedulerName"] = "nobody"  # no kubelet takes it: it stays on no node
    obj = hook.create(manifest)
    core = kubernetes.client.CoreV1Api(kube_api)
    eventually(lambda: core.list_namespaced_pod(namespace).items)  # the operator made it
    log, lines = capture("tests.unread")
    settings = hook.trigger_settings()
    follower = JobFollower(
        AsyncTFJobHook(None, **settings), JobRef.of(obj), Limits(), key=settings_key(settings),
        log=log, get_logs=True, poll_interval=1,
    )  # fmt: skip

    def run_and_end() -> None:  # as a kubelet would report it, without one: ran, then ended
        now = datetime.datetime.now(datetime.UTC).isoformat()
        running = _status({"running": {"startedAt": now}}, "Running")
        core.patch_namespaced_pod_status("nolog-worker-0", namespace, running)
        ended = {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}
        core.patch_namespaced_pod_status(
            "nolog-worker-0", namespace, _status({"terminated": ended}, "Succeeded")
        )

    async def run() -> Any:
        following = asyncio.create_task(follower.run())
        await asyncio.sleep(1.0)  # the follower holds the job and watches its pods
        await asyncio.to_thread(run_and_end)
        return await asyncio.wait_for(following, 60)

    event = asyncio.run(run())
    assert event["kind"] == "finished", event
    said = [line for line in lines.lines if "was not read to its end" in line]
    why = (
        f"stopped after 2 s; the last try: cannot read the log of pod {namespace}/nolog-worker-0 "
        "yet: the API server has none to give (HTTP 204: the pod is bound to no node)"
    )
    assert said == [UNREAD_LOG % (f"{namespace}/nolog", "nolog-worker-0", 0, why)], lines.lines
