"""deploy/rbac.yaml is exactly enough: on the test cluster (RBAC, as every real one), an identity holding only
its rules runs TFJobs (sync and deferred) and TrainJobs to the end, and with any one rule taken away the task
fails before anything is submitted, naming what is missing."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from tests.airflow_fixtures import task_instance, tfjob_hook
from tests.cluster.cluster import Cluster
from tests.cluster.fixtures import wait_for_default_account
from tests.kubelet import kubelet as kubelet_mod
from tests.kubelet.fates import Fate, Script
from tests.waiting import eventually

RBAC_YAML = Path(__file__).resolve().parents[2] / "deploy" / "rbac.yaml"
BODY = """
for deferrable in (False, True):
    TFJobOperator(
        task_id=f"train_{'deferred' if deferrable else 'sync'}",
        tfjob=TfJob(chief=Chief(), worker=Worker(replicas=2)),
        image="tf:2",
        namespace=NAMESPACE,
        kubernetes_conn_id=None,
        config_file=KUBECONFIG,
        poll_interval=1,
        deferrable=deferrable,
    )
"""


@dataclass
class Ground:
    """A namespace, its replica script, and the restricted identity's kubeconfig."""

    namespace: str
    kubeconfig: Path
    admin: kubernetes.client.ApiClient
    role: dict[str, Any]
    sim: Script

    def set_rules(self, rules: list[dict[str, Any]]) -> None:
        """Replace the Role's rules (as an admin)."""
        body = {**self.role, "rules": rules}
        kubernetes.client.RbacAuthorizationV1Api(self.admin).replace_namespaced_role(
            body["metadata"]["name"], self.namespace, body
        )

    def tfjobs(self) -> list[str]:
        """Names of the TFJobs in the namespace, as an admin sees them."""
        listing = kubernetes.client.CustomObjectsApi(self.admin).list_namespaced_custom_object(
            "kubeflow.org", "v1", self.namespace, "tfjobs"
        )
        return sorted(item["metadata"]["name"] for item in listing["items"])

    def missing(self) -> list[str]:
        """What the restricted identity may not do here, by its own access reviews."""
        return tfjob_hook(self.kubeconfig).missing_permissions(self.namespace)


def _documents(namespace: str) -> list[dict[str, Any]]:
    role, binding = yaml.safe_load_all(RBAC_YAML.read_text())
    for doc in (role, binding):
        doc["metadata"]["namespace"] = namespace
    binding["subjects"] = [
        {"kind": "User", "name": "restricted", "apiGroup": "rbac.authorization.k8s.io"}
    ]
    return [role, binding]


@pytest.fixture(scope="module")
def ground(kube_cluster: Cluster, kubelet: kubelet_mod.Kubelet) -> Iterator[Ground]:
    admin = kube_cluster.api_client()
    namespace = f"rbac-{uuid.uuid4().hex[:8]}"
    kubernetes.client.CoreV1Api(admin).create_namespace({"metadata": {"name": namespace}})
    wait_for_default_account(kubernetes.client.CoreV1Api(admin), namespace)
    role, binding = _documents(namespace)
    rbac = kubernetes.client.RbacAuthorizationV1Api(admin)
    rbac.create_namespaced_role(namespace, role)
    rbac.create_namespaced_role_binding(namespace, binding)
    sim = kubelet.script(namespace)
    ground = Ground(namespace, kube_cluster.kubeconfig_for("restricted"), admin, role, sim)
    try:
        eventually(lambda: ground.missing() == [], timeout=30)  # bindings reach the authorizer
        yield ground
    finally:
        kubelet.forget(namespace)
        kubernetes.client.CoreV1Api(admin).delete_namespace(namespace, _preload_content=False)
        admin.close()


def test_the_rules_of_deploy_rbac_yaml_are_enough_for_sync_and_deferred_runs(
    ground: Ground, run_dag: Callable[..., Any], capfd: pytest.CaptureFixture[str]
) -> None:
    ground.sim.set_default_fate(
        "Chief", Fate(duration=1.0, logs=["epoch 1"], message='{"auc": 0.9}')
    )
    dagrun = run_dag(BODY, namespace=ground.namespace, kubeconfig=str(ground.kubeconfig))
    out = capfd.readouterr().out
    for task_id in ("train_sync", "train_deferred"):
        ti = task_instance(dagrun, task_id)
        assert ti.state == "success", out[-3000:]
        assert ti.xcom_pull(task_ids=task_id)["output"] == {"auc": 0.9}
    assert "[chief-0] epoch 1" in out
    assert "forbidden" not in out.lower()


def test_the_rules_of_deploy_rbac_yaml_are_enough_for_a_trainjob(
    ground: Ground, run_dag: Callable[..., Any], capfd: pytest.CaptureFixture[str]
) -> None:
    """The same Role runs the job as a Kubeflow Trainer v2 TrainJob, deferred."""
    ground.sim.set_default_fate("Chief", Fate(duration=1.0, logs=["epoch 1"], message='{"auc": 1}'))
    body = BODY.replace("for deferrable in (False, True):", "for deferrable in (True,):")
    body = body.replace("deferrable=deferrable,", 'deferrable=deferrable, api="trainjob",')
    dagrun = run_dag(body, namespace=ground.namespace, kubeconfig=str(ground.kubeconfig))
    out = capfd.readouterr().out
    ti = task_instance(dagrun, "train_deferred")
    assert ti.state == "success", out[-3000:]
    assert ti.xcom_pull(task_ids="train_deferred")["output"] == {"auc": 1}
    assert f"Created TrainJob {ground.namespace}/" in out and "forbidden" not in out.lower()


@pytest.mark.parametrize(
    ("resource", "verb", "named"),
    [
        ("tfjobs", "watch", "watch tfjobs.kubeflow.org"),
        ("pods", "list", "list pods"),
        ("pods/log", "get", "get pods/log"),
    ],
)
def test_without_one_rule_nothing_is_submitted_and_the_task_says_what_is_missing(
    ground: Ground,
    run_dag: Callable[..., Any],
    capfd: pytest.CaptureFixture[str],
    resource: str,
    verb: str,
    named: str,
) -> None:
    rules = copy.deepcopy(ground.role["rules"])
    for rule in rules:
        if resource in rule["resources"]:
            rule["verbs"].remove(verb)
    ground.set_rules([r for r in rules if r["verbs"]])
    try:
        eventually(lambda: ground.missing() == [named], timeout=30)
        dagrun = run_dag(BODY, namespace=ground.namespace, kubeconfig=str(ground.kubeconfig))
        out = capfd.readouterr().out
        for task_id in ("train_sync", "train_deferred"):
            assert task_instance(dagrun, task_id).state == "failed"
        assert (
            f"forbidden: this kubeconfig's identity may not {named} in namespace {ground.namespace!r}"
            in out
        )
        assert "nothing was submitted" in out and "deploy/rbac.yaml" in out
        prefix = dagrun.dag_id.replace("_", "-")
        assert not [n for n in ground.tfjobs() if n.startswith(prefix)]  # none was created
    finally:
        ground.set_rules(ground.role["rules"])
        eventually(lambda: ground.missing() == [], timeout=30)
