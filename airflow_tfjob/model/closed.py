"""The TFJob CRD's schema, read as a closed one: the one validator of every manifest and model dict.

``tfjob_schema.json`` is ``spec.versions[0].schema.openAPIV3Schema`` of the training operator's CRD
(v1.9.4; ``tests/data/kubeflow.org_tfjobs.yaml``, whose provenance ``tests/data/README.md`` gives;
``tests/unit/model/test_schema.py`` keeps the two identical). The API server enforces it with a 422
after the request is sent; checking it here turns a bad ``tfjob_template`` or ``pod_template`` into
a ``TFJobSpecError`` naming the field, with nothing sent.

One walk checks what the schema says (types, int-or-string, required fields, the quantities'
patterns) and what it leaves open. The TFJob CRD never says ``additionalProperties: false``, so JSON
Schema lets an unknown key through, and the API server then prunes it without a word: a
``nodeSelecter``, a ``value_from`` (what a client model's ``to_dict()`` gives) or a ``restartPolcy``
would be dropped, and the job would run on the wrong nodes, without the value or with another
policy. Here every object the schema describes with ``properties`` is closed (no schema node
preserves unknown fields, and maps such as ``labels`` or ``resources.limits`` have an
``additionalProperties`` schema of their own and stay open); the metadata at the root, which the
schema leaves as a bare object, is checked against ObjectMeta's fields by ``core``.

Lists marked ``x-kubernetes-list-type: map`` are keyed by their ``x-kubernetes-list-map-keys`` (env
and containers by name, ports by containerPort and protocol, volumeMounts by mountPath, ...) and
``set`` lists hold distinct items: duplicates are refused naming both entries.

Pure Python over the packaged schema, read on first use only: a model built with dicts is checked at
DAG parse time for the cost of a walk (no ``jsonschema`` to import, whose messages and first-error
choice differed from this walk's anyway: one set of messages now).
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow_tfjob.model.errors import TFJobSpecError

SCHEMA_FILE = "tfjob_schema.json"
_TEMPLATE = (
    "properties",
    "spec",
    "properties",
    "tfReplicaSpecs",
    "additionalProperties",
    "properties",
    "template",
)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_LISTED = 12


@functools.cache
def tree() -> dict[str, Any]:
    """The packaged schema, parsed once per process and shared: do not modify it."""
    path = Path(__file__).with_name(SCHEMA_FILE)
    if path.is_file():
        text = path.read_text("utf-8")
    else:  # installed in a zip: importlib.resources costs ~20 ms to import, so only then
        import importlib.resources

        text = importlib.resources.files(__package__).joinpath(SCHEMA_FILE).read_text("utf-8")
    return dict(json.loads(text))


def node(*path: str) -> dict[str, Any]:
    """The schema node at ``path`` (keys of the schema itself: ``properties``, ``items``, ...)."""
    here: dict[str, Any] = tree()
    for key in path:
        here = here[key]
    return here


def pod_template() -> dict[str, Any]:
    """The node of ``tfReplicaSpecs.<type>.template`` (a PodTemplateSpec)."""
    return node(*_TEMPLATE)


def pod_spec_field(name: str) -> dict[str, Any]:
    """The node of one PodSpec field, e.g. ``tolerations``."""
    return node(*_TEMPLATE, "properties", "spec", "properties", name)


def container_field(name: str) -> dict[str, Any]:
    """The node of one Container field, e.g. ``env``."""
    spec = ("properties", "spec", "properties")
    return node(*_TEMPLATE, *spec, "containers", "items", "properties", name)


def check(value: Any, schema_node: Mapping[str, Any], field: str) -> None:
    """Raise ``TFJobSpecError`` at the first unknown field, wrong type, missing required field
    or duplicate key of a keyed list in ``value``; ``field`` is its path for the messages."""
    _walk(value, schema_node, field)


def key_path(path: str, key: object) -> str:
    """``path.key``, or ``path['key']`` when the key is not an identifier."""
    return (
        f"{path}.{key}" if isinstance(key, str) and _IDENTIFIER.match(key) else f"{path}[{key!r}]"
    )


def _walk(value: Any, schema_node: Mapping[str, Any], path: str) -> None:
    if schema_node.get("x-kubernetes-preserve-unknown-fields"):
        return
    _check_type(value, schema_node, path)
    if isinstance(value, dict):
        properties: Mapping[str, Any] = schema_node.get("properties") or {}
        extra = schema_node.get("additionalProperties")
        if "properties" not in schema_node and not isinstance(extra, Mapping):
            return  # a bare object (ObjectMeta at the root), checked by core.object_meta
        if not isinstance(extra, Mapping):  # unknown keys first: a to_dict() has snake_case
            for key in value:  # keys, and None values that would hide them behind type errors
                if key not in properties:
                    raise unknown_field(path, key, properties)
        for key in schema_node.get("required", ()):
            if key not in value:
                raise TFJobSpecError(
                    key_path(path, key), None, "is required by the TFJob CRD's schema"
                )
        for key, item in value.items():
            if key in properties:
                _walk(item, properties[key], key_path(path, key))
            elif isinstance(extra, Mapping):
                _walk(item, extra, key_path(path, key))
    elif isinstance(value, list) and isinstance(schema_node.get("items"), Mapping):
        for i, item in enumerate(value):
            _walk(item, schema_node["items"], f"{path}[{i}]")
        list_type = schema_node.get("x-kubernetes-list-type")
        if list_type == "map":
            keyed(value, schema_node["x-kubernetes-list-map-keys"], schema_node["items"], path)
        elif list_type == "set":
            _distinct(value, path)


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


_SECRET = re.compile(r"\.env\[\d+\]\.value$")
"""An env var's value: its type is shown in an error, never the value."""


