"""Property-based: every valid description renders a manifest the real TFJob CRD schema accepts,
and every invalid one raises TFJobSpecError before any I/O."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    Worker,
)

CRD = Path(__file__).parents[2] / "data" / "kubeflow.org_tfjobs.yaml"


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    crd = yaml.safe_load(CRD.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    return cls(schema)


cpu = st.one_of(st.integers(1, 64), st.sampled_from(["500m", "1", "2.5", "100m"]))
mem = st.sampled_from(["512Mi", "1Gi", "4Gi", "1e9", "2G"])
resources = st.builds(
    Resources, cpu=st.none() | cpu, mem=st.none() | mem, gpu=st.none() | st.integers(0, 8)
)
env = st.dictionaries(
    st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True), st.text(max_size=12), max_size=3
)
names = st.from_regex(r"[a-z][a-z0-9]{0,20}", fullmatch=True)
policies = (
    st.none()
    | st.sampled_from(list(RestartPolicy))
    | st.sampled_from(["always", "OnFailure", "exit_code"])
)


VOLUME = {"name": "data", "emptyDir": {}}
MOUNT = {"name": "data", "mountPath": "/data"}


def group(cls: type, max_replicas: int) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {
            "image": st.none() | st.sampled_from(["tf:2.16", "registry.example/train:1"]),
            "requests": st.none() | resources,
            "replicas": st.none() | st.integers(0, max_replicas),
            "restart_policy": policies,
            "command": st.none() | st.lists(st.text(min_size=1, max_size=8), max_size=3),
            "args": st.none() | st.lists(st.text(max_size=8), max_size=3),
            "env": st.none() | env,
            "node_selector": st.none() | st.dictionaries(names, names, max_size=2),
            "labels": st.none() | st.dictionaries(names, names, max_size=2),
            "service_account_name": st.none() | names,
            "tolerations": st.none()
            | st.just([{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]),
            # a mount names a declared volume, or Kubernetes refuses the pod
            "storage": st.sampled_from([{}, {"volumes": [VOLUME]}])
            | st.just({"volumes": [VOLUME], "volume_mounts": [MOUNT]}),
        }
    ).map(lambda kw: cls(**{k: v for k, v in kw.items() if k != "storage"}, **kw["storage"]))


run_policies = st.builds(
    RunPolicy,
    clean_pod_policy=st.none() | st.sampled_from(list(CleanPodPolicy)),
    ttl_seconds_after_finished=st.none() | st.integers(0, 10**6),
    active_deadline_seconds=st.none() | st.integers(1, 10**8),
    backoff_limit=st.none() | st.integers(0, 100),
    scheduling_policy=st.none()
    | st.builds(
        SchedulingPolicy,
        min_available=st.none() | st.integers(0, 10),
        queue=st.none() | names,
        min_resources=st.none() | resources,
    ),
    suspend=st.none() | st.booleans(),
)


def _job(draw: st.DrawFn) -> TfJob:
    return TfJob(
        chief=draw(st.none() | group(Chief, 1)),
        ps=draw(st.none() | group(PS, 3)),
        worker=draw(st.none() | group(Worker, 5)),
        evaluator=draw(st.none() | group(Evaluator, 1)),
        run_policy=draw(st.none() | run_policies),
        success_policy=draw(st.none() | st.sampled_from(list(SuccessPolicy))),
        enable_dynamic_worker=draw(st.none() | st.booleans()),
    )


@st.composite
def valid_or_invalid_jobs(draw: st.DrawFn) -> TfJob | TFJobSpecError:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _job(draw)
    except TFJobSpecError as error:  # e.g. a draw with no chief and no worker
        return error


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(job=valid_or_invalid_jobs(), name=names)
def test_every_valid_description_validates_against_the_crd_schema(
    job: TfJob | TFJobSpecError, name: str, validator: jsonschema.protocols.Validator
) -> None:
    if isinstance(job, TFJobSpecError):
        counts_ok = "chief or at least one worker" in str(job)
        assert counts_ok, f"only the chief-or-worker rule can reject these draws: {job}"
        return
    manifest = job.to_manifest(name, "team-a", image="tf:default")
    validator.validate(manifest)
    assert json.dumps(manifest) == json.dumps(job.to_manifest(name, "team-a", image="tf:default"))
    counts = {t: s["replicas"] for t, s in manifest["spec"]["tfReplicaSpecs"].items()}
    assert all(counts.values()) and counts == {t: n for t, n in job.replica_counts().items() if n}


CRD_QUANTITY = re.compile(
    yaml.safe_load(CRD.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"][
        "properties"
    ]["spec"]["properties"]["runPolicy"]["properties"]["schedulingPolicy"]["properties"][
        "minResources"
    ]["additionalProperties"]["pattern"]
)
not_a_count = st.one_of(st.integers(max_value=-1), st.floats(), st.text(max_size=5), st.booleans())
ENUM_SPELLINGS = {
    s.lower()
    for e in (RestartPolicy, CleanPodPolicy)
    for m in e
    for s in (m.name, m.value, m.name.replace("_", ""))
}
BAD = {
    "Worker.replicas": (not_a_count, lambda v: Worker(replicas=v)),
    "RunPolicy.ttl_seconds_after_finished": (
        not_a_count,
        lambda v: RunPolicy(ttl_seconds_after_finished=v),
    ),
    "RunPolicy.active_deadline_seconds": (
        st.integers(max_value=0) | st.floats() | st.text(max_size=5),
        lambda v: RunPolicy(active_deadline_seconds=v),
    ),
    "RunPolicy.backoff_limit": (not_a_count, lambda v: RunPolicy(backoff_limit=v)),
    "Resources.cpu": (
        st.text(max_size=6).filter(lambda t: not CRD_QUANTITY.match(t.strip()))
        | st.integers(max_value=-1)
        | st.booleans()
        | st.sampled_from([float("nan"), float("inf"), -0.5]),
        lambda v: Resources(cpu=v),
    ),
    "Worker.restart_policy": (
        st.text(max_size=10).filter(
            lambda t: t.strip().lower().replace("-", "_") not in ENUM_SPELLINGS
        )
        | st.integers(),
        lambda v: Worker(restart_policy=v),
    ),
    "RunPolicy.clean_pod_policy": (
        st.text(max_size=10).filter(
            lambda t: t.strip().lower().replace("-", "_") not in ENUM_SPELLINGS
        )
        | st.integers(),
        lambda v: RunPolicy(clean_pod_policy=v),
    ),
    "name": (
        st.text(max_size=70).filter(
            lambda t: not re.fullmatch(r"[a-z]([-a-z0-9]{0,49}[a-z0-9])?", t)
        ),
        lambda v: TfJob().to_manifest(v, "ns", image="i"),
    ),
}


@st.composite
def bad_inputs(draw: st.DrawFn) -> tuple[str, Any, Any]:
    field = draw(st.sampled_from(sorted(BAD)))
    values, build = BAD[field]
    return field, draw(values), build


@settings(max_examples=400, deadline=None)
@given(case=bad_inputs())
def test_every_invalid_value_raises_naming_its_field_before_any_io(
    case: tuple[str, Any, Any],
) -> None:
    field, value, build = case
    with pytest.raises(TFJobSpecError) as info:
        build(value)
    assert info.value.field == field
    assert info.value.allowed


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).parent / "golden").glob("*.json")), ids=lambda p: p.stem
)
def test_golden_manifests_validate_against_the_crd_schema(
    path: Path, validator: jsonschema.protocols.Validator
) -> None:
    validator.validate(json.loads(path.read_text()))


def test_the_schema_validator_rejects_what_the_server_would(
    validator: jsonschema.protocols.Validator,
) -> None:
    manifest = TfJob().to_manifest("mnist", "ml", image="tf")
    manifest["spec"]["tfReplicaSpecs"]["Worker"]["replicas"] = "2"
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(manifest)


def test_the_packaged_schema_is_the_crds() -> None:
    """What the provider checks before submitting is exactly what the server enforces."""
    from airflow_tfjob.model import closed

    crd = yaml.safe_load(CRD.read_text())
    assert closed.tree() == crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_a_template_the_schema_refuses_names_the_field_and_what_it_requires() -> None:
    from airflow_tfjob.model import core

    manifest = TfJob(worker=Worker(replicas=2)).to_manifest("job", "ns", image="tf:2")
    manifest["spec"]["runPolicy"] = None
    with pytest.raises(
        TFJobSpecError,
        match=r"^tfjob_template\.spec\.runPolicy: got None; must be an object \(the TFJob CRD's schema\)$",
    ):
        core.manifest(manifest, "tfjob_template")
    manifest["spec"]["runPolicy"] = {}
    manifest["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["ports"] = "x"
    with pytest.raises(
        TFJobSpecError,
        match=r"containers\[0\]\.ports: got 'x'; must be an array \(the TFJob CRD's schema\)$",
    ):
        core.manifest(manifest, "tfjob_template")
    manifest["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["ports"] = []
    limits = {"cpu": "two"}
    manifest["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0][
        "resources"
    ] = {"limits": limits}
    with pytest.raises(
        TFJobSpecError,
        match=r"resources\.limits\.cpu: got 'two'; must match \^\(\\\+\|-\)\?.* \(the TFJob CRD's schema\)$",
    ):
        core.manifest(manifest, "tfjob_template")
