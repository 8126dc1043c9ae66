"""A cluster as a platform team runs it, on loopback: etcd, kube-apiserver (RBAC, service
accounts, admission, CEL rules and strict field validation of the TFJob CRD),
kube-controller-manager (garbage collector, namespace, service-account, root-CA and Job
controllers), the real Kubeflow training operator, its validating webhook in the path of every
TFJob create, and Kubeflow Trainer v2 with JobSet (:mod:`tests.cluster.trainer`), their webhooks
in the path of every TrainJob, runtime and JobSet create.

Tests talk to real servers rather than a mocked client because fakes drift from the server. Only
the kubelet stands in (:mod:`tests.kubelet`: processes instead of containers); nothing schedules
pods but that kubelet, which binds them to its Node.

The binaries come from tests/cluster/build_kube.sh (built once per version from their Go modules
and cached under ``~/.cache/airflow-tfjob``). The TFJob CRD is the operator module's own, checked
there against tests/data's copy; JobSet's and Trainer's CRDs are their modules' own.
"""

from __future__ import annotations

import json
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

import kubernetes

from tests.cluster import crds, pki, processes
from tests.cluster import operator as operator_mod
from tests.cluster import trainer as trainer_mod
from tests.cluster.binaries import Binaries, ensure_built, tail
from tests.cluster.processes import ClusterError

HERE = Path(__file__).resolve().parent
CRD_FILE = HERE.parent / "data" / "kubeflow.org_tfjobs.yaml"
CRD_NAME = "tfjobs.kubeflow.org"
_START_ATTEMPTS = 5  # a free port can be taken between probing it and the server binding it


@dataclass
class Cluster:
    """A running etcd, kube-apiserver, kube-controller-manager, training operator, JobSet and
    Trainer; stop it with :meth:`stop`."""

    server: str
    """``https://127.0.0.1:PORT``"""
    kubeconfig: Path
    """Admin kubeconfig (static token, CA inlined); cluster and context ``tfjob-test``."""
    ca_file: Path
    admin_token: str
    workdir: Path
    """Certificates, kubeconfigs, etcd data and the logs ``etcd.log``, ``kube-apiserver.log``,
    ``kube-controller-manager.log``, ``training-operator.log``, ``jobset-controller.log``,
    ``trainer-controller-manager.log``."""
    tokens: dict[str, str] = field(repr=False, default_factory=dict)
    """Static-token identities: ``admin`` (system:masters) and ``restricted`` (no groups)."""
    startup_seconds: float = 0.0
    """From start_cluster() to the last webhook answering (the operator's or Trainer's)."""
    version: str = ""
    """What the apiserver's ``/version`` says (``v1.36.3``)."""
    etcd: subprocess.Popen[bytes] | None = field(repr=False, default=None)
    apiserver: subprocess.Popen[bytes] | None = field(repr=False, default=None)
    controller_manager: subprocess.Popen[bytes] | None = field(repr=False, default=None)
    operator: subprocess.Popen[bytes] | None = field(repr=False, default=None)
    jobset: subprocess.Popen[bytes] | None = field(repr=False, default=None)
    trainer: subprocess.Popen[bytes] | None = field(repr=False, default=None)

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
        return closing_client(self.kubeconfig_for(user))

    def _processes(self) -> dict[str, subprocess.Popen[bytes] | None]:
        return {  # in the order they stop: clients of the apiserver first, Trainer before JobSet
            "trainer-controller-manager": self.trainer,
            "jobset-controller": self.jobset,
            "training-operator": self.operator,
            "kube-controller-manager": self.controller_manager,
            "kube-apiserver": self.apiserver,
            "etcd": self.etcd,
        }

    def alive(self) -> bool:
        return all(p is not None and p.poll() is None for p in self._processes().values())

    def rss_mib(self) -> dict[str, float]:
        """Resident memory of each process, in MiB."""
        procs = self._processes()
        return {name: processes.rss_mib(p.pid) for name, p in procs.items() if p is not None}

    def stop(self) -> None:
        """Stop Trainer, JobSet, the operator, the controller-manager, kube-apiserver, then etcd,
        by PID (SIGTERM, wait, SIGKILL). Idempotent.

        Keeps the logs, certificates and kubeconfigs; removes only etcd's data directory (its
        preallocated WAL is 64 MB, and a stopped cluster cannot be restarted from it).
        """
        for proc in self._processes().values():
            if proc is not None:
                processes.stop(proc)
        _remove_tree(self.workdir / "etcd-data")


