"""The pod conditions the process kubelet writes, after the kubelet's status generator.

Controllers read readiness from conditions, not from the phase: the Job controller counts pods
whose ``Ready`` condition is True into ``job.status.ready``, and JobSet builds its ready counts,
its in-order startup and ``dependsOn`` on that. So each status write carries the four conditions
a kubelet owns, by the rules of Kubernetes 1.36 (``pkg/kubelet/status/generate.go``):

- ``PodReadyToStartContainers``: True while the pod's sandbox (here: its network) exists, False
  once the pod is terminal and the sandbox is gone;
- ``Initialized``: True (no init containers run here), reason ``PodCompleted`` once Succeeded;
- ``ContainersReady`` and ``Ready``: True when every container runs (no probes here); else False
  with ``ContainersNotReady`` and the unready containers named as Go prints a list, or, in a
  terminal phase, with reason ``PodCompleted`` or ``PodFailed``.

Writes are strategic merge patches, in which conditions merge by type: every condition is sent
whole, ``reason`` and ``message`` as null when empty, or an old reason would outlive its status.
``lastTransitionTime`` changes only when the status does, as the kubelet's status manager keeps it.
"""

from __future__ import annotations

from tests.kubelet.podspec import Obj

TERMINAL = ("Succeeded", "Failed")
KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready")
_Condition = tuple[str, str | None, str | None]
"""status, reason, message"""


def conditions(statuses: list[Obj], phase: str, previous: list[Obj], now: str) -> list[Obj]:
    """The kubelet's conditions for a pod in ``phase`` whose containers are ``statuses``.

    :param previous: the conditions this kubelet wrote last (their transition times carry over).
    :param now: the timestamp of this write.
    """
    unready = [status["name"] for status in statuses if not status.get("ready")]
    ready: _Condition
    if phase in TERMINAL:
        ready = ("False", "PodCompleted" if phase == "Succeeded" else "PodFailed", None)
    elif unready:
        names = f"[{' '.join(unready)}]"  # Go's %s of a list
        ready = ("False", "ContainersNotReady", f"containers with unready status: {names}")
    else:
        ready = ("True", None, None)
    wanted: dict[str, _Condition] = {
        "PodReadyToStartContainers": ("False" if phase in TERMINAL else "True", None, None),
        "Initialized": ("True", "PodCompleted" if phase == "Succeeded" else None, None),
        "ContainersReady": ready,
        "Ready": ready,
    }
    before = {condition["type"]: condition for condition in previous}
    out = []
    for kind in KUBELET_CONDITIONS:
        status, reason, message = wanted[kind]
        old = before.get(kind)
        same = old is not None and old["status"] == status
        since = old["lastTransitionTime"] if old is not None and same else now
        out.append(
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastProbeTime": None,
                "lastTransitionTime": since,
            }
        )
    return out
