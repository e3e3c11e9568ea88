"""The REST contract of DESIGN.md, through FastAPI's TestClient over a fresh in-memory
engine: paths, status codes, order and event JSON, the one error shape, and that no bad
request -- however malformed -- yields a 500 or changes anything."""

from __future__ import annotations

import gc
import json
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

import oms
from conftest import TestClient, ThreadedServer, counting_appends
from oms.api import create_app
from oms.committer import Committer
from oms.engine import Engine

ORDER_FIELDS = {
    "order_id", "client_order_id", "symbol", "side", "order_type", "quantity", "price", "status",
    "version", "executed_quantity", "executed_price", "created_at", "updated_at",
}  # fmt: skip
EVENT_FIELDS = {"seq", "order_id", "action", "from_status", "to_status", "accepted", "reason", "at"}
LIMIT_ORDER = {"symbol": "INFY", "side": "BUY", "quantity": 100, "price": 1500.25}
JSON = {"content-type": "application/json"}


def assert_canonical_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Every refusal: the status, JSON, ``{"detail": {"code", "message"[, "errors"]}}``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"detail"}, body
    detail = body["detail"]
    assert detail["code"] == code, detail
    assert isinstance(detail["message"], str) and detail["message"]
    assert "Traceback" not in response.text
    if code == "VALIDATION_ERROR":
        assert set(detail) == {"code", "message", "errors"}
        assert detail["errors"] and all(set(e) == {"field", "message"} for e in detail["errors"])
    else:
        assert set(detail) == {"code", "message"}
    return detail  # type: ignore[no-any-return]


def post_order(client: TestClient, **overrides: Any) -> dict[str, Any]:
    response = client.post("/order", json={**LIMIT_ORDER, **overrides})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def snapshot(client: TestClient) -> str:
    return client.get("/orders").text


# ---- success paths ----------------------------------------------------------------------


def test_post_order_creates_a_new_order_with_every_field_of_the_contract(client: TestClient) -> None:
    response = client.post("/order", json={**LIMIT_ORDER, "symbol": "infy", "client_order_id": "c-1"})
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    order = response.json()
    assert set(order) == ORDER_FIELDS
    assert order == {
        "order_id": 1, "client_order_id": "c-1", "symbol": "INFY", "side": "BUY", "order_type": "LIMIT",
        "quantity": 100, "price": 1500.25, "status": "NEW", "version": 1, "executed_quantity": 0,
        "executed_price": None, "created_at": "2026-01-05T09:15:00.000Z", "updated_at": "2026-01-05T09:15:00.000Z",
    }  # fmt: skip


def test_prices_are_exact_json_numbers_in_the_response_text(client: TestClient) -> None:
    response = client.post("/order", content=b'{"symbol":"X","side":"SELL","quantity":1,"price":999999999999.9999}',
                           headers=JSON)  # fmt: skip
    assert '"price": 999999999999.9999,' in response.text
    assert json.loads(response.text, parse_float=Decimal)["price"] == Decimal("999999999999.9999")
    response = client.post(
        "/order", content=b'{"symbol":"X","side":"SELL","quantity":1,"price":"0.1000"}', headers=JSON
    )
    assert '"price": 0.1,' in response.text


def test_put_modifies_a_new_order_and_returns_it_modified(client: TestClient) -> None:
    post_order(client)
    response = client.put("/order/1", json={"quantity": 40, "price": 1499.5})
    assert response.status_code == 200
    assert {k: response.json()[k] for k in ("status", "version", "quantity", "price")} == {
        "status": "MODIFIED", "version": 2, "quantity": 40, "price": 1499.5,
    }  # fmt: skip


def test_delete_cancels_a_new_order(client: TestClient) -> None:
    post_order(client)
    response = client.delete("/order/1")
    assert response.status_code == 200 and response.json()["status"] == "CANCELLED"


def test_execute_without_a_body_fills_at_the_limit_and_with_a_price_at_that_price(client: TestClient) -> None:
    post_order(client)
    post_order(client)
    first = client.post("/order/1/execute")
    second = client.post("/order/2/execute", json={"price": 1400})
    assert (first.status_code, second.status_code) == (200, 200)
    assert (first.json()["status"], first.json()["executed_price"], first.json()["executed_quantity"]) == (
        "EXECUTED", 1500.25, 100,
    )  # fmt: skip
    assert second.json()["executed_price"] == 1400