def start_cluster(
    *, workdir: Path | None = None, crd: bool = True, operator: bool = True, trainer: bool = True
) -> Cluster:
    """Start etcd, kube-apiserver and kube-controller-manager on free loopback ports; with
    ``crd`` (the default) also install the TFJob CRD and, with ``operator`` (the default),
    start the training operator with its webhook registered. Without it, nothing reconciles
    TFJobs: for a benchmark that plays the operator itself (writes the pods and statuses), which
    the real one would race (it creates the pods first, unbound to any node). With ``trainer``
    (the default) also install JobSet and Trainer v2 and the runtimes of deploy/trainer.

    Raises :class:`ClusterError` with the tail of the failing process's log.
    """
    started = time.monotonic()
    binaries = ensure_built()
    workdir = workdir or Path(tempfile.mkdtemp(prefix="tfjob-test-cluster-"))
    workdir.mkdir(parents=True, exist_ok=True)
    creds = pki.create(workdir / "pki")
    cluster = Cluster(
        server="",
        kubeconfig=workdir / "kubeconfig.yaml",
        ca_file=creds.ca_cert,
        admin_token=creds.tokens["admin"],
        workdir=workdir,
        tokens=creds.tokens,
    )
    try:
        cluster.etcd, etcd_url = _start_etcd(binaries.etcd, workdir)
        cluster.apiserver, port = _start_apiserver(binaries.apiserver, workdir, creds, etcd_url)
        cluster.server = f"https://127.0.0.1:{port}"
        pki.write_kubeconfig(
            cluster.kubeconfig, server=cluster.server, ca_cert=creds.ca_cert,
            user="admin", token=creds.tokens["admin"],
        )  # fmt: skip
        cluster.version = _version(cluster)
        cluster.controller_manager = _start_controller_manager(
            binaries.controller_manager, cluster, creds
        )
        _start_workloads(cluster, binaries, crd=crd, operator=operator, trainer=trainer)
    except BaseException:
        cluster.stop()
        raise
    cluster.startup_seconds = time.monotonic() - started
    return cluster


def _start_workloads(
    cluster: Cluster, binaries: Binaries, *, crd: bool, operator: bool, trainer: bool
) -> None:
    """Install every CRD at once, start JobSet and Trainer, start the training operator while
    they come up (it waits for its own webhook), then wait for theirs: the slow parts overlap.
    Processes are spawned from this thread, which lives as long as the cluster (PDEATHSIG)."""
    files = [binaries.operator_crd] if crd else []
    files += binaries.trainer_crds if trainer else ()
    with cluster.api_client() as client:
        crds.install(client, files)
        if trainer:
            cluster.jobset = trainer_mod.start_jobset(binaries.jobset, client, cluster)
            cluster.trainer = trainer_mod.start_trainer(binaries.trainer, client, cluster)
        if crd and operator:
            cluster.operator = operator_mod.start(binaries.operator, client, cluster)
        if trainer:
            trainer_mod.wait_ready(client, cluster)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _log_tail(path: Path) -> str:
    try:
        return tail(path.read_text(errors="replace"))
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


