"""The campaign's figures: runs, faults injected by kind, violations, and the wall-time overhead
of faulted runs against fault-free ones."""

from __future__ import annotations

import collections
import statistics
from typing import Any

from tests.campaign.checks import Violation, past_deadline
from tests.campaign.run import Record


def _p(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def summarize(seed: int, records: list[Record], violations: list[Violation]) -> dict[str, Any]:
    """The figures of a campaign, as JSON-able data."""
    faulted = [r.wall for r in records if r.scenario.faults]
    clean = [r.wall for r in records if not r.scenario.faults]
    walls: dict[str, Any] = {}
    for name, values in (("fault_free", clean), ("faulted", faulted)):
        walls[name] = {"runs": len(values), "p50": _p(values, 50), "p99": _p(values, 99)}
    for q in ("p50", "p99"):
        base, other = walls["fault_free"][q], walls["faulted"][q]
        walls[f"overhead_{q}"] = other / base if base and other else None
    return {
        "seed": seed,
        "runs": len(records),
        "shapes": dict(
            collections.Counter(
                f"{r.scenario.shape}/{'deferred' if r.scenario.deferrable else 'sync'}"
                for r in records
            )
        ),
        "faults_scheduled": dict(collections.Counter(k for r in records for k in r.scenario.kinds)),
        "faults_injected": dict(collections.Counter(k for r in records for k in r.injected)),
        "by_restart_policy": dict(
            collections.Counter(
                f"{f.kind} under {f.params['policy']}"
                for r in records
                for f in r.scenario.faults
                if "policy" in f.params and f.kind in r.injected
            )
        ),
        "outcomes": dict(collections.Counter(_outcome(r) for r in records)),
        "violations": [str(v) for v in violations],
        "past_deadline_seconds": _past_deadline(records),
        "wall_seconds": walls,
        "mean_wall": statistics.fmean(r.wall for r in records) if records else None,
    }


def _past_deadline(records: list[Record]) -> dict[str, Any]:
    """How long tasks with a deadline ran past it (negative: ended before it)."""
    past = [p for r in records if "deadline" in r.injected for p in past_deadline(r)]
    return {"tasks": len(past), "p50": _p(past, 50), "max": max(past, default=None)}


def _outcome(record: Record) -> str:
    if record.result is None:
        return "killed" if "user_kill" in record.injected else "no report"
    states = {t["state"] for t in record.result}
    return "success" if states == {"success"} else "failed"


def render(summary: dict[str, Any]) -> str:
    """A short text report."""
    w = summary["wall_seconds"]
    lines = [
        f"fault campaign, seed {summary['seed']}: {summary['runs']} runs "
        f"({', '.join(f'{k} {v}' for k, v in sorted(summary['shapes'].items()))})",
        "faults injected: "
        + ", ".join(f"{k} {v}" for k, v in sorted(summary["faults_injected"].items())),
        "job faults by restart policy: "
        + ", ".join(f"{k} {v}" for k, v in sorted(summary["by_restart_policy"].items())),
        "outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(summary["outcomes"].items())),
        f"violations: {len(summary['violations'])}",
        *(f"  {v}" for v in summary["violations"]),
    ]
    past = summary["past_deadline_seconds"]
    if past["tasks"]:
        lines.append(
            f"past the deadline: {past['tasks']} tasks, p50 {past['p50']:+.1f} s, "
            f"max {past['max']:+.1f} s"
        )
    for name in ("fault_free", "faulted"):
        if w[name]["runs"]:
            lines.append(
                f"wall seconds, {name}: {w[name]['runs']} runs, "
                f"p50 {w[name]['p50']:.1f}, p99 {w[name]['p99']:.1f}"
            )
    if w["overhead_p50"]:
        lines.append(
            f"faulted / fault-free: p50 {w['overhead_p50']:.2f}x, p99 {w['overhead_p99']:.2f}x"
        )
    return "\n".join(lines)
