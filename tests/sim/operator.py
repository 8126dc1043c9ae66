"""A simulated Kubeflow training operator (v1.9) plus the kubelet duties for its pods.

It watches TFJobs and pods in one namespace through the real API server and acts as the operator
would (the decisions live in :mod:`tests.sim.decide`): creates pods and headless services, writes
``status`` through the ``tfjobs/status`` subresource. It also plays the parts of the cluster that
do not exist on the test server:

- kubelet: pods bound to the stand-in Node get a :class:`~tests.sim.runner.PodRunner` that lives
  out the replica's scripted :class:`~tests.sim.fates.Fate`; a pod being deleted (it has a
  ``deletionTimestamp`` and would otherwise stay Terminating for ever) has its container killed
  and is then removed with grace period 0;
- garbage collector: when a TFJob goes away its pods and services are deleted; with
  ``propagationPolicy: Foreground`` the ``foregroundDeletion`` finalizer is removed once they are
  gone, with ``Orphan`` the owner references are dropped instead.
"""

from __future__ import annotations

import functools
import json
import logging
import tempfile
import threading
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import kubernetes

from tests.sim import decide, fates, logstore, model, process, runner, watching, workqueue
from tests.sim.kubelet import NODE_NAME
from tests.sim.model import Obj

log = logging.getLogger(__name__)
GROUP, VERSION, PLURAL = "kubeflow.org", "v1", "tfjobs"


