"""``Resources``: CPU, memory, GPU and ephemeral storage of a replica group, as flytekit has it.

A plain mapping works too, with either our names (``mem``, ``gpu``, ``ephemeral_storage``) or the
Kubernetes ones (``memory``, ``ephemeral-storage``, ``nvidia.com/gpu`` or any extended resource).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal

from airflow_tfjob.model import checks, quantity
from airflow_tfjob.model.errors import TFJobSpecError

Quantity = str | int | float
DEFAULT_GPU_RESOURCE = "nvidia.com/gpu"

# Our field name -> the Kubernetes resource name (gpu is resolved per instance).
_K8S_NAMES = {"cpu": "cpu", "mem": "memory", "ephemeral_storage": "ephemeral-storage"}
_ALIASES = {"memory": "mem", "ephemeral-storage": "ephemeral_storage"}


@dataclass(frozen=True)
class Resources:
    """Resource amounts for the ``tensorflow`` container of every replica in a group."""

    cpu: Quantity | None = None
    """CPU cores: ``2``, ``0.5`` or ``"500m"``."""
    mem: Quantity | None = None
    """Memory: ``"4Gi"``, ``"512Mi"``."""
    gpu: Quantity | None = None
    """Whole GPUs, sent as ``gpu_resource_name``."""
    ephemeral_storage: Quantity | None = None
    """Scratch disk: ``"10Gi"``."""
    gpu_resource_name: str = DEFAULT_GPU_RESOURCE
    """The extended resource a ``gpu`` becomes (``amd.com/gpu`` on AMD nodes)."""

    def __post_init__(self) -> None:
        extended_name(self.gpu_resource_name, "Resources.gpu_resource_name")
        self.to_k8s("Resources")

    def to_k8s(self, field: str) -> dict[str, str]:
        """The Kubernetes ``resources.requests``/``limits`` mapping, validated."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "gpu_resource_name" or value is None:
                continue
            name = self.gpu_resource_name if f.name == "gpu" else _K8S_NAMES[f.name]
            out[name] = quantity.normalize(value, f"{field}.{f.name}")
        if self.gpu is not None and quantity.to_decimal(out[self.gpu_resource_name]) % 1:
            raise TFJobSpecError(f"{field}.gpu", self.gpu, "GPUs are whole devices: use an integer")
        return out


def to_k8s(value: Resources | Mapping[str, Quantity] | None, field: str) -> dict[str, str]:
    """``Resources``, a mapping or None as the Kubernetes mapping; errors name ``field``."""
    if value is None:
        return {}
    if isinstance(value, Resources):
        return value.to_k8s(field)
    if not isinstance(value, Mapping):
        raise TFJobSpecError(
            field, value, "must be Resources(cpu=..., mem=..., gpu=...) or a mapping of quantities"
        )
    out: dict[str, str] = {}
    spelled: dict[str, str] = {}  # Kubernetes name -> the key that gave it
    for key, amount in value.items():
        name = _ALIASES.get(key, key)
        if name == "gpu":
            given = Resources(gpu=amount).to_k8s(field)
        elif name in _K8S_NAMES:
            given = {_K8S_NAMES[name]: quantity.normalize(amount, f"{field}.{key}")}
        elif isinstance(key, str) and "/" in key:  # extended resource, e.g. "amd.com/gpu"
            given = {
                extended_name(key, f"{field}.{key}"): quantity.normalize(amount, f"{field}.{key}")
            }
        else:
            raise TFJobSpecError(
                f"{field}.{key}",
                amount,
                "unknown resource; use cpu, mem (or memory), gpu, ephemeral_storage, "
                "or an extended resource name containing '/' such as 'nvidia.com/gpu'",
            )
        for k8s_name, text in given.items():
            if k8s_name in out:
                first = spelled[k8s_name]
                raise TFJobSpecError(
                    f"{field}.{key}",
                    amount,
                    f"conflicts with {field}.{first} = {value[first]!r}: both give "
                    f"{k8s_name!r}; give it once",
                )
            out[k8s_name], spelled[k8s_name] = text, key
    return out


