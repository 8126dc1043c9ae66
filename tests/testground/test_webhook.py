"""Every rule of the training operator's validating webhook (v1.9.4, pkg/webhooks/tensorflow and
pkg/common/util/webhooks.go): the real webhook refuses the manifest on the test cluster, and the
provider refuses the same input first, when the DAG is parsed, naming the field."""

from __future__ import annotations

import copy
import json
from typing import Any

import kubernetes
import pytest

from airflow_tfjob.model.errors import TFJobSpecError
from airflow_tfjob.operators.tfjob import TFJobOperator

GROUP, VERSION, PLURAL = "kubeflow.org", "v1", "tfjobs"
WEBHOOK = 'admission webhook "validator.tfjob.training-operator.kubeflow.org" denied the request'


def _replica(*containers: dict[str, Any]) -> dict[str, Any]:
    return {"replicas": 1, "template": {"spec": {"containers": list(containers)}}}


TF = {"name": "tensorflow", "image": "tf:2", "command": ["python", "-c", "pass"]}
GOOD: dict[str, Any] = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "TFJob",
    "metadata": {"name": "probe"},
    "spec": {"tfReplicaSpecs": {"Worker": _replica(TF)}},
}


def _with(path: list[str], value: Any) -> dict[str, Any]:
    manifest = copy.deepcopy(GOOD)
    node = manifest
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return manifest


RULES = [
    # (rule, manifest the webhook refuses, the provider's field in its error)
    (
        "the job name is a DNS-1035 label",
        _with(["metadata", "name"], "9-lives"),
        "name",
    ),
    (
        "runPolicy.managedBy is a supported controller",
        _with(["spec", "runPolicy"], {"managedBy": "example.com/other"}),
        "tfjob_template.spec.runPolicy.managedBy",
    ),
    (
        "a replica has containers",
        _with(["spec", "tfReplicaSpecs", "Worker"], _replica()),
        "tfjob_template.spec.tfReplicaSpecs.Worker.template.spec.containers",
    ),
    (
        "every container has an image",
        _with(["spec", "tfReplicaSpecs", "Worker"], _replica(TF, {"name": "side", "image": ""})),
        "tfjob_template.spec.tfReplicaSpecs.Worker.template.spec.containers[1].image",
    ),
    (
        "a replica has a container named tensorflow",
        _with(["spec", "tfReplicaSpecs", "Worker"], _replica({**TF, "name": "trainer"})),
        "tfjob_template.spec.tfReplicaSpecs.Worker.template.spec.containers",
    ),
    (
        "at most one Chief or Master",
        _with(
            ["spec", "tfReplicaSpecs"],
            {"Chief": _replica(TF), "Master": _replica(TF), "Worker": _replica(TF)},
        ),
        "tfjob_template.spec.tfReplicaSpecs",
    ),
]


@pytest.mark.parametrize(("rule", "manifest", "field"), RULES, ids=[r[0] for r in RULES])
def test_the_real_webhook_refuses_it(
    kube_api: kubernetes.client.ApiClient, namespace: str, rule: str, manifest: Any, field: str
) -> None:
    custom = kubernetes.client.CustomObjectsApi(kube_api)
    with pytest.raises(kubernetes.client.ApiException) as err:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, manifest, dry_run="All"
        )
    assert WEBHOOK in json.loads(err.value.body)["message"], rule


@pytest.mark.parametrize(("rule", "manifest", "field"), RULES, ids=[r[0] for r in RULES])
def test_the_provider_refuses_it_when_the_dag_is_parsed(
    rule: str, manifest: dict[str, Any], field: str
) -> None:
    template = copy.deepcopy(manifest)
    name = template.pop("metadata")["name"]
    with pytest.raises(TFJobSpecError) as err:
        TFJobOperator(task_id="t", name=name, namespace="ns", tfjob_template=template)
    assert str(err.value).startswith(f"{field}:"), rule


def test_the_good_manifest_passes_both(
    kube_api: kubernetes.client.ApiClient, namespace: str
) -> None:
    """The probes above differ from an accepted manifest in the one rule each breaks."""
    kubernetes.client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, GOOD, dry_run="All"
    )
    template = copy.deepcopy(GOOD)
    template.pop("metadata")
    TFJobOperator(task_id="t", name="probe", namespace="ns", tfjob_template=template)
