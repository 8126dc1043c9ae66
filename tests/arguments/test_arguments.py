"""Every argument of TFJobOperator, TFJobSensor and @task.tfjob is checked when the DAG is parsed:
a wrong one raises ``TFJobSpecError`` whose message starts with the argument's name and shows
what is allowed. Templated values (Jinja, XComArgs) pass construction and are checked when the
task runs (tests/operators/test_operator_errors.py, tests/sensors/test_sensor.py)."""

from __future__ import annotations

import datetime
import math
import re
from typing import Any

import pytest
from airflow.sdk import DAG, task

from airflow_tfjob import Chief, RunPolicy, TfJob, TFJobSpecError, Worker
from airflow_tfjob.operators.tfjob import TFJobOperator
from airflow_tfjob.sensors.tfjob import TFJobSensor

NAN, INF = math.nan, math.inf

YAML_POD_LABELLED = """
spec:
  tfReplicaSpecs:
    Worker:
      template:
        metadata: {labels: {airflow-tfjob/run-id: r, app.kubernetes.io/managed-by: helm}}
        spec: {containers: [{name: tensorflow, image: tf:2}]}
"""

OPERATOR_REFUSALS: list[tuple[dict[str, Any], str]] = [
    # name: a DNS-1035 label of at most 51 characters
    ({"name": "MyJob"}, "name: got 'MyJob'; must be a DNS-1035 label"),
    ({"name": "a" * 60}, "name: got 'aaaa.*is 60 characters; at most 51 are allowed"),
    ({"name": ""}, "name: got ''; must be a DNS-1035 label"),
    ({"name": "-job"}, "name: got '-job'; must be a DNS-1035 label"),
    ({"name": "job_1"}, "name: got 'job_1'; must be a DNS-1035 label"),
    ({"name": "1job"}, "name: got '1job'; must be a DNS-1035 label"),
    ({"name": 5}, "name: got 5; must be a DNS-1035 label"),
    # namespace: a DNS-1123 label
    ({"namespace": "ML"}, "namespace: got 'ML'; must be a DNS-1123 label"),
    ({"namespace": ""}, "namespace: got ''; must be a DNS-1123 label"),
    ({"namespace": "a" * 64}, "namespace: got 'aaa.*must be a DNS-1123 label"),
    ({"namespace": "team.ml"}, "namespace: got 'team.ml'; must be a DNS-1123 label"),
    ({"namespace": 7}, "namespace: got 7; must be a DNS-1123 label"),
    # labels and annotations: Kubernetes' rules
    ({"labels": {"bad key!": "x"}}, r"labels\['bad key!'\]: got 'bad key!'; keys must be"),
    ({"labels": {"team": "bad value!"}}, r"labels\['team'\]: got 'bad value!'; label values"),
    ({"labels": {"team": 1}}, r"labels\['team'\]: got 1; keys and values must be strings"),
    ({"labels": {"a/b/c": "x"}}, r"labels\['a/b/c'\]: got 'a/b/c'; the key's prefix"),
    ({"labels": {"Example.COM/x": "y"}}, r"labels\['Example.COM/x'\]: .*prefix"),
    ({"labels": "team=vision"}, "labels: got 'team=vision'; must be a mapping"),
    ({"labels": {"k": "v" * 64}}, r"labels\['k'\]: got 'vvv.*label values must be"),
    ({"annotations": {"bad key!": "x"}}, r"annotations\['bad key!'\]: got 'bad key!'; keys"),
    ({"annotations": {"note": 3}}, r"annotations\['note'\]: got 3; keys and values"),
    ({"annotations": ["note"]}, r"annotations: got \['note'\]; must be a mapping"),
    # numbers of seconds
    ({"startup_timeout_seconds": "600"}, "startup_timeout_seconds: got '600'; must be a positive"),
    ({"startup_timeout_seconds": -1}, "startup_timeout_seconds: got -1; must be a positive"),
    ({"startup_timeout_seconds": 0}, "startup_timeout_seconds: got 0; must be a positive"),
    ({"startup_timeout_seconds": NAN}, "startup_timeout_seconds: got nan; must be a positive"),
    ({"startup_timeout_seconds": True}, "startup_timeout_seconds: got True; must be a positive"),
    ({"poll_interval": 0}, "poll_interval: got 0; must be a positive number of seconds"),
    ({"poll_interval": -1}, "poll_interval: got -1; must be a positive number of seconds"),
    ({"poll_interval": "10"}, "poll_interval: got '10'; must be a positive number of seconds"),
    ({"poll_interval": INF}, "poll_interval: got inf; must be a positive number of seconds"),
    ({"poll_interval": False}, "poll_interval: got False; must be a positive number"),
    # the job
    ({"tfjob_template": 5, "tfjob": None}, "tfjob_template: got 5; must be a TFJob manifest"),
    ({"tfjob_template": ["spec"], "tfjob": None}, r"tfjob_template: got \['spec'\]; must be"),
    ({"tfjob_template": b"spec: {}", "tfjob": None}, "tfjob_template: got b'spec: {}'; must be"),
    ({"tfjob": {"spec": {}}}, "tfjob: got a dict; must be a TfJob"),
    ({"tfjob": "job.yaml"}, "tfjob: got a str; must be a TfJob"),
    ({"tfjob_template": {"spec": {}}}, "tfjob_template: .*give tfjob or tfjob_template, not both"),
    (  # literal YAML text is built and checked like a literal dict
        {"tfjob": None, "tfjob_template": "spec:\n  tfReplicaSpecs:\n    Worker: {replicas: two}"},
        "tfjob_template.spec.tfReplicaSpecs.Worker.replicas: got 'two'",
    ),
    # booleans: "no" is true, so only bools
    ({"get_logs": "no"}, "get_logs: got 'no'; must be True or False"),
    ({"get_logs": 1}, "get_logs: got 1; must be True or False"),
    ({"get_logs": None}, "get_logs: got None; must be True or False"),
    ({"wait_until_finished": "yes"}, "wait_until_finished: got 'yes'; must be True or False"),
    ({"wait_until_finished": 0}, "wait_until_finished: got 0; must be True or False"),
    ({"deferrable": "true"}, "deferrable: got 'true'; must be True or False"),
    ({"deferrable": 1}, "deferrable: got 1; must be True or False"),
    ({"end_from_trigger": "False"}, "end_from_trigger: got 'False'; must be True or False"),
    ({"end_from_trigger": None}, "end_from_trigger: got None; must be True or False"),
    ({"in_cluster": "yes"}, "in_cluster: got 'yes'; must be True, False or None"),
    ({"in_cluster": 1}, "in_cluster: got 1; must be True, False or None"),
    # choices
    ({"on_finish_action": "delete"}, "on_finish_action: got 'delete'; must be one of"),
    ({"on_finish_action": None}, "on_finish_action: got None; must be one of"),
    ({"on_kill_action": "delete_succeeded_tfjob"}, "on_kill_action: got 'delete_succ"),
    ({"backend": "k8s"}, "backend: got 'k8s'; must be one of 'kubernetes', 'local'"),
    ({"backend": 3}, "backend: got 3; must be one of"),
    # the connection
    ({"kubernetes_conn_id": ""}, "kubernetes_conn_id: got ''; must be a non-empty string"),
    ({"kubernetes_conn_id": 5}, "kubernetes_conn_id: got 5; must be a non-empty string"),
    ({"config_file": 5}, "config_file: got 5; must be a file path"),
    ({"config_file": ""}, "config_file: got ''; must be a file path"),
    ({"cluster_context": ""}, "cluster_context: got ''; must be a non-empty string"),
    ({"cluster_context": 5}, "cluster_context: got 5; must be a non-empty string"),
    # the containers' defaults
    ({"image": 5}, "image: got 5; must be a non-empty image reference"),
    ({"image": ""}, "image: got ''; must be a non-empty image reference"),
    ({"image": "  "}, "image: got '  '; must be a non-empty image reference"),
    ({"command": "python x.py"}, "command: got 'python x.py'; must be a list of strings"),
    ({"command": [1]}, r"command: got \[1\]; must be a list of strings"),
    ({"command": {"a": "b"}}, "command: got {'a': 'b'}; must be a list of strings"),
    ({"args": "--epochs 3"}, "args: got '--epochs 3'; must be a list of strings"),
    ({"args": [None]}, r"args: got \[None\]; must be a list of strings"),
    ({"env": {"EPOCHS": 3}}, r"env\['EPOCHS'\]: got an int; keys and values must be strings"),
    ({"env": {"1EPOCHS": "3"}}, r"env\['1EPOCHS'\]: got '1EPOCHS'; must be a valid environ"),
    ({"env": ["EPOCHS=3"]}, r"env: got \['EPOCHS=3'\]; must be a mapping"),
    # the provider's own labels and annotations, and the template's metadata
    ({"labels": {"airflow-tfjob/dag-id": "x"}}, r"labels\['airflow-tfjob/dag-id'\]: .*reserved"),
    ({"annotations": {"airflow-tfjob/run-id": "x"}}, r"annotations\['airflow-tfjob/run-id'.*reser"),
    (
        {"labels": {"app.kubernetes.io/managed-by": "helm"}},
        r"labels\['app.kubernetes.io/managed-by'\]: got 'helm'; is reserved",
    ),
    (
        {"tfjob": None, "name": "job", "tfjob_template": {"metadata": {"name": "other"}}},
        "tfjob_template.metadata.name: got 'other'; differs from the task's name 'job'",
    ),
    (
        {"tfjob": None, "namespace": "team", "tfjob_template": {"metadata": {"namespace": "ml"}}},
        "tfjob_template.metadata.namespace: got 'ml'; differs from the task's namespace 'team'",
    ),
    (
        {"tfjob": None, "tfjob_template": {"metadata": {"generateName": "job-"}}},
        "tfjob_template.metadata.generateName: got 'job-'; is not used",
    ),
    (
        {
            "tfjob": None,
            "labels": {"team": "b"},
            "tfjob_template": {"metadata": {"labels": {"team": "a"}}},
        },
        r"labels\['team'\]: got 'b'; differs from tfjob_template.metadata.labels\['team'\] = 'a'",
    ),
    (
        {"tfjob": None, "tfjob_template": {"metadata": {"labels": {"airflow-tfjob/task-id": "t"}}}},
        r"tfjob_template.metadata.labels\['airflow-tfjob/task-id'\]: got 't'; is reserved",
    ),
    (  # on the pods: the provider labels each replica's pods with the task's identity
        {"tfjob": TfJob(worker=Worker(labels={"airflow-tfjob/dag-id": "mine"}))},
        r"tfReplicaSpecs.Worker.template.metadata.labels\['airflow-tfjob/dag-id'\]: got 'mine'; "
        "is reserved",
    ),
    (
        {"tfjob": None, "tfjob_template": YAML_POD_LABELLED},
        r"tfReplicaSpecs.Worker.template.metadata.labels\['airflow-tfjob/run-id'\]: got 'r'; "
        "is reserved",
    ),
    (
        {"tfjob": None, "tfjob_template": {"metadata": {"labels": {"team": "bad value!"}}}},
        r"tfjob_template.metadata.labels\['team'\]: got 'bad value!'; label values",
    ),
]


