"""Kubeflow Trainer v2 and JobSet in the test cluster, installed as a platform team installs them:
a TrainJob on our runtime (deploy/trainer/tensorflow-runtime.yaml) becomes a JobSet, an Indexed
Job and pods with the names TF_CONFIG will use, and ends as the runtime says: index 0 (the chief,
or worker 0) decides success; any replica that fails fails the TrainJob.

The last two need the process kubelet to run a JobSet pod's ``node`` container; its scripts are
keyed by (JobSet name, replicated job ``node``, completion index).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from kubernetes.client import ApiClient, ApiException, CoreV1Api, CustomObjectsApi

from tests.cluster import cluster as cluster_mod
from tests.cluster import jobs
from tests.cluster import trainer as trainer_mod
from tests.kubelet.fates import RUNS_FOR_EVER, Fate, Script

GROUP, VERSION = trainer_mod.TRAINER_GROUP, trainer_mod.TRAINER_VERSION
JOBSET_GROUP, JOBSET_VERSION = trainer_mod.JOBSET_GROUP, trainer_mod.JOBSET_VERSION
RUNTIME = "tensorflow-distributed"
COMMAND = ["python", "-c", "print('training')"]
TIMEOUT = 60.0  # TrainJob -> JobSet -> Job -> pods -> back up, four controllers on 2 busy cores


def trainjob(name: str, num_nodes: int = 3) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainJob",
        "metadata": {"name": name},
        "spec": {
            "runtimeRef": {"name": RUNTIME},
            "trainer": {"numNodes": num_nodes, "image": "x", "command": COMMAND},
        },
    }


def create(api: ApiClient, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    created: dict[str, Any] = CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "trainjobs", body
    )
    return created


def _get(api: ApiClient, group: str, version: str, namespace: str, plural: str, name: str) -> Any:
    try:
        return CustomObjectsApi(api).get_namespaced_custom_object(
            group, version, namespace, plural, name
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def wait_for_condition(api: ApiClient, namespace: str, name: str, kind: str) -> dict[str, Any]:
    """The TrainJob once it has condition ``kind`` True."""

    def reached() -> dict[str, Any] | None:
        job = _get(api, GROUP, VERSION, namespace, "trainjobs", name)
        return job if job and jobs.has(kind)(job) else None

    found: dict[str, Any] = jobs.eventually(reached, timeout=TIMEOUT, interval=0.2)
    return found


def _pods(core: CoreV1Api, namespace: str, jobset: str) -> list[kubernetes.client.V1Pod]:
    selector = f"jobset.sigs.k8s.io/jobset-name={jobset}"
    return list(core.list_namespaced_pod(namespace, label_selector=selector).items)


@pytest.mark.parametrize(
    ("controller", "mine", "not_mine"),
    [
        (trainer_mod.JOBSET, ("batch", "jobs"), (GROUP, "trainjobs")),
        (trainer_mod.TRAINER, (JOBSET_GROUP, "jobsets"), ("batch", "jobs")),
    ],
    ids=["jobset", "trainer"],
)
def test_each_controller_runs_as_its_releases_account(
    kube_cluster: cluster_mod.Cluster,
    controller: trainer_mod.Controller,
    mine: tuple[str, str],
    not_mine: tuple[str, str],
) -> None:
    """The kubeconfig each process was started with holds its ServiceAccount's token, and that
    account may do what its release's ClusterRole grants and nothing an admin could."""
    proc = kube_cluster.jobset if controller is trainer_mod.JOBSET else kube_cluster.trainer
    assert proc is not None and proc.poll() is None
    argv = Path(f"/proc/{proc.pid}/cmdline").read_text().split("\0")
    kubeconfig = next(
        a.removeprefix("--kubeconfig=") for a in argv if a.startswith("--kubeconfig=")
    )
    with cluster_mod.closing_client(Path(kubeconfig)) as api:
        review = kubernetes.client.AuthenticationV1Api(api).create_self_subject_review(
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        )
        user = f"system:serviceaccount:{controller.namespace}:{controller.account}"
        assert review.status.user_info.username == user
        assert _may(api, "create", *mine)
        assert not _may(api, "create", *not_mine)
        assert not _may(api, "delete", "", "namespaces")


def _may(api: ApiClient, verb: str, group: str, resource: str) -> bool:
    attributes = {"verb": verb, "group": group, "resource": resource, "namespace": "default"}
    review = kubernetes.client.AuthorizationV1Api(api).create_self_subject_access_review(
        {"spec": {"resourceAttributes": attributes}}
    )
    return bool(review.status.allowed)


