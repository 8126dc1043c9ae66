"""Both hooks against the real kube-apiserver: CRUD, watch, and the errors users see."""

from __future__ import annotations

import inspect
import json
import time
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from airflow_tfjob import TfJob, Worker, errors
from airflow_tfjob.hooks.tfjob import AsyncTFJobHook, TFJobHook
from tests.cluster.cluster import Cluster
from tests.hooks.conftest import call

Hook = TFJobHook | AsyncTFJobHook


def _manifest(name: str, namespace: str, **labels: str) -> dict[str, Any]:
    return TfJob(worker=Worker(replicas=2)).to_manifest(
        name, namespace, image="tf:2", labels=labels or None
    )


def test_each_twin_has_what_its_callers_use_and_shared_methods_take_the_same_parameters() -> None:
    """The submission, the reaper, the sensor and the page call the sync hook; every wait, watch
    and log stream runs in an event loop on the async one. A method only the other side calls is
    not kept for symmetry; one both sides call has one signature."""

    def surface(cls: type) -> dict[str, list[tuple[str, Any, Any]]]:
        return {
            name: [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]
            for name, fn in vars(cls).items()
            if callable(fn) and not name.startswith("_")
        }

    sync, asyn = surface(TFJobHook), surface(AsyncTFJobHook)
    both = {"get", "delete", "list_jobs", "job_pages", "patch", "list_pods", "pod_pages"}
    assert set(sync) - both == {
        "trigger_settings",
        "get_namespace",
        "create",
        "server_version",
        "served_hooks",
        "missing_permissions",
        "read_log",
    }
    assert set(asyn) - both == {"watch", "watch_pods", "stream_log", "client_session"}
    for name in both:
        assert sync[name] == asyn[name], name


def _create(manifest: dict[str, Any], kubeconfig: Path) -> dict[str, Any]:
    """Jobs are created by the synchronous hook alone (the worker submits)."""
    return TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig)).create(manifest)


def test_create_get_list_patch_delete_round_trip(
    hook: Hook, namespace: str, kubeconfig: Path
) -> None:
    created = _create(_manifest("roundtrip", namespace, team="a"), kubeconfig)
    assert created["metadata"]["uid"]
    assert call(hook.get, "roundtrip", namespace)["metadata"]["uid"] == created["metadata"]["uid"]
    items, version = call(hook.list_jobs, namespace, label_selector="team=a")
    assert [i["metadata"]["name"] for i in items] == ["roundtrip"] and version
    assert call(hook.list_jobs, namespace, label_selector="team=b")[0] == []
    patched = call(hook.patch, "roundtrip", namespace, {"metadata": {"labels": {"team": "b"}}})
    assert patched["metadata"]["labels"]["team"] == "b"
    assert call(hook.delete, "roundtrip", namespace) is True
    # Foreground: the job stays, marked, until its dependents are gone (no GC runs here).
    deleting = call(hook.get, "roundtrip", namespace)["metadata"]
    assert deleting["deletionTimestamp"] and "foregroundDeletion" in deleting["finalizers"]
    assert call(hook.delete, "never-existed", namespace) is False


def test_delete_with_a_stale_uid_never_deletes_a_newer_namesake(
    hook: Hook, namespace: str, kubeconfig: Path
) -> None:
    first = _create(_manifest("namesake", namespace), kubeconfig)
    call(hook.delete, "namesake", namespace, propagation="Background")
    second = _create(_manifest("namesake", namespace), kubeconfig)
    with pytest.raises(errors.TFJobConflict):
        call(hook.delete, "namesake", namespace, uid=first["metadata"]["uid"])
    assert call(hook.get, "namesake", namespace)["metadata"]["uid"] == second["metadata"]["uid"]


def test_a_duplicate_create_is_a_conflict(namespace: str, kubeconfig: Path) -> None:
    _create(_manifest("dup", namespace), kubeconfig)
    with pytest.raises(errors.TFJobConflict, match=f"create tfjobs.kubeflow.org {namespace}/dup"):
        _create(_manifest("dup", namespace), kubeconfig)


def test_the_servers_field_errors_are_in_the_422_message(namespace: str, kubeconfig: Path) -> None:
    manifest = _manifest("invalid", namespace)
    manifest["spec"]["tfReplicaSpecs"]["Worker"]["replicas"] = "2"
    with pytest.raises(errors.TFJobInvalid) as info:
        _create(manifest, kubeconfig)
    assert "spec.tfReplicaSpecs.Worker.replicas" in str(info.value)
    assert info.value.status == 422
    assert isinstance(info.value.__cause__, Exception)  # the client error is chained, not lost


