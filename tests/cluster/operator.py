"""The real Kubeflow training operator (v1.9) as a process of the test cluster, as installed.

It runs as its own ServiceAccount (``kubeflow/training-operator``) bound to the ClusterRole of its
release (tests/data/training-operator-role.yaml), restricted to TFJobs (``--enable-scheme=tfjob``),
and its validating webhook is called on every TFJob create and update, as in a real install.

Two things a pod would give it are made here instead:

- the cert rotator needs its Secret ``training-operator-webhook-cert`` in ``$MY_POD_NAMESPACE``
  (it fills it) and waits for ``tls.crt`` in ``/tmp/k8s-webhook-server/serving-certs``, where a
  pod mounts that Secret. The webhook server itself reads ``$TMPDIR/k8s-webhook-server/
  serving-certs``, so each cluster points ``TMPDIR`` at a folder of its own holding a certificate
  for 127.0.0.1, and the fixed path only has to exist;
- nothing routes to a Service here, so the cluster's own ValidatingWebhookConfiguration
  (:data:`WEBHOOK_CONFIG`, not ``validator.training-operator.kubeflow.org``, which the rotator
  rewrites) calls the webhook on loopback with that certificate as its CA bundle.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import kubernetes
import yaml

from tests.cluster import pki, processes
from tests.kubelet import certs

NAMESPACE = "kubeflow"
ACCOUNT = "training-operator"
SECRET = "training-operator-webhook-cert"
WEBHOOK_CONFIG = "airflow-tfjob-test.tfjob-validator"
WEBHOOK_PATH = "/validate-kubeflow-org-v1-tfjob"
ROTATOR_CERT_DIR = Path("/tmp/k8s-webhook-server/serving-certs")
ROLE_FILE = Path(__file__).resolve().parent.parent / "data" / "training-operator-role.yaml"


class _Cluster(Protocol):
    server: str
    ca_file: Path
    workdir: Path


def start(
    binary: Path, api: kubernetes.client.ApiClient, cluster: _Cluster, timeout: float = 90
) -> subprocess.Popen[bytes]:
    """Install the operator's account, start it, register its webhook, and return once a TFJob
    create goes through the webhook."""
    _install_account(api)
    kubeconfig = cluster.workdir / "kubeconfig-training-operator.yaml"
    pki.write_kubeconfig(
        kubeconfig, server=cluster.server, ca_cert=cluster.ca_file, user=ACCOUNT,
        token=_token(api),
    )  # fmt: skip
    tmpdir = cluster.workdir / "operator-tmp"
    serving = certs.self_signed(tmpdir / "k8s-webhook-server" / "serving-certs", "tls")
    if not (ROTATOR_CERT_DIR / "tls.crt").exists():
        ROTATOR_CERT_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copy(serving.cert, ROTATOR_CERT_DIR / "tls.crt")
        shutil.copy(serving.key, ROTATOR_CERT_DIR / "tls.key")
    health, webhook = _free_port(), _free_port()
    argv = [
        str(binary), "--enable-scheme=tfjob", f"--kubeconfig={kubeconfig}",
        "--metrics-bind-address=0", f"--health-probe-bind-address=127.0.0.1:{health}",
        f"--webhook-server-port={webhook}", "--zap-log-level=info",
    ]  # fmt: skip
    env = {"MY_POD_NAMESPACE": NAMESPACE, "TMPDIR": str(tmpdir), "KUBECONFIG": str(kubeconfig)}
    log_path = cluster.workdir / "training-operator.log"
    proc = processes.spawn(argv, log_path, env=env)
    try:
        _wait(lambda: _get(f"http://127.0.0.1:{health}/readyz") == "ok", proc, log_path, timeout)
        _register_webhook(api, webhook, serving.cert)
        _wait(lambda: _webhook_in_path(api), proc, log_path, timeout)
    except BaseException:
        processes.stop(proc)
        raise
    return proc


def _install_account(api: kubernetes.client.ApiClient) -> None:
    core = kubernetes.client.CoreV1Api(api)
    rbac = kubernetes.client.RbacAuthorizationV1Api(api)
    core.create_namespace({"metadata": {"name": NAMESPACE}})
    core.create_namespaced_service_account(NAMESPACE, {"metadata": {"name": ACCOUNT}})
    core.create_namespaced_secret(NAMESPACE, {"metadata": {"name": SECRET}, "type": "Opaque"})
    for doc in yaml.safe_load_all(ROLE_FILE.read_text()):
        if doc and doc.get("kind") == "ClusterRole":
            rbac.create_cluster_role(doc)
    binding = {
        "metadata": {"name": ACCOUNT},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": ACCOUNT,
        },
        "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": NAMESPACE}],
    }
    rbac.create_cluster_role_binding(binding)


def _token(api: kubernetes.client.ApiClient) -> str:
    """A bound token of the operator's ServiceAccount (TokenRequest, 24 h)."""
    core = kubernetes.client.CoreV1Api(api)
    request = {"spec": {"audiences": [], "expirationSeconds": 86400}}
    answer = core.create_namespaced_service_account_token(ACCOUNT, NAMESPACE, request)
    return str(answer.status.token)


def _register_webhook(api: kubernetes.client.ApiClient, port: int, ca_file: Path) -> None:
    rule = {
        "apiGroups": ["kubeflow.org"], "apiVersions": ["v1"],
        "operations": ["CREATE", "UPDATE"], "resources": ["tfjobs"],
    }  # fmt: skip
    config = {
        "metadata": {"name": WEBHOOK_CONFIG},
        "webhooks": [
            {
                "name": "validator.tfjob.training-operator.kubeflow.org",
                "admissionReviewVersions": ["v1"],
                "clientConfig": {
                    "url": f"https://127.0.0.1:{port}{WEBHOOK_PATH}",
                    "caBundle": base64.b64encode(ca_file.read_bytes()).decode(),
                },
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "rules": [rule],
            }
        ],
    }
    kubernetes.client.AdmissionregistrationV1Api(api).create_validating_webhook_configuration(
        config
    )


PROBE: dict[str, Any] = {
    "apiVersion": "kubeflow.org/v1",
    "kind": "TFJob",
    "metadata": {"name": "webhook-probe", "namespace": NAMESPACE},
    "spec": {
        "tfReplicaSpecs": {
            "Worker": {"template": {"spec": {"containers": [{"name": "x", "image": "x"}]}}}
        }
    },
}
"""A TFJob the schema accepts and only the webhook refuses (no ``tensorflow`` container)."""


def _webhook_in_path(api: kubernetes.client.ApiClient) -> bool:
    """Whether a dry-run create of :data:`PROBE` is refused by the webhook."""
    custom = kubernetes.client.CustomObjectsApi(api)
    try:
        custom.create_namespaced_custom_object(
            "kubeflow.org", "v1", NAMESPACE, "tfjobs", PROBE, dry_run="All"
        )
    except kubernetes.client.ApiException as exc:
        message = str(json.loads(exc.body or "{}").get("message", ""))
        return message.startswith('admission webhook "validator.tfjob')
    return False


def _wait(
    check: Callable[[], bool], proc: subprocess.Popen[bytes], log_path: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if check():
            return
        time.sleep(0.2)
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
    why = "exited" if proc.poll() is not None else f"not ready in {timeout} s"
    raise processes.ClusterError(f"training operator {why}; {log_path} ends with:\n{tail}")


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return str(response.read().decode())
    except OSError:
        return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
