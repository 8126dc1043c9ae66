"""Localhost ports for ``TF_CONFIG``, and how to tell a replica is up or lost a bind race.

A port is picked free by binding port 0 and released before the replica starts, so another
process can take it in between: a replica that dies before it came up with an "address in use"
error makes the supervisor start the whole job again on fresh ports.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

LOCALHOST = "localhost"
BIND_RACE = re.compile(
    r"address already in use|EADDRINUSE|Failed to add port|Could not start gRPC server",
    re.IGNORECASE,
)
_LISTEN = "0A"
_PROC_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on the loopback interface right now."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def listening() -> set[int] | None:
    """TCP ports in LISTEN state on this host, from ``/proc/net``; ``None`` where unknown."""
    if not _PROC_TABLES[0].exists():
        return None
    ports: set[int] = set()
    for table in _PROC_TABLES:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == _LISTEN:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def lost_bind_race(output: list[str]) -> bool:
    """Whether a replica's last output lines say its port was taken."""
    return any(BIND_RACE.search(line) for line in output)
