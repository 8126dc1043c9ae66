"""Which TFJobs (or TrainJobs) an event watcher fires for: once per job, across restarts. Pure.

The rule, read from each job's status whenever the watcher sees it (an event, or a listing after
a start or a reconnect):

- the job's phase is one of the watched phases, and its labels match the selector;
- it reached that phase at or after the moment the watcher first ran (``since``): the jobs
  finished before are history, not news;
- its uid is not among those fired for already.

``since`` and the uids fired for are the watcher's memory (kept in Airflow's asset state store,
so a restarted triggerer resumes from it); uids of jobs no longer listed are forgotten. So a job
that finished while the triggerer was down fires when it comes back, as long as the job still
exists (its ``ttlSecondsAfterFinished`` has not removed it), and no job fires twice.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypedDict

from airflow_tfjob.model import selector
from airflow_tfjob.model.kube import KubeObject
from airflow_tfjob.rules import status


def now() -> str:
    """The current UTC time as the API server writes times (``2026-12-05T10:00:00Z``)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def reached_at(obj: KubeObject, phase: str) -> str | None:
    """When the job's ``phase`` condition became true (its completion time else)."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == phase and cond.get("status") == "True":
            return str(cond.get("lastTransitionTime") or cond.get("lastUpdateTime") or "") or None
    completed = (obj.get("status") or {}).get("completionTime")
    return str(completed) if completed else None


CLOCK_SLACK = datetime.timedelta(minutes=5)
"""How far the triggerer's clock (when a listing began) and the API server's (when a job
finished) may disagree."""


def _time(stamp: str) -> datetime.datetime | None:
    try:
        when = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=datetime.UTC)


def _newer(stamp: str, than: datetime.datetime) -> bool:
    """Whether ``stamp`` is at or after ``than`` (an unreadable one counts as newer: kept)."""
    when = _time(stamp)
    return when is None or when >= than


class Memory(TypedDict):
    """A watcher's memory as stored in the asset state store (``Fired.to_dict``)."""

    since: str
    uids: dict[str, str]


@dataclass
class Fired:
    """A watcher's memory."""

    since: str = field(default_factory=now)
    uids: dict[str, str] = field(default_factory=dict)
    """uid -> when it reached the phase, for the jobs fired for that still exist."""

    def due(
        self,
        obj: KubeObject,
        phases: Iterable[str],
        requirements: tuple[selector.Requirement, ...],
    ) -> bool:
        """Whether ``obj`` is news for this watcher."""
        meta = obj.get("metadata") or {}
        phase = status.job_state(obj).phase
        if phase not in phases or meta.get("uid") in self.uids:
            return False
        if not selector.matches(requirements, meta.get("labels")):
            return False
        reached = reached_at(obj, phase)
        return reached is None or reached >= self.since

    def record(self, obj: KubeObject) -> None:
        """``obj`` was fired for."""
        phase = status.job_state(obj).phase
        self.uids[str(obj["metadata"]["uid"])] = reached_at(obj, phase) or now()

    def forget_all_but(self, existing: Iterable[str], listed_at: str | None = None) -> bool:
        """Forget the uids of jobs no longer listed; True when any was forgotten.

        ``listed_at``: when the listing began (``now()``). A job that reached its phase after
        that (give or take ``CLOCK_SLACK``) may be missing from it only because it is newer
        than the listing, not gone: a watcher that read the namespace itself after joining a
        shared stream gets the stream's older listing after its own. Those are kept."""
        listed = set(existing)
        began = _time(listed_at) if listed_at else None
        keep = {
            uid: at
            for uid, at in self.uids.items()
            if uid in listed or (began is not None and _newer(at, began - CLOCK_SLACK))
        }
        changed = len(keep) != len(self.uids)
        self.uids = keep
        return changed

    def to_dict(self) -> Memory:
        return {"since": self.since, "uids": dict(self.uids)}

    @classmethod
    def from_dict(cls, value: object) -> Fired | None:
        """The memory stored before, or None when there is none (or it is not ours)."""
        if not isinstance(value, Mapping) or not isinstance(value.get("since"), str):
            return None
        uids = value.get("uids")
        return cls(str(value["since"]), dict(uids) if isinstance(uids, Mapping) else {})
