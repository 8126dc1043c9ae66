"""What the spec tests assert of every refusal: a ``TFJobSpecError`` whose message starts with the
field's path and the value it got."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from airflow_tfjob import TFJobSpecError


def refusal(build: Callable[[], object]) -> str:
    """The message of the ``TFJobSpecError`` that ``build()`` raises, checked to name its field."""
    with pytest.raises(TFJobSpecError) as info:
        build()
    assert str(info.value).startswith(f"{info.value.field}: got ")
    return str(info.value)
