"""Trigger fan-in: N TFJobTriggers in one event loop vs per-job polling, against a real API server.

For each N, 2 x N TFJobs (one worker pod each) are created on the test kube-apiserver; a writer
finishes every job at a random moment within ``--wait`` seconds, as the training operator does:
the pod's container terminates (with a termination message), then the job's status becomes
Succeeded. The writer plays the operator (it creates the pods and writes every status): the
cluster runs without the real one, which would race it. Two trigger processes wait for them at
once, through the fault proxy, which counts every request and open stream:

- ``ours``: N ``TFJobTrigger`` (shared watches) in one asyncio loop, as a triggerer runs them;
- ``baseline``: N per-job polling triggers in one loop (the approach of the cncf provider's
  ``KubernetesJobTrigger``): GET the job every ``--poll`` seconds, list its pods once at the
  end for the output. Their starts are spread over the first interval, as triggers deferred
  over time would be (all at once would only add a burst).

Both wait on the same finishing schedule, in namespaces of their own. Reported per side: requests
(and open streams, peak) at the proxy, latency from the job's status write to the trigger's event
(p50 / p99), CPU seconds and peak RSS of the trigger process, and the baseline / ours ratios.

A third process, ``idle``, is the same trigger process with no trigger (same imports, same
settings, an event loop that waits as long): ours' peak RSS growth is measured over it, and CPU
seconds per 1,000 status changes (the two writes that end each job) over its CPU in the wait.
``--no-poll-baseline`` leaves out the polling side (at N = 10,000 it would send 1,000 GETs a
second to the same 2-core API server, and double the objects to create).

``--crowd JOBS,PODS`` measures a crowded namespace: each N runs twice, without and then with
JOBS TFJobs that Airflow did not create (no ``app.kubernetes.io/managed-by`` label) and PODS of
their pods in ours' namespaces, each crowd pod and job changing status once at a random moment
of the wait (written by 4 threads beside the finishing schedule).

``--logs SECONDS`` measures the triggers' log streams with the operator's default
``get_logs=True``: each N runs twice, logs off and then on, ``--replicas`` worker pods per job
(3 with logs), each printing a numbered line every SECONDS (``bench/_fanin_logs.py``: a kubelet
log endpoint behind the API server's log proxy). Added per pass: log requests (and reconnects:
log requests beyond one per pod), the trigger process's peak open file descriptors, and the
lines lost or repeated in what the triggers printed.

    python bench/trigger_fanin.py [--n 100,500,1000] [--wait 600] [--poll 10] [--namespaces 1]
        [--no-poll-baseline] [--crowd 5000,20000] [--logs 3 --replicas 3]

The wait starts once ours are in sync (watches listed, every trigger holding its job, the loop
idle); the start-up's time and CPU are printed apart, with ours' loop lag and full garbage
collections during the wait. Diagnostics (they slow ours; not for figures): ``FANIN_DEBUG=1``
prints ours' commonest requests, ``FANIN_PROFILE=file`` writes a cProfile of ours,
``FANIN_TRACEMALLOC=file`` its live memory by line, 5 s into the wait.
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

from bench._fanin_logs import (  # noqa: E402 - after the path
    NODE,
    CountingLog,
    Printer,
    new_seen,
    open_fds,
    sample_fds,
    tally,
)

JOB_LABEL = "training.kubeflow.org/job-name"
MANAGED_BY = {"app.kubernetes.io/managed-by": "airflow-tfjob"}  # naming.MANAGED_BY
ROWS = (
    *((key, "{:.0f}") for key in ("requests", "watch_requests", "peak_streams", "wrong_outputs")),
    *((key, "{:.3f}") for key in ("p50", "p99", "max")),
    *((key, "{:.1f}") for key in ("cpu_wait", "cpu_total")),
    ("cpu_per_1k_changes", "{:.2f}"),
    ("peak_rss_mib", "{:.0f}"),
    *((key, "{:.0f}") for key in ("log_requests", "log_reconnects", "peak_fds")),
    ("peak_connections", "{:.0f}"),
    *((key, "{:.0f}") for key in ("lines_printed", "lines_shown", "lines_lost", "lines_repeated")),
    ("rss_growth_mib", "{:.0f}"),
    ("end_rss_growth_mib", "{:.0f}"),
)


# --------------------------------------------------------------------------- trigger processes


class PollingTrigger:
    """The baseline: read the job every ``poll`` seconds until it ends, then its pods once."""

    def __init__(self, hook: Any, name: str, namespace: str, poll: float) -> None:
        self.hook, self.name, self.namespace, self.poll = hook, name, namespace, poll

    async def run(self, delay: float) -> dict[str, Any]:
        from airflow_tfjob.rules import report, status

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
    role: str,
    jobs: list[dict[str, str]],
    kubeconfig: str,
    poll: float,
    ready: str,
    *,
    seen: dict[str, list[int]] | None = None,
) -> Any:
    import airflow.providers.cncf.kubernetes.hooks.kubernetes  # noqa: F401 - a triggerer has it
    import kubernetes_asyncio.client  # noqa: F401

    from airflow_tfjob.hooks.tfjob import AsyncTFJobHook, TFJobHook
    from airflow_tfjob.triggers.tfjob import TFJobTrigger

    settings = TFJobHook(kubernetes_conn_id=None, config_file=kubeconfig).trigger_settings()
    done: dict[str, tuple[float, Any]] = {}

    async def ours(job: dict[str, str]) -> None:
        # from kwargs of its own, decoded as the triggerer decodes each trigger's from the DB
        kwargs = json.dumps(
            {
                "name": job["name"],
                "namespace": job["namespace"],
                "uid": job["uid"],
                "settings": settings,
                "poll_interval": poll,
                "get_logs": seen is not None,
            }
        )
        trigger = TFJobTrigger(**json.loads(kwargs))
        if seen is not None:  # count the replica lines it prints (LoggingMixin keeps _log)
            trigger._log = CountingLog(seen)
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
    traced = os.environ.get("FANIN_TRACEMALLOC") if role == "ours" else None
    if traced:  # what the triggers hold, by line (slows the process: not for figures)
        import tracemalloc

        tracemalloc.start()
    cpu0, began = _cpu(), time.monotonic()
    tasks = [asyncio.create_task(run(job)) for job in jobs]
    await asyncio.sleep(1.0)
    if role == "ours":
        await _in_sync(len(jobs))
    Path(f"{ready}.sync").write_text(f"{time.monotonic() - began} {_cpu() - cpu0} {_rss_now()}")
    cpu0 = _cpu()  # the wait's CPU counts from here
    stalls = _watch_stalls(f"{ready}.stalls") if role == "ours" else None
    Path(ready).touch()  # every trigger started and in sync (as in a running triggerer): begin
    if traced:
        await asyncio.sleep(5.0)
        top = tracemalloc.take_snapshot().statistics("lineno")[:30]
        now, peak = (x / 2**20 for x in tracemalloc.get_traced_memory())
        head = f"traced since the triggers' creation: now {now:.1f} MiB, peak {peak:.1f} MiB"
        Path(traced).write_text("\n".join([head, *(str(stat) for stat in top)]))
        tracemalloc.stop()
    if role == "idle":  # no trigger: wait as long as the others, then stop
        while not Path(f"{ready}.stop").exists():
            await asyncio.sleep(0.5)
    await asyncio.gather(*tasks)
    cpu = _cpu() - cpu0
    if stalls is not None:
        stalls.cancel()
    return done, cpu


def _watch_stalls(path: str) -> asyncio.Task[None]:
    """Record the event loop's lag (sampled every 50 ms) and the garbage collector's pauses
    during the wait, written to ``path`` as JSON when cancelled."""
    import gc

    pauses: list[float] = []
    lags: list[float] = []
    began: list[float] = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
        elif info.get("generation") == 2:  # the oldest generation
            pauses.append(time.perf_counter() - began[0])

    gc.callbacks.append(on_gc)

    async def sample() -> None:
        try:
            while True:
                before = time.monotonic()
                await asyncio.sleep(0.05)
                lags.append(time.monotonic() - before - 0.05)
        finally:
            gc.callbacks.remove(on_gc)
            lags.sort()
            Path(path).write_text(json.dumps({
                "gc2": len(pauses), "gc2_max": max(pauses, default=0.0),
                "gc2_total": sum(pauses), "lag_max": lags[-1] if lags else 0.0,
                "lag_p99": lags[int(0.99 * (len(lags) - 1))] if lags else 0.0,
                "lag_over_1s": sum(1 for x in lags if x > 1.0)}))  # fmt: skip

    return asyncio.create_task(sample())


async def _in_sync(n: int) -> None:
    """Until the shared watches have listed and every trigger holds its job's state: the loop
    then keeps up (its lag stays under 20 ms for a second)."""
    from airflow_tfjob.backends.kubernetes import watches

    calm = 0
    while calm < 20:
        opened = watches.active().values()
        synced = bool(opened) and all(w.synced for w in opened)
        before = time.monotonic()
        await asyncio.sleep(0.05)
        lag = time.monotonic() - before - 0.05
        calm = calm + 1 if synced and lag < 0.02 else 0


def _rss_now() -> float:
    """The process's resident memory now (MiB), against ``ru_maxrss``'s peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def trigger_process(args: argparse.Namespace) -> None:
    """One side's trigger process: wait for every job, then report to ``--out``."""
    jobs = json.loads(Path(args.jobs).read_text())
    seen = new_seen() if args.get_logs else None
    if os.environ.get("FANIN_DEBUG") and args.role == "ours":  # the triggers' messages, timed
        import logging

        logging.basicConfig(level=logging.INFO, format="%(created).3f %(message)s")
    fds, stop_fds = [open_fds()], threading.Event()
    threading.Thread(target=sample_fds, args=(fds, stop_fds), daemon=True).start()
    profile = os.environ.get("FANIN_PROFILE") if args.role == "ours" else None
    if profile:  # where the trigger process spends its time (pstats file)
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    done, cpu = asyncio.run(
        _wait_all(args.role, jobs, args.kubeconfig, args.poll, f"{args.out}.ready", seen=seen)
    )
    stop_fds.set()
    if profile:
        profiler.disable()
        profiler.dump_stats(profile)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    Path(args.out).write_text(
        json.dumps(
            {
                "events": {name: [t, output] for name, (t, output) in done.items()},
                "cpu_wait": cpu,
                "cpu_total": usage.ru_utime + usage.ru_stime,
                "peak_rss_mib": usage.ru_maxrss / 1024,
                "end_rss_mib": _rss_now(),
                "peak_fds": fds[0],
                "lines": seen or {},
            }
        )
    )


