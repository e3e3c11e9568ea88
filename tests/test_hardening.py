"""Each defect an outside attack found (issue 10), held by a test: prices that would need
rounding, bodies that would break a batch, cross-site requests, lenient ids, two writers
through a hard link, corrupt files, half-sent request heads, and the low items."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_api_contract import JSON, LIMIT_ORDER, assert_canonical_error, post_order

import oms
from conftest import TestClient
from oms.engine import Engine

# ---- 1. a price is an exact decimal as given: refused, never rounded ----------------------

UNROUNDABLE_PRICES = ["1e-1000027", "1E-5", "0.00001", "1e-1000027" + "0" * 3, "9" * 13, "1e999999", "1e12"]


@pytest.mark.parametrize("price", UNROUNDABLE_PRICES)
def test_a_price_that_would_need_rounding_is_refused_on_every_rest_command(client: TestClient, price: str) -> None:
    post_order(client)
    before = client.get("/orders").text
    for as_text in (False, True):
        value = json.dumps(price) if as_text else price
        body = f'{{"symbol":"A","side":"BUY","quantity":5,"price":{value}}}'
        for method, path, content in (
            ("POST", "/order", body),
            ("PUT", "/order/1", f'{{"price":{value}}}'),
            ("POST", "/order/1/execute", f'{{"price":{value}}}'),
        ):
            response = client.request(method, path, content=content, headers=JSON)
            detail = assert_canonical_error(response, 422, "VALIDATION_ERROR")
            assert [e["field"] for e in detail["errors"]] == ["price"], detail
            assert len(response.content) < 1000
    assert client.get("/orders").text == before


@pytest.mark.parametrize(
    "price",
    [*UNROUNDABLE_PRICES, Decimal("1e-1000027"), 1e-300, pytest.param(10**5000, id="int-of-5000-digits"),
     Decimal("1e999999")],
)  # fmt: skip
def test_a_price_that_would_need_rounding_is_refused_by_the_engine_and_the_bulk_path(gw: Engine, price: Any) -> None:
    order = gw.create(symbol="A", side="BUY", quantity=100, price="10")
    for call in (
        lambda: gw.create(symbol="A", side="BUY", quantity=5, price=price),
        lambda: gw.modify(order.order_id, price=price),
        lambda: gw.execute(order.order_id, price=price),
        lambda: gw.bulk_create([{"symbol": "A", "side": "BUY", "quantity": 5, "price": price}]),
    ):
        with pytest.raises(oms.ValidationError) as caught:
            call()
        assert caught.value.fields == ["price"]
        assert len(caught.value.message) < 500
    assert gw.orders() == [order]


def test_a_bulk_price_column_of_text_is_checked_as_single_creates_check_it(gw: Engine) -> None:
    frame = pd.DataFrame({"symbol": ["A", "B"], "side": ["BUY", "SELL"], "quantity": [1, 2],
                          "price": ["1500.25", "1e-1000027"]})  # fmt: skip
    with pytest.raises(oms.ValidationError, match="rows 1: at most 4 decimal places"):
        gw.bulk_create(frame)
    assert gw.orders() == []


@pytest.mark.parametrize("price", ["1_000", "١٢", " 12 ", "12 ", "+12", "1,5", "0x10", "Infinity", "nan", "1e", ""])
def test_lenient_price_text_is_refused_naming_price(gw: Engine, price: str) -> None:
    with pytest.raises(oms.ValidationError) as caught:
        gw.create(symbol="A", side="BUY", quantity=5, price=price)
    assert caught.value.fields == ["price"]


@pytest.mark.parametrize(
    ("given", "stored"),
    [("0.1000", "0.1"), ("1e2", "100"), ("1500.2500", "1500.25"), (Decimal("1." + "0" * 70), "1"),
     ("999999999999.9999", None)],
)  # fmt: skip
def test_exact_prices_in_any_notation_are_kept_exactly(gw: Engine, given: Any, stored: str | None) -> None:
    order = gw.create(symbol="A", side="BUY", quantity=5, price=given)
    assert str(order.price) == (stored or given)


# ---- 2. one bad request never fails another's command -------------------------------------


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize(
    "body",
    [
        '{"symbol":"A","side":"BUY","quantity":5,"price":1,"x":' + nested(600) + "}",
        '{"symbol":' + nested(600) + ',"side":"BUY","quantity":5,"price":1}',
        "[" * 600 + "]" * 600,
        '{"price":' + "[" * 20 + "]" * 20 + "}",
    ],
    ids=["unknown-field", "symbol", "array", "price-20-deep"],
)
def test_a_deeply_nested_body_is_422_before_the_engine(client: TestClient, gw: Engine, body: str) -> None:
    detail = assert_canonical_error(client.post("/order", content=body, headers=JSON), 422, "VALIDATION_ERROR")
    assert [e["field"] for e in detail["errors"]] == ["body"] and "nested" in detail["message"]
    assert gw.orders() == [] and post_order(client)["order_id"] == 1


class Exploding(dict):  # type: ignore[type-arg]
    """A request whose every read fails: a defect inside one command's decision."""

    def get(self, *_args: object) -> Any:
        raise RuntimeError("boom")

    def __iter__(self) -> Any:
        raise RuntimeError("boom")