def test_get_orders_lists_by_id_and_filters_by_status_and_symbol(client: TestClient) -> None:
    for symbol in ("INFY", "TCS", "INFY"):
        post_order(client, symbol=symbol)
    client.delete("/order/2")
    assert [o["order_id"] for o in client.get("/orders").json()] == [1, 2, 3]
    assert [o["order_id"] for o in client.get("/orders", params={"status": "NEW"}).json()] == [1, 3]
    assert [o["order_id"] for o in client.get("/orders", params={"symbol": "tcs"}).json()] == [2]
    assert client.get("/orders", params={"status": "NEW", "symbol": "TCS"}).json() == []


def test_get_order_returns_the_order(client: TestClient) -> None:
    created = post_order(client)
    assert client.get("/order/1").json() == created


def test_get_events_lists_the_audit_log_oldest_first_refusals_included(client: TestClient) -> None:
    post_order(client)
    client.post("/order/1/execute")
    client.delete("/order/1")
    events = client.get("/order/1/events").json()
    assert all(set(e) >= EVENT_FIELDS for e in events)
    assert [(e["action"], e["from_status"], e["to_status"], e["accepted"], e["reason"]) for e in events] == [
        ("create", None, "NEW", True, None),
        ("execute", "NEW", "EXECUTED", True, None),
        ("cancel", "EXECUTED", None, False, "INVALID_TRANSITION"),
    ]
    assert events[0]["price"] == 1500.25 and events[1]["executed_price"] == 1500.25
    assert [e["seq"] for e in events] == [1, 2, 3]


