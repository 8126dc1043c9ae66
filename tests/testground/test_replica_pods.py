"""Pods, services and TF_CONFIG as the operator makes them, and replicas that really run."""

from __future__ import annotations

import json
import os
import textwrap

import kubernetes
import pytest

from tests.cluster import jobs
from tests.cluster.jobs import has
from tests.kubelet.fates import REAL, Fate


@pytest.fixture
def core(kube_api: kubernetes.client.ApiClient) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(kube_api)


def _env(pod: kubernetes.client.V1Pod) -> dict[str, str]:
    container = next(c for c in pod.spec.containers if c.name == "tensorflow")
    return {e.name: e.value for e in container.env or []}


def test_pods_services_labels_and_exact_tf_config(kube_api, namespace, replicas, core):
    replicas.set_default_fate("*", Fate(never_starts=True))
    counts = {"Chief": 1, "Worker": 2, "PS": 1, "Evaluator": 1}
    created = jobs.create(kube_api, namespace, jobs.tfjob("mnist", counts))
    jobs.eventually(lambda: len(core.list_namespaced_pod(namespace).items) == 5)
    pods = {p.metadata.name: p for p in core.list_namespaced_pod(namespace).items}
    assert set(pods) == {
        "mnist-chief-0",
        "mnist-worker-0",
        "mnist-worker-1",
        "mnist-ps-0",
        "mnist-evaluator-0",
    }
    ns = namespace
    assert _env(pods["mnist-worker-1"])["TF_CONFIG"] == (
        f'{{"cluster":{{"chief":["mnist-chief-0.{ns}.svc:2222"],'
        f'"evaluator":["mnist-evaluator-0.{ns}.svc:2222"],'
        f'"ps":["mnist-ps-0.{ns}.svc:2222"],'
        f'"worker":["mnist-worker-0.{ns}.svc:2222","mnist-worker-1.{ns}.svc:2222"]}},'
        f'"task":{{"type":"worker","index":1}},"environment":"cloud"}}'
    )
    worker = pods["mnist-worker-1"]
    assert worker.metadata.labels == {
        "training.kubeflow.org/job-name": "mnist",
        "training.kubeflow.org/operator-name": "tfjob-controller",
        "training.kubeflow.org/replica-type": "worker",
        "training.kubeflow.org/replica-index": "1",
    }
    assert pods["mnist-chief-0"].metadata.labels["training.kubeflow.org/job-role"] == "master"
    owner = worker.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid, owner.controller) == (
        "TFJob",
        "mnist",
        created["metadata"]["uid"],
        True,
    )
    assert worker.spec.containers[0].ports[0].name == "tfjob-port"
    bound = jobs.eventually(lambda: core.read_namespaced_pod("mnist-worker-1", ns).spec.node_name)
    assert bound == "tfjob-kubelet"  # the process kubelet binds what no scheduler does
    jobs.eventually(lambda: len(core.list_namespaced_service(namespace).items) == 5)
    services = {s.metadata.name: s for s in core.list_namespaced_service(namespace).items}
    assert set(services) == set(pods)
    assert services["mnist-ps-0"].spec.cluster_ip == "None"


def test_a_single_replica_gets_no_tf_config_and_worker0_is_master(
    kube_api, namespace, replicas, core
):
    replicas.set_default_fate("*", Fate(never_starts=True))
    jobs.create(kube_api, namespace, jobs.tfjob("solo", {"Worker": 1}))
    pod = jobs.eventually(lambda: core.list_namespaced_pod(namespace).items)[0]
    assert "TF_CONFIG" not in _env(pod)
    assert pod.metadata.labels["training.kubeflow.org/job-role"] == "master"


