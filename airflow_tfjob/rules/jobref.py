"""``JobRef``: which job — its name, namespace and uid — as one value instead of a dict."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, TypedDict, cast


class JobRefDict(TypedDict):
    """``JobRef.to_dict()``: kept in the task state store, pushed as XComs, read by the links."""

    name: str
    namespace: str
    uid: str


@dataclass(frozen=True)
class JobRef:
    """One job (a TFJob or a TrainJob). The uid tells it from a namesake created later."""

    name: str
    namespace: str
    uid: str

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> JobRef:
        """The job an API object (or a trigger event, or a stored ``to_dict()``) names."""
        meta = obj.get("metadata", obj)
        return cls(str(meta["name"]), str(meta["namespace"]), str(meta["uid"]))

    @property
    def where(self) -> str:
        """``namespace/name``, as messages say it."""
        return f"{self.namespace}/{self.name}"

    def to_dict(self) -> JobRefDict:
        """``{name, namespace, uid}`` (task state store, XCom result, links)."""
        return cast(JobRefDict, asdict(self))  # the dataclass's three fields
