"""The bad-input campaign: hypothesis-generated operator arguments, job models, templates and YAML.

Each example is built as a DAG author would write it, inside a DAG (parse time), then rendered as
``execute`` would render it. Either it is refused with a documented error type, naming the field,
and the fault proxy saw no request; or it is accepted, and then the real API server (the TFJob
CRD's schema) must accept it too: an invalid spec must never reach the API.
"""

from __future__ import annotations

import copy
import types
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from airflow_tfjob import (
    PS,
    Chief,
    Evaluator,
    RunPolicy,
    TfJob,
    TFJobSpecError,
    TFJobSpecWarning,
    Worker,
    errors,
)
from airflow_tfjob.hooks.tfjob import TFJobHook
from tests.faults.proxy import FaultProxy

INJECTIONS = [
    "$(rm -rf /)", "'; DROP TABLE jobs; --", "{{ 7 * 7 }}", "../../etc/passwd", "a\nb", "nul\x00",
    "é" * 70, "x" * 5000, "${HOME}", "`id`", "<script>alert(1)</script>", "kubeflow.org/v1", "",
    " ", "-lead", "trail-", "UPPER", "a" * 64, "ünïcödé", "🚀", "1e9", "-1", "0x10", "null",
]  # fmt: skip
text = st.one_of(st.text(max_size=30), st.sampled_from(INJECTIONS))
wild: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    text,
    st.lists(text, max_size=3),
    st.dictionaries(text, text | st.integers(), max_size=3),
)
names = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True)
quantities = st.sampled_from(["1", "500m", "2Gi", "1e3", "0.5"]) | st.integers(0, 64)


def maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly valid, sometimes wild: enough good examples get past parse to reach the server."""
    return st.one_of(valid, valid, wild)


def rarely(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Wild about one time in ten: every operator argument is checked when the task is built, so
    with a dozen of them each wild a third of the time hardly any example would reach the
    server."""
    return st.integers(0, 9).flatmap(lambda i: wild if i == 7 else valid)


def group_kwargs() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "replicas": maybe(st.integers(0, 3)),
            "image": maybe(st.sampled_from(["tf:2", "registry.example/train:1"])),
            "requests": maybe(st.dictionaries(st.sampled_from(["cpu", "memory"]), quantities)),
            "limits": maybe(st.dictionaries(st.sampled_from(["cpu", "memory"]), quantities)),
            "restart_policy": maybe(st.sampled_from(["Never", "OnFailure", "ExitCode", "Always"])),
            "command": maybe(st.lists(st.sampled_from(["python", "-c", "pass"]), max_size=3)),
            "args": maybe(st.lists(text, max_size=2)),
            "env": maybe(
                st.dictionaries(
                    st.from_regex(r"[A-Z_][A-Z0-9_]{0,6}", fullmatch=True), text, max_size=2
                )
            ),
            "node_selector": maybe(st.dictionaries(names, names, max_size=2)),
            "labels": maybe(st.dictionaries(names, names, max_size=2)),
            "service_account_name": maybe(names),
        },
    )


def run_policy_kwargs() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "clean_pod_policy": maybe(st.sampled_from(["None", "Running", "All"])),
            "ttl_seconds_after_finished": maybe(st.integers(0, 10**6)),
            "active_deadline_seconds": maybe(st.integers(1, 10**6)),
            "backoff_limit": maybe(st.integers(0, 10)),
        },
    )


def operator_kwargs() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "image": rarely(st.just("tf:2")),
            "command": rarely(st.just(["python", "train.py"])),
            "args": rarely(st.lists(text, max_size=2)),
            "env": rarely(st.dictionaries(st.sampled_from(["A", "B_1"]), text, max_size=2)),
            "labels": rarely(st.dictionaries(names, names, max_size=2)),
            "annotations": rarely(st.dictionaries(names, text, max_size=2)),
            "name": rarely(names),
            "poll_interval": rarely(st.floats(0.1, 60)),
            "on_finish_action": rarely(st.sampled_from(["delete_tfjob", "keep_tfjob"])),
            "on_kill_action": rarely(st.sampled_from(["delete_tfjob", "keep_tfjob"])),
            "startup_timeout_seconds": rarely(st.floats(1, 1000)),
            "get_logs": rarely(st.booleans()),
            "deferrable": rarely(st.booleans()),
        },
    )


GROUPS = {"chief": Chief, "worker": Worker, "ps": PS, "evaluator": Evaluator}
VALID_MANIFEST = TfJob(chief=Chief(), worker=Worker(replicas=2)).to_manifest(
    "template", "default", image="tf:2"
)
# the task names the job and its namespace: a template saying otherwise is refused, not overwritten
del VALID_MANIFEST["metadata"]["name"], VALID_MANIFEST["metadata"]["namespace"]


