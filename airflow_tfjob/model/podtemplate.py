"""Deep-merge of a user's ``pod_template`` (the escape hatch) with the fields we generate.

Rules, applied recursively, with our fields on top of the template:

- objects merge key by key;
- lists of named things (containers, initContainers, volumes, volumeMounts, env, ports) merge by
  ``name``: an entry of ours replaces the template's entry of that name field by field, entries
  only one side has are kept, the template's order first;
- tolerations are concatenated (without duplicates);
- any other list of ours replaces the template's.

The template and our fields are each checked against the closed schema before the merge, and the
merged pod again (``ReplicaGroup._pod_template``): a list Kubernetes keys otherwise than by name
(volumeMounts by mountPath, ports by containerPort and protocol) must not end up with two entries
of one key.
"""

from __future__ import annotations

import copy
from typing import Any

from airflow_tfjob.model import jsonable
from airflow_tfjob.model.errors import TFJobSpecError

NAMED_LISTS = frozenset({"containers", "initContainers", "volumes", "volumeMounts", "env", "ports"})
CONCAT_LISTS = frozenset({"tolerations"})


def normalize(value: Any, field: str) -> dict[str, Any]:
    """Check that a pod template is a ``V1PodTemplateSpec`` (or its dict) and return a copy."""
    template = jsonable.to_json(value, field)
    if not isinstance(template, dict) or not set(template) <= {"metadata", "spec"}:
        raise TFJobSpecError(
            field, value, "must be a V1PodTemplateSpec or a dict with only 'metadata' and 'spec'"
        )
    for key in ("metadata", "spec"):
        if not isinstance(template.get(key, {}), dict):
            raise TFJobSpecError(f"{field}.{key}", template[key], "must be an object")
    for i, container in enumerate(template.get("spec", {}).get("containers", [])):
        if not isinstance(container, dict) or not isinstance(container.get("name"), str):
            raise TFJobSpecError(
                f"{field}.spec.containers[{i}]", container, "every container needs a 'name'"
            )
    return copy.deepcopy(template)


def merge(base: Any, ours: Any, key: str = "") -> Any:
    """Return ``base`` with ``ours`` merged on top (neither argument is modified)."""
    if isinstance(base, dict) and isinstance(ours, dict):
        out = copy.deepcopy(base)
        for k, v in ours.items():
            out[k] = merge(base[k], v, k) if k in base else copy.deepcopy(v)
        return out
    if isinstance(base, list) and isinstance(ours, list):
        if key in NAMED_LISTS:
            return _merge_named(base, ours)
        if key in CONCAT_LISTS:
            return copy.deepcopy(base) + [item for item in ours if item not in base]
    return copy.deepcopy(ours)


def _merge_named(base: list[Any], ours: list[Any]) -> list[Any]:
    mine = {item.get("name"): item for item in ours if isinstance(item, dict)}
    out = [
        merge(item, mine.pop(item.get("name")), "") if item.get("name") in mine else item
        for item in copy.deepcopy(base)
    ]
    return out + [copy.deepcopy(item) for item in ours if item.get("name") in mine]


def container(template: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The template's container called ``name``, if any."""
    for item in template.get("spec", {}).get("containers", []):
        if item.get("name") == name:
            return dict(item)
    return None