YAML_TEMPLATE = """
spec:
  tfReplicaSpecs:
    Worker:
      replicas: 1
      template:
        spec:
          containers:
            - name: tensorflow
"""


def _operator(task_id: str = "train", **arguments: Any) -> TFJobOperator:
    defaults: dict[str, Any] = {"tfjob": TfJob(chief=Chief(), worker=Worker()), "image": "tf:2"}
    template = arguments.get("tfjob_template")
    if isinstance(template, dict) and "spec" not in template:  # only metadata: add a job
        arguments["tfjob_template"] = {**template, **_load(YAML_TEMPLATE)}
    return TFJobOperator(task_id=task_id, **{**defaults, **arguments})


def _load(text: str) -> dict[str, Any]:
    import yaml

    return dict(yaml.safe_load(text))


@pytest.mark.parametrize(
    ("arguments", "message"), OPERATOR_REFUSALS, ids=[str(a) for a, _ in OPERATOR_REFUSALS]
)
def test_a_wrong_operator_argument_fails_the_dag_parse(
    arguments: dict[str, Any], message: str
) -> None:
    with DAG("refusals", schedule=None), pytest.raises(TFJobSpecError) as info:
        _operator(**arguments)
    assert re.match(message, str(info.value)), str(info.value)
    assert type(info.value) is TFJobSpecError  # an import error, not a task's failure
    field = next(iter(arguments)) if "tfjob" not in arguments else str(info.value.field)
    assert info.value.field.startswith(field)


