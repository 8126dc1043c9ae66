"""The second live deployment (``live_pair`` in conftest): two triggerers, and a connection whose
kubeconfig holds every kind of credential at once.

- ``triggerer`` and ``triggerer-2`` (job ids rising in that order), ``[triggerer]
  triggerer_health_check_threshold`` 10 s: a stopped triggerer's triggers go to the other one.
- ``kubernetes_default`` is created through the REST API (so it is in the metadata DB and in the
  connections list), its extra an inline ``kube_config`` that reaches the API server directly
  (no proxy: a proxy ends TLS, and the client certificate must be checked by the API server)
  with the admin token *and* a client certificate with its key, signed by the cluster's CA
  (:func:`client_credentials`, made with ``openssl``).
"""

from __future__ import annotations

import base64
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.live.deployment import CONFIG, Deployment
from tests.live.rest import AirflowClient

PAIR_CONFIG = {**CONFIG, "triggerer.triggerer_health_check_threshold": "10"}


@dataclass(frozen=True)
class Credentials:
    """What must never show: the token, the client key as kubeconfig data, a stretch of its PEM."""

    token: str
    key_data: str
    """``client-key-data``: the PEM key, base64-encoded."""
    key_pem: str
    """60 characters from the middle of the key's PEM body (one base64 line and more)."""
    kubeconfig: dict[str, Any]

    @property
    def secrets(self) -> dict[str, str]:
        return {"token": self.token, "client-key-data": self.key_data, "key PEM": self.key_pem}


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def client_credentials(cluster: Any, workdir: Path) -> Credentials:
    """A kubeconfig for ``cluster``'s API server with the admin token and a client certificate
    (CN ``airflow``, group ``system:masters``) signed by its CA, all inline."""
    pki = Path(cluster.ca_file).parent
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr",
        "-subj", "/CN=airflow/O=system:masters",
        cwd=workdir,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", "client.csr", "-CA", str(pki / "ca.crt"), "-CAkey",
        str(pki / "ca.key"), "-CAcreateserial", "-days", "2", "-out", "client.crt",
        cwd=workdir,
    )  # fmt: skip

    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    key = (workdir / "client.key").read_text()
    body = "".join(line for line in key.splitlines() if not line.startswith("-----"))
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "live",
                "cluster": {
                    "server": cluster.server,
                    "certificate-authority-data": b64(pki / "ca.crt"),
                },
            }
        ],
        "users": [
            {
                "name": "airflow",
                "user": {
                    "token": cluster.admin_token,
                    "client-certificate-data": b64(workdir / "client.crt"),
                    "client-key-data": b64(workdir / "client.key"),
                },
            }
        ],
        "contexts": [{"name": "live", "context": {"cluster": "live", "user": "airflow"}}],
        "current-context": "live",
    }
    middle = len(body) // 2
    return Credentials(
        cluster.admin_token, b64(workdir / "client.key"), body[middle : middle + 60], config
    )


def add_connection(api: AirflowClient, credentials: Credentials, namespace: str) -> None:
    """``kubernetes_default`` in the metadata DB, as an admin creates it."""
    extra = {"kube_config": json.dumps(credentials.kubeconfig), "namespace": namespace}
    api.call(
        "POST",
        "/connections",
        json={"connection_id": "kubernetes_default", "conn_type": "kubernetes",
              "extra": json.dumps(extra)},
    )  # fmt: skip


def start_pair(home: Path) -> Deployment:
    """Start the deployment (no connection yet: :func:`add_connection`)."""
    return Deployment(home, config=PAIR_CONFIG, triggerers=2).start()


def triggerer_of(live: Deployment, api: AirflowClient, job_id: int) -> str:
    """The component name (``triggerer``, ``triggerer-2``) of a triggerer job id: the alive
    triggerer jobs in the order of their ids are the triggerers in their order of start."""
    found = api.call("GET", "/jobs", params={"job_type": "TriggererJob", "limit": 100})["jobs"]
    alive = sorted(j["id"] for j in found if j["state"] == "running")
    names = sorted((n for n in live.components if n.startswith("triggerer")), key=_order)
    assert len(alive) == len(names), f"alive triggerer jobs {alive}, components {names}"
    return names[alive.index(job_id)]


def _order(name: str) -> int:
    return int(name.rsplit("-", 1)[1]) if "-" in name else 1
