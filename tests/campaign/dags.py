"""The DAG file of one campaign run: its task in the scenario's shape, and a report at the end.

The file runs its DAG with ``dag.test()`` when executed (as a worker would run the task) and then
prints one ``CAMPAIGN-RESULT`` line: every task instance's state, times and XCom. A triggerer
restart is staged inside the same process, as the triggerer does it: the running trigger is
cancelled, cleaned up, rebuilt from ``serialize()`` and run again.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

from tests.campaign.plan import Scenario

RESULT_MARK = "CAMPAIGN-RESULT "
REAPER_MARK = "CAMPAIGN-REAPER "
RESTART_MARK = "CAMPAIGN: triggerer restarted"

HEADER = """\
import datetime, json
from airflow.sdk import DAG, task
from airflow_tfjob import *
from airflow_tfjob.operators.tfjob import TFJobOperator
from airflow_tfjob.sensors.tfjob import TFJobSensor

START = datetime.datetime(2026, 1, 1)
NAMESPACE = {namespace!r}
KUBECONFIG = {kubeconfig!r}
CONNECTION = dict(namespace=NAMESPACE, kubernetes_conn_id=None, config_file=KUBECONFIG)
"""

RESTART = """
import asyncio, importlib
import airflow_tfjob.triggers.tfjob as _triggers

_run = _triggers.TFJobTrigger.run


async def _first(events):
    async for event in events:
        return event


async def _restarting_run(self):
    if getattr(self, "_rebuilt", False):
        async for event in _run(self):
            yield event
        return
    waiting = asyncio.ensure_future(_first(_run(self)))
    done, _ = await asyncio.wait({{waiting}}, timeout={after})
    if waiting in done:
        yield waiting.result()
        return
    waiting.cancel()  # the triggerer stops ...
    await asyncio.gather(waiting, return_exceptions=True)
    await self.cleanup()  # ... cleans up, and another one rebuilds the trigger from its kwargs
    path, kwargs = self.serialize()
    module, _, name = path.rpartition(".")
    fresh = getattr(importlib.import_module(module), name)(**kwargs)
    fresh._rebuilt = True
    print({mark!r}, flush=True)
    async for event in _run(fresh):
        yield event


_triggers.TFJobTrigger.run = _restarting_run
"""

MAIN = """

if __name__ == "__main__":
    when = datetime.datetime.fromisoformat({logical!r})
    dagrun = dag.test(logical_date=when, run_after=when)
    report = []
    for ti in dagrun.get_task_instances():
        value = None
        if ti.state == "success":
            value = ti.xcom_pull(task_ids=ti.task_id, map_indexes=ti.map_index)
        report.append({{
            "task_id": ti.task_id, "map_index": ti.map_index, "state": ti.state,
            "start": ti.start_date.timestamp() if ti.start_date else None,
            "end": ti.end_date.timestamp() if ti.end_date else None,
            "xcom": value,
        }})
    print({mark!r} + json.dumps(report, default=str), flush=True)
"""


def outputs(scenario: Scenario) -> list[Any]:
    """What each chief returns (one per map index): the XCom outputs the run must produce."""
    count = 2 if scenario.shape == "mapped" else 1
    return [{"run": scenario.index, "seed": scenario.seed, "map": i} for i in range(count)]


def _timeout(scenario: Scenario) -> str:
    deadline = scenario.fault("deadline")
    if deadline is None:
        return "datetime.timedelta(minutes=3)"
    return f"datetime.timedelta(seconds={deadline.params['timeout']})"


def policy(scenario: Scenario) -> str:
    """The workers' restart policy: the replica fault's, else Never."""
    for kind in ("replica_failure", "eviction"):
        fault = scenario.fault(kind)
        if fault is not None:
            return str(fault.params["policy"])
    return "Never"


def task_source(scenario: Scenario, job_name: str = "") -> str:
    """The body of the DAG: one task (two mapped) in the scenario's shape."""
    common = (
        f"**CONNECTION, poll_interval=1, get_logs=True, deferrable={scenario.deferrable}, "
        f"execution_timeout={_timeout(scenario)}, on_finish_action='delete_succeeded_tfjob'"
    )
    job = (
        f"TfJob(chief=Chief(), worker=Worker(replicas=2, restart_policy={policy(scenario)!r}), "
        f"run_policy=RunPolicy(backoff_limit=3))"
    )
    if scenario.shape == "operator":
        return f'TFJobOperator(task_id="train", tfjob={job}, image="tf:2", {common})'
    if scenario.shape == "mapped":
        return (
            f'TFJobOperator.partial(task_id="train", tfjob={job}, image="tf:2", {common})'
            f'.expand(env=[{{"MAP": "0"}}, {{"MAP": "1"}}])'
        )
    if scenario.shape == "sensor":
        deadline = scenario.fault("deadline")
        timeout = deadline.params["timeout"] if deadline else 180
        return (
            f'TFJobSensor(task_id="train", tfjob_name={job_name!r}, **CONNECTION, '
            f"poke_interval=1, deferrable={scenario.deferrable}, timeout={timeout})"
        )
    return _function_source(scenario, common)


