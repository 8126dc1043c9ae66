"""A list-then-watch loop (the process kubelet follows pods with it).

Each :class:`Watcher` lists, hands every object to its handler, then watches from the list's
``resourceVersion``; when the stream ends or breaks (410 Gone included) it lists again, so the
handler must be idempotent. :meth:`Watcher.stop` shuts the open response down from outside, so a
fixture teardown never waits for a server-side watch timeout.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from kubernetes.watch.watch import iter_resp_lines

from tests.kubelet.podspec import Obj

log = logging.getLogger(__name__)
Handler = Callable[[str, Obj], None]
"""Called with ``("SYNC"|"ADDED"|"MODIFIED"|"DELETED", object)``."""


class Watcher:
    """Follow one collection; ``list_call`` is a generated client method bound to its arguments."""

    def __init__(self, name: str, list_call: Callable[..., Any], handler: Handler) -> None:
        self.name = name
        self._list_call = list_call
        self._handler = handler
        self._stopping = threading.Event()
        self._response: Any = None
        self._thread = threading.Thread(target=self._loop, daemon=True, name=f"watch-{name}")

    def start(self) -> None:
        """Start following in a thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop following and wait for the thread."""
        self._stopping.set()
        response = self._response
        if response is not None:
            response.shutdown()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._watch(self._list())
            except Exception:
                if self._stopping.is_set():
                    return
                log.debug("watch of %s broke; listing again", self.name, exc_info=True)
                self._stopping.wait(0.2)

    def _list(self) -> str:
        response = self._list_call(_preload_content=False)
        body = json.loads(response.data)
        for item in body.get("items") or []:
            self._dispatch("SYNC", item)
        return str(body["metadata"]["resourceVersion"])

    def _watch(self, resource_version: str) -> None:
        self._response = self._list_call(
            watch=True,
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=600,
            _preload_content=False,
        )
        try:
            if self._stopping.is_set():  # stop() may have run before the response existed
                return
            for line in iter_resp_lines(self._response):
                event = json.loads(line)
                if event["type"] == "ERROR":  # 410 Gone and friends: list again
                    return
                if event["type"] != "BOOKMARK":
                    self._dispatch(event["type"], event["object"])
        finally:
            self._response.release_conn()
            self._response = None

    def _dispatch(self, kind: str, obj: Obj) -> None:
        if self._stopping.is_set():
            return
        try:
            self._handler(kind, obj)
        except Exception:
            log.exception("handler of %s failed on %s", self.name, kind)