def test_a_missing_job_is_not_found(hook: Hook, namespace: str) -> None:
    with pytest.raises(errors.TFJobNotFound, match=f"{namespace}/nope not found"):
        call(hook.get, "nope", namespace)


def test_a_missing_pods_log_is_not_found_and_a_refused_list_is_an_error_not_an_empty_list(
    hook: Hook, namespace: str, fault_proxy: Any
) -> None:
    log = hook.read_log if isinstance(hook, TFJobHook) else hook.stream_log
    with pytest.raises(errors.TFJobNotFound, match=f"{namespace}/nope-0"):
        call(log, "nope-0", namespace)
    proxied = type(hook)(kubernetes_conn_id=None, config_file=str(fault_proxy.kubeconfig))
    fault_proxy.fail("/pods$", status=410, watch=False)
    with pytest.raises(errors.TFJobWatchExpired):
        call(proxied.list_pods, None, namespace)
    fault_proxy.fail("/tfjobs$", status=403, watch=False)
    with pytest.raises(errors.TFJobForbidden):
        call(proxied.list_jobs, namespace)


def test_the_log_of_a_pod_on_no_node_is_an_error_not_an_empty_log(
    hook: Hook, namespace: str, kube_api: Any
) -> None:
    """kube-apiserver answers a log request for a pod bound to no node with 204 No Content;
    read as an empty log, it would pass for a replica that printed nothing (the fan-in bench
    lost whole logs so)."""
    core = kubernetes.client.CoreV1Api(kube_api)
    spec = {"schedulerName": "nobody", "containers": [{"name": "tensorflow", "image": "tf:2"}]}
    core.create_namespaced_pod(namespace, {"metadata": {"name": "unbound-0"}, "spec": spec})
    said = f"cannot read the log of pod {namespace}/unbound-0 yet: the API server has none to give"
    log = hook.read_log if isinstance(hook, TFJobHook) else hook.stream_log
    with pytest.raises(errors.TFJobAPIError, match=said) as caught:
        call(log, "unbound-0", namespace)
    assert caught.value.status == 204
    assert not isinstance(caught.value, errors.TFJobUnavailable | errors.TFJobNotFound)


def test_watch_sees_changes_and_a_too_old_version_is_410(namespace: str, kubeconfig: Path) -> None:
    hook = AsyncTFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig))
    created = _create(_manifest("watched", namespace), kubeconfig)
    version = created["metadata"]["resourceVersion"]
    call(hook.patch, "watched", namespace, {"metadata": {"labels": {"seen": "yes"}}})
    events = call(
        hook.watch, namespace, resource_version=version, name="watched", timeout_seconds=1
    )
    modified = [e for e in events if e["type"] == "MODIFIED"]
    assert modified and modified[0]["object"]["metadata"]["labels"]["seen"] == "yes"
    with pytest.raises(errors.TFJobWatchExpired):
        call(hook.watch, namespace, resource_version="1", timeout_seconds=2)


def test_forbidden_names_the_verb_resource_and_user(kube_cluster: Cluster) -> None:
    config = str(kube_cluster.kubeconfig_for("restricted"))
    for hook in (
        TFJobHook(kubernetes_conn_id=None, config_file=config),
        AsyncTFJobHook(kubernetes_conn_id=None, config_file=config),
    ):
        with pytest.raises(errors.TFJobForbidden) as info:
            call(hook.get, "denied", "default")
        message = str(info.value)
        assert "get tfjobs.kubeflow.org default/denied" in message
        assert '"restricted"' in message
        assert kube_cluster.tokens["restricted"] not in message