# --------------------------------------------------------------------------- the orchestrator


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _job(name: str, namespace: str, *, ours: bool = True, workers: int = 1) -> dict[str, Any]:
    """A TFJob labelled as the provider labels what it creates (``ours``: the job, and each
    replica's pod template with the task identity), or a crowd's (neither)."""
    from airflow_tfjob import TfJob, Worker
    from airflow_tfjob.model import naming
    from airflow_tfjob.operators._build import label_pods

    manifest = TfJob(worker=Worker(replicas=workers)).to_manifest(name, namespace, image="tf:2")
    if not ours:
        manifest["metadata"]["labels"] = {"bench": "crowd"}
        return manifest
    manifest["metadata"]["labels"] = {"bench": "fanin", **MANAGED_BY}
    label_pods(manifest, naming.identity(naming.task_labels("fanin", "wait", "bench", -1, 1)))
    return manifest


def _owner(meta: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "kubeflow.org/v1", "kind": "TFJob", "name": meta["name"],
            "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}  # fmt: skip


def _pod(job: dict[str, Any], index: int = 0, node: str | None = None) -> dict[str, Any]:
    """A worker pod as the training operator makes it: its template's labels and the operator's."""
    meta = job["metadata"]
    template = job["spec"]["tfReplicaSpecs"]["Worker"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{meta['name']}-worker-{index}",
            "namespace": meta["namespace"],
            "labels": {
                **((template.get("metadata") or {}).get("labels") or {}),
                JOB_LABEL: meta["name"],
                "training.kubeflow.org/replica-type": "worker",
                "training.kubeflow.org/replica-index": str(index),
                "training.kubeflow.org/operator-name": "tfjob-controller",
            },
            "ownerReferences": [_owner(meta)],
        },
        "spec": {
            "containers": [{"name": "tensorflow", "image": "tf:2"}],
            **({"nodeName": node} if node else {}),
        },
    }


