"""``GET /orders`` in pages and in full: ``?limit=N&after=ID`` gives a page, sorted by id,
filters applied, with an RFC 8288 ``Link: <...>; rel="next"`` while more remain; without
``limit`` every order, streamed, in exactly the JSON the contract always had. The remote
gateway and the blotter read in pages."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from test_api_contract import assert_canonical_error

import oms
from conftest import TestClient, ThreadedServer
from oms import views
from oms.api import create_app
from oms.engine import Engine
from oms.jsonio import dumps

NEXT = re.compile(r'^<([^>]+)>; rel="next"$')


@pytest.fixture
def book(gw: Engine) -> Engine:
    """Eleven orders with every kind of value a listing writes."""
    for i in range(1, 12):
        kind = (
            {"order_type": "MARKET"}
            if i % 4 == 0
            else {"price": ["1500.25", "0.0001", "1500", "999999999999.9999"][i % 4]}
        )
        gw.create(symbol="INFY" if i % 2 else "A.B-C_D", side="BUY" if i % 3 else "SELL", quantity=i, **kind,
                  client_order_id=[None, f'q"uote{i}', f"back\\slash{i}", f"/~!{i}"][i % 4])  # fmt: skip
    gw.modify(1, price="1499.5")
    gw.execute(2)
    gw.execute(4, price="12.3400")
    gw.cancel(5)
    return gw


@pytest.fixture
def client(book: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(book)) as test_client:
        yield test_client


def test_the_full_listing_is_exactly_the_json_of_the_orders(client: TestClient, book: Engine) -> None:
    response = client.get("/orders")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.text == dumps([o.to_dict() for o in book.orders()])
    assert "link" not in response.headers
    for query, kept in (("status=NEW", {"status": "NEW"}), ("symbol=a.b-c_d", {"symbol": "A.B-C_D"})):
        expected = book.orders(**kept)  # type: ignore[arg-type]
        assert client.get(f"/orders?{query}").text == dumps([o.to_dict() for o in expected])


def test_an_empty_book_lists_an_empty_array(gw: Engine) -> None:
    with TestClient(create_app(gw)) as client:
        assert client.get("/orders").text == "[]"
        assert client.get("/orders?limit=5").text == "[]"


def test_the_full_listing_is_streamed_by_a_real_server(book: Engine) -> None:
    with ThreadedServer(book) as server, httpx.stream("GET", server.url + "/orders") as response:
        assert response.headers.get("transfer-encoding") == "chunked" and "content-length" not in response.headers
        assert response.read().decode() == dumps([o.to_dict() for o in book.orders()])


def follow(client: TestClient, url: str) -> tuple[list[list[int]], list[str]]:
    pages, links = [], []
    next_url: str | None = url
    while next_url:
        response = client.get(next_url)
        assert response.status_code == 200, response.text
        pages.append([o["order_id"] for o in response.json()])
        link = response.headers.get("link")
        next_url = None
        if link:
            match = NEXT.match(link)
            assert match, link
            next_url = match.group(1)
            links.append(next_url)
    return pages, links


def test_pages_follow_the_link_header_until_none_remain(client: TestClient) -> None:
    pages, links = follow(client, "/orders?limit=4")
    assert pages == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11]]
    assert links == ["/orders?limit=4&after=4", "/orders?limit=4&after=8"]
    assert follow(client, "/orders?limit=11")[0] == [list(range(1, 12))]  # exactly all: no next page
    assert follow(client, "/orders?after=9")[0] == [[10, 11]]  # after without limit: the rest, whole


def test_a_page_is_the_same_json_as_the_full_listing_and_keeps_the_filters(client: TestClient) -> None:
    full = client.get("/orders").json()
    page = client.get("/orders?limit=3&after=2")
    assert page.json() == full[2:5] and page.text == dumps(full[2:5])
    pages, links = follow(client, "/orders?symbol=INFY&limit=2")
    assert pages == [[1, 3], [5, 7], [9, 11]]
    assert links[0] == "/orders?symbol=INFY&limit=2&after=3"
    assert follow(client, "/orders?status=NEW&limit=3&after=3")[0] == [[6, 7, 8], [9, 10, 11]]


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=0", "limit"), ("limit=10001", "limit"), ("limit=abc", "limit"), ("limit=01", "limit"),
     ("limit=-1", "limit"), ("limit=", "limit"), ("after=-1", "after"), ("after=x", "after"), ("after=1.5", "after"),
     ("limit=2&limit=3", "limit"), ("after=1&after=2", "after"), ("page=2", "page")],
)  # fmt: skip
def test_a_bad_limit_or_after_is_422_naming_it(client: TestClient, query: str, field: str) -> None:
    detail = assert_canonical_error(client.get(f"/orders?{query}"), 422, "VALIDATION_ERROR")
    assert [e["field"] for e in detail["errors"]] == [field]


def test_the_remote_gateway_reads_the_book_in_pages(book: Engine) -> None:
    with ThreadedServer(book) as server, oms.connect(server.url) as remote:
        pages = list(remote.order_pages(limit=4))
        assert [[o.order_id for o in page] for page in pages] == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11]]
        assert remote.orders() == book.orders()
        assert remote.orders(status="new", symbol="infy") == book.orders(status="NEW", symbol="INFY")
        with pytest.raises(oms.ValidationError):
            remote.orders(status="nope")


def test_the_blotter_reads_in_pages_and_is_the_same_on_both_transports(
    book: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views, "PAGE_ROWS", 3)
    with ThreadedServer(book) as server, oms.connect(server.url) as remote:
        for filters in ({}, {"status": "NEW"}, {"symbol": "a.b-c_d"}):
            here, there = views.blotter(book, **filters), views.blotter(remote, **filters)
            assert here.equals(there), filters
            assert here.equals(views.to_frame(views.orders_to_arrow(book.orders(**filters))))
        assert len(views.blotter(remote)) == 11


def test_a_relaying_server_pages_its_listing_too(book: Engine) -> None:
    with ThreadedServer(book) as server, oms.connect(server.url) as remote, TestClient(create_app(remote)) as relay:
        assert relay.get("/orders").text == dumps([o.to_dict() for o in book.orders()])
        assert follow(relay, "/orders?limit=5&status=NEW")[0] == [[3, 6, 7, 8, 9], [10, 11]]
