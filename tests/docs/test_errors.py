"""The error texts the documents quote are the errors the code raises: each quoted line is
produced here and compared whole (``...`` and ``<placeholders>`` in a quote match anything), and
the error tree of reference.md is the classes' own."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from airflow_tfjob import Chief, Resources, TfJob, Worker, errors
from airflow_tfjob.model import validate_name
from airflow_tfjob.model.errors import TFJobSpecError
from tests.docs.markdown import ROOT, code_spans, fences, tables

Producer = Callable[[], object]


def _operator(**kwargs: object) -> object:
    from airflow_tfjob.operators.tfjob import TFJobOperator

    return TFJobOperator(task_id="train", image="registry.example/tf:2.16", **kwargs)


def _decorated(**kwargs: object) -> object:
    from airflow.sdk import DAG

    from airflow_tfjob.decorators.tfjob import tfjob_task

    def train() -> None: ...

    with DAG("docs_errors", schedule=None):
        return tfjob_task(train, image="registry.example/tf:2.16", **kwargs)()


def _run_time_name() -> object:
    try:
        validate_name("MyJob")
    except TFJobSpecError as exc:
        raise errors.TFJobSpecFailure.of(exc) from exc
    return None


def _no_configuration() -> object:
    from airflow_tfjob.hooks._base import config_error
    from airflow_tfjob.hooks.tfjob import TFJobHook

    class ConfigException(Exception):  # the client's, by name and module
        __module__ = "kubernetes.config.config_exception"

    exc = config_error(
        TFJobHook(), ConfigException("Invalid kube-config file. No configuration found.")
    )
    assert exc is not None
    raise exc


TEMPLATE = {
    "spec": {
        "runPolicy": {"backoffLimit": "three"},
        "tfReplicaSpecs": {
            "Worker": {"template": {"spec": {"containers": [{"name": "tensorflow"}]}}}
        },
    }
}

PRODUCERS: dict[str, Producer] = {
    "Worker.requests['cpu']": lambda: Worker(
        requests=Resources(cpu="4"), limits=Resources(cpu="2")
    ),
    "Chief.replicas": lambda: TfJob(chief=Chief(replicas=2)),
    "Worker.command: got 'python": lambda: Worker(command="python train.py"),
    "Worker.image": lambda: TfJob().to_manifest("train", "ml"),
    "name: got 'my-very-long-": lambda: TfJob().to_manifest(
        "my-very-long-" + "x" * 47, "ml", image="i"
    ),
    "tfjob_template.spec": lambda: _operator(tfjob_template=TEMPLATE),
    "on_finish_action": lambda: _operator(on_finish_action="delete"),
    "get_logs": lambda: _operator(get_logs="no"),
    "target_state": lambda: _sensor(target_state="Done"),
    "name: got 'MyJob'": _run_time_name,
    "command: got": lambda: _decorated(command=["python", "train.py"]),
    "tfjob: got TfJob": lambda: _decorated(task_config=TfJob(), tfjob=TfJob()),
    "wait_until_finished: got False; the local": lambda: _operator(
        backend="local", command=["python"], wait_until_finished=False
    ),
    "Worker.command: got None; the local": lambda: _operator(backend="local"),
    "no Kubernetes configuration": _no_configuration,
}
"""The start of a quoted message -> what raises it."""


def _sensor(**kwargs: object) -> object:
    from airflow_tfjob.sensors.tfjob import TFJobSensor

    return TFJobSensor(task_id="wait", tfjob_name="train", **kwargs)


def _quoted() -> list[tuple[str, int, str]]:
    """``(document, line, message)``: every line of the documents' error blocks, and each
    table message that PRODUCERS can make when the DAG is parsed."""
    found = []
    for name in ("README.md", "docs/troubleshooting.md"):
        for fence in fences(ROOT / name):
            if fence.info == "text" and "Error: " in fence.text:
                found += [(name, fence.line, line) for line in fence.text.splitlines()]
    for table in tables(ROOT / "docs" / "troubleshooting.md"):
        for row in table.rows:
            spans = code_spans(row[0])
            if spans and _producer(spans[0]) is not None:
                found.append(("docs/troubleshooting.md", table.line, spans[0]))
    return found


def _producer(message: str) -> Producer | None:
    text = message.split(": ", 1)[1] if re.match(r"^TFJob\w*: ", message) else message
    return next((p for start, p in PRODUCERS.items() if text.startswith(start)), None)


def _pattern(quoted: str) -> re.Pattern[str]:
    parts = re.split(r"(\.\.\.|<[a-z][^>]*>)", quoted)
    return re.compile("".join(".+" if i % 2 else re.escape(p) for i, p in enumerate(parts)))


@pytest.mark.parametrize(("document", "line", "quoted"), _quoted(), ids=lambda v: str(v)[:40])
def test_the_quoted_error_is_raised(document: str, line: int, quoted: str) -> None:
    producer = _producer(quoted)
    assert producer is not None, f"{document}:{line}: nothing in PRODUCERS makes {quoted!r}"
    with pytest.raises(Exception) as raised:
        producer()
    shown = str(raised.value)
    if re.match(r"^TFJob\w*: ", quoted):  # quoted with its class, as a traceback shows it
        shown = f"{type(raised.value).__name__}: {shown}"
    assert _pattern(quoted).fullmatch(shown), shown


def test_every_producer_makes_a_quoted_message() -> None:
    used = {_producer(message) for _, _, message in _quoted()}
    assert [start for start, p in PRODUCERS.items() if p not in used] == []


def test_the_error_tree_is_the_classes() -> None:
    (tree,) = [f for f in fences(ROOT / "docs" / "reference.md") if f.text.startswith("Airflow")]
    parents: list[tuple[int, type]] = []
    documented = []
    for line in tree.text.splitlines():
        found = re.search(r"(\w+)(?:\s|$)", line.lstrip("│ ├└─"))
        if not found or not line.lstrip("│ ├└─").startswith(found.group(1)):
            continue  # a continued description
        depth = len(line) - len(line.lstrip("│ ├└─"))
        cls = getattr(errors, found.group(1))
        while parents and parents[-1][0] >= depth:
            parents.pop()
        if parents:
            assert parents[-1][1] in cls.__bases__ or issubclass(cls, parents[-1][1]), cls
        assert ("[no retry]" in line) == issubclass(cls, errors.AirflowFailException), cls
        parents.append((depth, cls))
        documented.append(cls.__name__)
    public = {
        n
        for n, v in vars(errors).items()
        if isinstance(v, type) and issubclass(v, errors.TFJobError)
    }
    assert set(documented) - {"AirflowException"} == public


def test_the_error_texts_checked() -> None:
    """The blocks and tables above are found (a reader that finds nothing would pass)."""
    assert len(_quoted()) >= 15
