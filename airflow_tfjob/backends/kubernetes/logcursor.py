"""Where a replica's log has been read up to, so a follow that starts again prints no line twice.

A container restarted in place (OnFailure, Always) is followed again from the last timestamp
seen: the log API's ``sinceTime`` has whole-second resolution, so the lines already printed with
that second are skipped. Every follower's log streams (tasks on its event loop, on a worker or in
a triggerer: ``replicalogs``) keep one cursor per pod, by uid.
"""

from __future__ import annotations

import collections
from typing import Any

TAIL_LINES = 20


def split_timestamp(line: str) -> tuple[str, str]:
    """``(normalized RFC3339 timestamp, text)`` of a ``timestamps=true`` log line."""
    stamp, _, text = line.partition(" ")
    head, dot, frac = stamp.rstrip("Z").partition(".")
    return f"{head}.{(frac if dot else '').ljust(9, '0')}Z", text


class LogCursor:
    """The position in one replica's log, and its last lines (for failure messages)."""

    def __init__(self) -> None:
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.lines = 0
        self._last = ("", 0)  # (timestamp, lines printed with exactly that timestamp)
        self._skip_at, self._skip = "", 0

    def position(self) -> list[Any]:
        """Where the log was read to, as JSON: ``[timestamp, lines with it, lines in all]``."""
        return [self._last[0], self._last[1], self.lines]

    @classmethod
    def at(cls, position: Any) -> LogCursor:
        """A cursor that goes on from ``position`` (from :meth:`position`; anything else, e.g.
        a value written by another version, starts from the beginning)."""
        cursor = cls()
        match position:
            case [str(stamp), int(same), int(lines)] if stamp and same > 0 and lines >= same:
                cursor._last, cursor.lines = (stamp, same), lines
        return cursor

    def begin(self) -> str | None:
        """Start (again) to follow: the ``sinceTime`` to ask for, ``None`` the first time."""
        if not self._last[0]:
            return None
        self._skip_at, self._skip = self._last
        return self._last[0][:19] + "Z"

    def accept(self, line: str) -> str | None:
        """A timestamped line read: its text to print, or ``None`` when it was printed before."""
        stamp, text = split_timestamp(line)
        if self._skip_at and (stamp < self._skip_at or (stamp == self._skip_at and self._skip > 0)):
            self._skip -= stamp == self._skip_at
            return None
        self._last = (stamp, self._last[1] + 1 if stamp == self._last[0] else 1)
        self.lines += 1
        self.tail.append(text)
        return text
