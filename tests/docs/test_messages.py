"""Every message and log line the documents quote is checked, one way or another.

What is quoted: each line of a ``text`` (or untagged) fenced block in README.md and docs/*.md, and
each code span in the first column of a ``message`` table of troubleshooting.md. Each must be
(a) made here by the code that makes it (``Made``: the spec's pure functions, the error
translation, the message constants, the dry run's ``main``) and compared whole, ``...`` and
``<placeholders>`` matching anything; or already made and compared by test_errors.py; or
(b) ``Asserted`` by an existing test that makes it for real (a fake API server, local processes,
a cluster): that test's source must assert a string that the quote contains, so changing the
quote or the test fails here, and changing the code fails there; or (c) ``Exempt``, with the
reason. A quote in none of them fails ``test_every_quote_is_checked``."""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.docs import test_errors
from tests.docs.markdown import DOCUMENTS, ROOT, all_code_spans, code_spans, fences, tables


@dataclass(frozen=True)
class Made:
    """(a) The text the code makes (an exception is made by raising it)."""

    make: Callable[[], object]


@dataclass(frozen=True)
class Asserted:
    """(b) An existing test makes the message and asserts ``text``, which the quote contains."""

    test: str
    text: str


@dataclass(frozen=True)
class Exempt:
    """(c) Not compared, for ``reason``."""

    reason: str


Check = Made | Asserted | Exempt


# ---------------------------------------------------------------------------------------------
# What makes the messages: the code's own functions and constants, with the quoted inputs.


def _text(make: Callable[[], object]) -> str:
    try:
        made = make()
    except Exception as exc:  # the message is what is compared
        return f"{type(exc).__name__}: {exc}"
    return str(made)


def _status(message: str = "", causes: tuple[tuple[str, str], ...] = ()) -> str:
    """The body of an API server's error: a ``Status``."""
    details = {"name": "train", "causes": [{"field": f, "message": m} for f, m in causes]}
    return json.dumps({"kind": "Status", "message": message, "details": details})


def _api(status: int, body: object, verb: str = "create", name: str = "train") -> Exception:
    from airflow_tfjob import errors

    return errors.translate(
        status, "Reason", body, verb=verb, resource="tfjobs.kubeflow.org", namespace="ml", name=name
    )


def _forbidden_check() -> object:
    from airflow_tfjob.backends.kubernetes.submit import check_permissions
    from airflow_tfjob.hooks._resource import ACCESS, LOG_ACCESS, describe_access

    class Hook:  # what the access reviews answered: create and the logs refused
        kubernetes_conn_id = "kubernetes_default"

        def missing_permissions(self, namespace: str, *, logs: bool) -> list[str]:
            return [describe_access(ACCESS[0]), describe_access(LOG_ACCESS)]

    return check_permissions(Hook(), "ml", logs=True)  # type: ignore[arg-type]


def _failure(status_code: int | None, exc: Exception) -> object:
    from airflow_tfjob.hooks._base import failure

    if status_code is not None:
        exc.status = status_code  # type: ignore[attr-defined]
    return failure(exc, "get", "tfjobs.kubeflow.org", "ml", "train")


def _tls() -> object:
    import ssl

    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_message = "unable to get local issuer certificate"
    return _failure(None, exc)


def _unreachable() -> object:
    return _failure(None, ConnectionRefusedError(111, "Connection refused"))


def _bad_config() -> object:
    from airflow_tfjob.hooks._base import config_error
    from airflow_tfjob.hooks.tfjob import TFJobHook

    class ConfigException(Exception):
        __module__ = "kubernetes.config.config_exception"

    hook = TFJobHook("team_cluster", config_file="/etc/kube/config")
    return config_error(hook, ConfigException("Invalid kube-config file. Expected key contexts"))


def _state(**kwargs: object) -> object:
    from airflow_tfjob.rules.status import JobState

    return JobState(**kwargs)  # type: ignore[arg-type]


def _outcome(replica: str, **kwargs: object) -> object:
    from airflow_tfjob.rules.status import ReplicaOutcome

    kwargs = {"terminated": True, **kwargs}
    return ReplicaOutcome(replica=replica, pod=f"train-{replica}", **kwargs)  # type: ignore[arg-type]


