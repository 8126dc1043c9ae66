"""Watches a run's namespace from outside the provider: every TFJob created and deleted, per task
instance, so "at most one TFJob per task instance at any moment, and no second submission" is
checked on what the API server saw, not on what the provider says it did."""

from __future__ import annotations

import collections
import threading
from typing import Any

import kubernetes

from airflow_tfjob.model import naming

GROUP, VERSION, PLURAL = "kubeflow.org", "v1", "tfjobs"


class Observer:
    """A watch thread on the namespace's TFJobs (admin identity, past the fault proxy)."""

    def __init__(self, client: kubernetes.client.ApiClient, namespace: str) -> None:
        self.custom = kubernetes.client.CustomObjectsApi(client)
        self.namespace = namespace
        self.created: dict[str, list[str]] = collections.defaultdict(list)
        """Task instance (its identity labels, or ``external``) -> uids created, in order."""
        self.live: dict[str, set[str]] = collections.defaultdict(set)
        self.most_live: collections.Counter[str] = collections.Counter()
        """The most TFJobs of one task instance that existed at the same moment."""
        self.deleted_unfinished: dict[str, list[str]] = collections.defaultdict(list)
        """Task instance -> uids deleted before they finished (a deadline, a kill, or a
        resubmission that replaced a job instead of reattaching to it)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"observe-{namespace}")
        self._ready = threading.Event()

    def start(self) -> Observer:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the observer's first list did not return")
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    @staticmethod
    def owner(obj: dict[str, Any]) -> str:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        try:
            identity = naming.identity(labels)
        except KeyError:
            return "external"
        return ",".join(f"{k.rsplit('/', 1)[-1]}={v}" for k, v in sorted(identity.items()))

    def _seen(self, kind: str, obj: dict[str, Any]) -> None:
        owner, uid = self.owner(obj), obj["metadata"]["uid"]
        if kind == "DELETED":
            self.live[owner].discard(uid)
            conditions = (obj.get("status") or {}).get("conditions") or []
            finished = any(
                c.get("type") in ("Succeeded", "Failed") and c.get("status") == "True"
                for c in conditions
            )
            if not finished:
                self.deleted_unfinished[owner].append(uid)
            return
        if uid not in self.live[owner] and uid not in self.created[owner]:
            self.created[owner].append(uid)
        self.live[owner].add(uid)
        self.most_live[owner] = max(self.most_live[owner], len(self.live[owner]))

    def _run(self) -> None:
        listed = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)
        for obj in listed["items"]:
            self._seen("ADDED", obj)
        version = listed["metadata"]["resourceVersion"]
        self._ready.set()
        while not self._stop.is_set():
            stream = kubernetes.watch.Watch()
            try:
                for event in stream.stream(
                    self.custom.list_namespaced_custom_object, GROUP, VERSION, self.namespace,
                    PLURAL, resource_version=version, timeout_seconds=1,
                ):  # fmt: skip
                    obj = event["object"]
                    version = obj["metadata"]["resourceVersion"]
                    self._seen(event["type"], obj)
            except kubernetes.client.ApiException as exc:
                if exc.status != 410:
                    raise
                listed = self.custom.list_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL
                )
                for obj in listed["items"]:
                    self._seen("ADDED", obj)
                version = listed["metadata"]["resourceVersion"]
