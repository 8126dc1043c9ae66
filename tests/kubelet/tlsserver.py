"""A threaded HTTPS server for loopback stand-ins (kubelet, fault proxy).

The TLS handshake happens in the connection's own thread, not in the accept loop, so one slow
client cannot block the others; ``TCP_NODELAY`` is set on every socket because without it each
small response waits for the peer's delayed ACK (~40 ms per request through the apiserver).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LoopbackServer(ThreadingHTTPServer):
    """An HTTP(S) server on 127.0.0.1 (random port) that serves from a background thread."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024
    """The listen backlog, as a Go server's (the kernel's ``somaxconn``), not socketserver's 5:
    hundreds of clients connecting at once (a triggerer opening its log streams) overflowed 5,
    the kernel dropped their SYNs, and each connect waited out the retransmits (1, 3, 7 s...)."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.tls = tls
        self.closing = threading.Event()
        """Set by :meth:`stop`; long-running responses check it and end."""
        self._thread: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self.server_address[1])

    def finish_request(self, request: Any, client_address: Any) -> None:
        raw = request
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._sockets.add(raw)
        try:
            if self.tls is not None:
                # wrap_socket detaches the fd from ``raw``: the wrapper must be closed here
                request = self.tls.wrap_socket(raw, server_side=True)
                with request:
                    super().finish_request(request, client_address)
            else:
                super().finish_request(request, client_address)
        except (ssl.SSLError, OSError):
            pass
        finally:
            with self._lock:
                self._sockets.discard(raw)

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, end open connections, and wait for the accept loop."""
        self.closing.set()
        self.shutdown()
        self.server_close()
        with self._lock:
            open_sockets = list(self._sockets)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)


def write_chunk(wfile: Any, data: bytes) -> None:
    """Write one chunk of a ``Transfer-Encoding: chunked`` body (empty data ends it)."""
    wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    wfile.flush()
