"""The one place that knows where TFJobs live in the Kubernetes API, and the shared, pure parts
of every request the twin hooks make (lightkube's ``prepare_request``/``handle_response`` split)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypedDict, cast

from airflow_tfjob import errors
from airflow_tfjob.model.kube import KubeObject, ObjectList, WatchEvent
from airflow_tfjob.rules import entrypoint, trainjob, trainjobview
from airflow_tfjob.rules.status import JOB_NAME_LABEL, REPLICA_INDEX_LABEL, REPLICA_TYPE_LABEL

GROUP = "kubeflow.org"
VERSION = "v1"
PLURAL = "tfjobs"
RESOURCE = f"{PLURAL}.{GROUP}"
CONTAINER = "tensorflow"
DEFAULT_WATCH_SECONDS = 60
PAGE_SIZE = 500
"""Objects per page of a list (client-go's pager's default): a namespace of 10,000 objects is
read and decoded 500 at a time, never whole."""
CONNECT_TIMEOUT = 10.0
STALL_SLACK_SECONDS = 15
"""A watch stream silent this much longer than its server-side timeout is stalled: give up."""
LOG_SILENCE_SECONDS = 300.0
"""A followed log silent this long is read again from where it stopped (a connection that died
without a word is found so); a stream lives as long as its container otherwise, with no total
timeout (cncf's client would cut every request, streams included, after 60 s)."""
NO_LOG_STATUS = 204
"""kube-apiserver's answer to a log request for a pod bound to no node (``LogLocation`` finds no
kubelet to ask): no content, not an empty log."""
MERGE_PATCH = "application/merge-patch+json"
STRICT_SINCE = (1, 25)
"""The first Kubernetes minor with ``fieldValidation`` on by default (beta in 1.25, GA in 1.27;
alpha, behind a feature gate, in 1.23 and 1.24)."""
_VERSION = re.compile(r"^v?(\d+)\.(\d+)")


def _same(obj: KubeObject) -> KubeObject:
    return obj


def _trainjob_pod(pod: KubeObject) -> KubeObject:
    return trainjobview.pod_view(pod, JOB_NAME_LABEL, REPLICA_TYPE_LABEL, REPLICA_INDEX_LABEL)


@dataclass(frozen=True)
class Api:
    """Where a connection's jobs live, and how its objects read as a TFJob and its pods (what
    ``rules.status`` and everything above it know). ``TFJOB`` (the training operator v1) or
    ``TRAINJOB`` (Kubeflow Trainer v2, through ``rules.trainjob``)."""

    name: str
    group: str
    version: str
    plural: str
    kind: str
    container: str
    """The container that runs a replica's code, whose log and termination are read."""
    job_label: str
    """The label every pod of job ``<name>`` carries with value ``<name>``."""
    manifest: Callable[[KubeObject], KubeObject] = _same
    """A TFJob manifest as this API's object."""
    job: Callable[[KubeObject], KubeObject] = _same
    """This API's job object as a TFJob."""
    pod: Callable[[KubeObject], KubeObject] = _same
    """One of its pods as a TFJob's."""
    propagation: str = "Foreground"
    """How its jobs are deleted. ``Foreground`` (the job is gone once its pods are) for a
    TFJob; ``Background`` for a TrainJob: Trainer v2.3.0 reconciles a TrainJob that is being
    deleted, so each time the garbage collector removes the JobSet of a running or failed one
    deleted in the foreground, Trainer recreates it and its pods start again, until the
    collector wins (seconds to minutes on the test cluster). In the background, the TrainJob
    is gone at once and the collector then removes its JobSet, Jobs and pods."""

    @property
    def resource(self) -> str:
        return f"{self.plural}.{self.group}"

    def log_container(self, container: str | None) -> str:
        """The container to read: a replica's (``tensorflow``, the name the views show) is
        this API's own."""
        return self.container if container in (None, CONTAINER) else str(container)


TFJOB = Api("tfjob", GROUP, VERSION, PLURAL, "TFJob", CONTAINER, JOB_NAME_LABEL)
TRAINJOB = Api(
    "trainjob", "trainer.kubeflow.org", "v1alpha1", "trainjobs", trainjob.KIND, entrypoint.STEP,
    trainjobview.JOBSET_NAME_LABEL, trainjob.to_trainjob, trainjobview.job_view, _trainjob_pod,
    propagation="Background",
)  # fmt: skip
APIS = {api.name: api for api in (TFJOB, TRAINJOB)}


def api_named(name: str | None) -> Api:
    """The API called ``name`` (``tfjob`` when None)."""
    if name is None:
        return TFJOB
    if name not in APIS:
        raise errors.TFJobError(f"api: got {name!r}; must be one of {', '.join(APIS)}")
    return APIS[name]


Access = tuple[str, str, str, str]
"""``(verb, API group, resource, subresource)``."""
ACCESS: tuple[Access, ...] = (
    *((verb, GROUP, PLURAL, "") for verb in ("create", "get", "list", "watch", "delete")),
    *((verb, "", "pods", "") for verb in ("get", "list", "watch")),
)
"""What a run needs in its namespace (``deploy/rbac.yaml`` grants it, and ``patch``)."""
LOG_ACCESS: Access = ("get", "", "pods", "log")


def access_of(api: Api) -> tuple[Access, ...]:
    """``ACCESS`` for the jobs of ``api``."""
    verbs = ("create", "get", "list", "watch", "delete")
    return (*((v, api.group, api.plural, "") for v in verbs), *ACCESS[len(verbs) :])


def access_review(namespace: str, access: Access) -> KubeObject:
    """A SelfSubjectAccessReview body: may this identity do ``access`` in ``namespace``?"""
    verb, group, resource, subresource = access
    attributes = {"namespace": namespace, "verb": verb, "group": group, "resource": resource}
    if subresource:
        attributes["subresource"] = subresource
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    }