def _check_type(value: Any, schema_node: Mapping[str, Any], path: str) -> None:
    pattern = schema_node.get("pattern")
    if isinstance(value, str) and pattern and not re.search(pattern, value):  # re caches it
        raise TFJobSpecError(
            path, value, f"must match {pattern} (the TFJob CRD's schema)", show_value=True
        )
    if schema_node.get("x-kubernetes-int-or-string"):
        wanted, ok = "an integer or a string", isinstance(value, (int, str))
        ok = ok and not isinstance(value, bool)
    elif "type" in schema_node:
        kind = schema_node["type"]
        ok = isinstance(value, _JSON_TYPES.get(kind, (object,)))
        if kind == "integer" and isinstance(value, float):
            ok = value.is_integer()
        if kind in {"integer", "number"} and isinstance(value, bool):
            ok = False
        wanted = f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"
    else:
        return
    if not ok:
        raise TFJobSpecError(
            path,
            value,
            f"must be {wanted} (the TFJob CRD's schema)",
            show_value=value is None or not _SECRET.search(path),
        )


def unknown_field(path: str, key: object, known: Mapping[str, Any]) -> TFJobSpecError:
    """The error for ``key``, not a field of the object at ``path``, with the likely fix."""
    return TFJobSpecError(
        key_path(path, key),
        key,
        "is not a field here, and the API server would drop it without a word; "
        + suggestion(key, known),
    )


def suggestion(key: object, known: Mapping[str, Any] | list[str]) -> str:
    """ "did you mean nodeSelector?" (close matches, camelCase for snake_case), or the fields."""
    names = sorted(known)
    if isinstance(key, str):
        camel = _camel(key)
        if camel != key and camel in names:
            return (
                f"did you mean {camel}? Kubernetes spells fields in camelCase (a client model's "
                "to_dict() gives snake_case: pass the model itself, or its camelCase dict)"
            )
        lowered = {name.lower(): name for name in names}
        close = difflib.get_close_matches(key.lower(), list(lowered), n=2, cutoff=0.75)
        if close:
            return f"did you mean {' or '.join(lowered[c] for c in close)}?"
    shown = ", ".join(names[:_MAX_LISTED]) + (", ..." if len(names) > _MAX_LISTED else "")
    return f"the fields here are {shown}" if names else "this object has no fields"


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def keyed(
    items: list[Any], keys: list[str], item_node: Mapping[str, Any] | None, path: str
) -> None:
    """Refuse two entries of ``items`` with equal ``keys`` (a key's schema default stands in
    for a missing key, as the API server defaults it: ports' protocol is TCP)."""
    properties = (item_node or {}).get("properties", {})
    seen: dict[tuple[Any, ...], int] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        values = []
        for key in keys:
            value = item.get(key, properties.get(key, {}).get("default"))
            if value is None or isinstance(value, (dict, list)):
                break  # a missing key is the required check's; an odd one the type check's
            values.append(value)
        else:
            identity = tuple(values)
            if identity in seen:
                shown: Any = (
                    identity[0] if len(keys) == 1 else dict(zip(keys, identity, strict=True))
                )
                listed = " and ".join(keys)
                raise TFJobSpecError(
                    f"{path}[{i}]",
                    shown,
                    f"same {listed} as {path}[{seen[identity]}]: this list is keyed by "
                    f"{listed}, and Kubernetes refuses duplicates",
                )
            seen[identity] = i


def _distinct(items: list[Any], path: str) -> None:
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        text = json.dumps(item, sort_keys=True)
        if text in seen:
            raise TFJobSpecError(
                f"{path}[{i}]",
                item,
                f"same as {path}[{seen[text]}]: this list is a set, and Kubernetes refuses "
                "duplicates",
            )
        seen[text] = i
