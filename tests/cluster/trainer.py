"""Kubeflow Trainer v2 (v2.3.0) and JobSet (v0.12.0) as processes of the test cluster, installed
as a platform team installs them: a TrainJob on a runtime of deploy/trainer/tensorflow-runtime.yaml
becomes a JobSet (Trainer), an Indexed Job and a headless Service (JobSet), and pods
(kube-controller-manager's Job controller), which the process kubelet runs.

Each controller runs as the ServiceAccount of its release (``jobset-system/jobset-controller-
manager``, ``kubeflow-system/kubeflow-trainer-controller-manager``), with a bound token, bound to
the ClusterRole of its release (tests/data/, checked against the modules by build_kube.sh): a
permission the release lacks fails here as it would in a cluster (the machinery both share is in
:mod:`tests.cluster.controllers`).

Simpler than for the training operator (:mod:`tests.cluster.operator`), because both can turn
their certificate rotators off in their config files (``internalCertManagement.enable: false``,
``certManagement.enable: false``), which is what a pod-less process needs (the rotators only fill
a Secret and wait for a kubelet to mount it). Each serves its webhooks on 127.0.0.1 with a
certificate of its own for that address: JobSet reads it from its config's ``webhook.certDir``;
Trainer has no such field, so it reads controller-runtime's default under ``$TMPDIR``. Nothing
routes to a Service here, so the webhook configurations (under the release's names) call them by
URL, with that certificate as CA bundle. Leader election is off (one replica; it also needs a
namespace out of cluster), metrics are off, health probes listen on free loopback ports.

Registered: JobSet's mutating and validating JobSet webhooks (the mutating one is needed: without
its defaults the JobSet controller dereferences a nil ``spec.network`` and never makes a Job),
Trainer's TrainJob defaulter and validator and its two runtime validators. Not registered:
JobSet's pod webhooks (``mpod.kb.io``, ``vpod.kb.io``). They act only on pods of JobSets with
exclusive placement (topology annotations), which nothing here uses, and would otherwise sit,
failure policy Fail, in the path of every pod create of the cluster.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Protocol

import kubernetes
import yaml

from tests.cluster import controllers
from tests.cluster.controllers import Controller, Hook, HookConfig, Probe
from tests.cluster.processes import ClusterError
from tests.kubelet import certs

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "data"
RUNTIMES_FILE = HERE.parent.parent / "deploy" / "trainer" / "tensorflow-runtime.yaml"
TRAINER_GROUP, TRAINER_VERSION = "trainer.kubeflow.org", "v1alpha1"
JOBSET_GROUP, JOBSET_VERSION = "jobset.x-k8s.io", "v1alpha2"
ANCESTOR_LABEL = "trainer.kubeflow.org/trainjob-ancestor-step"

JOBSET = Controller(
    "jobset-controller", "jobset-system", "jobset-controller-manager",
    DATA / "jobset-manager-role.yaml", "jobset-manager-role",
)  # fmt: skip
TRAINER = Controller(
    "trainer-controller-manager", "kubeflow-system", "kubeflow-trainer-controller-manager",
    DATA / "trainer-controller-manager-role.yaml", "kubeflow-trainer-controller-manager",
)  # fmt: skip

_VALIDATED = {  # the release skips runtimes labelled so (its own shipped runtimes overlay)
    "matchExpressions": [
        {"key": "trainer.kubeflow.org/webhook-validation", "operator": "NotIn",
         "values": ["disabled"]}
    ]
}  # fmt: skip
_T = "-trainer-kubeflow-org-v1alpha1-"
JOBSET_HOOKS = (
    HookConfig("jobset-mutating-webhook-configuration", True, (
        Hook("mjobset.kb.io", "/mutate-jobset-x-k8s-io-v1alpha2-jobset", JOBSET_GROUP,
             JOBSET_VERSION, "jobsets", ("CREATE",)),
    )),
    HookConfig("jobset-validating-webhook-configuration", False, (
        Hook("vjobset.kb.io", "/validate-jobset-x-k8s-io-v1alpha2-jobset", JOBSET_GROUP,
             JOBSET_VERSION, "jobsets"),
    )),
)  # fmt: skip
TRAINER_HOOKS = (
    HookConfig("defaulter.trainer.kubeflow.org", True, (
        Hook("defaulter.trainjob.trainer.kubeflow.org", f"/mutate{_T}trainjob", TRAINER_GROUP,
             TRAINER_VERSION, "trainjobs"),
    )),
    HookConfig("validator.trainer.kubeflow.org", False, (
        Hook("validator.clustertrainingruntime.trainer.kubeflow.org",
             f"/validate{_T}clustertrainingruntime", TRAINER_GROUP, TRAINER_VERSION,
             "clustertrainingruntimes", object_selector=_VALIDATED),
        Hook("validator.trainingruntime.trainer.kubeflow.org", f"/validate{_T}trainingruntime",
             TRAINER_GROUP, TRAINER_VERSION, "trainingruntimes", object_selector=_VALIDATED),
        Hook("validator.trainjob.trainer.kubeflow.org", f"/validate{_T}trainjob",
             TRAINER_GROUP, TRAINER_VERSION, "trainjobs"),
    )),
)  # fmt: skip


class _Cluster(controllers.ClusterLike, Protocol):
    jobset: subprocess.Popen[bytes] | None
    trainer: subprocess.Popen[bytes] | None


def start_jobset(
    binary: Path, api: kubernetes.client.ApiClient, cluster: controllers.ClusterLike
) -> subprocess.Popen[bytes]:
    """Install JobSet's account, register its webhooks and start it (:func:`wait_ready`
    waits for it)."""
    serving = certs.self_signed(cluster.workdir / JOBSET.process / "serving-certs", "tls")
    webhook, health = controllers.free_port(), controllers.free_port()
    config = {
        "apiVersion": "config.jobset.x-k8s.io/v1alpha1",
        "kind": "Configuration",
        "webhook": {"host": "127.0.0.1", "port": webhook, "certDir": str(serving.cert.parent)},
        "internalCertManagement": {"enable": False},
        "leaderElection": {"leaderElect": False},
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health}"},
        "metrics": {"bindAddress": "0"},
    }
    controllers.register(api, JOBSET_HOOKS, webhook, serving.cert)
    return controllers.start(JOBSET, binary, api, cluster, config, env={})


def start_trainer(
    binary: Path, api: kubernetes.client.ApiClient, cluster: controllers.ClusterLike
) -> subprocess.Popen[bytes]:
    """Install Trainer's account, register its webhooks and start it (:func:`wait_ready`
    waits for it). Its CRDs and JobSet's must be served already: it exits without them."""
    tmpdir = cluster.workdir / TRAINER.process / "tmp"
    serving = certs.self_signed(tmpdir / "k8s-webhook-server" / "serving-certs", "tls")
    webhook, health = controllers.free_port(), controllers.free_port()
    config = {
        "apiVersion": "config.trainer.kubeflow.org/v1alpha1",
        "kind": "Configuration",
        "webhook": {"host": "127.0.0.1", "port": webhook},
        "certManagement": {"enable": False},
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health}"},
        "metrics": {"bindAddress": "0"},
    }
    controllers.register(api, TRAINER_HOOKS, webhook, serving.cert)
    return controllers.start(TRAINER, binary, api, cluster, config, env={"TMPDIR": str(tmpdir)})


