"""When a job (a TFJob or a TrainJob) has outlived its task instance, decided without I/O.

The reaper (``operators/reaper.py``) and the TFJobs page apply the same rule: a job is an orphan
when it is not finished (nor being deleted), its task instance will not follow it any more
(ended, or no longer exists) and the task did not hand it off on purpose
(``wait_until_finished=False``). A task instance that is running, deferred, queued, scheduled,
up for retry, restarting, cleared (no state) or waiting for a reschedule still follows its job,
or its next try will adopt it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_tfjob.model import naming
from airflow_tfjob.model.kube import KubeObject
from airflow_tfjob.rules import status

ENDED: frozenset[str] = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
"""Task instance states after which nobody follows the job."""
GONE = "gone"
"""The state this module uses for a task instance that no longer exists."""
HANDED_OFF = f"{naming.LABEL_PREFIX}/handed-off"
"""Annotation of a job its task submitted without waiting: it outlives the task on purpose."""
ON_KILL = f"{naming.LABEL_PREFIX}/on-kill-action"
"""Annotation of a job whose task says ``on_kill_action='keep_tfjob'``."""
COLLECTED = f"{naming.LABEL_PREFIX}/collected"
"""Annotation of a finished job kept (``on_finish_action``) after a try took its outcome as its
own: a later run of the task instance (a clear) replaces it instead of adopting it. A finished
job without it is adopted: the try that followed it died before taking its outcome."""


def collected_patch(uid: str) -> KubeObject:
    """The merge patch that marks a kept job collected (this very job: its uid must match)."""
    return {"metadata": {"uid": uid, "annotations": {COLLECTED: "true"}}}


def collected(job: KubeObject) -> bool:
    """Whether a try already took this finished job's outcome (``COLLECTED``)."""
    return ((job.get("metadata") or {}).get("annotations") or {}).get(COLLECTED) == "true"


@dataclass(frozen=True)
class Orphan:
    """A job that outlives its task instance: why, and whether it should be deleted."""

    task_state: str
    """The task instance's state, or ``gone``."""
    job_phase: str
    keep: bool
    """The task said ``on_kill_action='keep_tfjob'``: show it, never delete it."""

    @property
    def reason(self) -> str:
        """``its task instance is failed; the job is still Running``."""
        task = (
            "its task instance no longer exists"
            if self.task_state == GONE
            else f"its task instance is {self.task_state}"
        )
        return f"{task}; the job is still {self.job_phase}"


def deployment(obj: KubeObject) -> str | None:
    """The Airflow deployment that created the job (its label), ``None`` for jobs made before
    the provider set it."""
    return ((obj.get("metadata") or {}).get("labels") or {}).get(naming.DEPLOYMENT_LABEL)


def check(obj: KubeObject, task_state: str | None) -> Orphan | None:
    """The job's orphan verdict given its task instance's state (``GONE`` when it does not exist;
    ``None``: it exists with no state, i.e. cleared), ``None`` when the job is not an orphan."""
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    if meta.get("deletionTimestamp") or annotations.get(HANDED_OFF) == "true":
        return None
    if task_state not in ENDED and task_state != GONE:
        return None
    phase = status.job_state(obj).phase
    if phase in status.TERMINAL:
        return None
    return Orphan(
        task_state=str(task_state), job_phase=phase, keep=annotations.get(ON_KILL) == "keep_tfjob"
    )


def state_key(task_id: str, map_index: int) -> str:
    """How Airflow's task-states answer names a task instance within a run."""
    return task_id if map_index < 0 else f"{task_id}_{map_index}"


def task_state(states: Mapping[str, Mapping[str, Any]], run_id: str, key: str) -> str | None:
    """A task instance's state in Airflow's ``{run_id: {key: state}}`` answer; ``GONE`` when the
    run or the task instance is missing."""
    run = states.get(run_id)
    if run is None or key not in run:
        return GONE
    value = run[key]
    return None if value is None else str(value)
