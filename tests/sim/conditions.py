"""TFJob condition bookkeeping, as the operator's ``pkg/util/status.go`` does it.

``Running`` and ``Restarting`` replace each other; ``Succeeded``/``Failed`` turn ``Running`` to
False; nothing changes once ``Failed`` is set; ``lastTransitionTime`` only moves when ``status``
changes.
"""

from __future__ import annotations

import datetime
from typing import Any

Status = dict[str, Any]
"""A TFJob ``status`` as JSON."""


def stamp(when: datetime.datetime) -> str:
    """A Kubernetes timestamp (whole seconds, as the server stores them)."""
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text: str) -> datetime.datetime:
    """Parse a Kubernetes timestamp."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def find(status: Status, kind: str) -> dict[str, Any] | None:
    """The condition of type ``kind``, if any."""
    for cond in status.get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def is_true(status: Status, kind: str) -> bool:
    """Whether the condition ``kind`` is present with status True."""
    cond = find(status, kind)
    return cond is not None and cond.get("status") == "True"


def is_finished(status: Status) -> bool:
    """Succeeded or Failed."""
    return is_true(status, "Succeeded") or is_true(status, "Failed")


def update(
    status: Status, kind: str, value: str, reason: str, message: str, *, now: datetime.datetime
) -> None:
    """``UpdateJobConditions``: set condition ``kind`` in place, with the operator's rules."""
    if is_true(status, "Failed"):
        return
    current = find(status, kind)
    if current is not None and current["status"] == value and current.get("reason") == reason:
        return
    when = stamp(now)
    condition = {
        "type": kind,
        "status": value,
        "reason": reason,
        "message": message,
        "lastUpdateTime": when,
        "lastTransitionTime": when,
    }
    if current is not None and current["status"] == value:
        condition["lastTransitionTime"] = current.get("lastTransitionTime", when)
    status["conditions"] = [*_filter_out(status.get("conditions") or [], kind), condition]


def _filter_out(conditions: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    kept = []
    for cond in conditions:
        other = cond.get("type")
        if (kind, other) in (("Restarting", "Running"), ("Running", "Restarting")):
            continue
        if other == kind:
            continue
        if kind in ("Failed", "Succeeded") and other == "Running":
            kept.append({**cond, "status": "False"})
        else:
            kept.append(cond)
    return kept
