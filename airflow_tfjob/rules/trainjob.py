"""A TFJob manifest as a Kubeflow Trainer v2 ``TrainJob``, and the layout that lets
``rules.trainjobview`` read a TrainJob and its pods back as the TFJob and pods the rest of the
provider knows. Pure: no I/O.

Trainer v2 ships no TensorFlow runtime, and a TrainJob sets the image, command, env, resources
and count of one replicated job only (its runtime fixes the rest). So every replica of the job
runs as one pod of the single Indexed Job ``node`` of the runtime ``deploy/trainer/
tensorflow-runtime.yaml``: ``trainer.numNodes`` is the total replica count, ordered chief,
worker, ps, evaluator (``ORDER``), so completion index 0 is the chief, or worker 0 without one:
the runtime's Job succeeds when index 0 does, as a TFJob does. Each pod runs ``entry_script``, a
POSIX shell program that reads ``JOB_COMPLETION_INDEX`` (set by the Job controller), exports that
replica's ``TF_CONFIG`` (peers at ``<job>-node-0-<index>.<job>:<port>``, the names JobSet's
headless Service gives) and the replica type's own env, then execs its command.

What a TrainJob cannot carry is refused here with the reason (``TFJobSpecError``), before
anything is submitted; docs/trainer-v2.md lists every field and how each API carries it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from airflow_tfjob.model import quantity
from airflow_tfjob.model.errors import TFJobSpecError
from airflow_tfjob.model.kube import KubeObject, ObjectMeta
from airflow_tfjob.rules.entrypoint import STEP, EnvVar, Replica, entry_script

API_VERSION = "trainer.kubeflow.org/v1alpha1"
KIND = "TrainJob"
ORDER = ("Chief", "Worker", "PS", "Evaluator")
"""Replica types in completion-index order."""
LAYOUT_ANNOTATION = "airflow-tfjob/replica-layout"
"""On the TrainJob and each pod: ``Chief:1,Worker:2,PS:1`` (the index order)."""
PATCH_MANAGER = "airflow.apache.org/airflow-tfjob"
RUNTIMES = {"Never": "tensorflow-distributed", "ExitCode": "tensorflow-distributed-exitcode"}
"""The runtime for each restart policy (the runtime fixes it for every replica)."""
RUNTIME_BACKOFF = {"Never": 0, "ExitCode": 6}
DEFAULT_PORT = 2222
POD_NAME_MAX = 63
_POD_SUFFIX = 6  # "-" and the five random characters the Job controller adds
DERIVED_NAME_MAX = POD_NAME_MAX - len(f"-{STEP}-0-999") - _POD_SUFFIX
"""The longest name the provider derives for a TrainJob (46): its pods' names then fit for up
to 1,000 replicas. A name the author gives is checked against the job's own count."""
_SAME_POD_FIELDS = (
    "nodeSelector", "tolerations", "affinity", "serviceAccountName", "volumes",
    "imagePullSecrets", "securityContext", "schedulingGates", "terminationGracePeriodSeconds",
)  # fmt: skip
_CONTAINER_PATCH = ("volumeMounts", "securityContext")
_CONTAINER_OWN = ("name", "image", "command", "args", "env", "resources", "ports")
_CLEAN_POD_POLICIES = ("Running", None)


def _refuse(field: str, value: Any, why: str) -> TFJobSpecError:
    return TFJobSpecError(field, value, f"{why} (Kubeflow Trainer v2, docs/trainer-v2.md)")