def install_runtimes(api: kubernetes.client.ApiClient) -> list[str]:
    """Create the ClusterTrainingRuntimes of deploy/trainer/tensorflow-runtime.yaml (through
    Trainer's webhook); their names. :class:`ClusterError` with the server's reason if one is
    refused: the file is the product's, and a cluster that refuses it is a finding."""
    custom = kubernetes.client.CustomObjectsApi(api)
    names = []
    for doc in yaml.safe_load_all(RUNTIMES_FILE.read_text()):
        if not doc:
            continue
        if doc.get("kind") != "ClusterTrainingRuntime":
            raise ClusterError(f"{RUNTIMES_FILE}: unexpected {doc.get('kind')}")
        try:
            custom.create_cluster_custom_object(
                TRAINER_GROUP, TRAINER_VERSION, "clustertrainingruntimes", doc
            )
        except kubernetes.client.ApiException as exc:
            raise ClusterError(
                f"{RUNTIMES_FILE}: ClusterTrainingRuntime {doc['metadata']['name']} refused "
                f"({exc.status}): {controllers.message(exc)}"
            ) from None
        names.append(doc["metadata"]["name"])
    return names


def wait_ready(api: kubernetes.client.ApiClient, cluster: _Cluster, timeout: float = 90) -> None:
    """Return once both controllers' webhooks are in the apiserver's path (dry-run creates of a
    JobSet and a TrainJob come back mutated by them, and objects only their validators refuse are
    refused), with the runtimes of deploy/trainer installed in between: through the runtime
    validator, and before the TrainJob probe that names one of them."""
    procs = {JOBSET.process: cluster.jobset, TRAINER.process: cluster.trainer}
    probes = [_jobset_defaulted, _jobset_validated, _runtime_validated, _trainjob_validated]
    controllers.wait(cluster, procs, api, probes, timeout)
    runtimes = install_runtimes(api)
    controllers.wait(cluster, procs, api, [_trainjob_defaulted(runtimes[0])], timeout)


