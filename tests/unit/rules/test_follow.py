"""The follow rules (rules/follow.py) as tables: what is due when, for every way of waiting."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from airflow_tfjob.rules.follow import Follow, Limits, Lost

T0 = datetime.datetime(2026, 12, 5, 10, 0, tzinfo=datetime.UTC)
NOW = T0.timestamp()


def _job(phase: str | None = None, *, uid: str = "u1", start: float | None = None,
         active: int = 0) -> dict[str, Any]:  # fmt: skip
    status: dict[str, Any] = {"conditions": [{"type": phase, "status": "True"}] if phase else []}
    if start is not None:
        status["startTime"] = datetime.datetime.fromtimestamp(start, datetime.UTC).isoformat()
    if active:
        status["replicaStatuses"] = {"Worker": {"active": active}}
    return {
        "metadata": {"name": "j", "namespace": "ns", "uid": uid,
                     "creationTimestamp": T0.isoformat().replace("+00:00", "Z")},
        "spec": {"tfReplicaSpecs": {"Worker": {"replicas": 1}}},
        "status": status,
    }  # fmt: skip


def _pod(state: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "j-worker-0", "labels": {
            "training.kubeflow.org/replica-type": "worker",
            "training.kubeflow.org/replica-index": "0"}},
        "status": {"phase": "Running", "containerStatuses": [{"name": "tensorflow", "state": state}]},
    }  # fmt: skip


def test_the_start_up_timeout_counts_from_the_jobs_creation_until_a_replica_ran() -> None:
    follow = Follow(_job("Created"), Limits(startup_timeout=60))
    assert follow.seconds_left(NOW + 10) == pytest.approx(50)
    assert follow.expired(NOW + 59) is None
    expiry = follow.expired(NOW + 61)
    assert expiry is not None and expiry.kind == "startup" and expiry.delete
    assert expiry.message.startswith("no replica of TFJob ns/j started within 60 s")
    follow.pod(_pod({"running": {"startedAt": "2026-12-05T10:00:30Z"}}))
    assert follow.started and follow.expired(NOW + 61) is None


@pytest.mark.parametrize(
    "job",
    [_job("Running"), _job("Created", active=1), _job("Succeeded")],
    ids=["running", "a replica active", "finished"],
)
def test_a_job_whose_status_says_it_ran_has_started(job: dict[str, Any]) -> None:
    follow = Follow(job, Limits(startup_timeout=60))
    assert follow.started and follow.expired(NOW + 3600) is None


def test_the_tasks_deadline_and_the_jobs_active_deadline() -> None:
    follow = Follow(_job("Running", start=NOW), Limits(deadline=NOW + 100,
                                                       active_deadline_seconds=30))  # fmt: skip
    assert follow.seconds_left(NOW) == pytest.approx(35)  # 30 s + 5 s grace, from startTime
    expiry = follow.expired(NOW + 36)
    assert expiry is not None and expiry.kind == "deadline" and expiry.delete
    assert expiry.message == (
        "TFJob ns/j ran past runPolicy.activeDeadlineSeconds=30 (Running) and the training "
        "operator did not stop it; it was deleted"
    )
    timed = Follow(_job("Running"), Limits(deadline=NOW + 100)).expired(NOW + 100)
    assert timed is not None and timed.message == (
        "TFJob ns/j did not finish before the task's execution_timeout (Running); it was deleted"
    )


def test_a_sensor_never_deletes_and_ignores_the_jobs_own_deadline() -> None:
    limits = Limits(deadline=NOW + 10, active_deadline_seconds=1, owned=False,
                    target_states=("Running", "Failed"), awaited=("Running",))  # fmt: skip
    follow = Follow(_job("Created", start=NOW - 100), limits)
    assert follow.seconds_left(NOW) == pytest.approx(10)
    assert follow.expired(NOW + 5) is None
    expiry = follow.expired(NOW + 10)
    assert expiry is not None and not expiry.delete
    assert (
        expiry.message == "TFJob ns/j did not reach Running before the sensor's timeout (Created)"
    )
    follow.job(_job("Running"))
    assert follow.done


def test_a_deleted_or_replaced_job_is_lost() -> None:
    with pytest.raises(Lost, match="was replaced by another job of the same name"):
        Follow(_job(), Limits(), uid="other")
    follow = Follow(_job(), Limits(), uid="u1")
    with pytest.raises(Lost, match="was replaced"):
        follow.job(_job("Running", uid="u2"))
    with pytest.raises(Lost, match="TFJob ns/j was deleted while the task waited for it"):
        follow.gone()


def test_a_finished_job_is_explained_once_its_pods_show_the_output_or_the_failure() -> None:
    follow = Follow(_job("Running"), Limits())
    assert follow.job(_job("Succeeded")) and follow.done and not follow.explained()
    follow.pod(_pod({"terminated": {"exitCode": 0, "message": '{"loss": 0.1}'}}))
    assert follow.explained() and follow.result()["output"] == {"loss": 0.1}
    assert follow.failure(lambda _: []) is None
    failed = Follow(_job("Failed"), Limits())
    assert not failed.explained()
    failed.pod(_pod({"terminated": {"exitCode": 3, "message": "shard 7 is corrupt"}}))
    assert failed.explained()
    assert "worker-0" in (failed.failure(lambda _: []) or "")


def test_every_reconnect_loop_backs_off_the_same_way() -> None:
    from airflow_tfjob.backends.kubernetes.backoff import Backoff

    backoff = Backoff()
    delays = [backoff.next() for _ in range(9)]
    ceilings = [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True)), delays
    backoff.reset()
    assert backoff.next() <= 0.5
    short = Backoff(cap=2.0)
    assert max(short.next() for _ in range(10)) <= 2.0


def test_a_job_ref_is_read_from_an_object_an_event_or_its_own_dict() -> None:
    from airflow_tfjob.rules.jobref import JobRef

    ref = JobRef.of(_job())
    assert ref == JobRef("j", "ns", "u1") and ref.where == "ns/j"
    assert JobRef.of({"name": "j", "namespace": "ns", "uid": "u1", "kind": "finished"}) == ref
    assert JobRef.of(ref.to_dict()) == ref
