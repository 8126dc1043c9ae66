"""The test cluster behaves like a real one where later tests rely on it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import kubernetes
import pytest
from kubernetes.client import (
    ApiClient,
    ApiException,
    CoreV1Api,
    CustomObjectsApi,
    RbacAuthorizationV1Api,
    VersionApi,
)

from airflow_tfjob import TfJob, Worker
from tests.cluster import cluster as cluster_mod

GROUP, VERSION, PLURAL = "kubeflow.org", "v1", "tfjobs"


def tfjob(name: str, replicas: Any = 1) -> dict[str, Any]:
    container = {"name": "tensorflow", "image": "tensorflow/tensorflow:2.16.1"}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TFJob",
        "metadata": {"name": name},
        "spec": {
            "tfReplicaSpecs": {
                "Worker": {
                    "replicas": replicas,
                    "restartPolicy": "Never",
                    "template": {"spec": {"containers": [container]}},
                }
            }
        },
    }


def create_tfjob(api: ApiClient, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    created: dict[str, Any] = CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body
    )
    return created


def get_tfjob(api: ApiClient, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    return found


def test_server_is_the_built_version_and_every_component_runs(
    kube_cluster: cluster_mod.Cluster, kube_api: ApiClient
) -> None:
    assert kube_cluster.server.startswith("https://127.0.0.1:")
    version = VersionApi(kube_api).get_code().git_version
    assert version == kube_cluster.version and version.startswith("v1.36.")
    assert kube_cluster.alive()
    assert set(kube_cluster.rss_mib()) == {
        "kube-apiserver", "etcd", "kube-controller-manager", "training-operator",
        "jobset-controller", "trainer-controller-manager",
    }  # fmt: skip


def test_crd_is_established_with_its_cel_rule(kube_api: ApiClient) -> None:
    raw = kubernetes.client.ApiextensionsV1Api(kube_api).read_custom_resource_definition(
        cluster_mod.CRD_NAME, _preload_content=False
    )
    crd = json.loads(raw.data)
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert crd["status"]["acceptedNames"]["kind"] == "TFJob"
    assert "spec.runPolicy.schedulingPolicy.queue is immutable" in raw.data.decode()
    assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}


def test_the_crds_cel_rule_is_enforced(kube_api: ApiClient, namespace: str) -> None:
    body = tfjob("queued")
    body["spec"]["runPolicy"] = {"schedulingPolicy": {"queue": "a"}, "suspend": True}
    create_tfjob(kube_api, namespace, body)
    patch = {"spec": {"runPolicy": {"schedulingPolicy": {"queue": "b"}}}}
    with pytest.raises(ApiException) as err:
        CustomObjectsApi(kube_api).patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "queued", patch
        )
    assert err.value.status == 422
    assert "spec.runPolicy.schedulingPolicy.queue is immutable" in err.value.body


def test_strict_field_validation_refuses_an_unknown_field(
    kube_api: ApiClient, namespace: str
) -> None:
    body = tfjob("strict")
    body["spec"]["tfReplicaSpecs"]["Worker"]["restartPolicyy"] = "Never"
    with pytest.raises(ApiException) as err:
        CustomObjectsApi(kube_api).create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, body, field_validation="Strict"
        )
    assert err.value.status == 400
    message = json.loads(err.value.body)["message"]
    assert 'unknown field "spec.tfReplicaSpecs.Worker.restartPolicyy"' in message


def test_kubeconfig_names_the_tfjob_test_context(kube_cluster: cluster_mod.Cluster) -> None:
    _, current = kubernetes.config.list_kube_config_contexts(str(kube_cluster.kubeconfig))
    assert current["name"] == "tfjob-test"
    with cluster_mod.closing_client(kube_cluster.kubeconfig) as api:
        assert CoreV1Api(api).list_namespace().items


def test_string_replicas_is_rejected_by_the_server_schema(
    kube_api: ApiClient, namespace: str
) -> None:
    with pytest.raises(ApiException) as err:
        create_tfjob(kube_api, namespace, tfjob("bad", replicas="2"))
    assert err.value.status == 422
    assert "replicas" in json.loads(err.value.body)["message"]


def test_empty_strings_in_a_tfjob_are_stored_unchanged(kube_api: ApiClient, namespace: str) -> None:
    """kubernetes#99804: the old v1.20 ground built with Go >= 1.16 refused every "" in a custom
    resource (``Invalid value: "null" ... must be of type string``); a current server keeps them."""
    job = TfJob(worker=Worker(env={"A": "", "B": "b"}, args=["", "x"], labels={"pod": ""}))
    manifest = job.to_manifest(
        "empty-strings", namespace, image="tf:2", labels={"team": ""}, annotations={"note": ""}
    )
    create_tfjob(kube_api, namespace, manifest)
    stored = get_tfjob(kube_api, namespace, "empty-strings")  # read back from etcd

    def empty_string_fields(obj: dict[str, Any]) -> tuple[Any, ...]:
        template = obj["spec"]["tfReplicaSpecs"]["Worker"]["template"]
        container = template["spec"]["containers"][0]
        meta = obj["metadata"]
        return (
            container["env"], container["args"], template["metadata"]["labels"],
            meta["labels"], meta["annotations"],
        )  # fmt: skip

    sent = (
        [{"name": "A", "value": ""}, {"name": "B", "value": "b"}],
        ["", "x"],
        {"pod": ""},
        {"team": ""},
        {"note": ""},
    )
    assert empty_string_fields(manifest) == sent
    assert empty_string_fields(stored) == sent


def test_duplicate_name_is_a_conflict(kube_api: ApiClient, namespace: str) -> None:
    create_tfjob(kube_api, namespace, tfjob("twice"))
    with pytest.raises(ApiException) as err:
        create_tfjob(kube_api, namespace, tfjob("twice"))
    assert err.value.status == 409
    assert json.loads(err.value.body)["reason"] == "AlreadyExists"


def test_status_subresource_separates_status_from_spec(kube_api: ApiClient, namespace: str) -> None:
    custom = CustomObjectsApi(kube_api)
    create_tfjob(kube_api, namespace, tfjob("split"))
    ours = {"conditions": [{"type": "ByTheTest", "status": "True"}]}
    # status sent with the main resource is dropped ...
    answer = custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "split", {"status": ours}
    )
    assert "ByTheTest" not in json.dumps(answer.get("status", {}))
    # ... and spec sent to /status is dropped, while its status is kept (the operator may
    # write its own status afterwards: read the answer to this very write).
    answer = custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "split",
        {"spec": {"runPolicy": {"suspend": True}}, "status": ours},
    )  # fmt: skip
    assert answer["status"]["conditions"][0]["type"] == "ByTheTest"
    assert answer["spec"].get("runPolicy", {}).get("suspend") is not True


def test_watch_from_resource_version_1_is_gone(kube_api: ApiClient, namespace: str) -> None:
    create_tfjob(kube_api, namespace, tfjob("watched"))
    watch = kubernetes.watch.Watch()
    stream: Iterator[Any] = watch.stream(
        CustomObjectsApi(kube_api).list_namespaced_custom_object,
        GROUP, VERSION, namespace, PLURAL, resource_version="1", timeout_seconds=5,
    )  # fmt: skip
    with pytest.raises(ApiException) as err:
        next(stream)
    watch.stop()
    assert err.value.status == 410


def test_restricted_user_is_forbidden_until_granted(kube_cluster: cluster_mod.Cluster) -> None:
    with kube_cluster.api_client() as admin, kube_cluster.api_client("restricted") as restricted:
        ns = "rbac-grant"
        CoreV1Api(admin).create_namespace({"metadata": {"name": ns}})
        with pytest.raises(ApiException) as err:
            create_tfjob(restricted, ns, tfjob("denied"))
        assert err.value.status == 403
        assert json.loads(err.value.body)["reason"] == "Forbidden"

        assert create_tfjob(admin, ns, tfjob("by-admin"))["metadata"]["name"] == "by-admin"

        _grant_tfjobs(admin, ns, user="restricted")
        created = _eventually_allowed(lambda: create_tfjob(restricted, ns, tfjob("granted")))
        assert created["metadata"]["name"] == "granted"
        with pytest.raises(ApiException) as err:  # the grant is namespaced
            create_tfjob(restricted, "default", tfjob("elsewhere"))
        assert err.value.status == 403


def _eventually_allowed(call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The RBAC authorizer reads bindings from an informer: a new grant takes a moment."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return call()
        except ApiException as e:
            if e.status != 403 or time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def _grant_tfjobs(admin: ApiClient, namespace: str, *, user: str) -> None:
    rbac = RbacAuthorizationV1Api(admin)
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "tfjob-editor"},
            "rules": [{"apiGroups": [GROUP], "resources": [PLURAL], "verbs": ["*"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": f"tfjob-editor-{user}"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "tfjob-editor",
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    )
