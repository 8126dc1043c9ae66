"""The process kubelet's Node object and its ``containerLogs`` endpoint.

kube-apiserver proxies ``pods/NAME/log`` to ``https://<node InternalIP>:<kubeletEndpoint
port>/containerLogs/{namespace}/{pod}/{container}`` and forwards the query untouched, so this
server applies ``follow``, ``tailLines``, ``timestamps``, ``sinceSeconds``, ``sinceTime``,
``limitBytes`` and ``previous`` itself, the way the kubelet does: ``tailLines`` picks the last
lines first, the ``since`` filter then drops older ones, and a follow stream ends when the
container terminates. Pods are bound to the node by setting ``spec.nodeName``.
"""

from __future__ import annotations

import datetime
import logging
import tempfile
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import kubernetes

from tests.kubelet import certs, logstore, tlsserver

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LogQuery:
    """The kubelet's log options, parsed from the forwarded query string."""

    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    limit_bytes: int | None = None
    since: datetime.datetime | None = None

    @classmethod
    def parse(cls, query: str) -> LogQuery:
        """Parse ``follow=true&tailLines=3...``; a bad value raises ``ValueError``."""
        raw = {k: v[-1] for k, v in urllib.parse.parse_qs(query).items()}
        since = None
        if "sinceSeconds" in raw:
            since = logstore.now() - datetime.timedelta(seconds=int(raw["sinceSeconds"]))
        if "sinceTime" in raw:
            since = datetime.datetime.fromisoformat(raw["sinceTime"].replace("Z", "+00:00"))
        return cls(
            follow=raw.get("follow") == "true",
            previous=raw.get("previous") == "true",
            timestamps=raw.get("timestamps") == "true",
            tail_lines=int(raw["tailLines"]) if "tailLines" in raw else None,
            limit_bytes=int(raw["limitBytes"]) if "limitBytes" in raw else None,
            since=since,
        )

    def start_index(self, run: logstore.ContainerRun) -> int:
        """Index of the first line to send, after ``tailLines``."""
        if self.tail_lines is None:
            return 0
        return max(0, len(run.lines) - self.tail_lines)

    def render(self, lines: Iterable[logstore.Line]) -> Iterable[bytes]:
        """Apply ``since``, ``timestamps`` and ``limitBytes`` to a sequence of lines."""
        budget = self.limit_bytes
        for line in lines:
            if self.since is not None and line.time < self.since:
                continue
            data = line.render(timestamps=self.timestamps)
            if budget is not None:
                data = data[:budget]
                budget -= len(data)
            if data:
                yield data
            if budget is not None and budget <= 0:
                return


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _KubeletServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("kubelet: " + format, *args)

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        if len(parts) != 4 or parts[0] != "containerLogs":
            self._plain(404, "404 page not found\n")
            return
        key = (parts[1], parts[2], parts[3])
        try:
            query = LogQuery.parse(url.query)
        except ValueError as exc:
            self._plain(400, f"bad log options: {exc}\n")
            return
        run = self.server.store.lookup(key, previous=query.previous)
        if run is None:
            self._plain(400, _missing_message(key, previous=query.previous))
            return
        self._stream(run, query)

    def _stream(self, run: logstore.ContainerRun, query: LogQuery) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        start = query.start_index(run)
        if query.follow:
            lines: Iterable[logstore.Line] = self.server.store.follow(
                run, start, self.server.closing
            )
        else:
            lines = list(run.lines[start:])
        try:
            for data in query.render(lines):
                tlsserver.write_chunk(self.wfile, data)
            tlsserver.write_chunk(self.wfile, b"")
        except OSError:
            self.close_connection = True

    def _plain(self, status: int, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _missing_message(key: logstore.Key, *, previous: bool) -> str:
    _namespace, pod, container = key
    if previous:
        return f'previous terminated container "{container}" in pod "{pod}" not found\n'
    return f'container "{container}" in pod "{pod}" is waiting to start: ContainerCreating\n'


class _KubeletServer(tlsserver.LoopbackServer):
    store: logstore.LogStore


class LogServer:
    """The log endpoint plus the Node that points the apiserver at it.

    :param api: an admin API client of the cluster.
    :param node_name: name of the Node to register.
    """

    def __init__(self, api: kubernetes.client.ApiClient, *, node_name: str) -> None:
        self.api = api
        self.node_name = node_name
        self.store = logstore.LogStore()
        self._tmp = tempfile.TemporaryDirectory(prefix="sim-kubelet-")
        pair = certs.self_signed(Path(self._tmp.name), "kubelet")
        self._server = _KubeletServer(_Handler, pair.server_context())
        self._server.store = self.store

    @property
    def port(self) -> int:
        """The HTTPS port the log endpoint listens on."""
        return self._server.port

    def start(self) -> LogServer:
        """Serve logs and register (or re-point) the Node."""
        self._server.start()
        self._register_node()
        return self

    def stop(self) -> None:
        """End every log stream and stop serving (the Node stays; it is harmless)."""
        self._server.stop()
        self._tmp.cleanup()

    def _register_node(self) -> None:
        core = kubernetes.client.CoreV1Api(self.api)
        node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": self.node_name}}
        try:
            core.create_node(node)
        except kubernetes.client.ApiException as exc:
            if exc.status != 409:
                raise
        core.patch_node_status(self.node_name, {"status": self._node_status()})

    def _node_status(self) -> dict[str, Any]:
        stamp = logstore.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        ready = {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "process kubelet is posting ready status",
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
        }
        return {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
            "conditions": [ready],
        }
