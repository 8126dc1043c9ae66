"""Issue 18, Kubernetes' cheap core rules, on the model's pods and a template's alike: what the
API server, the operator's webhook or the kubelet would refuse after the TFJob exists is refused
at construction, and nothing Kubernetes accepts is refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_tfjob import TfJob, Worker
from airflow_tfjob.model import template
from tests.unit.model.refusal import refusal

REPLICA = "tfjob_template.spec.tfReplicaSpecs.Worker"
POD = f"{REPLICA}.template.spec"
MAIN = f"{POD}.containers[0]"
SIDE = {"name": "sidecar", "image": "busybox"}
LABEL_VALUE = (
    "label values must be empty or at most 63 letters, digits, '-', '_' or '.', starting and "
    "ending with a letter or digit"
)
IMAGE = (
    "must be a non-empty image reference without whitespace, e.g. 'tensorflow/tensorflow:2.16.1'"
)


def manifest(container: dict[str, Any] | None = None, **pod: Any) -> dict[str, Any]:
    main = {"name": "tensorflow", "image": "tf:2", **(container or {})}
    spec = {"containers": [main], **pod}
    return {"spec": {"tfReplicaSpecs": {"Worker": {"replicas": 1, "template": {"spec": spec}}}}}


def sidecar(**fields: Any) -> dict[str, Any]:
    return {"spec": {"containers": [{**SIDE, **fields}]}}


def toleration(**fields: Any) -> Callable[[], object]:
    return lambda: Worker(tolerations=[fields])


CASES: list[tuple[str, Callable[[], object], str]] = [
    # requests <= limits, now on the template path too
    (
        "requests above limits in a template",
        lambda: template.normalize(
            manifest({"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1500m"}}})
        ),
        f"{MAIN}.resources.requests['cpu']: got '2'; must not exceed "
        f"{MAIN}.resources.limits['cpu'] = '1500m'",
    ),
    (
        "requests above limits in a pod_template's sidecar",
        lambda: Worker(
            pod_template=sidecar(
                resources={"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}
            )
        ),
        "Worker.pod_template.spec.containers[0].resources.requests['memory']: got '2Gi'; must "
        "not exceed Worker.pod_template.spec.containers[0].resources.limits['memory'] = '1Gi'",
    ),
    (
        "a GPU request without a limit in a template",
        lambda: template.normalize(manifest({"resources": {"requests": {"nvidia.com/gpu": 1}}})),
        f"{MAIN}.resources.requests['nvidia.com/gpu']: got 1; cannot be overcommitted: set "
        f"{MAIN}.resources.limits['nvidia.com/gpu'] to the same amount",
    ),
    (
        "a GPU request different from its limit in a template",
        lambda: template.normalize(
            manifest(
                {"resources": {"requests": {"nvidia.com/gpu": 1}, "limits": {"nvidia.com/gpu": 2}}}
            )
        ),
        f"{MAIN}.resources.requests['nvidia.com/gpu']: got 1; cannot be overcommitted: must "
        f"equal {MAIN}.resources.limits['nvidia.com/gpu'] = 2",
    ),
    (
        "a resource name Kubernetes does not know",
        lambda: template.normalize(manifest({"resources": {"limits": {"gpus": 1}}})),
        f"{MAIN}.resources.limits['gpus']: got 'gpus'; must be cpu, memory, ephemeral-storage, "
        "hugepages-<size>, or an extended resource with a domain such as 'nvidia.com/gpu'",
    ),
    (
        "a negative quantity in a template",
        lambda: template.normalize(manifest({"resources": {"limits": {"cpu": "-1"}}})),
        f"{MAIN}.resources.limits['cpu']: got '-1'; must be a non-negative Kubernetes quantity "
        "such as 2, 0.5, '500m', '4Gi' or '10G'",
    ),
    # enums
    (
        "toleration operator Maybe",
        toleration(key="gpu", operator="Maybe"),
        "Worker.tolerations[0].operator: got 'Maybe'; must be one of 'Exists', 'Equal'",
    ),
    (
        "toleration effect misspelt",
        toleration(key="gpu", operator="Exists", effect="NoScheduling"),
        "Worker.tolerations[0].effect: got 'NoScheduling'; must be one of 'NoSchedule', "
        "'PreferNoSchedule', 'NoExecute'",
    ),
    (
        "toleration without a key must be Exists",
        toleration(operator="Equal", value="x"),
        "Worker.tolerations[0].operator: got 'Equal'; must be 'Exists' when the key is empty "
        "(which tolerates every taint)",
    ),
    (
        "toleration Exists with a value",
        toleration(key="gpu", operator="Exists", value="a100"),
        "Worker.tolerations[0].value: got 'a100'; must be empty when operator is 'Exists'",
    ),
    (
        "toleration value not a label value",
        toleration(key="gpu", operator="Equal", value="a 100"),
        f"Worker.tolerations[0].value: got 'a 100'; {LABEL_VALUE}",
    ),
    (
        "tolerationSeconds without NoExecute",
        toleration(key="gpu", operator="Exists", effect="NoSchedule", tolerationSeconds=60),
        "Worker.tolerations[0].tolerationSeconds: got 60; applies to effect 'NoExecute' only: "
        "set effect: NoExecute, or drop it",
    ),
    (
        "toleration in a template",
        lambda: template.normalize(manifest(tolerations=[{"key": "gpu", "operator": "Maybe"}])),
        f"{POD}.tolerations[0].operator: got 'Maybe'; must be one of 'Exists', 'Equal'",
    ),
    (
        "image pull policy misspelt",
        lambda: template.normalize(manifest({"imagePullPolicy": "always"})),
        f"{MAIN}.imagePullPolicy: got 'always'; must be one of 'Always', 'Never', 'IfNotPresent'",
    ),
    (
        "pod restart policy not a pod policy",
        lambda: Worker(pod_template={"spec": {"restartPolicy": "ExitCode"}}),
        "Worker.pod_template.spec.restartPolicy: got 'ExitCode'; must be one of 'Always', "
        "'OnFailure', 'Never'",
    ),
    (
        "pod restart policy the operator would overwrite (model)",
        lambda: Worker(pod_template={"spec": {"restartPolicy": "OnFailure"}}),
        "Worker.pod_template.spec.restartPolicy: got 'OnFailure'; the training operator replaces "
        "a pod's restartPolicy with its replica's ('Never'), so this one would be ignored: set "
        "Worker(restart_policy=...) instead",
    ),
    (
        "pod restart policy the operator would overwrite (template)",
        lambda: template.normalize(manifest(restartPolicy="Always")),
        f"{POD}.restartPolicy: got 'Always'; the training operator replaces a pod's "
        "restartPolicy with its replica's ('Never'), so this one would be ignored: set "
        f"{REPLICA}.restartPolicy instead",
    ),
    (
        "port protocol unknown",
        lambda: template.normalize(
            manifest({"ports": [{"containerPort": 80, "protocol": "HTTP"}]})
        ),
        f"{MAIN}.ports[0].protocol: got 'HTTP'; must be one of 'TCP', 'UDP', 'SCTP'",
    ),
    (
        "two ports of one name",
        lambda: template.normalize(
            manifest(
                {
                    "ports": [
                        {"name": "web", "containerPort": 80},
                        {"name": "web", "containerPort": 81},
                    ]
                }
            )
        ),
        f"{MAIN}.ports[1].name: got 'web'; is also the name of {MAIN}.ports[0]: a container's "
        "port names are distinct",
    ),
    # references
    (
        "a mount of an undeclared volume (model)",
        lambda: Worker(volume_mounts=[{"name": "data", "mountPath": "/data"}]),
        "Worker.volume_mounts[0].name: got 'data'; names no volume of the pod (its volumes: "
        "none); declare it in volumes, or the API server refuses the pod",
    ),
    (
        "a mount of an undeclared volume (template)",
        lambda: template.normalize(
            manifest(
                {"volumeMounts": [{"name": "cache", "mountPath": "/c"}]},
                volumes=[{"name": "data", "emptyDir": {}}],
            )
        ),
        f"{MAIN}.volumeMounts[0].name: got 'cache'; names no volume of the pod (its volumes: "
        "data); declare it in volumes, or the API server refuses the pod",
    ),
    # images
    (
        "an image with whitespace (model)",
        lambda: Worker(image="tensorflow/tensorflow: 2.16"),
        f"Worker.image: got 'tensorflow/tensorflow: 2.16'; {IMAGE}",
    ),
    (
        "an image with whitespace (operator's image=)",
        lambda: TfJob().to_manifest("j", "ns", image="tf:2 "),
        f"image: got 'tf:2 '; {IMAGE}",
    ),
    (
        "an image with whitespace (template)",
        lambda: template.normalize(manifest({"image": " tf:2"})),
        f"{MAIN}.image: got ' tf:2'; {IMAGE}",
    ),
    (
        "a sidecar without an image (model)",
        lambda: Worker(pod_template={"spec": {"containers": [{"name": "sidecar"}]}}),
        f"Worker.pod_template.spec.containers[0].image: got None; every container needs an "
        f"image: {IMAGE}",
    ),
    (
        "a sidecar without an image (template)",
        lambda: template.normalize(manifest(containers=[{"name": "tensorflow"}, {"name": "log"}])),
        f"{POD}.containers[1].image: got None; every container needs an image: {IMAGE}",
    ),
    # names
    (
        "a container name that is not a DNS-1123 label",
        lambda: Worker(pod_template=sidecar(name="Log_Shipper")),
        "Worker.pod_template.spec.containers[0].name: got 'Log_Shipper'; must be a DNS-1123 "
        "label: at most 63 lowercase letters, digits or '-', starting and ending with a letter "
        "or digit",
    ),
    (
        "an init container named like a container",
        lambda: template.normalize(manifest(initContainers=[{"name": "tensorflow", "image": "i"}])),
        f"{POD}.containers[0].name: got 'tensorflow'; is also the name of "
        f"{POD}.initContainers[0]: a pod's containers and init containers need distinct names",
    ),
    (
        "a volume name that is not a DNS-1123 label",
        lambda: Worker(volumes=[{"name": "Data", "emptyDir": {}}]),
        "Worker.volumes[0].name: got 'Data'; must be a DNS-1123 label: at most 63 lowercase "
        "letters, digits or '-', starting and ending with a letter or digit",
    ),
    (
        "a service account name in a template",
        lambda: template.normalize(manifest(serviceAccountName="Trainer")),
        f"{POD}.serviceAccountName: got 'Trainer'; must be a DNS-1123 subdomain: at most 253 "
        "lowercase letters, digits, '-' or '.', starting and ending with a letter or digit "
        "(e.g. 'trainer' or 'trainer.ml')",
    ),
    (
        "a node selector value that is not a label value",
        lambda: Worker(node_selector={"pool": "gpu nodes"}),
        f"Worker.node_selector['pool']: got 'gpu nodes'; {LABEL_VALUE}",
    ),
    (
        "a pod label in a template",
        lambda: template.normalize(
            {
                "spec": {
                    "tfReplicaSpecs": {
                        "Worker": {
                            "template": {
                                "metadata": {"labels": {"bad key": "v"}},
                                "spec": {"containers": [{"name": "tensorflow", "image": "i"}]},
                            }
                        }
                    }
                }
            }
        ),
        f"{REPLICA}.template.metadata.labels['bad key']: got 'bad key'; keys must be at most 63 "
        "letters, digits, '-', '_' or '.', starting and ending with a letter or digit, "
        "optionally prefixed by a DNS subdomain and '/'",
    ),
    (
        "the job's annotations over 256 KiB in a template",
        lambda: template.normalize({**manifest(), "metadata": {"annotations": {"a": "x" * 2**18}}}),
        "tfjob_template.metadata.annotations: got a dict; keys and values total 262145 bytes; "
        "Kubernetes allows at most 262144 (256 KiB) in all: keep large data elsewhere (a "
        "ConfigMap, a URI)",
    ),
    (
        "ephemeral containers at creation",
        lambda: Worker(pod_template={"spec": {"ephemeralContainers": [{"name": "debug"}]}}),
        "Worker.pod_template.spec.ephemeralContainers: got a list; cannot be set when a pod is "
        "created (Kubernetes adds them to running pods only, e.g. with kubectl debug)",
    ),
]


@pytest.mark.parametrize(("build", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_what_kubernetes_would_refuse_later_is_refused_now(
    build: Callable[[], object], message: str
) -> None:
    assert refusal(build) == message


@pytest.mark.parametrize(
    "build",
    [
        lambda: Worker(service_account_name="trainer.ml"),
        lambda: template.normalize(manifest(serviceAccountName="trainer.ml")),
        lambda: Worker(tolerations=[{"operator": "Exists"}]),  # tolerate everything
        lambda: Worker(tolerations=[{"key": "gpu", "value": "a100", "effect": ""}]),
        lambda: Worker(
            tolerations=[{"key": "gpu", "effect": "NoExecute", "tolerationSeconds": -5}]
        ),
        lambda: Worker(
            restart_policy="OnFailure", pod_template={"spec": {"restartPolicy": "OnFailure"}}
        ),
        lambda: Worker(
            restart_policy="ExitCode", pod_template={"spec": {"restartPolicy": "Never"}}
        ),
        lambda: template.normalize(manifest({"resources": {"limits": {"nvidia.com/gpu": 1}}})),
        lambda: template.normalize(
            manifest(
                {
                    "resources": {
                        "requests": {"hugepages-2Mi": "1Gi"},
                        "limits": {"hugepages-2Mi": "1Gi"},
                    }
                }
            )
        ),
        lambda: template.normalize(manifest({"image": ""})),  # tensorflow's comes from image=
        lambda: template.normalize(manifest({"imagePullPolicy": ""})),
        lambda: Worker(
            volumes=[{"name": "data", "emptyDir": {}}],
            volume_mounts=[
                {"name": "data", "mountPath": "/a"},
                {"name": "data", "mountPath": "/b"},
            ],
        ),
        lambda: Worker(
            volumes=[{"name": "data", "emptyDir": {}}],
            pod_template={
                "spec": {
                    "containers": [{**SIDE, "volumeMounts": [{"name": "data", "mountPath": "/d"}]}]
                }
            },
        ),
    ],
    ids=[
        "service account with a dot",
        "service account with a dot in a template",
        "toleration of every taint",
        "toleration Equal by default with an empty effect",
        "negative tolerationSeconds",
        "pod policy equal to the replica's",
        "ExitCode is Never at pod level",
        "GPU limit alone",
        "huge pages",
        "tensorflow image left to the operator's image=",
        "empty pull policy",
        "one volume mounted twice",
        "a sidecar mounting a volume of the group",
    ],
)
def test_what_kubernetes_accepts_is_accepted(build: Callable[[], object]) -> None:
    build()
