"""A real kube-apiserver v1.20.2 and its etcd on loopback, with the TFJob CRD installed.

Tests talk to a real server rather than a mocked client because fakes drift from the server:
schema validation, the status subresource, watches and RBAC are the server's. Nothing runs pods
(no scheduler, kubelet or controllers); the simulator under tests/sim/ plays those parts.

The binary comes from tests/cluster/build_apiserver.sh (built once per machine and cached under
``~/.cache/airflow-tfjob``). The TFJob CRD comes from tests/data, minus its
``x-kubernetes-validations`` rule, which 1.20 does not know.
"""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes
import yaml

from tests.cluster import pki, processes

HERE = Path(__file__).resolve().parent
BUILD_SCRIPT = HERE / "build_apiserver.sh"
CRD_FILE = HERE.parent / "data" / "kubeflow.org_tfjobs.yaml"
CRD_NAME = "tfjobs.kubeflow.org"
_START_ATTEMPTS = 5  # a free port can be taken between probing it and the server binding it


class ClusterError(RuntimeError):
    """The test cluster could not be built or started; the message says which part and why."""


@dataclass
class Cluster:
    """A running etcd + kube-apiserver pair; stop it with :meth:`stop`."""

    server: str
    """``https://127.0.0.1:PORT``"""
    kubeconfig: Path
    """Admin kubeconfig (static token, CA inlined); cluster and context ``tfjob-test``."""
    ca_file: Path
    admin_token: str
    workdir: Path
    """Certificates, kubeconfigs, etcd data and the logs ``etcd.log``, ``kube-apiserver.log``."""
    rbac: bool
    """``--authorization-mode RBAC`` (else ``AlwaysAllow``)."""
    tokens: dict[str, str] = field(repr=False, default_factory=dict)
    """Static-token identities: ``admin`` (system:masters) and ``restricted`` (no groups)."""
    startup_seconds: float = 0.0
    """From start_cluster() to the CRD being served."""
    etcd: subprocess.Popen[bytes] | None = field(repr=False, default=None)
    apiserver: subprocess.Popen[bytes] | None = field(repr=False, default=None)

    def kubeconfig_for(self, user: str) -> Path:
        """A kubeconfig for another static-token identity, e.g. ``"restricted"``."""
        if user not in self.tokens:
            raise KeyError(f"no identity {user!r}; known: {sorted(self.tokens)}")
        path = self.workdir / f"kubeconfig-{user}.yaml"
        if user == "admin":
            return self.kubeconfig
        if not path.exists():
            pki.write_kubeconfig(
                path, server=self.server, ca_cert=self.ca_file, user=user, token=self.tokens[user]
            )
        return path

    def api_client(self, user: str = "admin") -> kubernetes.client.ApiClient:
        """A new client loaded from that identity's kubeconfig; the caller closes it."""
        return kubernetes.config.new_client_from_config(
            config_file=str(self.kubeconfig_for(user)), persist_config=False
        )

    def alive(self) -> bool:
        return all(p is not None and p.poll() is None for p in (self.etcd, self.apiserver))

    def rss_mib(self) -> dict[str, float]:
        """Resident memory of each process, in MiB."""
        procs = {"kube-apiserver": self.apiserver, "etcd": self.etcd}
        return {name: processes.rss_mib(p.pid) for name, p in procs.items() if p is not None}

    def stop(self) -> None:
        """Stop kube-apiserver, then etcd, by PID (SIGTERM, wait, SIGKILL). Idempotent.

        Keeps the logs, certificates and kubeconfigs; removes only etcd's data directory (its
        preallocated WAL is 64 MB, and a stopped cluster cannot be restarted from it).
        """
        for proc in (self.apiserver, self.etcd):
            if proc is not None:
                processes.stop(proc)
        _remove_tree(self.workdir / "etcd-data")


def _build_setting(name: str) -> str:
    """A ``readonly NAME="value"`` of build_apiserver.sh: the cache key is defined there only."""
    found = re.search(rf'^readonly {name}="([^"]+)"', BUILD_SCRIPT.read_text(), re.MULTILINE)
    if found is None:
        raise ClusterError(f"{BUILD_SCRIPT.name} defines no {name}")
    return found.group(1)