def _failed(replicas: int = 2, condition: str = "TFJob ml/train has failed") -> str:
    """What the training operator's condition and the pods make of a failed job."""
    from airflow_tfjob.rules import report

    state = _state(phase="Failed", reason="TFJobFailed", message=condition)
    failures = [
        _outcome("worker-1", exit_code=2, message="ValueError: bad input"),
        _outcome("worker-0", exit_code=137),
    ][:replicas]
    return report.failure_message("ml/train", state, failures, lambda _: [])  # type: ignore[arg-type]


def _not_started(waiting: bool) -> str:
    from airflow_tfjob.rules import report

    outcomes = (
        [
            _outcome("worker-0", terminated=False, waiting_reason=""),
            _outcome("chief-0", terminated=False, waiting_reason="ImagePullBackOff"),
        ]
        if waiting
        else []
    )
    return report.not_started_message("ml/train", 600, outcomes)  # type: ignore[arg-type]


def _follow(**limits: object) -> object:
    from airflow_tfjob.rules.follow import Follow, Limits

    obj = {
        "metadata": {"name": "train", "namespace": "ml", "uid": "u1"},
        "status": {
            "startTime": "2026-01-01T00:00:00Z",
            "conditions": [{"type": "Running", "status": "True"}],
        },
    }
    return Follow(obj, Limits(**limits))  # type: ignore[arg-type]


def _expired(**limits: object) -> str:
    expiry = _follow(**limits).expired(4e9)  # type: ignore[attr-defined]
    assert expiry is not None
    return str(expiry.message)


def _lost(replaced: bool) -> object:
    from airflow_tfjob.rules.follow import Follow, Limits

    obj = {"metadata": {"name": "train", "namespace": "ml", "uid": "u2"}}
    if replaced:
        return Follow(obj, Limits(), uid="u1")
    return Follow(obj, Limits()).gone()


def _deadline(ended: str, phase: str = "Running") -> str:
    """As the follower says it at the task's deadline (``phase``: what it knew of the job)."""
    from airflow_tfjob.rules import report

    return report.deadline_message("ml/train", phase, ended=ended)


def _follower(name: str) -> str:
    from airflow_tfjob.backends.kubernetes import follower, messages

    return str(getattr(messages, name, None) or getattr(follower, name))


def _payload() -> object:
    import random

    from airflow.sdk import DAG

    from airflow_tfjob.decorators.tfjob import tfjob_task

    def train(data: str) -> None: ...

    noise = random.Random(0).randbytes(85 * 1024).hex()  # hex compresses to half: 130 KiB encoded
    with DAG("docs_payload", schedule=None):
        task = tfjob_task(train, image="registry.example/tf:2.16")(noise).operator
    return task.payload("chief-0")


def _not_json() -> object:
    from airflow.sdk import DAG

    from airflow_tfjob.decorators.tfjob import tfjob_task

    def train(data: object) -> None: ...

    with DAG("docs_not_json", schedule=None):
        return tfjob_task(train, image="registry.example/tf:2.16")({1, 2})


def _local_env(**container: object) -> object:
    from airflow_tfjob import TfJob, Worker
    from airflow_tfjob.backends.local.plan import replicas

    manifest = TfJob(worker=Worker(command=["python"])).to_manifest("train", "ml", image="i")
    spec = manifest["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    spec["containers"][0].update(container)
    return replicas(manifest)


_LOCAL = "airflow_tfjob.backends.local.supervisor"
_JOB = "train-job-3f2a9c01b7"
_QUICK = "tfjob-quickstart-train-24fa6f322d"
_RUN_DIR = f"/opt/airflow/tfjob-local/default/{_QUICK}/29def130"


def _log(module: str, name: str, *args: object) -> str:
    """A task log line: the module's format with the quoted values."""
    import importlib

    return str(getattr(importlib.import_module(module), name)) % args


def _poke(phase: str | None, **kwargs: object) -> object:
    """What the sensor's poke says of a job in ``phase`` (``None``: there is none, after a
    minute and a half of the task's run)."""
    import datetime
    import types

    from airflow_tfjob import errors
    from airflow_tfjob.sensors.tfjob import TFJobSensor

    class Hook:
        def get(self, name: str, namespace: str) -> dict[str, object]:
            if phase is None:
                raise errors.TFJobNotFound("not found", status=404, reason="NotFound")
            condition = {"type": phase, "status": "True", "reason": "Why", "message": "said"}
            meta = {"name": name, "namespace": namespace, "uid": "u1"}
            return {"metadata": meta, "status": {"conditions": [condition]}}

        def list_pods(self, name: str, namespace: str) -> tuple[list[object], str]:
            return [], ""

    sensor = TFJobSensor(task_id="wait", tfjob_name="train", namespace="ml", **kwargs)  # type: ignore[arg-type]
    sensor.__dict__["hook"] = Hook()
    started = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=90)
    return sensor.poke({"ti": types.SimpleNamespace(start_date=started)})  # type: ignore[arg-type]


