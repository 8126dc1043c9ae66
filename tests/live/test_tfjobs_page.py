"""The TFJobs page of the live api-server in headless Chromium, behind a real login: a user
allowed to read a DAG sees its jobs; a user who may not read a DAG sees none of its jobs."""

from __future__ import annotations

import kubernetes

from tests.live.deployment import Deployment
from tests.live.jobs import GROUP, PLURAL, VERSION, Gate
from tests.live.rest import AirflowClient
from tests.ui.test_tfjobs_page import ARTIFACTS, _browser_path, login


def _rows_seen_by(live: Deployment, user: str, names: dict[str, str]) -> dict[str, str]:
    """Log in as ``user`` and open Browse -> TFJobs: the state shown per DAG's job (of ours)."""
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_browser_path())
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 950})
            login(page, live, user)
            page.get_by_role("button", name="Browse").click()
            page.get_by_role("menuitem", name="TFJobs").click()
            page.wait_for_url(
                "**/plugin/tfjobs*", timeout=90_000
            )  # the UI loads slowly on 2 busy cores
            frame = page.frame_locator("iframe[title=TFJobs]")
            # the list has loaded once the job every user may see is in it
            expect(frame.locator(f'tr.job[data-name="{names["public_live"]}"]')).to_be_visible()
            seen = {}
            for dag, name in names.items():
                row = frame.locator(f'tr.job[data-name="{name}"]')
                if row.count():
                    seen[dag] = row.locator(".state").inner_text()
            page.screenshot(path=str(ARTIFACTS / f"live-tfjobs-{user}.png"), full_page=True)
            return seen
        finally:
            browser.close()


def test_the_tfjobs_page_shows_each_user_the_jobs_of_the_dags_they_may_read(
    live: Deployment,
    live_api: AirflowClient,
    live_namespace: str,
    kube_api: kubernetes.client.ApiClient,
    gate: Gate,
) -> None:
    gate.open()
    runs = {dag: live_api.trigger(dag, gate.conf) for dag in ("public_live", "private_live")}
    names = {}
    for dag, run in runs.items():
        assert live_api.wait_for_run(dag, run, timeout=120)["state"] == "success"
        names[dag] = live_api.xcom(dag, run, "train", "tfjob_name")  # kept: keep_tfjob
    try:
        assert _rows_seen_by(live, "viewer", names) == {"public_live": "Succeeded"}
        assert _rows_seen_by(live, "admin", names) == {
            "public_live": "Succeeded",
            "private_live": "Succeeded",
        }
    finally:
        custom = kubernetes.client.CustomObjectsApi(kube_api)
        for name in names.values():
            custom.delete_namespaced_custom_object(GROUP, VERSION, live_namespace, PLURAL, name)
