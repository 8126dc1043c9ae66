"""Kubernetes label selectors, parsed once (a wrong one is a ``TFJobSpecError`` at DAG parse time)
and matched on this side: watchers with different selectors share one watch of their namespace.

The grammar is the API server's (``k8s.io/apimachinery/pkg/labels``): requirements separated by
commas, each ``key``, ``!key``, ``key=value``, ``key==value``, ``key!=value``,
``key in (v1,v2)`` or ``key notin (v1,v2)``; all must hold. An empty selector matches every job.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from airflow_tfjob.model import checks
from airflow_tfjob.model.errors import TFJobSpecError

ALLOWED = (
    "comma-separated requirements: key, !key, key=value, key==value, key!=value, "
    "key in (v1,v2), key notin (v1,v2) (not > or <)"
)
_REQUIREMENT = re.compile(
    r"^(?:(?P<absent>!)\s*(?P<akey>[^\s=!(),<>]+)"
    r"|(?P<key>[^\s=!(),<>]+)\s*(?:(?P<op>==|=|!=)\s*(?P<value>[^\s=!(),<>]*)"
    r"|\s+(?P<setop>in|notin)\s*\((?P<values>[^()]*)\))?)$"
)


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str
    """``exists``, ``!``, ``in`` or ``notin`` (``=`` and ``!=`` are ``in``/``notin`` of one)."""
    values: frozenset[str] = frozenset()

    def holds(self, labels: Mapping[str, str]) -> bool:
        if self.op == "exists":
            return self.key in labels
        if self.op == "!":
            return self.key not in labels
        if self.op == "in":
            return labels.get(self.key) in self.values
        return labels.get(self.key) not in self.values  # notin: an absent key qualifies


def parse(selector: object, field: str = "label_selector") -> tuple[Requirement, ...]:
    """The requirements of ``selector``, or a ``TFJobSpecError`` naming the one that is wrong."""
    if not isinstance(selector, str):
        raise TFJobSpecError(field, selector, f"must be a string of {ALLOWED}")
    found = []
    for part in _split(selector):
        match = _REQUIREMENT.match(part.strip())
        if match is None:
            raise TFJobSpecError(field, selector, f"cannot read {part.strip()!r}: use {ALLOWED}")
        key = match["akey"] or match["key"]
        checks.qualified_name(key, f"{field} key")
        if match["absent"]:
            found.append(Requirement(key, "!"))
        elif match["op"]:
            checks.label_value(match["value"], f"{field} value of {key!r}")
            op = "notin" if match["op"] == "!=" else "in"
            found.append(Requirement(key, op, frozenset({match["value"]})))
        elif match["setop"]:
            values = [v.strip() for v in match["values"].split(",")]
            for value in values:
                checks.label_value(value, f"{field} value of {key!r}")
            found.append(Requirement(key, match["setop"], frozenset(values)))
        else:
            found.append(Requirement(key, "exists"))
    return tuple(found)


def matches(requirements: tuple[Requirement, ...], labels: Mapping[str, str] | None) -> bool:
    """Whether every requirement holds for ``labels``."""
    return all(r.holds(labels or {}) for r in requirements)


def _split(selector: str) -> list[str]:
    """Requirements at the commas outside parentheses; nothing for an empty selector."""
    if not selector.strip():
        return []
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]
