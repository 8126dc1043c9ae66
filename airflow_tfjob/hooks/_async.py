"""``AsyncTFJobHook``: the asynchronous twin (``kubernetes_asyncio``); see ``hooks.tfjob``."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from airflow.sdk import BaseHook

from airflow_tfjob import errors
from airflow_tfjob.hooks import _clients, _retry
from airflow_tfjob.hooks import _resource as res
from airflow_tfjob.hooks._base import POD, Settings, read_kubeconfig
from airflow_tfjob.model.kube import KubeObject, WatchEvent

YIELD_EVERY = 32
"""A log stream with lines buffered hands the event loop on after this many: the other replicas'
streams open meanwhile (before their pods may be deleted), and a triggerer's other triggers run."""
T = TypeVar("T")
CNCF_HOOKS = "airflow.providers.cncf.kubernetes.hooks.kubernetes"


class AsyncTFJobHook(Settings, BaseHook):
    """Asynchronous TFJob API access (``kubernetes_asyncio``), the twin of ``TFJobHook``.

    :param kubernetes_conn_id: The ``kubernetes`` connection to use (None: only the arguments).
    :param config_file: A kubeconfig file, read into ``config_dict`` (cncf's async hook ignores it).
    :param config_dict: A kubeconfig as a dict (what triggers receive from the worker).
    :param cluster_context: The kubeconfig context.
    :param in_cluster: Use the pod's service account.
    :param disable_verify_ssl: Skip TLS verification (test clusters only).
    """

    def __init__(
        self, kubernetes_conn_id: str | None = Settings.default_conn_name, **kwargs: Any
    ) -> None:
        Settings.__init__(self, kubernetes_conn_id, **kwargs)
        BaseHook.__init__(self)
        self._cncf: Any = None
        self._session: tuple[str, int] | None = None
        """``client_session``'s key and streams while one is open: calls go through the
        process's client of this cluster (``_clients``)."""
        self._sessions = 0
        """How many ``client_session`` are open on this hook (a shared watch opens one on the
        hook of its first subscriber, and may outlive that subscriber's)."""

    async def _kube(self) -> Any:
        if self._cncf is None:
            # The first import loads both Kubernetes clients (seconds of CPU): in a thread, so a
            # triggerer's event loop, and every other trigger on it, keeps running meanwhile.
            cncf = await asyncio.to_thread(importlib.import_module, CNCF_HOOKS)
            config = self.config_dict
            if config is None and self.config_file:
                config = await asyncio.to_thread(read_kubeconfig, self.config_file)
            self._cncf = cncf.AsyncKubernetesHook(config_dict=config, **self._cncf_kwargs())
        return self._cncf

    async def _call(
        self,
        fn: Callable[[Any], Awaitable[T]],
        *,
        verb: str,
        namespace: str,
        name: str = "",
        resource: str = res.RESOURCE,
    ) -> T:
        from tenacity import AsyncRetrying

        try:
            async for attempt in AsyncRetrying(
                **_retry.retry_kwargs(self.max_attempts, self.retry_until)
            ):
                with attempt:
                    async with self._api() as api:
                        return await fn(api)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise self._failure(exc, verb, resource, namespace, name) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _custom(api: Any) -> Any:
        from kubernetes_asyncio.client import CustomObjectsApi

        return CustomObjectsApi(api)

    @staticmethod
    def _core(api: Any) -> Any:
        from kubernetes_asyncio.client import CoreV1Api

        return CoreV1Api(api)

    async def get(self, name: str, namespace: str) -> KubeObject:
        """Read a TFJob; 404 raises ``TFJobNotFound``."""
        call = lambda api: self._custom(api).get_namespaced_custom_object(
            *self._where(namespace), name
        )
        kind = self.job_api.resource
        found = await self._call(call, verb="get", namespace=namespace, name=name, resource=kind)
        return self.job_api.job(found)

    async def delete(
        self, name: str, namespace: str, *, uid: str | None = None, propagation: str | None = None
    ) -> bool:
        """Delete a TFJob and its pods (``Api.propagation``); False when it was already gone."""
        body = res.delete_body(propagation or self.job_api.propagation, uid)
        call = lambda api: self._custom(api).delete_namespaced_custom_object(
            *self._where(namespace), name, body=body
        )
        kind = self.job_api.resource
        try:
            await self._call(call, verb="delete", namespace=namespace, name=name, resource=kind)
        except errors.TFJobNotFound:
            return False
        return True

    async def list_jobs(self, namespace: str, *, label_selector: str = "") -> res.Page:
        """TFJobs matching ``label_selector`` and the list's resourceVersion."""
        pages = self.job_pages(namespace, label_selector=label_selector)
        async with contextlib.aclosing(pages):
            return res.collect([page async for page in pages])

    def job_pages(
        self, namespace: str, *, label_selector: str = "", limit: int = res.PAGE_SIZE
    ) -> AsyncGenerator[res.Page, None]:
        """``list_jobs``, ``limit`` at a time; a list that outlives its continue token raises
        ``TFJobWatchExpired`` (410): list again."""
        list_call = lambda api, **kwargs: self._custom(api).list_namespaced_custom_object(
            *self._where(namespace), **kwargs
        )
        api = self.job_api
        return self._pages(list_call, label_selector, limit, namespace, api.resource, view=api.job)

    async def patch(self, name: str, namespace: str, body: KubeObject) -> KubeObject:
        """Merge-patch a TFJob."""
        call = lambda api: self._custom(api).patch_namespaced_custom_object(
            *self._where(namespace), name, body, _content_type=res.MERGE_PATCH
        )
        kind = self.job_api.resource
        patched = await self._call(
            call, verb="patch", namespace=namespace, name=name, resource=kind
        )
        return self.job_api.job(patched)

    def watch(
        self,
        namespace: str,
        *,
        resource_version: str | None,
        name: str | None = None,
        label_selector: str = "",
        timeout_seconds: int = res.DEFAULT_WATCH_SECONDS,
    ) -> AsyncGenerator[WatchEvent, None]:
        """TFJob events and BOOKMARKs from ``resource_version``; 410 raises TFJobWatchExpired."""
        kwargs = res.watch_kwargs(
            resource_version,
            name=name,
            label_selector=label_selector,
            timeout_seconds=timeout_seconds,
        )
        return self._watch(
            lambda api: self._custom(api).list_namespaced_custom_object,
            self._where(namespace),
            kwargs,
            namespace,
            self.job_api.resource,
            view=self.job_api.job,
        )

    async def list_pods(self, name: str | None, namespace: str) -> res.Page:
        """The job's pods (every TFJob's with ``name=None``) and the list's resourceVersion."""
        pages = self.pod_pages(name, namespace)
        async with contextlib.aclosing(pages):
            return res.collect([page async for page in pages])

    def pod_pages(
        self,
        name: str | None,
        namespace: str,
        *,
        label_selector: str = "",
        limit: int = res.PAGE_SIZE,
    ) -> AsyncGenerator[res.Page, None]:
        """``list_pods``, ``limit`` at a time (410 as in ``job_pages``), with ``label_selector``'s
        requirements too."""
        list_call = lambda api, **kwargs: self._core(api).list_namespaced_pod(namespace, **kwargs)
        selector = res.pods_selector(name, label_selector, self.job_api)
        return self._pages(list_call, selector, limit, namespace, POD, view=self.job_api.pod)

    async def _pages(
        self,
        list_call: Callable[..., Awaitable[Any]],
        label_selector: str,
        limit: int,
        namespace: str,
        resource: str,
        *,
        view: Callable[[KubeObject], KubeObject],
    ) -> AsyncGenerator[res.Page, None]:
        token: str | None = None
        while True:
            kwargs = res.page_kwargs(label_selector, limit, token)

            async def call(api: Any, kwargs: dict[str, Any] = kwargs) -> bytes:
                return bytes(await (await _ok(await list_call(api, **kwargs))).read())

            data = await self._call(call, verb="list", namespace=namespace, resource=resource)
            (items, version), token = res.page_result(res.decode(data))
            yield [view(item) for item in items], version
            if token is None:
                return

    def watch_pods(
        self,
        name: str | None,
        namespace: str,
        *,
        resource_version: str | None,
        label_selector: str = "",
        timeout_seconds: int = res.DEFAULT_WATCH_SECONDS,
    ) -> AsyncGenerator[WatchEvent, None]:
        """Pod events of the job (every TFJob's with ``name=None``) from ``resource_version``,
        of the pods that also match ``label_selector``."""
        kwargs = res.watch_kwargs(
            resource_version,
            name=None,
            label_selector=res.pods_selector(name, label_selector, self.job_api),
            timeout_seconds=timeout_seconds,
        )
        list_pods = lambda api: self._core(api).list_namespaced_pod
        return self._watch(list_pods, (namespace,), kwargs, namespace, POD, view=self.job_api.pod)

    async def _watch(
        self,
        func: Callable[[Any], Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        namespace: str,
        resource: str,
        *,
        view: Callable[[KubeObject], KubeObject],
    ) -> AsyncGenerator[WatchEvent, None]:
        try:
            async with self._api() as api, _json_watch() as stream:
                async for raw in stream.stream(func(api), *args, **kwargs):
                    yield res.event(raw, view)
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:
            raise self._failure(exc, "watch", resource, namespace, "") from exc

    @contextlib.asynccontextmanager
    async def client_session(self, key: str, streams: int) -> AsyncIterator[None]:
        """Within it, this hook's requests, watches and log streams go through the process's
        one client of its cluster (``key``: equal connection settings share it), whose pool holds
        ``streams`` log streams and some requests (``_clients``); not a client per call. Built
        now: a log then opens in the time of one request, which is what a replica that prints
        and exits at once, its pod deleted the moment its job ends, leaves time for. Sessions on
        one hook nest. The client reads the configuration at each request, so refreshed
        credentials apply."""
        async with _clients.shared(await self._kube(), key, streams):
            self._session, self._sessions = (key, streams), self._sessions + 1
            try:
                yield
            finally:
                self._sessions -= 1
                if not self._sessions:
                    self._session = None

    @contextlib.asynccontextmanager
    async def _api(self) -> AsyncIterator[Any]:
        if self._session is not None:
            # each call is a user of the shared client too: it is not closed under a call made
            # while only another session on this hook (a shared watch's) holds it
            async with _clients.shared(await self._kube(), *self._session) as api:
                yield api
        else:
            async with (await self._kube()).get_conn() as api:
                yield api

    async def stream_log(
        self,
        pod: str,
        namespace: str,
        *,
        container: str = res.CONTAINER,
        since_time: str | None = None,
        timestamps: bool = False,
        read_timeout: float | None = None,
    ) -> AsyncGenerator[str, None]:
        """Follow a container's log line by line until the container ends.

        With ``read_timeout``, a silence that long ends the stream with ``TFJobUnavailable``,
        so a follower can check whether it should stop and resume with ``since_time``.
        """
        container = self.job_api.log_container(container)
        query = res.log_query(container, since_time=since_time, timestamps=timestamps, follow=True)
        try:
            async with self._api() as api:
                response = await _log_request(api, pod, namespace, query, read_timeout)
                try:
                    read = 0
                    async for line in response.content:
                        yield line.decode("utf-8", "replace").rstrip("\n")
                        read += 1
                        if read % YIELD_EVERY == 0:  # buffered lines never suspend: let others run
                            await asyncio.sleep(0)
                finally:
                    await _discard(response)
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:
            raise self._failure(exc, "follow log of", POD, namespace, pod) from exc


def _json_watch() -> Any:
    """A ``kubernetes_asyncio`` watch that leaves each object as the JSON the server sent: only
    ``raw_object`` is read, and building a model (``V1Pod``) costs most of an event's CPU."""
    from kubernetes_asyncio import watch

    class JsonWatch(watch.Watch):
        def __init__(self) -> None:
            # The base builds an ApiClient of its own (an aiohttp session and a TLS context,
            # 20 ms of the loop's CPU) only to build models: none here. The stream goes through
            # the client of the function it watches.
            self._raw_return_type, self._stop = None, False
            self._api_client = None  # type: ignore[assignment]
            self.resource_version, self.resp = None, None

        def get_return_type(self, func: object) -> str:
            return ""  # falsy: no model

        async def close(self) -> None:
            # The base class releases a stream cut short: aiohttp then starts closing its TLS
            # connection and forgets it, so the session's close does not wait for it.
            response, self.resp = self.resp, None
            if response is not None:
                await _discard(response)

    return JsonWatch()


async def _discard(response: Any) -> None:
    """End ``response`` and wait until its connection is closed. A stream cut short (a watch or
    a log followed until cancelled) cannot go back to the pool: its connection is aborted (no
    TLS goodbye is owed to a stream we stop reading) rather than closed, which aiohttp would
    leave to finish after the client is gone, and so after a worker's event loop has ended."""
    connection = response.connection
    protocol = connection.protocol if connection is not None else None
    if protocol is None:
        response.release()
        return
    closed = protocol.closed
    if not response.content.at_eof():
        protocol.abort()
    response.release()
    if closed is not None and protocol.transport is None:
        await closed


async def _log_request(
    api: Any, pod: str, namespace: str, query: list[tuple[str, str]], read_timeout: float | None
) -> Any:
    args, kwargs = res.log_request(pod, namespace, query, read_timeout)
    response = await _ok(await api.call_api(*args, **kwargs))
    if (error := res.no_log(response.status, pod, namespace)) is not None:
        response.release()
        raise error
    return response


async def _ok(response: Any) -> Any:
    """``response`` if it succeeded, else the ``ApiException`` the client raises when it reads a
    body itself: with ``_preload_content=False``, ``kubernetes_asyncio`` returns an error as if it
    were the body asked for (a 404's Status as log lines, a 410's as an empty list)."""
    if 200 <= response.status <= 299:
        return response
    from kubernetes_asyncio.client.exceptions import ApiException

    error = ApiException(status=response.status, reason=response.reason)
    error.body = await response.read()  # the Status: errors.translate quotes its message
    response.release()
    raise error
