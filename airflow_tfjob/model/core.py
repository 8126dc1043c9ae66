"""Kubernetes' own checks of a pod, the cheap ones, applied before anything is sent.

The CRD's schema knows types, not rules: requests above limits, a toleration ``operator: Maybe``,
a mount of an undeclared volume, an image with a space, a sidecar without an image all pass it,
and the API server, the training operator's webhook or the kubelet refuse them after the TFJob
exists. These are the rules of Kubernetes' core validation (``pkg/apis/core/validation``) and of
the webhook (CONTRACT.md) for the fields a TFJob's pod templates carry, no stricter: the same
checks run on the model's pods and on a ``tfjob_template``'s.

The functions trust the types (the closed schema walk ran first) but do not crash on wrong ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from airflow_tfjob.model import checks, closed, enums, resources, tfconfig
from airflow_tfjob.model.enums import RestartPolicy
from airflow_tfjob.model.errors import TFJobSpecError

CONTAINER_NAME = "tensorflow"
"""The operator finds the training container by this name."""
TOLERATION_OPERATORS = ("Exists", "Equal")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
PULL_POLICIES = ("Always", "Never", "IfNotPresent")
POD_RESTART_POLICIES = ("Always", "OnFailure", "Never")
PROTOCOLS = ("TCP", "UDP", "SCTP")
OBJECT_META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
"""ObjectMeta's fields (the CRD's schema leaves the root ``metadata`` a bare object)."""
_WHITESPACE = re.compile(r"\s")


def manifest(value: Mapping[str, Any], field: str) -> None:
    """The closed schema, keyed lists and core rules for a whole TFJob manifest."""
    closed.check(value, closed.tree(), field)
    meta = value.get("metadata")
    if meta is not None:
        object_meta(meta, f"{field}.metadata")
    specs = (value.get("spec") or {}).get("tfReplicaSpecs") or {}
    if not isinstance(specs, dict):
        return
    for rtype, rspec in specs.items():
        if not isinstance(rspec, dict) or not isinstance(rspec.get("template"), dict):
            continue
        where = closed.key_path(f"{field}.spec.tfReplicaSpecs", rtype)
        pod_template(
            rspec["template"],
            f"{where}.template",
            restart_policy=_pod_restart_policy(rspec.get("restartPolicy")),
            set_it=f"{where}.restartPolicy",
        )
    no_tf_config(
        specs,
        lambda rtype, i, j: (
            closed.key_path(f"{field}.spec.tfReplicaSpecs", rtype)
            + f".template.spec.containers[{i}].env[{j}].name"
        ),
    )


def _pod_restart_policy(replica_policy: object) -> str | None:
    """The pod ``restartPolicy`` the operator writes for a replica policy (None: unparsable)."""
    if replica_policy is None:
        return RestartPolicy.NEVER.value  # the operator's default
    try:
        parsed = enums.parse(RestartPolicy, replica_policy, "restartPolicy")
    except TFJobSpecError:
        return None  # the replica's own check says so, with its path
    return pod_restart_policy(parsed)


def pod_restart_policy(policy: RestartPolicy) -> str:
    """What the operator makes of a replica's policy at pod level (``ExitCode`` is ``Never``)."""
    return RestartPolicy.NEVER.value if policy is RestartPolicy.EXIT_CODE else policy.value


def object_meta(meta: Any, field: str) -> None:
    """ObjectMeta's fields only; valid labels and annotations."""
    if not isinstance(meta, dict):
        raise TFJobSpecError(field, meta, "must be an object (ObjectMeta)")
    for key in meta:
        if key not in OBJECT_META_FIELDS:
            raise closed.unknown_field(field, key, dict.fromkeys(OBJECT_META_FIELDS))
    _labels_and_annotations(meta, field)


def _labels_and_annotations(meta: dict[str, Any], field: str) -> None:
    if meta.get("labels") is not None:
        checks.label_map(meta["labels"], f"{field}.labels")
    if meta.get("annotations") is not None:
        checks.annotation_map(meta["annotations"], f"{field}.annotations")


