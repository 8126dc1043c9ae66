"""With no kubeconfig and no in-cluster service account, the hooks (and the reaper, which uses
them) raise the provider's ``TFJobConfigError`` naming what is missing, never the client's
``ConfigException`` (docs/reference.md: "never client exceptions")."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_tfjob import errors
from airflow_tfjob.hooks._base import NO_CONFIG
from airflow_tfjob.hooks.tfjob import AsyncTFJobHook, TFJobHook
from airflow_tfjob.operators.reaper import TFJobReaperOperator
from tests.hooks.conftest import call


@pytest.fixture
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No $KUBECONFIG, an empty home (no ~/.kube/config), not in a pod."""
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.mark.parametrize(
    ("twin", "method", "args"),
    [
        (twin, method, args)
        for twin in (TFJobHook, AsyncTFJobHook)
        for method, args in (("get", ("job", "ml")), ("list_jobs", ("ml",)))
    ]
    + [(TFJobHook, "missing_permissions", ("ml",))],  # the sync hook's: the worker submits
)
def test_no_configuration_is_the_providers_error_naming_what_is_missing(
    nowhere: None, twin: type[TFJobHook], method: str, args: tuple[str, ...]
) -> None:
    hook = twin(None, max_attempts=1)
    with pytest.raises(errors.TFJobConfigError) as raised:
        call(getattr(hook, method), *args)
    assert str(raised.value) == NO_CONFIG.format(where="kubernetes_conn_id=None")
    assert type(raised.value.__cause__).__name__ == "ConfigException"  # chained, not leaked
    assert isinstance(raised.value, errors.AirflowFailException)  # a retry finds the same


def test_a_kubeconfig_file_the_client_refuses_is_named_with_the_clients_reason(
    nowhere: None, tmp_path: Path
) -> None:
    broken = tmp_path / "config"
    broken.write_text("apiVersion: v1\nkind: Config\n")
    with pytest.raises(errors.TFJobConfigError) as raised:
        TFJobHook(None, config_file=str(broken), max_attempts=1).get("job", "ml")
    assert str(raised.value).startswith(
        "the Kubernetes configuration of kubernetes_conn_id=None cannot be used: "
    )


def test_the_reaper_in_report_only_mode_fails_with_the_same_error(nowhere: None) -> None:
    reaper = TFJobReaperOperator(
        task_id="reap", report_only=True, grace_seconds=0, targets=[("kubernetes_default", "ml")]
    )
    with pytest.raises(errors.TFJobConfigError) as raised:
        reaper.execute({"ti": None})
    assert str(raised.value) == NO_CONFIG.format(where="connection 'kubernetes_default'")
