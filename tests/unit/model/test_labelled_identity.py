"""``naming.labelled_identity``: a job's task identity counts only when the labels the provider
sets at submit agree with its annotations (pure)."""

from __future__ import annotations

from typing import Any

from airflow_tfjob.model import naming

RUN = "scheduled__2026-12-05T00:00:00+00:00-" + "x" * 80  # too long for a label: hashed
IDENTITY = {"dag_id": "train_daily", "task_id": "fit", "run_id": RUN, "map_index": 3}


def _job(labels: dict[str, str], notes: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": "j", "labels": labels, "annotations": notes}}


def _made(deployment: str = "airflow.example.com", **changed: Any) -> dict[str, Any]:
    ident = {**IDENTITY, **changed}
    labels = naming.task_labels(*ident.values(), 2, deployment=deployment)
    return _job(labels, naming.task_annotations(*IDENTITY.values()))


def test_a_job_labelled_at_submit_has_its_identity() -> None:
    assert naming.labelled_identity(_made(), "airflow.example.com") == IDENTITY


def test_annotations_alone_or_labels_that_disagree_are_no_identity() -> None:
    notes = naming.task_annotations(*IDENTITY.values())
    assert naming.labelled_identity(_job({}, notes), "airflow.example.com") is None
    assert naming.labelled_identity(_job(naming.MANAGED_BY, notes), "airflow.example.com") is None
    for changed in ({"dag_id": "other"}, {"task_id": "x"}, {"run_id": "r"}, {"map_index": 4}):
        assert naming.labelled_identity(_made(**changed), "airflow.example.com") is None, changed
    assert naming.labelled_identity(_made("elsewhere"), "airflow.example.com") is None
    labels = naming.task_labels(*IDENTITY.values(), 2)  # no deployment label at all
    assert naming.labelled_identity(_job(labels, notes), "airflow.example.com") is None
    unmanaged = {k: v for k, v in _made()["metadata"]["labels"].items() if "managed-by" not in k}
    assert naming.labelled_identity(_job(unmanaged, notes), "airflow.example.com") is None
