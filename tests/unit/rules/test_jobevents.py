"""The label selector and the event watcher's rule (model.selector, rules.jobevents): pure tables."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_tfjob.model import TFJobSpecError, selector
from airflow_tfjob.rules import jobevents


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("", {}, True),
        ("team", {"team": "a"}, True),
        ("team", {}, False),
        ("!team", {}, True),
        ("!team", {"team": "a"}, False),
        ("team=a", {"team": "a"}, True),
        ("team==a", {"team": "b"}, False),
        ("team!=a", {}, True),
        ("team!=a", {"team": "a"}, False),
        ("team in (a, b),env", {"team": "b", "env": "x"}, True),
        ("team in (a,b),env", {"team": "b"}, False),
        ("team notin (a,b)", {"team": "c"}, True),
        ("example.com/team=a, tier = gold", {"example.com/team": "a", "tier": "gold"}, True),
    ],
)
def test_selectors_match_as_the_api_server_does(
    text: str, labels: dict[str, str], expected: bool
) -> None:
    assert selector.matches(selector.parse(text), labels) is expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("team in a", "cannot read 'team in a'"),
        ("team>3", "cannot read 'team>3'"),
        ("=a", "cannot read '=a'"),
        ("team=a b", "cannot read 'team=a b'"),
        ("bad key!/x=1", "label_selector"),
        ("team=" + "v" * 64, "label_selector value of 'team'"),
        (3, "must be a string"),
    ],
)
def test_a_bad_selector_names_what_is_wrong(text: Any, message: str) -> None:
    with pytest.raises(TFJobSpecError) as caught:
        selector.parse(text)
    assert message in str(caught.value)


def _job(uid: str, phase: str, at: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    cond = {"type": phase, "status": "True", "lastTransitionTime": at}
    return {
        "metadata": {"name": uid, "uid": uid, "labels": labels or {}},
        "status": {"conditions": [{"type": "Running", "status": "False"}, cond]},
    }


def test_a_job_is_news_once_when_it_reached_a_watched_phase_since_the_watcher_began() -> None:
    fired, phases = jobevents.Fired(since="2026-12-05T10:00:00Z"), ("Succeeded",)
    team = selector.parse("team=a")
    new = _job("u1", "Succeeded", "2026-12-05T10:00:00Z", {"team": "a"})
    assert fired.due(new, phases, team)
    fired.record(new)
    assert not fired.due(new, phases, team)  # once
    assert not fired.due(
        _job("u2", "Succeeded", "2026-12-05T09:59:59Z", {"team": "a"}), phases, team
    )
    assert not fired.due(_job("u3", "Failed", "2026-12-05T10:01:00Z", {"team": "a"}), phases, team)
    assert not fired.due(
        _job("u4", "Succeeded", "2026-12-05T10:01:00Z", {"team": "b"}), phases, team
    )
    assert not fired.due(_job("u5", "Running", "2026-12-05T10:01:00Z", {"team": "a"}), phases, team)


def test_the_memory_survives_a_round_trip_and_forgets_jobs_no_longer_listed() -> None:
    fired = jobevents.Fired(since="2026-12-05T10:00:00Z")
    fired.record(_job("u1", "Succeeded", "2026-12-05T10:00:01Z"))
    fired.record(_job("u2", "Failed", "2026-12-05T10:00:02Z"))
    again = jobevents.Fired.from_dict(fired.to_dict())
    assert again == fired and again is not None
    assert again.forget_all_but(["u2", "u9"]) and list(again.uids) == ["u2"]
    assert not again.forget_all_but(["u2"])


def test_a_listing_older_than_a_fired_job_does_not_forget_it() -> None:
    fired = jobevents.Fired(since="2026-12-05T10:00:00Z")
    fired.record(_job("old", "Succeeded", "2026-12-05T10:00:01Z"))
    fired.record(_job("new", "Succeeded", "2026-12-05T10:20:00Z"))
    # a shared stream's listing begun at 10:19 cannot have the job that finished at 10:20
    assert fired.forget_all_but([], listed_at="2026-12-05T10:19:00Z")
    assert list(fired.uids) == ["new"]
    assert fired.forget_all_but([], listed_at="2026-12-05T10:30:00Z") and not fired.uids
    assert jobevents.Fired.from_dict(None) is None
    assert jobevents.Fired.from_dict({"uids": {}}) is None
