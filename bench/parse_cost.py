"""DAG parse cost: 50 TFJobOperators or 50 ``@task.tfjob`` tasks against 50 EmptyOperators
(the baseline) and 50 KubernetesPodOperators (the anchor), each file parsed by a fresh
interpreter, as Airflow's DAG processor does. Prints the median whole-process wall time and peak
RSS per file, their ratio / difference to the EmptyOperator file, and whether the import graph
holds tensorflow, kubernetes or kubernetes_asyncio.

    python bench/parse_cost.py [--runs 9]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

TASKS = 50
HEADER = """
import datetime
from airflow.sdk import DAG
"""
FILES = {
    "EmptyOperator": """
from airflow.providers.standard.operators.empty import EmptyOperator
with DAG("empty", schedule=None, start_date=datetime.datetime(2026, 1, 1)):
    for i in range(N):
        EmptyOperator(task_id=f"t{i}")
""",
    "KubernetesPodOperator": """
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
with DAG("kpo", schedule=None, start_date=datetime.datetime(2026, 1, 1)):
    for i in range(N):
        KubernetesPodOperator(task_id=f"t{i}", image="tf:2", cmds=["python", "train.py"])
""",
    "TFJobOperator": """
from airflow_tfjob import Chief, TfJob, Worker
from airflow_tfjob.operators.tfjob import TFJobOperator
with DAG("tfjob", schedule=None, start_date=datetime.datetime(2026, 1, 1)):
    for i in range(N):
        TFJobOperator(task_id=f"t{i}", tfjob=TfJob(chief=Chief(), worker=Worker(replicas=2)),
                      image="tf:2", command=["python", "train.py"])
""",
    "@task.tfjob": """
from airflow.sdk import task
from airflow_tfjob import Chief, TfJob, Worker
with DAG("tfjob_task", schedule=None, start_date=datetime.datetime(2026, 1, 1)):
    for i in range(N):
        @task.tfjob(task_id=f"t{i}", task_config=TfJob(chief=Chief(), worker=Worker(replicas=2)),
                    image="tf:2")
        def train(steps):
            return steps
        train(10)
""",
}
CHILD = """
import json, runpy, sys
runpy.run_path(sys.argv[1])
tops = {m.split(".")[0] for m in sys.modules}
heavy = sorted(tops & {"tensorflow", "kubernetes", "kubernetes_asyncio"})
print(json.dumps(heavy))
"""


def parse_once(path: Path, env: dict[str, str]) -> tuple[float, float, list[str]]:
    """(wall seconds, peak RSS MiB, heavy top-level modules) of one fresh-interpreter parse."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    out = proc.stdout.read().decode() if proc.stdout else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"parsing {path} failed (exit {proc.returncode})")
    return elapsed, usage.ru_maxrss / 1024, json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="parse-cost-") as tmp:
        root = Path(tmp)
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(root / "home"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
        paths = {}
        for name, body in FILES.items():
            paths[name] = root / f"{name.strip('@').replace('.', '_')}.py"
            paths[name].write_text(HEADER + f"N = {TASKS}\n" + textwrap.dedent(body))
        for path in paths.values():  # warm the file cache and Airflow's first-run set-up
            parse_once(path, env)
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
        heavy: dict[str, list[str]] = {}
        for _ in range(options.runs):  # interleaved, so drift hits every file alike
            for name, path in paths.items():
                seconds, rss, modules = parse_once(path, env)
                samples[name].append((seconds, rss))
                heavy[name] = modules
    base_time = statistics.median(s for s, _ in samples["EmptyOperator"])
    base_rss = statistics.median(r for _, r in samples["EmptyOperator"])
    print(f"{TASKS} tasks per file, median of {options.runs} fresh-interpreter parses each\n")
    print(f"{'file':<24}{'time s':>8}{'ratio':>8}{'RSS MiB':>9}{'+MiB':>7}  heavy modules")
    for name, values in samples.items():
        seconds = statistics.median(s for s, _ in values)
        rss = statistics.median(r for _, r in values)
        ratio, extra = seconds / base_time, rss - base_rss
        print(
            f"{name:<24}{seconds:>8.3f}{ratio:>8.2f}{rss:>9.1f}{extra:>+7.1f}"
            f"  {', '.join(heavy[name]) or 'none'}"
        )


if __name__ == "__main__":
    main()
