"""``/docs`` needs no network: Swagger UI's script, style and icon come from an installed
package (``fastapi-offline``, pinned in pyproject.toml) and are served by the server
itself; there is no ``/redoc`` (ReDoc's bundle fetches its logo from a CDN). In a real
browser, with every request that is not for 127.0.0.1 aborted, the docs page of a real
``oms serve`` lists the operations (kept as a screenshot in artifacts/browser/)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_FLAGS

from conftest import ServeProcess, TestClient
from oms.api import create_app
from oms.engine import Engine

URLS = re.compile(r"""(?:src|href|spec-url)=["']([^"']+)["']|url: ?'([^']+)'""")


def test_the_docs_page_loads_everything_from_this_server(gw: Engine) -> None:
    with TestClient(create_app(gw)) as client:
        assert client.get("/redoc").status_code == 404
        html = client.get("/docs")
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        assert "cdn" not in html.text.lower() and "fonts.googleapis" not in html.text
        urls = [a or b for a, b in URLS.findall(html.text)]
        assert urls and all(u.startswith("/") and not u.startswith("//") for u in urls), urls
        for url in urls:
            answer = client.get(url)
            assert answer.status_code == 200, url
            assert len(answer.content) > 100, url
        kinds = {client.get(u).headers["content-type"].split(";")[0] for u in urls}
        assert "text/javascript" in kinds and "image/png" in kinds


def test_the_docs_assets_are_not_operations_and_answer_head(gw: Engine) -> None:
    with TestClient(create_app(gw)) as client:
        paths = client.get("/openapi.json").json()["paths"]
        assert not [p for p in paths if p.startswith("/docs")]
        assert client.head("/docs/assets/swagger-ui-bundle.js").status_code == 200
        assert client.get("/docs/assets/nothing.js").status_code == 404


@pytest.mark.slow
def test_the_docs_page_lists_the_operations_in_a_browser_with_the_network_blocked(
    tmp_path: Path, serve: Callable[..., ServeProcess]
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install -y chromium)")
    from playwright.sync_api import expect, sync_playwright

    server = serve(tmp_path / "book.duckdb")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    blocked: list[str] = []
    loaded: list[str] = []

    def only_loopback(route: Any) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1:", "http://127.0.0.1/")):
            loaded.append(url)
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.route("**/*", only_loopback)
            page.goto(server.url + "/docs")
            operations = page.locator(".opblock")
            expect(operations.first).to_be_visible(timeout=30_000)
            expect(page.locator(".opblock-summary-path", has_text="/orders")).to_have_count(1)
            expect(page.locator(".opblock-summary-path", has_text="/sql")).to_have_count(1)
            assert operations.count() >= 9
            page.screenshot(path=str(ARTIFACTS / "docs_offline.png"), full_page=False)
        finally:
            browser.close()
    assert blocked == [], blocked
    assert any(u.endswith("/docs/assets/swagger-ui-bundle.js") for u in loaded), loaded
