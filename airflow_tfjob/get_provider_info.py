"""Provider metadata that Airflow's ProvidersManager reads through the entry point.

Kept free of imports: Airflow calls it while it builds its configuration, before anything else.
"""

from __future__ import annotations

from typing import Any

PACKAGE_NAME = "airflow-tfjob"
VERSION = "0.1.0"


def _option(
    description: str, kind: str, default: str, example: str | None = None
) -> dict[str, Any]:
    return {
        "description": description,
        "version_added": "0.1.0",
        "type": kind,
        "example": example,
        "default": default,
    }


CONFIG_SECTION: dict[str, Any] = {
    "description": "Settings of the airflow-tfjob provider (TFJobOperator, @task.tfjob).\n",
    "options": {
        "backend": _option(
            "Where TFJobs run when an operator does not say: ``kubernetes`` (the Kubeflow "
            "training operator) or ``local`` (replicas as local processes, no cluster).\n",
            "string",
            "kubernetes",
            "local",
        ),
        "local_run_dir": _option(
            "Local backend: directory for each run's working directories and per-replica log "
            "files. Empty: ``$AIRFLOW_HOME/tfjob-local``.\n",
            "string",
            "",
            "/var/lib/airflow/tfjob-runs",
        ),
        "local_threads": _option(
            "Local backend: TensorFlow intra- and inter-op threads per replica "
            "(``TF_NUM_INTRAOP_THREADS``/``TF_NUM_INTEROP_THREADS``). Empty: the machine's cores "
            "divided among the replicas, at least 1. A group's own env value wins.\n",
            "integer",
            "",
            "2",
        ),
        "tfjob_url_template": _option(
            'URL of a TFJob in a Kubernetes or Kubeflow dashboard, for the operator\'s "TFJob" '
            "extra link; ``{namespace}``, ``{name}`` and ``{uid}`` are filled in. "
            "Empty: no link.\n",
            "string",
            "",
            "https://kubeflow.example/tfjobs/{namespace}/{name}",
        ),
        "max_log_streams": _option(
            "Replica logs a process (a triggerer, a worker) follows live at once; the others are "
            "read when their replica ends, from where they were read. Each job's output replica "
            "(the chief, or worker 0) comes first.\n",
            "integer",
            "500",
            "300",
        ),
        "ui_connections": _option(
            "Kubernetes connections whose TFJobs the TFJobs page lists and the reaper covers "
            "(comma-separated).\n",
            "string",
            "kubernetes_default",
            "kubernetes_default,gpu_cluster",
        ),
        "ui_namespaces": _option(
            "Namespaces the TFJobs page lists and the reaper covers in each connection "
            "(comma-separated). Empty: the "
            "connection's own namespace, else ``default``.\n",
            "string",
            "",
            "ml,research",
        ),
        "deployment": _option(
            "Names this Airflow deployment on every TFJob it creates (label "
            "``airflow-tfjob/deployment``); the reaper and the TFJobs page act on this "
            "deployment's jobs only. Empty: the host (and port) of ``[api] base_url``. Set it "
            "when several deployments share a cluster and could have the same base_url host.\n",
            "string",
            "",
            "ml-prod",
        ),
        "reaper_grace_seconds": _option(
            "TFJobReaperOperator: seconds a job must stay an orphan (unfinished while its task "
            "instance has ended or no longer exists) before it is deleted; the reaper reads it "
            "twice, this far apart.\n",
            "float",
            "30",
        ),
        "local_stop_grace_seconds": _option(
            "Local backend: seconds between SIGTERM and SIGKILL when replicas are stopped; a "
            "group's ``terminationGracePeriodSeconds`` wins.\n",
            "float",
            "5",
        ),
    },
}


def get_provider_info() -> dict[str, Any]:
    """Describe the provider: its operators, sensor, triggers, decorator, hooks, extra links and
    ``[tfjob]`` configuration section, by module path."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "Kubeflow TFJob",
        "description": "Distributed TensorFlow training on Kubernetes with Kubeflow's TFJob.",
        "versions": [VERSION],
        "integrations": [
            {
                "integration-name": "Kubeflow TFJob",
                "external-doc-url": "https://www.kubeflow.org/docs/components/trainer/legacy-v1/user-guides/tensorflow/",
                "tags": ["software"],
            }
        ],
        "operators": [
            {
                "integration-name": "Kubeflow TFJob",
                "python-modules": [
                    "airflow_tfjob.operators.tfjob",
                    "airflow_tfjob.operators.reaper",
                    "airflow_tfjob.operators.catch_up",
                ],
            },
        ],
        "sensors": [
            {
                "integration-name": "Kubeflow TFJob",
                "python-modules": ["airflow_tfjob.sensors.tfjob"],
            },
        ],
        "triggers": [
            {
                "integration-name": "Kubeflow TFJob",
                "python-modules": [
                    "airflow_tfjob.triggers.tfjob",
                    "airflow_tfjob.triggers.events",
                ],
            },
        ],
        "task-decorators": [
            {"class-name": "airflow_tfjob.decorators.tfjob.tfjob_task", "name": "tfjob"},
        ],
        "config": {"tfjob": CONFIG_SECTION},
        "extra-links": [
            "airflow_tfjob.operators.links.TFJobLink",
            "airflow_tfjob.operators.links.TFJobMonitorLink",
        ],
        "hooks": [
            {"integration-name": "Kubeflow TFJob", "python-modules": ["airflow_tfjob.hooks.tfjob"]},
        ],
    }
