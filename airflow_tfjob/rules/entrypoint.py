"""The entry point of a TrainJob's pods: a POSIX shell program that gives each replica the
``TF_CONFIG`` the training operator would have written, from the completion index the Job
controller sets and the hostnames JobSet's headless Service gives, then execs its command.

Only ``/bin/sh``: it runs in any image and needs nothing of this package. Pure: no I/O.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

STEP = "node"
"""The runtime's replicated job, and its container's name."""


def host(job: str, index: int, port: int) -> str:
    """Where completion index ``index`` of TrainJob ``job`` listens (JobSet's DNS names)."""
    return f"{job}-{STEP}-0-{index}.{job}:{port}"


class EnvVar(TypedDict, total=False):
    """A container's env entry: a plain ``value``, or ``valueFrom`` a Secret, ConfigMap or
    field (as Kubernetes takes it; passed through)."""

    name: str
    value: str
    valueFrom: Mapping[str, Any]


Replica = tuple[str, int, list[str], list[EnvVar]]
"""``(type, count, argv, env of this type only)``, in index order."""


def entry_script(job: str, replicas: Sequence[Replica], port: int) -> str:
    """The pod's ``/bin/sh -c`` program: its replica's ``TF_CONFIG`` and env, then its command.

    Only POSIX shell: it runs in any image with ``/bin/sh`` and needs nothing of this package.
    """
    total = sum(count for _, count, _, _ in replicas)
    cluster: dict[str, list[str]] = {}
    lines = ['i="${JOB_COMPLETION_INDEX:?is not set: run this as a pod of an Indexed Job}"']
    lines.append('case "$i" in')
    first = 0
    one_argv = len({tuple(argv) for _, _, argv, _ in replicas}) == 1
    for rtype, count, argv, env in replicas:
        cluster[rtype.lower()] = [host(job, first + k, port) for k in range(count)]
        body = [f"t={rtype.lower()}; k=$((i - {first}))"]
        body += [f"export {e['name']}={shlex.quote(str(e.get('value', '')))}" for e in env]
        if not one_argv:
            body.append(_set_argv(argv))
        indexes = "|".join(str(first + k) for k in range(count))
        lines.append(f"{indexes}) {'; '.join(body)};;")
        first += count
    lines.append('*) echo "no replica has completion index $i" >&2; exit 2;;')
    lines.append("esac")
    if one_argv:  # the same command on every type (@task.tfjob's): written once
        lines.append(_set_argv(replicas[0][2]))
    if total > 1:  # a lone replica gets no TF_CONFIG, as from the training operator
        spec = json.dumps(cluster, separators=(",", ":"))
        task = '"task":{"type":"\'"$t"\'","index":\'"$k"\'},"environment":"cloud"}'
        lines.append(f"export TF_CONFIG='{{\"cluster\":{spec},{task}'")
    lines.append('[ "$#" -gt 0 ] || { echo "replica $t-$k has no command" >&2; exit 2; }')
    lines.append('exec "$@"')
    return "\n".join(lines) + "\n"


def _set_argv(argv: Sequence[str]) -> str:
    return " ".join(["set --", *(shlex.quote(a) for a in argv)])
