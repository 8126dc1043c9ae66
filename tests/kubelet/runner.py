"""The container runtime of the process kubelet: one thread per pod, living out its fate.

A runner writes the pod's status through ``pods/NAME/status`` the way a kubelet would: Pending
with the container waiting in ``ContainerCreating``, Running with ``startedAt``, then terminated
with exit code, reason and termination message. The pod's ``restartPolicy`` decides what follows
an exit: ``Never`` ends the pod (Succeeded or Failed), ``OnFailure`` restarts a failed container
in place and ``Always`` any container (``restartCount`` + 1, ``lastState`` keeps the old run).
Other containers (sidecars) run until the pod is deleted, so they keep the pod Running, as an
injected Istio proxy does. ``containerStatuses`` has no merge key: every write sends the status
of every container. Logs are kept per pod uid: a re-created pod of the same name starts afresh.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes

from tests.kubelet import fates, logstore, network, podspec, process
from tests.kubelet.podspec import Obj, stamp

log = logging.getLogger(__name__)
MERGE_PATCH = "application/merge-patch+json"


@dataclass(frozen=True)
class Context:
    """What every runner of one kubelet shares."""

    api: kubernetes.client.ApiClient
    store: logstore.LogStore
    script: fates.Script
    workdir: Path
    network: network.PodNetwork | None = None
    """Pods get namespaces and addresses of their own; without it they share 127.0.0.1."""


class PodRunner:
    """Runs the ``tensorflow`` container of one pod (one object: a recreated pod gets another)."""

    def __init__(self, ctx: Context, pod: Obj) -> None:
        self.ctx = ctx
        self.pod = pod
        meta = pod["metadata"]
        self.replica: fates.ReplicaKey = podspec.replica_of(pod)
        self.key: logstore.Key = (meta["namespace"], meta["name"], podspec.CONTAINER)
        self.uid: str = meta["uid"]
        self.stopping = threading.Event()
        self.started_at = stamp(logstore.now())
        self.run_started = self.started_at
        self.sidecars = len(pod["spec"]["containers"]) > 1
        self.grace = process.KILL_GRACE
        self.attachment: network.Attachment | None = None
        self._thread = threading.Thread(target=self._main, daemon=True, name=f"pod-{meta['name']}")

    def start(self) -> None:
        """Start living the pod's fate in a thread."""
        self._thread.start()

    def alive(self) -> bool:
        """Whether the container still runs (or waits to start)."""
        return self._thread.is_alive()

    def stop(self, grace: float = process.KILL_GRACE) -> None:
        """Kill the container (the pod is being deleted: SIGTERM, ``grace``, SIGKILL), wait for
        the thread, and drop this pod's logs."""
        self.grace = grace
        self.stopping.set()
        self._thread.join(timeout=grace + 6)
        self.ctx.store.forget_pod(self.key[0], self.key[1], uid=self.uid)
        if self.ctx.network is not None:
            self.ctx.network.detach(self.uid)

    def _main(self) -> None:
        try:
            self._live()
        except kubernetes.client.ApiException as exc:
            if exc.status != 404:  # a pod deleted under us just ends
                log.exception("runner of %s/%s failed", *self.key[:2])
        except Exception:
            log.exception("runner of %s/%s failed", *self.key[:2])
        finally:
            self.ctx.store.terminate(self.key, self.uid)

    def _live(self) -> None:
        if self.ctx.network is not None:
            self.attachment = self.ctx.network.attach(self.uid, *self.key[:2])
        restarts = 0
        last_state: Obj | None = None
        policy = self.pod["spec"].get("restartPolicy", "Always")
        self._write("Pending", {"waiting": {"reason": "ContainerCreating"}}, restarts, None)
        while not self.stopping.is_set():
            _attempt, fate = self.ctx.script.next_run(self.replica)
            if fate.never_starts or self.stopping.wait(fate.pending_for if restarts == 0 else 0):
                self.stopping.wait()
                return
            outcome = self._run_once(fate, restarts, last_state)
            if outcome is None:
                return
            terminated = self._terminated(outcome)
            if fate.evicted:
                self._evict(terminated, restarts, last_state)
                return
            if _restarts(policy, outcome.exit_code):
                restarts, last_state = restarts + 1, {"terminated": terminated}
                continue
            phase = "Succeeded" if outcome.exit_code == 0 else "Failed"
            phase = "Running" if self.sidecars else phase  # a sidecar keeps the pod alive
            self._write(phase, {"terminated": terminated}, restarts, last_state)
            return

    def _run_once(
        self, fate: fates.Fate, restarts: int, last: Obj | None
    ) -> process.Outcome | None:
        self.ctx.store.start(self.key, self.uid, restart=restarts > 0)
        self.run_started = stamp(logstore.now())
        self._write("Running", {"running": {"startedAt": self.run_started}}, restarts, last)
        if fate.real:
            directory = self.ctx.workdir / self.key[0] / self.key[1] / self.uid[:8]
            netns = self.attachment.netns if self.attachment else None
            local = process.LocalProcess(self.pod, directory=directory, netns=netns)
            outcome = local.run(self.ctx.store, self.key, self.stopping, grace=lambda: self.grace)
        else:
            outcome = self._script(fate)
        self.ctx.store.terminate(self.key, self.uid)
        return outcome

    def _script(self, fate: fates.Fate) -> process.Outcome | None:
        began = time.monotonic()
        for line in fate.timed_logs():
            if self.stopping.wait(max(0.0, began + line.at - time.monotonic())):
                return None
            self.ctx.store.write(self.key, line.text, self.uid)
        if fate.exit_code is None:
            self.stopping.wait()
            return None
        if self.stopping.wait(max(0.0, began + fate.duration - time.monotonic())):
            return None
        return process.Outcome(exit_code=fate.exit_code, message=fate.message)

    def _terminated(self, outcome: process.Outcome) -> Obj:
        message = outcome.message
        container = process.tensorflow_container(self.pod)
        fallback = container.get("terminationMessagePolicy") == "FallbackToLogsOnError"
        if not message and fallback and outcome.exit_code != 0:
            message = "".join(self.ctx.store.tail(self.key, self.uid)[-80:])[-2048:]
        state: Obj = {
            "exitCode": outcome.exit_code,
            "reason": "Completed" if outcome.exit_code == 0 else "Error",
            "startedAt": self.run_started,
            "finishedAt": stamp(logstore.now()),
            "containerID": f"process://{self.uid}",
        }
        if message:
            state["message"] = message
        return state

    def _evict(self, terminated: Obj, restarts: int, last: Obj | None) -> None:
        killed = {**terminated, "exitCode": 137, "reason": "Error"}
        extra = {"reason": "Evicted", "message": "The node was low on resource: memory. "}
        self._write("Failed", {"terminated": killed}, restarts, last, extra=extra)

    def _write(
        self, phase: str, state: Obj, restarts: int, last: Obj | None, *, extra: Obj | None = None
    ) -> None:
        status: dict[str, Any] = {
            "phase": phase,
            "hostIP": "127.0.0.1",
            "podIP": self.attachment.address if self.attachment else "127.0.0.1",
            "startTime": self.started_at,
            "containerStatuses": self._container_statuses(state, restarts, last, phase),
            **(extra or {}),
        }
        core = kubernetes.client.CoreV1Api(self.ctx.api)
        core.patch_namespaced_pod_status(
            self.key[1], self.key[0], {"status": status}, _content_type=MERGE_PATCH
        )

    def _container_statuses(
        self, state: Obj, restarts: int, last: Obj | None, phase: str
    ) -> list[Obj]:
        statuses = []
        for container in self.pod["spec"]["containers"]:
            entry: Obj = {
                "name": container["name"],
                "image": container.get("image", ""),
                "imageID": "",
                "restartCount": 0,
            }
            if container["name"] == podspec.CONTAINER:
                entry.update(state=state, restartCount=restarts)
                if last is not None:
                    entry["lastState"] = last
            elif phase == "Failed":
                entry["state"] = {"terminated": {"exitCode": 137, "reason": "Error"}}
            else:
                entry["state"] = {"running": {"startedAt": self.started_at}}
            entry["ready"] = entry["started"] = "running" in entry["state"]
            statuses.append(entry)
        return statuses


def _restarts(policy: str, exit_code: int) -> bool:
    """Whether the kubelet restarts a container that exited, under the pod's policy."""
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)
