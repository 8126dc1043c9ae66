"""Follow one replica's ``tensorflow`` log into the task log, each line prefixed ``[worker-1]``.

The follow stream ends when the container does; a restarted container (OnFailure/Always) is
followed again from the last timestamp seen, skipping lines already printed (the log API's
``sinceTime`` has whole-second resolution). A short read timeout lets the follower notice
``stop()`` without waiting for the next line.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from airflow_tfjob import errors
from airflow_tfjob.hooks.tfjob import TFJobHook
from airflow_tfjob.spec.backoff import LOG_BACKOFF_CAP, Backoff
from airflow_tfjob.spec.logcursor import LogCursor

READ_TIMEOUT = 2.0


class LogFollower(threading.Thread):
    """A daemon thread printing one pod's log until the pod finishes or ``stop()``."""

    def __init__(
        self,
        hook: TFJobHook,
        *,
        pod: str,
        namespace: str,
        replica: str,
        log: Any,
        finished: Callable[[], bool],
    ) -> None:
        super().__init__(name=f"tfjob-log-{pod}", daemon=True)
        self.hook, self.pod, self.namespace, self.replica, self.log = (
            hook,
            pod,
            namespace,
            replica,
            log,
        )
        self.finished = finished
        self.cursor = LogCursor()
        self.tail = self.cursor.tail
        self._stop_event = threading.Event()

    def stop(self) -> None:
        """Ask the thread to end at its next read timeout."""
        self._stop_event.set()

    def run(self) -> None:
        backoff = Backoff(cap=LOG_BACKOFF_CAP)  # short: a drain must not wait out a delay
        while not self._stop_event.is_set():
            read = self.cursor.lines
            try:
                self._follow_once()
            except errors.TFJobNotFound:
                return  # the pod is gone
            except errors.TFJobError:
                pass  # not started yet, a read timeout, or a dropped stream: look again
            if self.cursor.lines > read:
                backoff.reset()
            if self.finished() or self._stop_event.wait(backoff.next()):
                return

    def _follow_once(self) -> None:
        since = self.cursor.begin()
        for line in self.hook.stream_log(
            self.pod, self.namespace, since_time=since, timestamps=True, read_timeout=READ_TIMEOUT
        ):
            text = self.cursor.accept(line)
            if text is not None:
                self.log.info("[%s] %s", self.replica, text)
            if self._stop_event.is_set():
                return


def join_all(followers: list[LogFollower], timeout: float) -> None:
    """Let followers finish their streams within ``timeout`` seconds, then stop the rest."""
    deadline = time.monotonic() + timeout
    for follower in followers:
        follower.join(max(0.0, deadline - time.monotonic()))
    for follower in followers:
        follower.stop()
    for follower in followers:
        follower.join(READ_TIMEOUT + 1)
