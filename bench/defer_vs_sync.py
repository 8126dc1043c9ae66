"""What a user gains by deferring, end to end: one DAG deferrable and not, in a real deployment.

One live deployment (tests/live: PostgreSQL, api-server, scheduler with the LocalExecutor and
``--slots`` worker slots, dag-processor, triggerer as separate processes) talks to the test
kube-apiserver through the fault proxy, which counts requests and open streams; the simulated
training operator runs each job's one worker replica as a real local process. Two DAGs of
``--tasks`` mapped ``TFJobOperator`` tasks, identical but for ``deferrable``; each job ends at a
random moment (seeded, the same for both) within ``--spread`` seconds of its start. The variants
run one after the other.

Reported per variant, each measured over its own run:

- latency from a job's ``Succeeded`` (its condition's ``lastTransitionTime``, whole seconds) to
  its task instance's end (p50 / p99);
- worker slots held: peak running task instances, and slot-seconds (running task instances
  integrated over the run, sampled every 2 s);
- the run's wall time;
- API requests at the proxy, and peak open streams (watches and log follows);
- CPU seconds of the scheduler's process tree (the LocalExecutor's workers and their task
  processes) and of the triggerer, and peak RSS of each;

and the ratios sync / deferred.

    python bench/defer_vs_sync.py [--tasks 200] [--spread 300] [--slots 64] [--seed 7]
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

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
for dag_id, deferrable in (("bench_sync", False), ("bench_deferred", True)):
    with DAG(dag_id, schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False):
        TFJobOperator.partial(
            task_id="train",
            tfjob=TfJob(worker=Worker()),
            image="tf:2",
            command=["python", "-c", SCRIPT],
            deferrable=deferrable,
            poll_interval=5,
            get_logs=False,
            on_finish_action="keep_tfjob",  # read each job's Succeeded time afterwards
        ).expand(args={args!r})
'''


class Sampler(threading.Thread):
    """Every ``period`` s: running task instances, open streams, components' RSS."""

    def __init__(self, ground: dict[str, Any], dag: str, run: str, period: float = 2.0) -> None:
        super().__init__(daemon=True)
        self.ground, self.dag, self.run_id, self.period = ground, dag, run, period
        self.stop = threading.Event()
        self.running: list[int] = []
        self.streams: list[int] = []
        self.rss: dict[str, float] = {"scheduler": 0.0, "triggerer": 0.0}

    def run(self) -> None:
        import psutil

        from tests.live.deployment import USERS
        from tests.live.rest import AirflowClient

        live, proxy = self.ground["live"], self.ground["proxy"]
        with AirflowClient(live.url, "admin", USERS["admin"], timeout=120) as api:
            while not self.stop.wait(self.period):
                try:
                    tis = api.task_instances(self.dag, self.run_id)
                except Exception:  # a busy api-server: skip this sample
                    continue
                self.running.append(sum(1 for ti in tis if ti["state"] == "running"))
                self.streams.append(proxy.open_streams(""))
                for name in self.rss:
                    total = 0
                    for pid in live.components[name].session():
                        try:
                            total += psutil.Process(pid).memory_info().rss
                        except psutil.Error:
                            continue
                    self.rss[name] = max(self.rss[name], total / 2**20)


def _variant(ground: dict[str, Any], dag: str) -> dict[str, Any]:
    from airflow_tfjob.model import naming
    from airflow_tfjob.rules import jobevents

    live, api, proxy = ground["live"], ground["api"], ground["proxy"]
    cpu0 = live.cpu_seconds()
    requests0 = proxy.requests("")
    began = time.monotonic()
    run = api.trigger(dag)
    sampler = Sampler(ground, dag, run)
    sampler.start()
    api.wait_for_run(dag, run, timeout=7200)
    wall = time.monotonic() - began
    sampler.stop.set()
    sampler.join()
    time.sleep(5)  # the last workers' exits reach the scheduler, and their CPU its tree
    cpu1 = live.cpu_seconds()
    tis = api.task_instances(dag, run)
    latencies = []
    custom = ground["custom"]
    for ti in tis:
        name = naming.job_name(dag, "train", run, ti["map_index"])
        obj = custom.get_namespaced_custom_object(
            "kubeflow.org", "v1", ground["namespace"], "tfjobs", name
        )
        succeeded = jobevents.reached_at(obj, "Succeeded")
        if succeeded and ti["end_date"]:
            ended = datetime.datetime.fromisoformat(ti["end_date"].replace("Z", "+00:00"))
            at = datetime.datetime.fromisoformat(succeeded.replace("Z", "+00:00"))
            latencies.append((ended - at).total_seconds())
    latencies.sort()
    return {
        "tasks": len(tis),
        "not_succeeded": sum(1 for ti in tis if ti["state"] != "success"),
        "latency_p50_s": round(statistics.median(latencies), 2),
        "latency_p99_s": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 2),
        "peak_running_tis": max(sampler.running, default=0),
        "slot_seconds": round(sum(sampler.running) * sampler.period),
        "wall_s": round(wall, 1),
        "api_requests": proxy.requests("") - requests0,
        "peak_open_streams": max(sampler.streams, default=0),
        "scheduler_cpu_s": round(cpu1["scheduler"] - cpu0["scheduler"], 1),
        "triggerer_cpu_s": round(cpu1["triggerer"] - cpu0["triggerer"], 1),
        "scheduler_peak_rss_mib": round(sampler.rss["scheduler"]),
        "triggerer_peak_rss_mib": round(sampler.rss["triggerer"]),
    }


def main() -> None:
    import kubernetes
    from end_from_trigger import _ground, _stop

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--spread", type=float, default=300.0, help="jobs end within, seconds")
    parser.add_argument("--slots", type=int, default=64, help="[core] parallelism")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    durations = [[f"{rng.uniform(1, args.spread):.1f}", str(i)] for i in range(args.tasks)]
    tmp = tempfile.mkdtemp(prefix="bench-defer-vs-sync-")  # kept: the deployment's logs
    print(f"logs: {tmp}/home/logs", flush=True)
    ground = _ground(
        Path(tmp),
        dag_source=DAG.format(args=durations),
        dags=("bench_sync", "bench_deferred"),
        config={"core.parallelism": str(args.slots)},
    )
    ground["custom"] = kubernetes.client.CustomObjectsApi(ground["cluster"].api_client())
    try:
        results = {}
        for variant in ("deferred", "sync"):
            results[variant] = _variant(ground, f"bench_{variant}")
            print(f"{variant}: {json.dumps(results[variant])}", flush=True)
    finally:
        _stop(ground)
    ratios = {
        key: round(results["sync"][key] / results["deferred"][key], 2)
        for key in results["sync"]
        if key not in ("tasks", "not_succeeded") and results["deferred"][key]
    }
    print(
        json.dumps(
            {"tasks": args.tasks, "results": results, "sync_over_deferred": ratios}, indent=2
        )
    )


if __name__ == "__main__":
    main()
