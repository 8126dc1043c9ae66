"""Local backend overhead: a 2-worker MultiWorkerMirroredStrategy job (``dags/scripts/
fit_line.py``) run by TFJobOperator on the local backend, against the same two processes started
by a plain script with the same ``TF_CONFIG`` and thread settings (the baseline, same run).

Reports median wall seconds per run: the plain script; the backend alone (``LocalJob``);
``TFJobOperator.execute()`` on the local backend (the target's measure); the task as Airflow
records it (its start to end, which in ``dag.test()`` includes starting the in-process execution
API); and the whole ``dag.test()`` process (Airflow's start-up included).

    python bench/local_overhead.py [--runs 3] [--steps 100]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from airflow_tfjob.backends.local import ports

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "dags" / "scripts" / "fit_line.py"
THREADS = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "2", "OMP_NUM_THREADS": "1"}
QUIET = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
DAG = """
import datetime, json, sys, time
from airflow.sdk import DAG
from airflow_tfjob import TfJob, Worker
from airflow_tfjob.operators.tfjob import TFJobOperator

class Timed(TFJobOperator):
    def execute(self, context):
        started = time.perf_counter()
        try:
            return super().execute(context)
        finally:
            print("EXECUTE", time.perf_counter() - started, flush=True)

with DAG("bench_local_overhead", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:
    Timed(task_id="train", backend="local", tfjob=TfJob(worker=Worker(replicas=2)),
                  image="tf:2", command=["python", {script!r}],
                  args=["--steps", "{steps}", "--output", "/dev/termination-log"],
                  env={quiet!r}, get_logs=True)

if __name__ == "__main__":
    run = dag.test()
    (ti,) = run.get_task_instances()
    print("RESULT", json.dumps({{"state": str(ti.state),
          "seconds": (ti.end_date - ti.start_date).total_seconds()}}))
"""


def plain(steps: int, workdir: Path) -> float:
    """The baseline: start both workers, wait for both."""
    cluster = {"worker": [f"localhost:{p}" for p in ports.free_ports(2)]}
    started = time.perf_counter()
    procs = []
    for index in range(2):
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = {**os.environ, **THREADS, **QUIET, "TF_CONFIG": json.dumps(config)}
        out = workdir / f"plain-{index}.json"
        procs.append(
            subprocess.Popen(
                [sys.executable, str(SCRIPT), "--steps", str(steps), "--output", str(out)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f"plain run failed: exit codes {codes}")
    return time.perf_counter() - started


def backend(steps: int, root: Path) -> float:
    """The local backend alone (``LocalRun``), without Airflow's task machinery around it."""
    import logging

    from airflow_tfjob import TfJob, Worker
    from airflow_tfjob.backends.local.request import LocalRequest
    from airflow_tfjob.backends.local.run import LocalRun

    job = TfJob(worker=Worker(replicas=2)).with_defaults(
        command=["python", str(SCRIPT)],
        args=["--steps", str(steps), "--output", "/dev/termination-log"],
        env=QUIET,
    )
    request = LocalRequest(
        manifest=job.to_manifest("bench", "default", image="tf:2"),
        identity={"bench": "backend"},
        log=logging.getLogger("bench"),
        run_root=root / "backend-runs",
        threads=int(THREADS["TF_NUM_INTRAOP_THREADS"]),
    )
    started = time.perf_counter()
    result = LocalRun(request).run()
    if result["state"] != "Succeeded":
        raise SystemExit(f"backend run ended {result['state']}")
    return time.perf_counter() - started


def operator(dag_file: Path, env: dict[str, str]) -> tuple[float, float, float]:
    """(execute() seconds, task seconds, whole dag.test process seconds) through the operator."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(dag_file)], env=env, capture_output=True, text=True, check=False
    )
    whole = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise SystemExit(f"operator run failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    result = json.loads(lines[-1].removeprefix("RESULT "))
    if "success" not in result["state"]:
        raise SystemExit(f"operator run ended {result['state']}:\n{done.stdout[-3000:]}")
    execute = [line for line in done.stdout.splitlines() if line.startswith("EXECUTE ")]
    return float(execute[-1].split()[1]), float(result["seconds"]), whole


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="local-overhead-") as tmp:
        root = Path(tmp)
        dags = root / "dags"
        dags.mkdir()
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(root / "home"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__TFJOB__LOCAL_RUN_DIR": str(root / "runs"),
            "AIRFLOW__TFJOB__LOCAL_THREADS": THREADS["TF_NUM_INTRAOP_THREADS"],
        }
        airflow = Path(sys.executable).parent / "airflow"
        subprocess.run([str(airflow), "db", "migrate"], env=env, check=True, capture_output=True)
        dag_file = dags / "bench_local_overhead.py"
        dag_file.write_text(DAG.format(script=str(SCRIPT), steps=options.steps, quiet=QUIET))
        baseline, alone, execute, task, whole = [], [], [], [], []
        plain(options.steps, root)  # warm the file cache: TensorFlow's first import is slower
        for _ in range(options.runs):  # interleaved, so drift hits all alike
            baseline.append(plain(options.steps, root))
            alone.append(backend(options.steps, root))
            seconds, ti, process = operator(dag_file, env)
            execute.append(seconds)
            task.append(ti)
            whole.append(process)
    base = statistics.median(baseline)
    print(
        f"2 workers, MultiWorkerMirroredStrategy, {options.steps} steps; median of {options.runs}\n"
    )
    print(f"{'run':<44}{'seconds':>9}{'ratio':>8}")
    for name, values in (
        ("plain script (baseline)", baseline),
        ("local backend alone (LocalJob)", alone),
        ("TFJobOperator.execute(), local backend", execute),
        ("the task as Airflow times it (dag.test)", task),
        ("whole dag.test() process (Airflow start-up)", whole),
    ):
        median = statistics.median(values)
        print(f"{name:<44}{median:>9.2f}{median / base:>8.2f}")


if __name__ == "__main__":
    main()
