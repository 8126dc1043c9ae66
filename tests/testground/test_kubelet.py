"""Pod logs through the real API: kube-apiserver proxies to the kubelet stand-in."""

from __future__ import annotations

import datetime
import re
import time

import kubernetes
import pytest

from tests.cluster import jobs
from tests.cluster.jobs import has
from tests.kubelet.fates import Fate, LogLine

STAMPED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z (.*)$")


@pytest.fixture
def core(kube_api: kubernetes.client.ApiClient) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(kube_api)


def _log(core: kubernetes.client.CoreV1Api, namespace: str, pod: str, **options: object) -> str:
    response = core.read_namespaced_pod_log(pod, namespace, _preload_content=False, **options)
    return response.data.decode()


def _phase(core: kubernetes.client.CoreV1Api, namespace: str, pod: str) -> str | None:
    pods = core.list_namespaced_pod(namespace, field_selector=f"metadata.name={pod}").items
    return pods[0].status.phase if pods else None


def _bound_and_pending(core: kubernetes.client.CoreV1Api, namespace: str, pod: str) -> bool:
    """Pending on a node: a pod is Pending from its creation, before any node is assigned."""
    pods = core.list_namespaced_pod(namespace, field_selector=f"metadata.name={pod}").items
    return bool(pods) and pods[0].status.phase == "Pending" and bool(pods[0].spec.node_name)


def test_follow_streams_lines_as_written_and_ends_with_the_container(
    kube_api, namespace, replicas, core
):
    lines = [LogLine(0.0, "step 0"), LogLine(0.4, "step 1"), LogLine(0.8, "step 2")]
    replicas.set_fate("train", "Worker", 0, Fate(duration=1.0, logs=lines))
    jobs.create(kube_api, namespace, jobs.tfjob("train", {"Worker": 1}))
    jobs.eventually(lambda: _phase(core, namespace, "train-worker-0") == "Running")
    began = time.monotonic()
    response = core.read_namespaced_pod_log(
        "train-worker-0", namespace, follow=True, _preload_content=False
    )
    arrivals = []
    for chunk in response.stream(1024):
        arrivals.append((time.monotonic() - began, chunk.decode()))
    text = "".join(chunk for _, chunk in arrivals)
    assert text == "step 0\nstep 1\nstep 2\n"
    assert arrivals[0][0] < 0.5  # the first line came while the container still ran
    assert time.monotonic() - began >= 0.5  # and the stream lasted until it ended
    assert _phase(core, namespace, "train-worker-0") in ("Running", "Succeeded")


def test_tail_lines_timestamps_and_limit_bytes(kube_api, namespace, replicas, core):
    replicas.set_fate("train", "Worker", 0, Fate(duration=0.2, logs=["a", "bb", "ccc"]))
    jobs.create(kube_api, namespace, jobs.tfjob("train", {"Worker": 1}))
    jobs.wait_for(kube_api, namespace, "train", has("Succeeded"))
    stamped = _log(core, namespace, "train-worker-0", tail_lines=2, timestamps=True)
    matches = [STAMPED.match(line) for line in stamped.splitlines()]
    assert [m.group(2) for m in matches if m] == ["bb", "ccc"]
    assert _log(core, namespace, "train-worker-0", limit_bytes=4) == "a\nbb"
    assert _log(core, namespace, "train-worker-0", since_seconds=60) == "a\nbb\nccc\n"


def test_since_time_sent_as_a_raw_query_parameter(kube_api, namespace, replicas):
    lines = [LogLine(0.0, "early"), LogLine(1.3, "late")]
    replicas.set_fate("train", "Worker", 0, Fate(duration=1.4, logs=lines))
    jobs.create(kube_api, namespace, jobs.tfjob("train", {"Worker": 1}))
    jobs.wait_for(kube_api, namespace, "train", has("Succeeded"))
    stamped = _raw_log(kube_api, namespace, "train-worker-0", [("timestamps", "true")])
    first = datetime.datetime.fromisoformat(stamped.split()[0][:19])  # whole seconds
    since = (first + datetime.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _raw_log(kube_api, namespace, "train-worker-0", [("sinceTime", since)]) == "late\n"


def _raw_log(
    api: kubernetes.client.ApiClient, namespace: str, pod: str, query: list[tuple[str, str]]
) -> str:
    """GET pods/NAME/log with query parameters the client has no argument for."""
    response = api.call_api(
        "/api/v1/namespaces/{namespace}/pods/{name}/log",
        "GET",
        {"namespace": namespace, "name": pod},
        [("container", "tensorflow"), *query],
        {"Accept": "*/*"},
        auth_settings=["BearerToken"],
        _preload_content=False,
        _return_http_data_only=True,
    )
    return response.data.decode()


def test_previous_and_waiting_containers_are_400s(kube_api, namespace, replicas, core):
    replicas.set_fate("train", "Worker", 0, Fate(never_starts=True))
    jobs.create(kube_api, namespace, jobs.tfjob("train", {"Worker": 1}))
    # Before its pod has a node, the apiserver answers a log read with an empty 200 (it has no
    # kubelet to ask): CI once read the log in that moment.
    jobs.eventually(lambda: _bound_and_pending(core, namespace, "train-worker-0"))
    with pytest.raises(kubernetes.client.ApiException) as waiting:
        _log(core, namespace, "train-worker-0")
    assert waiting.value.status == 400
    assert "is waiting to start: ContainerCreating" in str(waiting.value.body)
    with pytest.raises(kubernetes.client.ApiException) as previous:
        _log(core, namespace, "train-worker-0", previous=True)
    assert previous.value.status == 400
