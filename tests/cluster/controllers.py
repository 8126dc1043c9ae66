"""A kubebuilder-style controller (controller-runtime manager with webhooks) as a process of the
test cluster, installed the way its release installs it, minus the pod: what JobSet and Trainer
(:mod:`tests.cluster.trainer`) have in common.

- It runs as its release's ServiceAccount, with a bound token in a kubeconfig of its own, bound
  to its release's ClusterRole, so RBAC is the release's, not an admin's.
- Its webhook configurations carry the release's names and webhooks, but call it by URL on
  loopback with a CA bundle (nothing routes to a Service here).
- Readiness is seen from the apiserver's side: dry-run creates that only its webhooks can have
  mutated or refused (a ``/readyz`` says nothing of whether the apiserver calls it).
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import kubernetes
import yaml

from tests.cluster import pki, processes
from tests.cluster.processes import ClusterError


class ClusterLike(Protocol):
    server: str
    ca_file: Path
    workdir: Path


@dataclass(frozen=True)
class Controller:
    """One controller as its release installs it."""

    process: str
    """Name of its process, its log (``<process>.log`` in the workdir) and its folder."""
    namespace: str
    account: str
    role_file: Path
    """The release's ClusterRole (a copy in tests/data)."""
    role: str
    """The name the ClusterRole is installed under (a kustomization may prefix it)."""


@dataclass(frozen=True)
class Hook:
    """One webhook of a configuration, as the release's manifests declare it."""

    name: str
    path: str
    group: str
    version: str
    resource: str
    operations: tuple[str, ...] = ("CREATE", "UPDATE")
    object_selector: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HookConfig:
    """A Mutating- or ValidatingWebhookConfiguration of the release."""

    name: str
    mutating: bool
    hooks: tuple[Hook, ...]


def start(
    controller: Controller,
    binary: Path,
    api: kubernetes.client.ApiClient,
    cluster: ClusterLike,
    config: dict[str, Any],
    env: dict[str, str],
) -> subprocess.Popen[bytes]:
    """Install the controller's account and start it with ``config`` as its config file."""
    kubeconfig = install_account(api, cluster, controller)
    config_file = cluster.workdir / controller.process / "config.yaml"
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    argv = [
        str(binary), f"--config={config_file}", f"--kubeconfig={kubeconfig}",
        "--zap-log-level=info",
    ]  # fmt: skip
    log_path = cluster.workdir / f"{controller.process}.log"
    return processes.spawn(argv, log_path, env={"KUBECONFIG": str(kubeconfig), **env})


def install_account(
    api: kubernetes.client.ApiClient, cluster: ClusterLike, controller: Controller
) -> Path:
    """Namespace, ServiceAccount, ClusterRole and binding of the release; a kubeconfig holding
    a bound token of the account (TokenRequest, 24 h), its path."""
    core = kubernetes.client.CoreV1Api(api)
    rbac = kubernetes.client.RbacAuthorizationV1Api(api)
    namespace, account = controller.namespace, controller.account
    core.create_namespace({"metadata": {"name": namespace}})
    core.create_namespaced_service_account(namespace, {"metadata": {"name": account}})
    docs = yaml.safe_load_all(controller.role_file.read_text())
    role = next(doc for doc in docs if doc and doc.get("kind") == "ClusterRole")
    role["metadata"]["name"] = controller.role
    rbac.create_cluster_role(role)
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": controller.role},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": controller.role,
            },
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        }
    )
    request = {"spec": {"audiences": [], "expirationSeconds": 86400}}
    token = core.create_namespaced_service_account_token(account, namespace, request).status.token
    return pki.write_kubeconfig(
        cluster.workdir / f"kubeconfig-{controller.process}.yaml",
        server=cluster.server, ca_cert=cluster.ca_file, user=account, token=token,
    )  # fmt: skip