SENSOR_REFUSALS: list[tuple[dict[str, Any], str]] = [
    ({"tfjob_name": "MyJob"}, "tfjob_name: got 'MyJob'; must be a DNS-1035 label"),
    ({"tfjob_name": ""}, "tfjob_name: got ''; must be a DNS-1035 label"),
    ({"tfjob_name": None}, "tfjob_name: got None; must be a DNS-1035 label"),
    ({"tfjob_name": 5}, "tfjob_name: got 5; must be a DNS-1035 label"),
    ({"tfjob_name": "j" * 64}, "tfjob_name: got 'jjj.*must be a DNS-1035 label"),
    ({"tfjob_name": "job.v1"}, "tfjob_name: got 'job.v1'; must be a DNS-1035 label"),
    ({"namespace": "ML"}, "namespace: got 'ML'; must be a DNS-1123 label"),
    ({"namespace": 5}, "namespace: got 5; must be a DNS-1123 label"),
    ({"target_state": "Done"}, "target_state: got 'Done'; must be one of 'Pending', 'Created'"),
    ({"target_state": ""}, "target_state: got ''; must be one of"),
    ({"target_state": None}, "target_state: got None; must be one of"),
    ({"target_state": 5}, "target_state: got 5; must be one of"),
    ({"fail_on": "Failed"}, "fail_on: got 'Failed'; must be a list of phases, e.g. \\['Failed'\\]"),
    ({"fail_on": ["Done"]}, r"fail_on\[0\]: got 'Done'; must be one of"),
    ({"fail_on": ["Failed", 5]}, r"fail_on\[1\]: got 5; must be one of"),
    ({"fail_on": 5}, "fail_on: got 5; must be a list of phases"),
    ({"fail_on": ["Succeeded"]}, r"target_state: got 'Succeeded'; is also in fail_on"),
    ({"missing_grace_seconds": -1}, "missing_grace_seconds: got -1; must be a number of seconds"),
    ({"missing_grace_seconds": "60"}, "missing_grace_seconds: got '60'; must be a number"),
    ({"missing_grace_seconds": NAN}, "missing_grace_seconds: got nan; must be a number"),
    ({"missing_grace_seconds": None}, "missing_grace_seconds: got None; must be a number"),
    ({"deferrable": "yes"}, "deferrable: got 'yes'; must be True or False"),
    ({"end_from_trigger": 1}, "end_from_trigger: got 1; must be True or False"),
    ({"in_cluster": "no"}, "in_cluster: got 'no'; must be True, False or None"),
    ({"kubernetes_conn_id": ""}, "kubernetes_conn_id: got ''; must be a non-empty string"),
    ({"config_file": 3}, "config_file: got 3; must be a file path"),
    ({"cluster_context": 3}, "cluster_context: got 3; must be a non-empty string"),
]


