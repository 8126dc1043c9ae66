"""The TFJobs page in a running Airflow, in headless Chromium (Debian's, driven by Playwright):
log in, open it from the Browse menu, read the rows and their states, open the detail view.
Screenshots are kept under ``artifacts/ui/``."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.ui.conftest import ROOT, UiJobs, UiServer

ARTIFACTS = ROOT / "artifacts" / "ui"


def _browser_path() -> str:
    found = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(found).exists(), "Debian's chromium is not installed (bash .ci/setup installs it)"
    return found


def login(page: Any, server: Any, user: str, next_path: str = "/") -> None:
    """Log ``user`` in through the Airflow login form (password = user name in these tests);
    it then goes to ``next_path`` under the server's base path (``server``: a ``UiServer``, or
    the live tier's ``Deployment``, served at the root)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    base_path = getattr(server, "base_path", "")
    for attempt in (1, 2):  # a cold api-server has let a first login hang (seen once in 3 runs)
        page.goto(f"{server.url}/auth/login?next={quote(base_path + next_path, safe='/')}")
        page.fill("input[name=username]", user)
        page.fill("input[name=password]", user)
        page.click("button[type=submit]")
        try:
            page.wait_for_url(lambda url: "/auth/" not in url, timeout=45_000)  # logged in
            return
        except PlaywrightTimeout:
            if attempt == 2:
                raise


def test_a_viewer_watches_tfjobs_in_the_airflow_ui(ui_server: UiServer, ui_jobs: UiJobs) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    names = ui_jobs.names
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_browser_path())
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 950})
            login(page, ui_server, "viewer")
            page.get_by_role("button", name="Browse").click()
            page.get_by_role("menuitem", name="TFJobs").click()
            page.wait_for_url(
                "**/plugin/tfjobs*", timeout=90_000
            )  # the UI loads slowly on 2 busy cores

            frame = page.frame_locator("iframe[title=TFJobs]")
            rows = frame.locator("tr.job")
            expect(rows).to_have_count(3)  # the secret DAG's job is not the viewer's to see
            for role, state in (
                ("succeeded", "Succeeded"),
                ("failed", "Failed"),
                ("running", "Running"),
            ):
                row = frame.locator(f'tr.job[data-name="{names[role]}"]')
                expect(row.locator(".state")).to_have_text(state)
            expect(frame.locator(f'tr.job[data-name="{names["secret"]}"]')).to_have_count(0)
            # the running job's task failed: an orphan, marked; the viewer may not edit the
            # DAG, so there is no delete button
            running = frame.locator(f'tr.job[data-name="{names["running"]}"]')
            expect(running.locator(".orphan")).to_have_text(
                re.compile(r"⚠ task failed \d+ (s|min) ago; job still running")
            )
            expect(running.locator("button.delete")).to_have_count(0)
            done = frame.locator(f'tr.job[data-name="{names["succeeded"]}"]')
            expect(done.locator(".orphan")).to_have_count(0)
            expect(frame.locator(".target-error")).to_contain_text(
                "cannot reach the cluster of connection 'tfjob_down'"
            )
            link = frame.locator(f'tr.job[data-name="{names["succeeded"]}"] a')
            expect(link).to_have_attribute(
                "href",
                "/airflow/dags/public_train/runs/manual__2026-11-01T00%3A00%3A00%2B00%3A00/tasks/train",
            )
            page.screenshot(path=str(ARTIFACTS / "tfjobs-list.png"), full_page=True)

            frame.locator(f'tr.job[data-name="{names["succeeded"]}"] td').first.click()
            expect(frame.locator("#detail-state")).to_have_text("Succeeded")
            expect(frame.locator('#conditions tr[data-type="Succeeded"]')).to_be_visible()
            expect(frame.locator("#log")).to_contain_text("epoch 2: loss 0.32")
            expect(frame.locator('#pods tr[data-replica="chief-0"]')).to_contain_text("Succeeded")

            frame.locator(f'tr.job[data-name="{names["failed"]}"] td').first.click()
            expect(frame.locator("#detail-state")).to_have_text("Failed")
            worker = frame.locator('#pods tr[data-replica="worker-1"]')
            expect(worker).to_contain_text("Failed")
            expect(worker.locator("td").nth(3)).to_have_text("1")  # the exit code
            page.screenshot(path=str(ARTIFACTS / "tfjobs-detail.png"), full_page=True)
        finally:
            browser.close()