def layout(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """``[(type, count)]`` in index order, types with no replica left out."""
    return [(rtype, counts[rtype]) for rtype in ORDER if counts.get(rtype)]


def layout_text(counts: Mapping[str, int]) -> str:
    return ",".join(f"{rtype}:{n}" for rtype, n in layout(counts))


def parse_layout(text: str) -> list[tuple[str, int]]:
    """The ``LAYOUT_ANNOTATION`` value read back (unknown text gives an empty layout)."""
    out = []
    for part in (text or "").split(","):
        rtype, _, count = part.partition(":")
        if rtype in ORDER and count.isdigit():
            out.append((rtype, int(count)))
    return out


def replica_at(parsed: Sequence[tuple[str, int]], index: int) -> tuple[str, int] | None:
    """``(type, index within type)`` of completion index ``index``."""
    first = 0
    for rtype, count in parsed:
        if index < first + count:
            return rtype, index - first
        first += count
    return None


class Resources(TypedDict, total=False):
    """``resourcesPerNode``: quantities by resource name."""

    requests: dict[str, str]
    limits: dict[str, str]


class Trainer(TypedDict, total=False):
    """A TrainJob's ``spec.trainer``: what it sets of the runtime's ``node`` Job."""

    image: str
    command: list[str]
    numNodes: int
    env: list[EnvVar]
    resourcesPerNode: Resources


class ContainerPatch(TypedDict, total=False):
    """What a runtime patch may set of the ``node`` container (Trainer v2.3.0's
    ``ContainerPatch``; env only through ``trainer.env``)."""

    name: str
    volumeMounts: list[Any]
    securityContext: Mapping[str, Any]


class PodTemplatePatch(TypedDict, total=False):
    """A runtime patch of the ``node`` pods: labels, annotations and the pod fields a manager
    may set (Trainer v2.3.0's ``PodSpecPatch``: ``_SAME_POD_FIELDS`` and ``containers``)."""

    metadata: ObjectMeta
    spec: Mapping[str, Any]


class RunFields(TypedDict, total=False):
    """What ``RunPolicy`` becomes among a TrainJob's ``spec`` fields."""

    activeDeadlineSeconds: int
    suspend: bool


def _same(values: Mapping[str, Any], field: str, why: str) -> Any:
    """The one value every replica type has for ``field``; refused when they differ."""
    distinct = list(values.values())
    for rtype, value in values.items():
        if value != distinct[0]:
            first = next(iter(values))
            raise _refuse(
                f"{rtype}.{field}", value,
                f"must equal {first}.{field} ({distinct[0]!r}): {why}",
            )  # fmt: skip
    return distinct[0] if distinct else None


def _split_env(
    containers: Mapping[str, Mapping[str, Any]],
) -> tuple[list[EnvVar], dict[str, list[EnvVar]]]:
    """The env every replica type shares (``trainer.env``), and each type's own plain values
    (set by the entry script). An entry ``valueFrom`` a Secret or field must be shared."""
    names: list[str] = []
    for container in containers.values():
        names += [e["name"] for e in container.get("env") or [] if e["name"] not in names]
    shared: list[EnvVar] = []
    own: dict[str, list[EnvVar]] = {rtype: [] for rtype in containers}
    for name in names:
        entries: dict[str, EnvVar | None] = {
            rtype: next((e for e in c.get("env") or [] if e["name"] == name), None)
            for rtype, c in containers.items()
        }
        first = entries[next(iter(entries))]
        if len({json.dumps(e, sort_keys=True) for e in entries.values()}) == 1 and first:
            shared.append(first)
            continue
        for rtype, entry in entries.items():
            if entry is not None and "valueFrom" in entry:
                raise _refuse(
                    f"{rtype}.env[{name!r}]", "valueFrom",
                    "a value from a Secret, ConfigMap or field must be the same on every "
                    "replica type: a TrainJob gives its replicas one env",
                )  # fmt: skip
            if entry is not None:
                own[rtype].append(entry)
    return shared, own


def _largest(resources: Mapping[str, Any]) -> Resources:
    """Every type's resources in one, as ``resourcesPerNode`` gives every replica the same: the
    largest request and the largest limit of each resource (a limit raised to the request it
    would otherwise fall below). So each replica gets at least what its type asked for."""
    out: Resources = {}
    for kind in ("requests", "limits"):
        merged: dict[str, str] = {}
        for res in resources.values():
            for key, value in ((res or {}).get(kind) or {}).items():
                old = merged.get(key)
                if old is None or quantity.to_decimal(str(value)) > quantity.to_decimal(old):
                    merged[key] = str(value)
        if merged:
            out[kind] = merged
    requests, limits = out.get("requests", {}), out.get("limits", {})
    for key, limit in limits.items():
        if key in requests and quantity.to_decimal(requests[key]) > quantity.to_decimal(limit):
            limits[key] = requests[key]
    return out


def _container(rtype: str, template: Mapping[str, Any]) -> Mapping[str, Any]:
    pod = template.get("spec") or {}
    containers = pod.get("containers") or []
    extra = [c.get("name") for c in containers if c.get("name") != "tensorflow"]
    if extra or pod.get("initContainers"):
        raise _refuse(
            f"{rtype}.pod_template.spec.containers", extra or "initContainers",
            "a TrainJob's pods have one container: sidecars and init containers are not carried",
        )  # fmt: skip
    container = dict(containers[0])
    for key, value in container.items():
        if key not in _CONTAINER_OWN + _CONTAINER_PATCH:
            raise _refuse(
                f"{rtype}.pod_template.spec.containers[0].{key}", value,
                f"a TrainJob sets only {', '.join(_CONTAINER_OWN + _CONTAINER_PATCH)} here",
            )  # fmt: skip
    for key in pod:
        if key not in (*_SAME_POD_FIELDS, "containers"):
            raise _refuse(
                f"{rtype}.pod_template.spec.{key}", pod[key],
                f"a TrainJob can set only {', '.join(_SAME_POD_FIELDS)} on its pods",
            )  # fmt: skip
    return container


def _port(container: Mapping[str, Any]) -> int:
    for port in container.get("ports") or []:
        if port.get("name") == "tfjob-port":
            return int(port.get("containerPort") or DEFAULT_PORT)
    return DEFAULT_PORT


def _run_policy(spec: Mapping[str, Any], restart: str) -> RunFields:
    """``spec.runPolicy`` as TrainJob fields; what a TrainJob has no place for is refused."""
    policy = dict(spec.get("runPolicy") or {})
    out: RunFields = {}
    if policy.get("cleanPodPolicy") not in _CLEAN_POD_POLICIES:
        raise _refuse(
            "RunPolicy.clean_pod_policy", policy["cleanPodPolicy"],
            "must be RUNNING: a TrainJob's Job stops its running pods when it ends and keeps "
            "the ended ones (use on_finish_action to delete the job)",
        )  # fmt: skip
    absent = (
        ("ttlSecondsAfterFinished", "ttl_seconds_after_finished"),
        ("schedulingPolicy", "scheduling_policy"),
        ("managedBy", "managed_by"),
    )
    for key, attr in absent:
        if policy.get(key) is not None:
            raise _refuse(
                f"RunPolicy.{attr}", policy[key],
                "must be None: a TrainJob has no such field (its runtime decides)",
            )  # fmt: skip
    backoff = policy.get("backoffLimit")
    if backoff is not None and backoff != RUNTIME_BACKOFF[restart]:
        raise _refuse(
            "RunPolicy.backoff_limit", backoff,
            f"must be None or {RUNTIME_BACKOFF[restart]}: the runtime "
            f"{RUNTIMES[restart]!r} fixes it",
        )  # fmt: skip
    if policy.get("activeDeadlineSeconds") is not None:
        out["activeDeadlineSeconds"] = policy["activeDeadlineSeconds"]
    if policy.get("suspend") is not None:
        out["suspend"] = policy["suspend"]
    for key in spec:
        if key not in ("tfReplicaSpecs", "runPolicy") and spec[key] not in (None, False, ""):
            raise _refuse(
                f"spec.{key}", spec[key],
                "is not carried: a TrainJob's runtime decides success and scaling",
            )  # fmt: skip
    return out


def _restart_policy(policies: Mapping[str, str]) -> str:
    """The one restart policy of every type, which picks the runtime (``RUNTIMES``)."""
    why = "the runtime sets one restart policy for every replica"
    restart = str(_same(policies, "restart_policy", why))
    if restart not in RUNTIMES:
        raise _refuse(
            f"{next(iter(policies))}.restart_policy", restart,
            f"must be one of {', '.join(RUNTIMES)}: a Job's pods cannot restart in place here",
        )  # fmt: skip
    return restart


def _check_name(name: str, total: int) -> None:
    """JobSet names each pod ``<name>-node-0-<index>-<5 chars>``: at most 63 characters."""
    longest = len(f"{name}-{STEP}-0-{total - 1}") + _POD_SUFFIX
    if longest > POD_NAME_MAX:
        raise _refuse(
            "name", name,
            f"must be at most {len(name) - longest + POD_NAME_MAX} characters for "
            f"{total} replicas: JobSet names each pod <name>-node-0-<index>-<5 chars>, "
            f"at most {POD_NAME_MAX}",
        )  # fmt: skip


def to_trainjob(manifest: KubeObject) -> KubeObject:
    """The TFJob ``manifest`` (as the model renders it, or a template's) as a TrainJob."""
    meta: ObjectMeta = manifest.get("metadata") or {}
    spec = dict(manifest.get("spec") or {})
    specs: Mapping[str, Any] = spec.get("tfReplicaSpecs") or {}
    for rtype in specs:
        if rtype not in ORDER:
            raise _refuse(f"tfReplicaSpecs.{rtype}", rtype, f"must be one of {', '.join(ORDER)}")
    counts = {rtype: int((s or {}).get("replicas", 1)) for rtype, s in specs.items()}
    order = [rtype for rtype, _ in layout(counts)]
    templates = {rtype: dict(specs[rtype].get("template") or {}) for rtype in order}
    containers = {rtype: _container(rtype, t) for rtype, t in templates.items()}
    restart = _restart_policy({t: specs[t].get("restartPolicy") or "Never" for t in order})
    name, total = str(meta.get("name") or ""), sum(counts.values())
    _check_name(name, total)
    port = _same({t: _port(c) for t, c in containers.items()}, "port", "one Job, one port")
    shared_env, own_env = _split_env(containers)
    replicas: list[Replica] = [
        (t, counts[t], [*(c.get("command") or []), *(c.get("args") or [])], own_env[t])
        for t, c in containers.items()
    ]
    trainer: Trainer = {
        "image": _same(
            {t: c.get("image") for t, c in containers.items()}, "image", "a TrainJob runs one image"
        ),
        "command": ["/bin/sh", "-c", entry_script(name, replicas, port)],
        "numNodes": total,
    }
    if shared_env:
        trainer["env"] = shared_env
    resources = _largest({t: c.get("resources") for t, c in containers.items()})
    if resources:
        trainer["resourcesPerNode"] = resources
    annotations = {**meta.get("annotations", {}), LAYOUT_ANNOTATION: layout_text(counts)}
    out_meta = ObjectMeta(name=name, namespace=meta.get("namespace", ""))
    if "labels" in meta:
        out_meta["labels"] = meta["labels"]
    out_meta["annotations"] = annotations
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": out_meta,
        "spec": {
            "runtimeRef": {
                "name": RUNTIMES[restart],
                "apiGroup": "trainer.kubeflow.org",
                "kind": "ClusterTrainingRuntime",
            },
            "trainer": trainer,
            **_run_policy(spec, restart),
            "runtimePatches": [_patch(templates, containers, counts)],
        },
    }