@pytest.mark.parametrize(
    ("arguments", "message"), SENSOR_REFUSALS, ids=[str(a) for a, _ in SENSOR_REFUSALS]
)
def test_a_wrong_sensor_argument_fails_the_dag_parse(
    arguments: dict[str, Any], message: str
) -> None:
    with DAG("refusals", schedule=None), pytest.raises(TFJobSpecError) as info:
        TFJobSensor(task_id="wait", **{"tfjob_name": "job", **arguments})
    assert re.match(message, str(info.value)), str(info.value)
    assert info.value.field.startswith(next(iter(arguments)).replace("fail_on", "")) or (
        info.value.field == "target_state"
    )


DECORATOR_REFUSALS: list[tuple[dict[str, Any], str]] = [
    ({"task_config": {"worker": 1}}, "task_config: got a dict; must be a TfJob"),
    ({"task_config": "TfJob()"}, "task_config: got a str; must be a TfJob"),
    ({"use_pickle": "yes"}, "use_pickle: got 'yes'; must be True or False"),
    ({"use_pickle": 1}, "use_pickle: got 1; must be True or False"),
    ({"ps_handled": "no"}, "ps_handled: got 'no'; must be True or False"),
    ({"output_uri": ""}, "output_uri: got ''; must be a non-empty string"),
    ({"output_uri": 5}, "output_uri: got 5; must be a non-empty string"),
    # the operator's own, through the decorator
    ({"name": "MyJob"}, "name: got 'MyJob'; must be a DNS-1035 label"),
    ({"namespace": "ML"}, "namespace: got 'ML'; must be a DNS-1123 label"),
    ({"labels": {"bad key!": "x"}}, r"labels\['bad key!'\]: got 'bad key!'"),
    ({"get_logs": "no"}, "get_logs: got 'no'; must be True or False"),
    ({"startup_timeout_seconds": "600"}, "startup_timeout_seconds: got '600'"),
    ({"deferrable": "yes"}, "deferrable: got 'yes'; must be True or False"),
    ({"on_finish_action": "keep"}, "on_finish_action: got 'keep'; must be one of"),
    # what @task.tfjob sets on every replica itself
    ({"env": {"AIRFLOW_TFJOB_PAYLOAD": "x"}}, r"env\['AIRFLOW_TFJOB_PAYLOAD'\]: .*is set by @task"),
    (
        {"task_config": TfJob(worker=Worker(env={"AIRFLOW_TFJOB_RUNTIME": "x"}))},
        r"Worker.env\['AIRFLOW_TFJOB_RUNTIME'\]: got 'AIRFLOW_TFJOB_RUNTIME'; is set by @task",
    ),
]


