"""The seeded fault campaign through real Airflow (see tests/campaign/plan.py).

CI runs ``CAMPAIGN_RUNS`` (default 20: they cover all 17 fault kinds) runs of seed
``CAMPAIGN_SEED`` (default 20261128), ``CAMPAIGN_PARALLEL`` (3) at a time;
``bench/fault_campaign.py`` runs larger ones. ``CAMPAIGN_ONLY=3,17`` replays single runs. The
report goes to stdout and ``artifacts/campaign/report-<seed>.json``; a violating run's task logs
and record to ``artifacts/campaign/violations/<namespace>/``.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.campaign import checks, plan, summary
from tests.campaign.run import Ground, Run
from tests.faults.proxy import FaultProxy

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ground(
    kube_cluster: Any, kubelet: Any, airflow_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Ground]:
    workdir = tmp_path_factory.mktemp("campaign")
    database = Path(os.environ["AIRFLOW_HOME"]) / "airflow.db"  # migrated by airflow_db
    homes = Ground.homes_from(database, workdir, PARALLEL)
    proxy = FaultProxy.for_cluster(kube_cluster, workdir=workdir / "proxy").start()
    try:
        yield Ground(kube_cluster, kubelet, proxy, homes, workdir)
    finally:
        proxy.stop()


RUNS = int(os.environ.get("CAMPAIGN_RUNS", "20"))
PARALLEL = int(os.environ.get("CAMPAIGN_PARALLEL", "3"))
"""Runs at once (each its own namespace, replica script and Airflow home)."""


def _keep(ground: Ground, record: Any, found: list[Any]) -> None:
    """Copy a violating run's task logs and record beside the report: pytest keeps only its
    last three base temp folders, and a campaign's violations are read after it ends."""
    kept = ROOT / "artifacts" / "campaign" / "violations" / record.namespace
    shutil.copytree(ground.workdir / record.namespace, kept, dirs_exist_ok=True)
    facts = {**dataclasses.asdict(record), "violations": [str(v) for v in found]}
    (kept / "record.json").write_text(json.dumps(facts, indent=2, default=str))
    print(f"  kept in {kept.relative_to(ROOT)}", flush=True)


@pytest.mark.timeout(300 + 60 * RUNS)
def test_the_seeded_fault_campaign_has_no_violations(ground: Ground) -> None:
    seed = int(os.environ.get("CAMPAIGN_SEED", "20261128"))
    runs = RUNS
    only = {int(i) for i in os.environ.get("CAMPAIGN_ONLY", "").split(",") if i}
    scenarios = [s for s in plan.schedule(seed, runs) if not only or s.index in only]
    records, violations = [], []
    with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
        done = pool.map(lambda s: Run(ground, s).execute(), scenarios)
        for scenario, record in zip(scenarios, done, strict=True):
            found = checks.check(record)
            print(f"{scenario.label}: {record.wall:.1f} s, injected {record.injected}, "
                  f"{len(found)} violation(s)", flush=True)  # fmt: skip
            for violation in found:
                print(f"  VIOLATION {violation}", flush=True)
            if found:
                _keep(ground, record, found)
            records.append(record)
            violations += found
    report = summary.summarize(seed, records, violations)
    out = ROOT / "artifacts" / "campaign"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"report-{seed}.json").write_text(json.dumps(report, indent=2))
    print(summary.render(report))
    assert sum(report["faults_injected"].values()) > 0, "the campaign injected no fault"
    assert not violations, "\n".join(str(v) for v in violations)
