"""A loopback HTTPS proxy in front of the test API server that injects faults.

It terminates TLS with its own self-signed certificate and re-originates each request to the
apiserver over TLS (trusting the cluster CA), so it sees every method, path and query and can
count, delay, fail or cut them. Clients reach it through :attr:`FaultProxy.kubeconfig` (server
``https://127.0.0.1:PORT``, the proxy's certificate as CA, the admin token, which is passed
through; a request without ``Authorization`` gets the admin token added). Faults are
:class:`~tests.faults.rules.Rule` objects: 5xx/429 bursts with ``Retry-After``, dropped or stalled
connections, delays, watch streams cut after N events or seconds, and watches answered ``410``.
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import json
import os
import re
import socket
import ssl
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import kubernetes

from tests.cluster.cluster import closing_client
from tests.faults import rules as fault_rules
from tests.faults.rules import Rule
from tests.kubelet import certs, tlsserver

_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "host", "te"}


class FaultProxy:
    """The proxy; :meth:`start` it, point a client at :attr:`kubeconfig`, add rules.

    :param upstream: the apiserver URL, ``https://127.0.0.1:PORT``.
    :param ca_file: the apiserver's CA certificate.
    :param token: bearer token added to requests that carry none.
    :param workdir: where the certificate and kubeconfig are written.
    """

    def __init__(self, upstream: str, *, ca_file: Path, token: str, workdir: Path) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 443)
        self.upstream_tls = ssl.create_default_context(cafile=str(ca_file))
        self.token = token
        self.workdir = workdir
        self.pair = certs.self_signed(workdir, "fault-proxy")
        self.rules: list[Rule] = []
        self.history: list[tuple[str, str, str]] = []
        """Every request as ``(method, path, query)``, in arrival order."""
        self.streams: collections.Counter[str] = collections.Counter()
        self.peak_streams = 0
        """The most streaming responses ever open at once."""
        self.lock = threading.Lock()
        self.upstreams: set[http.client.HTTPSConnection] = set()
        self._server = _ProxyServer(_Handler, self.pair.server_context())
        self._server.proxy = self
        self.kubeconfig = workdir / "kubeconfig-proxy.yaml"

    @classmethod
    def for_cluster(cls, cluster: Any, *, workdir: Path) -> FaultProxy:
        """A proxy in front of a ``tests.cluster`` cluster, with its admin identity."""
        return cls(
            cluster.server, ca_file=cluster.ca_file, token=cluster.admin_token, workdir=workdir
        )

    @property
    def url(self) -> str:
        """``https://127.0.0.1:PORT`` of the proxy."""
        return f"https://127.0.0.1:{self._server.port}"

    def start(self) -> FaultProxy:
        """Serve, and write :attr:`kubeconfig`."""
        self._server.start()
        self._write_kubeconfig()
        return self

    def stop(self) -> None:
        """Stop serving and close every connection, upstream ones included."""
        self._server.stop()
        with self.lock:
            conns = list(self.upstreams)
        for conn in conns:
            _cut(conn)  # the handler thread reading from it closes it

    def api_client(self) -> kubernetes.client.ApiClient:
        """A new client through the proxy; the caller closes it."""
        return closing_client(self.kubeconfig)

    # --- faults ----------------------------------------------------------------------------

    def add(self, rule: Rule) -> Rule:
        """Install a rule (rules are tried in the order added)."""
        with self.lock:
            self.rules.append(rule)
        return rule

    def fail(
        self, path: str = "", *, status: int = 503, times: int | None = 1, **match: Any
    ) -> Rule:
        """Answer the next ``times`` matching requests with ``status`` (a Kubernetes Status)."""
        return self.add(Rule("error", path, status=status, times=times, **match))

    def throttle(
        self, path: str = "", *, retry_after: int = 1, times: int | None = 1, **match: Any
    ) -> Rule:
        """Answer ``429 Too Many Requests`` with ``Retry-After``."""
        return self.fail(path, status=429, times=times, retry_after=retry_after, **match)

    def drop(self, path: str = "", *, times: int | None = 1, **match: Any) -> Rule:
        """Close the connection without answering."""
        return self.add(Rule("drop", path, times=times, **match))

    def stall(self, path: str = "", *, seconds: float, times: int | None = 1, **match: Any) -> Rule:
        """Read the request, say nothing for ``seconds``, then close the connection."""
        return self.add(Rule("stall", path, times=times, seconds=seconds, **match))

    def delay(
        self, path: str = "", *, seconds: float, times: int | None = None, **match: Any
    ) -> Rule:
        """Forward the request after ``seconds``."""
        return self.add(Rule("delay", path, times=times, seconds=seconds, **match))

    def cut_watch(
        self,
        path: str = "",
        *,
        after_events: int | None = None,
        after_seconds: float | None = None,
        times: int | None = 1,
        **match: Any,
    ) -> Rule:
        """End matching watch streams cleanly after some events or seconds."""
        rule = Rule("cut", path, times=times, watch=True, after_events=after_events, **match)
        rule.seconds = after_seconds or 0.0
        return self.add(rule)

    def gone(self, path: str = "", *, times: int | None = 1, **match: Any) -> Rule:
        """Answer matching watches with a ``410`` ERROR event, as for a compacted version."""
        return self.add(Rule("gone", path, times=times, watch=True, **match))

    def clear(self) -> None:
        """Remove every rule."""
        with self.lock:
            self.rules.clear()

    # --- counters --------------------------------------------------------------------------

    def requests(
        self, path: str = "", *, method: str | None = None, watch: bool | None = None
    ) -> int:
        """How many requests matched ``path`` (regex), ``method`` and ``watch`` so far."""
        with self.lock:
            seen = list(self.history)
        return sum(
            1
            for m, p, q in seen
            if re.search(path, p)
            and (method is None or method.upper() == m)
            and (watch is None or fault_rules.is_watch(p, q) == watch)
        )

    def open_connections(self) -> int:
        """Client connections (TCP, TLS) open to the proxy now."""
        with self._server._lock:
            return len(self._server._sockets)

    def open_streams(self, path: str = "") -> int:
        """Streaming responses (watches, log follows) currently open, on paths matching ``path``."""
        with self.lock:
            return sum(n for p, n in self.streams.items() if re.search(path, p))

    def _match(self, method: str, path: str, query: str) -> Rule | None:
        with self.lock:
            self.history.append((method, path, query))
            rules = list(self.rules)
        watch = fault_rules.is_watch(path, query)
        return next((r for r in rules if r.take(method, path, watch)), None)

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "proxy",
                    "cluster": {"server": self.url, "certificate-authority": str(self.pair.cert)},
                }
            ],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [{"name": "proxy", "context": {"cluster": "proxy", "user": "admin"}}],
            "current-context": "proxy",
        }
        self.kubeconfig.write_text(json.dumps(config, indent=2))


