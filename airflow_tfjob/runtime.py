"""The in-pod runtime of ``@task.tfjob``: run the decorated function in every replica.

Standard library only, and shipped inside the payload (``AIRFLOW_TFJOB_RUNTIME``), so a training
image needs Python and whatever the function imports — TensorFlow, for PS replicas — but neither
Airflow nor this package. The container runs ``python -c BOOTSTRAP``, which loads this module as
``airflow_tfjob.runtime`` (so ``from airflow_tfjob.runtime import context`` works in the function)
and calls ``main()``.

Rules, documented for users:

- every replica runs the function with the same arguments and its own ``TF_CONFIG``;
- PS replicas serve variables (``tf.distribute.Server(...).join()``) instead, unless the task was
  declared with ``ps_handled=True``;
- only the output replica's return value is kept: the chief's, or worker 0's without a chief.
  It is written, JSON-encoded, as the container's termination message (4 KiB at most), or to
  ``output_uri`` when larger, in which case the URI is the result;
- an exception writes its type, message and traceback tail as the termination message and exits 1.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import traceback
import zlib
from dataclasses import dataclass, field
from typing import Any

PAYLOAD_ENV = "AIRFLOW_TFJOB_PAYLOAD"
RUNTIME_ENV = "AIRFLOW_TFJOB_RUNTIME"
TERMINATION_ENV = "AIRFLOW_TFJOB_TERMINATION_LOG"
DEFAULT_TERMINATION_LOG = "/dev/termination-log"
MAX_MESSAGE_BYTES = 4096
TRACEBACK_LINES = 12

BOOTSTRAP = (
    "import base64,os,sys,types,zlib\n"
    "src=zlib.decompress(base64.b64decode(os.environ['AIRFLOW_TFJOB_RUNTIME'])).decode()\n"
    "mod=types.ModuleType('airflow_tfjob.runtime')\n"
    "try:\n import airflow_tfjob as pkg\n"
    "except ImportError:\n pkg=types.ModuleType('airflow_tfjob'); pkg.__path__=[]\n"
    " sys.modules['airflow_tfjob']=pkg\n"
    "sys.modules['airflow_tfjob.runtime']=mod; pkg.runtime=mod\n"
    "exec(compile(src,'airflow_tfjob/runtime.py','exec'),mod.__dict__)\n"
    "sys.exit(mod.main())\n"
)
"""The container's ``python -c`` program."""


@dataclass(frozen=True)
class Role:
    """This replica's place in the job, from ``TF_CONFIG``."""

    task_type: str
    """``chief``, ``worker``, ``ps`` or ``evaluator``."""
    task_index: int
    cluster: dict[str, list[str]] = field(default_factory=dict)
    """The cluster spec: addresses per task type."""

    @property
    def is_chief(self) -> bool:
        """The chief, or worker 0 when the job has no chief."""
        if self.task_type == "chief":
            return True
        return self.task_type == "worker" and self.task_index == 0 and "chief" not in self.cluster

    @property
    def replica(self) -> str:
        """``worker-1``: the name the operator's logs and messages use."""
        return f"{self.task_type}-{self.task_index}"


def context() -> Role:
    """This replica's role (a single-replica job without ``TF_CONFIG`` is worker 0)."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task") or {"type": "worker", "index": 0}
    return Role(
        str(task.get("type", "worker")),
        int(task.get("index", 0)),
        dict(config.get("cluster") or {}),
    )


def encode(data: bytes) -> str:
    """The env-var encoding of payloads: zlib, then base64."""
    return base64.b64encode(zlib.compress(data, 9)).decode("ascii")


def decode(text: str) -> bytes:
    """The inverse of ``encode``."""
    return zlib.decompress(base64.b64decode(text))


def _terminate(message: str) -> None:
    data = message.encode("utf-8")[-MAX_MESSAGE_BYTES:]
    path = os.environ.get(TERMINATION_ENV, DEFAULT_TERMINATION_LOG)
    with open(path, "wb") as out:
        out.write(data)


def _arguments(payload: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    if payload.get("serializer") == "pickle":
        import pickle

        args, kwargs = pickle.loads(base64.b64decode(payload["arguments"]))
        return list(args), dict(kwargs)
    return list(payload["args"]), dict(payload["kwargs"])


def _function(payload: dict[str, Any]) -> Any:
    import linecache

    scope: dict[str, Any] = {"__name__": "airflow_tfjob_task"}
    filename, source = f"<task {payload['name']}>", payload["source"]
    linecache.cache[filename] = (
        len(source),
        None,
        source.splitlines(True),
        filename,
    )  # tracebacks show code
    exec(compile(source, filename, "exec"), scope)
    return scope[payload["name"]]


def _serve_ps(role: Role) -> int:
    try:
        import tensorflow as tf  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        _terminate("PS replicas of @task.tfjob need TensorFlow in the image (or ps_handled=True)")
        return 1
    server = tf.distribute.Server(
        tf.train.ClusterSpec(role.cluster),
        job_name="ps",
        task_index=role.task_index,
        protocol="grpc",
        start=True,
    )
    server.join()
    return 0


def _write_output(value: Any, output_uri: str | None) -> int:
    text = json.dumps(value)
    if len(text.encode("utf-8")) <= MAX_MESSAGE_BYTES:
        _terminate(text)
        return 0
    if not output_uri:
        _terminate(
            f"the return value is {len(text.encode('utf-8'))} bytes of JSON, over the "
            f"{MAX_MESSAGE_BYTES}-byte "
            "termination message; return less, or set output_uri= to store it elsewhere"
        )
        return 1
    if output_uri.startswith("file://") or "://" not in output_uri:
        with open(output_uri.removeprefix("file://"), "w", encoding="utf-8") as out:
            out.write(text)
    else:
        import fsspec  # type: ignore[import-untyped]

        with fsspec.open(output_uri, "w") as out:
            out.write(text)
    _terminate(json.dumps(output_uri))
    return 0


def _describe(exc: BaseException) -> str:
    tail = traceback.format_exception(type(exc), exc, exc.__traceback__)
    lines = "".join(tail).splitlines()[-TRACEBACK_LINES:]
    return f"{type(exc).__name__}: {exc}\n" + "\n".join(lines)


def main() -> int:
    """Run this replica's part; the exit code is the container's."""
    payload = json.loads(decode(os.environ[PAYLOAD_ENV]))
    role = context()
    if role.task_type == "ps" and not payload.get("ps_handled"):
        return _serve_ps(role)
    try:
        args, kwargs = _arguments(payload)
        value = _function(payload)(*args, **kwargs)
    except BaseException as exc:  # the user's error, reported whole
        traceback.print_exc()
        _terminate(_describe(exc))
        return 1
    if role.replica == payload.get("output_replica", "chief-0") or (len(role.cluster) == 0):
        return _write_output(value, payload.get("output_uri"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
