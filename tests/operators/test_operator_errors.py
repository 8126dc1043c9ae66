"""What users see when the cluster misbehaves or refuses: faults survived, errors explained."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from airflow_tfjob.hooks.tfjob import TFJobHook
from airflow_tfjob.operators.tfjob import TFJobOperator
from tests.airflow_fixtures import operator_body, task_instance, write_dag
from tests.cluster.cluster import Cluster
from tests.faults.proxy import FaultProxy
from tests.kubelet.fates import Fate, Script

CRD = Path(__file__).parents[1] / "data" / "kubeflow.org_tfjobs.yaml"


def test_503_bursts_and_cut_watch_streams_are_survived(
    run_dag: Callable[..., Any], replicas: Script, namespace: str, fault_proxy: FaultProxy
) -> None:
    replicas.set_default_fate("Chief", Fate(duration=4.0, message="done"))
    create = fault_proxy.fail(r"/tfjobs", status=503, times=3, method="POST")
    throttled = fault_proxy.throttle(r"/tfjobs/", retry_after=1, times=2, method="GET", watch=False)
    cut = fault_proxy.cut_watch(r"/tfjobs", after_seconds=0.5, times=4)
    dropped = fault_proxy.drop(r"/pods", times=2, watch=True)
    dagrun = run_dag(
        operator_body(on_finish_action="keep_tfjob"),
        namespace=namespace,
        kubeconfig=str(fault_proxy.kubeconfig),
    )
    ti = task_instance(dagrun, "train")
    assert ti.state == "success"
    assert ti.xcom_pull(task_ids="train")["output"] == "done"
    assert create.hits == 3 and cut.hits >= 2 and dropped.hits == 2
    assert throttled.hits <= 2
    assert fault_proxy.requests(r"/tfjobs$", method="POST") == 4  # three refused, one created
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(fault_proxy.kubeconfig))
    assert len(hook.list_jobs(namespace)[0]) == 1


def test_a_410_during_the_wait_relists_and_goes_on(
    run_dag: Callable[..., Any], replicas: Script, namespace: str, fault_proxy: FaultProxy
) -> None:
    replicas.set_default_fate("Chief", Fate(duration=3.0))
    gone = fault_proxy.gone(r"/tfjobs", times=2)
    dagrun = run_dag(
        operator_body(on_finish_action="keep_tfjob"),
        namespace=namespace,
        kubeconfig=str(fault_proxy.kubeconfig),
    )
    assert task_instance(dagrun, "train").state == "success"
    assert gone.hits == 2


RETRIES = "retries=3, retry_delay=datetime.timedelta(seconds=1),"
"""A task that would be retried three times, a second apart, if its error were retryable."""


def _failed_at_once(dagrun: Any) -> None:
    ti = task_instance(dagrun, "train")
    assert (ti.state, ti.try_number) == ("failed", 1)  # not up_for_retry, not a second try


def test_a_missing_crd_says_the_training_operator_is_not_deployed(
    run_dag: Callable[..., Any], bare_cluster: Cluster, capfd: pytest.CaptureFixture[str]
) -> None:
    dagrun = run_dag(
        operator_body(RETRIES, on_finish_action="keep_tfjob"),
        namespace="default",
        kubeconfig=str(bare_cluster.kubeconfig),
    )
    _failed_at_once(dagrun)  # a retry cannot install the training operator
    out = capfd.readouterr().out
    assert "the TFJob CRD is not installed" in out
    assert "is the Kubeflow training operator deployed on this cluster?" in out


def test_an_untrusted_server_certificate_fails_the_task_at_once(
    run_dag: Callable[..., Any],
    kubeconfig: Path,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from tests.hooks.test_tfjob_hooks import _kubeconfig_trusting
    from tests.kubelet import certs

    stranger = certs.self_signed(tmp_path, "stranger")  # a CA that did not sign the server's
    config = _kubeconfig_trusting(kubeconfig, stranger.cert, tmp_path)
    dagrun = run_dag(operator_body(RETRIES), namespace="default", kubeconfig=str(config))
    _failed_at_once(dagrun)  # a retry meets the same certificate
    out = capfd.readouterr().out
    assert (
        "TFJobTLSError: TLS with the API server failed (certificate verify failed: unable to get "
        "local issuer certificate): check the kubeconfig's certificate-authority"
    ) in out


def test_forbidden_names_verb_resource_and_user(
    run_dag: Callable[..., Any], kube_cluster: Cluster, capfd: pytest.CaptureFixture[str]
) -> None:
    config = str(kube_cluster.kubeconfig_for("restricted"))
    dagrun = run_dag(
        operator_body(RETRIES, on_finish_action="keep_tfjob"),
        namespace="default",
        kubeconfig=config,
    )
    _failed_at_once(dagrun)  # a retry cannot grant the permissions
    out = capfd.readouterr().out
    assert "forbidden: this kubeconfig's identity may not create tfjobs.kubeflow.org, " in out
    assert "get pods/log in namespace 'default'" in out and "nothing was submitted" in out
    assert kube_cluster.tokens["restricted"] not in out


def test_a_template_the_crd_schema_refuses_fails_before_anything_is_sent(
    run_dag: Callable[..., Any],
    namespace: str,
    fault_proxy: FaultProxy,
    capfd: pytest.CaptureFixture[str],
) -> None:
    body = """
    TFJobOperator(task_id="train", tfjob_template="{{ params.template | tojson }}",
                  params={"template": TEMPLATE}, image="tf:2", namespace=NAMESPACE,
                  kubernetes_conn_id=None, config_file=KUBECONFIG,
                  retries=3, retry_delay=datetime.timedelta(seconds=1))
    """  # templated: checked when rendered (a literal dict is refused when the DAG is parsed)
    template = {
        "spec": {
            "runPolicy": {"backoffLimit": "three"},
            "tfReplicaSpecs": {
                "Worker": {
                    "replicas": 1,
                    "template": {"spec": {"containers": [{"name": "tensorflow"}]}},
                }
            },
        }
    }
    kubeconfig = str(fault_proxy.kubeconfig)
    dagrun = run_dag(body, namespace=namespace, kubeconfig=kubeconfig, template=template)
    _failed_at_once(dagrun)
    out = capfd.readouterr().out
    assert (
        "TFJobSpecError: tfjob_template.spec.runPolicy.backoffLimit: got 'three'; "
        "must be an integer (the TFJob CRD's schema)"
    ) in out
    assert fault_proxy.requests(r"/tfjobs") == 0  # nothing was sent, not even a read


@pytest.mark.parametrize(
    ("templated", "value", "message"),
    [
        ('name="{{ params.value }}"', "MyJob", "name: got 'MyJob'; must be a DNS-1035 label"),
        ('name="{{ params.value }}"', "a" * 60, "name: got 'aaaa"),
        ('namespace="{{ params.value }}"', "ML", "namespace: got 'ML'; must be a DNS-1123 label"),
        ('labels={"team": "{{ params.value }}"}', "a b", "labels['team']: got 'a b'; label values"),
        ('image="{{ params.value }}"', "", "image: got ''; must be a non-empty image reference"),
    ],
    ids=["name", "long-name", "namespace", "label", "image"],
)
def test_a_templated_argument_that_renders_invalid_fails_at_once_and_sends_nothing(
    run_dag: Callable[..., Any],
    namespace: str,
    fault_proxy: FaultProxy,
    capfd: pytest.CaptureFixture[str],
    templated: str,
    value: str,
    message: str,
) -> None:
    # Jinja passes the DAG parse; rendered, the value is checked before any API call, and a
    # retry would render it the same: the task fails on its first try, without retries
    arguments = {"namespace": "NAMESPACE", "image": '"tf:2"'}
    key, value_code = templated.split("=", 1)
    arguments[key] = value_code
    body = f"""
    TFJobOperator(task_id="train", tfjob=TfJob(chief=Chief(), worker=Worker()),
                  kubernetes_conn_id=None, config_file=KUBECONFIG, params={{"value": VALUE}},
                  {", ".join(f"{k}={v}" for k, v in arguments.items())}, {RETRIES})
    """
    dagrun = run_dag(body, namespace=namespace, kubeconfig=str(fault_proxy.kubeconfig), value=value)
    _failed_at_once(dagrun)
    assert f"TFJobSpecFailure: {message}" in capfd.readouterr().out
    assert fault_proxy.requests("") == 0  # not even a permission check


def test_a_mapped_value_that_is_invalid_fails_its_map_index_at_once_and_sends_nothing(
    run_dag: Callable[..., Any],
    namespace: str,
    fault_proxy: FaultProxy,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # .expand() values reach the operator's constructor only when the task runs: the check
    # there fails that map index on its first try, like a rendered template
    body = f"""
    TFJobOperator.partial(task_id="train", tfjob=TfJob(worker=Worker()), image="tf:2",
                          namespace=NAMESPACE, kubernetes_conn_id=None, config_file=KUBECONFIG,
                          {RETRIES}).expand(labels=[{{"team": "a b"}}])
    """
    dagrun = run_dag(body, namespace=namespace, kubeconfig=str(fault_proxy.kubeconfig))
    (ti,) = dagrun.get_task_instances()
    assert (ti.map_index, ti.state, ti.try_number) == (0, "failed", 1)
    assert "TFJobSpecFailure: labels['team']: got 'a b'; label values" in capfd.readouterr().out
    assert fault_proxy.requests("") == 0


def test_a_literal_template_the_crd_schema_refuses_fails_the_dag_parse() -> None:
    from airflow.sdk import DAG

    from airflow_tfjob import TFJobSpecError

    template = {"spec": {"tfReplicaSpecs": {"Worker": {"replicas": "two", "template": {}}}}}
    with (
        DAG("literal", schedule=None),
        pytest.raises(
            TFJobSpecError,
            match=r"^tfjob_template\.spec\.tfReplicaSpecs\.Worker\.replicas: got 'two'",
        ),
    ):
        TFJobOperator(task_id="train", tfjob_template=template, image="tf:2")


def test_the_servers_422_field_errors_reach_the_task_log(
    run_dag: Callable[..., Any], namespace: str, kubeconfig: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # Only the API server checks a template's finalizer names (apimachinery's
    # ValidateFinalizers; the parse-time checks take ObjectMeta's fields as they come): a genuine
    # 422 for the path that relays the server's field errors. Should the model learn that
    # rule, pick another input only the server refuses.
    body = """
    TFJobOperator(task_id="train", tfjob_template=TEMPLATE, image="tf:2",
                  namespace=NAMESPACE, kubernetes_conn_id=None, config_file=KUBECONFIG,
                  retries=3, retry_delay=datetime.timedelta(seconds=1))
    """
    template = {
        "metadata": {"finalizers": ["example.com/not a finalizer!"]},
        "spec": {
            "tfReplicaSpecs": {
                "Worker": {"template": {"spec": {"containers": [{"name": "tensorflow"}]}}}
            }
        },
    }
    dagrun = run_dag(body, namespace=namespace, kubeconfig=str(kubeconfig), template=template)
    _failed_at_once(dagrun)  # the same object would be rejected the same way
    out = capfd.readouterr().out
    assert "TFJobInvalid: the API server rejected tfjobs.kubeflow.org" in out
    assert 'metadata.finalizers: Invalid value: "example.com/not a finalizer!"' in out
    assert (
        TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig)).list_jobs(namespace)[0]
        == []
    )


def test_a_templated_yaml_file_is_rendered_and_submitted(
    run_dag: Callable[..., Any],
    airflow_db: Path,
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
) -> None:
    (airflow_db / "job.yaml").write_text(
        "apiVersion: kubeflow.org/v1\nkind: TFJob\nspec:\n  tfReplicaSpecs:\n    Worker:\n"
        "      replicas: {{ params.workers }}\n      restartPolicy: OnFailure\n      template:\n"
        "        spec:\n          containers:\n            - name: tensorflow\n"
        "              args: ['--run', '{{ run_id }}']\n"
    )
    body = """
    TFJobOperator(task_id="train", tfjob_template="job.yaml", params={"workers": 3}, image="tf:2",
                  namespace=NAMESPACE, kubernetes_conn_id=None, config_file=KUBECONFIG, poll_interval=1,
                  on_finish_action="keep_tfjob")
    """
    dagrun = run_dag(body, namespace=namespace, kubeconfig=str(kubeconfig))
    ti = task_instance(dagrun, "train")
    assert ti.state == "success"
    job = TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig)).get(
        ti.xcom_pull(task_ids="train")["name"], namespace
    )
    worker = job["spec"]["tfReplicaSpecs"]["Worker"]
    assert worker["replicas"] == 3 and worker["restartPolicy"] == "OnFailure"
    container = worker["template"]["spec"]["containers"][0]
    assert container["args"] == ["--run", dagrun.run_id] and container["image"] == "tf:2"


def test_the_dry_run_prints_yaml_that_validates_against_the_crd(airflow_db: Path) -> None:
    _, path = write_dag(
        airflow_db,
        operator_body(on_finish_action="keep_tfjob", labels={"team": "vision"}),
        namespace="ml",
        kubeconfig="/nowhere",
    )
    out = subprocess.run(
        [sys.executable, "-m", "airflow_tfjob", "render", str(path), "train"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    manifest = yaml.safe_load(out)
    schema = yaml.safe_load(CRD.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    jsonschema.Draft7Validator(schema).validate(manifest)
    assert manifest["metadata"]["namespace"] == "ml"
    assert manifest["metadata"]["labels"]["team"] == "vision"
    assert set(manifest["spec"]["tfReplicaSpecs"]) == {"Chief", "Worker"}
    assert json.dumps(manifest)  # plain data
