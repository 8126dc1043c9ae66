"""Trigger fan-in: N TFJobTriggers in one event loop vs per-job polling, against a real API server.

For each N, 2 x N TFJobs (one worker pod each) are created on the test kube-apiserver; a writer
finishes every job at a random moment within ``--wait`` seconds, as the training operator does:
the pod's container terminates (with a termination message), then the job's status becomes
Succeeded. Two trigger processes wait for them at once, through the fault proxy, which counts
every request and open stream:

- ``ours``: N ``TFJobTrigger`` (shared watches) in one asyncio loop, as a triggerer runs them;
- ``baseline``: N per-job polling triggers in one loop (the approach of the cncf provider's
  ``KubernetesJobTrigger``): GET the job every ``--poll`` seconds, list its pods once at the
  end for the output. Their starts are spread over the first interval, as triggers deferred
  over time would be (all at once would only add a burst).

Both wait on the same finishing schedule, in namespaces of their own. Reported per side: requests
(and open streams, peak) at the proxy, latency from the job's status write to the trigger's event
(p50 / p99), CPU seconds and peak RSS of the trigger process, and the baseline / ours ratios.

    python bench/trigger_fanin.py [--n 100,500,1000] [--wait 600] [--poll 10] [--namespaces 1]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import datetime
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

JOB_LABEL = "training.kubeflow.org/job-name"
ROWS = (
    *((key, "{:.0f}") for key in ("requests", "watch_requests", "peak_streams", "wrong_outputs")),
    *((key, "{:.3f}") for key in ("p50", "p99", "max")),
    *((key, "{:.1f}") for key in ("cpu_wait", "cpu_total")),
    ("peak_rss_mib", "{:.0f}"),
)


# --------------------------------------------------------------------------- trigger processes


class PollingTrigger:
    """The baseline: read the job every ``poll`` seconds until it ends, then its pods once."""

    def __init__(self, hook: Any, name: str, namespace: str, poll: float) -> None:
        self.hook, self.name, self.namespace, self.poll = hook, name, namespace, poll

    async def run(self, delay: float) -> dict[str, Any]:
        from airflow_tfjob.spec import report, status

        await asyncio.sleep(delay)
        while True:
            obj = await self.hook.get(self.name, self.namespace)
            state = status.job_state(obj)
            if state.is_terminal:
                ledger = status.ReplicaLedger.for_job(obj)
                for pod in (await self.hook.list_pods(self.name, self.namespace))[0]:
                    ledger.observe(pod)
                return report.result(obj, state, ledger.output)
            await asyncio.sleep(self.poll)


async def _wait_all(
    role: str, jobs: list[dict[str, str]], kubeconfig: str, poll: float, ready: str
) -> Any:
    import airflow.providers.cncf.kubernetes.hooks.kubernetes  # noqa: F401 - a triggerer has it
    import kubernetes_asyncio.client  # noqa: F401

    from airflow_tfjob.hooks.tfjob import AsyncTFJobHook, TFJobHook
    from airflow_tfjob.triggers.tfjob import TFJobTrigger

    settings = TFJobHook(kubernetes_conn_id=None, config_file=kubeconfig).trigger_settings()
    done: dict[str, tuple[float, Any]] = {}

    async def ours(job: dict[str, str]) -> None:
        trigger = TFJobTrigger(
            name=job["name"], namespace=job["namespace"], uid=job["uid"],
            settings=settings, poll_interval=poll,
        )  # fmt: skip
        async for event in trigger.run():
            payload = event.payload
            done[job["name"]] = (time.time(), (payload.get("result") or {}).get("output"))

    hook = AsyncTFJobHook(None, **settings)

    async def baseline(job: dict[str, str]) -> None:
        result = await PollingTrigger(hook, job["name"], job["namespace"], poll).run(
            random.uniform(0, poll)
        )
        done[job["name"]] = (time.time(), result.get("output"))

    run = ours if role == "ours" else baseline
    cpu0 = _cpu()
    tasks = [asyncio.create_task(run(job)) for job in jobs]
    await asyncio.sleep(1.0)
    Path(ready).touch()  # every trigger started (as in a running triggerer): begin
    await asyncio.gather(*tasks)
    return done, _cpu() - cpu0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def trigger_process(args: argparse.Namespace) -> None:
    """One side's trigger process: wait for every job, then report to ``--out``."""
    jobs = json.loads(Path(args.jobs).read_text())
    done, cpu = asyncio.run(
        _wait_all(args.role, jobs, args.kubeconfig, args.poll, f"{args.out}.ready")
    )
    usage = resource.getrusage(resource.RUSAGE_SELF)
    Path(args.out).write_text(
        json.dumps(
            {
                "events": {name: [t, output] for name, (t, output) in done.items()},
                "cpu_wait": cpu,
                "cpu_total": usage.ru_utime + usage.ru_stime,
                "peak_rss_mib": usage.ru_maxrss / 1024,
            }
        )
    )