def describe_access(access: Access) -> str:
    """``list pods``, ``get pods/log``, ``create tfjobs.kubeflow.org``."""
    verb, group, resource, subresource = access
    name = f"{resource}.{group}" if group else resource
    return f"{verb} {name}/{subresource}" if subresource else f"{verb} {name}"


def watch_kwargs(
    resource_version: str | None, *, name: str | None, label_selector: str, timeout_seconds: int
) -> dict[str, Any]:
    """Arguments of a list call turned watch; a timeout also turns off the clients' own retries,
    and a read timeout past it ends a stream that a broken connection left silent."""
    seconds = max(1, int(timeout_seconds))
    kwargs: dict[str, Any] = {
        "timeout_seconds": seconds,
        "allow_watch_bookmarks": True,
        "_request_timeout": (CONNECT_TIMEOUT, seconds + STALL_SLACK_SECONDS),
    }
    if resource_version:
        kwargs["resource_version"] = resource_version
    if name:
        kwargs["field_selector"] = f"metadata.name={name}"
    if label_selector:
        kwargs["label_selector"] = label_selector
    return kwargs


def pods_selector(job_name: str | None, label_selector: str = "", api: Api | None = None) -> str:
    """The label selector for a job's pods (every job's pods when None), and
    ``label_selector``'s requirements too."""
    label = (api or TFJOB).job_label
    job = f"{label}={job_name}" if job_name else label
    return f"{job},{label_selector}" if label_selector else job


class DeleteOptions(TypedDict, total=False):
    """The body of a deletion."""

    propagationPolicy: str
    """``Foreground``: the job is gone once its pods are (``Api.propagation``)."""
    preconditions: dict[str, str]
    """``{"uid": ...}``: delete only this very object."""


def delete_body(propagation: str, uid: str | None) -> DeleteOptions:
    """DeleteOptions; with ``uid``, a precondition so we never delete a newer namesake."""
    body: DeleteOptions = {"propagationPolicy": propagation}
    if uid:
        body["preconditions"] = {"uid": uid}
    return body


def log_query(
    container: str,
    *,
    tail_lines: int | None = None,
    since_time: str | None,
    timestamps: bool,
    follow: bool = False,
) -> list[tuple[str, str]]:
    """Query parameters of a log read; ``sinceTime`` is raw because neither client has it."""
    query = [("container", container)]
    if tail_lines is not None:
        query.append(("tailLines", str(tail_lines)))
    if since_time:
        query.append(("sinceTime", since_time))
    if timestamps:
        query.append(("timestamps", "true"))
    if follow:
        query.append(("follow", "true"))
    return query


