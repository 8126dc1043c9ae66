"""The TFJob CRD's own schema, checked before any API call.

``tfjob_schema.json`` is ``spec.versions[0].schema.openAPIV3Schema`` of the training operator's
CRD (v1.9.4; ``tests/data/kubeflow.org_tfjobs.yaml``, whose provenance ``tests/data/README.md``
gives; ``tests/unit/model/test_schema.py`` keeps the two identical). The API server enforces it
with a 422 after the request is sent; checking it here turns a bad ``tfjob_template`` or
``pod_template`` into a ``TFJobSpecError`` naming the field, with nothing sent. ``jsonschema``
(an Airflow dependency) is imported on first use only: DAG parsing never pays for it.

``check`` then reads the schema as a closed one and applies Kubernetes' cheap core rules
(``closed``, ``core``): what the server would prune silently or refuse later is refused too.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from airflow_tfjob.model import closed, core
from airflow_tfjob.model.closed import SCHEMA_FILE
from airflow_tfjob.model.errors import TFJobSpecError

__all__ = ["SCHEMA_FILE", "check", "load"]
_MAX_ALLOWED_CHARS = 120


def load() -> dict[str, Any]:
    """The schema as JSON (a copy of its own)."""
    return copy.deepcopy(closed.tree())


@functools.cache
def _validator() -> Any:
    import jsonschema

    schema = closed.tree()
    return jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)(schema)


def check(manifest: dict[str, Any], field: str) -> None:
    """Raise ``TFJobSpecError`` at the first place ``manifest`` breaks the CRD's schema, read as
    a closed one, or Kubernetes' core rules; ``field`` names the argument it came from
    (``tfjob_template``, ``manifest``)."""
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator().iter_errors(manifest))
    if error is None:
        core.manifest(manifest, field)
        return
    parts = list(error.absolute_path)
    path = ".".join(str(part) for part in parts)
    secret = len(parts) >= 3 and parts[-1] == "value" and parts[-3] == "env"
    expected = repr(error.validator_value)
    if len(expected) > _MAX_ALLOWED_CHARS:
        expected = expected[: _MAX_ALLOWED_CHARS - 3] + "..."
    raise TFJobSpecError(
        f"{field}.{path}" if path else field,
        error.instance,
        f"the TFJob CRD's schema requires {error.validator}: {expected}",
        show_value=not secret,  # an env value's type is shown, never the value
    )
