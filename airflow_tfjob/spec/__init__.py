"""The pure data layer: the documented TFJob model and its rendering into a manifest.

No I/O and no imports of Airflow or a Kubernetes client (an import-linter contract checks it), so
DAG files can build and validate jobs at parse time for free.
"""

from airflow_tfjob.spec.enums import CleanPodPolicy, RestartPolicy, SuccessPolicy
from airflow_tfjob.spec.errors import TFJobSpecError, TFJobSpecWarning
from airflow_tfjob.spec.job import TfJob, validate_name
from airflow_tfjob.spec.policy import RunPolicy, SchedulingPolicy
from airflow_tfjob.spec.replicas import PS, Chief, Evaluator, ReplicaGroup, Worker
from airflow_tfjob.spec.resources import Resources

__all__ = [
    "PS",
    "Chief",
    "CleanPodPolicy",
    "Evaluator",
    "ReplicaGroup",
    "Resources",
    "RestartPolicy",
    "RunPolicy",
    "SchedulingPolicy",
    "SuccessPolicy",
    "TFJobSpecError",
    "TFJobSpecWarning",
    "TfJob",
    "Worker",
    "validate_name",
]
