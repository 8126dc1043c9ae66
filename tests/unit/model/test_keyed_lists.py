"""Issue 18, keyed lists: the schema's ``x-kubernetes-list-type: map`` lists (env and containers
by name, ports by containerPort and protocol, volumes by name, volumeMounts by mountPath, ...)
refuse two entries of one key, naming both; what the provider adds never duplicates the user's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_tfjob import TfJob, Worker
from airflow_tfjob.model import template
from tests.unit.model.refusal import refusal

WORKER = "tfjob_template.spec.tfReplicaSpecs.Worker.template.spec"
DATA = {"name": "data", "emptyDir": {}}


def manifest(container: dict[str, Any] | None = None, **pod: Any) -> dict[str, Any]:
    main = {"name": "tensorflow", "image": "tf:2", **(container or {})}
    spec = {"containers": [main], **pod}
    return {"spec": {"tfReplicaSpecs": {"Worker": {"replicas": 1, "template": {"spec": spec}}}}}


CASES: list[tuple[str, Callable[[], object], str]] = [
    (
        "two env entries of one name (model)",
        lambda: Worker(env=[{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]),
        "Worker.env[1]: got 'A'; same name as Worker.env[0]: this list is keyed by name, and "
        "Kubernetes refuses duplicates",
    ),
    (
        "two env entries of one name (template)",
        lambda: template.normalize(
            manifest({"env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]})
        ),
        f"{WORKER}.containers[0].env[1]: got 'A'; same name as {WORKER}.containers[0].env[0]: "
        "this list is keyed by name, and Kubernetes refuses duplicates",
    ),
    (
        "two volumes of one name",
        lambda: Worker(volumes=[DATA, {"name": "data", "configMap": {"name": "c"}}]),
        "Worker.volumes[1]: got 'data'; same name as Worker.volumes[0]: this list is keyed by "
        "name, and Kubernetes refuses duplicates",
    ),
    (
        "two mounts on one path",
        lambda: Worker(
            volumes=[DATA, {"name": "other", "emptyDir": {}}],
            volume_mounts=[
                {"name": "data", "mountPath": "/data"},
                {"name": "other", "mountPath": "/data"},
            ],
        ),
        "Worker.volume_mounts[1]: got '/data'; same mountPath as Worker.volume_mounts[0]: this "
        "list is keyed by mountPath, and Kubernetes refuses duplicates",
    ),
    (
        "two containers named tensorflow",
        lambda: template.normalize(
            manifest(containers=[{"name": "tensorflow", "image": "a"}, {"name": "tensorflow"}])
        ),
        f"{WORKER}.containers[1]: got 'tensorflow'; same name as {WORKER}.containers[0]: this "
        "list is keyed by name, and Kubernetes refuses duplicates",
    ),
    (
        "two ports of one number, the protocol defaulted to TCP",
        lambda: template.normalize(
            manifest(
                {"ports": [{"containerPort": 6006}, {"containerPort": 6006, "protocol": "TCP"}]}
            )
        ),
        f"{WORKER}.containers[0].ports[1]: got {{'containerPort': 6006, 'protocol': 'TCP'}}; "
        f"same containerPort and protocol as {WORKER}.containers[0].ports[0]: this list is keyed "
        "by containerPort and protocol, and Kubernetes refuses duplicates",
    ),
    (
        "two image pull secrets of one name",
        lambda: Worker(pod_template={"spec": {"imagePullSecrets": [{"name": "r"}, {"name": "r"}]}}),
        "Worker.pod_template.spec.imagePullSecrets[1]: got 'r'; same name as "
        "Worker.pod_template.spec.imagePullSecrets[0]: this list is keyed by name, and "
        "Kubernetes refuses duplicates",
    ),
    (
        "a mount of ours on a path the template's tensorflow container mounts",
        lambda: Worker(
            volumes=[DATA, {"name": "cache", "emptyDir": {}}],
            volume_mounts=[{"name": "data", "mountPath": "/data"}],
            pod_template={
                "spec": {
                    "containers": [
                        {
                            "name": "tensorflow",
                            "volumeMounts": [{"name": "cache", "mountPath": "/data"}],
                        }
                    ]
                }
            },
        ),
        "Worker.volume_mounts[0].mountPath: got '/data'; is also the mountPath of "
        "Worker.pod_template.spec.containers[0].volumeMounts[0] (volume 'cache'): a path takes "
        "one mount",
    ),
]


@pytest.mark.parametrize(("build", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_duplicate_keys_are_refused_naming_both_entries(
    build: Callable[[], object], message: str
) -> None:
    assert refusal(build) == message


def test_one_port_number_for_two_protocols_is_two_keys() -> None:
    ports = [{"containerPort": 53, "protocol": "UDP"}, {"containerPort": 53, "protocol": "TCP"}]
    template.normalize(manifest({"ports": ports}))


def _main(worker: Worker) -> dict[str, Any]:
    pod = TfJob(worker=worker).to_manifest("j", "ns", image="tf:2")["spec"]["tfReplicaSpecs"]
    (container,) = [
        c for c in pod["Worker"]["template"]["spec"]["containers"] if c["name"] == "tensorflow"
    ]
    return dict(container)


def test_our_port_is_not_added_beside_a_port_of_the_template_on_2222() -> None:
    """The operator's port is 2222/TCP; a template port there under another name stands for it
    (the operator falls back to 2222), and adding ours too would make two ports of one key."""
    grpc = {"name": "grpc", "containerPort": 2222}
    pod = {"spec": {"containers": [{"name": "tensorflow", "ports": [grpc]}]}}
    assert _main(Worker(pod_template=pod))["ports"] == [grpc]
    udp = {"name": "stats", "containerPort": 2222, "protocol": "UDP"}
    pod = {"spec": {"containers": [{"name": "tensorflow", "ports": [udp]}]}}
    assert _main(Worker(pod_template=pod))["ports"] == [
        udp,
        {"name": "tfjob-port", "containerPort": 2222},
    ]
    assert _main(Worker())["ports"] == [{"name": "tfjob-port", "containerPort": 2222}]


def test_the_operators_env_never_duplicates_a_groups_own_entry() -> None:
    """``with_defaults`` (the operator's env= and the @task.tfjob payload) adds only the names a
    group does not set; the group's entry is kept once, its own value."""
    own = Worker(env=[{"name": "MODE", "value": "mine"}])
    job = TfJob(worker=own).with_defaults(env={"MODE": "default", "EXTRA": "1"})
    env = _main(job.worker)["env"]  # type: ignore[arg-type]
    assert env == [{"name": "EXTRA", "value": "1"}, {"name": "MODE", "value": "mine"}]
    pod = {
        "spec": {"containers": [{"name": "tensorflow", "env": [{"name": "MODE", "value": "t"}]}]}
    }
    job = TfJob(worker=Worker(env={"MODE": "ours"}, pod_template=pod)).with_defaults(env={"X": "1"})
    assert _main(job.worker)["env"] == [  # type: ignore[arg-type]
        {"name": "MODE", "value": "ours"},
        {"name": "X", "value": "1"},
    ]


def test_a_tf_config_of_the_users_is_refused_where_the_operator_sets_its_own() -> None:
    message = (
        "Worker.env['TF_CONFIG']: got 'TF_CONFIG'; the training operator sets TF_CONFIG on the "
        "'tensorflow' container of a job with more than one replica, after yours, so yours would "
        "be ignored: drop it (the operator's TF_CONFIG describes the whole cluster)"
    )
    job = TfJob(worker=Worker(replicas=2, env={"TF_CONFIG": "{}"}))
    assert refusal(lambda: job.to_manifest("j", "ns", image="tf")) == message
    job = TfJob(worker=Worker(replicas=2)).with_defaults(env={"TF_CONFIG": "{}"})
    assert refusal(lambda: job.to_manifest("j", "ns", image="tf")) == message
    single = TfJob(worker=Worker(env={"TF_CONFIG": "{}"}))  # one replica: the operator sets none
    single.to_manifest("j", "ns", image="tf")
    distributed = manifest({"env": [{"name": "TF_CONFIG", "value": "{}"}]})
    distributed["spec"]["tfReplicaSpecs"]["Worker"]["replicas"] = 3
    assert refusal(lambda: template.normalize(distributed)).startswith(
        f"{WORKER.removesuffix('.template.spec')}.template.spec.containers[0].env[0].name: "
        "got 'TF_CONFIG'; the training operator sets TF_CONFIG"
    )
