"""Plain JSON from the kubernetes client's model objects, without importing the client.

Users may pass ``V1Toleration``, ``V1Volume``, ``V1PodTemplateSpec`` and friends; their classes
carry ``openapi_types`` and ``attribute_map`` (snake_case -> camelCase), which is all we need.
Importing ``kubernetes`` here would put ~0.5 s on every DAG parse.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_tfjob.model.errors import TFJobSpecError

_SCALARS = (str, int, float, bool, type(None))


def to_json(value: Any, field: str) -> Any:
    """Recursively convert client models, mappings and sequences into JSON-ready values."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if hasattr(value, "openapi_types") and hasattr(value, "attribute_map"):
        return {
            value.attribute_map[attr]: to_json(getattr(value, attr), f"{field}.{attr}")
            for attr in value.openapi_types
            if getattr(value, attr) is not None
        }
    if isinstance(value, Mapping):
        return {str(key): to_json(item, f"{field}[{key!r}]") for key, item in value.items()}
    if isinstance(value, Sequence):
        return [to_json(item, f"{field}[{i}]") for i, item in enumerate(value)]
    raise TFJobSpecError(
        field,
        value,
        "must be JSON data (dicts, lists, strings, numbers) or a kubernetes client model",
    )


def object_list(value: Any, field: str) -> list[dict[str, Any]]:
    """A list of JSON objects (e.g. tolerations or volumes)."""
    if value is None:
        return []
    if isinstance(value, (str, Mapping)) or not isinstance(value, Sequence):
        raise TFJobSpecError(field, value, "must be a list of objects (dicts or client models)")
    items = to_json(list(value), field)
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise TFJobSpecError(
                f"{field}[{i}]", item, "must be an object (a dict or a client model)"
            )
    return list(items)