def test_the_docs_page_and_the_openapi_document_describe_every_endpoint(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200 and "swagger" in client.get("/docs").text.lower()
    paths = client.get("/openapi.json").json()["paths"]
    assert {(p, m) for p, ops in paths.items() for m in ops} >= {
        ("/order", "post"), ("/order/{order_id}", "put"), ("/order/{order_id}", "delete"),
        ("/order/{order_id}/execute", "post"), ("/orders", "get"), ("/order/{order_id}", "get"),
        ("/order/{order_id}/events", "get"),
    }  # fmt: skip
    create = paths["/order"]["post"]
    assert set(create["responses"]) >= {"201", "409", "422"}
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["symbol", "side", "quantity"] and body["additionalProperties"] is False


# ---- refusals: one shape ----------------------------------------------------------------


def test_an_unknown_order_is_404_order_not_found_everywhere(client: TestClient) -> None:
    for response in (
        client.get("/order/7"), client.get("/order/7/events"), client.delete("/order/7"),
        client.put("/order/7", json={"quantity": 1}), client.post("/order/7/execute"),
    ):  # fmt: skip
        assert "order 7" in assert_canonical_error(response, 404, "ORDER_NOT_FOUND")["message"]


def test_a_refused_transition_is_409_naming_the_action_and_the_status(client: TestClient) -> None:
    post_order(client)
    client.put("/order/1", json={"price": 1499})
    before = snapshot(client)
    detail = assert_canonical_error(client.delete("/order/1"), 409, "INVALID_TRANSITION")
    assert detail["message"] == "cannot cancel order 1: status is MODIFIED"
    assert_canonical_error(client.put("/order/1", json={"price": 1}), 409, "INVALID_TRANSITION")
    assert snapshot(client) == before


def test_a_duplicate_client_order_id_is_409(client: TestClient) -> None:
    post_order(client, client_order_id="same")
    assert_canonical_error(client.post("/order", json={**LIMIT_ORDER, "client_order_id": "same"}), 409,
                           "DUPLICATE_CLIENT_ORDER_ID")  # fmt: skip
    assert len(client.get("/orders").json()) == 1


def test_an_execution_worse_than_the_limit_is_409_price_outside_limit(client: TestClient) -> None:
    post_order(client)
    assert_canonical_error(client.post("/order/1/execute", json={"price": 1500.26}), 409, "PRICE_OUTSIDE_LIMIT")
    assert client.get("/order/1").json()["status"] == "NEW"


def test_a_bad_filter_is_422_naming_the_filter(client: TestClient) -> None:
    detail = assert_canonical_error(client.get("/orders", params={"status": "PENDING"}), 422, "VALIDATION_ERROR")
    assert [e["field"] for e in detail["errors"]] == ["status"]
    detail = assert_canonical_error(client.get("/orders", params={"symbol": "A B"}), 422, "VALIDATION_ERROR")
    assert [e["field"] for e in detail["errors"]] == ["symbol"]


@pytest.mark.parametrize("path", ["/order/abc", "/order/1.5", "/order/abc/events", "/order/%20/execute"])
def test_a_path_id_that_is_not_an_integer_is_422_naming_order_id(client: TestClient, path: str) -> None:
    method = "POST" if path.endswith("execute") else "GET"
    detail = assert_canonical_error(client.request(method, path), 422, "VALIDATION_ERROR")
    assert [e["field"] for e in detail["errors"]] == ["order_id"]


@pytest.mark.parametrize("order_id", ["0", "-3"])
def test_a_path_id_below_one_is_refused_by_the_engine_and_logged(client: TestClient, order_id: str) -> None:
    detail = assert_canonical_error(client.delete(f"/order/{order_id}"), 422, "VALIDATION_ERROR")
    assert detail["errors"][0]["field"] == "order_id"


def test_an_id_beyond_64_bits_is_simply_not_found(client: TestClient) -> None:
    post_order(client)
    assert_canonical_error(client.delete("/order/" + "9" * 30), 404, "ORDER_NOT_FOUND")
    assert client.post("/order/1/execute").status_code == 200


def test_unknown_routes_and_methods_answer_in_the_same_shape(client: TestClient) -> None:
    assert_canonical_error(client.get("/nowhere"), 404, "NOT_FOUND")
    assert_canonical_error(client.patch("/order/1", json={}), 405, "METHOD_NOT_ALLOWED")


BAD_CREATE_BODIES: list[tuple[bytes, list[str]]] = [
    (b"", ["body"]),
    (b"not json", ["body"]),
    (b'{"symbol": "INFY",', ["body"]),
    (b"[]", ["body"]),
    (b'"INFY"', ["body"]),
    (b"42", ["body"]),
    (b"null", ["body"]),
    (b"\xff\xfe\x00", ["body"]),
    (b"[" * 60_000, ["body"]),
    (b'{"\\ud800": 1}', ["body"]),
    (b"{}", ["symbol", "side", "quantity", "price"]),
    (b'{"symbol":"INFY","side":"BUY","quantity":100,"price":1500.25,"colour":"red"}', ["colour"]),
    (b'{"symbol":"INFY","side":"BUY","quantity":"100","price":1500.25}', ["quantity"]),
    (b'{"symbol":"INFY","side":"BUY","quantity":100.5,"price":1500.25}', ["quantity"]),
    (b'{"symbol":"INFY","side":"BUY","quantity":true,"price":1500.25}', ["quantity"]),
    (b'{"symbol":"INFY","side":"BUY","quantity":1' + b"0" * 5000 + b',"price":1}', ["body"]),
    (b'{"symbol":"INFY","side":"BUY","quantity":100,"price":NaN}', ["price"]),
    (b'{"symbol":"INFY","side":"BUY","quantity":100,"price":Infinity}', ["price"]),
    (b'{"symbol":"INFY","side":"BUY","quantity":100,"price":-1}', ["price"]),
    (b'{"symbol":"INFY","side":"BUY","quantity":100,"price":1.23456}', ["price"]),
    (b'{"symbol":"INFY","side":"BUY","quantity":100,"price":1e12}', ["price"]),
    (b'{"symbol":"INFY","side":"BUY","quantity":100,"price":[1]}', ["price"]),
    (b'{"symbol":"INFY","side":"BUY","quantity":100,"price":{"v":1}}', ["price"]),
    (b'{"symbol":"","side":"BUY","quantity":100,"price":1}', ["symbol"]),
    (b'{"symbol":"A\\u0000","side":"BUY","quantity":100,"price":1}', ["symbol"]),
    (b'{"symbol":"INFY","side":"buy!","quantity":100,"price":1}', ["side"]),
    (b'{"symbol":"INFY","side":"BUY","order_type":"MARKET","quantity":100,"price":1}', ["price"]),
    (b'{"symbol":"INFY","side":"BUY","quantity":100,"price":1,"client_order_id":"has space"}', ["client_order_id"]),
    (b'{"symbol":"INFY","side":"BUY","quantity":100,"price":1,"client_order_id":7}', ["client_order_id"]),
]


@pytest.mark.parametrize(("body", "fields"), BAD_CREATE_BODIES, ids=lambda v: repr(v)[:40])
def test_a_bad_create_body_is_422_naming_the_fields_and_creates_nothing(
    client: TestClient, body: bytes, fields: list[str]
) -> None:
    response = client.post("/order", content=body, headers={"content-type": "application/json"})
    detail = assert_canonical_error(response, 422, "VALIDATION_ERROR")
    assert [e["field"] for e in detail["errors"]] == fields
    assert client.get("/orders").json() == []
    assert post_order(client)["order_id"] == 1  # and the engine still works


BAD_COMMAND_BODIES: list[tuple[str, str, bytes]] = [
    ("PUT", "/order/1", b""),
    ("PUT", "/order/1", b"{}"),
    ("PUT", "/order/1", b"[1]"),
    ("PUT", "/order/1", b'{"quantity": 0}'),
    ("PUT", "/order/1", b'{"quantity": 5, "price": "abc"}'),
    ("PUT", "/order/1", b'{"status": "EXECUTED"}'),
    ("PUT", "/order/1", b'{"price": 1.00001}'),
    ("POST", "/order/1/execute", b'{"price": 0}'),
    ("POST", "/order/1/execute", b'{"price": null, "quantity": 5}'),
    ("POST", "/order/1/execute", b"{bad"),
    ("POST", "/order/1/execute", b'"1500"'),
    ("DELETE", "/order/1", b'{"reason": "because"}'),
    ("DELETE", "/order/1", b"[]"),
]


@pytest.mark.parametrize(("method", "path", "body"), BAD_COMMAND_BODIES, ids=lambda v: repr(v)[:40])
def test_a_bad_command_body_is_422_and_changes_nothing(client: TestClient, method: str, path: str, body: bytes) -> None:
    post_order(client)
    before = snapshot(client)
    assert_canonical_error(client.request(method, path, content=body, headers=JSON), 422, "VALIDATION_ERROR")
    assert snapshot(client) == before


def test_refused_commands_are_recorded_in_the_event_log(client: TestClient, gw: Engine) -> None:
    client.post("/order", json={"symbol": "INFY"})
    post_order(client)
    client.put("/order/1", json={"colour": "red"})
    refused = [e for e in gw.events() if not e.accepted]
    assert [(e.action.value, e.order_id, e.reason) for e in refused] == [
        ("create", None, "VALIDATION_ERROR"), ("modify", 1, "VALIDATION_ERROR"),
    ]  # fmt: skip
    assert refused[1].request == {"colour": "red"}


# ---- no tracebacks, tokens, the module-level app ------------------------------------------


class BrokenGateway:
    """A gateway whose every read fails unexpectedly (a bug, not a refusal)."""

    target = "broken"

    def orders(self, **_filters: object) -> list[oms.Order]:
        raise RuntimeError("secret internals")

    def submit(self, _command: object) -> oms.Order:
        raise RuntimeError("secret internals")


@pytest.mark.parametrize(("method", "path"), [("GET", "/orders"), ("POST", "/order"), ("DELETE", "/order/1")])
def test_an_unexpected_failure_is_a_500_in_the_same_shape_without_a_traceback(method: str, path: str) -> None:
    with TestClient(create_app(BrokenGateway()), raise_server_exceptions=False) as client:  # type: ignore[arg-type]
        response = client.request(method, path, json=LIMIT_ORDER if path == "/order" else None)
    assert_canonical_error(response, 500, "INTERNAL_ERROR")
    assert "secret internals" not in response.text


def test_with_a_token_every_request_needs_the_bearer_header(gw: Engine) -> None:
    with TestClient(create_app(gw, token="s3cret")) as client:
        wrong = ("Bearer wrong", "s3cret", "Basic s3cret", "Bearer S3CRET", "Bearers3cret", "Bearer")
        for headers in [{}, *({"Authorization": value} for value in wrong)]:
            for path in ("/orders", "/docs", "/openapi.json"):
                assert_canonical_error(client.get(path, headers=headers), 401, "UNAUTHORIZED")
            assert_canonical_error(client.post("/order", json=LIMIT_ORDER, headers=headers), 401, "UNAUTHORIZED")
        assert gw.orders() == []
        ok = client.post("/order", json=LIMIT_ORDER, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 201
        # The scheme name is case-insensitive (RFC 9110 11.1), the token is not.
        assert client.get("/orders", headers={"Authorization": "bearer s3cret"}).status_code == 200


def test_without_a_token_a_request_arriving_on_a_public_address_is_refused(gw: Engine) -> None:
    with TestClient(create_app(gw), base_url="http://192.0.2.10") as client:
        detail = assert_canonical_error(client.get("/orders"), 401, "UNAUTHORIZED")
    assert "OMS_API_TOKEN" in detail["message"]
    with TestClient(create_app(gw, token="t"), base_url="http://192.0.2.10") as client:
        assert client.get("/orders", headers={"Authorization": "Bearer t"}).status_code == 200


def test_the_module_level_app_opens_oms_db_at_startup_and_releases_it_at_shutdown(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from oms.api import app

    monkeypatch.setenv("OMS_DB", str(db_path))
    with TestClient(app) as client:
        assert post_order(client)["order_id"] == 1
        with pytest.raises(oms.StoreError):
            oms.open(db_path)  # held by the app
    with oms.open(db_path) as reopened:
        assert [o.symbol for o in reopened.orders()] == ["INFY"]


def test_concurrent_requests_share_commits_through_the_api(db_path: Path) -> None:
    with oms.open(db_path) as engine:
        appends = counting_appends(engine)
        with ThreadedServer(engine) as server:

            def creates() -> None:
                with httpx.Client(base_url=server.url) as http:
                    for _ in range(8):
                        assert http.post("/order", json=LIMIT_ORDER).status_code == 201

            threads = [threading.Thread(target=creates) for _ in range(16)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
        assert sum(appends) == 128 and len(engine.orders()) == 128
        assert len({o.order_id for o in engine.orders()}) == 128
    assert len(appends) < 128, "every command paid its own commit: no group commit"


def test_the_api_relays_to_a_remote_gateway_with_the_same_answers(gw: Engine) -> None:
    with (
        ThreadedServer(gw) as server,
        oms.connect(server.url) as remote,
        TestClient(create_app(remote)) as relay,
        TestClient(create_app(gw)) as direct,
    ):
        assert relay.post("/order", json=LIMIT_ORDER).json() == direct.get("/order/1").json()
        for body in (b"{}", b"[]", b'{"symbol":"A","side":"BUY","quantity":"x","price":1}'):
            relayed, straight = (c.post("/order", content=body, headers=JSON) for c in (relay, direct))
            assert assert_canonical_error(relayed, 422, "VALIDATION_ERROR") == straight.json()["detail"]
        unknown = assert_canonical_error(
            relay.post("/order", json={**LIMIT_ORDER, "colour": 1}), 422, "VALIDATION_ERROR"
        )
        assert [e["field"] for e in unknown["errors"]] == ["colour"]  # typed methods cannot carry it further
        assert_canonical_error(relay.put("/order/1", json={"quantity": 5, "status": "X"}), 422, "VALIDATION_ERROR")
        assert_canonical_error(relay.delete("/order/9"), 404, "ORDER_NOT_FOUND")
        assert relay.post("/order/1/execute", json={"price": 1500}).json()["executed_price"] == 1500
        assert_canonical_error(relay.delete("/order/1"), 409, "INVALID_TRANSITION")
        assert relay.get("/orders").json() == direct.get("/orders").json()


def test_an_oversized_chunked_body_is_refused_with_413_once_past_the_limit(client: TestClient, gw: Engine) -> None:
    sent = 0

    def endless() -> Iterator[bytes]:  # no Content-Length: sent chunked
        nonlocal sent
        yield b'{"symbol": "INFY", "pad": "'
        while sent < 10_000_000:
            sent += 16_384
            yield b"x" * 16_384

    response = client.post("/order", content=endless(), headers={"content-type": "application/json"})
    detail = assert_canonical_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert detail["message"].startswith("the body has more than 65,536 bytes")  # counted while read
    assert gw.orders() == [] and gw.events() == []


def test_an_oversized_body_is_refused_with_413_and_changes_nothing(client: TestClient, gw: Engine) -> None:
    huge = json.dumps({"symbol": "A" * 100_000, "side": "BUY", "quantity": 1, "price": 1})
    response = client.post("/order", content=huge, headers={"content-type": "application/json"})
    assert_canonical_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert len(response.content) < 1000
    assert gw.orders() == [] and gw.events() == []


def test_long_bad_values_are_echoed_short_and_stored_short(client: TestClient, gw: Engine) -> None:
    response = client.post("/order", json={"symbol": "A" * 10_000, "side": "BUY", "quantity": 1, "price": 1})
    detail = assert_canonical_error(response, 422, "VALIDATION_ERROR")
    assert len(response.content) < 1000 and detail["errors"][0]["field"] == "symbol"
    (event,) = gw.events()
    assert event.request is not None and len(event.request["symbol"]) <= 257


@pytest.mark.parametrize(
    ("query", "field"), [("stauts=NEW", "stauts"), ("foo=bar", "foo"), ("status=NEW&status=EXECUTED", "status")]
)
def test_a_misspelt_or_repeated_order_filter_is_refused_naming_it(client: TestClient, query: str, field: str) -> None:
    detail = assert_canonical_error(client.get(f"/orders?{query}"), 422, "VALIDATION_ERROR")
    assert [e["field"] for e in detail["errors"]] == [field]  # the name as sent, not quoted


# ---- the command lane: the same answers without FastAPI's routing -------------------------


@pytest.mark.parametrize(
    ("method", "path", "taken"),
    [
        ("POST", "/order", (oms.Action.CREATE, None)),
        ("PUT", "/order/7", (oms.Action.MODIFY, 7)),
        ("DELETE", "/order/7", (oms.Action.CANCEL, 7)),
        ("POST", "/order/7/execute", (oms.Action.EXECUTE, 7)),
        ("DELETE", f"/order/{2**63 - 1}", (oms.Action.CANCEL, 2**63 - 1)),
        ("DELETE", f"/order/{2**63}", None),  # beyond 64 bits: FastAPI's route decides
        ("DELETE", "/order/07", None),
        ("DELETE", "/order/0", None),
        ("DELETE", "/order/-7", None),
        ("DELETE", "/order/abc", None),
        ("GET", "/order/7", None),
        ("POST", "/order/7", None),
        ("PUT", "/order", None),
        ("GET", "/order/7/execute", None),
        ("POST", "/order/7/execute/", None),
        ("POST", "/orders", None),
        ("DELETE", "/api/order/7", None),
    ],
)
def test_the_command_lane_takes_exactly_the_command_routes_with_a_plain_id(
    method: str, path: str, taken: tuple[oms.Action, int | None] | None
) -> None:
    from oms.api import _command_route

    assert _command_route({"method": method, "path": path}) == (taken or (None, None))
    # Mounted under a prefix (or behind --root-path), the path below the prefix counts.
    mounted = {"method": method, "path": "/api" + path, "root_path": "/api"}
    assert _command_route(mounted) == (taken or (None, None))


def test_the_command_lane_answers_exactly_as_the_fastapi_routes(tmp_path: Path) -> None:
    """The same session twice on fresh engines: once with the command lane, once with the
    lane taken out (every command through FastAPI's routes). Every answer and the whole
    audit log must be identical, byte for byte."""
    too_large = b'{"price": "1", "pad": "' + b"x" * 70_000 + b'"}'
    text, gzip = {"content-type": "text/plain"}, {**JSON, "content-encoding": "gzip"}
    session: list[tuple[str, str, bytes | None, dict[str, str]]] = [
        ("PUT", "/order/1", b'{"price": 1499.5}', JSON),
        ("PUT", "/order/1", b"{}", JSON),
        ("PUT", "/order/1", b"not json", JSON),
        ("PUT", "/order/1", b"[1]", JSON),
        ("PUT", "/order/1", b'{"price": "abc", "bogus": 1}', JSON),
        ("PUT", "/order/1", b'{"price": 1e-1000027}', JSON),
        ("PUT", "/order/1", b'{"price": 1}', text),
        ("PUT", "/order/1", b'{"price": 1}', {}),
        ("PUT", "/order/1", b'{"price": 1}', gzip),
        ("PUT", "/order/1", too_large, JSON),
        ("PUT", "/order/1", None, {}),
        ("PUT", "/order/9", b'{"quantity": 5}', JSON),
        ("POST", "/order", b'{"symbol": "A", "side": "BUY", "quantity": 1, "price": 1}', text),
        ("POST", "/order", b'{"x": ' * 40 + b"1" + b"}" * 40, JSON),
        ("POST", "/order/1/execute", b'{"price": 1600}', JSON),
        ("POST", "/order/1/execute", b'{"price": -1}', JSON),
        ("POST", "/order/1/execute", None, {"origin": "http://evil.example"}),
        ("POST", "/order/1/execute", None, {"host": "evil.example"}),
        ("POST", "/order/1/execute", None, {}),
        ("POST", "/order/1/execute", None, {}),
        ("DELETE", "/order/1", None, {}),
        ("DELETE", "/order/2", b'{"why": "no"}', JSON),
        ("DELETE", "/order/2", b"x", text),
        ("DELETE", "/order/2", b"", {}),
        ("DELETE", "/order%2F3", None, {}),
        ("DELETE", "/order/2", None, {}),
        ("POST", "/order/3/execute", b'"x"', JSON),
        ("POST", "/order/3/execute", b'{"price": "1500.2500"}', JSON),
    ]

    def run(lane: bool) -> list[tuple[int, str]]:
        answers = []
        with oms.open(tmp_path / f"lane-{lane}.duckdb", clock=oms.SimulatedClock()) as engine:
            app = create_app(engine)
            if not lane:
                app.user_middleware = [m for m in app.user_middleware if m.cls is not _CommandLane]
            with TestClient(app, base_url="http://127.0.0.1:8000") as client:
                for _ in range(3):
                    post_order(client)
                for method, path, body, headers in session:
                    response = client.request(method, path, content=body, headers=headers)
                    answers.append((response.status_code, response.text))
                answers.append((200, client.get("/events").text))
        return answers

    from oms.api import _CommandLane

    with oms.open(":memory:") as engine:
        assert any(m.cls is _CommandLane for m in create_app(engine).user_middleware)
    lane, routes = run(lane=True), run(lane=False)
    statuses = [status for status, _ in lane]
    assert 200 in statuses and {403, 404, 409, 413, 415, 422} <= set(statuses)  # the session covers every kind
    assert lane == routes


def test_requests_on_many_event_loops_are_all_answered(gw: Engine) -> None:
    """A TestClient used without ``with`` runs each request on an event loop of its own:
    every loop gets its own committer, and every command is answered."""
    client = TestClient(create_app(gw))
    answers: list[int] = []

    def creates(client: TestClient) -> None:
        for _ in range(25):
            answers.append(client.post("/order", json=LIMIT_ORDER).status_code)

    threads = [threading.Thread(target=creates, args=(client,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a request was never answered"
    assert answers == [201] * 100
    assert sorted(o.order_id for o in gw.orders()) == list(range(1, 101))
    # Each loop's committer, and its worker thread, goes away with the loop.
    del client, threads
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, Committer)]
    deadline = time.monotonic() + 10
    while any(t.name.startswith("oms-commit") for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("oms-commit")]