def _two_sources() -> object:
    """The cncf.kubernetes hook given a connection's in_cluster and a task's config_file."""
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    return KubernetesHook(conn_id=None, in_cluster=True, config_file="/etc/kube/config").get_conn()


def _termination(run: Callable[[object], object]) -> str:
    """The termination message a replica's runtime writes (TensorFlow made unimportable)."""
    import sys
    from unittest import mock

    from airflow_tfjob import runtime

    with tempfile.NamedTemporaryFile() as log:
        env = {runtime.TERMINATION_ENV: log.name}
        with mock.patch.dict(os.environ, env), mock.patch.dict(sys.modules, {"tensorflow": None}):
            assert run(runtime) == 1
        return Path(log.name).read_text()


def _still_deleting() -> object:
    """An earlier try's job that never goes, on a clock that runs out at once."""
    from unittest import mock

    from airflow_tfjob.backends.kubernetes import submit

    class Hook:
        def get(self, name: str, namespace: str) -> dict[str, object]:
            return {"metadata": {"uid": "u1"}}

    class Clock:
        now = 0.0

        def monotonic(self) -> float:
            return self.now

        def sleep(self, seconds: float) -> None:
            self.now += seconds

    with mock.patch.object(submit, "time", Clock()):
        return submit._wait_deleted(Hook(), "train", "ml", "u1")  # type: ignore[arg-type]


def _demo() -> Any:
    from airflow_tfjob import demo

    return demo


def _no_program() -> str:
    """The launcher of a local replica, given a program that does not exist."""
    import subprocess
    import sys

    from airflow_tfjob.backends.local.process import SHIM

    argv = [sys.executable, "-I", "-S", "-c", SHIM, str(os.getpid()), "no-such-program"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 127, done
    return done.stderr.strip()


def _orphan_mark() -> str:
    """The TFJobs page's mark of a job whose task failed 3 minutes ago (page.html adds the ⚠)."""
    import datetime

    from airflow_tfjob.ui import rows

    now = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.UTC)
    running = {"conditions": [{"type": "Running", "status": "True"}]}
    obj = {"metadata": {"name": "train", "namespace": "ml"}, "status": running}
    task = ("failed", now - datetime.timedelta(minutes=3))
    mark = rows.task_marks(obj, task, now=now, can_delete=False)["orphan"]
    page = (ROOT / "airflow_tfjob" / "ui" / "page.html").read_text()
    assert '"⚠ " + job.orphan' in page
    return f"⚠ {mark}"


def _foreign() -> object:
    """A job of the task's name that this task instance did not create."""
    from airflow_tfjob.backends.kubernetes import submit

    meta = {"name": "train", "namespace": "ml", "labels": {"team": "vision"}}
    return submit._resolve(None, None, {"metadata": meta}, "foreign")  # type: ignore[arg-type]


def _summary(phase: str, counted: str) -> str:
    statuses = {"Chief": {counted: 1}, "Worker": {counted: 2}}
    return str(_state(phase=phase, replica_statuses=statuses).summary())  # type: ignore[attr-defined]


