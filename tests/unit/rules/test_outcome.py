"""The rules that end a deferred task (``rules.outcome``), shared by the worker and the triggerer."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_tfjob.rules.outcome import Ending, Verdict, deletes, verdict

RESULT = {"name": "j", "namespace": "ml", "uid": "u", "state": "Succeeded", "output": {"a": 1}}


def _event(kind: str = "finished", state: str | None = "Succeeded", **more: Any) -> dict[str, Any]:
    result = None if state is None else {**RESULT, "state": state}
    base = {
        "kind": kind,
        "name": "j",
        "namespace": "ml",
        "uid": "u",
        "message": f"TFJob ml/j {state}",
    }
    return {**base, "result": result, "failure": None, **more}


@pytest.mark.parametrize(
    ("event", "ending", "expected"),
    [
        # the operator: the whole result, deleted when it succeeded (the default action)
        (_event(), Ending(), Verdict(True, "finished", "TFJob ml/j Succeeded", RESULT, True)),
        # @task.tfjob: the function's value
        (
            _event(),
            Ending(returns="output", on_finish_action="keep_tfjob"),
            Verdict(True, "finished", "TFJob ml/j Succeeded", {"a": 1}, False),
        ),
        # a failed job: the failure report, kept by default, deleted by delete_tfjob
        (
            _event(state="Failed", failure="worker-1 (exit code 2)"),
            Ending(),
            Verdict(False, "finished", "worker-1 (exit code 2)", None, False),
        ),
        (
            _event(state="Failed", failure="worker-1 (exit code 2)"),
            Ending(on_finish_action="delete_tfjob"),
            Verdict(False, "finished", "worker-1 (exit code 2)", None, True),
        ),
        # a sensor waiting for Running: Succeeded is not it; nothing is ever deleted
        (
            _event(),
            Ending(success_states=("Running",), on_finish_action=None),
            Verdict(False, "finished", "TFJob ml/j is Succeeded, not Running", None, False),
        ),
        (
            _event(state="Running"),
            Ending(success_states=("Running",), on_finish_action=None),
            Verdict(True, "finished", "TFJob ml/j Running", {**RESULT, "state": "Running"}),
        ),
        # deadlines and lost jobs: the event's message; the job is not "finished", so no action
        (
            _event("deadline", None, message="did not finish; it was deleted"),
            Ending(on_finish_action="delete_tfjob"),
            Verdict(False, "deadline", "did not finish; it was deleted"),
        ),
        (
            _event("error", None, message="lost track"),
            Ending(skip_on_failure=True),
            Verdict(False, "error", "lost track", skip=True),
        ),
    ],
)
def test_verdicts(event: dict[str, Any], ending: Ending, expected: Verdict) -> None:
    assert verdict(event, ending) == expected


def test_xcoms_are_what_the_worker_would_push() -> None:
    ok = Verdict(True, "finished", "", value={"loss": 0.1, "acc": 0.9})
    assert ok.xcoms(Ending()) == {"return_value": {"loss": 0.1, "acc": 0.9}}
    assert ok.xcoms(Ending(multiple_outputs=True)) == {
        "return_value": {"loss": 0.1, "acc": 0.9},
        "loss": 0.1,
        "acc": 0.9,
    }
    assert Verdict(True, "finished", "", value=3).xcoms(Ending(multiple_outputs=True)) == {
        "return_value": 3
    }
    assert Verdict(False, "finished", "failed").xcoms(Ending()) == {}


def test_an_ending_survives_serialization() -> None:
    ending = Ending(("Running",), "output", True, None, True)
    assert Ending.from_dict(ending.to_dict()) == ending
    assert Ending.from_dict(None) == Ending()


@pytest.mark.parametrize(
    ("action", "phase", "expected"),
    [
        ("delete_tfjob", "Failed", True),
        ("delete_succeeded_tfjob", "Succeeded", True),
        ("delete_succeeded_tfjob", "Failed", False),
        ("keep_tfjob", "Succeeded", False),
        (None, "Succeeded", False),
    ],
)
def test_deletes(action: str | None, phase: str, expected: bool) -> None:
    assert deletes(action, phase) is expected
