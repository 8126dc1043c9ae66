"""The reference tables say what the code says: every parameter and its default (compared with
``inspect.signature``), templated fields, hook methods' signatures, enum members, the
``[tfjob]`` settings (``get_provider_info()``) and the command line (``--help``)."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import airflow_tfjob
from airflow_tfjob import CleanPodPolicy, RestartPolicy, SuccessPolicy
from airflow_tfjob.decorators.tfjob import _TFJobDecoratedOperator, tfjob_task
from airflow_tfjob.get_provider_info import get_provider_info
from airflow_tfjob.hooks._base import Settings
from airflow_tfjob.hooks.tfjob import AsyncTFJobHook, TFJobHook
from airflow_tfjob.operators.catch_up import TFJobEventCatchUpOperator
from airflow_tfjob.operators.reaper import TFJobReaperOperator
from airflow_tfjob.operators.tfjob import TFJobOperator
from airflow_tfjob.sensors.tfjob import TFJobSensor
from airflow_tfjob.triggers.events import TFJobEventTrigger
from airflow_tfjob.triggers.tfjob import TFJobTrigger
from tests.docs.markdown import ROOT, Table, code_spans, fences, tables

REFERENCE = ROOT / "docs" / "reference.md"

PARAMETER_TABLES: dict[tuple[str, str], list[Callable[..., Any]]] = {
    ("reference.md", "TFJobOperator"): [TFJobOperator.__init__],
    ("reference.md", "@task.tfjob"): [tfjob_task, _TFJobDecoratedOperator.__init__],
    ("reference.md", "TFJobSensor"): [TFJobSensor.__init__],
    ("reference.md", "TFJobTrigger"): [TFJobTrigger.__init__],
    ("reference.md", "TFJobEventTrigger"): [TFJobEventTrigger.__init__],
    ("events.md", "`TFJobEventTrigger`"): [TFJobEventTrigger.__init__],
    ("reference.md", "TFJobEventCatchUpOperator"): [TFJobEventCatchUpOperator.__init__],
    ("reference.md", "TFJobReaperOperator"): [TFJobReaperOperator.__init__],
    ("reference.md", "TFJobHook and AsyncTFJobHook"): [Settings.__init__],
    ("reference.md", "TfJob"): [airflow_tfjob.TfJob],
    ("reference.md", "Chief, PS, Worker, Evaluator"): [
        airflow_tfjob.Chief,
        airflow_tfjob.PS,
        airflow_tfjob.Worker,
        airflow_tfjob.Evaluator,
    ],
    ("reference.md", "Resources"): [airflow_tfjob.Resources],
    ("reference.md", "RunPolicy"): [airflow_tfjob.RunPolicy],
    ("reference.md", "SchedulingPolicy"): [airflow_tfjob.SchedulingPolicy],
}
"""(document, heading) -> what its "parameter" table documents. The decorator's table lists
``tfjob_task``'s own parameters, then those its operator adds to ``TFJobOperator``'s."""

_NAMESPACE = {"CleanPodPolicy": CleanPodPolicy, "RestartPolicy": RestartPolicy}


def _parameter_tables() -> list[Table]:
    return [
        t
        for path in (REFERENCE, ROOT / "docs" / "events.md")
        for t in tables(path)
        if t.header[0] == "parameter"
    ]


def _documented(table: Table) -> list[tuple[str, str]]:
    """``(parameter, default cell)``, a cell naming several parameters split."""
    default = table.column("default")
    return [
        (name, row[default])
        for row in table.rows
        for name in code_spans(row[0])
        if name != "**kwargs"
    ]


def _signature(targets: list[Callable[..., Any]]) -> dict[str, inspect.Parameter]:
    found: dict[str, inspect.Parameter] = {}
    for target in targets:
        for name, p in inspect.signature(target).parameters.items():
            if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                found.setdefault(name, p)
    return found


def _same_default(cell: str, parameter: inspect.Parameter, source: str) -> bool:
    """The documented default is the signature's (evaluated), or quotes the code verbatim."""
    if cell.strip("() ") == "required":
        return parameter.default is inspect.Parameter.empty
    (first, *_) = code_spans(cell) or [cell]
    try:
        value = eval(first, dict(_NAMESPACE))
    except Exception:
        return first in source
    return bool(value == parameter.default)


def test_every_parameter_table_is_compared() -> None:
    seen = {(t.path.name, t.heading) for t in _parameter_tables()}
    assert seen == set(PARAMETER_TABLES)


@pytest.mark.parametrize(
    "table", _parameter_tables(), ids=lambda t: f"{t.path.name}:{t.line}:{t.heading}"
)
def test_parameters_and_defaults_are_the_codes(table: Table) -> None:
    targets = PARAMETER_TABLES[(table.path.name, table.heading)]
    documented = _documented(table)
    signature = _signature(targets)
    assert sorted(name for name, _ in documented) == sorted(signature)
    source = "\n".join(inspect.getsource(t) for t in targets)
    wrong = [
        (name, cell, signature[name].default)
        for name, cell in documented
        if not _same_default(cell, signature[name], source)
    ]
    assert wrong == []


def test_documented_templated_fields_are_the_operators() -> None:
    (table,) = [t for t in tables(REFERENCE) if t.heading == "TFJobOperator"]
    templated = table.column("templated")
    documented = {code_spans(row[0])[0] for row in table.rows if row[templated].startswith("yes")}
    assert documented == set(TFJobOperator.template_fields)


def _hook_method_rows() -> list[list[str]]:
    (table,) = [t for t in tables(REFERENCE) if t.header[0] == "method"]
    return table.rows