def test_a_command_that_fails_unexpectedly_fails_alone_and_the_rest_of_its_batch_commits(db_path: Path) -> None:
    from oms.commands import Command

    good = dict(LIMIT_ORDER)
    with oms.open(db_path, clock=oms.SimulatedClock()) as engine:
        answers = engine.submit_many(
            [
                Command(oms.Action.CREATE, None, good),
                Command(oms.Action.CREATE, None, Exploding()),
                Command(oms.Action.CREATE, None, good),
                Command(oms.Action.MODIFY, 1, {"quantity": 7}),
                Command(oms.Action.MODIFY, 2, Exploding()),
                Command(oms.Action.EXECUTE, 2),
            ]
        )
        assert [getattr(a, "code", "Order") for a in answers] == [
            "Order", "INTERNAL_ERROR", "Order", "Order", "INTERNAL_ERROR", "Order",
        ]  # fmt: skip
        assert "boom" not in str(answers[1])
    with oms.open(db_path) as reopened:  # every other command is committed
        assert [(o.order_id, o.status.value, o.quantity) for o in reopened.orders()] == [
            (1, "MODIFIED", 7), (2, "EXECUTED", 100),
        ]  # fmt: skip
        refused = [(e.seq, e.action.value, e.reason) for e in reopened.events() if not e.accepted]
        assert refused == [(2, "create", "INTERNAL_ERROR"), (5, "modify", "INTERNAL_ERROR")]


def test_a_row_the_store_cannot_take_fails_its_command_alone(db_path: Path) -> None:
    """The batch's one INSERT fails because of one row: every other command of the batch
    is committed all the same (one at a time), and answered."""
    from oms.commands import Command

    with oms.open(db_path, clock=oms.SimulatedClock()) as engine:
        real_append = engine._store.append

        def append(rows: Any) -> None:
            if any("POISON" in row[2] for row in rows):
                raise UnicodeEncodeError("utf-8", "x", 0, 1, "cannot store")
            real_append(rows)

        engine._store.append = append  # type: ignore[method-assign]
        answers = engine.submit_many(
            [Command(oms.Action.CREATE, None, {**LIMIT_ORDER, "symbol": s}) for s in ("A", "POISON", "B")]
        )
        assert [getattr(a, "code", "Order") for a in answers] == ["Order", "STORE_ERROR", "Order"]
        assert [o.symbol for o in engine.orders()] == ["A", "B"]
    with oms.open(db_path) as reopened:
        assert [(o.order_id, o.symbol) for o in reopened.orders()] == [(1, "A"), (2, "B")]