def _container(state: dict[str, Any]) -> dict[str, Any]:
    return {"status": {"phase": "Running" if "running" in state else "Succeeded",
                       "containerStatuses": [{"name": "tensorflow", "ready": "running" in state,
                                              "restartCount": 0, "image": "tf:2", "imageID": "",
                                              "state": state}]}}  # fmt: skip


def _job_status(phase: str, replicas: int = 1) -> dict[str, Any]:
    now = _now()
    conditions = [{"type": "Created", "status": "True", "reason": "TFJobCreated",
                   "lastUpdateTime": now, "lastTransitionTime": now}]  # fmt: skip
    running = {"type": "Running", "status": "True", "reason": "TFJobRunning",
               "lastUpdateTime": now, "lastTransitionTime": now}  # fmt: skip
    if phase == "Succeeded":
        running["status"] = "False"
        conditions += [running, {"type": "Succeeded", "status": "True", "reason": "TFJobSucceeded",
                                 "lastUpdateTime": now, "lastTransitionTime": now}]  # fmt: skip
        counts = {"Worker": {"succeeded": replicas}}
    else:
        conditions.append(running)
        counts = {"Worker": {"active": replicas}}
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
        from tests.faults.proxy import FaultProxy

        # the writer plays the training operator (pods, statuses): the real one would race it
        # (it creates each job's pods first, bound to no node: their logs answer 204)
        self.cluster = cluster_mod.start_cluster(workdir=workdir / "cluster", operator=False)
        self.proxy = FaultProxy.for_cluster(self.cluster, workdir=workdir).start()
        self.local = threading.local()
        self.kubernetes = kubernetes
        self.printer: Printer | None = None
        """With ``--logs``: the replicas' log endpoint and the writer of their lines."""

    def apis(self) -> tuple[Any, Any]:
        if not hasattr(self.local, "apis"):
            client = self.cluster.api_client()
            k = self.kubernetes.client
            self.local.apis = (k.CoreV1Api(client), k.CustomObjectsApi(client))
        return self.local.apis  # type: ignore[no-any-return]

    def stop(self) -> None:
        if self.printer is not None:
            self.printer.stop()
        self.proxy.stop()
        self.cluster.stop()


