"""``TfJob``: the whole job description, and its rendering into a ``kubeflow.org/v1`` manifest.

Defaults, each chosen on purpose (see the README):

- one worker and no chief, PS or evaluator when a group is left out;
- one replica for a group passed without ``replicas``;
- ``RestartPolicy.NEVER`` for every group; ``CleanPodPolicy.RUNNING`` for the job.

Rendering is deterministic: the same description gives byte-identical JSON, so a resubmitted task
can compare what it would create with what exists.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

from airflow_tfjob.model import checks, core, enums
from airflow_tfjob.model.enums import SuccessPolicy
from airflow_tfjob.model.errors import TFJobSpecError, TFJobSpecWarning
from airflow_tfjob.model.kube import KubeObject, ObjectMeta
from airflow_tfjob.model.policy import RunPolicy
from airflow_tfjob.model.replicas import PS, Chief, Evaluator, ReplicaGroup, Worker

API_VERSION = "kubeflow.org/v1"
KIND = "TFJob"
# Longest pod/service suffix the operator appends for a group of one: "-evaluator-0".
LONGEST_SUFFIX = len("-evaluator-0")
MAX_NAME_LENGTH = checks.DNS_LABEL_MAX - LONGEST_SUFFIX


def validate_name(name: object, field: str = "name") -> str:
    """A TFJob name that the operator can turn into valid pod and service names."""
    checks.dns1035_label(name, field)
    assert isinstance(name, str)
    if len(name) > MAX_NAME_LENGTH:
        raise TFJobSpecError(
            field,
            name,
            f"is {len(name)} characters; at most {MAX_NAME_LENGTH} are allowed because the "
            "operator "
            f"names pods and services '<name>-evaluator-0', which must fit in 63 characters",
        )
    return name


def _merge_env(defaults: dict[str, str], own: Any) -> Any:
    if own is None:
        return dict(defaults)
    if isinstance(own, dict):
        return {**defaults, **own}
    names = {getattr(item, "name", None) or item.get("name") for item in own}
    extra = [{"name": k, "value": v} for k, v in defaults.items() if k not in names]
    return [*extra, *own]


@dataclass(frozen=True)
class _Slot:
    attr: str
    group: type[ReplicaGroup]
    legacy: str
    default_replicas: int
    maximum: int


@dataclass(frozen=True)
class TfJob:
    """A distributed TensorFlow job: its replica groups and run policy."""

    chief: Chief | None = None
    """The chief (coordinator) group; none by default."""
    ps: PS | None = None
    """Parameter servers; none by default."""
    worker: Worker | None = None
    """Workers; one by default."""
    evaluator: Evaluator | None = None
    """The evaluator; none by default."""
    run_policy: RunPolicy | None = None
    """Run policy; ``RunPolicy()`` by default."""
    num_workers: int | None = None
    """Deprecated: use ``worker=Worker(replicas=N)``."""
    num_ps_replicas: int | None = None
    """Deprecated: use ``ps=PS(replicas=N)``."""
    num_chief_replicas: int | None = None
    """Deprecated: use ``chief=Chief(replicas=N)``."""
    num_evaluator_replicas: int | None = None
    """Deprecated: use ``evaluator=Evaluator(replicas=N)``."""
    success_policy: SuccessPolicy | str | None = None
    """``ALL_WORKERS`` to require every worker to succeed (jobs without a chief)."""
    enable_dynamic_worker: bool | None = None
    """Let workers join and leave (sparse ``TF_CONFIG``)."""

    _SLOTS: ClassVar[tuple[_Slot, ...]] = (
        _Slot("chief", Chief, "num_chief_replicas", 0, 1),
        _Slot("ps", PS, "num_ps_replicas", 0, checks.INT32_MAX),
        _Slot("worker", Worker, "num_workers", 1, checks.INT32_MAX),
        _Slot("evaluator", Evaluator, "num_evaluator_replicas", 0, 1),
    )

    def __post_init__(self) -> None:
        for slot in self._SLOTS:
            self._resolve(slot)
        if self.run_policy is None:
            object.__setattr__(self, "run_policy", RunPolicy())
        elif not isinstance(self.run_policy, RunPolicy):
            raise TFJobSpecError("TfJob.run_policy", self.run_policy, "must be a RunPolicy")
        if self.success_policy is not None:
            parsed = enums.parse(SuccessPolicy, self.success_policy, "TfJob.success_policy")
            object.__setattr__(self, "success_policy", parsed)
        if self.enable_dynamic_worker is not None and not isinstance(
            self.enable_dynamic_worker, bool
        ):
            raise TFJobSpecError(
                "TfJob.enable_dynamic_worker", self.enable_dynamic_worker, "must be a bool"
            )
        self._check_topology()

    def _resolve(self, slot: _Slot) -> None:
        group = getattr(self, slot.attr)
        legacy = getattr(self, slot.legacy)
        field = f"TfJob.{slot.attr}"
        if group is not None and not isinstance(group, slot.group):
            raise TFJobSpecError(field, group, f"must be a {slot.group.__name__}(...) or None")
        replicas = None if group is None else group.replicas
        if legacy is not None:
            warnings.warn(
                f"TfJob.{slot.legacy} is deprecated; use "
                f"TfJob({slot.attr}={slot.group.__name__}(replicas={legacy!r}))",
                DeprecationWarning,
                stacklevel=4,
            )
            checks.integer(legacy, f"TfJob.{slot.legacy}")
            if replicas is not None:
                raise TFJobSpecError(
                    f"TfJob.{slot.legacy}",
                    legacy,
                    f"conflicts with {slot.attr}.replicas={replicas}; give only "
                    f"{slot.group.__name__}(replicas=...)",
                )
            replicas = legacy
        if replicas is None:
            replicas = 1 if group is not None else slot.default_replicas
        group = group if group is not None else slot.group()
        if replicas > slot.maximum:
            raise TFJobSpecError(
                f"{slot.group.__name__}.replicas",
                replicas,
                f"TensorFlow's cluster spec allows at most {slot.maximum} {slot.attr}",
            )
        object.__setattr__(self, slot.attr, dataclasses.replace(group, replicas=replicas))
        object.__setattr__(self, slot.legacy, None)

    def _check_topology(self) -> None:
        counts = self.replica_counts()
        if counts["Chief"] == 0 and counts["Worker"] == 0:
            raise TFJobSpecError(
                "TfJob.worker",
                self.worker,
                "a job needs a chief or at least one worker, or it can never succeed: "
                "add Worker(replicas=1) or Chief()",
            )
        if counts["PS"] and not counts["Chief"]:
            warnings.warn(
                "TfJob has PS replicas but no chief: ParameterServerStrategy needs a coordinator; "
                "add chief=Chief() unless worker 0 coordinates",
                TFJobSpecWarning,
                stacklevel=4,
            )

    def groups(self) -> list[ReplicaGroup]:
        """The four groups in manifest order (Chief, PS, Worker, Evaluator), empty ones included."""
        return [getattr(self, slot.attr) for slot in self._SLOTS]

    def replica_counts(self) -> dict[str, int]:
        """Replicas per type, e.g. ``{"Chief": 1, "PS": 0, "Worker": 2, "Evaluator": 0}``."""
        return {g.replica_type: int(g.replicas or 0) for g in self.groups()}

    def with_defaults(
        self,
        *,
        command: list[str] | None = None,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> TfJob:
        """A copy whose groups take ``command``/``args`` when they have none; ``env`` entries are
        added under each group's own (the group's value wins)."""
        # the operator's own arguments: checked here, named as the operator's (not a group's)
        command = checks.string_list(command, "command") if command is not None else None
        args = checks.string_list(args, "args") if args is not None else None
        env = checks.string_map(env, "env", secret_values=True) if env is not None else None
        for name in env or {}:
            checks.env_name(name, f"env[{name!r}]")
        changes: dict[str, Any] = {}
        for group in self.groups():
            fields: dict[str, Any] = {}
            if command is not None and group.command is None:
                fields["command"] = command
            if args is not None and group.args is None:
                fields["args"] = args
            if env:
                fields["env"] = _merge_env(env, group.env)
            if fields:
                changes[type(group).replica_type.lower()] = dataclasses.replace(group, **fields)
        return dataclasses.replace(self, **changes) if changes else self

    def to_manifest(
        self,
        name: str,
        namespace: str,
        *,
        image: str | None = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
    ) -> KubeObject:
        """The TFJob as a ``kubeflow.org/v1`` manifest, ready for the API server."""
        metadata = ObjectMeta(
            name=validate_name(name), namespace=checks.dns1123_label(namespace, "namespace")
        )
        if checked_labels := checks.label_map(labels, "labels"):
            metadata["labels"] = checked_labels
        if checked_annotations := checks.annotation_map(annotations, "annotations"):
            metadata["annotations"] = checked_annotations
        if image is not None:
            core.image_reference(image, "image")
        specs = {
            g.replica_type: g.replica_spec(int(g.replicas or 0), image)
            for g in self.groups()
            if g.replicas
        }
        core.no_tf_config(specs, lambda rtype, _i, _j: f"{rtype}.env['TF_CONFIG']")
        assert self.run_policy is not None
        spec: dict[str, Any] = {"tfReplicaSpecs": specs, "runPolicy": self.run_policy.to_k8s()}
        if self.success_policy is not None:
            spec["successPolicy"] = SuccessPolicy(self.success_policy).value
        if self.enable_dynamic_worker is not None:
            spec["enableDynamicWorker"] = self.enable_dynamic_worker
        return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}