# --------------------------------------------------------------------------- the orchestrator


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _job(name: str, namespace: str) -> dict[str, Any]:
    from airflow_tfjob import TfJob, Worker

    manifest = TfJob(worker=Worker()).to_manifest(name, namespace, image="tf:2")
    manifest["metadata"]["labels"] = {"bench": "fanin"}
    return manifest


def _pod(job: dict[str, Any]) -> dict[str, Any]:
    meta = job["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{meta['name']}-worker-0",
            "namespace": meta["namespace"],
            "labels": {
                JOB_LABEL: meta["name"],
                "training.kubeflow.org/replica-type": "worker",
                "training.kubeflow.org/replica-index": "0",
            },
        },
        "spec": {"containers": [{"name": "tensorflow", "image": "tf:2"}]},
    }


def _container(state: dict[str, Any]) -> dict[str, Any]:
    return {"status": {"phase": "Running" if "running" in state else "Succeeded",
                       "containerStatuses": [{"name": "tensorflow", "ready": "running" in state,
                                              "restartCount": 0, "image": "tf:2", "imageID": "",
                                              "state": state}]}}  # fmt: skip


def _job_status(phase: str) -> dict[str, Any]:
    now = _now()
    conditions = [{"type": "Created", "status": "True", "reason": "TFJobCreated",
                   "lastUpdateTime": now, "lastTransitionTime": now}]  # fmt: skip
    running = {"type": "Running", "status": "True", "reason": "TFJobRunning",
               "lastUpdateTime": now, "lastTransitionTime": now}  # fmt: skip
    if phase == "Succeeded":
        running["status"] = "False"
        conditions += [running, {"type": "Succeeded", "status": "True", "reason": "TFJobSucceeded",
                                 "lastUpdateTime": now, "lastTransitionTime": now}]  # fmt: skip
        counts = {"Worker": {"succeeded": 1}}
    else:
        conditions.append(running)
        counts = {"Worker": {"active": 1}}
    body: dict[str, Any] = {"status": {"conditions": conditions, "replicaStatuses": counts,
                                       "startTime": now}}  # fmt: skip
    if phase == "Succeeded":
        body["status"]["completionTime"] = now
    return body


class Ground:
    """The API server, the proxy in front of it, and admin clients that write past the proxy."""

    def __init__(self, workdir: Path) -> None:
        import kubernetes

        from tests.cluster import cluster as cluster_mod
        from tests.sim.proxy import FaultProxy

        self.cluster = cluster_mod.start_cluster(workdir=workdir / "cluster")
        self.proxy = FaultProxy.for_cluster(self.cluster, workdir=workdir).start()
        self.local = threading.local()
        self.kubernetes = kubernetes

    def apis(self) -> tuple[Any, Any]:
        if not hasattr(self.local, "apis"):
            client = self.cluster.api_client()
            k = self.kubernetes.client
            self.local.apis = (k.CoreV1Api(client), k.CustomObjectsApi(client))
        return self.local.apis  # type: ignore[no-any-return]

    def stop(self) -> None:
        self.proxy.stop()
        self.cluster.stop()


def _prepare(ground: Ground, namespace: str, name: str) -> dict[str, str]:
    core, custom = ground.apis()
    job = custom.create_namespaced_custom_object("kubeflow.org", "v1", namespace, "tfjobs",
                                                 _job(name, namespace))  # fmt: skip
    custom.patch_namespaced_custom_object_status(
        "kubeflow.org", "v1", namespace, "tfjobs", name, _job_status("Running")
    )
    pod = core.create_namespaced_pod(namespace, _pod(job))
    started = {"running": {"startedAt": _now()}}
    core.patch_namespaced_pod_status(pod.metadata.name, namespace, _container(started))
    return {"name": name, "namespace": namespace, "uid": job["metadata"]["uid"]}


def _finish(ground: Ground, job: dict[str, str]) -> float:
    """Terminate the job's container with its output, then mark the job Succeeded; the time the
    job's status write was sent (the latency's start)."""
    core, custom = ground.apis()
    now = _now()
    message = json.dumps({"job": job["name"]})
    ended = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now,
                            "finishedAt": now, "message": message}}  # fmt: skip
    core.patch_namespaced_pod_status(f"{job['name']}-worker-0", job["namespace"], _container(ended))
    sent = time.time()
    custom.patch_namespaced_custom_object_status(
        "kubeflow.org", "v1", job["namespace"], "tfjobs", job["name"], _job_status("Succeeded")
    )
    return sent


