"""``TFJobHook``: the synchronous twin (``kubernetes`` client); see ``hooks.tfjob``."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from functools import cached_property
from typing import Any, TypeVar

from airflow.sdk import BaseHook

from airflow_tfjob import errors
from airflow_tfjob.hooks import _resource as res
from airflow_tfjob.hooks import _retry
from airflow_tfjob.hooks._base import (
    POD,
    ConnectionSettings,
    Settings,
    config_error,
    default_kubeconfig,
    parse_kubeconfig,
    read_kubeconfig,
)
from airflow_tfjob.model.kube import KubeObject

T = TypeVar("T")


class TFJobHook(Settings, BaseHook):
    """Synchronous TFJob API access (``kubernetes`` client).

    :param kubernetes_conn_id: The ``kubernetes`` connection to use.
    :param config_file: A kubeconfig file (overrides the connection's).
    :param config_dict: A kubeconfig as a dict.
    :param cluster_context: The kubeconfig context.
    :param in_cluster: Use the pod's service account.
    :param disable_verify_ssl: Skip TLS verification (test clusters only).
    """

    def __init__(
        self, kubernetes_conn_id: str | None = Settings.default_conn_name, **kwargs: Any
    ) -> None:
        Settings.__init__(self, kubernetes_conn_id, **kwargs)
        BaseHook.__init__(self)

    @cached_property
    def _kube(self) -> Any:
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

        return KubernetesHook(
            config_file=self.config_file, config_dict=self.config_dict, **self._cncf_kwargs()
        )

    @cached_property
    def api_client(self) -> Any:
        """The ``kubernetes.client.ApiClient`` of this connection; its connections are closed
        when the hook goes away (the client's own ``close`` leaves its pool's sockets open)."""
        try:
            client = self._kube.get_conn()
        except Exception as exc:
            config = config_error(self, exc)
            if config is None:
                raise
            raise config from exc
        _without_urllib3_retries(client)
        weakref.finalize(self, _close_client, client)
        return client

    def trigger_settings(self) -> dict[str, Any]:
        """Connection settings resolved here, on the worker, for ``AsyncTFJobHook(None, **it)``
        in the triggerer, which then needs neither the metadata DB nor the kubeconfig file.
        Holds credentials: only for trigger kwargs, which Airflow encrypts."""

        def extra(name: str) -> Any:
            return extra_field(self, name) if self.kubernetes_conn_id else None

        in_cluster = _flag(self.in_cluster if self.in_cluster is not None else extra("in_cluster"))
        config = self.config_dict
        if config is None and not in_cluster:
            path = self.config_file or extra("kube_config_path") or default_kubeconfig()
            raw = extra("kube_config")
            config = (
                read_kubeconfig(path)
                if path and not raw
                else parse_kubeconfig(raw)
                if raw
                else None
            )
        return ConnectionSettings(
            api=self._api_for_trigger(),
            config_dict=config,
            cluster_context=self.cluster_context or extra("cluster_context"),
            in_cluster=in_cluster or None,
            disable_verify_ssl=_flag(self.disable_verify_ssl or extra("disable_verify_ssl"))
            or None,
        )

    @cached_property
    def job_api(self) -> res.Api:
        """``api``, else the connection's ``tfjob_api`` extra, else the API this cluster serves
        (``tfjob`` when it serves both or neither: a missing CRD is then reported as such)."""
        name = self.api or (extra_field(self, "tfjob_api") if self.kubernetes_conn_id else None)
        if name:
            return res.api_named(str(name))
        for api in res.APIS.values():
            if self._serves(api):
                return api
        return res.TFJOB

    def _api_for_trigger(self) -> str | None:
        """The API name a trigger needs (it cannot ask the cluster itself): the one set or
        found, else found now; None only when the cluster cannot be asked here (the async hook
        then takes ``tfjob``, and its first call says what is wrong)."""
        try:
            return self.job_api.name
        except Exception:  # the configuration is checked where the trigger connects
            return self.api

    def served_hooks(self, namespace: str = "") -> list[TFJobHook]:
        """A hook of this connection for each API its jobs may be of: the one set (``api``, or
        the connection's ``tfjob_api``), else each the cluster serves (this hook when none).
        For what reads every job of a connection in ``namespace``: the reaper, the TFJobs page.
        A TrainJob API this identity may not list there is left out (a cluster may serve it to
        a deployment that runs only TFJobs)."""
        if self.api or (self.kubernetes_conn_id and extra_field(self, "tfjob_api")):
            return [self]
        served = [
            api.name
            for api in res.APIS.values()
            if self._serves(api)
            and (
                api == res.TFJOB
                or self._allowed(namespace, ("list", api.group, api.plural, "")) is not False
            )
        ]
        if len(served) <= 1:
            return [self]
        settings = {
            "config_file": self.config_file, "config_dict": self.config_dict,
            "cluster_context": self.cluster_context, "in_cluster": self.in_cluster,
            "disable_verify_ssl": self.disable_verify_ssl, "max_attempts": self.max_attempts,
        }  # fmt: skip
        return [TFJobHook(self.kubernetes_conn_id, api=name, **settings) for name in served]

    def _serves(self, api: res.Api) -> bool:
        """Whether the cluster serves ``api``'s jobs (its group version lists them)."""
        path = f"/apis/{api.group}/{api.version}"
        call = lambda: self.api_client.call_api(
            path, "GET", {}, [], {"Accept": "application/json"},
            auth_settings=["BearerToken"], _preload_content=False,
        )  # fmt: skip
        try:
            response = self._call(call, verb="discover", namespace="", resource=api.resource)
        except errors.TFJobError:
            return False
        listed = res.decode(response.data).get("resources") or []
        return any(item.get("name") == api.plural for item in listed)

    @property
    def _kind(self) -> str:
        return self.job_api.resource

    def get_namespace(self) -> str | None:
        """The connection's default namespace, if it sets one."""
        namespace = self._kube.get_namespace()
        return str(namespace) if namespace else None

    def _call(
        self,
        fn: Callable[[], T],
        *,
        verb: str,
        namespace: str,
        name: str = "",
        resource: str = res.RESOURCE,
    ) -> T:
        from tenacity import Retrying

        try:
            for attempt in Retrying(**_retry.retry_kwargs(self.max_attempts, self.retry_until)):
                with attempt:
                    return fn()
        except errors.TFJobError:
            raise
        except Exception as exc:
            raise self._failure(exc, verb, resource, namespace, name) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    @cached_property
    def _custom(self) -> Any:
        from kubernetes.client import CustomObjectsApi

        return CustomObjectsApi(self.api_client)

    @cached_property
    def _core(self) -> Any:
        from kubernetes.client import CoreV1Api

        return CoreV1Api(self.api_client)

    def missing_permissions(self, namespace: str, *, logs: bool = True) -> list[str]:
        """What this identity may not do in ``namespace`` of what a run needs (empty when all is
        allowed, or when the server cannot answer access reviews)."""
        missing = []
        for access in (*res.access_of(self.job_api), *([res.LOG_ACCESS] if logs else [])):
            allowed = self._allowed(namespace, access)
            if allowed is None:
                return []  # no answer is not a "no": the real calls will say
            if not allowed:
                missing.append(res.describe_access(access))
        return missing

    def _allowed(self, namespace: str, access: res.Access) -> bool | None:
        """Whether this identity may do ``access`` in ``namespace`` (None: no answer)."""
        from kubernetes.client import AuthorizationV1Api

        body = res.access_review(namespace, access)
        review = lambda: AuthorizationV1Api(self.api_client).create_self_subject_access_review(body)
        try:
            answer = self._call(review, verb="review access in", namespace=namespace,
                                resource="authorization").to_dict()  # fmt: skip
        except errors.TFJobAPIError:
            return None
        return bool((answer.get("status") or {}).get("allowed"))

    def server_version(self) -> str | None:
        """The API server's ``gitVersion`` (``v1.36.3``), read once per hook; None when it cannot
        be read (not remembered, so the next call asks again)."""
        if self._server_version is None:
            from kubernetes.client import VersionApi

            call = lambda: VersionApi(self.api_client).get_code().git_version
            try:
                version = self._call(call, verb="read", namespace="", resource="version")
            except errors.TFJobError as exc:
                self.log.debug("Cannot read the API server's version: %s", exc)
                return None
            self._server_version = str(version or "") or None
        return self._server_version

    def create(self, manifest: KubeObject) -> KubeObject:
        """Create a TFJob; 409 raises ``TFJobConflict``. With ``fieldValidation=Strict`` where
        the server supports it (1.25+), so a field it does not know fails the create."""
        ns, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
        extra = res.create_kwargs(self.server_version())
        call: Callable[[], KubeObject] = lambda: self._custom.create_namespaced_custom_object(
            *self._where(ns), self.job_api.manifest(manifest), **extra
        )
        created = self._call(call, verb="create", namespace=ns, name=name, resource=self._kind)
        return self.job_api.job(created)

    def get(self, name: str, namespace: str) -> KubeObject:
        """Read a TFJob; 404 raises ``TFJobNotFound``."""
        call: Callable[[], KubeObject] = lambda: self._custom.get_namespaced_custom_object(
            *self._where(namespace), name
        )
        found = self._call(call, verb="get", namespace=namespace, name=name, resource=self._kind)
        return self.job_api.job(found)

    def delete(
        self, name: str, namespace: str, *, uid: str | None = None, propagation: str | None = None
    ) -> bool:
        """Delete a TFJob and its pods (``Api.propagation``); False when it was already gone."""
        body = res.delete_body(propagation or self.job_api.propagation, uid)
        call = lambda: self._custom.delete_namespaced_custom_object(
            *self._where(namespace), name, body=body
        )
        try:
            self._call(call, verb="delete", namespace=namespace, name=name, resource=self._kind)
        except errors.TFJobNotFound:
            return False
        return True

    def list_jobs(self, namespace: str, *, label_selector: str = "") -> res.Page:
        """TFJobs matching ``label_selector`` and the list's resourceVersion."""
        return res.collect(self.job_pages(namespace, label_selector=label_selector))

    def job_pages(
        self, namespace: str, *, label_selector: str = "", limit: int = res.PAGE_SIZE
    ) -> Iterator[res.Page]:
        """``list_jobs``, ``limit`` at a time; a list that outlives its continue token raises
        ``TFJobWatchExpired`` (410): list again."""
        list_call = lambda **kwargs: self._custom.list_namespaced_custom_object(
            *self._where(namespace), **kwargs
        )
        yield from self._pages(
            list_call, label_selector, limit, namespace, self._kind, view=self.job_api.job
        )

    def patch(self, name: str, namespace: str, body: KubeObject) -> KubeObject:
        """Merge-patch a TFJob (e.g. ``{"spec": {"runPolicy": {"suspend": true}}}``)."""
        call: Callable[[], KubeObject] = lambda: self._custom.patch_namespaced_custom_object(
            *self._where(namespace), name, body, _content_type=res.MERGE_PATCH
        )
        patched = self._call(
            call, verb="patch", namespace=namespace, name=name, resource=self._kind
        )
        return self.job_api.job(patched)

    def list_pods(self, name: str | None, namespace: str) -> res.Page:
        """The job's pods (every TFJob's with ``name=None``) and the list's resourceVersion."""
        return res.collect(self.pod_pages(name, namespace))

    def pod_pages(
        self,
        name: str | None,
        namespace: str,
        *,
        label_selector: str = "",
        limit: int = res.PAGE_SIZE,
    ) -> Iterator[res.Page]:
        """``list_pods``, ``limit`` at a time (410 as in ``job_pages``), with ``label_selector``'s
        requirements too."""
        list_call = lambda **kwargs: self._core.list_namespaced_pod(namespace, **kwargs)
        selector = res.pods_selector(name, label_selector, self.job_api)
        yield from self._pages(list_call, selector, limit, namespace, POD, view=self.job_api.pod)

    def _pages(
        self,
        list_call: Callable[..., Any],
        label_selector: str,
        limit: int,
        namespace: str,
        resource: str,
        *,
        view: Callable[[KubeObject], KubeObject],
    ) -> Iterator[res.Page]:
        token: str | None = None
        while True:
            kwargs = res.page_kwargs(label_selector, limit, token)

            def call(kwargs: dict[str, Any] = kwargs) -> Any:
                return list_call(**kwargs)

            response = self._call(call, verb="list", namespace=namespace, resource=resource)
            (items, version), token = res.page_result(res.decode(response.data))
            yield [view(item) for item in items], version
            if token is None:
                return

    def read_log(
        self,
        pod: str,
        namespace: str,
        *,
        container: str = res.CONTAINER,
        tail_lines: int | None = None,
        since_time: str | None = None,
        timestamps: bool = False,
    ) -> str:
        """A container's log so far."""
        query = res.log_query(
            self.job_api.log_container(container),
            tail_lines=tail_lines,
            since_time=since_time,
            timestamps=timestamps,
        )
        call = lambda: bytes(self._log_request(pod, namespace, query, None).data)
        data = self._call(call, verb="read log of", namespace=namespace, name=pod, resource=POD)
        return data.decode("utf-8", "replace")

    def _log_request(
        self, pod: str, namespace: str, query: list[tuple[str, str]], read_timeout: float | None
    ) -> Any:
        args, kwargs = res.log_request(pod, namespace, query, read_timeout)
        response = self.api_client.call_api(*args, **kwargs)
        if (error := res.no_log(response.status, pod, namespace)) is not None:
            response.release_conn()
            raise error
        return response


def extra_field(hook: TFJobHook, name: str) -> Any:
    """A connection extra, in either spelling, as the cncf hook reads them."""
    return hook._kube._get_field(name)


def _flag(value: Any) -> bool:
    """A connection extra as a boolean: ``"false"`` and ``"0"`` are false, as in the UI's form."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    return bool(value)


def _without_urllib3_retries(client: Any) -> None:
    """Leave retries to ``_call`` alone. urllib3's default (``Retry(3)``) also retries a GET
    answered 429 or 503 with ``Retry-After``, sleeping as asked, inside each of our tries: a
    throttled read took four times the waits we count, past a sensor's timeout."""
    from kubernetes.client.rest import RESTClientObject

    client.configuration.retries = False  # errors raise at once; _call retries what may pass
    client.rest_client.pool_manager.clear()
    client.rest_client = RESTClientObject(client.configuration)


def _close_client(client: Any) -> None:
    """Close an ``ApiClient`` for real: its pool's sockets, then its thread pool."""
    client.rest_client.pool_manager.clear()
    client.close()