def register(
    api: kubernetes.client.ApiClient, configs: Sequence[HookConfig], port: int, ca_file: Path
) -> None:
    """Create the webhook configurations, calling ``https://127.0.0.1:<port><path>``."""
    admission = kubernetes.client.AdmissionregistrationV1Api(api)
    bundle = base64.b64encode(ca_file.read_bytes()).decode()
    for config in configs:
        hooks = [_webhook(hook, port, bundle) for hook in config.hooks]
        body = {"metadata": {"name": config.name}, "webhooks": hooks}
        if config.mutating:
            admission.create_mutating_webhook_configuration(body)
        else:
            admission.create_validating_webhook_configuration(body)


def _webhook(hook: Hook, port: int, bundle: str) -> dict[str, Any]:
    rule = {
        "apiGroups": [hook.group], "apiVersions": [hook.version],
        "operations": list(hook.operations), "resources": [hook.resource],
    }  # fmt: skip
    webhook: dict[str, Any] = {
        "name": hook.name,
        "admissionReviewVersions": ["v1"],
        "clientConfig": {"url": f"https://127.0.0.1:{port}{hook.path}", "caBundle": bundle},
        "failurePolicy": "Fail",
        "sideEffects": "None",
        "rules": [rule],
    }
    if hook.object_selector:
        webhook["objectSelector"] = hook.object_selector
    return webhook


Probe = Callable[[kubernetes.client.CustomObjectsApi], str | None]
"""None once satisfied, else why not (for the message of a start that timed out)."""


def wait(
    cluster: ClusterLike,
    procs: dict[str, subprocess.Popen[bytes] | None],
    api: kubernetes.client.ApiClient,
    probes: Sequence[Probe],
    timeout: float,
) -> None:
    """Run ``probes`` in order, each until it is satisfied; :class:`ClusterError` with the logs'
    tails if one of ``procs`` exits or the time runs out."""
    custom = kubernetes.client.CustomObjectsApi(api)
    pending, why = list(probes), "not tried"
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for name, proc in procs.items():
            if proc is None or proc.poll() is not None:
                raise ClusterError(f"{name} exited; {log_tail(cluster, name)}")
        why = pending[0](custom) or ""
        if not why:
            pending.pop(0)
        else:
            time.sleep(0.1)
    if pending:
        logs = "; ".join(log_tail(cluster, name) for name in procs)
        raise ClusterError(f"{', '.join(procs)} not ready in {timeout} s: {why}; {logs}")


def log_tail(cluster: ClusterLike, process: str, lines: int = 20) -> str:
    path = cluster.workdir / f"{process}.log"
    try:
        tail = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        tail = ["(no log)"]
    return f"{path} ends with:\n" + "\n".join(tail)


def dry_run_create(
    custom: kubernetes.client.CustomObjectsApi, body: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """A dry-run create of ``body`` (namespaced if it names a namespace; the plural is the
    kind's, lowercased, plus s): the answer, or ``{}`` and the server's message."""
    group, version = body["apiVersion"].split("/")
    plural = body["kind"].lower() + "s"
    namespace = body["metadata"].get("namespace")
    try:
        if namespace:
            answer = custom.create_namespaced_custom_object(
                group, version, namespace, plural, body, dry_run="All"
            )
        else:
            answer = custom.create_cluster_custom_object(
                group, version, plural, body, dry_run="All"
            )
    except kubernetes.client.ApiException as exc:
        return {}, message(exc)
    return dict(answer), ""


def message(exc: kubernetes.client.ApiException) -> str:
    """The ``message`` of a Status the server answered with."""
    try:
        return str(json.loads(exc.body or "{}").get("message", exc.reason))
    except ValueError:
        return str(exc.body or exc.reason)


def refused_by(webhook: str, body: dict[str, Any]) -> Probe:
    """A probe: a dry-run create of ``body``, which only ``webhook`` refuses, is refused by it."""

    def probe(custom: kubernetes.client.CustomObjectsApi) -> str | None:
        _answer, said = dry_run_create(custom, body)
        if said.startswith(f'admission webhook "{webhook}" denied'):
            return None
        return f"a {body['kind']} that {webhook} refuses was {said or 'accepted'!r}"

    return probe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
