"""Turn the operator's arguments and the task context into the manifest it submits.

Shared by ``execute`` and the dry run (``python -m airflow_tfjob render``), so what the dry run
prints is exactly what a run would send.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any, cast

from airflow_tfjob.model import (
    TfJob,
    TFJobSpecError,
    checks,
    core,
    naming,
    template,
    validate_name,
)
from airflow_tfjob.model.job import MAX_NAME_LENGTH
from airflow_tfjob.model.kube import KubeObject, ObjectMeta
from airflow_tfjob.rules import backstop


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
    namespace: str | None,
    connection_namespace: str | None,
    image: str | None,
    command: list[str] | None,
    args: list[str] | None,
    env: dict[str, str] | None,
    labels: dict[str, str] | None,
    annotations: dict[str, str] | None,
    deployment: str | None = None,
    provider_annotations: Mapping[str, str] | None = None,
    backstop_seconds: int | None = None,
    name_limit: int = MAX_NAME_LENGTH,
) -> tuple[KubeObject, dict[str, str]]:
    """The manifest and the labels that identify this task instance's jobs.

    Its namespace: the task's ``namespace``, else the template's ``metadata.namespace``, else
    ``connection_namespace`` (the connection's), else ``default``. ``deployment`` is labelled
    (see ``naming.DEPLOYMENT_LABEL``), ``provider_annotations`` added to the task's own, and
    ``backstop_seconds`` becomes ``runPolicy.activeDeadlineSeconds`` unless the job sets one.
    """
    dag_id, task_id, run_id, map_index, try_number = identity(context)
    loaded = None if tfjob_template is None else template.normalize(load_template(tfjob_template))
    meta = _template_metadata(loaded, name=name, namespace=namespace)
    namespace = namespace or meta.get("namespace") or connection_namespace or "default"
    derived = naming.job_name(dag_id, task_id, run_id, map_index, limit=name_limit)
    job_name = validate_name(name or meta.get("name") or derived)
    ours = naming.task_labels(dag_id, task_id, run_id, map_index, try_number, deployment=deployment)
    identity_labels = naming.identity(ours)
    all_labels, all_annotations = _metadata(
        labels,
        annotations,
        meta,
        ours,
        {
            **naming.task_annotations(dag_id, task_id, run_id, map_index),
            **(provider_annotations or {}),
        },
    )
    if loaded is not None:
        metadata = ObjectMeta(name=job_name, labels=all_labels, annotations=all_annotations)
        manifest = _from_template(loaded, metadata, namespace=namespace, image=image)
        _template_defaults(manifest, command=command, args=args, env=env)
    else:
        job = (tfjob or TfJob()).with_defaults(command=command, args=args, env=env)
        manifest = job.to_manifest(
            job_name, namespace, image=image, labels=all_labels, annotations=all_annotations
        )
    label_pods(manifest, identity_labels)
    if backstop_seconds is not None:
        backstop.apply(manifest, backstop_seconds)
    # what the API server would refuse with a 422, refused here: nothing is sent
    core.manifest(manifest, "tfjob_template" if tfjob_template is not None else "manifest")
    return manifest, identity_labels


def _metadata(
    labels: dict[str, str] | None,
    annotations: dict[str, str] | None,
    meta: ObjectMeta,
    our_labels: dict[str, str],
    our_annotations: dict[str, str],
) -> tuple[dict[str, str], dict[str, str]]:
    """The job's labels and annotations: the task's, the template's and ours, merged."""
    return merge_metadata(
        "labels",
        checks.label_map(labels, "labels"),
        checks.label_map(meta.get("labels"), "tfjob_template.metadata.labels"),
        our_labels,
    ), merge_metadata(
        "annotations",
        checks.annotation_map(annotations, "annotations"),
        checks.annotation_map(meta.get("annotations"), "tfjob_template.metadata.annotations"),
        our_annotations,
    )


def label_pods(manifest: KubeObject, labels: dict[str, str]) -> None:
    """Put the task instance's identity ``labels`` on each replica's pod template: the training
    operator copies them to the pods (a TrainJob's runtime patch carries them: ``rules.trainjob``),
    so a task's pods are found by them (``kubectl get pods -l airflow-tfjob/dag-id=...``), and the
    shared pod watch of a TFJob selects ours (``naming.POD_SELECTOR``): pods Airflow did not create
    cost it nothing. A template label under the provider's prefix is refused (it would lose to the
    provider's)."""
    for rtype, rspec in manifest["spec"]["tfReplicaSpecs"].items():
        pod = rspec["template"]
        meta = pod.get("metadata") or {}
        own = meta.get("labels") or {}
        for key, value in own.items():
            if key.startswith(f"{naming.LABEL_PREFIX}/"):
                raise TFJobSpecError(
                    f"tfReplicaSpecs.{rtype}.template.metadata.labels[{key!r}]",
                    value,
                    f"is reserved: the provider puts '{naming.LABEL_PREFIX}/...' labels on each "
                    "replica's pods itself, to find the pods of each task instance",
                )
        rest = {key: value for key, value in pod.items() if key != "metadata"}
        rspec["template"] = {"metadata": {**meta, "labels": {**own, **labels}}, **rest}


def _template_defaults(
    manifest: KubeObject,
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


def _template_metadata(
    manifest: KubeObject | None, *, name: str | None, namespace: str | None
) -> ObjectMeta:
    """The template's ``metadata``, refused where the task's arguments say otherwise: a name
    or namespace that would silently lose to the operator's, or a ``generateName``."""
    if manifest is None:
        return {}
    meta = manifest.get("metadata") or {}
    if meta.get("generateName"):
        raise TFJobSpecError(
            "tfjob_template.metadata.generateName",
            meta["generateName"],
            "is not used: the provider names each job after its task instance, so a retry "
            "finds it (give metadata.name or name= for a fixed name)",
        )
    for field, given in (("name", name), ("namespace", namespace)):
        own = meta.get(field)
        if own and given and own != given:
            raise TFJobSpecError(
                f"tfjob_template.metadata.{field}",
                own,
                f"differs from the task's {field} {given!r}: give one of the two",
            )
    return cast(ObjectMeta, dict(meta))  # a copy


def no_reserved_keys(values: Mapping[str, str], field: str) -> None:
    """Refuse a label or annotation the provider sets itself (its prefix, and ``managed-by`` with
    another value): it finds the jobs of each task instance by them, so the user's would lose."""
    for key, value in values.items():
        if key.startswith(f"{naming.LABEL_PREFIX}/") or naming.MANAGED_BY.get(key, value) != value:
            ours = ", ".join(f"{k}={v}" for k, v in naming.MANAGED_BY.items())
            raise TFJobSpecError(
                f"{field}[{key!r}]",
                value,
                f"is reserved: the provider sets '{naming.LABEL_PREFIX}/...' keys and {ours} "
                "itself, to find the jobs of each task instance",
            )


def merge_metadata(
    field: str, given: dict[str, str], from_template: Mapping[str, str], ours: dict[str, str]
) -> dict[str, str]:
    """Labels or annotations: the template's, the task's ``labels=``/``annotations=`` and the
    provider's own. A key under the provider's prefix is refused (the provider finds its jobs
    by it), and so is one key given two values (one would silently lose)."""
    no_reserved_keys(given, field)
    no_reserved_keys(from_template, f"tfjob_template.metadata.{field}")
    for key, value in given.items():
        if key in from_template and from_template[key] != value:
            raise TFJobSpecError(
                f"{field}[{key!r}]",
                value,
                f"differs from tfjob_template.metadata.{field}[{key!r}] = "
                f"{from_template[key]!r}: give the key once",
            )
    return {**from_template, **given, **ours}


def _from_template(
    manifest: KubeObject, metadata: ObjectMeta, *, namespace: str, image: str | None
) -> KubeObject:
    """The template with the job's ``metadata`` (name, labels, annotations) and namespace, and
    ``image`` in its containers that have none."""
    meta = manifest.setdefault("metadata", {})
    meta.update(metadata)
    meta["namespace"] = checks.dns1123_label(namespace, "namespace")
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
