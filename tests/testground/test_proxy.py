"""The fault proxy in front of the real API server, and a real 410 from an old resourceVersion."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import kubernetes
import pytest
import urllib3

from tests.cluster import jobs
from tests.faults.proxy import FaultProxy

TFJOBS = r"/apis/kubeflow.org/v1/namespaces/[^/]+/tfjobs"


@pytest.fixture
def via_proxy(fault_proxy: FaultProxy):
    client = fault_proxy.api_client()
    client.configuration.retries = False  # see every fault, not urllib3's retries
    client.rest_client.pool_manager.connection_pool_kw["retries"] = False
    yield client
    client.close()


def _list_tfjobs(api: kubernetes.client.ApiClient, namespace: str, **kwargs: object) -> dict:
    custom = kubernetes.client.CustomObjectsApi(api)
    return custom.list_namespaced_custom_object("kubeflow.org", "v1", namespace, "tfjobs", **kwargs)


def test_a_503_burst_reaches_the_client_then_the_server_answers(via_proxy, fault_proxy, namespace):
    fault_proxy.fail(TFJOBS, status=503, times=2, method="GET")
    for _ in range(2):
        with pytest.raises(kubernetes.client.ApiException) as failure:
            _list_tfjobs(via_proxy, namespace)
        assert failure.value.status == 503
        assert failure.value.reason == "Service Unavailable"
    assert _list_tfjobs(via_proxy, namespace)["items"] == []
    assert fault_proxy.requests(TFJOBS, method="GET") == 3


def test_a_429_carries_retry_after(via_proxy, fault_proxy, namespace):
    fault_proxy.throttle(TFJOBS, retry_after=2)
    with pytest.raises(kubernetes.client.ApiException) as failure:
        _list_tfjobs(via_proxy, namespace)
    assert failure.value.status == 429
    assert failure.value.headers["Retry-After"] == "2"
    assert '"retryAfterSeconds": 2' in failure.value.body


def test_a_watch_from_an_old_resource_version_gets_410_from_the_real_server(kube_api, namespace):
    custom = kubernetes.client.CustomObjectsApi(kube_api)
    jobs.create(kube_api, namespace, jobs.tfjob("old", {"Worker": 1}))  # history to be too old for
    watch = kubernetes.watch.Watch()
    with pytest.raises(kubernetes.client.ApiException) as gone:
        for _ in watch.stream(
            custom.list_namespaced_custom_object,
            "kubeflow.org",
            "v1",
            namespace,
            "tfjobs",
            resource_version="1",
            timeout_seconds=5,
        ):
            pass
    assert gone.value.status == 410


def test_the_proxy_can_answer_a_watch_with_410(via_proxy, fault_proxy, namespace):
    fault_proxy.gone(TFJOBS)
    custom = kubernetes.client.CustomObjectsApi(via_proxy)
    with pytest.raises(kubernetes.client.ApiException) as gone:
        for _ in kubernetes.watch.Watch().stream(
            custom.list_namespaced_custom_object,
            "kubeflow.org",
            "v1",
            namespace,
            "tfjobs",
            resource_version="1",
            timeout_seconds=5,
        ):
            pass
    assert gone.value.status == 410


def test_a_watch_stream_is_cut_after_n_events(via_proxy, fault_proxy, kube_api, namespace):
    for i in range(3):
        jobs.create(kube_api, namespace, jobs.tfjob(f"job{i}", {"Worker": 1}))
    fault_proxy.cut_watch(TFJOBS, after_events=2)
    custom = kubernetes.client.CustomObjectsApi(via_proxy)
    began = time.monotonic()
    events = list(
        kubernetes.watch.Watch().stream(
            custom.list_namespaced_custom_object,
            "kubeflow.org",
            "v1",
            namespace,
            "tfjobs",
            timeout_seconds=30,  # the server would keep it open; the proxy ends it
        )
    )
    assert [e["type"] for e in events] == ["ADDED", "ADDED"]
    assert time.monotonic() - began < 5
    jobs.eventually(lambda: fault_proxy.open_streams(TFJOBS) == 0)


def test_open_streams_are_counted_and_a_timed_cut_ends_them(via_proxy, fault_proxy, namespace):
    fault_proxy.cut_watch(TFJOBS, after_seconds=0.5)
    custom = kubernetes.client.CustomObjectsApi(via_proxy)
    done = threading.Event()

    def watch() -> None:
        for _ in kubernetes.watch.Watch().stream(
            custom.list_namespaced_custom_object,
            "kubeflow.org",
            "v1",
            namespace,
            "tfjobs",
            timeout_seconds=30,
        ):
            pass
        done.set()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    # the peak, not the live count: on a loaded machine the 0.5 s stream can end between polls
    jobs.eventually(lambda: fault_proxy.peak_streams == 1)
    assert done.wait(5)
    thread.join(5)
    # the client can see the stream end a moment before the proxy's handler has counted it out
    jobs.eventually(lambda: fault_proxy.open_streams(TFJOBS) == 0)
    assert fault_proxy.requests(TFJOBS, watch=True) == 1


def test_dropped_and_stalled_connections_and_delays(via_proxy, fault_proxy, namespace):
    fault_proxy.drop(TFJOBS)
    with pytest.raises(urllib3.exceptions.HTTPError):
        _list_tfjobs(via_proxy, namespace)
    fault_proxy.stall(TFJOBS, seconds=3)
    with pytest.raises(urllib3.exceptions.HTTPError):
        _list_tfjobs(via_proxy, namespace, _request_timeout=0.3)
    fault_proxy.delay(TFJOBS, seconds=0.4, times=1)
    began = time.monotonic()
    assert _list_tfjobs(via_proxy, namespace)["items"] == []
    assert time.monotonic() - began >= 0.4
    assert fault_proxy.requests(TFJOBS) == 3


def test_urllib3_retries_a_dropped_connection_by_default(fault_proxy, namespace):
    with fault_proxy.api_client() as client:  # default retries
        fault_proxy.drop(TFJOBS)
        assert _list_tfjobs(client, namespace)["items"] == []
        client.rest_client.pool_manager.clear()
    assert fault_proxy.requests(TFJOBS) == 2


WATCHER = """
import sys, time, kubernetes
kubernetes.config.load_kube_config(sys.argv[1])
custom = kubernetes.client.CustomObjectsApi()
stream = custom.list_namespaced_custom_object(
    "kubeflow.org", "v1", sys.argv[2], "tfjobs", watch=True, timeout_seconds=120,
    _preload_content=False)
print("watching", flush=True)
time.sleep(600)
"""


def test_a_killed_clients_watch_is_counted_out(fault_proxy, namespace):
    """A watcher SIGKILLed mid-stream (an idle watch: no event will come) stops counting as an
    open stream once its kernel closes the socket, as the API server notices at its next write."""
    watcher = subprocess.Popen(
        [sys.executable, "-c", WATCHER, str(fault_proxy.kubeconfig), namespace],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stdout is not None and watcher.stdout.readline() == "watching\n"
        jobs.eventually(lambda: fault_proxy.open_streams(TFJOBS) == 1)
        watcher.send_signal(signal.SIGKILL)
        watcher.wait(5)
        began = time.monotonic()
        jobs.eventually(lambda: fault_proxy.open_streams(TFJOBS) == 0)
        assert time.monotonic() - began < 3
    finally:
        watcher.kill()
        watcher.wait()
        watcher.stdout.close()  # type: ignore[union-attr]