class Operator:
    """The simulated operator for one namespace.

    :param api: an admin API client.
    :param namespace: the namespace to act in.
    :param store: the kubelet stand-in's log store (runners write logs there).
    :param node_name: the stand-in Node that pods are bound to.
    :param workdir: where real-process replicas get their directories.
    """

    def __init__(
        self,
        api: kubernetes.client.ApiClient,
        namespace: str,
        *,
        store: logstore.LogStore,
        node_name: str = NODE_NAME,
        workdir: Path | None = None,
    ) -> None:
        self.namespace = namespace
        self.node_name = node_name
        self.script = fates.Script()
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="sim-pods-")
        self.workdir = workdir or Path(self._tmp.name if self._tmp else ".")
        self.ctx = runner.Context(api, store, self.script, process.PortBook(), self.workdir)
        self.core = kubernetes.client.CoreV1Api(api)
        self.custom = kubernetes.client.CustomObjectsApi(api)
        self.queue = workqueue.WorkQueue()
        self.runners: dict[str, runner.PodRunner] = {}
        self._lock = threading.Lock()
        self._uids: dict[str, str] = {}
        self._worker = threading.Thread(target=self._work, daemon=True, name="sim-operator")
        jobs = functools.partial(
            self.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL
        )
        pods = functools.partial(self.core.list_namespaced_pod, namespace)
        self._watchers = [
            watching.Watcher(f"tfjobs/{namespace}", jobs, self._on_job),
            watching.Watcher(f"pods/{namespace}", pods, self._on_pod),
        ]

    # --- scripting -------------------------------------------------------------------------

    def set_fate(self, job: str, replica_type: str, index: int, *runs: fates.Fate) -> None:
        """Script the container runs of one replica (the last one repeats)."""
        self.script.set(job, replica_type, index, runs)

    def set_default_fate(self, replica_type: str, *runs: fates.Fate) -> None:
        """Script every unscripted replica of a type (``"*"`` for any type)."""
        self.script.set_default(replica_type, runs)

    # --- life cycle ------------------------------------------------------------------------

    def start(self) -> Operator:
        """Start watching and reconciling."""
        self._worker.start()
        for watcher in self._watchers:
            watcher.start()
        return self

    def stop(self) -> None:
        """Stop watchers, the reconcile loop, and every container (processes killed)."""
        for watcher in self._watchers:
            watcher.stop()
        self.queue.close()
        self._worker.join(timeout=10)
        with self._lock:
            runners = list(self.runners.values())
            self.runners.clear()
        for pod_runner in runners:
            pod_runner.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    # --- events ----------------------------------------------------------------------------

    def _on_job(self, kind: str, job: Obj) -> None:
        meta = job["metadata"]
        if kind == "DELETED":
            self.queue.add(("collect", meta["uid"], ""))
            return
        self._uids[meta["name"]] = meta["uid"]
        if meta.get("deletionTimestamp"):
            self.queue.add(("collect", meta["uid"], meta["name"]))
        else:
            self.queue.add(("reconcile", meta["name"]))

    def _on_pod(self, kind: str, pod: Obj) -> None:
        meta = pod["metadata"]
        if kind == "DELETED":
            self._stop_runner(meta["uid"])
        elif meta.get("deletionTimestamp"):
            self._finish_deletion(pod)
        elif pod["spec"].get("nodeName") == self.node_name:
            self._ensure_runner(pod)
        job = (meta.get("labels") or {}).get(model.LABEL_JOB)
        if job:
            self.queue.add(("reconcile", job))

    def _ensure_runner(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return
        with self._lock:
            if uid in self.runners:
                return
            self.runners[uid] = pod_runner = runner.PodRunner(self.ctx, pod)
        pod_runner.start()

    def _stop_runner(self, uid: str) -> None:
        with self._lock:
            pod_runner = self.runners.pop(uid, None)
        if pod_runner is not None:
            pod_runner.stop()

    def _finish_deletion(self, pod: Obj) -> None:
        """What a kubelet does for a pod being deleted: kill it, then remove it for good."""
        meta = pod["metadata"]
        self._stop_runner(meta["uid"])
        options = {"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}}
        _ignore_missing(self.core.delete_namespaced_pod, meta["name"], self.namespace, body=options)

    # --- the reconcile loop ----------------------------------------------------------------

    def _work(self) -> None:
        while (key := self.queue.get()) is not None:
            try:
                self._handle(key)
            except Exception:
                log.exception("simulated operator failed on %s; retrying", key)
                self.queue.add(key, after=0.2)

    def _handle(self, key: Hashable) -> None:
        assert isinstance(key, tuple)
        if key[0] == "reconcile":
            self._reconcile(key[1])
        else:
            self._collect(key[1], key[2])

    def _reconcile(self, name: str) -> None:
        try:
            job = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name
            )
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return
            raise
        if job["metadata"].get("deletionTimestamp"):
            return  # the operator leaves jobs being deleted alone
        uid = job["metadata"]["uid"]
        pods = [
            p for p in self._owned("pods", uid, name) if not p["metadata"].get("deletionTimestamp")
        ]
        services = self._owned("services", uid, name)
        plan = decide.reconcile(job, pods, services, logstore.now())
        self._apply(job, plan)

    def _owned(self, kind: str, uid: str, job_name: str) -> list[Obj]:
        lister = (
            self.core.list_namespaced_pod if kind == "pods" else self.core.list_namespaced_service
        )
        body = lister(
            self.namespace, label_selector=model.selector(job_name), _preload_content=False
        )
        items: list[Obj] = _json(body).get("items") or []
        return [item for item in items if model.owned_by(item, uid)]

    def _apply(self, job: Obj, plan: decide.Plan) -> None:
        name = job["metadata"]["name"]
        for pod_name in plan.delete_pods:
            _ignore_missing(self.core.delete_namespaced_pod, pod_name, self.namespace)
        for svc_name in plan.delete_services:
            _ignore_missing(self.core.delete_namespaced_service, svc_name, self.namespace)
        for rtype, index in plan.create:
            manifest = model.pod_manifest(job, rtype, index, node_name=self.node_name)
            _ignore_conflict(self.core.create_namespaced_pod, self.namespace, manifest)
        for rtype, index in plan.create_services:
            manifest = model.service_manifest(job, rtype, index)
            _ignore_conflict(self.core.create_namespaced_service, self.namespace, manifest)
        if plan.status != (job.get("status") or {}):
            self._write_status(job, plan.status)
        if plan.delete_job:
            _ignore_missing(
                self.custom.delete_namespaced_custom_object,
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                name,
            )
        if plan.requeue_after is not None:
            self.queue.add(("reconcile", name), after=plan.requeue_after)

    def _write_status(self, job: Obj, status: Obj) -> None:
        body = {**job, "status": status}
        try:
            self.custom.replace_namespaced_custom_object_status(
                GROUP, VERSION, self.namespace, PLURAL, job["metadata"]["name"], body
            )
        except kubernetes.client.ApiException as exc:
            if exc.status != 409:  # a conflict means a newer job: reconcile that one
                raise
            self.queue.add(("reconcile", job["metadata"]["name"]), after=0.05)

    # --- garbage collection ----------------------------------------------------------------

    def _collect(self, uid: str, name: str) -> None:
        """Delete what the TFJob owned; then release a foreground or orphan deletion."""
        finalizers = self._finalizers(name) if name else []
        orphan = "orphan" in finalizers
        remaining = 0
        for kind in ("pods", "services"):
            for obj in self._all(kind):
                if not model.owned_by(obj, uid):
                    continue
                if orphan:
                    self._drop_owner(kind, obj)
                else:
                    remaining += 1
                    self._delete(kind, obj["metadata"]["name"])
        if remaining:
            self.queue.add(("collect", uid, name), after=0.1)
        elif finalizers:
            self._remove_finalizers(name, finalizers)

    def _finalizers(self, name: str) -> list[str]:
        try:
            job = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name
            )
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return []
            raise
        wanted = {"foregroundDeletion", "orphan"}
        return [f for f in job["metadata"].get("finalizers") or [] if f in wanted]

    def _remove_finalizers(self, name: str, finalizers: list[str]) -> None:
        job = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        kept = [f for f in job["metadata"].get("finalizers") or [] if f not in finalizers]
        patch = {
            "metadata": {"finalizers": kept, "resourceVersion": job["metadata"]["resourceVersion"]}
        }
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, patch, _content_type=runner.MERGE_PATCH
        )

    def _all(self, kind: str) -> list[Obj]:
        lister = (
            self.core.list_namespaced_pod if kind == "pods" else self.core.list_namespaced_service
        )
        items: list[Obj] = _json(lister(self.namespace, _preload_content=False)).get("items") or []
        return items

    def _delete(self, kind: str, name: str) -> None:
        deleter = (
            self.core.delete_namespaced_pod
            if kind == "pods"
            else self.core.delete_namespaced_service
        )
        _ignore_missing(deleter, name, self.namespace)

    def _drop_owner(self, kind: str, obj: Obj) -> None:
        patch = {"metadata": {"ownerReferences": None}}
        patcher = (
            self.core.patch_namespaced_pod if kind == "pods" else self.core.patch_namespaced_service
        )
        _ignore_missing(
            patcher,
            obj["metadata"]["name"],
            self.namespace,
            patch,
            _content_type=runner.MERGE_PATCH,
        )


def _json(response: Any) -> Obj:
    body: Obj = json.loads(response.data)
    return body


def _ignore_missing(call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Call an API method; a 404 (already gone) is fine."""
    try:
        call(*args, **kwargs)
    except kubernetes.client.ApiException as exc:
        if exc.status != 404:
            raise


def _ignore_conflict(call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Call an API method; a 409 (already exists) is fine."""
    try:
        call(*args, **kwargs)
    except kubernetes.client.ApiException as exc:
        if exc.status != 409:
            raise