WORKERS_TALK = textwrap.dedent(
    """
    import json, os, socket, sys, time
    config = json.loads(os.environ["TF_CONFIG"])
    host, port = config["cluster"]["worker"][0].split(":")
    if config["task"]["index"] == 0:
        with socket.create_server((host, int(port))) as server:
            conn, _ = server.accept()
            message = conn.recv(100).decode()
        print("worker 0 got", message, flush=True)
        with open("/dev/termination-log", "w") as f:
            f.write("received " + message)
    else:
        for _ in range(200):
            try:
                sock = socket.create_connection((host, int(port)))
                break
            except OSError:
                time.sleep(0.02)
        sock.sendall(b"hello from 1")
        print("worker 1 sent", file=sys.stderr, flush=True)
    """
)


def test_real_processes_find_each_other_through_tf_config(kube_api, namespace, replicas, core):
    replicas.set_default_fate("Worker", REAL)
    job = jobs.tfjob("talk", {"Worker": 2}, command=["python", "-c", WORKERS_TALK])
    jobs.create(kube_api, namespace, job)
    jobs.wait_for(kube_api, namespace, "talk", has("Succeeded"), timeout=30)
    worker0 = core.read_namespaced_pod("talk-worker-0", namespace)
    terminated = worker0.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.message) == (0, "received hello from 1")
    log = core.read_namespaced_pod_log("talk-worker-0", namespace, _preload_content=False)
    assert log.data == b"worker 0 got hello from 1\n"
    config = json.loads(_env(worker0)["TF_CONFIG"])  # the pod keeps the operator's addresses
    assert config["cluster"]["worker"][0] == f"talk-worker-0.{namespace}.svc:2222"


def test_deleting_a_real_replica_kills_its_process_group(kube_api, namespace, replicas, core):
    replicas.set_default_fate("Worker", REAL)
    script = "import os, time; print(os.getpid(), flush=True); time.sleep(300)"
    jobs.create(
        kube_api, namespace, jobs.tfjob("sleepy", {"Worker": 1}, command=["python", "-c", script])
    )

    def pid() -> int | None:
        try:
            text = core.read_namespaced_pod_log(
                "sleepy-worker-0", namespace, _preload_content=False
            )
        except kubernetes.client.ApiException:
            return None
        return int(text.data) if text.data.strip() else None

    process = jobs.eventually(pid)
    os.kill(process, 0)  # alive
    core.delete_namespaced_pod("sleepy-worker-0", namespace)  # default grace: the kubelet's job

    def dead() -> bool:
        try:
            os.kill(process, 0)
        except ProcessLookupError:
            return True
        return False

    jobs.eventually(dead, timeout=5)

    def gone_or_recreated() -> bool:  # one listing: the pod may go between two
        pods = core.list_namespaced_pod(namespace).items
        return not pods or (
            pods[0].metadata.name == "sleepy-worker-0"
            and pods[0].metadata.deletion_timestamp is None
        )

    jobs.eventually(gone_or_recreated)


def test_a_watch_sees_the_tfjob_go_from_created_to_succeeded(kube_api, namespace, replicas):
    replicas.set_fate("watched", "Worker", 0, Fate(duration=0.3))
    custom = kubernetes.client.CustomObjectsApi(kube_api)
    listing = custom.list_namespaced_custom_object("kubeflow.org", "v1", namespace, "tfjobs")
    watch = kubernetes.watch.Watch()
    jobs.create(kube_api, namespace, jobs.tfjob("watched", {"Worker": 1}))
    events = []
    for event in watch.stream(
        custom.list_namespaced_custom_object,
        "kubeflow.org",
        "v1",
        namespace,
        "tfjobs",
        resource_version=listing["metadata"]["resourceVersion"],
        timeout_seconds=10,
    ):
        kinds = [c["type"] for c in (event["object"].get("status") or {}).get("conditions", [])]
        events.append((event["type"], kinds))
        if "Succeeded" in kinds:
            watch.stop()
    assert events[0] == ("ADDED", [])
    # the real operator may see the 0.3 s replica only once it has ended: no Running then
    assert events[-1] in (
        ("MODIFIED", ["Created", "Running", "Succeeded"]),
        ("MODIFIED", ["Created", "Succeeded"]),
    )
    if "Running" in events[-1][1]:
        assert ("MODIFIED", ["Created", "Running"]) in events
