"""The deadline backstop (rules/backstop.py): set only where the job sets no deadline, and raised
for a try that adopts a running job so that try gets its own time."""

from __future__ import annotations

import datetime
from typing import Any

from airflow_tfjob.rules import backstop

T0 = datetime.datetime(2026, 12, 5, 10, 0, tzinfo=datetime.UTC)
HOUR = 3600


def _manifest(policy: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "j"}, "spec": {"runPolicy": dict(policy or {})}}


def _job(seconds: int, *, phase: str = "Running", started: bool = True) -> dict[str, Any]:
    job = _manifest()
    backstop.apply(job, seconds)
    job["metadata"]["creationTimestamp"] = (T0 - datetime.timedelta(seconds=30)).isoformat()
    status: dict[str, Any] = {"conditions": [{"type": phase, "status": "True"}]}
    if started:
        status["startTime"] = T0.isoformat().replace("+00:00", "Z")
    job["status"] = status
    return job


def _wanted(seconds: int) -> dict[str, Any]:
    manifest = _manifest()
    backstop.apply(manifest, seconds)
    return manifest


def test_the_backstop_is_set_and_marked_only_where_the_job_sets_no_deadline() -> None:
    ours = _wanted(2 * HOUR + 60)
    assert ours["spec"]["runPolicy"]["activeDeadlineSeconds"] == 2 * HOUR + 60
    assert backstop.allowance(ours) == 2 * HOUR + 60
    theirs = _manifest({"activeDeadlineSeconds": 600})
    backstop.apply(theirs, 2 * HOUR + 60)
    assert theirs["spec"]["runPolicy"] == {"activeDeadlineSeconds": 600}
    assert backstop.allowance(theirs) is None


def test_a_retry_adopting_at_1h50_of_a_2h_timeout_gets_its_own_2h() -> None:
    job = _job(2 * HOUR + 60)
    now = T0.timestamp() + HOUR + 50 * 60  # the first try crashed here
    seconds = backstop.extended(job, _wanted(2 * HOUR + 60), now)
    assert seconds == HOUR + 50 * 60 + 2 * HOUR + 60  # runs to this try's timeout + margin
    job["spec"]["runPolicy"]["activeDeadlineSeconds"] = seconds
    # a deadline that already reaches this far is left as it is; none is ever removed, so a job
    # that every try left still ends at the last adopter's deadline
    assert backstop.extended(job, _wanted(HOUR), now) is None


def test_nothing_is_raised_that_is_not_ours_or_has_ended() -> None:
    now = T0.timestamp() + 100
    user_set = _manifest({"activeDeadlineSeconds": 50})
    user_set["status"] = {"startTime": T0.isoformat()}
    assert backstop.extended(user_set, _wanted(200), now) is None  # the user's deadline
    assert backstop.extended(_job(200), _manifest(), now) is None  # this try sets none
    assert backstop.extended(_job(200, phase="Succeeded"), _wanted(200), now) is None


def test_a_job_not_started_yet_counts_from_its_creation() -> None:
    job = _job(60, started=False)
    assert backstop.extended(job, _wanted(100), T0.timestamp()) == 30 + 100
