"""Ending deferred tasks in the triggerer against resuming them on a worker, in a real deployment.

One live deployment (tests/live: PostgreSQL, api-server, scheduler with the LocalExecutor,
dag-processor, triggerer as separate processes), one test kube-apiserver with the simulated
training operator. Two DAGs of ``--tasks`` mapped deferrable ``TFJobOperator`` tasks, identical
but for ``end_from_trigger``: False (the worker resumes for ``execute_complete``, the path before)
and True (the trigger ends the task, the default now). Each job has one worker replica, a real
local process that ends ``--min`` to ``--min + --spread`` seconds after it starts (spread evenly
by map index). The variants run one after the other, ``--rounds`` times, alternating.

Reported per variant: worker process runs (the executor's finished events: one per task process
the LocalExecutor started), CPU seconds of the scheduler's process tree (its LocalExecutor
workers and the task processes they fork) and of the triggerer, the run's wall time, tasks that
did not succeed, and the ratios resume / end.

    python bench/end_from_trigger.py [--tasks 200] [--min 5] [--spread 60] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DAG = '''
import datetime
from airflow.sdk import DAG
from airflow_tfjob import TfJob, Worker
from airflow_tfjob.operators.tfjob import TFJobOperator

SCRIPT = """
import json, sys, time
time.sleep(float(sys.argv[1]))
open("/dev/termination-log", "w").write(json.dumps({{"index": int(sys.argv[2])}}))
"""
for dag_id, end in (("bench_resume", False), ("bench_end", True)):
    with DAG(dag_id, schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False):
        TFJobOperator.partial(
            task_id="train",
            tfjob=TfJob(worker=Worker()),
            image="tf:2",
            command=["python", "-c", SCRIPT],
            deferrable=True,
            end_from_trigger=end,
            poll_interval=5,
            get_logs=False,
        ).expand(args={args!r})
'''


def _args(tasks: int, low: float, spread: float) -> list[list[str]]:
    return [[f"{low + spread * i / max(tasks - 1, 1):.1f}", str(i)] for i in range(tasks)]


def _tree_cpu(deployment: Any, name: str) -> float:
    return float(deployment.cpu_seconds()[name])


def _variant(ground: dict[str, Any], dag: str) -> dict[str, Any]:
    from tests.live.jobs import worker_runs

    live, api = ground["live"], ground["api"]
    cpu0 = {name: _tree_cpu(live, name) for name in ("scheduler", "triggerer")}
    began = time.monotonic()
    run = api.trigger(dag)
    api.wait_for_run(dag, run, timeout=3600)
    wall = time.monotonic() - began
    time.sleep(10)  # the last workers' exits reach the scheduler, and their CPU its tree
    tis = api.task_instances(dag, run)
    runs = worker_runs(live, run)
    return {
        "tasks": len(tis),
        "not_succeeded": sorted(ti["map_index"] for ti in tis if ti["state"] != "success"),
        "worker_runs": sum(runs.values()),
        "wall_s": round(wall, 1),
        **{f"{n}_cpu_s": round(_tree_cpu(live, n) - cpu0[n], 1) for n in cpu0},
    }


def _ground(
    workdir: Path,
    *,
    dag_source: str,
    dags: tuple[str, ...],
    config: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A test cluster (the real training operator), the kubelet running every replica for real,
    the fault proxy, and a
    live deployment with ``dag_source`` parsed (``dags``); ``config``: more Airflow settings."""
    import kubernetes

    from tests.cluster import cluster as cluster_mod
    from tests.cluster.fixtures import wait_for_default_account
    from tests.faults.proxy import FaultProxy
    from tests.kubelet import kubelet as kubelet_mod
    from tests.live.deployment import Deployment

    cluster = cluster_mod.start_cluster(workdir=workdir / "cluster")
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    admin = cluster.api_client()
    kubernetes.client.CoreV1Api(admin).create_namespace({"metadata": {"name": namespace}})
    wait_for_default_account(kubernetes.client.CoreV1Api(admin), namespace)
    kubelet = kubelet_mod.Kubelet(
        cluster.api_client(), workdir=workdir / "pods", real_by_default=True
    ).start()
    proxy = FaultProxy.for_cluster(cluster, workdir=workdir / "proxy").start()
    connection = {
        "conn_type": "kubernetes",
        "extra": {"kube_config_path": str(proxy.kubeconfig), "namespace": namespace},
    }
    live = Deployment(
        workdir / "home",
        connections={"kubernetes_default": connection},
        # hundreds of task processes call the api-server's execution API: a larger DB pool
        config={
            "database.sql_alchemy_pool_size": "16",
            "database.sql_alchemy_max_overflow": "32",
            **(config or {}),
        },
    ).start()
    live.add_dag_file("bench.py", dag_source)
    from tests.live.deployment import USERS
    from tests.live.rest import AirflowClient

    api = AirflowClient(live.url, "admin", USERS["admin"], timeout=120)  # a busy api-server
    for dag in dags:
        api.wait_for_dag(dag, timeout=120)
    return {
        "namespace": namespace,
        "cluster": cluster,
        "kubelet": kubelet,
        "proxy": proxy,
        "live": live,
        "api": api,
    }


def _stop(ground: dict[str, Any]) -> None:
    ground["api"].close()
    ground["live"].stop()
    ground["kubelet"].stop()
    ground["proxy"].stop()
    ground["cluster"].stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--min", type=float, default=5.0, help="shortest job, seconds")
    parser.add_argument("--spread", type=float, default=60.0, help="longest - shortest, seconds")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-end-from-trigger-")  # kept: the deployment's logs
    print(f"logs: {tmp}/home/logs", flush=True)
    ground = _ground(
        Path(tmp),
        dag_source=DAG.format(args=_args(args.tasks, args.min, args.spread)),
        dags=("bench_resume", "bench_end"),
    )
    try:
        results: dict[str, list[dict[str, Any]]] = {"resume": [], "end": []}
        for round_ in range(args.rounds):
            for variant in ("resume", "end"):
                result = _variant(ground, f"bench_{variant}")
                results[variant].append(result)
                print(f"round {round_ + 1} {variant}: {json.dumps(result)}", flush=True)
    finally:
        _stop(ground)
    summary = {
        variant: {
            key: statistics.median(r[key] for r in rows)
            for key in ("worker_runs", "wall_s", "scheduler_cpu_s", "triggerer_cpu_s")
        }
        | {"not_succeeded": sum(len(r["not_succeeded"]) for r in rows)}
        for variant, rows in results.items()
    }
    ratios = {
        key: round(summary["resume"][key] / summary["end"][key], 2)
        for key in ("worker_runs", "wall_s", "scheduler_cpu_s")
        if summary["end"][key]
    }
    print(
        json.dumps({"tasks": args.tasks, "summary": summary, "resume_over_end": ratios}, indent=2)
    )


if __name__ == "__main__":
    main()
