"""kubernetes client model objects are accepted wherever dicts are (converted without importing
the client in the model), and render exactly like the equivalent dicts."""

from __future__ import annotations

from kubernetes.client import (
    V1Affinity,
    V1Container,
    V1EnvVar,
    V1EnvVarSource,
    V1NodeAffinity,
    V1NodeSelector,
    V1NodeSelectorRequirement,
    V1NodeSelectorTerm,
    V1ObjectMeta,
    V1PodSpec,
    V1PodTemplateSpec,
    V1SecretKeySelector,
    V1Toleration,
    V1Volume,
    V1VolumeMount,
)

from airflow_tfjob import TfJob, Worker


def _worker_pod(job: TfJob) -> dict:  # type: ignore[type-arg]
    return job.to_manifest("m", "ns", image="tf")["spec"]["tfReplicaSpecs"]["Worker"]["template"]


def test_client_models_render_like_their_dicts() -> None:
    from_models = Worker(
        tolerations=[V1Toleration(key="gpu", operator="Exists", effect="NoSchedule")],
        volumes=[V1Volume(name="cache", empty_dir={})],
        volume_mounts=[V1VolumeMount(name="cache", mount_path="/cache")],
        env=[
            V1EnvVar(
                name="KEY",
                value_from=V1EnvVarSource(secret_key_ref=V1SecretKeySelector(name="s", key="k")),
            )
        ],
        affinity=V1Affinity(
            node_affinity=V1NodeAffinity(
                required_during_scheduling_ignored_during_execution=V1NodeSelector(
                    node_selector_terms=[
                        V1NodeSelectorTerm(
                            match_expressions=[
                                V1NodeSelectorRequirement(key="gpu", operator="In", values=["a100"])
                            ]
                        )
                    ]
                )
            )
        ),
    )
    from_dicts = Worker(
        tolerations=[{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
        volumes=[{"name": "cache", "emptyDir": {}}],
        volume_mounts=[{"name": "cache", "mountPath": "/cache"}],
        env=[{"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
        affinity={
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "gpu", "operator": "In", "values": ["a100"]}]}
                    ]
                }
            }
        },
    )
    assert _worker_pod(TfJob(worker=from_models)) == _worker_pod(TfJob(worker=from_dicts))


def test_a_v1_pod_template_spec_is_merged_under_our_fields() -> None:
    template = V1PodTemplateSpec(
        metadata=V1ObjectMeta(annotations={"sidecar.istio.io/inject": "false"}),
        spec=V1PodSpec(
            containers=[V1Container(name="tensorflow", image="base:1", working_dir="/work")],
            host_ipc=True,
        ),
    )
    pod = _worker_pod(TfJob(worker=Worker(image="ours:2", pod_template=template, args=["--x"])))
    assert pod["metadata"] == {"annotations": {"sidecar.istio.io/inject": "false"}}
    assert pod["spec"]["hostIPC"] is True
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "ours:2"  # our field wins over the template's
    assert container["workingDir"] == "/work"  # the template's extra field is kept
    assert container["args"] == ["--x"]
