"""A logger whose records a test reads back, as the follower and the trigger format them."""

from __future__ import annotations

import logging


class Lines(logging.Handler):
    """The messages logged, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def capture(name: str, *, propagate: bool = True) -> tuple[logging.Logger, Lines]:
    """The logger ``name`` at INFO, its records (only) kept in the returned ``Lines``."""
    logger, lines = logging.getLogger(name), Lines()
    logger.handlers[:] = [lines]
    logger.propagate = propagate
    logger.setLevel(logging.INFO)
    return logger, lines
