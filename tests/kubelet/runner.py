"""The container runtime of the process kubelet: one thread per pod, living out its fate.

A runner runs the pod's main container (:func:`~tests.kubelet.podspec.main_container`:
``tensorflow`` in a TFJob pod, ``node`` in a TrainJob's) and writes the pod's status through
``pods/NAME/status`` the way a kubelet would: Pending with the container waiting in
``ContainerCreating``, Running with ``startedAt``, then terminated with exit code, reason and
termination message, each time with the kubelet's conditions (:mod:`tests.kubelet.podstatus`:
``Ready`` is True while every container runs, which the Job controller counts). The pod's
``restartPolicy`` decides what follows an exit: ``Never`` ends the pod (Succeeded or Failed),
``OnFailure`` restarts a failed container in place and ``Always`` any container
(``restartCount`` + 1, ``lastState`` keeps the old run). Other containers (sidecars) run until
the pod is deleted, so they keep the pod Running, as an injected Istio proxy does.
``containerStatuses`` is an atomic list: every write sends the status of every container. Each
write names the pod's uid, so a runner never writes over a re-created pod of the same name (the
apiserver refuses a uid change). Logs are kept per pod uid and under the container's real name.

A pod being deleted is taken to the end, as a kubelet does (:meth:`PodRunner.stop` with
``finish``): its container is killed and, unless the pod had already ended, the terminal status
is written before the kubelet removes the pod: the exit code of the kill (143 for SIGTERM), phase
Failed (Succeeded only if every container exited 0). The Job controller needs that: a pod that
is terminating without a terminal phase holds back the Job's Complete and Failed conditions, and
one held by its ``job-tracking`` finalizer stays in the API after the final delete. A pod that
ends leaves the pod network (its names go from every hosts file).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes

from tests.kubelet import fates, logstore, network, podspec, podstatus, process
from tests.kubelet.podspec import Obj, stamp

log = logging.getLogger(__name__)
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
KILLED_BY_SIGTERM = 143
"""Exit code of a scripted container stopped by its pod's deletion: a process with no SIGTERM
handler, as a real replica's would be, dies of the signal."""
NOT_FOUND_AT_TERMINATION: Obj = {
    "exitCode": 137,
    "reason": "ContainerStatusUnknown",
    "message": "The container could not be located when the pod was terminated",
}
"""What the kubelet's status manager writes for a container that never ran when its pod ends."""


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
    """Runs the main container of one pod (one object: a recreated pod gets another)."""

    def __init__(self, ctx: Context, pod: Obj) -> None:
        self.ctx = ctx
        self.pod = pod
        meta = pod["metadata"]
        self.container: Obj = podspec.main_container(pod)
        self.key: logstore.Key = (meta["namespace"], meta["name"], self.container["name"])
        self.uid: str = meta["uid"]
        self.config_error = ""
        """Why the container cannot be made (the pod then waits, as with a kubelet's
        ``CreateContainerConfigError``): here, a replica layout that does not place the pod."""
        try:
            self.replica: fates.ReplicaKey = podspec.replica_of(pod)
        except ValueError as exc:
            self.replica, self.config_error = ("", "", 0), str(exc)
        self.stopping = threading.Event()
        self.started_at = stamp(logstore.now())
        self.run_started = self.started_at
        self.sidecars = len(pod["spec"]["containers"]) > 1
        self.grace = process.KILL_GRACE
        self.attachment: network.Attachment | None = None
        self.killed: process.Outcome | None = None
        """How the container ended when it was killed (its pod is being deleted)."""
        self.written: tuple[str, Obj, int, Obj | None] | None = None
        """The last status written: phase, main container state, restarts, last state."""
        self._conditions: list[Obj] = []
        self._thread = threading.Thread(target=self._main, daemon=True, name=f"pod-{meta['name']}")

    def start(self) -> None:
        """Start living the pod's fate in a thread (unless the pod is already being stopped)."""
        if not self.stopping.is_set():
            self._thread.start()

    def alive(self) -> bool:
        """Whether the container still runs (or waits to start)."""
        return self._thread.is_alive()

    def stop(self, grace: float = process.KILL_GRACE, *, finish: bool = False) -> None:
        """Kill the container (SIGTERM, ``grace``, SIGKILL) and wait for the thread; with
        ``finish`` (the pod is being deleted), then write the pod's terminal status
        (:meth:`finish`). The pod leaves the network."""
        self.grace = grace
        self.stopping.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=grace + 6)
        try:
            if finish:
                self.finish()
        finally:
            self._detach()

    def finish(self) -> None:
        """Write what a kubelet writes once it has stopped a deleted pod's containers: nothing
        if the pod had ended, else the container terminated and phase Failed (Succeeded if
        every container exited 0)."""
        if self.written is not None and self.written[0] in podstatus.TERMINAL:
            return
        _phase, state, restarts, last = self.written or ("Pending", {}, 0, None)
        if self.killed is not None:
            state = {"terminated": self._terminated(self.killed)}
        elif "terminated" not in state:
            state = {"terminated": dict(NOT_FOUND_AT_TERMINATION)}
        ok = state["terminated"]["exitCode"] == 0 and not self.sidecars
        try:
            self._write("Succeeded" if ok else "Failed", state, restarts, last)
        except kubernetes.client.ApiException as exc:
            if exc.status != 404:  # gone already: nothing to finish
                log.warning("could not finish pod %s/%s: %s", *self.key[:2], exc)

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
            if self.written is not None and self.written[0] in podstatus.TERMINAL:
                self._detach()

    def _detach(self) -> None:
        if self.ctx.network is not None:
            self.ctx.network.detach(self.uid)

    def _live(self) -> None:
        if self.ctx.network is not None:
            spec = self.pod["spec"]
            self.attachment = self.ctx.network.attach(
                self.uid, *self.key[:2],
                hostname=spec.get("hostname", ""), subdomain=spec.get("subdomain", ""),
            )  # fmt: skip
        if self.config_error:
            waiting = {"reason": "CreateContainerConfigError", "message": self.config_error}
            self._write("Pending", {"waiting": waiting}, 0, None)
            self.stopping.wait()
            return
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
            if outcome.killed:
                self.killed = outcome
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

    def _run_once(self, fate: fates.Fate, restarts: int, last: Obj | None) -> process.Outcome:
        self.ctx.store.start(self.key, self.uid, restart=restarts > 0)
        self.run_started = stamp(logstore.now())
        self._write("Running", {"running": {"startedAt": self.run_started}}, restarts, last)
        if fate.real:
            directory = self.ctx.workdir / self.key[0] / self.key[1] / self.uid[:8]
            netns = self.attachment.netns if self.attachment else None
            local = process.LocalProcess(self._seen_by_process(), directory=directory, netns=netns)
            outcome = local.run(self.ctx.store, self.key, self.stopping, grace=lambda: self.grace)
        else:
            outcome = self._script(fate)
        self.ctx.store.terminate(self.key, self.uid)
        return outcome

    def _seen_by_process(self) -> Obj:
        """The pod as its downward API shows it to the process (``status.podIP``: its address)."""
        address = self.attachment.address if self.attachment else "127.0.0.1"
        return {**self.pod, "status": {**(self.pod.get("status") or {}), "podIP": address}}

    def _script(self, fate: fates.Fate) -> process.Outcome:
        killed = process.Outcome(exit_code=KILLED_BY_SIGTERM, message="", killed=True)
        began = time.monotonic()
        for line in fate.timed_logs():
            if self.stopping.wait(max(0.0, began + line.at - time.monotonic())):
                return killed
            self.ctx.store.write(self.key, line.text, self.uid)
        if fate.exit_code is None:
            self.stopping.wait()
            return killed
        if self.stopping.wait(max(0.0, began + fate.duration - time.monotonic())):
            return killed
        return process.Outcome(exit_code=fate.exit_code, message=fate.message)

    def _terminated(self, outcome: process.Outcome) -> Obj:
        message = outcome.message
        fallback = self.container.get("terminationMessagePolicy") == "FallbackToLogsOnError"
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
        statuses = self._container_statuses(state, restarts, last, phase)
        now = stamp(logstore.now())
        conditions = podstatus.conditions(statuses, phase, self._conditions, now)
        status: dict[str, Any] = {
            "phase": phase,
            "hostIP": "127.0.0.1",
            "podIP": self.attachment.address if self.attachment else "127.0.0.1",
            "startTime": self.started_at,
            "conditions": conditions,
            "containerStatuses": statuses,
            **(extra or {}),
        }
        body = {"metadata": {"uid": self.uid}, "status": status}
        core = kubernetes.client.CoreV1Api(self.ctx.api)
        core.patch_namespaced_pod_status(
            self.key[1], self.key[0], body, _content_type=STRATEGIC_MERGE_PATCH
        )
        self._conditions = conditions
        self.written = (phase, state, restarts, last)

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
            if container["name"] == self.container["name"]:
                entry.update(state=state, restartCount=restarts)
                if last is not None:
                    entry["lastState"] = last
            elif phase in podstatus.TERMINAL:
                entry["state"] = {"terminated": {"exitCode": 137, "reason": "Error"}}
            else:
                entry["state"] = {"running": {"startedAt": self.started_at}}
            entry["ready"] = entry["started"] = "running" in entry["state"]
            statuses.append(entry)
        return statuses


def _restarts(policy: str, exit_code: int) -> bool:
    """Whether the kubelet restarts a container that exited, under the pod's policy."""
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)
