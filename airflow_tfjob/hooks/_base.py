"""What both hooks share: connection settings, error translation, kubeconfig files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow_tfjob import errors
from airflow_tfjob.hooks import _resource, _retry


def failure(
    exc: BaseException, verb: str, resource: str, namespace: str, name: str
) -> BaseException:
    status = _retry.status_of(exc)
    tls = _retry.certificate_error(exc) if status is None or status == 0 else None
    if tls is not None:
        verify = getattr(tls, "verify_message", None)
        detail = f"certificate verify failed: {verify}" if verify else str(tls)
        return errors.TFJobTLSError(  # about the server, whatever the request
            f"TLS with the API server failed ({detail}): check the kubeconfig's "
            "certificate-authority and server address, or the client certificate. Not retried: "
            "a retry meets the same certificate"
        )
    if status is not None and status != 0:
        body = getattr(exc, "body", None)
        return errors.translate(
            status,
            str(getattr(exc, "reason", "")),
            body,
            verb=verb,
            resource=resource,
            namespace=namespace,
            name=name,
        )
    if _retry.is_connection_error(exc):
        return errors.TFJobUnavailable(
            f"cannot {verb} {resource} {namespace}/{name}: the API server is unreachable "
            f"({type(exc).__name__})"
        )
    return exc


def is_config_exception(exc: BaseException) -> bool:
    """The ``ConfigException`` of either Kubernetes client (``kubernetes.config`` or
    ``kubernetes_asyncio.config``), told apart without importing them."""
    kind = type(exc)
    return kind.__name__ == "ConfigException" and kind.__module__.startswith(
        ("kubernetes.", "kubernetes_asyncio.")
    )


NO_CONFIG = (
    "no Kubernetes configuration for {where}: no kubeconfig (neither config_file=, nor the "
    "connection's kube_config_path or kube_config extra, nor $KUBECONFIG, nor ~/.kube/config) and "
    "not inside a cluster (no service account: KUBERNETES_SERVICE_HOST is not set). Give the "
    "connection a kubeconfig, pass config_file=, or run in a pod with in_cluster=True"
)
BAD_CONFIG = "the Kubernetes configuration of {where} cannot be used: {reason}"
_NOTHING_FOUND = (
    "No configuration found",
    "Service host/port is not set",
    "Expected key current-context",  # kubernetes_asyncio, given an empty kubeconfig
)
"""What the clients say when they found neither a kubeconfig nor an in-cluster account."""


def config_error(settings: Settings, exc: BaseException) -> errors.TFJobConfigError | None:
    """The provider's error for a client that could not be configured (``None`` for any other
    exception): what was looked for, and where to set it."""
    if not is_config_exception(exc):
        return None
    conn = settings.kubernetes_conn_id
    where = f"connection {conn!r}" if conn else "kubernetes_conn_id=None"
    import os

    given = settings.config_file or settings.config_dict is not None
    nothing = default_kubeconfig() is None and not os.environ.get("KUBERNETES_SERVICE_HOST")
    if not given and nothing and any(text in str(exc) for text in _NOTHING_FOUND):
        return errors.TFJobConfigError(NO_CONFIG.format(where=where))
    return errors.TFJobConfigError(BAD_CONFIG.format(where=where, reason=exc))


POD = "pods"
REDACTED = "<kubeconfig: credentials redacted>"


class ConnectionSettings(dict[str, Any]):
    """Connection settings (``TFJobHook.trigger_settings()``), a kubeconfig inline: a dict, as
    Airflow serializes trigger kwargs (encrypted), whose ``repr`` and ``str`` never show the
    kubeconfig (tokens, client keys, ``exec`` commands and their environment): what prints a
    trigger, a hook or these settings into a log, an error or a page prints the rest only."""

    def __repr__(self) -> str:
        shown = {k: REDACTED if k == "config_dict" and v else v for k, v in self.items()}
        return f"ConnectionSettings({shown!r})"

    __str__ = __repr__


class Settings:
    """Connection parameters shared by both hooks (what the cncf hooks are built from)."""

    conn_name_attr = "kubernetes_conn_id"
    default_conn_name = "kubernetes_default"
    conn_type = "kubernetes"
    hook_name = "Kubeflow TFJob"

    def __init__(
        self,
        kubernetes_conn_id: str | None = default_conn_name,
        *,
        config_file: str | None = None,
        config_dict: dict[str, Any] | None = None,
        cluster_context: str | None = None,
        in_cluster: bool | None = None,
        disable_verify_ssl: bool | None = None,
        max_attempts: int = _retry.MAX_ATTEMPTS,
        api: str | None = None,
    ) -> None:
        self.kubernetes_conn_id = kubernetes_conn_id
        self.api = api
        """``tfjob`` or ``trainjob`` (``_resource.APIS``); None: for ``TFJobHook``, the
        connection's ``tfjob_api`` extra, else what the cluster serves (``TFJobHook.job_api``);
        for ``AsyncTFJobHook``, ``tfjob`` (``job_api``)."""
        self.max_attempts = max_attempts
        """Tries of one API call on 429, 5xx and connection errors (1: no retry)."""
        self.retry_until: float | None = None
        """No retry waits past this time (epoch seconds), when set: a caller with a deadline
        of its own (the sensor's ``timeout``) sets it, and gets the error at its deadline."""
        self.config_file = config_file
        self.config_dict = config_dict
        self.cluster_context = cluster_context
        self.in_cluster = in_cluster
        self.disable_verify_ssl = disable_verify_ssl
        self._server_version: str | None = None
        """The API server's ``gitVersion`` once read (``server_version``)."""

    def __repr__(self) -> str:
        """The connection and where its configuration comes from, never the kubeconfig."""
        return (
            f"{type(self).__name__}(kubernetes_conn_id={self.kubernetes_conn_id!r}, "
            f"config_file={self.config_file!r}, "
            f"config_dict={REDACTED if self.config_dict else None}, "
            f"cluster_context={self.cluster_context!r}, in_cluster={self.in_cluster!r})"
        )

    __str__ = __repr__

    def _failure(
        self, exc: BaseException, verb: str, resource: str, namespace: str, name: str
    ) -> BaseException:
        """``exc`` as the provider's error: a configuration failure, else ``failure``."""
        if isinstance(exc, errors.TFJobError):
            return exc
        return config_error(self, exc) or failure(exc, verb, resource, namespace, name)

    @property
    def job_api(self) -> _resource.Api:
        """The API of this hook's jobs: ``api``, else ``tfjob`` (the sync hook also asks the
        connection and the cluster)."""
        return _resource.api_named(self.api)

    def _where(self, namespace: str) -> tuple[str, str, str, str]:
        """``(group, version, namespace, plural)``: a custom-objects call's first arguments."""
        api = self.job_api
        return api.group, api.version, namespace, api.plural

    def _cncf_kwargs(self) -> dict[str, Any]:
        return {
            "kubernetes_conn_id": self.kubernetes_conn_id,
            "cluster_context": self.cluster_context,
            "in_cluster": self.in_cluster,
            "disable_verify_ssl": self.disable_verify_ssl,
        }


def read_kubeconfig(path: str) -> dict[str, Any]:
    """A kubeconfig file as a dict."""
    return parse_kubeconfig(Path(path).read_text(), source=f"config file {path!r}")


def parse_kubeconfig(raw: str | dict[str, Any], source: str = "kube_config") -> dict[str, Any]:
    """A kubeconfig given as YAML/JSON text (a connection's ``kube_config``) or a dict."""
    import yaml

    data = raw if isinstance(raw, dict) else yaml.safe_load(raw)
    if not isinstance(data, dict):
        raise errors.TFJobError(f"{source} is not a kubeconfig (expected a YAML mapping)")
    return data


def default_kubeconfig() -> str | None:
    """``$KUBECONFIG`` (its first file) or ``~/.kube/config``, when it exists."""
    import os

    candidate = (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0] or "~/.kube/config"
    path = Path(candidate).expanduser()
    return str(path) if path.is_file() else None
