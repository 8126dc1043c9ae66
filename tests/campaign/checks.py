"""The campaign's invariants, checked on a run's ``Record``. Each violation names the invariant,
what was seen, and the seed and index that reproduce it."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Any

from tests.campaign import dags, plan
from tests.campaign.run import Record

DOCUMENTED = {
    # docs/reference.md, "Errors": what this provider raises, and Airflow's own deadlines
    "TFJobError", "TFJobAPIError", "TFJobCRDNotInstalled", "TFJobNotFound", "TFJobForbidden",
    "TFJobInvalid", "TFJobConflict", "TFJobWatchExpired", "TFJobUnavailable", "TFJobFailed",
    "TFJobTimeout", "TFJobSpecError", "AirflowTaskTimeout", "AirflowSensorTimeout",
    "AirflowTaskTerminated",
}  # fmt: skip
DEADLINE_SLACK = 5.0
"""How far past its deadline a task may end."""
INJECTED = "injected failure"
"""What the campaign's own function raises (in the replica, not the provider): not counted."""
_RAISED = re.compile(
    r"^(?:[\w.]+\.)?([A-Z]\w*(?:Error|Exception|Failed|Timeout|Terminated|Exit))\b:?"
)


@dataclass(frozen=True)
class Violation:
    seed: int
    index: int
    invariant: str
    detail: str

    def __str__(self) -> str:
        return f"seed={self.seed} run={self.index} {self.invariant}: {self.detail}"


def check(record: Record) -> list[Violation]:
    """Every invariant, on one run."""
    scenario = record.scenario
    found: list[tuple[str, str]] = []
    found += _one_job(record)
    found += _nothing_left(record)
    found += _outcome(record)
    found += _exceptions(record)
    if record.hung:
        found.append(("no hang", f"the task process was alive after {record.wall:.0f} s"))
    return [Violation(scenario.seed, scenario.index, name, detail) for name, detail in found]


def _one_job(record: Record) -> list[tuple[str, str]]:
    found = []
    for owner, uids in record.created.items():
        if owner == "external":
            continue
        if record.scenario.shape == "sensor":
            found.append(("sensor submits nothing", f"{owner} created {uids}"))
            continue
        # a later job of the same task instance is a resubmission unless its predecessor had
        # finished (a re-run after success) when it went: a running job must be reattached to
        replaced = [u for u in uids[:-1] if u in record.deleted_unfinished.get(owner, [])]
        if replaced:
            found.append(("no second submission after a reattach",
                          f"{owner}: {replaced} deleted unfinished, then {uids} created"))  # fmt: skip
    for owner, most in record.most_live.items():
        if most > 1:
            found.append(("one TFJob per task instance at a time", f"{owner}: {most} at once"))
    return found


def _nothing_left(record: Record) -> list[tuple[str, str]]:
    found = []
    names = {j["metadata"]["name"] for j in record.left_jobs}
    for pod in record.left_pods:
        job = ((pod.get("metadata") or {}).get("labels") or {}).get(
            "training.kubeflow.org/job-name"
        )
        if job not in names:
            found.append(("no orphaned pods", f"pod {pod['metadata']['name']} of {job} is left"))
    if record.left_configmaps:
        found.append(("no ConfigMaps left", ", ".join(record.left_configmaps)))
    failed_maps = {t["map_index"] for t in record.result or [] if t["state"] != "success"}
    for job in record.left_jobs:
        name = job["metadata"]["name"]
        if name == record.external_job:
            continue
        annotations = job["metadata"].get("annotations") or {}  # labels hold it made label-safe
        map_index = int(annotations.get("airflow-tfjob/map-index", "-1"))
        if job["metadata"].get("deletionTimestamp"):
            found.append(("deletions complete", f"TFJob {name} is still being deleted"))
        elif map_index not in failed_maps or {"user_kill", "deadline"} & set(record.injected):
            # delete_succeeded_tfjob keeps a failed task's job only; kills and deadlines delete
            found.append(("nothing left behind", f"TFJob {name} is left ({_phase(job)})"))
    return found


def _outcome(record: Record) -> list[tuple[str, str]]:
    scenario, found = record.scenario, []
    if set(plan.ORPHAN_FAULTS) & set(record.injected):
        return _reaped(record)
    if record.result is None:
        if "user_kill" in record.injected:
            return _killed(record)
        return [("a result", f"the task process ended ({record.exit_codes}) without a report")]
    states = _states(record)
    failed = [key for key, state in states.items() if state != "success"]
    doomed = any(plan.dooms(f) for f in scenario.faults if f.kind in record.injected)
    if doomed and not failed:
        found.append(("faults that doom the task fail it", f"{scenario.label} succeeded"))
    if failed and not doomed:
        found.append(("survivable faults are survived", f"{scenario.label}: {states}"))
    expected = dags.outputs(scenario)
    for ti in record.result:
        if ti["state"] != "success":
            continue
        value = ti["xcom"] if scenario.shape == "function" else (ti["xcom"] or {}).get("output")
        want = expected[max(ti["map_index"], 0)]
        if value != want:
            found.append(("the XCom is the chief's output", f"got {value!r}, want {want!r}"))
    if failed:
        found += _failure_named(record)
    found += _deadline(record)
    return found