class _ProxyServer(tlsserver.LoopbackServer):
    proxy: FaultProxy


_CLIENT_GONE = {7, 8}
"""``TCP_CLOSE`` and ``TCP_CLOSE_WAIT``: the client reset or closed its side (a watch client
never half-closes; a killed process's kernel closes its sockets)."""


def _cut(conn: http.client.HTTPConnection) -> None:
    """End an upstream stream from another thread (the reader sees end of stream)."""
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(2)


def _shutdown(conn: http.client.HTTPConnection) -> None:
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(2)
    conn.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:
        del format, args  # the history is the log

    def _any(self) -> None:
        proxy = self.server.proxy
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        rule = proxy._match(self.command, url.path, url.query)
        action = rule.action if rule else None
        if rule is not None and action == "error":
            self._error(rule)
        elif action == "drop":
            self._drop()
        elif rule is not None and action == "stall":
            self.server.closing.wait(rule.seconds)
            self._drop()
        elif action == "gone":
            self._gone()
        else:
            if rule is not None and action == "delay":
                self.server.closing.wait(rule.seconds)
            self._forward(url.path, body, rule)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

    def _error(self, rule: Rule) -> None:
        data = rule.status_body()
        self.send_response(rule.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if rule.retry_after is not None:
            self.send_header("Retry-After", str(rule.retry_after))
        self.end_headers()
        self.wfile.write(data)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(2)

    def _gone(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        tlsserver.write_chunk(self.wfile, fault_rules.gone_event())
        tlsserver.write_chunk(self.wfile, b"")

    def _forward(self, path: str, body: bytes | None, rule: Rule | None) -> None:
        proxy = self.server.proxy
        conn = http.client.HTTPSConnection(*proxy.upstream, context=proxy.upstream_tls)
        with proxy.lock:
            proxy.upstreams.add(conn)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
        if "authorization" not in {k.lower() for k in headers}:
            headers["Authorization"] = f"Bearer {proxy.token}"
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            self._relay(conn, conn.getresponse(), path, rule)
        except (OSError, http.client.HTTPException):
            self.close_connection = True
        finally:
            with proxy.lock:
                proxy.upstreams.discard(conn)
            _shutdown(conn)

    def _relay(
        self,
        conn: http.client.HTTPSConnection,
        resp: http.client.HTTPResponse,
        path: str,
        rule: Rule | None,
    ) -> None:
        self.send_response_only(resp.status, resp.reason)
        for key, value in resp.getheaders():
            if key.lower() not in _HOP_HEADERS and key.lower() != "content-length":
                self.send_header(key, value)
        if resp.getheader("Content-Length") is not None:
            data = resp.read()
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._stream(conn, resp, path, rule)

    def _stream(
        self,
        conn: http.client.HTTPSConnection,
        resp: http.client.HTTPResponse,
        path: str,
        rule: Rule | None,
    ) -> None:
        proxy = self.server.proxy
        cut = rule if rule is not None and rule.action == "cut" else None
        timer = threading.Timer(cut.seconds, _cut, (conn,)) if cut and cut.seconds else None
        with proxy.lock:
            proxy.streams[path] += 1
            proxy.peak_streams = max(proxy.peak_streams, sum(proxy.streams.values()))
        done = threading.Event()
        threading.Thread(target=self._end_with_client, args=(conn, done), daemon=True).start()
        try:
            if timer is not None:
                timer.start()
            self._pump(resp, cut)
            tlsserver.write_chunk(self.wfile, b"")
        except OSError:
            self.close_connection = True
        finally:
            done.set()
            if timer is not None:
                timer.cancel()
            with proxy.lock:
                proxy.streams[path] -= 1

    def _end_with_client(self, conn: http.client.HTTPSConnection, done: threading.Event) -> None:
        """End the upstream stream when the client goes away (a killed process's socket is
        closed by its kernel), as the API server would at its next write: without this an idle
        watch of a dead client would count as open until its timeout."""
        try:  # a duplicate of the TCP socket: its state, not its TLS stream, is read
            raw = socket.socket(fileno=os.dup(self.connection.fileno()))
        except (OSError, ValueError):
            return
        with raw:
            while not done.wait(0.5):
                try:  # Linux's tcp_info starts with the state; the client's FIN (or RST) ends it
                    state = raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
                except OSError:
                    break
                if state in _CLIENT_GONE:
                    break
            else:
                return
        _cut(conn)

    def _pump(self, resp: http.client.HTTPResponse, cut: Rule | None) -> None:
        events = 0
        while not self.server.closing.is_set():
            try:
                line = resp.readline()
            except (OSError, http.client.HTTPException, ValueError):
                return  # upstream closed (a timed cut shuts it down)
            if not line:
                return
            tlsserver.write_chunk(self.wfile, line)
            events += 1
            if cut is not None and cut.after_events is not None and events >= cut.after_events:
                return
