"""The backstop deadline: ``runPolicy.activeDeadlineSeconds`` that the provider sets on a job
that sets none, so a job every try of its task left behind still ends.

The training operator counts ``activeDeadlineSeconds`` from the job's ``status.startTime`` and
reads it from the spec at every reconcile. A backstop of one try's ``execution_timeout`` (plus a
margin) set when the job is created would therefore also bind a later try that adopts the job
(a retry after a worker crash): a crash at 1 h 50 of a 2 h timeout, and the retry's job is killed
10 minutes into the retry. So a try that adopts a running job whose deadline is the backstop
(``ANNOTATION`` says so) raises it to the time the job has run plus this try's own allowance
(``extended``). Each adopting try extends it once; when no try is left, the last extension
still ends the job. A deadline the user set is never touched.

On Trainer v2 the manifest's deadline becomes the TrainJob's ``spec.activeDeadlineSeconds``
(``rules.trainjob``), and the TrainJob reads back with it as ``runPolicy.activeDeadlineSeconds``
and its creation as ``startTime`` (``rules.trainjobview``): ``extended`` reads either job alike.
"""

from __future__ import annotations

import datetime
import math

from airflow_tfjob.model import naming
from airflow_tfjob.model.kube import KubeObject
from airflow_tfjob.rules import status

ANNOTATION = f"{naming.LABEL_PREFIX}/deadline-backstop"
"""On a job whose ``activeDeadlineSeconds`` is the provider's backstop: the allowance in seconds
of one try (its ``execution_timeout`` plus a margin)."""


def apply(manifest: KubeObject, seconds: int) -> None:
    """Set the backstop on ``manifest`` unless its run policy sets a deadline itself."""
    policy = manifest["spec"].setdefault("runPolicy", {})
    if "activeDeadlineSeconds" in policy:
        return
    policy["activeDeadlineSeconds"] = seconds
    manifest["metadata"].setdefault("annotations", {})[ANNOTATION] = str(seconds)


def allowance(obj: KubeObject) -> int | None:
    """The backstop allowance ``obj`` (a manifest or a job) carries, if its deadline is one."""
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _started(job: KubeObject) -> float | None:
    """When the operator's deadline clock started: ``startTime``, else (not yet reconciled) its
    creation, which is earlier, so the extension is never short."""
    meta = job.get("metadata") or {}
    stamp = status.job_state(job).start_time or meta.get("creationTimestamp")
    if not stamp:
        return None
    return datetime.datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()


def extended(job: KubeObject, manifest: KubeObject, now: float) -> int | None:
    """The ``activeDeadlineSeconds`` that gives the try submitting ``manifest`` its own
    allowance on the adopted ``job``: the seconds it has run plus the allowance. None when there
    is nothing to raise: the job's deadline is not our backstop, this try sets none, the job has
    finished, or its deadline already reaches that far."""
    ours, wanted = allowance(job), allowance(manifest)
    if ours is None or wanted is None or status.job_state(job).is_terminal:
        return None
    started = _started(job)
    elapsed = max(0.0, now - started) if started is not None else 0.0
    seconds = math.ceil(elapsed) + wanted
    current = ((job.get("spec") or {}).get("runPolicy") or {}).get("activeDeadlineSeconds")
    if isinstance(current, int) and current >= seconds:
        return None
    return seconds