@pytest.mark.parametrize(
    ("arguments", "message"), DECORATOR_REFUSALS, ids=[str(a) for a, _ in DECORATOR_REFUSALS]
)
def test_a_wrong_decorator_argument_fails_the_dag_parse(
    arguments: dict[str, Any], message: str
) -> None:
    with DAG("refusals", schedule=None):

        @task.tfjob(image="tf:2", **arguments)
        def train() -> int:
            return 1

        with pytest.raises(TFJobSpecError) as info:
            train()
    assert re.match(message, str(info.value)), str(info.value)
    first = next(iter(arguments))
    assert info.value.field.startswith(first) or info.value.field.startswith("Worker.env")


def test_a_function_argument_that_is_not_json_fails_the_dag_parse() -> None:
    with DAG("refusals", schedule=None):

        @task.tfjob(image="tf:2")
        def train(when: Any, data: str) -> int:
            return 1

        with pytest.raises(TFJobSpecError) as info:
            train(datetime.datetime(2026, 1, 1), data="{{ params.data }}")
        assert str(info.value).startswith(
            "arguments of train(): got datetime.datetime(2026, 1, 1, 0, 0); must be JSON data "
            "(or set use_pickle=True)"
        )
        train("2026-01-01", data="{{ params.data }}")  # Jinja is rendered (and checked) later

        @task.tfjob(image="tf:2", use_pickle=True)
        def pickled(when: Any) -> int:
            return 1

        pickled(datetime.datetime(2026, 1, 1))  # with use_pickle it travels as it is


def test_templated_and_upstream_values_pass_construction_and_wait_for_rendering() -> None:
    with DAG("deferred", schedule=None):

        @task
        def upstream() -> str:
            return "job"

        operator = _operator(
            name="{{ params.name }}",
            namespace="{{ params.namespace }}",
            labels={"team": "{{ params.team }}", "{{ params.key }}": "x"},
            annotations="{{ params.annotations }}",
            image="{{ params.image }}",
            command=["python", "{{ params.script }}"],
            env={"DATA": "{{ ds }}"},
            cluster_context="{{ params.context }}",
            tfjob=None,
            tfjob_template="job.yaml",  # a file Airflow reads when the task runs
        )
        assert operator.name == "{{ params.name }}"
        sensor = TFJobSensor(
            task_id="wait",
            tfjob_name=upstream(),  # an XComArg
            namespace="{{ params.namespace }}",
            target_state="succeeded",
            fail_on=["failed", "suspended"],
        )
    # phases are accepted case-insensitively and kept in the TFJob's spelling
    assert sensor.target_state == "Succeeded"
    assert sensor.fail_on == ("Failed", "Suspended")


def test_the_defaults_and_every_valid_spelling_are_accepted() -> None:
    with DAG("accepted", schedule=None):
        _operator()
        _operator(
            "every",
            name="j" * 51,
            namespace="n" * 63,
            labels={"example.com/team": "vision", "empty": ""},
            annotations={"example.com/note": "any text: at all!"},
            startup_timeout_seconds=None,
            poll_interval=0.5,
            get_logs=False,
            deferrable=True,
            end_from_trigger=False,
            in_cluster=False,
            kubernetes_conn_id=None,
            config_file=__import__("pathlib").Path("/etc/kube/config"),
            cluster_context="prod",
            on_finish_action="keep_tfjob",
            on_kill_action="keep_tfjob",
            env={"EPOCHS": "3"},
        )
        _operator(
            "yaml", tfjob=None, tfjob_template=YAML_TEMPLATE
        )  # literal YAML: built and checked
        TFJobSensor(task_id="wait", tfjob_name="j" * 63, missing_grace_seconds=0)


