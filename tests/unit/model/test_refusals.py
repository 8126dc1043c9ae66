"""Issue 18: what used to pass silently and is now refused at construction, one test per class of
refusal, each with its exact message (field path, value, what is allowed)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from airflow_tfjob import PS, Resources, SchedulingPolicy, TfJob, TFJobSpecError, Worker


def refusal(build: Callable[[], object]) -> str:
    with pytest.raises(TFJobSpecError) as info:
        build()
    return str(info.value)


# --- conflicting spellings of one resource -----------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: Worker(requests={"mem": "1Gi", "memory": "2Gi"}),
            "Worker.requests.memory: got '2Gi'; conflicts with Worker.requests.mem = '1Gi': "
            "both give 'memory'; give it once",
        ),
        (
            lambda: Worker(limits={"gpu": 1, "nvidia.com/gpu": 2}),
            "Worker.limits.nvidia.com/gpu: got 2; conflicts with Worker.limits.gpu = 1: "
            "both give 'nvidia.com/gpu'; give it once",
        ),
        (
            lambda: SchedulingPolicy(
                min_resources={"ephemeral-storage": "1Gi", "ephemeral_storage": "2Gi"}
            ),
            "SchedulingPolicy.min_resources.ephemeral_storage: got '2Gi'; conflicts with "
            "SchedulingPolicy.min_resources.ephemeral-storage = '1Gi': "
            "both give 'ephemeral-storage'; give it once",
        ),
    ],
    ids=["mem-and-memory", "gpu-and-nvidia.com/gpu", "ephemeral-storage-twice"],
)
def test_two_spellings_of_one_resource_are_refused_naming_both(
    build: Callable[[], object], message: str
) -> None:
    assert refusal(build) == message


def test_a_gpu_resource_name_must_be_an_extended_resource() -> None:
    # it used to be accepted, and Resources(gpu=1, gpu_resource_name="memory") set memory to 1
    assert refusal(lambda: Resources(gpu=1, gpu_resource_name="memory")) == (
        "Resources.gpu_resource_name: got 'memory'; must be an extended resource name with a "
        "domain, e.g. 'nvidia.com/gpu'"
    )
    assert Resources(gpu=1, gpu_resource_name="amd.com/gpu").to_k8s("r") == {"amd.com/gpu": "1"}


def test_an_extended_resource_name_must_be_a_qualified_name() -> None:
    assert refusal(lambda: Worker(limits={"my_gpus.example/gpu": 1})) == (
        "Worker.limits.my_gpus.example/gpu: got 'my_gpus.example/gpu'; the key's prefix must be "
        "a DNS subdomain such as 'example.com'"
    )


# --- names: no stricter than Kubernetes, no looser either --------------------------------------


def test_a_service_account_name_is_a_dns1123_subdomain_so_dots_are_allowed() -> None:
    pod = TfJob(worker=Worker(service_account_name="trainer.ml")).to_manifest("j", "ns", image="i")
    spec = pod["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    assert spec["serviceAccountName"] == "trainer.ml"
    assert refusal(lambda: PS(service_account_name="Trainer")) == (
        "PS.service_account_name: got 'Trainer'; must be a DNS-1123 subdomain: at most 253 "
        "lowercase letters, digits, '-' or '.', starting and ending with a letter or digit "
        "(e.g. 'trainer' or 'trainer.ml')"
    )
    assert refusal(lambda: PS(service_account_name="a" * 254)).startswith(
        "PS.service_account_name: got 'aaaa"
    )


def test_annotations_are_limited_to_256_kib_in_all() -> None:
    Worker(annotations={"example.com/notes": "x" * (256 * 1024 - len("example.com/notes"))})
    assert refusal(lambda: Worker(annotations={"example.com/notes": "x" * (256 * 1024)})) == (
        "Worker.annotations: got a dict; keys and values total 262161 bytes; Kubernetes allows "
        "at most 262144 (256 KiB) in all: keep large data elsewhere (a ConfigMap, a URI)"
    )
    big = {"a": "x" * (200 * 1024), "b": "y" * (100 * 1024)}
    assert refusal(lambda: TfJob().to_manifest("j", "ns", image="i", annotations=big)).startswith(
        "annotations: got a dict; keys and values total 307202 bytes"
    )