@pytest.mark.parametrize("row", _hook_method_rows(), ids=lambda row: code_spans(row[0])[0])
def test_hook_methods_have_the_documented_signature(row: list[str]) -> None:
    (function,) = ast.parse(f"def {code_spans(row[0])[0]}: pass").body
    assert isinstance(function, ast.FunctionDef)
    args = function.args
    positional = [a.arg for a in args.args]
    keyword = dict(zip([a.arg for a in args.kwonlyargs], args.kw_defaults, strict=True))
    defaults = dict(
        zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True)
    )
    for hook in _documented_hooks(row):
        signature = inspect.signature(getattr(hook, function.name)).parameters
        names = [n for n in signature if n != "self"]
        assert names == positional + list(keyword), hook
        for name, node in {**defaults, **keyword}.items():
            documented = ast.literal_eval(node) if node is not None else inspect.Parameter.empty
            assert signature[name].default == documented, (hook, name)


def _documented_hooks(row: list[str]) -> tuple[type, ...]:
    """The hooks the row's "hooks" column names: ``both``, or one of them."""
    (table,) = [t for t in tables(REFERENCE) if t.header[0] == "method"]
    cell = row[table.column("hooks")]
    return {"both": (TFJobHook, AsyncTFJobHook), "`TFJobHook`": (TFJobHook,)}.get(
        cell, (AsyncTFJobHook,) if cell == "`AsyncTFJobHook`" else ()
    )


def _public(hook: type) -> set[str]:
    return {
        n
        for n, v in vars(hook).items()
        if not n.startswith("_") and (callable(v) or isinstance(v, property))
    }


def test_every_public_hook_method_is_documented_on_the_hooks_that_have_it() -> None:
    """Each row says which twin has the method: exactly the twins that do."""
    documented = {
        code_spans(row[0])[0].split("(")[0]: set(_documented_hooks(row))
        for row in _hook_method_rows()
    }
    assert all(documented.values()), documented  # a "hooks" cell is both or one hook's name
    others = {"api_client", "get_namespace", "trigger_settings", "client_session"}
    others |= {"get_connection_form_widgets", "get_ui_field_behaviour", "get_conn"}
    for hook in (TFJobHook, AsyncTFJobHook):
        has = {name for name, hooks in documented.items() if hook in hooks}
        assert _public(hook) - others == has, hook


def test_enums_table_is_the_enums() -> None:
    (table,) = [t for t in tables(REFERENCE) if t.heading == "Enums"]
    documented: list[tuple[str, str, str]] = []
    enum = ""
    for row in table.rows:
        enum = (code_spans(row[0]) or [enum])[0]
        member, value = code_spans(row[1])[0], code_spans(row[2])[0]
        documented.append((enum, member, ast.literal_eval(value) if value == '""' else value))
    actual = [
        (e.__name__, m.name, m.value)
        for e in (RestartPolicy, CleanPodPolicy, SuccessPolicy)
        for m in e
    ]
    assert documented == actual


def _config_options() -> dict[str, dict[str, Any]]:
    options: dict[str, dict[str, Any]] = get_provider_info()["config"]["tfjob"]["options"]
    return options


@pytest.mark.parametrize(
    ("path", "heading"),
    [("README.md", "The `[tfjob]` configuration section"), ("docs/configuration.md", "`[tfjob]`")],
)
def test_tfjob_settings_and_defaults_are_the_providers(path: str, heading: str) -> None:
    (table,) = [t for t in tables(ROOT / path) if t.heading == heading]
    options = _config_options()
    default = table.column("default")
    rows = {code_spans(row[0])[0]: row for row in table.rows}
    assert sorted(rows) == sorted(options)
    for name, row in rows.items():
        declared = options[name]["default"]
        cell = row[default]
        if declared:  # the declared default, as written
            assert code_spans(cell)[:1] == [declared], name
        else:  # empty: the table says what empty means, not a value
            assert cell.startswith("empty") or not cell.startswith("`"), name
        if "env var" in table.header:
            assert code_spans(row[table.column("env var")]) == [f"AIRFLOW__TFJOB__{name.upper()}"]
        if "type" in table.header:
            assert row[table.column("type")] == options[name]["type"], name


def _usage_lines(path: Path) -> list[str]:
    return [
        line.strip()
        for fence in fences(path)
        if fence.info == "bash"
        for line in fence.text.splitlines()
        if line.strip().startswith("python -m airflow_tfjob")
    ]


def test_the_dry_run_synopsis_is_the_commands_usage(capsys: pytest.CaptureFixture[str]) -> None:
    from airflow_tfjob.__main__ import main
    from airflow_tfjob.cli.render import parser

    (synopsis,) = _usage_lines(REFERENCE)
    documented = synopsis.split(" > ")[0].removeprefix("python -m airflow_tfjob render ")
    # argparse lists options first; the document, the positionals first, upper case
    positionals = [a.dest.upper() for a in parser()._actions if not a.option_strings]
    options = [
        f"[{a.option_strings[0]} {a.metavar or a.dest.upper()}]"
        for a in parser()._actions
        if a.option_strings and a.dest != "help"
    ]
    assert documented == " ".join(positionals + options)
    assert main(["--help"]) == 0
    help_text = capsys.readouterr().out
    text = REFERENCE.read_text()
    assert "render DAG_FILE TASK_ID [--run-id RUN_ID] [--namespace NS]" in help_text
    demo = "demo [--dags DIR] [--home DIR]"
    assert demo in help_text and f"python -m airflow_tfjob {demo}" in text


def test_the_demo_flags_are_the_demos(capsys: pytest.CaptureFixture[str]) -> None:
    from airflow_tfjob import demo

    with pytest.raises(SystemExit):
        demo.main(["--help"])
    out = capsys.readouterr().out
    assert "--dags DIR" in out and "--home DIR" in out