def test_the_templates_name_and_namespace_are_the_jobs_when_the_task_gives_none() -> None:
    from airflow_tfjob.operators import _build

    with DAG("metadata", schedule=None):
        template = {"metadata": {"name": "nightly", "namespace": "ml", "labels": {"team": "a"}}}
        op = _operator(tfjob=None, labels={"team": "a", "run": "b"}, tfjob_template=template)
    manifest, _ = op.build_manifest(_build.PARSE_CONTEXT, "from-connection")  # type: ignore[arg-type]
    meta = manifest["metadata"]
    assert (meta["name"], meta["namespace"]) == ("nightly", "ml")
    assert {k: v for k, v in meta["labels"].items() if "/" not in k} == {"team": "a", "run": "b"}
    assert meta["labels"]["airflow-tfjob/task-id"] == "parse-check"
    with DAG("metadata2", schedule=None):
        bare = _operator(tfjob=None, tfjob_template={"metadata": {}})
    manifest, _ = bare.build_manifest(_build.PARSE_CONTEXT, "from-connection")  # type: ignore[arg-type]
    assert manifest["metadata"]["namespace"] == "from-connection"


def test_a_task_with_an_execution_timeout_submits_a_job_with_a_backstop_deadline() -> None:
    from airflow_tfjob.operators import _build

    timeout = {"execution_timeout": datetime.timedelta(minutes=30, seconds=0.5)}
    with DAG("backstop", schedule=None):
        backstopped = _operator("a", **timeout)
        own = _operator("b", tfjob=TfJob(chief=Chief(), run_policy=RunPolicy(
            active_deadline_seconds=600)), **timeout)  # fmt: skip
        opted_out = _operator("c", deadline_backstop=False, **timeout)
        untimed = _operator("d")
        templated = _operator("e", tfjob=None, tfjob_template=_load(YAML_TEMPLATE), **timeout)

    def deadline(op: TFJobOperator) -> object:
        manifest, _ = op.build_manifest(_build.PARSE_CONTEXT)  # type: ignore[arg-type]
        return (manifest["spec"].get("runPolicy") or {}).get("activeDeadlineSeconds")

    assert deadline(backstopped) == 1801 + 60  # the timeout, rounded up, and a minute
    assert deadline(own) == 600  # the job's own deadline wins
    assert deadline(opted_out) is None
    assert deadline(untimed) is None
    assert deadline(templated) == 1861
    with pytest.raises(TFJobSpecError, match="deadline_backstop"):
        _operator("f", deadline_backstop="yes")


def test_the_jobs_say_which_deployment_made_them_and_what_outlives_its_task_on_purpose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow_tfjob.operators import _build

    monkeypatch.setenv("AIRFLOW__TFJOB__DEPLOYMENT", "ml-prod")
    with DAG("deployment", schedule=None):
        plain = _operator("a")
        handed = _operator("b", wait_until_finished=False, on_kill_action="keep_tfjob")
    meta, _ = plain.build_manifest(_build.PARSE_CONTEXT)  # type: ignore[arg-type]
    assert meta["metadata"]["labels"]["airflow-tfjob/deployment"] == "ml-prod"
    assert "airflow-tfjob/handed-off" not in meta["metadata"]["annotations"]
    other, _ = handed.build_manifest(_build.PARSE_CONTEXT)  # type: ignore[arg-type]
    notes = other["metadata"]["annotations"]
    assert notes["airflow-tfjob/handed-off"] == "true"
    assert notes["airflow-tfjob/on-kill-action"] == "keep_tfjob"
    monkeypatch.delenv("AIRFLOW__TFJOB__DEPLOYMENT")
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/ml/")
    again, _ = plain.build_manifest(_build.PARSE_CONTEXT)  # type: ignore[arg-type]
    assert again["metadata"]["labels"]["airflow-tfjob/deployment"] == "airflow.example.com"
