"""``python -m airflow_tfjob.demo``: what the README's first command runs.

Until the local backend lands, the demo renders the example job and shows the manifest that would
be submitted, so a newcomer sees the model at work on a machine without a cluster.
"""

from __future__ import annotations

import json
import sys

from airflow_tfjob import PS, Chief, Resources, RunPolicy, TfJob, Worker


def example_job() -> TfJob:
    """A small chief + PS + workers job, as in the README."""
    return TfJob(
        chief=Chief(requests=Resources(cpu="1", mem="2Gi")),
        ps=PS(replicas=1),
        worker=Worker(replicas=2, requests=Resources(cpu="1", mem="2Gi")),
        run_policy=RunPolicy(backoff_limit=2, active_deadline_seconds=3600),
    )


def main() -> int:
    """Print the example manifest and say what is not available yet."""
    manifest = example_job().to_manifest(
        "mnist-demo", "default", image="tensorflow/tensorflow:2.16.1"
    )
    print(json.dumps(manifest, indent=2))
    print(
        "\nThe local backend (replicas as local TensorFlow processes) is not available yet; "
        "this demo will run the example DAG on it once it lands.",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