def _start_etcd(binary: Path, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    log_path = workdir / "etcd.log"

    def launch() -> tuple[subprocess.Popen[bytes], int]:
        client, peer = _free_port(), _free_port()
        _remove_tree(workdir / "etcd-data")
        argv = [
            str(binary), "--name", pki.CLUSTER_NAME, "--data-dir", str(workdir / "etcd-data"),
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
    binary: Path, *, workdir: Path, creds: pki.Pki, etcd_url: str, port: int
) -> list[str]:
    # The endpoint reconciler cannot publish a loopback address as the `kubernetes` Service's
    # endpoint; everything else is a stock apiserver: RBAC, the default admission plugins
    # (ServiceAccount included: the controller-manager creates `default` accounts).
    return [
        str(binary),
        f"--etcd-servers={etcd_url}",
        "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={port}",
        f"--tls-cert-file={creds.server_cert}", f"--tls-private-key-file={creds.server_key}",
        f"--client-ca-file={creds.ca_cert}",
        f"--token-auth-file={creds.token_file}",
        "--authorization-mode=RBAC",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={creds.service_account_key}",
        f"--service-account-signing-key-file={creds.service_account_key}",
        "--service-cluster-ip-range=10.0.0.0/24",
        "--endpoint-reconciler-type=none",
        f"--cert-dir={workdir / 'pki'}",
        "--profiling=false",
    ]  # fmt: skip


def _start_apiserver(
    binary: Path, workdir: Path, creds: pki.Pki, etcd_url: str
) -> tuple[subprocess.Popen[bytes], int]:
    log_path = workdir / "kube-apiserver.log"
    context = ssl.create_default_context(cafile=str(creds.ca_cert))
    headers = {"Authorization": f"Bearer {creds.tokens['admin']}"}

    def launch() -> tuple[subprocess.Popen[bytes], int]:
        port = _free_port()
        argv = _apiserver_argv(binary, workdir=workdir, creds=creds, etcd_url=etcd_url, port=port)
        return processes.spawn(argv, log_path), port

    def ready(port: int) -> bool:
        url = f"https://127.0.0.1:{port}/readyz"
        return _get(url, context=context, headers=headers) == "ok"

    return _start_with_retry("kube-apiserver", log_path, launch, ready, timeout=120)


def _version(cluster: Cluster) -> str:
    context = ssl.create_default_context(cafile=str(cluster.ca_file))
    headers = {"Authorization": f"Bearer {cluster.admin_token}"}
    body = _get(f"{cluster.server}/version", context=context, headers=headers)
    return str(json.loads(body or "{}").get("gitVersion", ""))


CONTROLLERS = (
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "root-ca-certificate-publisher-controller",
    "job-controller",
)
"""What a TFJob's life needs of kube-controller-manager: owner-reference deletion (pods and
Services of a deleted TFJob, foreground deletion), namespace deletion, the ``default``
ServiceAccount every pod needs, and the ``kube-root-ca.crt`` ConfigMap its token volume names.
A TrainJob's also needs the Job controller: JobSet makes Indexed Jobs, and only the Job controller
makes their pods (hostnames, ``JOB_COMPLETION_INDEX``), ends them by the Job's success and failure
policies and sets the Job's Complete and Failed conditions JobSet reads. Not the EndpointSlice
controller: nothing here reads endpoints (the process kubelet resolves peers from the pods
themselves), and it would write a slice for every Service and pod change of every job."""


def _start_controller_manager(
    binary: Path, cluster: Cluster, creds: pki.Pki
) -> subprocess.Popen[bytes]:
    log_path = cluster.workdir / "kube-controller-manager.log"
    config = cluster.kubeconfig_for("controller-manager")

    def launch() -> tuple[subprocess.Popen[bytes], int]:
        port = _free_port()
        argv = [
            str(binary), f"--kubeconfig={config}", f"--controllers={','.join(CONTROLLERS)}",
            "--leader-elect=false", f"--root-ca-file={creds.ca_cert}",
            "--bind-address=127.0.0.1", f"--secure-port={port}",
            f"--cert-dir={cluster.workdir / 'kcm-certs'}", "--profiling=false",
        ]  # fmt: skip
        return processes.spawn(argv, log_path), port

    def ready(port: int) -> bool:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        return _get(f"https://127.0.0.1:{port}/healthz", context=context) == "ok"

    proc, _port = _start_with_retry("kube-controller-manager", log_path, launch, ready, 60)
    return proc


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


class ClosingApiClient(kubernetes.client.ApiClient):  # type: ignore[misc]
    """An ``ApiClient`` whose ``close()`` (and ``with``) also closes its pool's sockets. The
    client's own leaves them to the garbage collector, which then warns of an unclosed
    ``ssl.SSLSocket`` in whatever test happens to run (CI saw it twice, in unrelated tests)."""

    def close(self) -> None:
        self.rest_client.pool_manager.clear()
        super().close()


def closing_client(kubeconfig: Path) -> ClosingApiClient:
    """A ``ClosingApiClient`` loaded from ``kubeconfig``."""
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(
        config_file=str(kubeconfig), client_configuration=configuration, persist_config=False
    )
    return ClosingApiClient(configuration=configuration)
