"""Fault rules of the loopback proxy: which requests they catch and what they do to them."""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import Literal

Action = Literal["error", "drop", "stall", "delay", "cut", "gone"]
_REASONS = {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}


def is_watch(path: str, query: str) -> bool:
    """Whether a request is a watch (``?watch=true`` or the legacy ``/watch/`` paths)."""
    params = urllib.parse.parse_qs(query)
    return params.get("watch", [""])[-1].lower() in ("true", "1") or "/watch/" in path


@dataclass
class Rule:
    """One fault: requests matching ``path`` (a regex searched in the path, query excluded),
    ``method`` and ``watch`` get ``action``, ``times`` times (``None``: until cleared)."""

    action: Action
    path: str = ""
    method: str | None = None
    """HTTP method (``GET``, ``POST``...); ``None`` matches any."""
    watch: bool | None = None
    """Only watch requests (True), only others (False), or both (None)."""
    times: int | None = 1
    status: int = 503
    """HTTP status of an ``error``."""
    retry_after: int | None = None
    """``Retry-After`` header (seconds) of an ``error``."""
    seconds: float = 0.0
    """How long ``stall`` holds the connection, ``delay`` waits, or ``cut`` lets a watch run."""
    after_events: int | None = None
    """``cut``: end the watch stream after this many events."""
    hits: int = 0
    """How many requests this rule has caught."""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self, method: str, path: str, watch: bool) -> bool:
        """Whether this rule catches the request (and count it if so)."""
        if self.method is not None and self.method.upper() != method:
            return False
        if self.watch is not None and self.watch != watch:
            return False
        if not re.search(self.path, path):
            return False
        with self.lock:
            if self.times is not None and self.hits >= self.times:
                return False
            self.hits += 1
            return True

    def status_body(self) -> bytes:
        """A Kubernetes ``Status`` for an ``error``."""
        reason = _REASONS.get(self.status, "InternalError")
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f"injected by the fault proxy: {self.status} {reason}",
            "reason": reason,
            "code": self.status,
        }
        if self.retry_after is not None:
            status["details"] = {"retryAfterSeconds": self.retry_after}
        return json.dumps(status).encode()


def gone_event() -> bytes:
    """The watch event a server sends when the requested resourceVersion is compacted."""
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "too old resource version: 1 (injected by the fault proxy)",
        "reason": "Expired",
        "code": 410,
    }
    return json.dumps({"type": "ERROR", "object": status}).encode() + b"\n"
