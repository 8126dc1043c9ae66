"""Watch a job's pods: what each replica did, the job's output, and log followers.

The output (the chief's or worker 0's termination message) and every failure are recorded the
moment a container terminates, so ``cleanPodPolicy: All`` or a short TTL cannot take them away
before the task reads them.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from airflow_tfjob.backends.kubernetes import logs
from airflow_tfjob.hooks import errors
from airflow_tfjob.hooks.tfjob import TFJobHook
from airflow_tfjob.spec import status
from airflow_tfjob.spec.status import ReplicaOutcome

WATCH_SECONDS = 30


class PodTracker(threading.Thread):
    """A daemon thread following the pods of one TFJob."""

    def __init__(
        self,
        hook: TFJobHook,
        name: str,
        namespace: str,
        *,
        log: Any,
        get_logs: bool,
        output_replica: str,
    ) -> None:
        super().__init__(name=f"tfjob-pods-{name}", daemon=True)
        self.hook, self.job, self.namespace, self.log = hook, name, namespace, log
        self.get_logs, self.output_replica = get_logs, output_replica
        self.outcomes: dict[str, ReplicaOutcome] = {}
        """Latest outcome per replica (``worker-1``)."""
        self.failures: list[ReplicaOutcome] = []
        """Terminations with a non-zero exit code or an eviction, in the order seen."""
        self.output: ReplicaOutcome | None = None
        """The output replica's first successful termination."""
        self.started = threading.Event()
        """Set once any replica's container has run."""
        self.followers: dict[str, logs.LogFollower] = {}
        self._finished_pods: set[str] = set()
        self._lock = threading.Lock()
        self._stop_event = threading.Event()

    def run(self) -> None:
        version: str | None = None
        while not self._stop_event.is_set():
            try:
                if version is None:
                    version = self.refresh()
                for event in self.hook.watch_pods(
                    self.job,
                    self.namespace,
                    resource_version=version,
                    timeout_seconds=WATCH_SECONDS,
                ):
                    version = event["object"]["metadata"].get("resourceVersion", version)
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self.observe(event["object"])
                    elif event["type"] == "DELETED":
                        self._pod_gone(event["object"])
                    if self._stop_event.is_set():
                        return
            except errors.TFJobWatchExpired:
                version = None
            except errors.TFJobError as exc:
                self.log.debug("pod watch of %s/%s interrupted: %s", self.namespace, self.job, exc)
                version = None
                self._stop_event.wait(1.0)

    def refresh(self) -> str:
        """List the pods once, record what they say, and return the list's resourceVersion."""
        pods, version = self.hook.list_pods(self.job, self.namespace)
        for pod in pods:
            self.observe(pod)
        return version

    def observe(self, pod: dict[str, Any]) -> None:
        """Record one pod's state; start its log follower once its container has run."""
        outcome = status.replica_outcome(pod)
        with self._lock:
            previous = self.outcomes.get(outcome.replica)
            self.outcomes[outcome.replica] = outcome
            if outcome.terminated and previous != outcome:
                self._terminated(outcome)
            phase = (pod.get("status") or {}).get("phase")
            if phase in ("Succeeded", "Failed"):
                self._finished_pods.add(outcome.pod)
        if _has_run(pod):
            self.started.set()
            if self.get_logs and outcome.pod not in self.followers:
                self._follow(outcome)

    def _terminated(self, outcome: ReplicaOutcome) -> None:
        if outcome.exit_code != 0:
            if not any(
                f.pod == outcome.pod and f.finished_at == outcome.finished_at for f in self.failures
            ):
                self.failures.append(outcome)
        elif outcome.replica == self.output_replica and self.output is None:
            self.output = outcome

    def _pod_gone(self, pod: dict[str, Any]) -> None:
        self.observe(pod)
        with self._lock:
            self._finished_pods.add(str(pod["metadata"]["name"]))

    def _follow(self, outcome: ReplicaOutcome) -> None:
        follower = logs.LogFollower(
            self.hook,
            pod=outcome.pod,
            namespace=self.namespace,
            replica=outcome.replica,
            log=self.log,
            finished=functools.partial(self._is_finished, outcome.pod),
        )
        self.followers[outcome.pod] = follower
        follower.start()

    def _is_finished(self, pod: str) -> bool:
        with self._lock:
            return pod in self._finished_pods or self._stop_event.is_set()

    def tail(self, replica: str) -> list[str]:
        """The last log lines of a replica (empty without ``get_logs``)."""
        for follower in self.followers.values():
            if follower.replica == replica:
                return list(follower.tail)
        return []

    def finish(self, drain_seconds: float) -> None:
        """Read the pods a last time, let log streams end (up to ``drain_seconds``), stop."""
        try:
            self.refresh()
        except errors.TFJobError as exc:
            self.log.warning(
                "Could not read the pods of %s/%s a last time: %s", self.namespace, self.job, exc
            )
        logs.join_all(list(self.followers.values()), drain_seconds)
        self.stop()

    def stop(self) -> None:
        """End the watch and every follower."""
        self._stop_event.set()
        for follower in self.followers.values():
            follower.stop()


def _has_run(pod: dict[str, Any]) -> bool:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        state = cs.get("state") or {}
        if "running" in state or "terminated" in state or cs.get("restartCount"):
            return True
    return False
