"""Property: every manifest the model produces, from random valid descriptions that use every
free-form field (tolerations, affinity, env lists, volumes and mounts, pod templates with
sidecars and ports, client models), passes the closed schema, the keyed-list check and the core
rules: the provider itself never writes what it refuses from users."""

from __future__ import annotations

import warnings
from typing import Any

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes.client import V1Toleration

from airflow_tfjob import PS, Chief, Evaluator, RestartPolicy, TfJob, TFJobSpecError, Worker
from airflow_tfjob.model import closed, core

names = st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True)
env_names = st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True).filter(
    lambda n: n != "TF_CONFIG"
)
label_values = st.from_regex(r"([a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?)?", fullmatch=True)

tolerations = st.one_of(
    st.builds(
        dict,
        key=names,
        operator=st.just("Exists"),
        effect=st.sampled_from(["NoSchedule", "PreferNoSchedule", ""]),
    ),
    st.builds(dict, key=names, operator=st.just("Equal"), value=label_values),
    st.builds(
        dict,
        key=names,
        operator=st.just("Exists"),
        effect=st.just("NoExecute"),
        tolerationSeconds=st.integers(0, 3600),
    ),
    st.builds(V1Toleration, key=names, operator=st.just("Exists"), effect=st.just("NoSchedule")),
)
affinity = st.builds(
    lambda key, values: {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": key, "operator": "In", "values": values}]}
                ]
            }
        }
    },
    names,
    st.lists(names, min_size=1, max_size=3),
)


@st.composite
def env_lists(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for name in draw(st.lists(env_names, max_size=4, unique=True)):
        if draw(st.booleans()):
            out.append({"name": name, "value": draw(st.text(max_size=10))})
        else:
            ref = {"secretKeyRef": {"name": draw(names), "key": draw(names)}}
            out.append({"name": name, "valueFrom": ref})
    return out


@st.composite
def storage(draw: st.DrawFn) -> dict[str, Any]:
    volumes = draw(st.lists(names, max_size=3, unique=True))
    paths = draw(st.lists(st.from_regex(r"/[a-z]{1,8}", fullmatch=True), unique=True, max_size=3))
    if not volumes:
        return {"volumes": None} if draw(st.booleans()) else {}
    mounts = [{"name": draw(st.sampled_from(volumes)), "mountPath": path} for path in paths]
    return {
        "volumes": [{"name": v, "emptyDir": {}} for v in volumes],
        "volume_mounts": mounts or None,
    }


@st.composite
def pod_templates(draw: st.DrawFn) -> dict[str, Any] | None:
    if draw(st.booleans()):
        return None
    sidecars = [
        {
            "name": f"side-{name}",
            "image": "busybox:1",
            "ports": [{"containerPort": port, "name": f"p{port}"}],
            "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "200m"}},
        }
        for name, port in zip(
            draw(st.lists(names, max_size=2, unique=True)),
            draw(st.lists(st.integers(3000, 9000), min_size=2, max_size=2, unique=True)),
            strict=False,
        )
    ]
    main: dict[str, Any] = {"name": "tensorflow", "workingDir": "/work"}
    if draw(st.booleans()):
        main["ports"] = draw(
            st.sampled_from(
                [
                    [{"name": "tfjob-port", "containerPort": 3333}],
                    [{"name": "grpc", "containerPort": 2222}],
                    [{"name": "board", "containerPort": 6006}],
                ]
            )
        )
    if draw(st.booleans()):
        main["env"] = [{"name": "FROM_TEMPLATE", "value": "1"}]
    spec: dict[str, Any] = {"containers": [main, *sidecars]}
    if draw(st.booleans()):
        spec["priorityClassName"] = "training"
        spec["tolerations"] = [{"key": "spot", "operator": "Exists"}]
    metadata = {"labels": {"app": draw(names)}} if draw(st.booleans()) else {}
    return {"metadata": metadata, "spec": spec} if metadata else {"spec": spec}


def group(cls: type, max_replicas: int) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {
            "replicas": st.none() | st.integers(0, max_replicas),
            "restart_policy": st.none() | st.sampled_from(list(RestartPolicy)),
            "env": st.none() | env_lists() | st.dictionaries(env_names, st.text(max_size=5)),
            "tolerations": st.none() | st.lists(tolerations, max_size=3),
            "affinity": st.none() | affinity,
            "node_selector": st.none() | st.dictionaries(names, label_values, max_size=2),
            "service_account_name": st.none() | st.sampled_from(["trainer", "trainer.ml"]),
            "storage": storage(),
            "pod_template": pod_templates(),
        }
    ).map(lambda kw: cls(**{k: v for k, v in kw.items() if k != "storage"}, **kw["storage"]))


@st.composite
def jobs(draw: st.DrawFn) -> TfJob | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return TfJob(
                chief=draw(st.none() | group(Chief, 1)),
                ps=draw(st.none() | group(PS, 2)),
                worker=draw(st.none() | group(Worker, 3)),
                evaluator=draw(st.none() | group(Evaluator, 1)),
            )
    except TFJobSpecError as error:
        assert "chief or at least one worker" in str(error), str(error)
        return None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(job=jobs(), operator_env=st.none() | st.dictionaries(env_names, st.text(max_size=5)))
def test_every_manifest_the_model_produces_passes_the_closed_schema_and_keyed_lists(
    job: TfJob | None, operator_env: dict[str, str] | None
) -> None:
    if job is None:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PS without a chief: documented, allowed
        manifest = job.with_defaults(env=operator_env).to_manifest(
            "job", "team-a", image="tf:2", labels={"a": "b"}, annotations={"c": "d"}
        )
    closed.check(manifest, closed.tree(), "manifest")  # closed schema, types, keyed lists
    core.manifest(manifest, "manifest")  # and the core rules
    jsonschema.Draft7Validator(closed.tree()).validate(manifest)  # an independent validator
    for rspec in manifest["spec"]["tfReplicaSpecs"].values():
        (main,) = [c for c in rspec["template"]["spec"]["containers"] if c["name"] == "tensorflow"]
        ports = main.get("ports", [])
        assert sum(p.get("containerPort") == 2222 for p in ports) <= 1
