"""Provider metadata that Airflow's ProvidersManager reads through the entry point.

Kept free of imports: Airflow calls it while it builds its configuration, before anything else.
"""

from __future__ import annotations

from typing import Any

PACKAGE_NAME = "airflow-tfjob"
VERSION = "0.1.0"


def get_provider_info() -> dict[str, Any]:
    """Describe the provider; module paths are added here as the modules come to exist."""
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
                "python-modules": ["airflow_tfjob.operators.tfjob"],
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
                "python-modules": ["airflow_tfjob.triggers.tfjob"],
            },
        ],
        "task-decorators": [
            {"class-name": "airflow_tfjob.decorators.tfjob.tfjob_task", "name": "tfjob"},
        ],
        "hooks": [
            {"integration-name": "Kubeflow TFJob", "python-modules": ["airflow_tfjob.hooks.tfjob"]},
        ],
    }