def apiserver_binary() -> Path:
    """Where build_apiserver.sh caches the binary (it may not exist yet)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    key = f"{_build_setting('DEB_VERSION')}-{_build_setting('BUILD_REVISION')}"
    return cache / "airflow-tfjob" / "kube-apiserver" / key / "kube-apiserver"


def ensure_apiserver() -> Path:
    """The cached binary, building it first if missing; :class:`ClusterError` if that fails."""
    binary = apiserver_binary()
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise ClusterError(
            f"building kube-apiserver failed (exit {result.returncode}); "
            f"{BUILD_SCRIPT.name} said:\n{_tail(result.stderr)}"
        )
    built = Path(result.stdout.strip().splitlines()[-1])
    if built != binary or not binary.is_file():
        raise ClusterError(f"{BUILD_SCRIPT.name} printed {built}, expected {binary}")
    return binary


def start_cluster(*, rbac: bool = False, workdir: Path | None = None, crd: bool = True) -> Cluster:
    """Start etcd and kube-apiserver on free loopback ports and install the TFJob CRD.

    Raises :class:`ClusterError` with the tail of the failing process's log.
    """
    started = time.monotonic()
    binary = ensure_apiserver()
    workdir = workdir or Path(tempfile.mkdtemp(prefix="tfjob-test-cluster-"))
    workdir.mkdir(parents=True, exist_ok=True)
    creds = pki.create(workdir / "pki")
    cluster = Cluster(
        server="",
        kubeconfig=workdir / "kubeconfig.yaml",
        ca_file=creds.ca_cert,
        admin_token=creds.tokens["admin"],
        workdir=workdir,
        rbac=rbac,
        tokens=creds.tokens,
    )
    try:
        cluster.etcd, etcd_url = _start_etcd(workdir)
        cluster.apiserver, port = _start_apiserver(binary, workdir, creds, etcd_url, rbac)
        cluster.server = f"https://127.0.0.1:{port}"
        pki.write_kubeconfig(
            cluster.kubeconfig, server=cluster.server, ca_cert=creds.ca_cert,
            user="admin", token=creds.tokens["admin"],
        )  # fmt: skip
        if crd:
            _install_crd(cluster)
    except BaseException:
        cluster.stop()
        raise
    cluster.startup_seconds = time.monotonic() - started
    return cluster


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _log_tail(path: Path) -> str:
    try:
        return _tail(path.read_text(errors="replace"))
    except OSError:
        return "(no log)"


def _remove_tree(path: Path) -> None:
    if path.is_dir():
        subprocess.run(["rm", "-rf", "--", str(path)], check=False)


def _start_with_retry(
    name: str,
    log_path: Path,
    launch: Callable[[], tuple[subprocess.Popen[bytes], int]],
    ready: Callable[[int], bool],
    timeout: float,
) -> tuple[subprocess.Popen[bytes], int]:
    """Launch (on fresh ports) until the process answers ``ready(port)``; retry bind races."""
    for _attempt in range(_START_ATTEMPTS):
        proc, port = launch()
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            if ready(port):
                return proc, port
            time.sleep(0.1)
        why = f"not ready in {timeout} s" if proc.poll() is None else "exited"
        processes.stop(proc)
        if "address already in use" not in _log_tail(log_path):
            raise ClusterError(f"{name} {why}; {log_path} ends with:\n{_log_tail(log_path)}")
    raise ClusterError(f"{name}: ports kept being taken ({_START_ATTEMPTS} attempts)")


def _start_etcd(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    log_path = workdir / "etcd.log"

    def launch() -> tuple[subprocess.Popen[bytes], int]:
        client, peer = _free_port(), _free_port()
        _remove_tree(workdir / "etcd-data")
        argv = [
            "etcd", "--name", pki.CLUSTER_NAME, "--data-dir", str(workdir / "etcd-data"),
            "--listen-client-urls", f"http://127.0.0.1:{client}",
            "--advertise-client-urls", f"http://127.0.0.1:{client}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", f"{pki.CLUSTER_NAME}=http://127.0.0.1:{peer}",
            "--log-level", "warn",
        ]  # fmt: skip
        return processes.spawn(argv, log_path), client

    def ready(port: int) -> bool:
        body = _get(f"http://127.0.0.1:{port}/health")
        return body is not None and json.loads(body).get("health") == "true"

    proc, port = _start_with_retry("etcd", log_path, launch, ready, timeout=30)
    return proc, f"http://127.0.0.1:{port}"


def _apiserver_argv(
    binary: Path, *, workdir: Path, creds: pki.Pki, etcd_url: str, port: int, rbac: bool
) -> list[str]:
    # No controller-manager, scheduler or kubelet: the endpoint reconciler cannot publish a
    # loopback address, and nothing would create the `default` ServiceAccount pods need.
    return [
        str(binary),
        f"--etcd-servers={etcd_url}",
        "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={port}",
        "--insecure-port=0",
        f"--tls-cert-file={creds.server_cert}", f"--tls-private-key-file={creds.server_key}",
        f"--client-ca-file={creds.ca_cert}",
        f"--token-auth-file={creds.token_file}",
        f"--authorization-mode={'RBAC' if rbac else 'AlwaysAllow'}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={creds.service_account_key}",
        f"--service-account-signing-key-file={creds.service_account_key}",
        "--service-cluster-ip-range=10.0.0.0/24",
        "--endpoint-reconciler-type=none",
        "--disable-admission-plugins=ServiceAccount",
        f"--cert-dir={workdir / 'pki'}",
        "--profiling=false",
    ]  # fmt: skip


def _start_apiserver(
    binary: Path, workdir: Path, creds: pki.Pki, etcd_url: str, rbac: bool
) -> tuple[subprocess.Popen[bytes], int]:
    log_path = workdir / "kube-apiserver.log"
    context = ssl.create_default_context(cafile=str(creds.ca_cert))
    headers = {"Authorization": f"Bearer {creds.tokens['admin']}"}

    def launch() -> tuple[subprocess.Popen[bytes], int]:
        port = _free_port()
        argv = _apiserver_argv(
            binary, workdir=workdir, creds=creds, etcd_url=etcd_url, port=port, rbac=rbac
        )
        return processes.spawn(argv, log_path), port

    def ready(port: int) -> bool:
        url = f"https://127.0.0.1:{port}/readyz"
        return _get(url, context=context, headers=headers) == "ok"

    return _start_with_retry("kube-apiserver", log_path, launch, ready, timeout=90)


def _get(
    url: str, *, context: ssl.SSLContext | None = None, headers: dict[str, str] | None = None
) -> str | None:
    """The body of a 200 answer, or None while the server is not (yet) answering."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=2, context=context) as response:
            return str(response.read().decode())
    except (OSError, urllib.error.URLError, ValueError):
        return None