def _patch(
    templates: Mapping[str, Mapping[str, Any]],
    containers: Mapping[str, Mapping[str, Any]],
    counts: Mapping[str, int],
) -> Mapping[str, Any]:
    """The pods' labels, annotations and pod fields, shared by every type, as a runtime patch."""
    why = "a TrainJob's pods are one Job's: they share it"
    shared = {
        key: _same({t: (tp.get("metadata") or {}).get(key) for t, tp in templates.items()},
                   f"pod_template.metadata.{key}", why) or {}
        for key in ("labels", "annotations")
    }  # fmt: skip
    metadata = ObjectMeta(labels=dict(shared["labels"])) if shared["labels"] else ObjectMeta()
    metadata["annotations"] = {**shared["annotations"], LAYOUT_ANNOTATION: layout_text(counts)}
    pod: dict[str, Any] = {}
    for key in _SAME_POD_FIELDS:
        values = {t: (tp.get("spec") or {}).get(key) for t, tp in templates.items()}
        value = _same(values, f"pod_template.spec.{key}", why)
        if value is not None:
            pod[key] = value
    container = ContainerPatch(name=STEP)
    for key in _CONTAINER_PATCH:
        value = _same({t: c.get(key) for t, c in containers.items()}, key, why)
        if value is not None:
            container[key] = value  # type: ignore[literal-required]
    if len(container) > 1:
        pod["containers"] = [container]
    template = PodTemplatePatch(metadata=metadata)
    if pod:
        template["spec"] = pod
    job = {"name": STEP, "template": {"spec": {"template": template}}}
    return {
        "manager": PATCH_MANAGER,
        "trainingRuntimeSpec": {"template": {"spec": {"replicatedJobs": [job]}}},
    }
