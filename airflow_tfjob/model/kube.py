"""The Kubernetes objects the provider reads, and the manifests it builds, as typed JSON.

Plain dicts at run time (what the clients decode and send); these types say which keys the
provider reads or writes. A key not named here passes through untouched. ``spec`` and ``status``
stay free-form: a TFJob's and a pod's differ, and the rules that read them (``rules.status``)
tolerate what they do not expect.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict


class ObjectMeta(TypedDict, total=False):
    """An object's ``metadata`` (of a manifest: what it sets, name and namespace at least)."""

    name: str
    generateName: str
    namespace: str
    uid: str
    """Tells an object from a namesake created after it was deleted."""
    resourceVersion: str
    """Where a watch goes on from."""
    creationTimestamp: str
    """RFC 3339, ``2026-12-05T10:00:00Z``."""
    deletionTimestamp: str
    """Set once the object is being deleted (finalizers pending)."""
    labels: dict[str, str]
    annotations: dict[str, str]


class JobCondition(TypedDict, total=False):
    """One of a job's ``status.conditions`` (``Created``, ``Running``, ``Succeeded``, ...)."""

    type: str
    status: str
    """``True``, ``False`` or ``Unknown``."""
    reason: str
    message: str
    lastTransitionTime: str
    lastUpdateTime: str


class KubeObject(TypedDict, total=False):
    """A job or a pod as the hooks return it (a TrainJob and its pods read as a TFJob's:
    ``rules.trainjobview``), or a manifest (or merge patch) sent to the API server."""

    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: dict[str, Any]
    """A TFJob's ``tfReplicaSpecs``, ``runPolicy``...; a TrainJob's ``trainer``,
    ``runtimeRef``...; a pod's spec."""
    status: dict[str, Any]
    """What the controller reports: a TFJob's conditions, replica statuses and times; a pod's
    phase and container statuses."""


ListMeta = TypedDict("ListMeta", {"resourceVersion": str, "continue": str}, total=False)
"""A list's ``metadata``: where a watch goes on from, and the token of the next page (a keyword
in Python, hence this form)."""


class ObjectList(TypedDict, total=False):
    """One page of a list call, as the API server sends it."""

    metadata: ListMeta
    items: list[KubeObject]


EventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "LISTED", "ABSENT", "STALE"]
"""A watch stream's own (``ADDED`` ... ``BOOKMARK``), and the provider's: ``LISTED`` (an object
of a list), ``ABSENT`` (not in the list), ``STALE`` (the shared watch stopped being current)."""


class WatchEvent(TypedDict):
    """An event of a watch stream (the hooks'), or of a shared watch in a follower's queue."""

    type: EventType
    object: KubeObject
    """The object as it is now (its last state when ``DELETED``; ``{}`` when ``STALE``)."""
    kind: NotRequired[str]
    """Which shared watch told it (``tfjobs``, ``pods``, ``our-pods``): set on every event put
    into a follower's queue, absent on the hooks' own."""
