"""What a user builds: the documented TFJob model, its checks and its rendering into a manifest.

No I/O and no imports of Airflow or a Kubernetes client (an import-linter contract checks it), so
DAG files can build and validate jobs at parse time for free.
"""

from airflow_tfjob.model.enums import CleanPodPolicy, RestartPolicy, SuccessPolicy
from airflow_tfjob.model.errors import TFJobSpecError, TFJobSpecWarning
from airflow_tfjob.model.job import TfJob, validate_name
from airflow_tfjob.model.policy import RunPolicy, SchedulingPolicy
from airflow_tfjob.model.replicas import PS, Chief, Evaluator, ReplicaGroup, Worker
from airflow_tfjob.model.resources import Resources

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