def _prepare(ground: Ground, namespace: str, name: str, replicas: int = 1) -> dict[str, Any]:
    core, custom = ground.apis()
    manifest = _job(name, namespace, workers=replicas)
    job = custom.create_namespaced_custom_object(
        "kubeflow.org", "v1", namespace, "tfjobs", manifest
    )
    custom.patch_namespaced_custom_object_status(
        "kubeflow.org", "v1", namespace, "tfjobs", name, _job_status("Running", replicas)
    )
    printer = ground.printer
    for index in range(replicas):
        pod = core.create_namespaced_pod(namespace, _pod(job, index, printer and NODE))
        if printer is not None:  # its container runs, and prints, from now
            printer.add(namespace, pod.metadata.name, pod.metadata.uid)
        started = {"running": {"startedAt": _now()}}
        core.patch_namespaced_pod_status(pod.metadata.name, namespace, _container(started))
    return {"name": name, "namespace": namespace, "uid": job["metadata"]["uid"],
            "replicas": replicas}  # fmt: skip


def _finish(ground: Ground, job: dict[str, Any]) -> float:
    """Terminate the job's containers (worker 0's with the output), then mark the job
    Succeeded; the time the job's status write was sent (the latency's start)."""
    core, custom = ground.apis()
    replicas = job.get("replicas", 1)
    for index in reversed(range(replicas)):  # worker 0, the output, last
        pod = f"{job['name']}-worker-{index}"
        if ground.printer is not None:
            ground.printer.end(job["namespace"], pod)
        now = _now()
        message = json.dumps({"job": job["name"]}) if index == 0 else ""
        ended = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now,
                                "finishedAt": now, "message": message}}  # fmt: skip
        core.patch_namespaced_pod_status(pod, job["namespace"], _container(ended))
    sent = time.time()
    custom.patch_namespaced_custom_object_status(
        "kubeflow.org", "v1", job["namespace"], "tfjobs", job["name"],
        _job_status("Succeeded", replicas),
    )  # fmt: skip
    return sent


