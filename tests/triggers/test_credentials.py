"""No credential of the kubeconfig — its bearer token, its client key — appears in any repr or
str of a provider object, in any line a deferred dag.test() run logs, in its XComs, or in an
error's message.

The kubeconfig is the test cluster's admin identity (its token) plus a client certificate signed
by the cluster's CA (its key, made here with openssl): both are accepted by the API server."""

from __future__ import annotations

import asyncio
import base64
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_tfjob import Chief, TfJob
from airflow_tfjob.backends.kubernetes.follower import JobFollower, settings_key
from airflow_tfjob.backends.kubernetes.request import RunRequest
from airflow_tfjob.backends.kubernetes.run import KubernetesRun
from airflow_tfjob.errors import TFJobError
from airflow_tfjob.hooks.tfjob import AsyncTFJobHook, TFJobHook
from airflow_tfjob.operators.tfjob import TFJobOperator
from airflow_tfjob.rules.follow import Limits
from airflow_tfjob.rules.jobref import JobRef
from airflow_tfjob.sensors.tfjob import TFJobSensor
from airflow_tfjob.triggers.tfjob import TFJobTrigger
from tests.airflow_fixtures import operator_body, task_instance
from tests.kubelet.fates import Fate, Script


class Secrets:
    def __init__(self, kubeconfig: Path, token: str, key_pem: str) -> None:
        self.kubeconfig, self.token = kubeconfig, token
        body = "".join(key_pem.strip().splitlines()[1:-1])
        self.needles = {
            "token": token,
            "client-key-data": base64.b64encode(key_pem.encode()).decode(),
            "key body": body[40:100],  # a stretch of the key's base64, wherever it is quoted
        }

    def find(self, text: str) -> list[str]:
        """The credentials ``text`` contains (by name)."""
        return [name for name, needle in self.needles.items() if needle in text]


@pytest.fixture
def secrets(kube_cluster: Any, tmp_path: Path) -> Secrets:
    ca_key = Path(kube_cluster.ca_file).with_name("ca.key")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)

    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr",
        "-subj", "/CN=admin/O=system:masters")  # fmt: skip
    run("x509", "-req", "-in", "client.csr", "-CA", str(kube_cluster.ca_file), "-CAkey",
        str(ca_key), "-CAcreateserial", "-out", "client.crt", "-days", "1")  # fmt: skip
    key_pem = (tmp_path / "client.key").read_text()
    config = yaml.safe_load(Path(kube_cluster.kubeconfig).read_text())
    user = config["users"][0]["user"]
    user["client-certificate-data"] = base64.b64encode((tmp_path / "client.crt").read_bytes())
    user["client-certificate-data"] = user["client-certificate-data"].decode()
    user["client-key-data"] = base64.b64encode(key_pem.encode()).decode()
    path = tmp_path / "kubeconfig-with-secrets.yaml"
    path.write_text(yaml.safe_dump(config))
    return Secrets(path, user["token"], key_pem)


def test_no_provider_object_shows_a_credential(secrets: Secrets, namespace: str) -> None:
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(secrets.kubeconfig))
    settings = hook.trigger_settings()
    assert secrets.find(str(dict(settings))) == ["token", "client-key-data"]  # they are there
    obj = {"metadata": {"name": "job", "namespace": namespace, "uid": "u"}}
    async_hook = AsyncTFJobHook(None, **settings)
    trigger = TFJobTrigger(name="job", namespace=namespace, uid="u", settings=settings)
    request = RunRequest(manifest=obj, identity={}, log=None)
    objects: list[object] = [
        settings,
        hook,
        async_hook,
        AsyncTFJobHook(None, config_dict=settings["config_dict"]),
        trigger,
        TFJobTrigger(**trigger.serialize()[1]),
        JobFollower(
            async_hook,
            JobRef.of(obj),
            Limits(),
            key=settings_key(settings),
            log=None,
            get_logs=True,
            poll_interval=1,
        ),
        request,
        KubernetesRun(hook, request),
        TFJobOperator(
            task_id="t",
            tfjob=TfJob(chief=Chief()),
            image="tf:2",
            kubernetes_conn_id=None,
            config_file=str(secrets.kubeconfig),
        ),
        TFJobSensor(
            task_id="s",
            tfjob_name="job",
            namespace=namespace,
            kubernetes_conn_id=None,
            config_file=str(secrets.kubeconfig),
        ),
    ]
    shown = {f"{type(o).__name__}": (repr(o), str(o)) for o in objects}
    leaks = {name: secrets.find(" ".join(texts)) for name, texts in shown.items()}
    assert {name: found for name, found in leaks.items() if found} == {}, shown


def test_an_error_message_shows_no_credential(secrets: Secrets, namespace: str) -> None:
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(secrets.kubeconfig))
    settings = hook.trigger_settings()
    broken = dict(settings)
    config = yaml.safe_load(yaml.safe_dump(dict(settings["config_dict"])))
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:9"  # refused
    broken["config_dict"] = config
    with pytest.raises(TFJobError) as raised:
        asyncio.run(AsyncTFJobHook(None, max_attempts=1, **broken).get("job", namespace))
    chain, exc = [], raised.value
    while exc is not None:
        chain.append(f"{exc!r} {exc}")
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    assert secrets.find(" ".join(chain)) == [], chain


def test_a_deferred_run_logs_and_pushes_no_credential(
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    secrets: Secrets,
    capfd: pytest.CaptureFixture[str],
) -> None:
    replicas.set_default_fate("Chief", Fate(duration=0.5, message='{"ok": 1}', logs=["hello"]))
    body = operator_body(deferrable=True, on_finish_action="keep_tfjob")
    dagrun = run_dag(body, namespace=namespace, kubeconfig=str(secrets.kubeconfig))
    ti = task_instance(dagrun, "train")
    out = capfd.readouterr()
    assert ti.state == "success", out.out[-3000:]
    assert "[chief-0] hello" in out.out  # the run was logged, and with it whatever leaked
    logged = out.out + out.err
    assert secrets.find(logged) == [], [line for line in logged.splitlines() if secrets.find(line)][
        :5
    ]
    xcoms = [ti.xcom_pull(task_ids="train", key=key) for key in ("return_value", "tfjob_name")]
    assert xcoms[0]["output"] == {"ok": 1}
    assert secrets.find(repr(xcoms)) == []
