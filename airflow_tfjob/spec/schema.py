"""The TFJob CRD's own schema, checked before any API call.

``tfjob_schema.json`` is ``spec.versions[0].schema.openAPIV3Schema`` of the training operator's
CRD (v1.9.4; ``tests/data/kubeflow.org_tfjobs.yaml``, whose provenance ``tests/data/README.md``
gives; ``tests/unit/spec/test_schema.py`` keeps the two identical). The API server enforces it
with a 422 after the request is sent; checking it here turns a bad ``tfjob_template`` or
``pod_template`` into a ``TFJobSpecError`` naming the field, with nothing sent. ``jsonschema``
(an Airflow dependency) is imported on first use only: DAG parsing never pays for it.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from typing import Any

from airflow_tfjob.spec.errors import TFJobSpecError

SCHEMA_FILE = "tfjob_schema.json"
_MAX_ALLOWED_CHARS = 120


def load() -> dict[str, Any]:
    """The schema as JSON."""
    text = importlib.resources.files(__package__).joinpath(SCHEMA_FILE).read_text("utf-8")
    return dict(json.loads(text))


@functools.cache
def _validator() -> Any:
    import jsonschema

    schema = load()
    return jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)(schema)


def check(manifest: dict[str, Any], field: str) -> None:
    """Raise ``TFJobSpecError`` at the first place ``manifest`` breaks the CRD's schema;
    ``field`` names the argument it came from (``tfjob_template``, ``manifest``)."""
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator().iter_errors(manifest))
    if error is None:
        return
    path = ".".join(str(part) for part in error.absolute_path)
    expected = repr(error.validator_value)
    if len(expected) > _MAX_ALLOWED_CHARS:
        expected = expected[: _MAX_ALLOWED_CHARS - 3] + "..."
    raise TFJobSpecError(
        f"{field}.{path}" if path else field,
        error.instance,
        f"the TFJob CRD's schema requires {error.validator}: {expected}",
    )
