"""Which shared watches an event loop has open, and what they share (``watches``).

A new subscriber joins the open watch of its key, namespace and kind; the watches of one cluster
take turns to list (a list of 10,000 objects decodes to some 100 MiB for a moment); a watch left
by every subscriber through a hand-off is closed in a task kept here until it ends. One set per
event loop (``hooks.loops``): a watch's stream is a task of its loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from airflow_tfjob.hooks.loops import PerLoop

if TYPE_CHECKING:
    from airflow_tfjob.backends.kubernetes.watches import SharedWatch

Ident = tuple[str, ...]
"""(key, namespace, kind), or (key, namespace, kind, name) for a watch of one object."""


@dataclass
class _Watches:
    """One event loop's shared watches."""

    opened: dict[Ident, SharedWatch] = field(default_factory=dict)
    lists: dict[str, asyncio.Lock] = field(default_factory=dict)
    """Per cluster (key): the lock its watches list under, in turn."""
    closing: set[asyncio.Task[None]] = field(default_factory=set)


_WATCHES: PerLoop[_Watches] = PerLoop(_Watches)


def opened() -> dict[Ident, SharedWatch]:
    """The running loop's open watches, by ident (what a new subscriber joins)."""
    return _WATCHES.get().opened


def relisting(key: str) -> asyncio.Lock:
    """The lock that lets one watch of ``key``'s cluster list at a time: two lists at once would
    double the peak. Locks are taken in turn (FIFO), so a namespace's job watch, subscribed
    first, lists first and its pod watch then knows which jobs are ours."""
    locks = _WATCHES.get().lists
    lock = locks.get(key)
    if lock is None:
        lock = locks[key] = asyncio.Lock()
    return lock


def closing() -> set[asyncio.Task[None]]:
    """The running loop's watches being closed after hand-offs (kept until they end)."""
    return _WATCHES.get().closing


def active() -> dict[Ident, SharedWatch]:
    """The watches open in this process, on every loop."""
    return {ident: w for loop in _WATCHES.values() for ident, w in loop.opened.items()}
