"""``LogCursor``: a follow that starts again — in the same process, or in another one from a
stored position — prints no line twice and loses none."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_tfjob.backends.kubernetes.logcursor import LogCursor

LOG = [
    "2026-12-06T10:00:00.100000000Z one",
    "2026-12-06T10:00:01.200000000Z two",
    "2026-12-06T10:00:01.200000000Z two again, same stamp",
    "2026-12-06T10:00:02.000000000Z three",
]


def _printed(cursor: LogCursor, lines: list[str]) -> list[str]:
    return [text for line in lines if (text := cursor.accept(line)) is not None]


def test_a_cursor_taken_up_from_its_stored_position_goes_on_where_it_stopped() -> None:
    first = LogCursor()
    assert first.begin() is None  # from the start
    assert _printed(first, LOG[:3]) == ["one", "two", "two again, same stamp"]
    stored = json.loads(json.dumps(first.position()))  # as an XCom keeps it
    assert stored == ["2026-12-06T10:00:01.200000000Z", 2, 3]

    second = LogCursor.at(stored)
    assert second.begin() == "2026-12-06T10:00:01Z"  # the log API's whole-second sinceTime
    # the API answers from that second on: both lines of the stored stamp were printed before
    assert _printed(second, LOG[1:]) == ["three"]
    assert second.lines == 4


@pytest.mark.parametrize(
    "position",
    [None, [], ["", 0, 0], ["2026-12-06T10:00:01.2Z", 0, 3], ["x", 2, 1], {"stamp": "x"}, 7],
)
def test_a_position_it_cannot_read_starts_from_the_beginning(position: Any) -> None:
    cursor = LogCursor.at(position)
    assert cursor.begin() is None and cursor.lines == 0
    assert _printed(cursor, LOG) == ["one", "two", "two again, same stamp", "three"]
