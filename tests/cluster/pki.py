"""Credentials of the test cluster: a self-signed CA, a server certificate for 127.0.0.1, the
service-account signing key, static bearer tokens and kubeconfig files.

Everything is made with the ``openssl`` command line (Debian's openssl package), so the tests need
no Python crypto library.
"""

from __future__ import annotations

import base64
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

CLUSTER_NAME = "tfjob-test"
"""Cluster and context name in every kubeconfig this module writes."""

IDENTITIES: dict[str, tuple[str, ...]] = {
    "admin": ("system:masters",),
    "restricted": (),
    "controller-manager": ("system:masters",),
}
"""Static-token users and their groups; every user is also ``system:authenticated``."""


@dataclass(frozen=True)
class Pki:
    """Paths of the files the apiserver is started with."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    service_account_key: Path
    token_file: Path
    tokens: dict[str, str]
    """user name -> bearer token"""


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.strip()[-2000:]}")


def _make_ca(d: Path) -> None:
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        "-keyout", "ca.key", "-out", "ca.crt", "-subj", f"/CN={CLUSTER_NAME}-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )  # fmt: skip


def _make_server_cert(d: Path) -> None:
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=kube-apiserver",
        cwd=d,
    )  # fmt: skip
    (d / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "30", "-extfile", "server.ext", "-out", "server.crt",
        cwd=d,
    )  # fmt: skip


def _write_tokens(path: Path) -> dict[str, str]:
    tokens = {user: secrets.token_hex(16) for user in IDENTITIES}
    lines = []
    for user, token in tokens.items():
        groups = ",".join(IDENTITIES[user])
        lines.append(f'{token},{user},{user},"{groups}"' if groups else f"{token},{user},{user}")
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return tokens


def create(directory: Path) -> Pki:
    """Write a fresh CA, server certificate, service-account key and token file."""
    directory.mkdir(parents=True, exist_ok=True)
    _make_ca(directory)
    _make_server_cert(directory)
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=directory)
    token_file = directory / "tokens.csv"
    return Pki(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        service_account_key=directory / "sa.key",
        token_file=token_file,
        tokens=_write_tokens(token_file),
    )


def write_kubeconfig(path: Path, *, server: str, ca_cert: Path, user: str, token: str) -> Path:
    """A self-contained kubeconfig (CA inlined) whose current context is ``tfjob-test``."""
    ca_data = base64.b64encode(ca_cert.read_bytes()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CLUSTER_NAME,
                "cluster": {"server": server, "certificate-authority-data": ca_data},
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": CLUSTER_NAME, "context": {"cluster": CLUSTER_NAME, "user": user}}],
        "current-context": CLUSTER_NAME,
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path
