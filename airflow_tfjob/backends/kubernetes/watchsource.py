"""What one shared watch asks the API server: its list, a page at a time, and its event stream.

Three kinds of watch (``watches``): a namespace's jobs that this provider labels (``OURS``:
the server filters the others out), one job by name (``only``: a job not labelled as ours, or
a process that follows one job), and pods: those carrying the task identity labels
(``OUR_PODS``, ``naming.POD_SELECTOR``), or every job's (``PODS``), or one job's. The jobs are
the hook's API's (TFJobs, or TrainJobs read as TFJobs), its pods those of that API's jobs.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from airflow_tfjob import errors
from airflow_tfjob.backends.kubernetes.objects import OUR_PODS
from airflow_tfjob.hooks.tfjob import AsyncTFJobHook
from airflow_tfjob.model import naming
from airflow_tfjob.model.kube import KubeObject, WatchEvent

STREAM_SECONDS = 120
"""Server-side length of one watch stream (the hooks end a stream silent for longer)."""
LIST_PAGE = 500
"""Objects per page of a (re)list: the store is filled a page at a time, and a namespace of
10,000 objects is never decoded whole."""
OURS = naming.selector()
"""The jobs this provider creates (``app.kubernetes.io/managed-by=airflow-tfjob``)."""

Page = tuple[list[KubeObject], str]


class Source:
    """The requests of the watch of ``kind`` in ``namespace`` (of the one object ``only``)."""

    def __init__(self, hook: AsyncTFJobHook, namespace: str, kind: str, only: str | None) -> None:
        self.hook, self.namespace, self.kind, self.only = hook, namespace, kind, only

    def pages(self) -> AsyncGenerator[Page, None]:
        """The list, a page of ``LIST_PAGE`` at a time, each with the list's resourceVersion."""
        if self.kind == "tfjobs":
            if self.only is not None:
                return self._one()
            return self.hook.job_pages(self.namespace, label_selector=OURS, limit=LIST_PAGE)
        return self.hook.pod_pages(
            self.only, self.namespace, label_selector=self._pod_selector, limit=LIST_PAGE
        )

    def events(self, version: str) -> AsyncGenerator[WatchEvent, None]:
        """The stream from ``version``, ``STREAM_SECONDS`` long at most."""
        if self.kind != "tfjobs":
            return self.hook.watch_pods(
                self.only,
                self.namespace,
                resource_version=version,
                label_selector=self._pod_selector,
                timeout_seconds=STREAM_SECONDS,
            )
        if self.only is not None:
            return self.hook.watch(
                self.namespace,
                resource_version=version or None,
                name=self.only,
                timeout_seconds=STREAM_SECONDS,
            )
        return self.hook.watch(
            self.namespace,
            resource_version=version,
            label_selector=OURS,
            timeout_seconds=STREAM_SECONDS,
        )

    @property
    def _pod_selector(self) -> str:
        return naming.POD_SELECTOR if self.kind == OUR_PODS else ""

    async def _one(self) -> AsyncGenerator[Page, None]:
        """The one job's "list": itself, or nothing when it does not exist."""
        try:
            obj = await self.hook.get(self.only or "", self.namespace)
        except errors.TFJobNotFound:
            yield [], ""
            return
        yield [obj], str((obj.get("metadata") or {}).get("resourceVersion") or "")
