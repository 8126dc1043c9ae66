"""The errors and warnings the model raises, all before anything touches a cluster.

Hierarchy::

    ValueError
    └── TFJobSpecError        a field of the job description is invalid (raised at construction,
                              so at DAG parse time, or by ``to_manifest`` for render-time inputs)
    UserWarning
    └── TFJobSpecWarning      allowed, but probably not what the author meant

Every message names the field, shows the offending value (truncated) and says what is allowed, so
the author can fix the DAG without reading our source.
"""

from __future__ import annotations

from typing import Any

_MAX_VALUE_CHARS = 80


def _short_repr(value: Any) -> str:
    text = repr(value)
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 3] + "..."
    return text


class TFJobSpecError(ValueError):
    """A field of the TFJob description is invalid; fix the DAG, retrying cannot help."""

    def __init__(self, field: str, value: Any, allowed: str, *, show_value: bool = True) -> None:
        self.field = field
        """Dotted path of the offending field, e.g. ``Worker.requests.cpu``."""
        self.value = value
        """The value that was given."""
        self.allowed = allowed
        """What would have been accepted."""
        kind = type(value).__name__
        article = "an" if kind[0] in "aeiou" else "a"
        shown = _short_repr(value) if show_value else f"{article} {kind}"
        super().__init__(f"{field}: got {shown}; {allowed}")


class TFJobSpecWarning(UserWarning):
    """The job is valid but likely to misbehave (for example PS replicas without a chief)."""
