"""Follow a TFJob to a terminal state with a watch, enforcing the client-side deadlines.

The watch resumes from the last resourceVersion (BOOKMARKs keep it fresh); 410 Gone means the
version was compacted: read the job again and go on. The training operator enforces
``activeDeadlineSeconds`` only when something makes it reconcile, so we enforce it too, with the
task's own deadline (from ``execution_timeout``) and the start-up timeout.
"""

from __future__ import annotations

import time
from typing import Any

from airflow_tfjob import errors
from airflow_tfjob.backends.kubernetes.pods import PodTracker
from airflow_tfjob.backends.kubernetes.request import RunRequest
from airflow_tfjob.hooks.tfjob import TFJobHook
from airflow_tfjob.spec import report, status
from airflow_tfjob.spec.status import JobState


class Waiter:
    """One wait for one job; ``run()`` returns the terminal object and state."""

    def __init__(
        self, hook: TFJobHook, request: RunRequest, obj: dict[str, Any], tracker: PodTracker
    ) -> None:
        self.hook, self.request, self.obj, self.tracker = hook, request, obj, tracker
        meta = obj["metadata"]
        self.name, self.namespace, self.uid = meta["name"], meta["namespace"], meta["uid"]
        self.state = status.job_state(obj)
        self.began = time.time()
        ads = ((obj.get("spec") or {}).get("runPolicy") or {}).get("activeDeadlineSeconds")
        self.active_deadline = float(ads) if ads else None

    @property
    def where(self) -> str:
        return f"{self.namespace}/{self.name}"

    def run(self) -> tuple[dict[str, Any], JobState]:
        self.request.log.info("TFJob %s: %s", self.where, self.state.summary())
        version = self.obj["metadata"].get("resourceVersion")
        while not self.state.is_terminal:
            self.check_deadlines()
            try:
                version = self._watch(version)
            except errors.TFJobWatchExpired:
                version = self._reread()
            except errors.TFJobUnavailable as exc:
                self.request.log.debug("watch of %s interrupted: %s", self.where, exc)
                time.sleep(min(self.request.poll_interval, 2.0))
                version = self._reread()
        return self.obj, self.state

    def _watch(self, version: str | None) -> str | None:
        timeout = max(1, int(min(self.request.poll_interval, self._seconds_left())))
        for event in self.hook.watch(
            self.namespace, resource_version=version, name=self.name, timeout_seconds=timeout
        ):
            version = event["object"]["metadata"].get("resourceVersion", version)
            if event["type"] == "BOOKMARK":
                continue
            if event["type"] == "DELETED":
                raise errors.TFJobError(
                    f"TFJob {self.where} was deleted by someone else while the task waited for it"
                )
            self._update(event["object"])
            if self.state.is_terminal:
                break
            self.check_deadlines()
        return version

    def _reread(self) -> str | None:
        try:
            self._update(self.hook.get(self.name, self.namespace))
        except errors.TFJobNotFound:
            raise errors.TFJobError(
                f"TFJob {self.where} was deleted by someone else while the task waited for it"
            ) from None
        return str(self.obj["metadata"].get("resourceVersion"))

    def _update(self, obj: dict[str, Any]) -> None:
        state = status.job_state(obj)
        if (state.phase, state.replica_statuses) != (self.state.phase, self.state.replica_statuses):
            self.request.log.info("TFJob %s: %s", self.where, state.summary())
        self.obj, self.state = obj, state

    def _seconds_left(self) -> float:
        deadlines = [
            d for d in (self.request.deadline, self._active_deadline_at()) if d is not None
        ]
        if self.request.startup_timeout and not self.tracker.started.is_set():
            deadlines.append(self.began + self.request.startup_timeout)
        return max(0.0, min(deadlines) - time.time()) if deadlines else float("inf")

    def _active_deadline_at(self) -> float | None:
        return status.active_deadline_at(self.state, self.active_deadline)

    def check_deadlines(self) -> None:
        """Delete the job and raise when a deadline has passed."""
        now = time.time()
        if self.request.deadline is not None and now >= self.request.deadline:
            self._delete()
            raise errors.TFJobTimeout(
                f"TFJob {self.where} did not finish before the task's execution_timeout; "
                "it was deleted"
            )
        active = self._active_deadline_at()
        if active is not None and now >= active:
            self._delete()
            raise errors.TFJobTimeout(
                f"TFJob {self.where} ran past runPolicy.activeDeadlineSeconds="
                f"{self.active_deadline:.0f} "
                f"and the training operator did not stop it; it was deleted"
            )
        startup = self.request.startup_timeout
        if startup and not self.tracker.started.is_set() and now >= self.began + startup:
            self._delete()
            raise errors.TFJobError(
                report.not_started_message(
                    self.where, startup, self.tracker.ledger.outcomes.values()
                )
            )

    def _delete(self) -> None:
        self.hook.delete(self.name, self.namespace, uid=self.uid)
