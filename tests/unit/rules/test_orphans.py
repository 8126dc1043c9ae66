"""The orphan rule the reaper and the TFJobs page share, as a table."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_tfjob.rules import orphans


def _job(phase: str | None, **annotations: str) -> dict[str, Any]:
    conditions = [{"type": phase, "status": "True"}] if phase else []
    return {"metadata": {"annotations": annotations}, "status": {"conditions": conditions}}


@pytest.mark.parametrize(
    ("phase", "task_state", "reason"),
    [
        ("Running", "failed", "its task instance is failed; the job is still Running"),
        ("Running", "success", "its task instance is success; the job is still Running"),
        (None, "upstream_failed", "its task instance is upstream_failed; the job is still Pending"),
        ("Restarting", "skipped", "its task instance is skipped; the job is still Restarting"),
        ("Created", "removed", "its task instance is removed; the job is still Created"),
        (
            "Suspended",
            orphans.GONE,
            "its task instance no longer exists; the job is still Suspended",
        ),
    ],
)
def test_an_unfinished_job_of_an_ended_or_missing_task_instance_is_an_orphan(
    phase: str | None, task_state: str, reason: str
) -> None:
    verdict = orphans.check(_job(phase), task_state)
    assert verdict is not None and verdict.reason == reason and not verdict.keep


@pytest.mark.parametrize(
    "task_state",
    [None, "scheduled", "queued", "running", "deferred", "up_for_retry", "restarting",
     "up_for_reschedule"],
)  # fmt: skip
def test_a_task_instance_that_follows_or_will_adopt_its_job_makes_no_orphan(
    task_state: str | None,
) -> None:
    assert orphans.check(_job("Running"), task_state) is None


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_a_finished_job_is_no_orphan(phase: str) -> None:
    assert orphans.check(_job(phase), "failed") is None


def test_a_handed_off_job_or_one_being_deleted_is_no_orphan_and_a_kept_one_is_marked() -> None:
    assert orphans.check(_job("Running", **{orphans.HANDED_OFF: "true"}), "success") is None
    deleting = _job("Running")
    deleting["metadata"]["deletionTimestamp"] = "2026-12-05T10:00:00Z"
    assert orphans.check(deleting, orphans.GONE) is None
    kept = orphans.check(_job("Running", **{orphans.ON_KILL: "keep_tfjob"}), "failed")
    assert kept is not None and kept.keep


def test_task_states_are_read_from_airflows_answer() -> None:
    answer = {"run1": {"train": "failed", "fit_3": None}}
    assert orphans.task_state(answer, "run1", orphans.state_key("train", -1)) == "failed"
    assert orphans.task_state(answer, "run1", orphans.state_key("fit", 3)) is None  # cleared
    assert orphans.task_state(answer, "run1", orphans.state_key("fit", 4)) == orphans.GONE
    assert orphans.task_state(answer, "run2", "train") == orphans.GONE