def _function_source(scenario: Scenario, common: str) -> str:
    failure = scenario.fault("replica_failure")
    fails = repr(failure.params["replica"]) if failure else "None"
    sleeps = 3600 if scenario.fault("deadline") else scenario.chief_seconds
    (output,) = outputs(scenario)
    return textwrap.dedent(f"""
        @task.tfjob(
            task_config=TfJob(chief=Chief(), worker=Worker(replicas=2)),
            image="python:3.11-slim", {common},
        )
        def train():
            import time
            from airflow_tfjob.runtime import context
            role = context()
            if role.replica == {fails}:
                raise RuntimeError("injected failure in " + role.replica)  # checks.INJECTED
            if role.is_chief:
                time.sleep({sleeps})
                return {output!r}
            return None

        train()
    """).strip()


def dag_source(
    scenario: Scenario, *, dag_id: str, namespace: str, kubeconfig: str, logical: str,
    job_name: str = "",
) -> str:  # fmt: skip
    """The whole DAG file of a run."""
    source = HEADER.format(namespace=namespace, kubeconfig=kubeconfig)
    restart = scenario.fault("triggerer_restart")
    if restart is not None:
        source += RESTART.format(after=restart.at, mark=RESTART_MARK)
    body = task_source(scenario, job_name)
    source += f"\n\nwith DAG({dag_id!r}, schedule=None, start_date=START) as dag:\n"
    source += textwrap.indent(body, "    ") + "\n"
    source += MAIN.format(logical=logical, mark=RESULT_MARK)
    return source


def parse_result(log: str) -> list[dict[str, Any]] | None:
    """The ``CAMPAIGN-RESULT`` report of a finished DAG process (None if it died first)."""
    for line in reversed(log.splitlines()):
        if line.startswith(RESULT_MARK):
            return list(json.loads(line[len(RESULT_MARK) :]))
    return None


REAPER = """\
import datetime, json
from airflow.sdk import DAG
from airflow_tfjob.operators.reaper import TFJobReaperOperator

with DAG({dag_id!r}, schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:
    TFJobReaperOperator(
        task_id="reap", grace_seconds=0, targets=[("campaign_cluster", {namespace!r})]
    )

if __name__ == "__main__":
    dagrun = dag.test()
    (ti,) = dagrun.get_task_instances()
    value = ti.xcom_pull(task_ids="reap") if ti.state == "success" else None
    print({mark!r} + json.dumps(value), flush=True)
"""


def reaper_source(dag_id: str, namespace: str) -> str:
    """A DAG file that runs the reaper once over the run's namespace (in the run's home, so it
    asks the run's metadata DB for the task instance's state)."""
    return REAPER.format(dag_id=f"reaper_{dag_id}", namespace=namespace, mark=REAPER_MARK)


def parse_reaper(log: str) -> dict[str, Any] | None:
    """The reaper's XCom, from its DAG process's output (None if it failed or died)."""
    for line in reversed(log.splitlines()):
        if line.startswith(REAPER_MARK):
            value = json.loads(line[len(REAPER_MARK) :])
            return dict(value) if isinstance(value, dict) else None
    return None