def test_through_the_committer_a_failing_command_answers_alone_and_the_others_are_committed(db_path: Path) -> None:
    import asyncio

    from oms.commands import Command
    from oms.committer import Committer

    async def main(engine: Engine) -> list[Any]:
        committer = Committer(engine)
        commands = [Command(oms.Action.CREATE, None, dict(LIMIT_ORDER)) for _ in range(10)]
        commands[4] = Command(oms.Action.CREATE, None, Exploding())
        answers = await asyncio.gather(*(committer.submit(c) for c in commands), return_exceptions=True)
        committer.close()
        return answers

    with oms.open(db_path, clock=oms.SimulatedClock()) as engine:
        answers = asyncio.run(main(engine))
    assert [getattr(a, "code", None) for a in answers] == [None] * 4 + ["INTERNAL_ERROR"] + [None] * 5
    with oms.open(db_path) as reopened:
        assert sorted(o.order_id for o in reopened.orders()) == [a.order_id for a in answers if a is not answers[4]]


def test_valid_creates_sent_alongside_deep_bodies_are_all_committed(db_path: Path) -> None:
    import threading

    import httpx

    from conftest import ThreadedServer

    statuses: list[int] = []
    with oms.open(db_path) as engine, ThreadedServer(engine) as server:

        def send(body: str, n: int) -> None:
            with httpx.Client(base_url=server.url, headers=JSON, timeout=30) as http:
                statuses.extend(http.post("/order", content=body).status_code for _ in range(n))

        deep = '{"symbol":"A","side":"BUY","quantity":5,"price":1,"x":' + nested(600) + "}"
        threads = [threading.Thread(target=send, args=(json.dumps(LIMIT_ORDER), 20)) for _ in range(6)]
        threads += [threading.Thread(target=send, args=(deep, 20)) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert sorted(statuses) == [201] * 120 + [422] * 60
    with oms.open(db_path) as reopened:
        assert len(reopened.orders()) == 120


# ---- 3. no cross-site requests on a tokenless loopback server ------------------------------

LOOPBACK = "http://127.0.0.1:8000"


@pytest.fixture
def loopback(gw: Engine) -> Any:
    """The API as a tokenless server bound to 127.0.0.1 sees it (socket, Host header)."""
    from oms.api import create_app

    with TestClient(create_app(gw), base_url=LOOPBACK) as test_client:
        yield test_client


@pytest.mark.parametrize(
    "headers",
    [{"content-type": "text/plain"}, {"content-type": "application/x-www-form-urlencoded"}, {},
     {"content-type": "multipart/form-data; boundary=x"}, {**JSON, "content-encoding": "gzip"},
     {"content-type": "application/jsonx"}],
    ids=["text", "form", "none", "multipart", "gzip", "jsonx"],
)  # fmt: skip
def test_a_body_that_is_not_declared_json_is_415_and_changes_nothing(
    loopback: TestClient, gw: Engine, headers: dict[str, str]
) -> None:
    post_order(loopback)
    before = gw.events()
    for method, path in (("POST", "/order"), ("PUT", "/order/1"), ("POST", "/order/1/execute"), ("DELETE", "/order/1")):
        body = json.dumps(LIMIT_ORDER if path == "/order" else {"price": 1500})
        response = loopback.request(method, path, content=body, headers=headers)
        detail = assert_canonical_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
        assert "Content-" in detail["message"]
    assert gw.events() == before


def test_json_with_a_charset_parameter_is_json(loopback: TestClient) -> None:
    response = loopback.post("/order", content=json.dumps(LIMIT_ORDER),
                             headers={"content-type": "Application/JSON; charset=utf-8"})  # fmt: skip
    assert response.status_code == 201


@pytest.mark.parametrize(
    "headers",
    [{"host": "evil.example"}, {"host": "evil.example:8000"}, {"host": "127.0.0.1.evil.example"},
     {"origin": "http://evil.example"}, {"origin": "null"}, {"origin": "http://127.0.0.1.evil.example:8000"},
     {"origin": "file://"}],
    ids=lambda h: f"{next(iter(h))}={next(iter(h.values()))}",
)  # fmt: skip
def test_a_request_a_foreign_web_page_may_have_sent_is_403_on_a_tokenless_loopback_server(
    loopback: TestClient, gw: Engine, headers: dict[str, str]
) -> None:
    post_order(loopback)
    before = gw.events()
    for method, path, body in (
        ("POST", "/order", json.dumps(LIMIT_ORDER)), ("POST", "/order/1/execute", None),
        ("DELETE", "/order/1", None), ("GET", "/orders", None), ("GET", "/order/1", None),
    ):  # fmt: skip
        response = loopback.request(method, path, content=body, headers={**JSON, **headers})
        assert "another web site" in assert_canonical_error(response, 403, "FORBIDDEN")["message"]
    assert gw.events() == before


@pytest.mark.parametrize(
    "headers",
    [{"host": "localhost:8000"}, {"host": "127.0.0.1"}, {"host": "[::1]:8000"}, {"host": "LOCALHOST"},
     {"origin": "http://localhost:8888"}, {"origin": "http://127.0.0.1:8000"}, {"origin": "https://[::1]"}],
    ids=lambda h: f"{next(iter(h))}={next(iter(h.values()))}",
)  # fmt: skip
def test_loopback_hosts_and_origins_are_served(loopback: TestClient, headers: dict[str, str]) -> None:
    post_order(loopback)
    assert loopback.post("/order/1/execute", headers=headers).status_code == 200


def test_with_a_token_the_token_is_the_guard_not_the_host(gw: Engine) -> None:
    from oms.api import create_app

    with TestClient(create_app(gw, token="t"), base_url=LOOPBACK) as client:
        response = client.get("/orders", headers={"host": "oms.internal", "authorization": "Bearer t"})
        assert response.status_code == 200


# ---- 4. only canonical decimal ids address an order -----------------------------------------

ODD_IDS = ["1.0", "+1", "%201", "01", "1_0", "0x1", "1%20", "%2B1", "١", "1e0", "001"]


@pytest.mark.parametrize("odd", ODD_IDS)
def test_an_id_not_written_canonically_never_addresses_an_order(loopback: TestClient, gw: Engine, odd: str) -> None:
    for _ in range(10):
        post_order(loopback)
    before = gw.orders()
    for method, template, body in (
        ("GET", "/order/{}", None), ("GET", "/order/{}/events", None), ("PUT", "/order/{}", b'{"quantity": 5}'),
        ("DELETE", "/order/{}", None), ("POST", "/order/{}/execute", None),
    ):  # fmt: skip
        response = loopback.request(method, template.format(odd), content=body, headers=JSON)
        detail = assert_canonical_error(response, 422, "VALIDATION_ERROR")
        assert [e["field"] for e in detail["errors"]] == ["order_id"]
    assert gw.orders() == before


@pytest.mark.parametrize("path", ["/order%2F1", "/order%2f1/execute", "/order/1%2Fexecute"])
def test_an_encoded_slash_is_not_a_path_separator(loopback: TestClient, gw: Engine, path: str) -> None:
    post_order(loopback)
    before = gw.orders()
    for method in ("GET", "DELETE", "POST", "PUT"):
        assert_canonical_error(loopback.request(method, path, content=b"{}", headers=JSON), 404, "NOT_FOUND")
    assert gw.orders() == before


# ---- 5. one file, one writer: by device and inode, not by path ------------------------------


def test_a_hard_link_or_a_symlink_to_an_open_file_is_refused(tmp_path: Path) -> None:
    a, hard, soft = tmp_path / "a.duckdb", tmp_path / "b.duckdb", tmp_path / "c.duckdb"
    with oms.open(a) as first:
        first.create(symbol="A", side="BUY", quantity=1, price="1")
        os.link(a, hard)
        soft.symlink_to(a)
        for other in (hard, soft, tmp_path / "x" / ".." / "a.duckdb"):
            with pytest.raises(oms.StoreError, match="already open in this process"):
                oms.open(other)
        assert first.create(symbol="A", side="BUY", quantity=1, price="1").order_id == 2
    with oms.open(hard) as second:  # released at close: the link opens now
        assert [o.order_id for o in second.orders()] == [1, 2]


def test_a_file_that_fails_its_first_reads_is_not_held_open(db_path: Path) -> None:
    with oms.open(db_path) as gw:
        for _ in range(50):
            gw.create(symbol="A", side="BUY", quantity=1, price="1")
    good = db_path.read_bytes()
    corrupt = flip_bits_until_refused(db_path, good)
    with pytest.raises(oms.NotADatabase):
        oms.open(db_path)  # refused again, not "already open in this process"
    assert db_path.read_bytes() == corrupt
    db_path.write_bytes(good)
    with oms.open(db_path) as gw:
        assert len(gw.orders()) == 50


# ---- 6. a corrupt file is reported as corrupt, not as locked --------------------------------


def flip_bits_until_refused(path: Path, good: bytes) -> bytes:
    """Flip one byte after another past the header until opening the file is refused."""
    for position in range(4096, len(good), 997):
        corrupt = bytearray(good)
        corrupt[position] ^= 0xFF
        path.write_bytes(bytes(corrupt))
        try:
            with oms.open(path) as gw:
                gw.orders()
        except oms.StoreError as e:
            if e.code == "NOT_A_DATABASE":
                path.write_bytes(bytes(corrupt))
                return bytes(corrupt)
            assert e.code != "DATABASE_LOCKED", e
    raise AssertionError("no flipped byte made the file unreadable")


def test_a_bit_flipped_file_is_corrupt_or_not_a_duckdb_file_never_locked(db_path: Path) -> None:
    with oms.open(db_path) as gw:
        for _ in range(50):
            gw.create(symbol="A", side="BUY", quantity=1, price="1")
    good = db_path.read_bytes()
    corrupt = flip_bits_until_refused(db_path, good)
    with pytest.raises(oms.NotADatabase) as caught:
        oms.open(db_path)
    assert caught.value.code == "NOT_A_DATABASE" and "corrupt or not a DuckDB file" in caught.value.message
    assert str(db_path) in caught.value.message and "in use" not in caught.value.message
    assert db_path.read_bytes() == corrupt  # refusing it changed nothing


# ---- 7. half-sent request heads do not starve anyone ----------------------------------------


@pytest.fixture
def small_server(tmp_path: Path) -> Any:
    """A real `oms serve` on 127.0.0.1 allowed 200 file descriptors, head timeout 2 s."""
    import resource
    import subprocess
    import sys
    import time

    import httpx

    from conftest import free_port

    port = free_port()

    def limit_descriptors() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (200, 200))

    log = (tmp_path / "serve.log").open("wb")
    cmd = [sys.executable, "-m", "oms.cli", "serve", "--db", str(tmp_path / "oms.duckdb"), "--port", str(port),
           "--head-timeout", "2"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "OMS_API_TOKEN"}
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=limit_descriptors)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            try:
                httpx.get(url + "/orders", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield port
    finally:
        proc.kill()
        proc.wait(10)
        log.close()


def test_a_legitimate_client_is_served_while_200_connections_hold_half_sent_heads(small_server: int) -> None:
    import socket

    import httpx

    half_open = []
    try:
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", small_server), timeout=30)
            s.sendall(b"POST /order HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-")
            half_open.append(s)
        with httpx.Client(base_url=f"http://127.0.0.1:{small_server}", timeout=30) as http:
            for _ in range(5):
                assert http.post("/order", json=LIMIT_ORDER).status_code == 201
            assert len(http.get("/orders").json()) == 5
        # The oldest half-sent heads were closed to make room (or timed out): never served.
        first = half_open[0]
        first.settimeout(30)
        answer = b""
        while chunk := first.recv(4096):
            answer += chunk
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408 ")
    finally:
        for s in half_open:
            s.close()


def test_a_request_head_that_is_never_finished_is_closed_with_408(small_server: int) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", small_server), timeout=30) as s:
        s.sendall(b"GET /orders HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1")
        answer = b""
        while chunk := s.recv(4096):  # bounded by the socket timeout; the server closes first
            answer += chunk
    status, _, rest = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 408 Request Timeout"
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["detail"]["code"] == "REQUEST_TIMEOUT"


def test_an_oversized_request_head_is_refused_with_431(small_server: int) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", small_server), timeout=30) as s:
        s.sendall(b"GET /orders HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 20_000)
        answer = b""
        try:
            while chunk := s.recv(4096):
                answer += chunk
        except ConnectionResetError:  # the server closed on the rest of the head, unread
            pass
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), answer[:200]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["detail"]["code"] == "HEADERS_TOO_LARGE"


# ---- low items: tokens, redirects, Allow, HEAD, the schema, lenient input ---------------------


@pytest.mark.parametrize("token", [" s3cret", "s3cret ", "   ", "s3 cret", "s3cret\t"])
def test_a_token_no_request_could_send_is_refused_at_start(
    db_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], token: str
) -> None:
    from oms.cli import main

    assert main(["serve", "--db", str(db_path), "--token", token]) == 2
    assert "refusing the token" in capsys.readouterr().err
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    assert main(["serve", "--db", str(db_path), "--token-file", str(token_file)]) == 2
    assert "refusing the token" in capsys.readouterr().err
    assert not db_path.exists()  # refused before anything was opened


