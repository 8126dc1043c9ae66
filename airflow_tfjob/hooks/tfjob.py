"""``TFJobHook`` and ``AsyncTFJobHook``: every Kubernetes call the provider makes.

Twins (httpx's Client/AsyncClient); neither subclasses the other. The calls both make (``get``,
``delete``, ``patch``, ``list_jobs``, ``job_pages``, ``list_pods``, ``pod_pages``) have identical
names and parameters; the others exist on the side that needs them. Only the sync hook tells
what a task needs of its connection (``get_namespace``, ``trigger_settings``, ``served_hooks``),
creates jobs, checks permissions and reads the server's version and whole logs (``create``,
``missing_permissions``, ``server_version``, ``read_log``); only the async hook watches and
follows logs (``watch``, ``watch_pods``, ``stream_log``, ``client_session``). Connection
settings come from the ``kubernetes`` connection type through the cncf provider's
``KubernetesHook``/``AsyncKubernetesHook``, used by composition. The async side also honours
``config_file`` (the cncf async hook ignores it): the file is read into a config dict.

Each hook serves one API (``job_api``, ``_resource.Api``): the training operator's TFJobs or
Kubeflow Trainer v2's TrainJobs, which it reads back as TFJobs and their pods, so its callers see
one shape. All objects are plain JSON dicts. Single calls retry 429/5xx/connection errors with
backoff (``_retry``); streams never retry themselves — their callers resume (a watch from a
resourceVersion, a log from a ``sinceTime``). Errors are translated (``errors.translate``) and
chained; client exceptions never leak.
"""

from airflow_tfjob.hooks._async import AsyncTFJobHook
from airflow_tfjob.hooks._base import ConnectionSettings
from airflow_tfjob.hooks._sync import TFJobHook

__all__ = ["AsyncTFJobHook", "ConnectionSettings", "TFJobHook"]
