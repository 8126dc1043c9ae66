"""Helpers for the local backend's tests: DAGs whose replicas are ``actor.py`` processes."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.airflow_fixtures import run_dag_file, write_dag

ACTOR = str(Path(__file__).with_name("actor.py"))
BODY = """
TFJobOperator(
    task_id="train",
    backend="local",
    tfjob={job},
    image="tf:2",
    command=["python", ACTOR, "--termination", "/dev/termination-log"],
    env={{"ACTOR_PLAN": PLAN, "ACTOR_PIDS": PIDS}},
{more})
"""


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class LocalRuns:
    """Write and run DAGs with one local ``TFJobOperator`` task "train" of actor replicas."""

    def __init__(self, dags: Path, root: Path) -> None:
        self.dags, self.root = dags, root
        self.pid_dir = root / "pids"
        self.pid_dir.mkdir()
        self.run_dir = root / "runs"

    def write(self, job: str, plan: dict[str, Any], **arguments: Any) -> tuple[str, Path]:
        """A DAG file; ``arguments`` are more operator arguments (``code=`` is written as is)."""
        code = arguments.pop("code", "")
        more = "".join(f"    {key}={value!r},\n" for key, value in arguments.items())
        more += f"    {code}\n" if code else ""
        body = BODY.format(job=job, more=more)
        return write_dag(
            self.dags, body, actor=ACTOR, plan=json.dumps(plan), pids=str(self.pid_dir)
        )

    def run(self, job: str, plan: dict[str, Any], **arguments: Any) -> Any:
        """Write the DAG and run it with ``dag.test()``; the DagRun."""
        return run_dag_file(self.write(job, plan, **arguments)[1])

    def pids(self) -> dict[str, list[int]]:
        """Recorded PIDs by file stem (``worker-1.2`` or ``worker-1.1.child``)."""
        found: dict[str, list[int]] = {}
        for path in self.pid_dir.iterdir():
            stem, _, pid = path.name.rpartition(".")
            found.setdefault(stem, []).append(int(pid))
        return found

    def all_pids(self) -> list[int]:
        """Every process the replicas recorded."""
        return [pid for pids in self.pids().values() for pid in pids]

    def attempts(self, replica: str) -> int:
        """How many times ``replica`` ran."""
        return len(
            [stem for stem in self.pids() if stem.split(".")[0] == replica and "child" not in stem]
        )


@pytest.fixture
def local(airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalRuns]:
    """``LocalRuns`` in this test's directory, with a 1 s stop grace."""
    runs = LocalRuns(airflow_db, tmp_path)
    monkeypatch.setenv("AIRFLOW__TFJOB__LOCAL_RUN_DIR", str(runs.run_dir))
    monkeypatch.setenv("AIRFLOW__TFJOB__LOCAL_STOP_GRACE_SECONDS", "1")
    yield runs
    leftovers = [pid for pid in runs.all_pids() if alive(pid)]
    for pid in leftovers:
        os.kill(pid, signal.SIGKILL)
    assert not leftovers, f"processes left running after the test: {leftovers}"