def log_request(
    pod: str, namespace: str, query: list[tuple[str, str]], read_timeout: float | None
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``call_api`` arguments of a raw log request (both clients decode the body themselves:
    the ``kubernetes`` client's own method returns ``str(bytes)`` since 34)."""
    args = (
        "/api/v1/namespaces/{namespace}/pods/{name}/log",
        "GET",
        {"namespace": namespace, "name": pod},
        query,
        {"Accept": "*/*"},
    )
    follow = ("follow", "true") in query
    silence = read_timeout or (LOG_SILENCE_SECONDS if follow else None)
    timeout = (CONNECT_TIMEOUT, silence) if silence else None
    kwargs = {"auth_settings": ["BearerToken"], "_preload_content": False}
    return args, {**kwargs, "_request_timeout": timeout}


def no_log(status: int, pod: str, namespace: str) -> errors.TFJobAPIError | None:
    """The error of a log answer with no log in it (``NO_LOG_STATUS``), else ``None``. Taken as
    a log that ended, it would read as a replica that printed nothing: its lines, once it runs
    on a node, would never be read."""
    if status != NO_LOG_STATUS:
        return None
    return errors.TFJobAPIError(
        f"cannot read the log of pod {namespace}/{pod} yet: the API server has none to give "
        f"(HTTP {status}: the pod is bound to no node)",
        status=status,
    )


def event(raw: dict[str, Any], view: Callable[[KubeObject], KubeObject] = _same) -> WatchEvent:
    """A watch event as ``{"type", "object"}`` with the object as plain JSON (through ``view``,
    but for a BOOKMARK or an ERROR, whose object is no job or pod)."""
    obj = raw.get("raw_object", raw.get("object"))
    if raw.get("type") in ("ADDED", "MODIFIED", "DELETED") and isinstance(obj, dict):
        obj = view(cast(KubeObject, obj))
    return cast(WatchEvent, {"type": raw.get("type"), "object": obj})  # as the server sent it


def decode(data: bytes | str) -> Any:
    """A JSON body."""
    return json.loads(data)


Page = tuple[list[KubeObject], str]
"""A list's items (all, or one page of them) and the list's resourceVersion, where a watch
continues (the same on every page of one list)."""


def page_kwargs(label_selector: str, limit: int, token: str | None) -> dict[str, Any]:
    """Arguments of one page of a list call; the body is decoded here, not into models."""
    kwargs: dict[str, Any] = {"label_selector": label_selector, "limit": limit}
    if token:
        kwargs["_continue"] = token
    return {**kwargs, "_preload_content": False}


def page_result(body: ObjectList) -> tuple[Page, str | None]:
    """One page, and the token of the next (None after the last)."""
    meta = body.get("metadata") or {}
    page = list(body.get("items") or []), str(meta.get("resourceVersion") or "")
    return page, meta.get("continue") or None


def collect(pages: Iterable[Page]) -> Page:
    """Every page's items and the list's resourceVersion."""
    items: list[KubeObject] = []
    version = ""
    for chunk, at in pages:
        items.extend(chunk)
        version = at
    return items, version


def field_validation(git_version: str | None) -> str | None:
    """``Strict`` for an API server that supports ``fieldValidation`` (1.25 and later: an unknown
    or duplicate field fails the create instead of being dropped), else None (the parameter is not
    sent). ``git_version`` is the version API's ``gitVersion``, e.g. ``v1.27.3-gke.100``."""
    match = _VERSION.match((git_version or "").strip())
    if match is None:
        return None
    version = (int(match.group(1)), int(match.group(2)))
    return "Strict" if version >= STRICT_SINCE else None


def create_kwargs(git_version: str | None) -> dict[str, Any]:
    """Extra arguments of ``create_namespaced_custom_object`` for a server of ``git_version``."""
    strict = field_validation(git_version)
    return {"field_validation": strict} if strict else {}
