"""What each replica runs locally, read from the manifest; refused before anything starts.

Pure: the manifest in, one ``Replica`` per process out, or a ``TFJobSpecError`` naming what the
local backend cannot do (no command, a Secret or ConfigMap reference); and each process's
``environment`` (``TF_CONFIG`` with localhost ports, TensorFlow's thread counts). The
container's env is resolved the way the kubelet does it: literal values with ``$(VAR)``
expansion, and the ``fieldRef`` paths a pod can know about itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_tfjob.backends.local import ports
from airflow_tfjob.model import TFJobSpecError, tfconfig
from airflow_tfjob.model.kube import KubeObject, ObjectMeta
from airflow_tfjob.model.replicas import CONTAINER_NAME
from airflow_tfjob.rules import status

DEFAULT_TERMINATION_PATH = "/dev/termination-log"
CHIEF_TYPES = ("Chief", "Master")
LOCAL_IP = "127.0.0.1"
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_KEYED_FIELD = re.compile(r"metadata\.(labels|annotations)\['([^']+)'\]")


@dataclass(frozen=True)
class Replica:
    """One replica: what it runs and how the training operator treats its exits."""

    rtype: str
    """The replica type as in the spec: ``Worker``, ``Chief``, ``PS``, ``Evaluator``."""
    index: int
    restart_policy: str
    """``Never``, ``OnFailure``, ``Always`` or ``ExitCode``."""
    command: tuple[str, ...]
    """The container's command and args, ``$(VAR)`` expanded."""
    env: tuple[tuple[str, str], ...]
    """The container's env, resolved, in order (``TF_CONFIG`` is added when it runs)."""
    termination_path: str
    """The container's ``terminationMessagePath``: mapped to a file of the replica's own."""
    stop_grace: float | None
    """The pod's ``terminationGracePeriodSeconds``, when set."""

    @property
    def name(self) -> str:
        """``worker-1``: the log prefix and the name in messages."""
        return f"{self.rtype.lower()}-{self.index}"

    def pod(self, job: str) -> str:
        """The pod name the training operator would give it."""
        return f"{job}-{self.rtype.lower()}-{self.index}"


def replicas(manifest: KubeObject, uid: str = "") -> list[Replica]:
    """Every replica of the manifest, chief first; ``TFJobSpecError`` for what cannot run here."""
    meta, spec = manifest.get("metadata") or {}, manifest.get("spec") or {}
    counts = status.replica_counts(manifest)
    chief = next((t for t in CHIEF_TYPES if counts.get(t)), None)
    out: list[Replica] = []
    order = sorted(counts, key=lambda t: (t not in CHIEF_TYPES, t != "Worker", t))
    for rtype in order:
        group = spec["tfReplicaSpecs"][rtype] or {}
        template = group.get("template") or {}
        container = _main_container(rtype, template)
        for index in range(counts[rtype]):
            pod = _PodFacts(
                meta, template, rtype, index, uid, is_master=_is_master(rtype, index, chief)
            )
            env = _environment(rtype, container, pod)
            out.append(
                Replica(
                    rtype=rtype,
                    index=index,
                    restart_policy=str(group.get("restartPolicy") or "Never"),
                    command=_command(rtype, container, dict(env)),
                    env=env,
                    termination_path=str(
                        container.get("terminationMessagePath") or DEFAULT_TERMINATION_PATH
                    ),
                    stop_grace=(template.get("spec") or {}).get("terminationGracePeriodSeconds"),
                )
            )
    return out


def _is_master(rtype: str, index: int, chief: str | None) -> bool:
    return rtype == chief if chief else (rtype == "Worker" and index == 0)


def _main_container(rtype: str, template: Mapping[str, Any]) -> dict[str, Any]:
    for container in (template.get("spec") or {}).get("containers") or []:
        if container.get("name") == CONTAINER_NAME:
            return dict(container)
    raise TFJobSpecError(
        f"{rtype}.template.spec.containers",
        [c.get("name") for c in (template.get("spec") or {}).get("containers") or []],
        f"must include a container named {CONTAINER_NAME!r}",
    )


def _command(rtype: str, container: Mapping[str, Any], env: Mapping[str, str]) -> tuple[str, ...]:
    command, args = container.get("command") or [], container.get("args") or []
    if not command:
        raise TFJobSpecError(
            f"{rtype}.command",
            None,
            "the local backend runs the group's command and cannot use the image's entrypoint; "
            "set command=[...] on the group or the operator",
        )
    return tuple(expand(str(word), env) for word in (*command, *args))


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: defined names are replaced, ``$$`` is a literal ``$``."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        return env.get(name, match.group(0))

    return _REFERENCE.sub(replace, text)


