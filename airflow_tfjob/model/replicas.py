"""The four replica groups of a TFJob: ``Chief``, ``PS``, ``Worker`` and ``Evaluator``.

The first five parameters, in order, are flytekit's (image, requests, limits, replicas,
restart_policy); the rest are ours and cover what a pod needs most often, with ``pod_template`` as
the escape hatch for everything else (deep-merged under our fields, see ``podtemplate``).

``replicas=None`` means "the default": one replica for a group you pass explicitly; ``TfJob``
decides for the groups you leave out (one worker, no chief, PS or evaluator).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from airflow_tfjob.model import checks, closed, core, enums, jsonable, podtemplate, resources
from airflow_tfjob.model.enums import RestartPolicy
from airflow_tfjob.model.errors import TFJobSpecError

CONTAINER_NAME = core.CONTAINER_NAME
"""The operator finds the training container by this name."""
PORT_NAME = "tfjob-port"
DEFAULT_PORT = 2222
DEFAULT_RESTART_POLICY = RestartPolicy.NEVER

EnvSpec = Mapping[str, str] | Sequence[Any]


@dataclass(frozen=True)
class ReplicaGroup:
    """Settings shared by every replica of one type; use the concrete subclasses."""

    image: str | None = None
    """Container image; falls back to the operator's ``image`` argument."""
    requests: resources.Resources | Mapping[str, resources.Quantity] | None = None
    """Resources the scheduler reserves per replica."""
    limits: resources.Resources | Mapping[str, resources.Quantity] | None = None
    """Hard per-replica limits; every request must be <= its limit."""
    replicas: int | None = None
    """How many replicas; None is the default (see the module docstring)."""
    restart_policy: RestartPolicy | str | None = None
    """What the operator does when a replica exits; default ``RestartPolicy.NEVER``."""
    command: Sequence[str] | None = None
    """Container entrypoint, as a list: ``["python", "train.py"]``."""
    args: Sequence[str] | None = None
    """Arguments for the entrypoint, as a list."""
    env: EnvSpec | None = None
    """Environment: a ``{name: value}`` mapping or a list of ``V1EnvVar`` (or dicts)."""
    node_selector: Mapping[str, str] | None = None
    """Pod ``nodeSelector``."""
    tolerations: Sequence[Any] | None = None
    """Pod tolerations: ``V1Toleration`` objects or dicts."""
    affinity: Any = None
    """Pod affinity: a ``V1Affinity`` or its dict."""
    labels: Mapping[str, str] | None = None
    """Extra labels on each replica pod."""
    annotations: Mapping[str, str] | None = None
    """Extra annotations on each replica pod."""
    service_account_name: str | None = None
    """The pods' service account."""
    volumes: Sequence[Any] | None = None
    """Pod volumes: ``V1Volume`` objects or dicts."""
    volume_mounts: Sequence[Any] | None = None
    """Mounts on the ``tensorflow`` container: ``V1VolumeMount`` objects or dicts."""
    pod_template: Any = None
    """A ``V1PodTemplateSpec`` or dict, deep-merged under everything above."""

    replica_type: ClassVar[str] = ""
    """The key in ``spec.tfReplicaSpecs``."""

    def __post_init__(self) -> None:
        if not self.replica_type:
            raise TypeError("use Chief, PS, Worker or Evaluator, not ReplicaGroup")
        if self.replicas is not None:
            checks.integer(self.replicas, self._field("replicas"))
        policy = self.restart_policy
        if policy is not None:
            object.__setattr__(
                self,
                "restart_policy",
                enums.parse(RestartPolicy, policy, self._field("restart_policy")),
            )
        if self.image is not None:
            core.image_reference(self.image, self._field("image"))
        self._pod_template()  # validates every pod field now, at DAG parse time

    def _field(self, name: str) -> str:
        return f"{type(self).__name__}.{name}"

    @property
    def effective_restart_policy(self) -> RestartPolicy:
        """The policy sent to the operator (``NEVER`` when none was given)."""
        policy = self.restart_policy
        return policy if isinstance(policy, RestartPolicy) else DEFAULT_RESTART_POLICY

    def replica_spec(self, replicas: int, default_image: str | None) -> dict[str, Any]:
        """The ``spec.tfReplicaSpecs[<type>]`` entry."""
        template = self._pod_template()
        main = podtemplate.container(template, CONTAINER_NAME)
        image = self.image or (main or {}).get("image") or default_image
        if not image:
            raise TFJobSpecError(
                self._field("image"),
                None,
                f"set {type(self).__name__}(image=...), pass image= to the operator, or give the "
                f"'{CONTAINER_NAME}' container an image in pod_template",
            )
        template = podtemplate.merge(
            template, {"spec": {"containers": [{"name": CONTAINER_NAME, "image": image}]}}
        )
        return {
            "replicas": replicas,
            "restartPolicy": self.effective_restart_policy.value,
            "template": template,
        }

    def _free_form(self) -> bool:
        """Whether any field takes the user's own dicts or client models (checked against the
        closed schema: only then is the schema read, so a plain model never pays for it)."""
        given = (self.pod_template, self.tolerations, self.affinity, self.volumes)
        if any(value is not None for value in (*given, self.volume_mounts)):
            return True
        return self.env is not None and not isinstance(self.env, Mapping)

    def _pod_template(self) -> dict[str, Any]:
        where = self._field("pod_template")
        base = podtemplate.normalize(self.pod_template, where) if self.pod_template else {}
        base.setdefault("spec", {}).setdefault("containers", [])
        if self.pod_template:
            closed.check(base, closed.pod_template(), where)
        ours: dict[str, Any] = {"spec": self._pod_spec(base)}
        metadata = {
            "labels": checks.label_map(self.labels, self._field("labels")),
            "annotations": checks.annotation_map(self.annotations, self._field("annotations")),
        }
        if any(metadata.values()):
            ours["metadata"] = {k: v for k, v in metadata.items() if v}
        template = dict(podtemplate.merge(base, ours))
        if self._free_form():  # keyed lists again, across what the merge put together
            closed.check(template, closed.pod_template(), where)
        core.pod_template(
            template,
            where,
            restart_policy=core.pod_restart_policy(self.effective_restart_policy),
            set_it=f"{type(self).__name__}(restart_policy=...)",
        )
        return template

    def _pod_spec(self, base: dict[str, Any]) -> dict[str, Any]:
        volumes = self._checked_list("volumes", closed.pod_spec_field)
        core.volumes(volumes, self._field("volumes"))
        declared = {
            v["name"]
            for v in volumes + base["spec"].get("volumes", [])
            if isinstance(v.get("name"), str)
        }
        spec: dict[str, Any] = {"containers": [self._container(base, declared)]}
        optional = {
            "nodeSelector": checks.label_map(self.node_selector, self._field("node_selector")),
            "tolerations": self._checked_list("tolerations", closed.pod_spec_field),
            "volumes": volumes,
        }
        spec.update({k: v for k, v in optional.items() if v})
        for i, item in enumerate(spec.get("tolerations", [])):
            core.toleration(item, f"{self._field('tolerations')}[{i}]")
        if self.affinity is not None:
            affinity = jsonable.to_json(self.affinity, self._field("affinity"))
            spec["affinity"] = checks.mapping(
                affinity, self._field("affinity"), "a V1Affinity or its dict"
            )
            closed.check(affinity, closed.pod_spec_field("affinity"), self._field("affinity"))
        if self.service_account_name is not None:
            spec["serviceAccountName"] = checks.dns1123_subdomain(
                self.service_account_name, self._field("service_account_name")
            )
        return spec

    def _checked_list(
        self, attr: str, schema_of: Callable[[str], dict[str, Any]], key: str = ""
    ) -> list[dict[str, Any]]:
        """One of our list fields as JSON objects, checked against the closed schema."""
        field = self._field(attr)
        items = jsonable.object_list(getattr(self, attr), field)
        if items:
            closed.check(items, schema_of(key or attr), field)
        return items

    def _container(self, base: dict[str, Any], declared: set[str]) -> dict[str, Any]:
        container: dict[str, Any] = {"name": CONTAINER_NAME}
        if self.command is not None:
            container["command"] = checks.string_list(self.command, self._field("command"))
        if self.args is not None:
            container["args"] = checks.string_list(self.args, self._field("args"))
        env = self._env()
        if env:
            container["env"] = env
        compute = self._resources()
        if compute:
            container["resources"] = compute
        theirs = base["spec"]["containers"]
        index = next((k for k, c in enumerate(theirs) if c.get("name") == CONTAINER_NAME), None)
        existing = theirs[index] if index is not None else {}
        if not any(_is_tfjob_port(port) for port in existing.get("ports", [])):
            container["ports"] = [{"name": PORT_NAME, "containerPort": DEFAULT_PORT}]
        mounts = self._checked_list("volume_mounts", closed.container_field, "volumeMounts")
        where = f"{self._field('pod_template')}.spec.containers[{index}].volumeMounts"
        self._check_mounts(mounts, existing.get("volumeMounts", []), declared, where)
        if mounts:
            container["volumeMounts"] = mounts
        return container

    def _check_mounts(
        self, mounts: list[dict[str, Any]], theirs: list[Any], declared: set[str], where: str
    ) -> None:
        """Our mounts name declared volumes, and take no path that a mount of another name in
        the template's ``tensorflow`` container takes (the merge would keep both)."""
        field = self._field("volume_mounts")
        paths = {m.get("mountPath"): (j, m.get("name")) for j, m in enumerate(theirs)}
        for i, mount in enumerate(mounts):
            name = mount.get("name")
            if name not in declared:
                raise core.undeclared_volume(f"{field}[{i}].name", str(name), declared)
            j, other = paths.get(mount.get("mountPath"), (None, name))
            if other != name:
                raise TFJobSpecError(
                    f"{field}[{i}].mountPath",
                    mount.get("mountPath"),
                    f"is also the mountPath of {where}[{j}] (volume {other!r}): a path takes "
                    "one mount",
                )

    def _resources(self) -> dict[str, dict[str, str]]:
        requests = resources.to_k8s(self.requests, self._field("requests"))
        limits = resources.to_k8s(self.limits, self._field("limits"))
        limits = resources.check_requests_within_limits(requests, limits, type(self).__name__)
        return {k: v for k, v in (("requests", requests), ("limits", limits)) if v}

    def _env(self) -> list[dict[str, Any]]:
        field = self._field("env")
        if self.env is None:
            return []
        if isinstance(self.env, Mapping):
            values = checks.string_map(self.env, field, secret_values=True)
            return [
                {"name": checks.env_name(k, f"{field}[{k!r}]"), "value": v}
                for k, v in values.items()
            ]
        items = jsonable.object_list(self.env, field)
        closed.check(items, closed.container_field("env"), field)
        for i, item in enumerate(items):
            checks.env_name(item.get("name"), f"{field}[{i}].name")
        return items


def _is_tfjob_port(port: Any) -> bool:
    """A template's port that takes the place of ours: named ``tfjob-port``, or on 2222/TCP
    (adding ours too would make two ports of one key; the operator then uses 2222 anyway)."""
    if not isinstance(port, dict):
        return False
    return port.get("name") == PORT_NAME or (
        port.get("containerPort") == DEFAULT_PORT and port.get("protocol", "TCP") == "TCP"
    )


@dataclass(frozen=True)
class Chief(ReplicaGroup):
    """The coordinator: its success is the job's success. At most one."""

    replica_type: ClassVar[str] = "Chief"


@dataclass(frozen=True)
class PS(ReplicaGroup):
    """Parameter servers for ``ParameterServerStrategy``; they never exit on their own."""

    replica_type: ClassVar[str] = "PS"


@dataclass(frozen=True)
class Worker(ReplicaGroup):
    """Training workers; without a chief, worker 0 decides the job's success."""

    replica_type: ClassVar[str] = "Worker"


@dataclass(frozen=True)
class Evaluator(ReplicaGroup):
    """A side-car evaluator that reads checkpoints; at most one, and its failure fails the job."""

    replica_type: ClassVar[str] = "Evaluator"
