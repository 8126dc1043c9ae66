"""Apache Airflow provider for distributed TensorFlow training as Kubeflow TFJobs or TrainJobs.

Importing this package is cheap (no TensorFlow, no Kubernetes client): DAG files import it on every
parse. Operators, sensors, triggers and hooks live in their Airflow provider modules
(``airflow_tfjob.operators.tfjob`` and so on) and import their heavy dependencies lazily.
"""

from airflow_tfjob.model import (
    PS,
    Chief,
    CleanPodPolicy,
    Evaluator,
    Resources,
    RestartPolicy,
    RunPolicy,
    SchedulingPolicy,
    SuccessPolicy,
    TfJob,
    TFJobSpecError,
    TFJobSpecWarning,
    Worker,
)

__version__ = "0.1.0"

__all__ = [
    "PS",
    "Chief",
    "CleanPodPolicy",
    "Evaluator",
    "Resources",
    "RestartPolicy",
    "RunPolicy",
    "SchedulingPolicy",
    "SuccessPolicy",
    "TFJobSpecError",
    "TFJobSpecWarning",
    "TfJob",
    "Worker",
    "__version__",
]