def test_an_unreachable_server_is_unavailable_after_retries(
    tmp_path: Path, kubeconfig: Path
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    text = kubeconfig.read_text()
    import re

    dead = tmp_path / "dead.yaml"
    dead.write_text(re.sub(r"https://127\.0\.0\.1:\d+", f"https://127.0.0.1:{port}", text))
    # Two tries, not the default eight: the default's backoff (up to 25 s a call) proves nothing more.
    for cls in (TFJobHook, AsyncTFJobHook):
        hook = cls(kubernetes_conn_id=None, config_file=str(dead), max_attempts=2)
        with pytest.raises(errors.TFJobUnavailable, match="unreachable"):
            call(hook.get, "x", "default")


def test_trigger_settings_read_either_extra_spelling_and_string_flags(
    kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extras = {
        "extra__kubernetes__kube_config_path": str(kubeconfig),  # the pre-2.3 spelling
        "in_cluster": "false",  # a string, as forms and env JSON often give it
        "disable_verify_ssl": "False",
        "cluster_context": "ctx",
    }
    monkeypatch.setenv(
        "AIRFLOW_CONN_TFJOB_OLD_STYLE", json.dumps({"conn_type": "kubernetes", "extra": extras})
    )
    settings = TFJobHook("tfjob_old_style").trigger_settings()
    assert settings["in_cluster"] is None and settings["disable_verify_ssl"] is None
    assert settings["cluster_context"] == "ctx"
    assert settings["config_dict"]["clusters"][0]["cluster"]["server"].startswith("https://")


def _kubeconfig_trusting(kubeconfig: Path, ca: Path, tmp_path: Path) -> Path:
    """The cluster's kubeconfig, but trusting ``ca`` instead of the cluster's CA."""
    import yaml

    config = yaml.safe_load(kubeconfig.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"].pop("certificate-authority-data", None)
        cluster["cluster"]["certificate-authority"] = str(ca)
    path = tmp_path / "wrong-ca.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("cls", [TFJobHook, AsyncTFJobHook], ids=["sync", "async"])
def test_an_untrusted_server_certificate_fails_at_once_and_is_not_retried(
    cls: type[Hook], kubeconfig: Path, tmp_path: Path
) -> None:
    from airflow.providers.common.compat.sdk import AirflowFailException

    from airflow_tfjob.hooks import _retry
    from tests.kubelet import certs

    stranger = certs.self_signed(tmp_path, "stranger")  # a CA that did not sign the server's
    hook = cls(
        kubernetes_conn_id=None,
        config_file=str(_kubeconfig_trusting(kubeconfig, stranger.cert, tmp_path)),
    )
    with pytest.raises(errors.TFJobTLSError) as info:
        call(hook.get, "x", "default")
    message = str(info.value)
    assert message.startswith("TLS with the API server failed (certificate verify failed: ")
    assert "Not retried" in message
    assert isinstance(info.value, AirflowFailException)  # the task fails without its retries
    cause = info.value.__cause__
    assert cause is not None and _retry.certificate_error(cause) is not None
    assert not _retry.is_retryable(cause)  # the hooks' retry policy gave up at the first try


def test_the_retry_policy_retries_the_network_but_not_certificates() -> None:
    import ssl

    from urllib3.exceptions import MaxRetryError, SSLError

    from airflow_tfjob.hooks import _retry

    def urllib3_error(reason: BaseException) -> MaxRetryError:  # as the sync client raises it
        return MaxRetryError(None, "/apis", reason=SSLError(reason))  # type: ignore[arg-type]

    assert _retry.is_retryable(ConnectionRefusedError(111, "Connection refused"))
    assert _retry.is_retryable(TimeoutError())
    # a TLS connection cut mid-handshake is the network: retried
    assert _retry.is_retryable(urllib3_error(ssl.SSLEOFError(8, "EOF occurred")))
    # a certificate is not: the server's untrusted, or ours refused
    assert not _retry.is_retryable(urllib3_error(ssl.SSLCertVerificationError(1, "verify")))
    refused = ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] alert")
    refused.reason = "TLSV13_ALERT_CERTIFICATE_REQUIRED"
    assert not _retry.is_retryable(urllib3_error(refused))
    wrapped = ConnectionError("handshake")
    wrapped.__cause__ = ssl.SSLCertVerificationError(1, "certificate verify failed")
    assert not _retry.is_retryable(wrapped)  # found along the chain too


def test_errors_a_retry_cannot_fix_are_airflow_fail_exceptions() -> None:
    from airflow.providers.common.compat.sdk import AirflowFailException

    never = (errors.TFJobInvalid, errors.TFJobForbidden, errors.TFJobCRDNotInstalled)
    for cls in (*never, errors.TFJobTLSError, errors.TFJobSpecFailure):
        assert issubclass(cls, AirflowFailException) and issubclass(cls, errors.TFJobError)
    for cls in (errors.TFJobUnavailable, errors.TFJobConflict, errors.TFJobNotFound):
        assert not issubclass(cls, AirflowFailException)  # retried (or handled) as before
    bad_request = errors.translate(
        400, "Bad Request", None, verb="create", resource="tfjobs.kubeflow.org", namespace="ml"
    )
    assert isinstance(bad_request, errors.TFJobInvalid)  # fieldValidation=Strict's refusal


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("v1.20.2", None),
        ("v1.24.17", None),
        ("v1.25.0", "Strict"),
        ("v1.27.3-gke.100", "Strict"),
        ("v1.30.1+k3s1", "Strict"),
        ("1.26", "Strict"),
        ("v2.0.0", "Strict"),
        ("", None),
        (None, None),
        ("v0.0.0-master+$Format:%h$", None),
    ],
)
def test_field_validation_is_strict_from_kubernetes_1_25(
    version: str | None, expected: str | None
) -> None:
    from airflow_tfjob.hooks import _resource

    assert _resource.field_validation(version) == expected
    kwargs = _resource.create_kwargs(version)
    assert kwargs == ({"field_validation": "Strict"} if expected else {})