@dataclass(frozen=True)
class _PodFacts:
    """What the downward API would tell the pod about itself."""

    job: ObjectMeta
    """The job's metadata."""
    template: Mapping[str, Any]
    rtype: str
    index: int
    uid: str
    is_master: bool

    def field(self, path: str) -> str | None:
        name = f"{self.job.get('name', '')}-{self.rtype.lower()}-{self.index}"
        simple = {
            "metadata.name": name,
            "metadata.namespace": str(self.job.get("namespace", "default")),
            "metadata.uid": self.uid,
            "spec.nodeName": "localhost",
            "spec.serviceAccountName": str(
                (self.template.get("spec") or {}).get("serviceAccountName") or "default"
            ),
            "status.hostIP": LOCAL_IP,
            "status.podIP": LOCAL_IP,
            "status.podIPs": LOCAL_IP,
        }
        if path in simple:
            return simple[path]
        keyed = _KEYED_FIELD.fullmatch(path)
        if keyed:
            return self.metadata(keyed.group(1)).get(keyed.group(2), "")
        return None

    def metadata(self, kind: str) -> dict[str, str]:
        own = dict((self.template.get("metadata") or {}).get(kind) or {})
        if kind == "labels":
            own.update(
                {
                    status.JOB_NAME_LABEL: str(self.job.get("name", "")),
                    status.REPLICA_TYPE_LABEL: self.rtype.lower(),
                    status.REPLICA_INDEX_LABEL: str(self.index),
                    "training.kubeflow.org/operator-name": "tfjob-controller",
                }
            )
            if self.is_master:
                own["training.kubeflow.org/job-role"] = "master"
        return own


def _environment(
    rtype: str, container: Mapping[str, Any], pod: _PodFacts
) -> tuple[tuple[str, str], ...]:
    if container.get("envFrom"):
        raise TFJobSpecError(
            f"{rtype}.template.spec.containers[tensorflow].envFrom",
            container["envFrom"],
            "cannot be resolved on the local backend (it names Secrets or ConfigMaps); "
            "use env values, or backend='kubernetes'",
        )
    resolved: dict[str, str] = {}
    for var in container.get("env") or []:
        name = str(var.get("name"))
        if "value" in var or "valueFrom" not in var:
            resolved[name] = expand(str(var.get("value") or ""), resolved)
            continue
        source = var["valueFrom"] or {}
        path = (source.get("fieldRef") or {}).get("fieldPath")
        value = pod.field(str(path)) if path else None
        if value is None:
            kind = next(iter(source), "valueFrom")
            raise TFJobSpecError(
                f"{rtype} env {name!r}",
                f"valueFrom.{kind}",
                "cannot be resolved on the local backend (only literal values and fieldRef to "
                "the pod's name, namespace, uid, labels, annotations, IPs and node are); "
                "set a value, or use backend='kubernetes'",
            )
        resolved[name] = value
    return tuple(resolved.items())


MIN_INTEROP_THREADS = 2
"""One inter-op thread deadlocks ParameterServerStrategy: a step blocks it waiting for its own
dataset iterator."""
HIDDEN_ENV = ("AIRFLOW", "_AIRFLOW")
"""Airflow's own settings and secrets stay out of the replicas, as they would in a pod."""


def interop_threads(threads: int) -> int:
    return max(MIN_INTEROP_THREADS, threads)


def environment(
    replica: Replica,
    counts: Mapping[str, int],
    ports_of: Mapping[tuple[str, int], int],
    *,
    threads: int,
    termination: str,
) -> dict[str, str]:
    """A replica's environment: the worker's without Airflow's, TensorFlow's thread counts, the
    replica's own env (its termination path made ``termination``), and ``TF_CONFIG`` with every
    replica at ``localhost:<its port>`` when the job is distributed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(HIDDEN_ENV)}
    env.update(
        TF_NUM_INTRAOP_THREADS=str(threads),
        TF_NUM_INTEROP_THREADS=str(interop_threads(threads)),
        OMP_NUM_THREADS=str(threads),
        PYTHONUNBUFFERED="1",
    )
    env.update((k, v.replace(replica.termination_path, termination)) for k, v in replica.env)
    if tfconfig.is_distributed(counts):
        env["TF_CONFIG"] = tfconfig.tf_config(
            counts,
            lambda rtype, i: f"{ports.LOCALHOST}:{ports_of[(rtype, i)]}",
            replica.rtype,
            replica.index,
        )
    return env
