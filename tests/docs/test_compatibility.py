"""docs/compatibility.md's table of features by Airflow minor, against the installed Airflow.

The CI matrix runs the fast tier on each supported minor (.ci/matrix), so each minor checks its
own column: a feature ``features`` finds is "yes" there, and one it does not is not.
"""

from __future__ import annotations

import logging

import pytest
from airflow import __version__ as airflow_version

from airflow_tfjob import features
from tests.docs.markdown import ROOT, Table, code_spans, tables

MINOR = ".".join(airflow_version.split(".")[:2])


def _table() -> Table:
    found = [t for t in tables(ROOT / "docs" / "compatibility.md") if t.heading == "Airflow minors"]
    assert len(found) == 1, "docs/compatibility.md has one table under 'Airflow minors'"
    return found[0]


def _detected() -> list[list[str]]:
    table = _table()
    detected_by = table.column("detected by")
    return [row for row in table.rows if code_spans(row[detected_by])]


def test_the_table_has_a_column_for_the_installed_minor() -> None:
    assert MINOR in _table().header, f"no column for Airflow {MINOR} (installed: {airflow_version})"


@pytest.mark.parametrize("row", _detected(), ids=lambda row: code_spans(row[-1])[0])
def test_each_detected_feature_is_yes_exactly_where_it_is_found(row: list[str]) -> None:
    table = _table()
    (name,) = code_spans(row[table.column("detected by")])
    module, _, function = name.partition(".")
    assert module == "features", f"{name}: features are detected in airflow_tfjob/features.py"
    found = getattr(features, function)()
    cell = row[table.column(MINOR)]
    assert cell.startswith("yes") == found, (
        f"docs/compatibility.md says {cell!r} for Airflow {MINOR}, but {name}() is {found} on "
        f"{airflow_version}"
    )


def test_every_feature_function_is_in_the_table() -> None:
    documented = {code_spans(row[-1])[0] for row in _detected()}
    functions = {
        f"features.{name}"
        for name, value in vars(features).items()
        if callable(value) and not name.startswith("_") and name != "say_once"
        and getattr(value, "__module__", None) == features.__name__
    }  # fmt: skip
    assert functions == documented


def test_a_missing_feature_is_said_once_per_process(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test-features")
    caplog.set_level("WARNING", logger="test-features")
    features._said.discard("a-test-feature")
    for _ in range(3):
        features.say_once(log, "a-test-feature", "missing here: %s", "what you get instead")
    assert [r.getMessage() for r in caplog.records] == ["missing here: what you get instead"]