def test_create_asks_for_strict_field_validation_only_where_the_server_supports_it(
    fault_proxy: Any, namespace: str
) -> None:
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(fault_proxy.kubeconfig))
    hook.create(_manifest("strict", namespace))  # the test server: 1.36
    assert str(hook.server_version()).startswith("v1.36.")
    hook._server_version = "v1.24.0"  # what a 1.24 server's version API would say
    hook.create(_manifest("as-is", namespace))
    creates = [
        query
        for method, path, query in fault_proxy.history
        if (method, path[-7:]) == ("POST", "/tfjobs")
    ]
    assert ["fieldValidation=Strict" in query for query in creates] == [True, False]
    assert fault_proxy.requests(r"^/version/?$") == 1  # read once by the hook
    typo = _manifest("typo", namespace)
    typo["spec"]["runPolicy"] = {"backofLimit": 2}
    with pytest.raises(errors.TFJobInvalid, match=r"unknown field.*backofLimit"):
        TFJobHook(None, config_file=str(fault_proxy.kubeconfig)).create(typo)  # strict is real
    assert (
        len(call(TFJobHook(None, config_file=str(fault_proxy.kubeconfig)).list_jobs, namespace)[0])
        == 2
    )


def test_lists_are_read_a_page_at_a_time_and_a_whole_list_is_every_page(
    fault_proxy: Any, namespace: str
) -> None:
    for tag, cls in (("sync", TFJobHook), ("async", AsyncTFJobHook)):
        hook: Hook = cls(kubernetes_conn_id=None, config_file=str(fault_proxy.kubeconfig))
        for i in range(5):
            _create(_manifest(f"{tag}-{i}", namespace, twin=tag), fault_proxy.kubeconfig)
        before = fault_proxy.requests("/tfjobs$", method="GET")
        pages = call(hook.job_pages, namespace, label_selector=f"twin={tag}", limit=2)
        assert [len(items) for items, _ in pages] == [2, 2, 1]
        assert len({version for _, version in pages}) == 1  # one list, one resourceVersion
        names = [job["metadata"]["name"] for items, _ in pages for job in items]
        assert sorted(names) == [f"{tag}-{i}" for i in range(5)]
        sent = [q for m, p, q in fault_proxy.history if m == "GET" and p.endswith("/tfjobs")]
        assert sum("limit=2" in q for q in sent[before:]) == 3
        assert sum("continue=" in q for q in sent[before:]) == 2
        items, version = call(hook.list_jobs, namespace, label_selector=f"twin={tag}")
        assert sorted(j["metadata"]["name"] for j in items) == names and version
        # the operator makes pods for the jobs above; a job with none reads as one empty page
        ((pods, pods_version),) = call(hook.pod_pages, "no-such-job", namespace, limit=2)
        assert pods == [] and pods_version


@pytest.mark.parametrize("cls", [TFJobHook, AsyncTFJobHook], ids=["sync", "async"])
def test_a_throttled_call_is_tried_by_the_hooks_policy_alone(
    cls: type[Hook], fault_proxy: Any, namespace: str
) -> None:
    """One request per try: the sync client's urllib3 used to retry a GET answered 429 with
    ``Retry-After`` three more times inside each of our tries, sleeping as asked each time."""
    config = str(fault_proxy.kubeconfig)
    hook: Hook = cls(kubernetes_conn_id=None, config_file=config, max_attempts=2)
    fault_proxy.throttle(r"/tfjobs/throttled$", retry_after=1, times=None, method="GET")
    with pytest.raises(errors.TFJobUnavailable):
        call(hook.get, "throttled", namespace)
    assert fault_proxy.requests(r"/tfjobs/throttled$", method="GET") == 2  # urllib3 made it 8


@pytest.mark.parametrize("cls", [TFJobHook, AsyncTFJobHook], ids=["sync", "async"])
def test_retries_end_at_the_callers_deadline(
    cls: type[Hook], fault_proxy: Any, namespace: str
) -> None:
    hook: Hook = cls(kubernetes_conn_id=None, config_file=str(fault_proxy.kubeconfig))
    fault_proxy.throttle(r"/tfjobs/late$", retry_after=2, times=None, method="GET")
    hook.retry_until = time.time() + 3
    began = time.monotonic()
    with pytest.raises(errors.TFJobUnavailable):
        call(hook.get, "late", namespace)
    took = time.monotonic() - began
    assert 1.9 < took < 4, took  # one wait of 2 s fits before the deadline, a second not
    assert fault_proxy.requests(r"/tfjobs/late$", method="GET") == 2