def pod_template(
    template: dict[str, Any], field: str, *, restart_policy: str | None, set_it: str
) -> None:
    """A replica's pod template; ``restart_policy`` is the one the operator will write on the pod
    (``set_it`` says where the user sets it), so a different one in the template is refused."""
    meta = template.get("metadata")
    if isinstance(meta, dict):
        _labels_and_annotations(meta, f"{field}.metadata")
    spec = template.get("spec")
    if isinstance(spec, dict):
        pod_spec(spec, f"{field}.spec", restart_policy=restart_policy, set_it=set_it)


def pod_spec(spec: dict[str, Any], field: str, *, restart_policy: str | None, set_it: str) -> None:
    """A PodSpec: restart policy, names, node selector, tolerations, volumes, containers."""
    policy = spec.get("restartPolicy")
    if policy is not None:
        one_of(policy, POD_RESTART_POLICIES, f"{field}.restartPolicy")
        if restart_policy is not None and policy != restart_policy:
            raise TFJobSpecError(
                f"{field}.restartPolicy",
                policy,
                f"the training operator replaces a pod's restartPolicy with its replica's "
                f"({restart_policy!r}), so this one would be ignored: set {set_it} instead",
            )
    for key in ("serviceAccountName", "serviceAccount"):
        if spec.get(key) is not None:
            checks.dns1123_subdomain(spec[key], f"{field}.{key}")
    if spec.get("nodeSelector") is not None:
        checks.label_map(spec["nodeSelector"], f"{field}.nodeSelector")
    for i, item in enumerate(_list(spec.get("tolerations"))):
        toleration(item, f"{field}.tolerations[{i}]")
    declared = volumes(_list(spec.get("volumes")), f"{field}.volumes")
    names: dict[str, str] = {}
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        for i, item in enumerate(_list(spec.get(kind))):
            where = f"{field}.{kind}[{i}]"
            if kind == "ephemeralContainers":
                raise TFJobSpecError(
                    f"{field}.{kind}",
                    spec[kind],
                    "cannot be set when a pod is created (Kubernetes adds them to running pods "
                    "only, e.g. with kubectl debug)",
                    show_value=False,
                )
            name = container(item, where, declared)
            if name in names:
                raise TFJobSpecError(
                    f"{where}.name",
                    name,
                    f"is also the name of {names[name]}: a pod's containers and init "
                    "containers need distinct names",
                )
            names[name] = where
    if isinstance(spec.get("resources"), dict):  # pod-level resources
        resources.check_requirements(spec["resources"], f"{field}.resources")


def _list(value: object) -> list[Any]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def one_of(value: object, allowed: tuple[str, ...], field: str) -> str:
    """``value`` if it is one of ``allowed`` (exact spelling, as Kubernetes compares)."""
    if not isinstance(value, str) or value not in allowed:
        raise TFJobSpecError(field, value, f"must be one of {', '.join(map(repr, allowed))}")
    return value


def toleration(item: dict[str, Any], field: str) -> None:
    """Kubernetes' ``validateTolerations``, for one toleration."""
    key = item.get("key") or ""
    operator = item.get("operator") or "Equal"
    if key:
        checks.qualified_name(key, f"{field}.key")
    if item.get("operator") not in (None, ""):
        one_of(item["operator"], TOLERATION_OPERATORS, f"{field}.operator")
    if item.get("effect") not in (None, ""):
        one_of(item["effect"], TAINT_EFFECTS, f"{field}.effect")
    if not key and operator != "Exists":
        raise TFJobSpecError(
            f"{field}.operator",
            item.get("operator"),
            "must be 'Exists' when the key is empty (which tolerates every taint)",
        )
    value = item.get("value") or ""
    if operator == "Exists" and value:
        raise TFJobSpecError(f"{field}.value", value, "must be empty when operator is 'Exists'")
    if isinstance(value, str):
        checks.label_value(value, f"{field}.value")
    if item.get("tolerationSeconds") is not None and item.get("effect") != "NoExecute":
        raise TFJobSpecError(
            f"{field}.tolerationSeconds",
            item["tolerationSeconds"],
            "applies to effect 'NoExecute' only: set effect: NoExecute, or drop it",
        )


def volumes(items: list[dict[str, Any]], field: str) -> set[str]:
    """The names of a pod's volumes, each a DNS-1123 label."""
    names = set()
    for i, item in enumerate(items):
        if item.get("name") is not None:
            names.add(checks.dns1123_label(item["name"], f"{field}[{i}].name"))
    return names


