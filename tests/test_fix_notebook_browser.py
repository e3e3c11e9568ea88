"""notebooks/fix_face.ipynb in a real browser: the workbench (``oms lab``) on loopback,
Debian's Chromium driven by Playwright at a 1400 px wide window, the notebook (a copy in a
temp folder) run top to bottom. The desk over FIX renders without a widget error, Execute is
disabled with its reason as tooltip and note, the history lists FIX messages, and the raw,
decoded and side-by-side tables are there. Screenshots go to artifacts/browser/fix_face*.png;
the asserts check elements and text only.

Fails -- never skips -- when Chromium is missing: ``make browser`` installs it.
"""

from __future__ import annotations

import re
from pathlib import Path

import lab_process
import pytest

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = lab_process.ROOT / "artifacts" / "browser"
WAIT_MS = 60_000
NAME = "fix_face.ipynb"


def test_the_fix_notebook_renders_the_desk_and_the_messages_in_a_real_browser(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install -y chromium)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with lab_process.running_lab(tmp_path, [NAME], "--LabApp.expose_app_in_browser=True") as lab:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True,
                                        ignore_default_args=["--hide-scrollbars"])  # fmt: skip
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1100})
                page.set_default_timeout(WAIT_MS)
                page.goto(lab.url(f"/lab/tree/{NAME}?reset"))
                expect(page.locator(".jp-NotebookPanel-toolbar .jp-KernelName").first).to_contain_text("Python 3")
                expect(page.locator(".jp-Notebook-ExecutionIndicator").first).to_have_attribute("data-status", "idle")
                expect(page.locator(".jp-MarkdownCell").first).to_contain_text("fresh book of its own")
                # the file browser folded away, as an analyst reading wide tables would
                page.evaluate("window.jupyterapp.commands.execute('application:toggle-left-area')")
                page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
                page.wait_for_function(
                    """() => { const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
                               return p.length > 0 && p.every(e => /^\\[\\d+\\]:$/.test(e.textContent.trim())); }""",
                    timeout=WAIT_MS,
                )
                expect(page.locator(".jupyter-widgets-error-widget")).to_have_count(0)
                assert "Error displaying widget" not in page.content()
                expect(
                    page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
                ).to_have_count(0)

                desk = page.locator(".order-entry").first
                actions = desk.locator(".order-actions")
                execute = actions.locator("button.widget-button", has_text=re.compile(r"^\s*Execute\s*$"))
                expect(execute).to_be_disabled()
                expect(execute).to_have_attribute("title", re.compile("^Execute is not on the FIX face"))
                expect(actions.locator(".oms-unsupported")).to_contain_text("Execute is not on the FIX face")
                table = desk.locator(".order-blotter .oms-blotter-table")
                expect(table.locator("td", has_text=re.compile(r"^\s*EXECUTED\s*$"))).to_have_count(1)
                history = desk.locator(".order-history")
                expect(history).to_contain_text("Order history — its FIX messages")
                expect(history).to_contain_text("The audit log is not on the FIX face")
                expect(history).to_contain_text("F Trade")
                desk.scroll_into_view_if_needed()
                desk.screenshot(path=str(ARTIFACTS / "fix_face_desk.png"))

                raw = page.locator(".jp-CodeCell", has_text="journal.raw_text(messages)").locator(".jp-OutputArea")
                expect(raw).to_contain_text("#3 → sent D NewOrderSingle")
                expect(raw).to_contain_text("150=F|39=2")
                raw.scroll_into_view_if_needed()
                page.screenshot(path=str(ARTIFACTS / "fix_face_raw.png"), full_page=False)

                side = page.locator(".jp-CodeCell", has_text="journal.beside_audit").locator(".jp-OutputArea")
                for label in ("ExecID (17)", "TransactTime (60)", "#5 G OrderCancelReplaceRequest", "F Trade"):
                    expect(side).to_contain_text(label)
                side.scroll_into_view_if_needed()
                page.screenshot(path=str(ARTIFACTS / "fix_face_beside_audit.png"), full_page=False)
            finally:
                browser.close()
        assert lab.stop() == 0
