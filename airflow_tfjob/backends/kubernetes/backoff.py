"""How long to wait before following a stream again: one policy for every reconnect loop.

The shared watches (``watches``: a triggerer's, and a worker's of its one job), the replica log
followers (``replicalogs``), a follower's retried requests and the event trigger's stream all
reconnect the same way: 0.5 s at first, doubling up to 30 s, with jitter (half to all of the
delay, so many followers do not come back at once), back to 0.5 s once a stream delivered again.
"""

from __future__ import annotations

import random

FIRST_SECONDS = 0.5
MAX_SECONDS = 30.0
LOG_BACKOFF_CAP = 2.0
"""Log followers look again within 2 s at most: a finished job's logs drain in seconds."""


class Backoff:
    """The delays of one reconnect loop."""

    def __init__(self, first: float = FIRST_SECONDS, cap: float = MAX_SECONDS) -> None:
        self.first, self.cap, self.current = first, cap, first

    def next(self) -> float:
        """The delay before the next attempt (and the one after it doubles)."""
        delay = random.uniform(self.current / 2, self.current)
        self.current = min(self.current * 2, self.cap)
        return delay

    def reset(self) -> None:
        """A stream delivered: the next failure starts from the first delay again."""
        self.current = self.first
