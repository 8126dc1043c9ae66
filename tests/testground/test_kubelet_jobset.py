"""The process kubelet runs the pods of a TrainJob's Indexed Job as it runs a TFJob's.

The kubelet's half of the TrainJob path needs no JobSet or Trainer controller: these tests write
pods as the Job controller makes them from JobSet's template (:mod:`tests.kubelet.indexed`), hold
them with a finalizer they take off themselves, and check what a pod's real process sees, which
peer names resolve, which scripted fate each pod gets, that ``Ready`` follows the container, and
that a deleted pod gets its terminal phase exactly once. The last test has the real Job
controller run such an Indexed Job: what the kubelet writes must let the Job count its pods ready
and reach Complete or Failed, which Kubernetes 1.36 holds back while a pod it stopped is
terminating without a terminal phase.
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest

from airflow_tfjob.rules import entrypoint
from tests.cluster import jobs
from tests.kubelet import indexed, network, podspec, podstatus
from tests.kubelet.fates import REAL, RUNS_FOR_EVER, Fate


@pytest.fixture
def core(kube_api: kubernetes.client.ApiClient, namespace: str) -> Iterator[Any]:
    """The core API; at the end, pods still held by a finalizer are let go (the namespace
    could not be deleted otherwise)."""
    api = kubernetes.client.CoreV1Api(kube_api)
    yield api
    for pod in api.list_namespaced_pod(namespace).items:
        if pod.metadata.finalizers:
            _release(api, namespace, pod.metadata.name)


def _release(core: Any, namespace: str, name: str) -> None:
    """Take the finalizer off, as the Job controller does once it has counted the pod."""
    core.patch_namespaced_pod(name, namespace, {"metadata": {"finalizers": None}})


def _pod(core: Any, namespace: str, name: str) -> Any:
    pods = core.list_namespaced_pod(namespace, field_selector=f"metadata.name={name}").items
    return pods[0] if pods else None


def _when(core: Any, namespace: str, name: str, check: Any, timeout: float = 10.0) -> Any:
    """The pod, once ``check(pod)`` holds."""

    def ready() -> Any:
        pod = _pod(core, namespace, name)
        return pod if pod is not None and check(pod) else None

    return jobs.eventually(ready, timeout=timeout)


def _log(core: Any, namespace: str, name: str) -> str:
    """The pod's ``node`` log, as bytes go (the client's str would parse a JSON line)."""
    response = core.read_namespaced_pod_log(
        name, namespace, container="node", _preload_content=False
    )
    try:
        return str(response.data.decode())
    finally:
        response.release_conn()


def _conditions(pod: Any) -> dict[str, Any]:
    return {c.type: c for c in pod.status.conditions or []}


def _exit_code(pod: Any) -> int | None:
    statuses = pod.status.container_statuses or []
    terminated = statuses[0].state.terminated if statuses else None
    return terminated.exit_code if terminated else None


# --- against the real apiserver --------------------------------------------------------------


def test_a_real_process_sees_its_completion_index_hostname_and_this_python(
    namespace, replicas, core
):
    replicas.set_fate("env", "Worker", 1, REAL)  # index 2 of Chief:1,Worker:2,...
    script = "import os, sys; print(os.environ['JOB_COMPLETION_INDEX'], os.environ['HOSTNAME'], sys.executable)"
    # as the provider's entry point does: /bin/sh finds python on PATH
    command = ["/bin/sh", "-c", f'exec python -c "{script}"']
    core.create_namespaced_pod(namespace, indexed.pod("env", 2, command=command))
    name = "env-node-0-2-x7k2q"
    done = _when(core, namespace, name, lambda p: p.status.phase == "Succeeded", timeout=20)
    assert done.status.container_statuses[0].name == "node"
    assert _log(core, namespace, name) == f"2 env-node-0-2 {sys.executable}\n"


def test_fates_scripted_by_tf_replica_type_reach_the_pod_at_that_index(namespace, replicas, core):
    replicas.set_default_fate("*", Fate(exit_code=9))
    replicas.set_fate("mixed", "Chief", 0, Fate(exit_code=0))
    replicas.set_fate("mixed", "Worker", 1, Fate(exit_code=3))
    replicas.set_fate("mixed", "PS", 0, Fate(exit_code=4))
    replicas.set_fate("plain", "node", 1, Fate(exit_code=5))  # no layout: the replicated job
    for index in range(4):
        core.create_namespaced_pod(namespace, indexed.pod("mixed", index))
    core.create_namespaced_pod(namespace, indexed.pod("plain", 1, layout=None))
    expected = {"mixed-node-0-0": 0, "mixed-node-0-1": 9, "mixed-node-0-2": 3, "mixed-node-0-3": 4}
    expected["plain-node-0-1"] = 5
    for host, code in expected.items():
        ended = _when(core, namespace, f"{host}-x7k2q", lambda p: _exit_code(p) is not None)
        assert (host, _exit_code(ended)) == (host, code)
        assert ended.status.phase == ("Succeeded" if code == 0 else "Failed")


def test_a_layout_that_cannot_place_the_pod_keeps_it_waiting_with_the_reason(
    namespace, replicas, core
):
    core.create_namespaced_pod(namespace, indexed.pod("bad", 1, layout="Chief:1"))

    def waiting(pod: Any) -> bool:
        statuses = pod.status.container_statuses or []
        return bool(statuses) and statuses[0].state.waiting is not None and pod.spec.node_name

    pod = _when(core, namespace, "bad-node-0-1-x7k2q", waiting)
    state = pod.status.container_statuses[0].state.waiting
    assert (pod.status.phase, state.reason) == ("Pending", "CreateContainerConfigError")
    assert state.message == "completion index 1 is past the replica layout (1 replicas)"


def test_ready_follows_the_container_and_keeps_the_schedulers_condition(namespace, replicas, core):
    replicas.set_fate("ready", "Chief", 0, Fate(duration=1.5))
    core.create_namespaced_pod(namespace, indexed.pod("ready", 0))
    name = "ready-node-0-0-x7k2q"
    running = _when(core, namespace, name, lambda p: p.status.phase == "Running")
    assert {kind: c.status for kind, c in _conditions(running).items()} == {
        "PodScheduled": "True",  # written by the binding: the strategic merge keeps it
        **dict.fromkeys(("PodReadyToStartContainers", "Initialized"), "True"),
        **dict.fromkeys(("ContainersReady", "Ready"), "True"),
    }
    assert _conditions(running)["Ready"].reason is None  # Pending's ContainersNotReady is gone
    done = _when(core, namespace, name, lambda p: p.status.phase == "Succeeded")
    conditions = _conditions(done)
    assert (conditions["Ready"].status, conditions["Ready"].reason) == ("False", "PodCompleted")
    assert conditions["PodReadyToStartContainers"].status == "False"
    assert conditions["Initialized"].reason == "PodCompleted"
    assert conditions["PodScheduled"].status == "True"


@pytest.mark.parametrize(
    ("fate", "before", "phase", "code", "reason"),
    [
        (RUNS_FOR_EVER, "running", "Failed", 143, "Error"),  # a PS the Job controller stops
        (Fate(never_starts=True), "waiting", "Failed", 137, "ContainerStatusUnknown"),
        (Fate(duration=0.1), "terminated", "Succeeded", 0, "Completed"),  # stays as it ended
    ],
    ids=["running", "never-started", "ended"],
)
def test_a_deleted_pod_held_by_its_finalizer_ends_once_and_goes_when_let_go(
    kubelet, namespace, replicas, core, fate, before, phase, code, reason
):
    replicas.set_fate("held", "PS", 0, fate)
    pod = indexed.pod("held", 1, layout="Worker:1,PS:1", held=True)
    made = core.create_namespaced_pod(namespace, pod)
    name, uid = made.metadata.name, made.metadata.uid

    def settled(pod: Any) -> bool:
        statuses = pod.status.container_statuses or []
        return bool(statuses) and getattr(statuses[0].state, before) is not None

    _when(core, namespace, name, settled)
    core.delete_namespaced_pod(name, namespace)  # default grace (30 s), as the Job controller's
    ended = _when(
        core, namespace, name,
        lambda p: p.metadata.deletion_grace_period_seconds == 0 and _exit_code(p) is not None,
    )  # fmt: skip
    terminated = ended.status.container_statuses[0].state.terminated
    assert (ended.status.phase, terminated.exit_code, terminated.reason) == (phase, code, reason)
    assert _conditions(ended)["Ready"].status == "False"
    touched = core.patch_namespaced_pod(name, namespace, {"metadata": {"labels": {"seen": "1"}}})
    time.sleep(1.0)  # held: its events must not start the deletion again
    assert (
        _pod(core, namespace, name).metadata.resource_version == touched.metadata.resource_version
    )
    assert kubelet.removals[uid] == 1
    _release(core, namespace, name)
    jobs.eventually(lambda: _pod(core, namespace, name) is None)
    assert kubelet.removals[uid] == 1


def test_a_killed_process_reports_sigterm_and_its_log_lasts_while_the_pod_is_held(
    kubelet, namespace, replicas, core
):
    replicas.set_default_fate("*", REAL)
    command = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(300)"]
    made = core.create_namespaced_pod(namespace, indexed.pod("kill", 0, command=command, held=True))
    name = made.metadata.name

    _when(core, namespace, name, lambda p: p.status.phase == "Running")
    jobs.eventually(lambda: _log(core, namespace, name) == "up\n")
    core.delete_namespaced_pod(name, namespace, grace_period_seconds=5)
    ended = _when(core, namespace, name, lambda p: p.status.phase == "Failed")
    assert _exit_code(ended) == 143  # python has no SIGTERM handler: the signal killed it
    assert _log(core, namespace, name) == "up\n"  # still there: the pod has not left the API
    _release(core, namespace, name)
    jobs.eventually(lambda: _pod(core, namespace, name) is None)
    key = (namespace, name, "node")
    jobs.eventually(lambda: kubelet.logs.store.lookup(key, previous=False) is None)


TALK = textwrap.dedent(
    """
    import json, os, socket, time
    config = json.loads(os.environ["TF_CONFIG"])
    host, port = config["cluster"]["worker"][0].rsplit(":", 1)
    if config["task"]["index"] == 0:
        with socket.create_server((host, int(port))) as server:
            conn, _ = server.accept()
            with conn:
                message = conn.recv(100).decode()
        with open("/dev/termination-log", "w") as f:
            f.write("received " + message)
    else:
        ns, me = os.environ["POD_NAMESPACE"], os.environ["HOSTNAME"]
        names = [host, host + "." + ns, host + "." + ns + ".svc"]
        names += [host + "." + ns + ".svc.cluster.local", me, os.environ["PEER_POD"]]
        found = {}
        for name in names:
            try:
                found[name] = socket.gethostbyname(name)
            except OSError:
                found[name] = None
        print(json.dumps(found), flush=True)
        for _ in range(250):
            try:
                sock = socket.create_connection((host, int(port)), timeout=2)
                break
            except OSError:
                time.sleep(0.02)
        with sock:
            sock.sendall(b"hello from " + me.encode())
    """
)


def test_real_processes_reach_each_other_at_hostname_dot_subdomain(
    kubelet, namespace, replicas, core
):
    if kubelet.network is None:
        pytest.skip("no pod network here: it needs root (ip netns)")
    replicas.set_default_fate("*", REAL)
    replica = ("Worker", 2, ["python", "-c", TALK], [])
    command = ["/bin/sh", "-c", entrypoint.entry_script("talk", [replica], 2222)]  # the provider's
    env = (
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "PEER_POD", "value": "talk-node-0-0-x7k2q"},
    )
    for index in (0, 1):
        pod = indexed.pod("talk", index, layout="Worker:2", command=command, env=env)
        core.create_namespaced_pod(namespace, pod)
    server, client = "talk-node-0-0-x7k2q", "talk-node-0-1-x7k2q"
    addresses = {}
    for name in (server, client):
        running = _when(core, namespace, name, lambda p: p.status.pod_ip, timeout=20)
        addresses[name] = running.status.pod_ip
    ended = lambda p: p.status.phase in podstatus.TERMINAL
    done = _when(core, namespace, server, ended, timeout=30)
    terminated = done.status.container_statuses[0].state.terminated
    assert (done.status.phase, terminated.message) == (
        "Succeeded",
        "received hello from talk-node-0-1",
    )
    found = json.loads(_log(core, namespace, client))
    peer, ns = "talk-node-0-0.talk", namespace
    assert found == {
        peer: addresses[server],
        f"{peer}.{ns}": addresses[server],
        f"{peer}.{ns}.svc": addresses[server],
        f"{peer}.{ns}.svc.cluster.local": addresses[server],
        "talk-node-0-1": addresses[client],  # its own bare hostname
        server: None,  # no Service is named after a JobSet pod
    }


# --- the parts alone --------------------------------------------------------------------------


def test_replica_of_reads_the_layout_and_the_completion_index():
    assert podspec.replica_of(indexed.pod("j", 0)) == ("j", "chief", 0)
    assert podspec.replica_of(indexed.pod("j", 2)) == ("j", "worker", 1)
    assert podspec.replica_of(indexed.pod("j", 3)) == ("j", "ps", 0)
    assert podspec.replica_of(indexed.pod("j", 3, layout=None)) == ("j", "node", 3)
    with pytest.raises(ValueError, match="past the replica layout"):
        podspec.replica_of(indexed.pod("j", 4))
    with pytest.raises(ValueError, match="'Worker' is not TYPE:COUNT"):
        podspec.parse_layout("Chief:1,Worker")
    tfjob_pod = {"metadata": {"labels": {podspec.LABEL_JOB: "m", podspec.LABEL_TYPE: "PS"}}}
    assert podspec.replica_of(tfjob_pod) == ("m", "ps", 0)


def test_main_container_is_tensorflow_else_node_else_the_first():
    def main(*names: str) -> str:
        return str(
            podspec.main_container({"spec": {"containers": [{"name": n} for n in names]}})["name"]
        )

    assert (main("proxy", "tensorflow"), main("proxy", "node"), main("a", "b")) == (
        "tensorflow",
        "node",
        "a",
    )


def test_hosts_names_of_a_jobset_pod_and_of_a_tfjob_pod():
    jobset = network._Pod("ns", "j-node-0-1-abcde", "10.1.0.2", "j-node-0-1", "j")
    tfjob = network._Pod("ns", "m-worker-0", "10.1.0.3")
    elsewhere = network._Pod("other", "x", "10.1.0.4")
    long = ["j-node-0-1.j.ns.svc.cluster.local", "j-node-0-1.j.ns.svc", "j-node-0-1.j.ns"]
    assert jobset.names(elsewhere) == long
    assert jobset.names(tfjob) == [*long, "j-node-0-1.j"]
    assert jobset.names(jobset) == [*long, "j-node-0-1.j", "j-node-0-1"]  # its own hostname
    long = ["m-worker-0.ns.svc.cluster.local", "m-worker-0.ns.svc", "m-worker-0.ns"]
    assert tfjob.names(tfjob) == [*long, "m-worker-0"]


def test_conditions_keep_their_transition_time_while_their_status_holds():
    running = [{"name": "node", "ready": True}]
    first = podstatus.conditions(running, "Running", [], "T1")
    again = podstatus.conditions(running, "Running", first, "T2")
    assert {c["lastTransitionTime"] for c in again} == {"T1"}
    failed = podstatus.conditions([{"name": "node", "ready": False}], "Failed", again, "T3")
    ready = next(c for c in failed if c["type"] == "Ready")
    assert [ready[k] for k in ("status", "reason", "lastTransitionTime")] == [
        "False",
        "PodFailed",
        "T3",
    ]
    pending = podstatus.conditions([{"name": "node"}, {"name": "proxy"}], "Pending", [], "T0")
    ready = next(c for c in pending if c["type"] == "Ready")
    assert ready["message"] == "containers with unready status: [node proxy]"


# --- with the Job controller ------------------------------------------------------------------


@pytest.fixture
def batch(kube_api: kubernetes.client.ApiClient) -> Any:
    return kubernetes.client.BatchV1Api(kube_api)


def _all_of(core: Any, namespace: str, count: int) -> list[Any]:
    pods = core.list_namespaced_pod(namespace).items
    return list(pods) if len(pods) == count else []


def _job_when(batch: Any, namespace: str, name: str, check: Any) -> Any:
    def holds() -> Any:
        job = batch.read_namespaced_job(name, namespace)
        return job if check(job) else None

    return jobs.eventually(holds, timeout=30, interval=0.1)


def _ended(job: Any) -> str | None:
    kinds = [c.type for c in job.status.conditions or [] if c.status == "True"]
    return next((kind for kind in kinds if kind in ("Complete", "Failed")), None)


@pytest.mark.parametrize(
    ("chief", "worker", "condition", "counts"),
    [
        (Fate(duration=2.5), RUNS_FOR_EVER, "Complete", (1, 0)),  # index 0 decides
        # backoffLimit 0; the chief and PS it then stops end Failed too, and count
        (RUNS_FOR_EVER, Fate(duration=2.5, exit_code=1), "Failed", (0, 3)),
    ],
    ids=["chief-succeeds", "worker-fails"],
)
def test_an_indexed_job_ends_once_the_pods_it_stops_have_ended(
    kubelet, namespace, replicas, core, batch, chief, worker, condition, counts
):
    replicas.set_fate("idx", "Chief", 0, chief)
    replicas.set_fate("idx", "Worker", 0, worker)
    replicas.set_fate("idx", "PS", 0, RUNS_FOR_EVER)
    batch.create_namespaced_job(namespace, indexed.job("idx", "Chief:1,Worker:1,PS:1"))
    pods = jobs.eventually(lambda: _all_of(core, namespace, 3))
    hosts = {p.spec.hostname: p for p in pods}
    assert set(hosts) == {"idx-node-0-0", "idx-node-0-1", "idx-node-0-2"}
    _job_when(batch, namespace, "idx-node-0", lambda job: job.status.ready == 3)
    job = _job_when(batch, namespace, "idx-node-0", _ended)
    assert (_ended(job), job.status.succeeded or 0, job.status.failed or 0) == (condition, *counts)
    assert not job.status.terminating  # no pod was left terminating without a phase
    ps = hosts["idx-node-0-2"]
    assert kubelet.removals[ps.metadata.uid] == 1  # stopped by the Job controller, once
    jobs.eventually(lambda: _pod(core, namespace, ps.metadata.name) is None)  # finalizer gone
