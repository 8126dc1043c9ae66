"""The campaign's schedule, as pure data: from one seed, every run's task shape and faults.

A run is one task (or one mapped task of two) through real Airflow. Its faults are drawn from
three families: the API (bursts of 5xx / 429, dropped and stalled connections, watch streams cut,
410 Gone), the job (a replica failing under a restart policy, an eviction, the TFJob deleted from
outside, a deadline passing), and the processes (the worker SIGKILLed mid-execute and the task
retried, the triggerer restarted with triggers rebuilt from ``serialize()``, a user killing the
task), and the paths that leave a job its task no longer follows (the worker SIGKILLed with no
retry left, a deferred task marked failed the moment it deferred or later while no triggerer
runs its trigger, the DAG run deleted), after which the reaper runs once. About one run in five
has no fault: the overhead baseline. ``schedule(seed, runs)`` is
the same list on every machine, so a violation's seed and index reproduce it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

SHAPES = ("operator", "function", "sensor", "mapped")
API_FAULTS = ("5xx", "429", "drop", "stall", "watch_cut", "gone")
JOB_FAULTS = ("replica_failure", "eviction", "external_delete", "deadline")
PROCESS_FAULTS = ("worker_sigkill", "triggerer_restart", "user_kill")
ORPHAN_FAULTS = (
    "final_sigkill",
    "mark_failed_on_defer",
    "triggerer_down_mark_failed",
    "run_deleted",
)
"""Airflow tells the task nothing: its job runs on until the reaper (run after the task) ends it."""
POLICIES = ("Never", "OnFailure", "ExitCode", "Always")
FAULT_FREE_SHARE = 0.2


@dataclass(frozen=True)
class Fault:
    """One fault: its kind, when (seconds after the task process starts, or after the job is
    seen running for job and process faults) and its parameters."""

    kind: str
    at: float
    params: dict[str, object] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Scenario:
    """One run of the campaign."""

    seed: int
    index: int
    shape: str
    deferrable: bool
    faults: tuple[Fault, ...]
    chief_seconds: float
    """How long the chief runs (the job's length when nothing interferes)."""

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(f.kind for f in self.faults)

    def fault(self, kind: str) -> Fault | None:
        return next((f for f in self.faults if f.kind == kind), None)

    @property
    def label(self) -> str:
        mode = "deferred" if self.deferrable else "sync"
        return f"#{self.index} {self.shape}/{mode} [{', '.join(self.kinds) or 'no fault'}]"

    @property
    def must_fail(self) -> bool:
        """Whether a fault dooms the task (else it must succeed), if it is injected."""
        return any(dooms(f) for f in self.faults)


def dooms(fault: Fault) -> bool:
    """Whether this fault, once injected, must fail the task."""
    if fault.kind in ("external_delete", "deadline", "user_kill", *ORPHAN_FAULTS):
        return True
    if fault.kind == "replica_failure":
        return not fault.params["recovers"]
    if fault.kind == "eviction":  # the operator recreates an evicted pod unless it is Never
        return fault.params["policy"] == "Never"
    return False


def _allowed(shape: str, deferrable: bool) -> list[str]:
    """The job and process faults that make sense for a shape."""
    kinds = ["replica_failure", "external_delete", "deadline", "worker_sigkill"]
    if shape != "function":
        kinds.append("eviction")  # the function runs real processes, which are not evicted
    if deferrable:
        kinds.append("triggerer_restart")
    elif shape != "sensor":
        kinds.append("user_kill")  # a sensor's job is not its own: killing it keeps the job
    if shape in ("operator", "mapped"):  # a job of its own that runs until someone ends it
        kinds += ["final_sigkill", "run_deleted"]
        if deferrable:
            kinds += ["mark_failed_on_defer", "triggerer_down_mark_failed"]
    return kinds


def _api_fault(rng: random.Random, kind: str | None = None) -> Fault:
    kind = kind or rng.choice(API_FAULTS)
    at = round(rng.uniform(0.0, 6.0), 2)
    target = rng.choice(("tfjobs", "pods", "any"))
    params: dict[str, object] = {"target": target}
    if kind == "5xx":
        params |= {"status": rng.choice((500, 503, 504)), "times": rng.randint(1, 5)}
    elif kind == "429":
        params |= {"times": rng.randint(1, 4), "retry_after": 1}
    elif kind == "drop":
        params |= {"times": rng.randint(1, 3)}
    elif kind == "stall":
        params |= {"seconds": round(rng.uniform(1.0, 4.0), 1), "times": rng.randint(1, 2)}
    elif kind == "watch_cut":
        params |= {"after_seconds": round(rng.uniform(0.2, 1.5), 2), "times": rng.randint(1, 3)}
    return Fault(kind, at, params)


def _job_or_process_fault(rng: random.Random, kind: str, shape: str) -> Fault:
    at = round(rng.uniform(0.0, 1.5), 2)
    if kind == "replica_failure":
        policy = rng.choice(POLICIES)
        if shape == "function":
            policy = "Never"  # the function raises: exit code 1, never retried
        code = rng.choice((1, 2, 137))
        recovers = policy in ("OnFailure", "Always") or (policy == "ExitCode" and code >= 128)
        return Fault(kind, at, {"policy": policy, "exit_code": code, "recovers": recovers,
                                "replica": f"worker-{rng.randint(0, 1)}"})  # fmt: skip
    if kind == "eviction":
        return Fault(kind, at, {"policy": rng.choice(POLICIES), "replica": "worker-1"})
    if kind == "deadline":
        return Fault(kind, at, {"timeout": rng.choice((6, 8))})
    if kind == "triggerer_restart":
        return Fault(kind, round(rng.uniform(0.5, 2.5), 2), {})
    if kind == "mark_failed_on_defer":
        return Fault(kind, 0.0, {})  # the moment the task defers, before a trigger runs
    return Fault(kind, at, {})


ALL_FAULTS = (*API_FAULTS, *JOB_FAULTS, *PROCESS_FAULTS, *ORPHAN_FAULTS)


def _covering(rng: random.Random, index: int) -> tuple[str, bool, list[Fault]]:
    """Run ``index`` < len(ALL_FAULTS): that fault kind for sure, on a shape that allows it, so
    even a short campaign injects every kind."""
    kind = ALL_FAULTS[index]
    deferrable = kind in ("triggerer_restart", "mark_failed_on_defer", "triggerer_down_mark_failed")
    deferrable = deferrable or (kind != "user_kill" and rng.random() < 0.5)
    shapes = [s for s in SHAPES if kind in API_FAULTS or kind in _allowed(s, deferrable)]
    shape = rng.choice(shapes)
    fault = _api_fault(rng, kind) if kind in API_FAULTS else _job_or_process_fault(rng, kind, shape)
    return shape, deferrable, [fault]


def scenario(seed: int, index: int) -> Scenario:
    """Run ``index`` of the campaign of ``seed``: always the same."""
    rng = random.Random(seed * 1_000_003 + index)
    if index < len(ALL_FAULTS):
        shape, deferrable, faults = _covering(rng, index)
        return Scenario(seed, index, shape, deferrable, tuple(faults),
                        chief_seconds=round(rng.uniform(2.0, 4.0), 1))  # fmt: skip
    shape = rng.choice(SHAPES)
    deferrable = rng.random() < 0.5
    faults: list[Fault] = []
    if rng.random() >= FAULT_FREE_SHARE:
        if rng.random() < 0.7:
            faults.append(_api_fault(rng))
        if rng.random() < 0.7 or not faults:
            kind = rng.choice(_allowed(shape, deferrable))
            faults.append(_job_or_process_fault(rng, kind, shape))
    return Scenario(seed, index, shape, deferrable, tuple(faults),
                    chief_seconds=round(rng.uniform(2.0, 4.0), 1))  # fmt: skip


def schedule(seed: int, runs: int) -> list[Scenario]:
    """The whole campaign."""
    return [scenario(seed, i) for i in range(runs)]