@st.composite
def templates(draw: st.DrawFn) -> Any:
    """A mangled TFJob manifest (as a dict or as YAML text), or random YAML."""
    manifest = copy.deepcopy(VALID_MANIFEST)
    spec = manifest["spec"]["tfReplicaSpecs"]["Worker"]
    container = spec["template"]["spec"]["containers"][0]
    target = draw(st.sampled_from([manifest, manifest["spec"], spec, container]))
    key = draw(st.sampled_from([*sorted(target), "extra", "replicas", "image", "restartPolicy"]))
    if draw(st.booleans()):
        target.pop(key, None)
    else:
        target[key] = draw(wild)
    form = draw(st.sampled_from(["dict", "yaml", "junk"]))
    if form == "dict":
        return manifest
    if form == "yaml":
        return yaml.safe_dump(manifest)
    return draw(st.one_of(text, st.just("a: [b"), st.just("- 1\n- 2"), st.just("{{ bad")))


@pytest.fixture(scope="module")
def bad_input_proxy(
    kube_cluster: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FaultProxy]:
    proxy = FaultProxy.for_cluster(kube_cluster, workdir=tmp_path_factory.mktemp("bad-proxy"))
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


CONTEXT = {
    "ti": types.SimpleNamespace(dag_id="bad_input", task_id="train", map_index=-1, try_number=1),
    "run_id": "manual__2026-11-28T00:00:00+00:00",
}
COUNTS = {"refused": 0, "accepted": 0}


def _attempt(proxy: FaultProxy, namespace: str, build: Any) -> None:
    """Build (parse time) and render (run time) one example; submit it when accepted."""
    from airflow.sdk import DAG

    from airflow_tfjob.operators.tfjob import TFJobOperator

    before = proxy.requests()
    try:
        with DAG("bad_input", schedule=None), warnings.catch_warnings():
            warnings.simplefilter("ignore", TFJobSpecWarning)  # documented: valid, maybe wrong
            kwargs = build()
            op = TFJobOperator(task_id="train", namespace=namespace, kubernetes_conn_id=None,
                               config_file=str(proxy.kubeconfig), **kwargs)  # fmt: skip
        manifest, _ = op.build_manifest(CONTEXT, namespace)
    except TFJobSpecError as exc:
        assert exc.field and str(exc).startswith(f"{exc.field}: got "), str(exc)
        assert proxy.requests() == before, "a refused input made an API call"
        COUNTS["refused"] += 1
        return
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(proxy.kubeconfig))
    try:
        created = hook.create(manifest)
    except errors.TFJobUnavailable:
        reject()  # the API server did not answer (a loaded machine): says nothing of the spec
    except errors.TFJobInvalid as exc:
        pytest.fail(f"accepted at parse time, refused by the API server: {exc}\n{manifest}")
    meta = created["metadata"]
    hook.delete(meta["name"], namespace, uid=meta["uid"], propagation="Background")
    COUNTS["accepted"] += 1


SETTINGS = settings(
    max_examples=int(__import__("os").environ.get("BAD_INPUT_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)


@SETTINGS
@given(
    groups=st.dictionaries(st.sampled_from(sorted(GROUPS)), group_kwargs(), min_size=1, max_size=3),
    policy=st.none() | run_policy_kwargs(),
    op=operator_kwargs(),
)
def test_bad_job_models_and_arguments_are_refused_before_any_api_call(
    bad_input_proxy: FaultProxy, namespace: str, groups: Any, policy: Any, op: Any
) -> None:
    def build() -> dict[str, Any]:
        job = TfJob(
            **{k: GROUPS[k](**v) for k, v in groups.items()},
            **({"run_policy": RunPolicy(**policy)} if policy is not None else {}),
        )
        return {"tfjob": job, **op}

    _attempt(bad_input_proxy, namespace, build)


@SETTINGS
@given(template=templates(), op=operator_kwargs())
def test_bad_templates_and_yaml_are_refused_before_any_api_call(
    bad_input_proxy: FaultProxy, namespace: str, template: Any, op: Any
) -> None:
    _attempt(bad_input_proxy, namespace, lambda: {"tfjob_template": template, **op})


@pytest.mark.slow  # it reads what the (slow) tests above counted
def test_the_bad_input_campaign_reached_both_outcomes() -> None:
    """Guards the generators: both tests above must have seen refusals and acceptances."""
    assert COUNTS["refused"] > 20 and COUNTS["accepted"] > 20, COUNTS
