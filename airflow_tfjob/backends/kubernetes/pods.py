"""Watch a job's pods: what each replica did, the job's output, and log followers.

The output (the chief's or worker 0's termination message) and every failure are recorded the
moment a container terminates, so ``cleanPodPolicy: All`` or a short TTL cannot take them away
before the task reads them.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from airflow_tfjob import errors
from airflow_tfjob.backends.kubernetes import logs
from airflow_tfjob.hooks.tfjob import TFJobHook
from airflow_tfjob.spec import status
from airflow_tfjob.spec.backoff import Backoff
from airflow_tfjob.spec.follow import Follow
from airflow_tfjob.spec.status import ReplicaOutcome

WATCH_SECONDS = 30


class PodTracker(threading.Thread):
    """A daemon thread following the pods of one TFJob into its ``Follow``."""

    def __init__(self, hook: TFJobHook, follow: Follow, *, log: Any, get_logs: bool) -> None:
        super().__init__(name=f"tfjob-pods-{follow.name}", daemon=True)
        self.hook, self.follow, self.log, self.get_logs = hook, follow, log, get_logs
        self.job, self.namespace = follow.name, follow.namespace
        self.ledger = follow.ledger
        self.followers: dict[str, logs.LogFollower] = {}
        self._lock = threading.Lock()
        self._stop_event = threading.Event()

    def run(self) -> None:
        version: str | None = None
        backoff = Backoff()
        while not self._stop_event.is_set():
            try:
                if version is None:
                    version = self.refresh()
                version = self._watch(version)
                backoff.reset()
            except errors.TFJobWatchExpired:
                version = None
            except errors.TFJobError as exc:
                self.log.debug("pod watch of %s/%s interrupted: %s", self.namespace, self.job, exc)
                version = None
                self._stop_event.wait(backoff.next())

    def _watch(self, version: str) -> str:
        for event in self.hook.watch_pods(
            self.job, self.namespace, resource_version=version, timeout_seconds=WATCH_SECONDS
        ):
            version = event["object"]["metadata"].get("resourceVersion", version)
            if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                self.observe(event["object"], deleted=event["type"] == "DELETED")
            if self._stop_event.is_set():
                break
        return version

    def refresh(self) -> str:
        """List the pods once, record what they say, and return the list's resourceVersion."""
        pods, version = self.hook.list_pods(self.job, self.namespace)
        for pod in pods:
            self.observe(pod)
        return version

    def observe(self, pod: dict[str, Any], *, deleted: bool = False) -> None:
        """Record one pod's state; start its log follower once its container has run."""
        with self._lock:
            outcome = self.follow.pod(pod, deleted=deleted)
        if self.get_logs and status.has_run(pod) and outcome.pod not in self.followers:
            self._follow(outcome)

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
            return pod in self.ledger.finished_pods or self._stop_event.is_set()

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