def _side(
    ground: Ground,
    role: str,
    n: int,
    namespaces: int,
    pool: Any,
    *,
    tag: str = "",
    replicas: int = 1,
) -> list[dict[str, Any]]:
    core, _ = ground.apis()
    spaces = [f"fanin-{role}-{n}{tag}-{i}" for i in range(namespaces)]
    for ns in spaces:
        core.create_namespace({"metadata": {"name": ns}})
    names = [(spaces[i % namespaces], f"job-{i:05d}") for i in range(n)]
    return list(pool.map(lambda nn: _prepare(ground, *nn, replicas), names))


def _crowd(ground: Ground, spaces: list[str], jobs: int, pods: int, pool: Any) -> list[Any]:
    """``jobs`` TFJobs Airflow did not create, with ``pods`` pods among them, in ``spaces``;
    every crowd pod Pending and every job Created. Returns the status writes to make later."""
    per = max(1, pods // max(1, jobs))

    def one(i: int) -> list[Any]:
        core, custom = ground.apis()
        ns, name = spaces[i % len(spaces)], f"crowd-{i:05d}"
        job = custom.create_namespaced_custom_object(
            "kubeflow.org", "v1", ns, "tfjobs", _job(name, ns, ours=False, workers=per)
        )
        writes: list[Any] = [("job", ns, name)]
        for k in range(per):
            pod = core.create_namespaced_pod(ns, _pod(job, k))
            writes.append(("pod", ns, pod.metadata.name))
        return writes

    return [w for ws in pool.map(one, range(jobs)) for w in ws]


def _crowd_write(ground: Ground, write: tuple[str, str, str]) -> None:
    """One status change of a crowd object: a pod starts running, a job runs."""
    core, custom = ground.apis()
    kind, ns, name = write
    if kind == "pod":
        core.patch_namespaced_pod_status(name, ns, _container({"running": {"startedAt": _now()}}))
    else:
        custom.patch_namespaced_custom_object_status(
            "kubeflow.org", "v1", ns, "tfjobs", name, _job_status("Running")
        )


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def run_one(
    ground: Ground,
    n: int,
    args: argparse.Namespace,
    workdir: Path,
    crowd: tuple[int, int] = (0, 0),
    *,
    logs: Printer | None = None,
) -> dict[str, Any]:
    rng = random.Random(args.seed + n)
    tag = (f"-c{crowd[0]}" if crowd[0] else "") + ("-logs" if logs else "")
    ground.printer = logs
    roles = ("ours", "baseline") if args.poll_baseline else ("ours",)
    sides, crowd_writes = _populate(ground, n, args, roles, tag=tag, crowd=crowd)
    ground.proxy.history.clear()
    ground.proxy.peak_streams = 0
    procs, outs = {}, {}
    log = (workdir / f"triggers-{n}{tag}.log").open("w")
    for role in (*roles, "idle"):
        jobs = sides.get(role, [])
        jobs_file = workdir / f"{role}-{n}{tag}.json"
        outs[role] = workdir / f"{role}-{n}{tag}-out.json"
        jobs_file.write_text(json.dumps(jobs))
        procs[role] = subprocess.Popen(
            [sys.executable, __file__, "--role", role, "--jobs", str(jobs_file),
             "--out", str(outs[role]), "--kubeconfig", str(ground.proxy.kubeconfig),
             "--poll", str(args.poll), *(["--get-logs"] if logs and role == "ours" else [])],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
    for role, proc in procs.items():  # the trigger logs go to a file: a pipe left unread blocks
        while not Path(f"{outs[role]}.ready").exists():
            assert proc.poll() is None, f"the {role} trigger process died: see {log.name}"
            time.sleep(0.1)
    offsets = sorted((rng.uniform(0, args.wait), i) for i in range(n))
    crowd_at = sorted((rng.uniform(0, args.wait), w) for w in crowd_writes)
    peaks = dict.fromkeys(roles, 0)
    written: dict[str, float] = {}
    start = time.monotonic()
    crowd_thread = threading.Thread(
        target=_crowd_schedule, args=(ground, crowd_at, start), daemon=True
    )
    crowd_thread.start()
    for offset, i in offsets:
        while (pause := start + offset - time.monotonic()) > 0:
            _sample(ground, sides, peaks)
            time.sleep(min(pause, 0.2))
        for role in sides:
            job = sides[role][i]
            written[f"{role}/{job['name']}"] = _finish(ground, job)
    late = max(0.0, time.monotonic() - start - args.wait)
    for role, proc in procs.items():
        if role == "idle":
            continue
        while proc.poll() is None:
            _sample(ground, sides, peaks)
            time.sleep(0.2)
        assert proc.returncode == 0, f"a trigger process failed ({proc.returncode})"
    crowd_thread.join()
    Path(f"{outs['idle']}.ready.stop").touch()
    assert procs["idle"].wait() == 0, "the idle process failed"
    results = {role: json.loads(outs[role].read_text()) for role in procs}
    synced = [float(x) for x in Path(f"{outs['ours']}.ready.sync").read_text().split()]
    synced += [0.0] * (3 - len(synced))
    stalls_file = Path(f"{outs['ours']}.ready.stalls")
    loop = json.loads(stalls_file.read_text()) if stalls_file.exists() else {}
    idle = results["idle"]
    report = {role: _report(ground, role, sides[role], results[role], written, peak=peaks[role],
                            idle=idle, printed=logs.printed if logs else None)
              for role in sides}  # fmt: skip
    report["ours"]["peak_connections"] = peaks.get("connections", 0)  # every side's, at the proxy
    _slowest(sides["ours"], results["ours"], written, Path(log.name))
    report["idle"] = {"cpu_wait": idle["cpu_wait"], "cpu_total": idle["cpu_total"],
                      "peak_rss_mib": idle["peak_rss_mib"]}  # fmt: skip
    report["run"] = {"wall_s": time.monotonic() - start, "writer_late_s": late,
                     "crowd_writes": len(crowd_writes),
                     "sync_s": synced[0], "sync_cpu": synced[1], "sync_rss_mib": synced[2],
                     "loop": loop}  # fmt: skip
    return report


def _slowest(jobs: list[dict[str, Any]], out: dict[str, Any], written: dict[str, float],
             log: Path, count: int = 3) -> None:  # fmt: skip
    """With ``FANIN_DEBUG``: the slowest events, and what the triggers said of their jobs."""
    if not os.environ.get("FANIN_DEBUG"):
        return
    late = sorted((out["events"][j["name"]][0] - written[f"ours/{j['name']}"], j["name"])
                  for j in jobs)[-count:]  # fmt: skip
    text = log.read_text(errors="replace").splitlines()
    for latency, name in reversed(late):
        print(f"slow: {name} {latency:.2f} s after its status write at "
              f"{written[f'ours/{name}']:.3f}", flush=True)  # fmt: skip
        for line in [t for t in text if f"{name}" in t][-12:]:
            print(f"  {line[:220]}", flush=True)


def _populate(
    ground: Ground,
    n: int,
    args: argparse.Namespace,
    roles: tuple[str, ...],
    *,
    tag: str,
    crowd: tuple[int, int],
) -> tuple[dict[str, list[dict[str, str]]], list[Any]]:
    """Each side's jobs, and the crowd's (in ours' namespaces) with its status writes to make."""
    began = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        sides = {r: _side(ground, r, n, args.namespaces, pool, tag=tag, replicas=args.replicas)
                 for r in roles}  # fmt: skip
        crowd_writes: list[Any] = []
        if crowd[0]:
            spaces = sorted({j["namespace"] for j in sides["ours"]})
            crowd_writes = _crowd(ground, spaces, crowd[0], crowd[1], pool)
    print(
        f"  created {n} x {len(roles)} jobs and pods, crowd {crowd[0]} jobs / "
        f"{len(crowd_writes) - crowd[0]} pods, in {time.monotonic() - began:.0f} s",
        flush=True,
    )
    return sides, crowd_writes


def _crowd_schedule(ground: Ground, at: list[Any], start: float) -> None:
    """Make the crowd's status writes at their moments (a pool of 4: they must keep up)."""
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        pending: list[Any] = []
        for offset, write in at:
            while (pause := start + offset - time.monotonic()) > 0:
                time.sleep(min(pause, 0.2))
            pending.append(pool.submit(_crowd_write, ground, write))
        for future in pending:
            future.result()


def _sample(ground: Ground, sides: dict[str, list[dict[str, Any]]], peaks: dict[str, int]) -> None:
    peaks["connections"] = max(peaks.get("connections", 0), ground.proxy.open_connections())
    for role, jobs in sides.items():
        spaces = "|".join(sorted({j["namespace"] for j in jobs}))
        peaks[role] = max(peaks[role], ground.proxy.open_streams(f"/namespaces/({spaces})/"))


def _report(ground: Ground, role: str, jobs: list[dict[str, Any]], out: dict[str, Any],
            written: dict[str, float], *, peak: int, idle: dict[str, Any],
            printed: dict[str, int] | None = None) -> dict[str, Any]:  # fmt: skip
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
    pods = sum(job.get("replicas", 1) for job in jobs)
    log_requests = ground.proxy.requests(f"/namespaces/({spaces})/pods/[^/]+/log$")
    mine = {
        f"{j['namespace']}/{j['name']}-worker-{i}"
        for j in jobs
        for i in range(j.get("replicas", 1))
    }
    lines = tally({p: c for p, c in (printed or {}).items() if p in mine}, out.get("lines", {}))
    return {
        **lines,
        "log_requests": log_requests,
        "log_reconnects": max(0, log_requests - pods) if printed is not None else 0,
        "peak_fds": out.get("peak_fds", 0),
        "requests": ground.proxy.requests(f"/namespaces/({spaces})/"),
        "watch_requests": ground.proxy.requests(f"/namespaces/({spaces})/", watch=True),
        "peak_streams": peak,
        "p50": statistics.median(latency),
        "p99": _percentile(latency, 99),
        "max": max(latency),
        "wrong_outputs": wrong,
        "cpu_wait": out["cpu_wait"],
        "cpu_total": out["cpu_total"],
        # two status writes end each job (its pod's, then its own): CPU over the idle process's
        "cpu_per_1k_changes": (out["cpu_wait"] - idle["cpu_wait"]) / (2 * len(jobs) / 1000),
        "peak_rss_mib": out["peak_rss_mib"],
        "rss_growth_mib": out["peak_rss_mib"] - idle["peak_rss_mib"],
        # after the wait (the store, the triggers), not the lists' moment at the start
        "end_rss_growth_mib": out.get("end_rss_mib", 0.0) - idle.get("end_rss_mib", 0.0),
    }


def _print(n: int, label: str, r: dict[str, Any], seconds: float) -> None:
    ours, base = r["ours"], r.get("baseline")
    print(f"\nN={n} {label} ({seconds:.0f} s; idle process: peak RSS "
          f"{r['idle']['peak_rss_mib']:.0f} MiB, CPU in the wait {r['idle']['cpu_wait']:.1f} s; "
          f"triggers in sync after {r['run']['sync_s']:.1f} s, {r['run']['sync_cpu']:.1f} CPU s; "
          f"writer late by {r['run']['writer_late_s']:.1f} s)")  # fmt: skip
    print(f"ours' loop in the wait: {r['run']['loop']}")
    print(f"{'':20}{'ours':>12}" + (f"{'baseline':>12}{'base/ours':>11}" if base else ""))
    for key, fmt in ROWS:
        line = f"{key:20}{fmt.format(ours[key]):>12}"
        if base:
            theirs = base.get(key, 0)
            ratio = theirs / ours[key] if ours[key] else float("inf")
            line += f"{fmt.format(theirs):>12}{ratio:>10.1f}x"
        print(line)
    print("json " + json.dumps({"n": n, "pass": label, **r}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", default="100,500,1000")
    parser.add_argument("--wait", type=float, default=600.0, help="seconds over which jobs end")
    parser.add_argument("--poll", type=float, default=10.0)
    parser.add_argument("--namespaces", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--poll-baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run N per-job polling triggers (slow at large N)",
    )
    parser.add_argument("--crowd", default="", help="JOBS,PODS not ours: run with and without")
    parser.add_argument(
        "--logs",
        type=float,
        default=0.0,
        help="also run each N with get_logs=True, each replica printing a line every LOGS s",
    )
    parser.add_argument("--replicas", type=int, default=None, help="worker pods per job")
    parser.add_argument("--get-logs", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--role", choices=("ours", "baseline", "idle"))
    parser.add_argument("--jobs"), parser.add_argument("--out"), parser.add_argument("--kubeconfig")
    args = parser.parse_args()
    if args.role:
        return trigger_process(args)
    if args.replicas is None:
        args.replicas = 3 if args.logs else 1
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    with tempfile.TemporaryDirectory(prefix="fanin-") as tmp:
        ground = Ground(Path(tmp))
        try:
            print(f"trigger fan-in: jobs end at random within {args.wait:.0f} s; baseline polls "
                  f"every {args.poll:.0f} s; {args.namespaces} namespace(s) per side; "
                  f"crowd {args.crowd or 'none'}")  # fmt: skip
            crowd = tuple(int(x) for x in args.crowd.split(",")) if args.crowd else (0, 0)
            printer = None
            if args.logs:
                printer = Printer(ground.cluster.api_client(), args.logs)
                print(f"logs: {args.replicas} replicas per job, each prints a line every "
                      f"{args.logs:g} s; each N with get_logs off, then on")  # fmt: skip
            for n in (int(x) for x in args.n.split(",")):
                passes: dict[str, tuple[Any, Printer | None]] = (
                    {"": ((0, 0), None)} if not crowd[0]
                    else {"alone": ((0, 0), None), "crowded": (crowd, None)}
                )  # fmt: skip
                if printer is not None:
                    passes = {"logs off": ((0, 0), None), "logs on": ((0, 0), printer)}
                runs = {}
                for label, (c, logs) in passes.items():
                    started = time.monotonic()
                    r = runs[label] = run_one(ground, n, args, Path(tmp), c, logs=logs)
                    _print(n, label, r, time.monotonic() - started)
                if printer is not None:
                    off, on = runs["logs off"]["ours"], runs["logs on"]["ours"]
                    print(f"\nN={n}  logs on / logs off (ours)")
                    keys = ("requests", "peak_streams", "peak_connections", "p50", "p99",
                            "cpu_wait", "peak_rss_mib", "rss_growth_mib", "peak_fds")  # fmt: skip
                    for key in keys:
                        ratio = on[key] / off[key] if off[key] else float("inf")
                        print(f"{key:20}{off[key]:>12.3f}{on[key]:>12.3f}{ratio:>9.2f}x")
                if crowd[0]:
                    alone, crowded = runs["alone"]["ours"], runs["crowded"]["ours"]
                    print(f"\nN={n}  crowded / alone (ours)")
                    for key in ("requests", "p99", "cpu_wait", "cpu_per_1k_changes", "peak_rss_mib",
                                "rss_growth_mib", "end_rss_growth_mib"):  # fmt: skip
                        ratio = crowded[key] / alone[key] if alone[key] else float("inf")
                        print(f"{key:20}{alone[key]:>12.3f}{crowded[key]:>12.3f}{ratio:>9.2f}x")
        finally:
            ground.printer = printer if args.logs else None
            ground.stop()


if __name__ == "__main__":
    main()
