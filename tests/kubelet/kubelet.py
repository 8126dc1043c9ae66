"""The process kubelet: the one stand-in left between the real control plane and a replica.

The real training operator creates pods and Services, kube-controller-manager collects garbage,
and nothing schedules or runs pods. This kubelet does that part, through the real API:

- it registers a Node (``tfjob-kubelet``) whose status points the apiserver's log proxy at its
  ``containerLogs`` endpoint (:mod:`tests.kubelet.logserver`);
- it binds every unscheduled pod of the default scheduler to that Node (``pods/binding``, as
  kube-scheduler would);
- for each pod bound to it, a :class:`~tests.kubelet.runner.PodRunner` runs the main container
  (``tensorflow`` of a TFJob pod, ``node`` of a TrainJob's): the pod's real command as a local
  process (``REAL``) or the namespace's scripted :class:`~tests.kubelet.fates.Fate` (how long it
  runs, its lines, exit code, termination message, eviction), and writes ``pods/status`` as a
  kubelet does;
- a pod being deleted has its container stopped (SIGTERM, its deletion grace, SIGKILL), gets its
  terminal phase if it had none (Failed for a killed container), and is then removed for good
  (grace period 0, uid precondition). Only then: the Job controller counts a pod that is
  terminating without a terminal phase as not finished, and JobSet's restarts wait for the old
  Job's pods to go (foreground deletion).

One deletion per pod: a pod may stay after the final delete (the Job controller's
``batch.kubernetes.io/job-tracking`` finalizer, until it has counted the pod), and its later
updates (the finalizer's removal among them) must not start it all again; :attr:`Kubelet.removals`
counts the final deletes per uid, so a test can see that. The pod's logs stay readable until it
has left the API, as a kubelet keeps a dead container's log until the pod is removed.

Pods are told apart by uid: the operator re-creates a failed replica under the same name.
Images are ignored: a replica runs with the test environment's Python.
"""

from __future__ import annotations

import collections
import logging
import tempfile
import threading
from pathlib import Path

import kubernetes

from tests.kubelet import fates, logserver, podstatus, runner, watching
from tests.kubelet import network as network_mod
from tests.kubelet.podspec import Obj

log = logging.getLogger(__name__)
NODE_NAME = "tfjob-kubelet"
DEFAULT_SCHEDULER = "default-scheduler"


