"""The fault campaign at full size: M runs through real Airflow under seeded faults.

Runs ``tests/campaign/test_campaign.py`` (the same runner and invariants CI uses on 20 runs) with
``CAMPAIGN_RUNS`` and ``CAMPAIGN_SEED`` set, and prints its report: runs, faults injected by
kind, outcomes, violations with the seed and run that reproduce them, and the wall time of
faulted runs against fault-free ones (p50 / p99, the baseline measured in the same campaign).

    python bench/fault_campaign.py [--runs 300] [--seed 20261128] [--parallel 3] [--only 3,17]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--only", default="", help="replay these run indexes only")
    parser.add_argument("--parallel", type=int, default=3, help="runs at once")
    args = parser.parse_args()
    env = {
        **os.environ,
        "CAMPAIGN_RUNS": str(args.runs),
        "CAMPAIGN_SEED": str(args.seed),
        "CAMPAIGN_ONLY": args.only,
        "CAMPAIGN_PARALLEL": str(args.parallel),
    }
    test = "tests/campaign/test_campaign.py::test_the_seeded_fault_campaign_has_no_violations"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-s", "-q", "-p", "no:cacheprovider", test],
        cwd=ROOT,
        env=env,
        check=False,
    )
    report = ROOT / "artifacts" / "campaign" / f"report-{args.seed}.json"
    if report.exists():
        print(json.dumps(json.loads(report.read_text()), indent=2))
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