def _side(ground: Ground, role: str, n: int, namespaces: int, pool: Any) -> list[dict[str, str]]:
    core, _ = ground.apis()
    spaces = [f"fanin-{role}-{n}-{i}" for i in range(namespaces)]
    for ns in spaces:
        core.create_namespace({"metadata": {"name": ns}})
    names = [(spaces[i % namespaces], f"job-{i:04d}") for i in range(n)]
    return list(pool.map(lambda nn: _prepare(ground, *nn), names))


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def run_one(ground: Ground, n: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    rng = random.Random(args.seed + n)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        sides = {r: _side(ground, r, n, args.namespaces, pool) for r in ("ours", "baseline")}
    ground.proxy.history.clear()
    ground.proxy.peak_streams = 0
    procs, outs = {}, {}
    log = (workdir / f"triggers-{n}.log").open("w")
    for role, jobs in sides.items():
        jobs_file, outs[role] = workdir / f"{role}-{n}.json", workdir / f"{role}-{n}-out.json"
        jobs_file.write_text(json.dumps(jobs))
        procs[role] = subprocess.Popen(
            [sys.executable, __file__, "--role", role, "--jobs", str(jobs_file),
             "--out", str(outs[role]), "--kubeconfig", str(ground.proxy.kubeconfig),
             "--poll", str(args.poll)],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
    for role, proc in procs.items():  # the trigger logs go to a file: a pipe left unread blocks
        while not Path(f"{outs[role]}.ready").exists():
            assert proc.poll() is None, f"the {role} trigger process died: see {log.name}"
            time.sleep(0.1)
    offsets = sorted((rng.uniform(0, args.wait), i) for i in range(n))
    peaks = {"ours": 0, "baseline": 0}
    written: dict[str, float] = {}
    start = time.monotonic()
    for offset, i in offsets:
        while (pause := start + offset - time.monotonic()) > 0:
            _sample(ground, sides, peaks)
            time.sleep(min(pause, 0.2))
        for role in sides:
            job = sides[role][i]
            written[f"{role}/{job['name']}"] = _finish(ground, job)
    for proc in procs.values():
        while proc.poll() is None:
            _sample(ground, sides, peaks)
            time.sleep(0.2)
        assert proc.returncode == 0, f"a trigger process failed ({proc.returncode})"
    results = {role: json.loads(outs[role].read_text()) for role in sides}
    return {role: _report(ground, role, sides[role], results[role], written, peak=peaks[role])
            for role in sides}  # fmt: skip


def _sample(ground: Ground, sides: dict[str, list[dict[str, str]]], peaks: dict[str, int]) -> None:
    for role, jobs in sides.items():
        spaces = "|".join(sorted({j["namespace"] for j in jobs}))
        peaks[role] = max(peaks[role], ground.proxy.open_streams(f"/namespaces/({spaces})/"))


def _report(ground: Ground, role: str, jobs: list[dict[str, str]], out: dict[str, Any],
            written: dict[str, float], *, peak: int) -> dict[str, Any]:  # fmt: skip
    spaces = "|".join(sorted({j["namespace"] for j in jobs}))
    latency, wrong = [], 0
    for job in jobs:
        when, output = out["events"][job["name"]]
        latency.append(when - written[f"{role}/{job['name']}"])
        wrong += output != {"job": job["name"]}
    if os.environ.get("FANIN_DEBUG"):
        import collections
        import re

        seen = collections.Counter(
            (m, re.sub(r"job-\d+", "job-N", p), q.split("&")[0])
            for m, p, q in ground.proxy.history
            if re.search(f"/namespaces/({spaces})/", p)
        )
        print(role, seen.most_common(8))
    return {
        "requests": ground.proxy.requests(f"/namespaces/({spaces})/"),
        "watch_requests": ground.proxy.requests(f"/namespaces/({spaces})/", watch=True),
        "peak_streams": peak,
        "p50": statistics.median(latency),
        "p99": _percentile(latency, 99),
        "max": max(latency),
        "wrong_outputs": wrong,
        "cpu_wait": out["cpu_wait"],
        "cpu_total": out["cpu_total"],
        "peak_rss_mib": out["peak_rss_mib"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", default="100,500,1000")
    parser.add_argument("--wait", type=float, default=600.0, help="seconds over which jobs end")
    parser.add_argument("--poll", type=float, default=10.0)
    parser.add_argument("--namespaces", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--role", choices=("ours", "baseline"))
    parser.add_argument("--jobs"), parser.add_argument("--out"), parser.add_argument("--kubeconfig")
    args = parser.parse_args()
    if args.role:
        return trigger_process(args)
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    with tempfile.TemporaryDirectory(prefix="fanin-") as tmp:
        ground = Ground(Path(tmp))
        try:
            print(f"trigger fan-in: jobs end at random within {args.wait:.0f} s; baseline polls "
                  f"every {args.poll:.0f} s; {args.namespaces} namespace(s) per side")  # fmt: skip
            for n in (int(x) for x in args.n.split(",")):
                started = time.monotonic()
                r = run_one(ground, n, args, Path(tmp))
                ours, base = r["ours"], r["baseline"]
                print(f"\nN={n}  ({time.monotonic() - started:.0f} s)")
                print(f"{'':14}{'ours':>12}{'baseline':>12}{'base/ours':>11}")
                for key, fmt in ROWS:
                    ratio = base[key] / ours[key] if ours[key] else float("inf")
                    print(f"{key:14}{fmt.format(ours[key]):>12}{fmt.format(base[key]):>12}"
                          f"{ratio:>10.1f}x")  # fmt: skip
                print("json " + json.dumps({"n": n, **r}), flush=True)
        finally:
            ground.stop()


if __name__ == "__main__":
    main()
