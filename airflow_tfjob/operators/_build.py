"""Turn the operator's arguments and the task context into the manifest it submits.

Shared by ``execute`` and the dry run (``python -m airflow_tfjob render``), so what the dry run
prints is exactly what a run would send.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from airflow_tfjob.spec import (
    TfJob,
    TFJobSpecError,
    checks,
    naming,
    schema,
    template,
    validate_name,
)


def load_template(value: Mapping[str, Any] | str) -> dict[str, Any]:
    """A rendered ``tfjob_template``: a mapping, or YAML/JSON text (a file Airflow has read)."""
    if isinstance(value, Mapping):
        return dict(value)
    import yaml

    try:
        loaded = yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise TFJobSpecError("tfjob_template", value, f"is not valid YAML or JSON: {exc}") from None
    if not isinstance(loaded, dict):
        raise TFJobSpecError(
            "tfjob_template", value, "must hold a mapping (a TFJob manifest or its spec)"
        )
    return loaded


PARSE_CONTEXT: Mapping[str, Any] = {
    "ti": SimpleNamespace(dag_id="parse-check", task_id="parse-check", map_index=-1, try_number=1),
    "run_id": "parse-check",
}
"""Stands in for a task context when a manifest is built at parse time, only to be checked."""


def identity(context: Mapping[str, Any]) -> tuple[str, str, str, int, int]:
    """(dag_id, task_id, run_id, map_index, try_number) of the running task instance."""
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    return (
        ti.dag_id,
        ti.task_id,
        str(context["run_id"]),
        -1 if map_index is None else int(map_index),
        int(ti.try_number or 1),
    )


def build(
    *,
    context: Mapping[str, Any],
    tfjob: TfJob | None,
    tfjob_template: Mapping[str, Any] | str | None,
    name: str | None,
    namespace: str,
    image: str | None,
    command: list[str] | None,
    args: list[str] | None,
    env: dict[str, str] | None,
    labels: dict[str, str] | None,
    annotations: dict[str, str] | None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The manifest and the labels that identify this task instance's jobs."""
    dag_id, task_id, run_id, map_index, try_number = identity(context)
    job_name = validate_name(name or naming.job_name(dag_id, task_id, run_id, map_index))
    ours = naming.task_labels(dag_id, task_id, run_id, map_index, try_number)
    all_labels = {**checks.label_map(labels, "labels"), **ours}
    all_annotations = {
        **checks.annotation_map(annotations, "annotations"),
        **naming.task_annotations(dag_id, task_id, run_id, map_index),
    }
    if tfjob_template is not None:
        manifest = _from_template(
            raw=tfjob_template,
            name=job_name,
            namespace=namespace,
            image=image,
            labels=all_labels,
            annotations=all_annotations,
        )
        _template_defaults(manifest, command=command, args=args, env=env)
    else:
        job = (tfjob or TfJob()).with_defaults(command=command, args=args, env=env)
        manifest = job.to_manifest(
            job_name, namespace, image=image, labels=all_labels, annotations=all_annotations
        )
    # what the API server would refuse with a 422, refused here: nothing is sent
    schema.check(manifest, "tfjob_template" if tfjob_template is not None else "manifest")
    return manifest, naming.identity(ours)


def _template_defaults(
    manifest: dict[str, Any],
    *,
    command: list[str] | None,
    args: list[str] | None,
    env: dict[str, str] | None,
) -> None:
    """The operator's ``command``/``args`` for ``tensorflow`` containers without them, and its
    ``env`` under each container's own (the template's value wins), as for a ``TfJob``."""
    command = checks.string_list(command, "command") if command is not None else None
    args = checks.string_list(args, "args") if args is not None else None
    extra = checks.string_map(env, "env", secret_values=True)
    for name in extra:
        checks.env_name(name, f"env[{name!r}]")
    for rspec in manifest["spec"]["tfReplicaSpecs"].values():
        for container in rspec["template"]["spec"]["containers"]:
            if container.get("name") != "tensorflow":
                continue
            if command is not None and not container.get("command"):
                container["command"] = list(command)
            if args is not None and not container.get("args"):
                container["args"] = list(args)
            own = {item.get("name") for item in container.get("env") or []}
            added = [{"name": k, "value": v} for k, v in extra.items() if k not in own]
            if added:
                container["env"] = [*added, *(container.get("env") or [])]


def _from_template(
    *,
    raw: Mapping[str, Any] | str,
    name: str,
    namespace: str,
    image: str | None,
    labels: dict[str, str],
    annotations: dict[str, str],
) -> dict[str, Any]:
    manifest = template.normalize(load_template(raw))
    meta = manifest.setdefault("metadata", {})
    meta.update(name=name, namespace=checks.dns1123_label(namespace, "namespace"))
    meta["labels"] = {**(meta.get("labels") or {}), **labels}
    meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
    for rtype in template.images_missing(manifest):
        if not image:
            raise TFJobSpecError(
                f"tfjob_template.spec.tfReplicaSpecs.{rtype}",
                None,
                "the 'tensorflow' container needs an image, or pass image= to the operator",
            )
        for container in manifest["spec"]["tfReplicaSpecs"][rtype]["template"]["spec"][
            "containers"
        ]:
            if container.get("name") == "tensorflow":
                container["image"] = image
    json.dumps(manifest)  # must be plain JSON: fail here, not in the client
    return manifest