class Kubelet:
    """Runs every pod of the cluster on one Node; scripts per namespace (:meth:`script`).

    :param api: an admin API client of the cluster.
    :param workdir: where real-process replicas get their directories.
    :param real_by_default: unscripted namespaces run their pods' real commands (a cluster
        started by hand); otherwise they get :func:`~tests.kubelet.fates.default_fate`.
    :param network: give each pod a network namespace and address (:mod:`tests.kubelet.network`);
        by default wherever that is possible (root).
    """

    def __init__(
        self, api: kubernetes.client.ApiClient, *, workdir: Path | None = None,
        real_by_default: bool = False, network: bool | None = None,
    ) -> None:  # fmt: skip
        self.api = api
        self.node_name = NODE_NAME
        self.logs = logserver.LogServer(api, node_name=NODE_NAME)
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="kubelet-pods-")
        self.workdir = workdir or Path(self._tmp.name if self._tmp else ".")
        self.real_by_default = real_by_default
        use_network = network_mod.available() if network is None else network
        self.network = network_mod.PodNetwork() if use_network else None
        self._scripts: dict[str, fates.Script] = {}
        self._runners: dict[str, runner.PodRunner] = {}
        self._deleting: set[str] = set()
        """Uids of pods whose deletion this kubelet has taken on, until they leave the API."""
        self.removals: collections.Counter[str] = collections.Counter()
        """Final (grace 0) deletes issued, per pod uid."""
        self._lock = threading.Lock()
        self.core = kubernetes.client.CoreV1Api(api)
        self._watcher = watching.Watcher(
            "pods", self.core.list_pod_for_all_namespaces, self._on_pod
        )

    # --- scripting -------------------------------------------------------------------------

    def script(self, namespace: str) -> fates.Script:
        """The replica script of ``namespace`` (made on first use)."""
        with self._lock:
            if namespace not in self._scripts:
                self._scripts[namespace] = fates.Script(real=self.real_by_default)
            return self._scripts[namespace]

    def forget(self, namespace: str) -> None:
        """Drop a namespace's script (its test ended)."""
        with self._lock:
            self._scripts.pop(namespace, None)

    # --- life cycle ------------------------------------------------------------------------

    def start(self) -> Kubelet:
        """Serve logs, register the Node, and start running pods."""
        self.logs.start()
        if self.network is not None:
            self.network.start()
        self._watcher.start()
        log.info("process kubelet %s serving logs on 127.0.0.1:%d", NODE_NAME, self.logs.port)
        return self

    def stop(self) -> None:
        """Stop watching and kill every container (the Node stays; it is harmless)."""
        self._watcher.stop()
        with self._lock:
            runners = list(self._runners.values())
            self._runners.clear()
        for pod_runner in runners:
            pod_runner.stop()
        self.logs.stop()
        if self.network is not None:
            self.network.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def running(self) -> int:
        """How many pods have a live runner."""
        with self._lock:
            return sum(1 for r in self._runners.values() if r.alive())

    # --- events ----------------------------------------------------------------------------

    def _on_pod(self, kind: str, pod: Obj) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        if kind == "DELETED":
            self._stop_runner(meta["uid"])
            self.logs.store.forget_pod(meta["namespace"], meta["name"], uid=meta["uid"])
            with self._lock:
                self._deleting.discard(meta["uid"])
        elif meta.get("deletionTimestamp"):
            self._take_deletion(pod)
        elif not spec.get("nodeName"):
            if spec.get("schedulerName", DEFAULT_SCHEDULER) == DEFAULT_SCHEDULER:
                self._bind(pod)  # as kube-scheduler would; another scheduler's pods wait for it
        elif spec["nodeName"] == self.node_name:
            self._ensure_runner(pod)

    def _bind(self, pod: Obj) -> None:
        meta = pod["metadata"]
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "uid": meta["uid"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
        }
        try:
            self.core.create_namespaced_pod_binding(
                meta["name"], meta["namespace"], body, _preload_content=False
            )
        except kubernetes.client.ApiException as exc:
            if exc.status not in (404, 409):  # gone, or bound meanwhile
                raise

    def _context(self, namespace: str) -> runner.Context:
        script = self.script(namespace)
        return runner.Context(self.api, self.logs.store, script, self.workdir, self.network)

    def _ensure_runner(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        if (pod.get("status") or {}).get("phase") in podstatus.TERMINAL:
            return
        ctx = self._context(pod["metadata"]["namespace"])
        with self._lock:
            if uid in self._runners:
                return
            self._runners[uid] = pod_runner = runner.PodRunner(ctx, pod)
        pod_runner.start()

    def _stop_runner(self, uid: str, grace: float = 0.0, *, finish: bool = False) -> bool:
        """Stop the pod's runner (``finish``: and write its terminal status); whether it had
        one."""
        with self._lock:
            pod_runner = self._runners.pop(uid, None)
        if pod_runner is not None:
            pod_runner.stop(grace, finish=finish)
        return pod_runner is not None

    def _take_deletion(self, pod: Obj) -> None:
        """Start finishing a pod's deletion, once per pod: every later event of it (it may stay,
        held by a finalizer) finds it taken."""
        uid = pod["metadata"]["uid"]
        with self._lock:
            if uid in self._deleting:
                return
            self._deleting.add(uid)
        name = f"delete-{pod['metadata']['name']}"
        threading.Thread(target=self._finish_deletion, args=(pod,), daemon=True, name=name).start()

    def _finish_deletion(self, pod: Obj) -> None:
        """What a kubelet does for a pod being deleted: stop it, write its terminal status if it
        had none, then remove it for good. A failed final delete is tried again on the pod's
        next event."""
        meta, spec = pod["metadata"], pod["spec"]
        grace = float(meta.get("deletionGracePeriodSeconds") or 0)
        had_runner = self._stop_runner(meta["uid"], grace, finish=True)
        ours = spec.get("nodeName") == self.node_name
        ended = (pod.get("status") or {}).get("phase") in podstatus.TERMINAL
        if ours and not had_runner and not ended:  # bound before this kubelet ran: never run
            runner.PodRunner(self._context(meta["namespace"]), pod).finish()
        options = {"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}}
        with self._lock:
            self.removals[meta["uid"]] += 1
        try:
            self.core.delete_namespaced_pod(
                meta["name"], meta["namespace"], body=options, _preload_content=False
            )
        except kubernetes.client.ApiException as exc:
            if exc.status not in (404, 409):  # gone already, or a namesake (uid differs)
                log.warning("could not remove pod %s/%s: %s", meta["namespace"], meta["name"], exc)
                with self._lock:
                    self._deleting.discard(meta["uid"])
