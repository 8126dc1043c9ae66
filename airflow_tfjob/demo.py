"""``python -m airflow_tfjob.demo``: what the README's first command runs.

On a machine without a cluster: a local Airflow home with a migrated SQLite DB, then
``airflow dags test example_tfjob_function`` on the local backend — a chief and two workers
training with ``MultiWorkerMirroredStrategy`` as local processes — and the training result, read
back from the task's XCom.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DAG_ID = "example_tfjob_function"
SHOWN = re.compile(r"\[(chief|worker|ps|evaluator)-\d+\] |Running TFJob|TFJob \S+: |Replica logs")
NOISE = re.compile(r"absl::InitializeLog|port\.cc|cpu_feature_guard|rebuild TensorFlow")
"""TensorFlow's start-up chatter: kept in the log file, left out of the demo's view."""
STARTING = f"Running {DAG_ID} on the local backend (1 chief + 2 workers)..."


def result_line(seconds: float, result: dict[str, Any]) -> str:
    """The demo's last line: the chief's result from XCom."""
    return (
        f"Training result after {seconds:.0f} s: "
        f"loss {result['loss']:.4f}, accuracy {result['accuracy']:.1%} "
        f"({result['replicas']} replicas in sync, {result['steps']} steps)"
    )


_MESSAGE = re.compile(r"\[\w+\s*\]\s(.*?)(\s+\[airflow\.task\.operators\.[^\]]*\].*)?$")


def _environment(home: Path, dags: Path) -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__TFJOB__BACKEND": "local",
    }


def _airflow(*args: str, env: dict[str, str], log: Path) -> int:
    """Run the ``airflow`` CLI of this interpreter; keep its whole output in ``log`` and echo
    the lines a newcomer cares about."""
    airflow = Path(sys.executable).parent / "airflow"
    with log.open("a", encoding="utf-8") as keep:
        proc = subprocess.Popen(
            [str(airflow), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            keep.write(line)
            message = _MESSAGE.search(line.rstrip())
            if message and SHOWN.search(line) and not NOISE.search(line):
                print(message.group(1), flush=True)
        return proc.wait()


def latest_xcom(dag_id: str, task_id: str, key: str = "return_value") -> Any:
    """``task_id``'s XCom ``key`` in the latest run of ``dag_id``, from the configured DB."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.execute(
            select(XComModel.value)
            .where(XComModel.dag_id == dag_id, XComModel.task_id == task_id)
            .where(XComModel.key == key)
            .order_by(XComModel.timestamp.desc())
            .limit(1)
        ).first()
    return None if row is None else XComModel.deserialize_value(row)


def main(argv: list[str] | None = None) -> int:
    """Migrate a local Airflow DB, run the example DAG on the local backend, print the result."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_tfjob demo", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--dags", type=Path, default=Path("dags"), metavar="DIR", help="the example DAGs"
    )
    parser.add_argument(
        "--home", type=Path, default=Path(".demo"), metavar="DIR", help="AIRFLOW_HOME to use"
    )
    options = parser.parse_args(argv)
    dags, home = options.dags.resolve(), options.home.resolve()
    if not (dags / f"{DAG_ID}.py").exists():
        print(f"{dags / DAG_ID}.py not found; pass --dags DIR (the repository's dags/)")
        return 2
    home.mkdir(parents=True, exist_ok=True)
    env, log = _environment(home, dags), home / "demo.log"
    print(f"Airflow home: {home} (full output in {log})", flush=True)
    started = time.monotonic()
    if _airflow("db", "migrate", env=env, log=log) != 0:
        print(f"airflow db migrate failed; see {log}")
        return 1
    print(STARTING, flush=True)
    code = _airflow("dags", "test", DAG_ID, env=env, log=log)
    os.environ.update(env)
    result = latest_xcom(DAG_ID, "train") if code == 0 else None
    if code != 0 or not isinstance(result, dict):
        print(f"the DAG run failed; see {log}")
        return 1
    print("\n" + result_line(time.monotonic() - started, result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