def test_the_products_runtimes_are_installed(kube_api: ApiClient) -> None:
    listed = CustomObjectsApi(kube_api).list_cluster_custom_object(
        GROUP, VERSION, "clustertrainingruntimes"
    )
    shipped = yaml.safe_load_all(trainer_mod.RUNTIMES_FILE.read_text())
    assert {r["metadata"]["name"] for r in listed["items"]} == {
        doc["metadata"]["name"] for doc in shipped if doc
    }
    assert RUNTIME in {r["metadata"]["name"] for r in listed["items"]}


def test_a_trainjob_becomes_a_jobset_an_indexed_job_and_pods(
    kube_api: ApiClient, namespace: str, replicas: Script
) -> None:
    replicas.set_default_fate("node", RUNS_FOR_EVER)  # nothing ends while we look
    created = create(kube_api, namespace, trainjob("tf"))
    jobset = jobs.eventually(
        lambda: _get(kube_api, JOBSET_GROUP, JOBSET_VERSION, namespace, "jobsets", "tf"),
        timeout=TIMEOUT,
    )
    [owner] = jobset["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == (
        "TrainJob", created["metadata"]["uid"], True
    )  # fmt: skip
    assert jobset["spec"]["network"]["enableDNSHostnames"] is True  # JobSet's defaulter ran
    core = CoreV1Api(kube_api)
    jobs.eventually(lambda: len(_pods(core, namespace, "tf")) == 3, timeout=TIMEOUT)
    pods = sorted(_pods(core, namespace, "tf"), key=lambda p: p.spec.hostname)
    assert [p.spec.hostname for p in pods] == ["tf-node-0-0", "tf-node-0-1", "tf-node-0-2"]
    assert {p.spec.subdomain for p in pods} == {"tf"}
    assert [p.metadata.labels["batch.kubernetes.io/job-completion-index"] for p in pods] == [
        "0", "1", "2"
    ]  # fmt: skip
    [container] = pods[0].spec.containers
    assert (container.name, container.image, container.command) == ("node", "x", COMMAND)
    assert "JOB_COMPLETION_INDEX" in {e.name for e in container.env}
    job = kubernetes.client.BatchV1Api(kube_api).read_namespaced_job("tf-node-0", namespace)
    assert (job.spec.completion_mode, job.spec.parallelism, job.spec.completions) == (
        "Indexed", 3, 3
    )  # fmt: skip
    assert job.spec.backoff_limit == 0
    assert [r.succeeded_indexes for r in job.spec.success_policy.rules] == ["0"]
    service = core.read_namespaced_service("tf", namespace)  # the subdomain's headless Service
    assert service.spec.cluster_ip == "None"


def test_index_0_exiting_0_completes_the_trainjob(
    kube_api: ApiClient, namespace: str, replicas: Script
) -> None:
    """The runtime's Job success policy: index 0 decides, the others (which never exit, as
    parameter servers) are stopped."""
    replicas.set_default_fate("node", RUNS_FOR_EVER)
    replicas.set_fate("tf", "node", 0, Fate(duration=0.3))
    create(kube_api, namespace, trainjob("tf"))
    done = wait_for_condition(kube_api, namespace, "tf", "Complete")
    complete = jobs.condition(done, "Complete")
    assert complete is not None
    assert (complete["reason"], complete["message"]) == (
        "AllJobsCompleted", "jobset completed successfully"
    )  # fmt: skip
    assert jobs.condition(done, "Failed") is None
    core = CoreV1Api(kube_api)
    jobs.eventually(
        lambda: all(p.status.phase != "Running" for p in _pods(core, namespace, "tf")),
        timeout=TIMEOUT,
    )


def test_a_replica_exiting_1_fails_the_trainjob(
    kube_api: ApiClient, namespace: str, replicas: Script
) -> None:
    """restartPolicy Never, backoffLimit 0: one failed pod fails the Job, the JobSet, the
    TrainJob."""
    replicas.set_default_fate("node", RUNS_FOR_EVER)
    replicas.set_fate("tf", "node", 2, Fate(duration=0.3, exit_code=1))
    create(kube_api, namespace, trainjob("tf"))
    failed = wait_for_condition(kube_api, namespace, "tf", "Failed")
    condition = jobs.condition(failed, "Failed")
    assert condition is not None
    assert condition["reason"] == "FailedJobs"
    assert "first failed job: tf-node-0" in condition["message"]
    assert jobs.condition(failed, "Complete") is None