def _pod_template(container: str) -> dict[str, Any]:
    return {"spec": {"containers": [{"name": container, "image": "x"}]}}


def _jobset(name: str) -> dict[str, Any]:
    job = {"name": "r", "template": {"spec": {"template": _pod_template("c")}}}
    return {
        "apiVersion": f"{JOBSET_GROUP}/{JOBSET_VERSION}",
        "kind": "JobSet",
        "metadata": {"name": name, "namespace": JOBSET.namespace},
        "spec": {"replicatedJobs": [job]},
    }


def _trainjob(runtime: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{TRAINER_GROUP}/{TRAINER_VERSION}",
        "kind": "TrainJob",
        "metadata": {"name": "webhook-probe", "namespace": TRAINER.namespace},
        "spec": {"runtimeRef": {"name": runtime}, **spec},
    }


def _jobset_defaulted(custom: kubernetes.client.CustomObjectsApi) -> str | None:
    answer, said = controllers.dry_run_create(custom, _jobset("webhook-probe"))
    if ((answer.get("spec") or {}).get("network") or {}).get("enableDNSHostnames") is True:
        return None
    return f"a JobSet came back without mjobset.kb.io's defaults: {said or 'no spec.network'}"


_jobset_validated = controllers.refused_by("vjobset.kb.io", _jobset("a" * 60))  # Job name > 63
_runtime_validated = controllers.refused_by(
    "validator.clustertrainingruntime.trainer.kubeflow.org",
    {  # the trainer step must have replicas 1
        "apiVersion": f"{TRAINER_GROUP}/{TRAINER_VERSION}",
        "kind": "ClusterTrainingRuntime",
        "metadata": {"name": "webhook-probe"},
        "spec": {"template": {"spec": {"replicatedJobs": [{
            "name": "node", "replicas": 2,
            "template": {"metadata": {"labels": {ANCESTOR_LABEL: "trainer"}},
                         "spec": {"template": _pod_template("node")}},
        }]}}},
    },
)  # fmt: skip
_trainjob_validated = controllers.refused_by(
    "validator.trainjob.trainer.kubeflow.org", _trainjob("webhook-probe-no-such-runtime")
)


def _trainjob_defaulted(runtime: str) -> Probe:
    """A probe: a TrainJob on ``runtime`` comes back with its runtime patch stamped by the
    defaulter (Trainer's validator reads runtimes from its cache: the first tries may be refused
    as naming a runtime not yet created)."""
    body = _trainjob(runtime, runtimePatches=[{"manager": "test.example/probe"}])

    def probe(custom: kubernetes.client.CustomObjectsApi) -> str | None:
        answer, said = controllers.dry_run_create(custom, body)
        patches = (answer.get("spec") or {}).get("runtimePatches") or [{}]
        if patches[0].get("time"):
            return None
        return f"a TrainJob came back without the defaulter's stamp: {said or 'no time'}"

    return probe
