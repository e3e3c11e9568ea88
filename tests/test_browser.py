"""The order-entry notebook in a real browser: the workbench (``oms lab``: ``oms serve`` +
JupyterLab) on loopback, Debian's Chromium driven by Playwright, the notebook (a copy in
a temp folder) run, the ticket filled and submitted by clicks, the new order seen in the
rendered blotter and in the database file. A screenshot is kept in artifacts/browser/.

Fails -- never skips -- when Chromium is missing: ``make browser`` installs it.
"""

from __future__ import annotations

import re
from pathlib import Path

import lab_process
import pytest

import oms

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = lab_process.ROOT / "artifacts" / "browser"
WAIT_MS = 60_000
WIDGET_ERRORS = ".jupyter-widgets-error-widget"


def test_order_entered_by_clicks_shows_in_the_rendered_blotter_and_in_the_database(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install -y chromium)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with lab_process.running_lab(tmp_path, ["order_entry.ipynb"], "--LabApp.expose_app_in_browser=True") as lab:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1100})
                page.set_default_timeout(WAIT_MS)
                page.goto(lab.url("/lab/tree/order_entry.ipynb?reset"))

                # kernel ready: the toolbar names it and the indicator says idle
                expect(page.locator(".jp-NotebookPanel-toolbar .jp-KernelName").first).to_contain_text("Python 3")
                expect(page.locator(".jp-Notebook-ExecutionIndicator").first).to_have_attribute("data-status", "idle")
                page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
                prompts = page.locator(".jp-CodeCell .jp-InputPrompt")
                page.wait_for_function(
                    """() => { const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
                               return p.length > 0 && p.every(e => /^\\[\\d+\\]:$/.test(e.textContent.trim())); }""",
                    timeout=WAIT_MS,
                )
                assert prompts.count() >= 5

                ticket = page.locator(".order-ticket")
                expect(ticket).to_have_count(1)
                ticket.locator("input[placeholder='INFY']").fill("WIPRO")
                ticket.locator("input[placeholder='100']").fill("25")
                ticket.locator("input[placeholder='1500.25']").fill("480.5")
                ticket.locator("input[placeholder='optional']").fill("BROWSER-1")
                ticket.locator("button.widget-button", has_text="Submit").click()

                status = ticket.locator(".oms-status .widget-html-content")
                expect(status).to_contain_text("created #1 WIPRO BUY 25 @ 480.5 LIMIT — NEW")
                blotter = page.locator(".order-blotter .oms-blotter-table")
                expect(blotter).to_contain_text("BROWSER-1")
                expect(blotter.locator("td", has_text=re.compile(r"^\s*NEW\s*$"))).to_have_count(1)
                expect(page.locator(".order-actions button.widget-button", has_text="Cancel")).to_be_enabled()
                history = page.locator(".order-history")
                expect(history).to_contain_text("create")

                # the widgets rendered: no error widget, no error text anywhere
                expect(page.locator(WIDGET_ERRORS)).to_have_count(0)
                assert "Error displaying widget" not in page.content()
                ticket.scroll_into_view_if_needed()
                page.screenshot(path=str(ARTIFACTS / "order_entry.png"), full_page=False)
                page.locator(".order-entry").screenshot(path=str(ARTIFACTS / "order_entry_desk.png"))

                # an action by click: the lifecycle leaves no button enabled after EXECUTED
                page.locator(".order-actions button.widget-button", has_text="Execute").click()
                expect(blotter.locator("td", has_text=re.compile(r"^\s*EXECUTED\s*$"))).to_have_count(1)
                for name in ("Modify", "Cancel", "Execute"):
                    expect(page.locator(".order-actions button.widget-button", has_text=name)).to_be_disabled()
                expect(history).to_contain_text("execute")
                page.locator(".order-entry").screenshot(path=str(ARTIFACTS / "order_entry_executed.png"))
            finally:
                browser.close()
        assert lab.stop() == 0
    # in the database file, which the workbench's server released on exit
    with oms.open(lab.db) as gw:
        [order] = gw.orders()
        assert (order.symbol, order.quantity, str(order.price), order.client_order_id, order.status.value) == (
            "WIPRO", 25, "480.5", "BROWSER-1", "EXECUTED"
        )  # fmt: skip
        assert [e.action.value for e in gw.events(order.order_id)] == ["create", "execute"]
