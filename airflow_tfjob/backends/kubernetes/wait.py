"""Follow a TFJob to its end on the worker: a watch fed into ``spec.follow`` (the rules).

The watch resumes from the last resourceVersion (BOOKMARKs keep it fresh); 410 Gone means the
version was compacted: read the job again and go on. Limits (the task's deadline, the job's
``activeDeadlineSeconds``, the start-up timeout) are ``Follow``'s; this shell deletes the job and
raises when one passes.
"""

from __future__ import annotations

import time

from airflow_tfjob import errors
from airflow_tfjob.backends.kubernetes.request import RunRequest
from airflow_tfjob.hooks.tfjob import TFJobHook
from airflow_tfjob.spec.backoff import Backoff
from airflow_tfjob.spec.follow import Follow, Lost


class Waiter:
    """One wait for one job; ``run()`` returns once ``follow.done``."""

    def __init__(
        self, hook: TFJobHook, request: RunRequest, follow: Follow, version: str | None
    ) -> None:
        self.hook, self.request, self.follow, self.version = hook, request, follow, version

    def run(self) -> None:
        """Follow until ``follow.done``; a lost job (deleted, replaced) is a ``TFJobError``."""
        try:
            self._run()
        except Lost as exc:
            raise errors.TFJobError(str(exc)) from None

    def _run(self) -> None:
        follow, backoff = self.follow, Backoff()
        self.request.log.info("TFJob %s: %s", follow.where, follow.state.summary())
        while not follow.done:
            self.check_deadlines()
            try:
                self._watch()
                backoff.reset()
            except errors.TFJobWatchExpired:
                self._reread()
            except errors.TFJobUnavailable as exc:
                self.request.log.debug("watch of %s interrupted: %s", follow.where, exc)
                left = follow.seconds_left(time.time())
                time.sleep(max(0.0, min(backoff.next(), self.request.poll_interval, left)))
                self._reread()

    def _watch(self) -> None:
        follow = self.follow
        left = follow.seconds_left(time.time())
        timeout = max(1, int(min(self.request.poll_interval, left)))
        for event in self.hook.watch(
            follow.namespace,
            resource_version=self.version,
            name=follow.name,
            timeout_seconds=timeout,
        ):
            self.version = event["object"]["metadata"].get("resourceVersion", self.version)
            if event["type"] == "BOOKMARK":
                continue
            if event["type"] == "DELETED":
                follow.gone()
            self._update(event["object"])
            if follow.done:
                break
            self.check_deadlines()

    def _reread(self) -> None:
        try:
            obj = self.hook.get(self.follow.name, self.follow.namespace)
        except errors.TFJobNotFound:
            self.follow.gone()
        self._update(obj)
        self.version = str(obj["metadata"].get("resourceVersion"))

    def _update(self, obj: dict[str, object]) -> None:
        if self.follow.job(obj):
            self.request.log.info("TFJob %s: %s", self.follow.where, self.follow.state.summary())

    def check_deadlines(self) -> None:
        """Delete the job (when it is to be) and raise when a limit has passed."""
        expiry = self.follow.expired(time.time())
        if expiry is None:
            return
        if expiry.delete:
            follow = self.follow
            self.hook.delete(follow.name, follow.namespace, uid=follow.uid)
        if expiry.kind == "startup":
            raise errors.TFJobError(expiry.message)
        raise errors.TFJobTimeout(expiry.message)
