"""``TFJobHook`` and ``AsyncTFJobHook``: every Kubernetes call the provider makes.

Twins with identical method names and parameters (httpx's Client/AsyncClient); neither subclasses
the other. Connection settings come from the ``kubernetes`` connection type through the cncf
provider's ``KubernetesHook``/``AsyncKubernetesHook``, used by composition. The async side also
honours ``config_file`` (the cncf async hook ignores it): the file is read into a config dict.

All objects are plain JSON dicts. Single calls retry 429/5xx/connection errors with backoff
(``_retry``); streams never retry themselves — their callers resume from a resourceVersion.
Errors are translated (``errors.translate``) and chained; client exceptions never leak.
"""

from airflow_tfjob.hooks._async import AsyncTFJobHook
from airflow_tfjob.hooks._base import ConnectionSettings
from airflow_tfjob.hooks._sync import TFJobHook

__all__ = ["AsyncTFJobHook", "ConnectionSettings", "TFJobHook"]