def crd_manifest() -> dict[str, Any]:
    """The TFJob CRD from tests/data without ``x-kubernetes-validations`` (unknown to 1.20)."""
    stripped: dict[str, Any] = _strip_validations(yaml.safe_load(CRD_FILE.read_text()))
    return stripped


def _strip_validations(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: _strip_validations(v) for k, v in node.items() if k != "x-kubernetes-validations"
        }
    if isinstance(node, list):
        return [_strip_validations(v) for v in node]
    return node


def _install_crd(cluster: Cluster, timeout: float = 60) -> None:
    """Create the CRD and wait until it is Established and its resource is served."""
    with cluster.api_client() as client:
        ext = kubernetes.client.ApiextensionsV1Api(client)
        ext.create_custom_resource_definition(body=crd_manifest(), _preload_content=False)
        custom = kubernetes.client.CustomObjectsApi(client)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _crd_established(ext) and _tfjobs_served(custom):
                return
            time.sleep(0.1)
    raise ClusterError(f"CRD {CRD_NAME} not established within {timeout} s")


def _crd_established(ext: kubernetes.client.ApiextensionsV1Api) -> bool:
    raw = ext.read_custom_resource_definition(CRD_NAME, _preload_content=False)
    conditions = json.loads(raw.data).get("status", {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


def _tfjobs_served(custom: kubernetes.client.CustomObjectsApi) -> bool:
    try:
        custom.list_cluster_custom_object("kubeflow.org", "v1", "tfjobs", limit=1)
    except kubernetes.client.ApiException as e:
        if e.status == 404:
            return False
        raise
    return True