def extended_name(name: object, field: str) -> str:
    """An extended resource name such as ``nvidia.com/gpu``: a qualified name with a domain."""
    if not isinstance(name, str) or "/" not in name:
        raise TFJobSpecError(
            field, name, "must be an extended resource name with a domain, e.g. 'nvidia.com/gpu'"
        )
    return checks.qualified_name(name, field)


def check_requests_within_limits(
    requests: dict[str, str], limits: dict[str, str], field: str
) -> dict[str, str]:
    """Raise when a request exceeds its limit; return limits completed for extended resources.

    Kubernetes requires extended resources (GPUs) to have a limit equal to the request, so a GPU
    given only as a request is copied to the limits, and unequal ones are an error.
    """
    limits = dict(limits)
    for name, request in requests.items():
        extended = "/" in name
        if name not in limits:
            if extended:
                limits[name] = request
            continue
        req, lim = quantity.to_decimal(request), quantity.to_decimal(limits[name])
        if extended and req != lim:
            raise TFJobSpecError(
                f"{field}.requests[{name!r}]",
                request,
                f"extended resources need requests equal to limits ({limits[name]!r})",
            )
        if req > lim:
            raise TFJobSpecError(
                f"{field}.requests[{name!r}]",
                request,
                f"must not exceed {field}.limits[{name!r}] = {limits[name]!r}",
            )
    return limits


_STANDARD = frozenset({"cpu", "memory", "ephemeral-storage"})


def resource_name(name: object, field: str) -> str:
    """A container resource name as Kubernetes accepts it: a standard one (``cpu``, ``memory``,
    ``ephemeral-storage``, ``hugepages-<size>``) or a qualified name with a domain."""
    if isinstance(name, str) and "/" in name:
        return checks.qualified_name(name, field)
    if isinstance(name, str) and (name in _STANDARD or name.startswith("hugepages-")):
        return name
    raise TFJobSpecError(
        field,
        name,
        "must be cpu, memory, ephemeral-storage, hugepages-<size>, or an extended resource "
        "with a domain such as 'nvidia.com/gpu'",
    )


def _overcommittable(name: str) -> bool:
    native = "/" not in name or "kubernetes.io/" in name
    return native and not name.startswith("hugepages-")


def check_requirements(value: Mapping[str, object], field: str) -> None:
    """A raw ``resources`` object (from a template) as Kubernetes validates it: resource names,
    quantities, requests <= limits, and requests equal to limits for what cannot be
    overcommitted (extended resources such as GPUs, huge pages), which also need a limit."""
    given: dict[str, Mapping[object, object]] = {}
    amounts: dict[str, dict[str, Decimal]] = {}
    for kind in ("requests", "limits"):
        raw = value.get(kind)
        given[kind] = raw if isinstance(raw, Mapping) else {}
        amounts[kind] = {}
        for name, amount in given[kind].items():
            where = f"{field}.{kind}[{name!r}]"
            text = quantity.normalize(amount, where)
            amounts[kind][resource_name(name, where)] = quantity.to_decimal(text)
    limits = amounts["limits"]
    for name, request in amounts["requests"].items():
        where, limit_field = f"{field}.requests[{name!r}]", f"{field}.limits[{name!r}]"
        shown = given["requests"][name]
        if _overcommittable(name):
            if name in limits and request > limits[name]:
                raise TFJobSpecError(
                    where, shown, f"must not exceed {limit_field} = {given['limits'][name]!r}"
                )
        elif name not in limits:
            raise TFJobSpecError(
                where, shown, f"cannot be overcommitted: set {limit_field} to the same amount"
            )
        elif request != limits[name]:
            raise TFJobSpecError(
                where,
                shown,
                f"cannot be overcommitted: must equal {limit_field} = {given['limits'][name]!r}",
            )
