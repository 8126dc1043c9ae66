"""Issue 18, the closed schema: an unknown field anywhere the CRD's schema describes the object
is refused at construction (the API server would prune it without a word), naming the full path
and the likely fix; a client model is serialized in camelCase, not refused."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import (
    V1Affinity,
    V1Container,
    V1EnvVar,
    V1EnvVarSource,
    V1NodeAffinity,
    V1PodSpec,
    V1PodTemplateSpec,
    V1SecretKeySelector,
    V1Toleration,
)

from airflow_tfjob import TfJob, TFJobSpecError, Worker
from airflow_tfjob.model import closed, core, template
from tests.unit.model.refusal import refusal

SNAKE = (
    "Kubernetes spells fields in camelCase (a client model's to_dict() gives snake_case: pass the "
    "model itself, or its camelCase dict)"
)
DROPPED = "is not a field here, and the API server would drop it without a word"
WORKER = "tfjob_template.spec.tfReplicaSpecs.Worker"


def manifest(**pod: Any) -> dict[str, Any]:
    """A valid template whose Worker pod spec has ``pod`` added."""
    container = {"name": "tensorflow", "image": "tf:2"}
    spec = {"containers": [container], **pod}
    return {"spec": {"tfReplicaSpecs": {"Worker": {"replicas": 2, "template": {"spec": spec}}}}}


def secret_env() -> V1EnvVar:
    ref = V1SecretKeySelector(name="s", key="k")
    return V1EnvVar(name="KEY", value_from=V1EnvVarSource(secret_key_ref=ref))


CASES: list[tuple[str, Callable[[], object], str]] = [
    (
        "typo in a template",
        lambda: template.normalize(manifest(nodeSelecter={"disk": "ssd"})),
        f"{WORKER}.template.spec.nodeSelecter: got 'nodeSelecter'; {DROPPED}; "
        "did you mean nodeSelector?",
    ),
    (
        "typo of the pod's restart policy",
        lambda: template.normalize(manifest(restartPolcy="Never")),
        f"{WORKER}.template.spec.restartPolcy: got 'restartPolcy'; {DROPPED}; "
        "did you mean restartPolicy?",
    ),
    (
        "typo in a replica spec",
        lambda: template.normalize(
            {"spec": {"tfReplicaSpecs": {"Worker": {"replica": 2, "template": {}}}}}
        ),
        f"{WORKER}.replica: got 'replica'; {DROPPED}; did you mean replicas?",
    ),
    (
        "snake_case in a run policy",
        lambda: template.normalize(
            {**manifest(), "spec": {**manifest()["spec"], "runPolicy": {"backoff_limit": 3}}}
        ),
        f"tfjob_template.spec.runPolicy.backoff_limit: got 'backoff_limit'; {DROPPED}; "
        f"did you mean backoffLimit? {SNAKE}",
    ),
    (
        "typo in a pod_template",
        lambda: Worker(pod_template={"spec": {"nodeSelecter": {"disk": "ssd"}}}),
        f"Worker.pod_template.spec.nodeSelecter: got 'nodeSelecter'; {DROPPED}; "
        "did you mean nodeSelector?",
    ),
    (
        "typo deep in a pod_template's container",
        lambda: Worker(
            pod_template={"spec": {"containers": [{"name": "tensorflow", "workDir": "/w"}]}}
        ),
        f"Worker.pod_template.spec.containers[0].workDir: got 'workDir'; {DROPPED}; "
        "did you mean workingDir?",
    ),
    (
        "a V1Affinity's to_dict()",
        lambda: Worker(affinity=V1Affinity(node_affinity=V1NodeAffinity()).to_dict()),
        f"Worker.affinity.node_affinity: got 'node_affinity'; {DROPPED}; "
        f"did you mean nodeAffinity? {SNAKE}",
    ),
    (
        "a V1EnvVar's to_dict()",
        lambda: Worker(env=[secret_env().to_dict()]),
        f"Worker.env[0].value_from: got 'value_from'; {DROPPED}; did you mean valueFrom? {SNAKE}",
    ),
    (
        "a V1Toleration's to_dict()",
        lambda: Worker(
            tolerations=[
                V1Toleration(
                    key="spot", operator="Exists", effect="NoExecute", toleration_seconds=30
                ).to_dict()
            ]
        ),
        f"Worker.tolerations[0].toleration_seconds: got 'toleration_seconds'; {DROPPED}; "
        f"did you mean tolerationSeconds? {SNAKE}",
    ),
    (
        "snake_case volume source",
        lambda: Worker(volumes=[{"name": "data", "empty_dir": {}}]),
        f"Worker.volumes[0].empty_dir: got 'empty_dir'; {DROPPED}; did you mean emptyDir? {SNAKE}",
    ),
    (
        "snake_case volume mount",
        lambda: Worker(
            volumes=[{"name": "data", "emptyDir": {}}],
            volume_mounts=[{"name": "data", "mount_path": "/data"}],
        ),
        f"Worker.volume_mounts[0].mount_path: got 'mount_path'; {DROPPED}; "
        f"did you mean mountPath? {SNAKE}",
    ),
    (
        "a field with no close match lists the fields",
        lambda: Worker(tolerations=[{"key": "gpu", "operator": "Exists", "tainted": True}]),
        f"Worker.tolerations[0].tainted: got 'tainted'; {DROPPED}; the fields here are effect, "
        "key, operator, tolerationSeconds, value",
    ),
    (
        "a pod template's metadata has five fields in the CRD",
        lambda: Worker(pod_template={"metadata": {"generateName": "x-"}}),
        f"Worker.pod_template.metadata.generateName: got 'generateName'; {DROPPED}; "
        "the fields here are annotations, finalizers, labels, name, namespace",
    ),
    (
        "the job's metadata is checked against ObjectMeta's fields",
        lambda: template.normalize({**manifest(), "metadata": {"lables": {"team": "a"}}}),
        f"tfjob_template.metadata.lables: got 'lables'; {DROPPED}; did you mean labels?",
    ),
    (
        "the job's labels are checked",
        lambda: template.normalize({**manifest(), "metadata": {"labels": {"team": "a b"}}}),
        "tfjob_template.metadata.labels['team']: got 'a b'; label values must be empty or at "
        "most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
    ),
    (
        "a wrong type in a model's dict, at parse time, the value shown (not an env value)",
        lambda: Worker(
            tolerations=[{"key": "spot", "operator": "Exists", "tolerationSeconds": "30"}]
        ),
        "Worker.tolerations[0].tolerationSeconds: got '30'; must be an integer (the TFJob CRD's "
        "schema)",
    ),
    (
        "a required field missing in a model's dict",
        lambda: Worker(env=[{"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "s"}}}]),
        "Worker.env[0].valueFrom.secretKeyRef.key: got None; is required by the TFJob CRD's schema",
    ),
    (
        "an env value of the wrong type is never shown",
        lambda: Worker(env=[{"name": "TOKEN", "value": 12345}]),
        "Worker.env[0].value: got an int; must be a string (the TFJob CRD's schema)",
    ),
]


@pytest.mark.parametrize(("build", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_an_unknown_field_is_refused_naming_its_path_and_the_fix(
    build: Callable[[], object], message: str
) -> None:
    assert refusal(build) == message


def test_open_maps_stay_open() -> None:
    """labels, annotations, nodeSelector and resource lists have a schema for their values, not
    a list of keys: any (valid) key is accepted there."""
    pod = {
        "metadata": {"labels": {"any.example/key": "v"}, "annotations": {"free": "text"}},
        "spec": {
            "nodeSelector": {"cloud.example/pool": "gpu"},
            "containers": [
                {
                    "name": "tensorflow",
                    "resources": {"limits": {"example.com/fpga": "1"}},
                    "env": [{"name": "A", "value": "1"}],
                }
            ],
        },
    }
    Worker(pod_template=pod)
    job = manifest()
    job["spec"]["tfReplicaSpecs"]["Worker"]["template"].update(copy.deepcopy(pod))
    job["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["image"] = "tf"
    template.normalize(job)


def test_client_models_are_serialized_in_camel_case_not_refused() -> None:
    worker = Worker(
        affinity=V1Affinity(node_affinity=V1NodeAffinity()),
        env=[secret_env()],
        tolerations=[
            V1Toleration(key="spot", operator="Exists", effect="NoExecute", toleration_seconds=30)
        ],
        pod_template=V1PodTemplateSpec(
            spec=V1PodSpec(containers=[V1Container(name="tensorflow", working_dir="/w")])
        ),
    )
    pod = TfJob(worker=worker).to_manifest("j", "ns", image="tf")["spec"]["tfReplicaSpecs"]
    spec = pod["Worker"]["template"]["spec"]
    assert spec["affinity"] == {"nodeAffinity": {}}
    assert spec["tolerations"] == [
        {"effect": "NoExecute", "key": "spot", "operator": "Exists", "tolerationSeconds": 30}
    ]
    assert spec["containers"][0]["workingDir"] == "/w"
    assert spec["containers"][0]["env"] == [
        {"name": "KEY", "valueFrom": {"secretKeyRef": {"key": "k", "name": "s"}}}
    ]


def test_the_run_time_check_of_a_whole_manifest_is_closed_too() -> None:
    """``core.manifest``, which the operator runs on every manifest before sending it, reads the
    schema as closed and applies the core rules."""
    job = TfJob(worker=Worker(replicas=2)).to_manifest("job", "ns", image="tf:2")
    core.manifest(job, "manifest")
    job["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["nodeSelecter"] = {"a": "b"}
    with pytest.raises(TFJobSpecError, match=r"^manifest\.spec\.tfReplicaSpecs\.Worker\.template"):
        core.manifest(job, "manifest")


def test_no_schema_node_preserves_unknown_fields() -> None:
    """The closed reading is right only while the CRD preserves no unknown fields anywhere; a
    newer CRD that does is honoured by the walk (it stops there), and this test says so."""
    text = str(closed.tree())
    assert "x-kubernetes-preserve-unknown-fields" not in text
    closed.check(
        {"anything": 1}, {"type": "object", "x-kubernetes-preserve-unknown-fields": True}, "f"
    )


def test_a_plain_model_reads_no_schema_and_imports_no_jsonschema_at_parse_time() -> None:
    code = (
        "import sys\n"
        "from airflow_tfjob import Chief, TfJob, Worker\n"
        "from airflow_tfjob.model import closed\n"
        "TfJob(chief=Chief(), worker=Worker(replicas=2, env={'A': '1'}, labels={'a': 'b'}))"
        ".to_manifest('j', 'ns', image='tf:2')\n"
        "print(closed.tree.cache_info().currsize, 'jsonschema' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[3],  # this checkout's airflow_tfjob first on sys.path
    ).stdout
    assert out.split() == ["0", "False"]


def test_a_templates_env_value_of_the_wrong_type_is_never_shown() -> None:
    job = manifest()
    container = job["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": "TOKEN", "value": 987654321}]
    with pytest.raises(TFJobSpecError) as info:
        template.normalize(job)
    assert str(info.value) == (
        "tfjob_template.spec.tfReplicaSpecs.Worker.template.spec.containers[0].env[0].value: got "
        "an int; must be a string (the TFJob CRD's schema)"
    )
