"""What both hooks share: connection settings, error translation, kubeconfig files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow_tfjob import errors
from airflow_tfjob.hooks import _retry


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
    ) -> None:
        self.kubernetes_conn_id = kubernetes_conn_id
        self.max_attempts = max_attempts
        """Tries of one API call on 429, 5xx and connection errors (1: no retry)."""
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