def test_the_api_refuses_a_token_with_whitespace_at_startup(gw: Engine, capfd: pytest.CaptureFixture[str]) -> None:
    import uvicorn

    from conftest import free_port
    from oms.api import create_app

    config = uvicorn.Config(create_app(gw, token="t "), host="127.0.0.1", port=free_port(), lifespan="on")
    server = uvicorn.Server(config)
    with pytest.raises(SystemExit):
        server.run()
    assert not server.started
    assert "leading or trailing whitespace" in capfd.readouterr().err


def test_serve_reads_its_token_from_a_file_and_does_not_advertise_token_values(
    serve: Any, db_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import httpx

    from oms.cli import main

    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = capsys.readouterr().out
    assert "--token-file PATH" in text and "--token TOKEN" not in text and "--token " not in text
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    server = serve(db_path, args=("--token-file", str(token_file)))
    assert httpx.get(server.url + "/orders").status_code == 401
    assert httpx.get(server.url + "/orders", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_a_trailing_slash_is_404_never_a_redirect_built_from_the_host_header(loopback: TestClient) -> None:
    post_order(loopback)
    for method in ("GET", "PUT", "DELETE", "POST"):
        response = loopback.request(method, "/order/1/", headers={"host": "localhost:1"}, follow_redirects=False)
        assert_canonical_error(response, 404, "NOT_FOUND")
        assert "location" not in response.headers


def test_a_405_names_the_allowed_methods_and_head_answers_on_get_routes(loopback: TestClient) -> None:
    post_order(loopback)
    response = loopback.patch("/order/1", json={})
    assert_canonical_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "DELETE, GET, HEAD, PUT"
    assert loopback.post("/orders").headers["allow"] == "GET, HEAD"
    for path in ("/orders", "/order/1", "/order/1/events", "/events"):
        head, get = loopback.head(path), loopback.get(path)
        assert (head.status_code, head.content) == (200, b"")
        assert head.headers["content-type"] == get.headers["content-type"] == "application/json"
    assert_canonical_error(loopback.get("/order/9"), 404, "ORDER_NOT_FOUND")
    assert loopback.head("/order/9").status_code == 404


def test_the_openapi_document_states_the_validators_constraints(loopback: TestClient) -> None:
    import re

    paths = loopback.get("/openapi.json").json()["paths"]
    create = paths["/order"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    number, text, _null = create["properties"]["price"]["anyOf"]
    assert number["multipleOf"] == 0.0001 and number["exclusiveMinimum"] == 0
    pattern = re.compile(text["pattern"])
    assert all(pattern.match(p) for p in ("1500.25", "0.0001", "999999999999.9999"))
    assert not any(pattern.match(p) for p in ("0", "0.0000", "1.23456", "1e3", " 1", "1_0", "1000000000000"))
    assert create["properties"]["quantity"] == {"type": "integer", "minimum": 1, "maximum": 10**9, "example": 100}
    assert create["properties"]["symbol"]["pattern"] == "^[A-Za-z0-9._-]{1,16}$"
    order_id = next(p for p in paths["/order/{order_id}"]["get"]["parameters"] if p["name"] == "order_id")
    assert order_id["schema"]["minimum"] == 1


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/order", '{"symbol":"A","side":"BUY","quantity":5,"price":1,"price":2}', "body"),
        ("POST", "/order", '{"symbol":"A","side":"BUY","side":"SELL","quantity":5,"price":1}', "body"),
        ("PUT", "/order/1", '{"quantity":5,"quantity":6}', "body"),
        ("POST", "/order/1/execute", '{"price":1,"price":1}', "body"),
        ("POST", "/order?dry_run=true", json.dumps(LIMIT_ORDER), "dry_run"),
        ("PUT", "/order/1?force=1", '{"quantity":5}', "force"),
        ("DELETE", "/order/1?x", None, "x"),
        ("POST", "/order/1/execute?price=1", None, "price"),
    ],
)
def test_lenient_input_is_refused_naming_it(
    loopback: TestClient, gw: Engine, method: str, path: str, body: str | None, field: str
) -> None:
    post_order(loopback)
    before = gw.orders()
    detail = assert_canonical_error(loopback.request(method, path, content=body, headers=JSON), 422, "VALIDATION_ERROR")
    assert [e["field"] for e in detail["errors"]] == [field]
    assert gw.orders() == before


def test_the_readme_says_precisely_what_is_serialized(gw: Engine) -> None:
    from oms.commands import Command

    order = gw.create(symbol="A", side="BUY", quantity=5, price="10")
    raced = gw.submit_many([Command(oms.Action.MODIFY, order.order_id, {"quantity": 6}),
                            Command(oms.Action.EXECUTE, order.order_id)])  # fmt: skip
    assert [getattr(o, "status", None) for o in raced] == [oms.Status.MODIFIED, oms.Status.EXECUTED]
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert "exactly one wins, the others get 409" not in readme
    assert "a modify and an execute racing on a NEW order are both accepted" in " ".join(readme.split())


# ---- the bounded fuzz run (issue 10, "done when") --------------------------------------------


@pytest.mark.slow
def test_a_bounded_fuzz_run_finds_no_5xx_no_state_change_from_a_refusal_and_no_failed_valid_command() -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    cmd = [sys.executable, str(root / "benchmarks" / "fuzz_http.py"), "--examples", "4", "--alongside", "300",
           "--seconds", "240", "--json"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=400, cwd=root)
    report = json.loads(done.stdout)
    figures, counts = report["figures"], report["counts"]
    assert figures["responses_5xx"] == 0, report["details"]
    assert figures["state_changes_from_refused_requests"] == 0, report["details"]
    assert figures["alongside_failures"] == 0, report["details"]
    assert all(value == 0 for value in figures.values()), report  # shape, exit status, tracebacks too
    assert done.returncode == 0, done.stderr
    # The run did what it says: every phase sent requests, and refusals were among them.
    assert counts["sent"]["schemathesis"] > 0 and counts["refused"]["schemathesis"] > 0, counts
    assert counts["sent"]["raw"] >= 100 and counts["refused"]["raw"] >= 90, counts
    assert counts["sent"]["alongside"] > 0 and counts["accepted_events"] > 20, counts