def container(item: dict[str, Any], field: str, declared: set[str] | None) -> str:
    """One container (or init container): name, image, pull policy, env names, ports,
    resources, and mounts of volumes the pod declares (when ``declared`` is known)."""
    name = checks.dns1123_label(item.get("name"), f"{field}.name")
    image = item.get("image")
    if name != CONTAINER_NAME or image not in (None, ""):  # tensorflow's may come from image=
        image_reference(image, f"{field}.image")
    if item.get("imagePullPolicy") not in (None, ""):
        one_of(item["imagePullPolicy"], PULL_POLICIES, f"{field}.imagePullPolicy")
    for i, env in enumerate(_list(item.get("env"))):
        checks.env_name(env.get("name"), f"{field}.env[{i}].name")
    port_names: dict[str, int] = {}
    for i, port in enumerate(_list(item.get("ports"))):
        where = f"{field}.ports[{i}]"
        if port.get("protocol") is not None:
            one_of(port["protocol"], PROTOCOLS, f"{where}.protocol")
        if isinstance(port.get("containerPort"), int):
            checks.integer(
                port["containerPort"], f"{where}.containerPort", minimum=1, maximum=65535
            )
        port_name = port.get("name")
        if port_name:
            if port_name in port_names:
                raise TFJobSpecError(
                    f"{where}.name",
                    port_name,
                    f"is also the name of {field}.ports[{port_names[port_name]}]: a "
                    "container's port names are distinct",
                )
            port_names[port_name] = i
    if isinstance(item.get("resources"), dict):
        resources.check_requirements(item["resources"], f"{field}.resources")
    if declared is not None:
        for kind in ("volumeMounts", "volumeDevices"):
            for i, mount in enumerate(_list(item.get(kind))):
                mounted = mount.get("name")
                if isinstance(mounted, str) and mounted not in declared:
                    raise undeclared_volume(f"{field}.{kind}[{i}].name", mounted, declared)
    return name


def undeclared_volume(field: str, name: str, declared: set[str]) -> TFJobSpecError:
    """The error for a mount of a volume the pod does not declare."""
    known = ", ".join(sorted(declared)) or "none"
    return TFJobSpecError(
        field,
        name,
        f"names no volume of the pod (its volumes: {known}); declare it in volumes, or "
        "the API server refuses the pod",
    )


def image_reference(value: object, field: str) -> str:
    """A container image: a non-empty string without whitespace (Kubernetes refuses leading or
    trailing whitespace, and the container runtime any other: the pod would never start)."""
    if not isinstance(value, str) or not value or _WHITESPACE.search(value):
        raise TFJobSpecError(
            field,
            value,
            ("every container needs an image: " if value is None else "")
            + "must be a non-empty image reference without whitespace, e.g. "
            "'tensorflow/tensorflow:2.16.1'",
        )
    return value


def no_tf_config(specs: Mapping[str, Any], field_of: Callable[[str, int, int], str]) -> None:
    """Refuse a ``TF_CONFIG`` of the user's on the ``tensorflow`` container of a distributed job:
    the operator appends its own after it, so the user's would be ignored. ``field_of(replica
    type, container index, env index)`` names the entry."""
    counts = {}
    for rtype, rspec in specs.items():
        replicas = rspec.get("replicas", 1) if isinstance(rspec, dict) else 0
        counts[rtype] = replicas if isinstance(replicas, int) else 0
    if not tfconfig.is_distributed(counts):
        return
    for rtype, rspec in specs.items():
        spec = ((rspec or {}).get("template") or {}).get("spec") or {}
        for i, item in enumerate(_list(spec.get("containers"))):
            if item.get("name") != CONTAINER_NAME:
                continue
            for j, env in enumerate(_list(item.get("env"))):
                if env.get("name") == "TF_CONFIG":
                    raise TFJobSpecError(
                        field_of(rtype, i, j),
                        "TF_CONFIG",
                        f"the training operator sets TF_CONFIG on the '{CONTAINER_NAME}' "
                        "container of a job with more than one replica, after yours, so yours "
                        "would be ignored: drop it (the operator's TF_CONFIG describes the whole "
                        "cluster)",
                    )
