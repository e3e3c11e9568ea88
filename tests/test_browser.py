"""The order-entry notebook in a real browser: the workbench (``oms lab``: ``oms serve`` +
JupyterLab) on loopback, Debian's Chromium driven by Playwright at a 1400 px wide window,
the notebook (a copy in a temp folder) run, then the desk used by clicks: a blank ticket
without errors, a submit that clears the ticket, Execute that asks for confirmation, a
blotter whose every column can be reached, filtered and exported, and that follows an
order entered by another process on the shared book without a cell re-run; then the
order-views notebook on that book, whose history cell says that order 5 is not there. Both
notebooks open with the line that says how to use them. Each state is kept as a
screenshot in artifacts/browser/; the asserts check elements and text only.

Fails -- never skips -- when Chromium is missing: ``make browser`` installs it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

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
ELSEWHERE = """
from oms.notebook import session
book = session()
order = book.gateway.create(symbol="TCS", side="SELL", quantity=7, price="3890.5", client_order_id="ELSEWHERE-1")
print(order.order_id)
"""
# Can the analyst get to the blotter's last column? It is inside the output area, or the
# table scrolls sideways (a scrollbar) and scrolling brings it inside.
LAST_COLUMN = """(table) => {
    const th = [...table.querySelectorAll('th')].pop();
    const area = table.closest('.jp-OutputArea-output').getBoundingClientRect();
    const inside = () => { const t = th.getBoundingClientRect();
                           return t.right <= area.right + 1 && t.left >= area.left - 1; };
    const before = inside();
    const scrolls = getComputedStyle(table).overflowX === 'auto' && table.scrollWidth > table.clientWidth;
    th.scrollIntoView({inline: 'end', block: 'nearest'});
    return {label: th.textContent.trim(), fits: before, scrolls: scrolls, reached: inside()};
}"""
# Buttons whose label does not fit show an ellipsis ("M…"): their content is wider than they are.
CUT_BUTTONS = """() => [...document.querySelectorAll('.order-entry button.widget-button')]
    .filter(b => b.offsetParent !== null && b.scrollWidth > b.clientWidth + 1).map(b => b.textContent.trim())"""


def open_and_run_all(page: Any, url: str, expect: Any) -> None:
    """Open a notebook, check its first line says how to use it, run all, wait for every cell."""
    page.goto(url)
    # kernel ready: the toolbar names it and the indicator says idle
    expect(page.locator(".jp-NotebookPanel-toolbar .jp-KernelName").first).to_contain_text("Python 3")
    expect(page.locator(".jp-Notebook-ExecutionIndicator").first).to_have_attribute("data-status", "idle")
    first = page.locator(".jp-MarkdownCell").first
    expect(first).to_contain_text("Stored outputs below show a scratch book: Run All")
    expect(first).to_contain_text("to work on the shared book")
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(
        """() => { const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
                   return p.length > 0 && p.every(e => /^\\[\\d+\\]:$/.test(e.textContent.trim())); }""",
        timeout=WAIT_MS,
    )
    assert page.locator(".jp-CodeCell .jp-InputPrompt").count() >= 5
    expect(page.locator(WIDGET_ERRORS)).to_have_count(0)


def shot(target: Any, name: str) -> None:
    target.screenshot(path=str(ARTIFACTS / name))


def test_the_order_desk_by_clicks_in_a_real_browser(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install -y chromium)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    notebooks = ["order_entry.ipynb", "order_views.ipynb"]
    with lab_process.running_lab(tmp_path, notebooks, "--LabApp.expose_app_in_browser=True") as lab:
        with sync_playwright() as p:
            # show scrollbars as an analyst's browser does (headless hides them by default)
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True,
                                        ignore_default_args=["--hide-scrollbars"])  # fmt: skip
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1100})
                page.set_default_timeout(WAIT_MS)
                open_and_run_all(page, lab.url("/lab/tree/order_entry.ipynb?reset"), expect)
                desk = page.locator(".order-entry").first
                ticket = desk.locator(".order-ticket")
                actions = desk.locator(".order-actions")
                blotter = desk.locator(".order-blotter")
                expect(ticket).to_have_count(1)
                fields = {name: ticket.locator(f"input[placeholder='{name}']") for name in ("INFY", "100", "1500.25")}
                client_id = ticket.locator("input[placeholder='optional']")
                feedback = ticket.locator(".oms-feedback .widget-html-content")

                # 1. a blank ticket: a grey hint, no red error
                expect(feedback).to_have_text("to fill: symbol, quantity, price")
                expect(feedback.locator("span[style*='#b91c1c']")).to_have_count(0)
                expect(blotter.locator(".oms-auto-status")).to_contain_text("auto-refresh every 1 s")
                ticket.scroll_into_view_if_needed()
                shot(ticket, "ticket_blank.png")

                # 2. a field is checked once touched
                fields["100"].fill("ten")
                expect(feedback).to_contain_text('quantity: must be a whole number, got "ten"')
                expect(feedback).not_to_contain_text("symbol")
                shot(ticket, "ticket_touched.png")

                # 3. submit: the ticket clears and no longer says "ready to submit"
                fields["INFY"].fill("WIPRO")
                fields["100"].fill("25")
                fields["1500.25"].fill("480.50")
                client_id.fill("BROWSER-1")
                expect(feedback).to_have_text("ready to submit")
                ticket.locator("button.widget-button", has_text="Submit").click()
                status = ticket.locator(".oms-status .widget-html-content")
                expect(status).to_contain_text("created #1 WIPRO BUY 25 @ 480.5 LIMIT — NEW")
                for field in (*fields.values(), client_id):
                    expect(field).to_have_value("")
                expect(feedback).to_have_text("to fill: symbol, quantity, price")
                table = blotter.locator(".oms-blotter-table")
                expect(table).to_contain_text("BROWSER-1")
                expect(table.locator("td", has_text=re.compile(r"^\s*NEW\s*$"))).to_have_count(1)
                expect(table.locator("td", has_text=re.compile(r"^\s*480\.5\s*$"))).to_have_count(1)
                expect(actions.locator(".oms-status")).to_contain_text("picked #1 WIPRO BUY 25 @ 480.5 LIMIT — NEW")
                expect(page.locator(WIDGET_ERRORS)).to_have_count(0)
                assert "Error displaying widget" not in page.content()
                shot(ticket, "ticket_after_submit.png")
                page.screenshot(path=str(ARTIFACTS / "order_entry.png"), full_page=False)

                # 4. Execute asks first; only Confirm acts
                execute = actions.locator("button.widget-button", has_text=re.compile(r"^\s*Execute\s*$"))
                execute.click()
                confirm_row = actions.locator(".oms-confirm")
                expect(confirm_row).to_be_visible()
                expect(confirm_row).to_contain_text(
                    "Confirm execute of order 1 (WIPRO BUY 25 LIMIT, NEW) in full at its limit 480.5?"
                )
                expect(table.locator("td", has_text=re.compile(r"^\s*NEW\s*$"))).to_have_count(1)
                shot(actions, "confirm_execute.png")
                confirm_row.locator("button.widget-button", has_text="Confirm execute").click()
                expect(confirm_row).to_be_hidden()
                expect(table.locator("td", has_text=re.compile(r"^\s*EXECUTED\s*$"))).to_have_count(1)
                for name in ("Modify", "Cancel", "Execute"):
                    button = actions.locator("button.widget-button", has_text=re.compile(rf"^\s*{name}\s*$"))
                    expect(button).to_be_disabled()
                expect(desk.locator(".order-history")).to_contain_text("execute")
                shot(desk, "order_entry_executed.png")

                # 5. another notebook enters an order: the blotter shows it without a re-run
                elsewhere = subprocess.run([sys.executable, "-c", ELSEWHERE], env=lab.kernel_environment(),
                                           capture_output=True, text=True, timeout=60)  # fmt: skip
                assert (elsewhere.returncode, elsewhere.stdout.strip()) == (0, "2"), elsewhere.stderr
                expect(table).to_contain_text("ELSEWHERE-1")
                expect(table.locator("td", has_text=re.compile(r"^\s*3890\.5\s*$"))).to_have_count(1)
                expect(actions.locator("select")).to_contain_text("#2 TCS SELL 7 @ 3890.5 LIMIT — NEW")

                # 6. at 1400 px every blotter column can be reached; no button label is cut
                for header in ("exec price", "updated (UTC)"):
                    expect(table.locator("th", has_text=header)).to_have_count(1)
                assert page.evaluate(CUT_BUTTONS) == []
                blotter.scroll_into_view_if_needed()
                shot(blotter, "blotter_1400.png")
                page.screenshot(path=str(ARTIFACTS / "blotter_1400_page.png"), full_page=False)
                last = table.evaluate(LAST_COLUMN)
                assert (last["label"], last["fits"], last["reached"]) == ("updated (UTC)", True, True), last

                # 7. filter, sort, export
                blotter.locator("select").first.select_option("NEW")
                expect(table).to_contain_text("ELSEWHERE-1")
                expect(table).not_to_contain_text("BROWSER-1")
                expect(blotter.locator(".oms-status")).to_contain_text("1 of 2 orders shown (status NEW)")
                blotter.locator("button.widget-button", has_text="Export CSV").click()
                expect(blotter.locator(".oms-status")).to_contain_text("wrote 1 order to exports/blotter-")
                shot(blotter, "blotter_filtered_exported.png")
                [exported] = (lab.notebooks / "exports").glob("blotter-*.csv")
                assert "ELSEWHERE-1" in exported.read_text() and "BROWSER-1" not in exported.read_text()

                # 8. a narrower window: the panels wrap, the buttons keep their labels
                # (and a table wider than the page scrolls sideways to its last column)
                page.set_viewport_size({"width": 1000, "height": 1100})
                blotter.locator("select").first.select_option("all")
                expect(table).to_contain_text("BROWSER-1")
                expect(actions.locator("button.widget-button", has_text="Modify")).to_have_text(re.compile("Modify"))
                assert page.evaluate(CUT_BUTTONS) == []
                actions.scroll_into_view_if_needed()
                shot(desk, "order_entry_1000.png")
                last = table.evaluate(LAST_COLUMN)
                assert (last["label"], last["reached"]) == ("updated (UTC)", True), last
                assert last["fits"] or last["scrolls"], last
                shot(blotter, "blotter_1000_scrolled.png")

                # 9. the order-views notebook on the shared book: order 5 is not there, and it says so
                views = browser.new_page(viewport={"width": 1400, "height": 1100})
                views.set_default_timeout(WAIT_MS)
                open_and_run_all(views, lab.url("/lab/tree/order_views.ipynb?reset"), expect)
                history = views.locator(".jp-CodeCell", has_text="order_history(gw, 5)").locator(".jp-OutputArea")
                expect(history).to_contain_text("no order 5 in this book (it holds 2 orders, ids 1 to 2)")
                expect(history.locator("td")).to_have_count(0)  # no other order's events under it
                history.scroll_into_view_if_needed()
                views.screenshot(path=str(ARTIFACTS / "order_views_history.png"), full_page=False)

                # 10. SQL on the live book, through the server: rows, and the three-way backend check
                by_status = views.locator(".jp-CodeCell", has_text="GROUP BY status").locator(".jp-OutputArea")
                expect(by_status).to_contain_text("EXECUTED")
                expect(by_status).to_contain_text("NEW")
                expect(by_status).not_to_contain_text("SQL needs the database file")
                check = views.locator(".jp-CodeCell", has_text="backend_check(gw)").locator(".jp-OutputArea")
                for source in ("gateway (get/orders)", "SQL (orders table)", "replay (order_events)"):
                    expect(check).to_contain_text(source)
                expect(check).not_to_contain_text("False")
                expect(
                    views.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
                ).to_have_count(0)
                check.scroll_into_view_if_needed()
                views.screenshot(path=str(ARTIFACTS / "order_views_sql_live.png"), full_page=False)
            finally:
                browser.close()
        assert lab.stop() == 0
    # in the database file, which the workbench's server released on exit
    with oms.open(lab.db) as gw:
        mine, other = gw.orders()
        assert (mine.symbol, mine.quantity, str(mine.price), mine.client_order_id, mine.status.value) == (
            "WIPRO", 25, "480.5", "BROWSER-1", "EXECUTED"
        )  # fmt: skip
        assert [e.action.value for e in gw.events(mine.order_id)] == ["create", "execute"]
        assert (other.client_order_id, other.status.value) == ("ELSEWHERE-1", "NEW")
