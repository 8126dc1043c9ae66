"""One test per validation rule: bad input raises TFJobSpecError naming the field and the fix."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest

from airflow_tfjob import (
    PS,
    Chief,
    CleanPodPolicy,
    Evaluator,
    Resources,
    RestartPolicy,
    RunPolicy,
    SchedulingPolicy,
    SuccessPolicy,
    TfJob,
    TFJobSpecError,
    TFJobSpecWarning,
    Worker,
)


def _manifest(job: TfJob, name: str = "mnist", **kw: Any) -> dict[str, Any]:
    return job.to_manifest(name, kw.pop("namespace", "ml"), image=kw.pop("image", "tf:2"), **kw)


RULES: list[tuple[str, Callable[[], object], str, str]] = [
    ("negative replicas", lambda: Worker(replicas=-1), "Worker.replicas", "integer from 0"),
    ("non-integer replicas", lambda: PS(replicas=1.5), "PS.replicas", "integer"),  # type: ignore[arg-type]
    ("string replicas", lambda: Worker(replicas="2"), "Worker.replicas", "integer"),  # type: ignore[arg-type]
    ("bool replicas", lambda: Worker(replicas=True), "Worker.replicas", "integer"),
    ("two chiefs", lambda: TfJob(chief=Chief(replicas=2)), "Chief.replicas", "at most 1 chief"),
    (
        "two evaluators",
        lambda: TfJob(evaluator=Evaluator(replicas=2)),
        "Evaluator.replicas",
        "at most 1 evaluator",
    ),
    (
        "neither chief nor worker",
        lambda: TfJob(worker=Worker(replicas=0)),
        "TfJob.worker",
        "can never succeed",
    ),
    (
        "no image anywhere",
        lambda: TfJob(worker=Worker(replicas=2)).to_manifest("mnist", "ml"),
        "Worker.image",
        "pass image= to the operator",
    ),
    ("empty image", lambda: Chief(image=""), "Chief.image", "non-empty"),
    ("invalid cpu", lambda: Resources(cpu="2 cores"), "Resources.cpu", "Kubernetes quantity"),
    (
        "negative memory",
        lambda: Worker(requests={"mem": "-1Gi"}),
        "Worker.requests.mem",
        "quantity",
    ),
    ("bool quantity", lambda: Worker(limits={"cpu": True}), "Worker.limits.cpu", "quantity"),
    ("fractional gpu", lambda: Resources(gpu=0.5), "Resources.gpu", "whole devices"),
    ("unknown resource", lambda: Worker(requests={"gpus": 1}), "Worker.requests.gpus", "unknown"),
    (
        "requests above limits",
        lambda: Worker(requests=Resources(cpu=4), limits=Resources(cpu="2")),
        "Worker.requests['cpu']",
        "must not exceed Worker.limits['cpu']",
    ),
    (
        "memory request above limit across units",
        lambda: Chief(requests={"memory": "2Gi"}, limits={"memory": "2000Mi"}),
        "Chief.requests['memory']",
        "must not exceed",
    ),
    (
        "gpu requests differ from limits",
        lambda: Worker(requests=Resources(gpu=1), limits=Resources(gpu=2)),
        "Worker.requests['nvidia.com/gpu']",
        "equal to limits",
    ),
    (
        "negative ttl",
        lambda: RunPolicy(ttl_seconds_after_finished=-1),
        "ttl_seconds_after_finished",
        "0",
    ),
    (
        "zero deadline",
        lambda: RunPolicy(active_deadline_seconds=0),
        "active_deadline_seconds",
        "from 1",
    ),
    ("negative backoff", lambda: RunPolicy(backoff_limit=-3), "RunPolicy.backoff_limit", "from 0"),
    (
        "int32 overflow",
        lambda: RunPolicy(backoff_limit=2**31),
        "RunPolicy.backoff_limit",
        "2147483647",
    ),
    (
        "deprecated and new both given",
        lambda: TfJob(worker=Worker(replicas=2), num_workers=3),
        "TfJob.num_workers",
        "conflicts with worker.replicas=2",
    ),
    (
        "unknown restart policy",
        lambda: Worker(restart_policy="sometimes"),
        "Worker.restart_policy",
        "ExitCode",
    ),
    (
        "unknown clean pod policy",
        lambda: RunPolicy(clean_pod_policy="some"),
        "clean_pod_policy",
        "RUNNING",
    ),
    (
        "unknown success policy",
        lambda: TfJob(success_policy="most"),
        "TfJob.success_policy",
        "ALL_WORKERS",
    ),
    ("name not DNS-1035", lambda: _manifest(TfJob(), "MNIST_1"), "name", "DNS-1035"),
    (
        "name starting with digit",
        lambda: _manifest(TfJob(), "1mnist"),
        "name",
        "starting with a letter",
    ),
    (
        "name too long for pod names",
        lambda: _manifest(TfJob(), "a" * 52),
        "name",
        "<name>-evaluator-0",
    ),
    ("bad namespace", lambda: _manifest(TfJob(), namespace="ML"), "namespace", "DNS-1123"),
    (
        "command as one string",
        lambda: Worker(command="python train.py"),
        "Worker.command",
        "['python', 'train.py']",
    ),  # type: ignore[arg-type]
    (
        "env value not a string",
        lambda: Worker(env={"EPOCHS": 3}),
        "Worker.env['EPOCHS']",
        "strings",
    ),  # type: ignore[dict-item]
    (
        "env name invalid",
        lambda: Worker(env={"1 BAD": "x"}),
        "Worker.env['1 BAD']",
        "environment variable",
    ),
    (
        "label value too long",
        lambda: Worker(labels={"team": "x" * 64}),
        "Worker.labels['team']",
        "63",
    ),
    (
        "label key invalid",
        lambda: _manifest(TfJob(), labels={"bad key": "v"}),
        "labels['bad key']",
        "keys",
    ),
    (
        "tolerations not a list",
        lambda: Worker(tolerations={"key": "k"}),
        "Worker.tolerations",
        "list",
    ),
    (
        "pod template bad keys",
        lambda: Worker(pod_template={"containers": []}),
        "Worker.pod_template",
        "'spec'",
    ),
    (
        "pod template container without name",
        lambda: Worker(pod_template={"spec": {"containers": [{"image": "x"}]}}),
        "Worker.pod_template.spec.containers[0]",
        "'name'",
    ),
    (
        "service account invalid",
        lambda: PS(service_account_name="Bad_SA"),
        "PS.service_account_name",
        "DNS-1123",
    ),
    ("wrong group type", lambda: TfJob(chief=Worker()), "TfJob.chief", "Chief"),  # type: ignore[arg-type]
    (
        "run policy wrong type",
        lambda: TfJob(run_policy={"backoff_limit": 1}),
        "TfJob.run_policy",
        "RunPolicy",
    ),  # type: ignore[arg-type]
    ("suspend not a bool", lambda: RunPolicy(suspend="yes"), "RunPolicy.suspend", "True, False"),  # type: ignore[arg-type]
    (
        "scheduling timeout zero",
        lambda: SchedulingPolicy(schedule_timeout_seconds=0),
        "SchedulingPolicy.schedule_timeout_seconds",
        "from 1",
    ),
    (
        "min resources invalid",
        lambda: SchedulingPolicy(min_resources={"cpu": "x"}),
        "min_resources.cpu",
        "quantity",
    ),
]


@pytest.mark.parametrize(
    ("build", "field", "allowed"), [r[1:] for r in RULES], ids=[r[0] for r in RULES]
)
def test_bad_input_raises_naming_the_field_and_what_is_allowed(
    build: Callable[[], object], field: str, allowed: str
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(TFJobSpecError) as info:
            build()
    assert field in info.value.field or field in str(info.value)
    assert allowed in str(info.value)
    assert isinstance(info.value, ValueError)


def test_env_values_are_never_shown_in_errors() -> None:
    with pytest.raises(TFJobSpecError) as info:
        Worker(env=[{"name": "TOKEN", "value": 12345678}])
    assert "12345678" not in str(info.value)
    assert "Worker.env[0].value" in str(info.value)


def test_ps_without_chief_warns_but_is_allowed() -> None:
    with pytest.warns(TFJobSpecWarning, match="ParameterServerStrategy needs a coordinator"):
        job = TfJob(ps=PS(replicas=1), worker=Worker(replicas=2))
    assert job.replica_counts() == {"Chief": 0, "PS": 1, "Worker": 2, "Evaluator": 0}


@pytest.mark.parametrize(
    ("legacy", "group", "count"),
    [
        ("num_workers", "Worker", 3),
        ("num_ps_replicas", "PS", 2),
        ("num_chief_replicas", "Chief", 1),
        ("num_evaluator_replicas", "Evaluator", 1),
    ],
)
def test_legacy_num_arguments_work_and_warn_naming_the_replacement(
    legacy: str, group: str, count: int
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        job = TfJob(chief=Chief(), **{legacy: count})
    deprecations = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert len(deprecations) == 1
    assert f"TfJob.{legacy} is deprecated" in str(deprecations[0].message)
    assert f"{group}(replicas={count})" in str(deprecations[0].message)
    assert job.replica_counts()[group] == count


def test_enums_parse_case_insensitively_by_name_or_value() -> None:
    assert Worker(restart_policy="failure").restart_policy is RestartPolicy.FAILURE
    assert Worker(restart_policy="onfailure").restart_policy is RestartPolicy.FAILURE
    assert Worker(restart_policy="EXIT_CODE").restart_policy is RestartPolicy.EXIT_CODE
    assert Worker(restart_policy="exitcode").restart_policy is RestartPolicy.EXIT_CODE
    assert RunPolicy(clean_pod_policy="all").clean_pod_policy is CleanPodPolicy.ALL
    assert TfJob(success_policy="AllWorkers").success_policy is SuccessPolicy.ALL_WORKERS


def test_defaults_are_one_worker_never_restart_and_clean_running_pods() -> None:
    manifest = _manifest(TfJob())
    assert list(manifest["spec"]["tfReplicaSpecs"]) == ["Worker"]
    worker = manifest["spec"]["tfReplicaSpecs"]["Worker"]
    assert worker["replicas"] == 1
    assert worker["restartPolicy"] == "Never"
    assert manifest["spec"]["runPolicy"] == {"cleanPodPolicy": "Running"}


def test_a_group_passed_without_replicas_has_one() -> None:
    counts = TfJob(chief=Chief(), evaluator=Evaluator(), ps=PS()).replica_counts()
    assert counts == {"Chief": 1, "PS": 1, "Worker": 1, "Evaluator": 1}


def test_run_policy_with_no_arguments_works() -> None:
    assert RunPolicy().to_k8s() == {"cleanPodPolicy": "Running"}
    assert RunPolicy(clean_pod_policy=None).clean_pod_policy is CleanPodPolicy.RUNNING


def test_name_of_51_characters_is_the_longest_accepted() -> None:
    manifest = _manifest(TfJob(evaluator=Evaluator()), "a" * 51)
    assert len(manifest["metadata"]["name"] + "-evaluator-0") == 63


def test_gpu_request_alone_is_copied_to_limits() -> None:
    manifest = _manifest(
        TfJob(worker=Worker(requests=Resources(gpu=2, gpu_resource_name="amd.com/gpu")))
    )
    resources = manifest["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0][
        "resources"
    ]
    assert resources == {"requests": {"amd.com/gpu": "2"}, "limits": {"amd.com/gpu": "2"}}