def _reaped(record: Record) -> list[tuple[str, str]]:
    """After a path Airflow tells the task nothing about, one reaper pass ends every job the
    task instance left running: it reports deleting each, and none is left unfinished."""
    if record.reaped is None:
        tail = record.reaper_log[-1500:]
        return [("the reaper runs", f"it reported nothing; its log ends:\n{tail}")]
    found = []
    if not record.reaped.get("deleted"):  # the chief runs until someone ends the job
        found.append(("the reaper ends an orphan", f"it deleted nothing: {record.reaped}"))
    for job in record.left_jobs:
        if _phase(job) not in ("Succeeded", "Failed"):
            found.append((
                "no TFJob outlives its task",
                f"TFJob {job['metadata']['name']} is still {_phase(job)} one reaper pass after "
                "its task instance ended",
            ))  # fmt: skip
    return found


def _killed(record: Record) -> list[tuple[str, str]]:
    if "Deleted TFJob" not in record.log:
        return [("a killed task deletes its job", "no 'Deleted TFJob' in the task log")]
    return []


def _failure_named(record: Record) -> list[tuple[str, str]]:
    """A failed task's log names the failing replica and its cause."""
    scenario, log = record.scenario, record.log
    failure, eviction = scenario.fault("replica_failure"), scenario.fault("eviction")
    wanted: list[str] = []
    if "deadline" in record.injected:
        wanted = ["timeout", "timed out", "execution_timeout"]
    elif "external_delete" in record.injected:
        wanted = ["was deleted", "deleted while"]
    elif failure is not None and not failure.params["recovers"]:
        replica = str(failure.params["replica"])
        wanted = [f"{replica} (exit code {failure.params['exit_code']})"]
        if scenario.shape == "function":
            wanted = [f"{replica} (exit code"]
    elif eviction is not None:
        wanted = ["worker-1 (exit code 137, Evicted)", "worker-1 (Evicted)"]
    if scenario.shape == "sensor" and (failure or eviction):
        # a sensor looks at a job it did not watch from the start: when the operator has already
        # deleted the failed pod (evictions under OnFailure/Always), the job's own condition,
        # which names the replica type, is all the evidence left
        wanted.append("Worker replica(s) failed")
    if wanted and not any(w.lower() in log.lower() for w in wanted):
        return [("a failure names its replica and cause", f"none of {wanted} in the task log")]
    return []


_STARTED = re.compile(r"^(\S+Z) .*\bTask started\b")
_ENDED = re.compile(
    r"^(\S+Z) .*Task instance state updated.*\bnew_state=(failed|success|up_for_retry)"
)


def task_spans(log: str) -> list[float]:
    """Seconds from each task's start (the execution API's "Task started") to its final state,
    as the task runner reports them. ``dag.test()`` stamps the task instance's start_date
    before it starts its in-process execution API, which is not the task's time."""
    spans, began = [], None
    for line in log.splitlines():
        if (m := _STARTED.match(line)) and began is None:  # a resumed deferral continues
            began = datetime.datetime.fromisoformat(m.group(1).replace("Z", "+00:00"))
        elif (m := _ENDED.match(line)) and began is not None:
            ended = datetime.datetime.fromisoformat(m.group(1).replace("Z", "+00:00"))
            spans.append((ended - began).total_seconds())
            began = None
    return spans


def past_deadline(record: Record) -> list[float]:
    """Seconds each task of a run with a deadline ran past it (negative: ended before it)."""
    fault = record.scenario.fault("deadline")
    if fault is None:
        return []
    return [took - float(fault.params["timeout"]) for took in task_spans(record.log)]


def _deadline(record: Record) -> list[tuple[str, str]]:
    fault = record.scenario.fault("deadline")
    if fault is None or record.result is None:
        return []
    timeout = float(fault.params["timeout"])
    return [
        ("deadlines hold", f"a task ran {timeout + past:.1f} s > {timeout + DEADLINE_SLACK:.0f} s")
        for past in past_deadline(record)
        if past > DEADLINE_SLACK
    ]


def _exceptions(record: Record) -> list[tuple[str, str]]:
    raised = {
        m.group(1)
        for line in record.log.splitlines()
        if INJECTED not in line and (m := _RAISED.match(line.strip()))
    }
    unexpected = sorted(raised - DOCUMENTED)
    if unexpected:
        return [("only documented exceptions", ", ".join(unexpected))]
    return []


def _states(record: Record) -> dict[str, str]:
    return {f"{t['task_id']}[{t['map_index']}]": t["state"] for t in record.result or []}


def _phase(job: dict[str, Any]) -> str:
    conditions = (job.get("status") or {}).get("conditions") or []
    return conditions[-1]["type"] if conditions else "no status"