def _dry_run(task: str, dag: str | None) -> str:
    from airflow_tfjob.cli import render

    saved = dict(os.environ)
    with tempfile.TemporaryDirectory() as home, contextlib.chdir(home):
        Path("dags").mkdir()
        if dag is not None:
            Path("dags/train.py").write_text(dag)
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            code = render.main(["dags/train.py" if dag is not None else "dags/nope.py", task])
        os.environ.clear()
        os.environ.update(saved)
    assert code == 1
    return stderr.getvalue().strip().splitlines()[-1]


_DAG = """
from airflow.sdk import DAG
from airflow_tfjob.operators.tfjob import TFJobOperator
with DAG("train", schedule=None):
    TFJobOperator(task_id="train", image="i", command=["python"], {extra})
    TFJobOperator(task_id="report", image="i", command=["python"])
"""


_OWN_OUTPUT = "the replica program's own print, shown with its [replica] prefix"

CHECKS: dict[str, Check] = {
    # trainer-v2.md
    "PS.image: got 'ps:1'; must equal Chief.image": Asserted(
        "tests/unit/rules/test_trainjob.py", "TFJobSpecError: "
    ),
    # troubleshooting.md, Kubernetes
    "cannot create tfjobs.kubeflow.org ml/<name>: the TFJob CRD": Made(lambda: _api(404, "")),
    "forbidden: the identity of connection": Made(_forbidden_check),
    "forbidden: cannot <verb>": Made(
        lambda: _api(
            403,
            _status(
                'tfjobs.kubeflow.org "train" is forbidden: User "bob" cannot create resource '
                '"tfjobs" in API group "kubeflow.org" in the namespace "ml"'
            ),
        )
    ),
    "the API server rejected": Made(
        lambda: _api(
            422,
            _status(
                causes=(
                    ("spec.runPolicy.backoffLimit", 'Invalid value: "string": must be integer'),
                    ("spec.runPolicy.cleanPodPolicy", 'Unsupported value: "Some"'),
                )
            ),
        )
    ),
    "no replica of TFJob ml/<name> started within": Made(lambda: _not_started(True)),
    "... Waiting: no pods were created": Made(lambda: _not_started(False)),
    "TFJob ml/<name> did not finish before the task's execution_timeout (<phase>)": Made(
        lambda: _deadline("it was deleted")
    ),
    "...; it could not be deleted": Asserted(
        "tests/triggers/test_trigger.py", "could not be deleted ("
    ),
    "TFJob ml/<name> ran past runPolicy": Made(lambda: _expired(active_deadline_seconds=3600)),
    "TFJob ml/<name> failed: TFJobFailed: <condition message>": Made(_failed),
    "Failed replicas: ": Made(lambda: _failed(2) + "\n" + _failed(1)),
    "worker-1 termination message: ": Made(_failed),
    "TFJob ml/<name> failed: TFJobFailed: ... backoff limit": Made(
        lambda: _failed(
            0, "TFJob ml/train has failed because it has reached the specified backoff limit"
        )
    ),
    "a TFJob named ml/<name> already exists": Made(_foreign),
    "TFJob ml/<name> from an earlier try is still being deleted": Made(_still_deleting),
    "TFJob ml/<name> was deleted while the task waited": Made(lambda: _lost(False)),
    "TFJob ml/<name> was replaced by another job": Made(lambda: _lost(True)),
    "the API server kept failing to": Made(
        lambda: _api(503, '{"message": "etcdserver: request timed out"}', verb="get")
    ),
    "TFJob ml/<name>: cannot read it now": Made(
        lambda: _follower("AGAIN") % ("ml/train", "read it", "HTTP 503", 1.7)
    ),
    "TFJob ml/train-1: the log of worker-2 is read when it ends": Made(
        lambda: _follower("LATER") % ("ml/train-1", "worker-2", 500)
    ),
    "TFJob ml/<name>: the log of <pod> was not read to its end": Made(
        lambda: (
            _follower("UNREAD_LOG")
            % ("ml/train", "train-worker-0", 37, "its pod was deleted first")
        )
    ),
    "TFJob ml/<name> did not finish before the task's execution_timeout (state unknown": Made(
        lambda: _deadline("it was deleted", phase=f"{_follower('UNREAD')}: HTTP 503")
    ),
    "...; it could NOT be deleted": Asserted(
        "tests/triggers/test_follower_outages.py", "could NOT be deleted"
    ),
    "stopped following TFJob ml/<name>": Made(
        lambda: f"stopped following TFJob ml/train: 403; {_follower('LEFT')}"
    ),
    "cannot <verb> <resource> <ns>/<name>: the API server is unreachable": Made(_unreachable),
    "TLS with the API server failed": Made(_tls),
    "the Kubernetes configuration of connection": Made(_bad_config),
    "Invalid connection configuration.": Made(_two_sources),
    # troubleshooting.md, @task.tfjob
    "payload of <fn>()": Made(_payload),
    "payload of train()": Made(_payload),  # outputs-and-logs.md
    "arguments of train()": Made(_not_json),  # outputs-and-logs.md
    "<field>: got <value>; <what is allowed>": Exempt("the form of the messages, not one"),
    "⚠ task failed 3 min ago; job still running": Made(_orphan_mark),
    "arguments of <fn>()": Made(_not_json),
    "the return value is <n> bytes of JSON": Made(
        lambda: _termination(lambda runtime: runtime._write_output("x" * 5000, None))
    ),
    "PS replicas of @task.tfjob need TensorFlow": Made(
        lambda: _termination(lambda runtime: runtime._serve_ps(None))
    ),
    "args: ...": Made(lambda: test_errors._decorated(args=["--epochs", "3"])),
    "kubectl describe pod": Exempt("a command, not a message"),
    "executable file not found in $PATH": Exempt("the container runtime's message"),
    # troubleshooting.md, TFJobSensor
    "TFJob <ns>/<name> does not exist (waited": Made(lambda: _poke(None)),
    "TFJob <ns>/<name> failed: <reason>: <message>": Made(_failed),
    "TFJob <ns>/<name> is <phase>": Made(lambda: _poke("Suspended", fail_on=("Suspended",))),
    "TFJob <ns>/<name> finished as": Made(lambda: _poke("Succeeded", target_state="Running")),
    "TFJob ml/<name> did not reach Succeeded": Made(lambda: _expired(deadline=1, owned=False)),
    "TFJob <ns>/<name> did not reach Succeeded": Made(lambda: _expired(deadline=1, owned=False)),
    # troubleshooting.md, local backend
    "...envFrom: ... cannot be resolved on the local backend": Made(
        lambda: _local_env(envFrom=[{"secretRef": {"name": "s3"}}])
    ),
    "<Type> env '<NAME>'": Made(
        lambda: _local_env(
            env=[{"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "s3", "key": "k"}}}]
        )
    ),
    "Stopping worker-0, ps-0, still running": Asserted(
        "tests/local/test_local_operator.py", "still running (cleanPodPolicy Running)"
    ),
    "Killed <n> processes the replicas left behind": Made(
        lambda: _log(_LOCAL, "LEFT_BEHIND", 1, [4242])
    ),
    "TFJob <ns>/<name> failed: TFJobFailed: Job <name> has failed because it was active": Asserted(
        "tests/local/test_local_operator.py", "was active longer than specified deadline ("
    ),
    "TFJob <ns>/<name> failed: TFJobFailed: Job <name> has failed because it has reached": Asserted(
        "tests/local/test_local_operator.py", "has reached the specified backoff limit ("
    ),
    "could not start worker-0 of TFJob <ns>/<name>: <OS error>": Exempt(
        "an OS error starting a process, which no test provokes"
    ),
    "cannot start '<cmd>'": Made(_no_program),
    "replicas of TFJob <ns>/<name> did not come up": Asserted(
        "tests/local/test_local_operator.py", "did not come up within"
    ),
    "worker-1 lost a race for port": Asserted(
        "tests/local/test_local_operator.py", "lost a race for port"
    ),
    "worker-1, ps-0 ignored SIGTERM": Asserted(
        "tests/local/test_local_operator.py", "ignored SIGTERM and were killed with SIGKILL"
    ),
    "Killed <n> processes left by an earlier try": Asserted(
        "tests/local/test_local_kill.py", "left by an earlier try"
    ),
    "TFJob <ns>/<name> did not finish before the task's execution_timeout (Running)": Asserted(
        "tests/local/test_local_operator.py", "its replicas were stopped"
    ),
    "TFJob <ns>/<name> was stopped: the task was killed": Asserted(
        "tests/local/test_local_kill.py", "was stopped: the task was killed"
    ),
    # outputs-and-logs.md, quickstart.md, orphans.md: task logs
    "[chief-0] I am chief 0": Exempt(_OWN_OUTPUT),
    "[worker-0] I am worker 0": Exempt(_OWN_OUTPUT),
    "[worker-1] I am worker 1": Exempt(_OWN_OUTPUT),
    "[chief-0] step 100: loss 0.2131": Exempt(_OWN_OUTPUT),
    "[chief-0] chief-0: 3 replicas in sync": Asserted(
        "tests/examples/test_example_dags.py", ": 3 replicas in sync"
    ),
    "[worker-1] step 100: loss": Asserted(
        "tests/examples/test_example_dags.py", "[worker-1] step 100: loss"
    ),
    "[chief-0] hello from chief-0": Asserted("tests/local/test_local_operator.py", "] hello from"),
    "Created TFJob ml/": Made(
        lambda: _log(
            "airflow_tfjob.backends.kubernetes.submit", "CREATED", "TFJob", "ml", _JOB, "8d1c-77"
        )
    ),
    "TFJob ml/train-job-3f2a9c01b7: Running": Made(
        lambda: f"TFJob ml/train-job-3f2a9c01b7: {_summary('Running', 'active')}"
    ),
    "TFJob ml/train-job-3f2a9c01b7: Succeeded": Made(
        lambda: f"TFJob ml/train-job-3f2a9c01b7: {_summary('Succeeded', 'succeeded')}"
    ),
    "TFJob default/tfjob-quickstart-train-24fa6f322d: Succeeded": Made(
        lambda: (
            f"TFJob default/tfjob-quickstart-train-24fa6f322d: {_summary('Succeeded', 'succeeded')}"
        )
    ),
    "Deleted TFJob ml/": Asserted("tests/operators/test_operator_lifecycle.py", "Deleted TFJob"),
    "Running TFJob default/": Made(
        lambda: _log(_LOCAL, "RUNNING", f"default/{_QUICK}", 3, _RUN_DIR, "python:3.11-slim", 4, 4)
    ),
    "Replica logs of TFJob": Made(lambda: _log(_LOCAL, "LOGS_KEPT", f"default/{_QUICK}", _RUN_DIR)),
    "Running example_tfjob_function": Made(lambda: _demo().STARTING),
    "Training result after": Made(
        lambda: _demo().result_line(
            52, {"loss": 0.1234, "accuracy": 0.965, "replicas": 3, "steps": 200}
        )
    ),
    "Succeeded {'replicas': 3} {'answered_by': 'chief-0', 'replicas': 3}": Exempt(
        "printed by the quickstart DAG's own report task"
    ),
    "Deleted orphaned TFJob": Asserted("tests/operators/test_reaper.py", "Deleted orphaned TFJob"),
    "User alice deleted orphaned TFJob": Asserted(
        "tests/ui/test_orphans_page.py", " deleted orphaned TFJob "
    ),
    # reference.md, the dry run
    "error: DAG file dags/nope.py": Made(lambda: _dry_run("train", None)),
    "error: cannot import dags/train.py": Made(
        lambda: _dry_run("train", _DAG.format(extra="namespace='ML'"))
    ),
    "error: task 'train' in dags/train.py": Made(
        lambda: _dry_run("train", _DAG.format(extra="name='{{ \"Nightly_Run\" }}'"))
    ),
    "error: no task 'evaluate'": Made(lambda: _dry_run("evaluate", _DAG.format(extra=""))),
}
"""The start of a quote -> how it is checked; an exemption's key is the whole quote."""


# ---------------------------------------------------------------------------------------------


def _quotes() -> list[tuple[str, int, str]]:
    """``(document, line, quote)``."""
    found = []
    for path in DOCUMENTS:
        name = str(path.relative_to(ROOT))
        for fence in fences(path):
            if fence.info in ("text", "") and not fence.text.startswith("AirflowException"):
                lines = [line.strip() for line in fence.text.splitlines()]
                found += [(name, fence.line, line) for line in lines if line not in ("", "...")]
        in_tables = {cell for table in tables(path) for row in table.rows for cell in row}
        found += [
            (name, line, span)
            for line, span in all_code_spans(path)
            if _PROSE_MESSAGE.search(span) and not any(span in cell for cell in in_tables)
        ]
    trouble = ROOT / "docs" / "troubleshooting.md"
    for table in tables(trouble):
        if table.header[0].startswith("message"):
            for row in table.rows:
                found += [
                    ("docs/troubleshooting.md", table.line, span)
                    for span in code_spans(row[0])
                    if " " in span
                ]
    return found


_PROSE_MESSAGE = re.compile(r"^TFJob \S+/\S+ |: got |^⚠ ")
"""A code span in running text that quotes a message: a job's (``TFJob <ns>/<name> ...``), a
spec error's (``<field>: got <value>; ...``), the TFJobs page's orphan mark (``⚠ ...``)."""


def _check(quote: str) -> Check | None:
    """The check of the longest start of the quote; an exemption only for its very quote, so
    that a new or changed message cannot slip under one."""
    quote = re.sub(r"^TFJob\w*: ", "", quote)
    starts = [
        start
        for start, check in CHECKS.items()
        if quote == start or (quote.startswith(start) and not isinstance(check, Exempt))
    ]
    return CHECKS[max(starts, key=len)] if starts else None


def _pattern(quoted: str) -> re.Pattern[str]:
    """``...`` and ``<placeholders>`` (``<name>``, ``<ErrorType>``, ``<OS error>``) match anything."""
    parts = re.split(r"(\.\.\.|<[A-Za-z][^<>]*>)", quoted)
    return re.compile("".join(".+" if i % 2 else re.escape(p) for i, p in enumerate(parts)))


@cache
def _asserted(test: str) -> list[str]:
    """The string constants of the test's ``assert`` statements (f-strings' literal parts too)."""
    tree = ast.parse((ROOT / test).read_text())
    return [
        node.value
        for statement in ast.walk(tree)
        if isinstance(statement, ast.Assert)
        for node in ast.walk(statement)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


QUOTES = _quotes()


@pytest.mark.parametrize(("document", "line", "quote"), QUOTES, ids=lambda v: str(v)[:40])
def test_every_quote_is_checked(document: str, line: int, quote: str) -> None:
    check = _check(quote)
    made_by_test_errors = test_errors._producer(quote) is not None
    assert check is not None or made_by_test_errors, (
        f"{document}:{line}: {quote!r} is not checked: make it in CHECKS (a), name the test that "
        "asserts it (b), or exempt it with a reason (c)"
    )
    if isinstance(check, Made):
        made = _text(check.make)
        lines = [made, made.split(": ", 1)[-1], *made.splitlines()]
        pattern = _pattern(quote)
        assert any(pattern.fullmatch(text) for text in lines), f"{document}:{line}: {made}"
    elif isinstance(check, Asserted):
        assert check.text in quote, f"{document}:{line}: {quote!r} lacks {check.text!r}"
        asserted = _asserted(check.test)
        assert any(check.text in text for text in asserted), (
            f"{check.test} asserts no string containing {check.text!r}"
        )
    elif isinstance(check, Exempt):
        assert check.reason


def test_every_check_is_used() -> None:
    used = {id(_check(quote)) for _, _, quote in QUOTES}
    assert [start for start, check in CHECKS.items() if id(check) not in used] == []


def test_the_quotes_are_found() -> None:
    """A reader that finds nothing would pass: the tables and blocks are there."""
    documents = {document for document, _, _ in QUOTES}
    assert {"docs/troubleshooting.md", "docs/reference.md", "docs/outputs-and-logs.md"} <= documents
    assert len(QUOTES) >= 80
    message_tables = [t.header[0] for t in tables(ROOT / "docs" / "troubleshooting.md")]
    # a table of another shape would not be read: its messages would go unchecked
    assert all(header.startswith("message") for header in message_tables), message_tables
