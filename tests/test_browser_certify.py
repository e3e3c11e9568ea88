"""The certify-a-system notebook in a real browser, through the workbench (``oms lab``):
the desk renders, a click on "Run the pack" runs it against the scratch book with the bar
moving to the end, the results table and one case show, a sign-off saves into the run.
Screenshots are kept in artifacts/browser/ (looked at when the desk changes).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import lab_process
import pytest
from test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_FLAGS, WAIT_MS, WIDGET_ERRORS

pytestmark = pytest.mark.slow


def test_the_desk_runs_the_pack_by_click_and_saves_the_sign_off(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install -y chromium)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = "certify_a_system.ipynb"
    with lab_process.running_lab(tmp_path, [name], "--LabApp.expose_app_in_browser=True") as lab:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1100})
                page.set_default_timeout(WAIT_MS)
                page.goto(lab.url(f"/lab/tree/{name}?reset"))
                expect(page.locator(".jp-NotebookPanel-toolbar .jp-KernelName").first).to_contain_text("Python 3")
                expect(page.locator(".jp-Notebook-ExecutionIndicator").first).to_have_attribute("data-status", "idle")
                page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
                page.wait_for_function(
                    """() => { const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
                               return p.length > 0 && p.every(e => /^\\[\\d+\\]:$/.test(e.textContent.trim())); }""",
                    timeout=WAIT_MS,
                )
                desk = page.locator(".certify-desk").first
                expect(desk).to_be_visible()
                desk.locator("button.widget-button", has_text="Run the pack").click()
                expect(desk).to_contain_text("CERTIFIED (core, read, audit; extensions: events_log, sql)")
                bar = desk.locator(".widget-hprogress .progress-bar").first
                expect(bar).to_have_attribute("style", re.compile(r"(^|[ ;])width: 100%;"))  # it went to the end
                expect(bar).to_have_class(re.compile("progress-bar-success"))
                expect(desk.locator("table.desk-results")).to_contain_text("NOT APPLICABLE")
                desk.scroll_into_view_if_needed()
                desk.screenshot(path=str(ARTIFACTS / "certify_desk_run.png"))
                desk.locator("input[placeholder='your name']").fill("B. Rowser")
                desk.locator(".desk-decision select").select_option("certified")
                desk.locator("button.widget-button", has_text="Save sign-off").click()
                expect(desk).to_contain_text("signed by B. Rowser")
                desk.locator("button.widget-button", has_text="Show the report here").click()
                frame = page.frame_locator("iframe[title='certification report']")
                expect(frame.locator("h1")).to_contain_text("OMS certification report")
                expect(frame.locator("table.signoff")).to_contain_text("B. Rowser")
                expect(page.locator(WIDGET_ERRORS)).to_have_count(0)
                desk.screenshot(path=str(ARTIFACTS / "certify_desk_signed.png"))
            finally:
                browser.close()
        assert lab.stop() == 0
    runs = sorted((tmp_path / "certification" / "runs").glob("run-*"))
    assert runs, "the desk writes its runs beside the notebooks folder"
    signed = json.loads((runs[-1] / "signoff.json").read_text())
    assert signed[0]["name"] == "B. Rowser" and signed[0]["decision"] == "certified"
