"""A bounded fuzz run against a real ``oms serve`` on loopback (issue 10's "done when").

One run starts ``oms serve`` on 127.0.0.1 over a fresh DuckDB file in a temporary folder,
creates TARGETS orders for the fuzzers to aim at, then, at the same time:

- **schemathesis** generates requests from the server's own OpenAPI document (positive
  and negative data, ``--examples`` per operation and mode) and sends them over HTTP;
- **raw malformed HTTP** goes over plain sockets, one connection per request: deep
  nesting, huge numbers, NaN/Infinity, lone surrogates and invalid UTF-8, 1 MB bodies,
  chunked bodies (valid, broken, with a Content-Length too), wrong content types and
  encodings, duplicate keys, odd ids, odd methods, foreign Host/Origin, non-HTTP bytes;
- **a valid client alongside** sends create / modify / execute / cancel / get on its own
  orders over one keep-alive connection and checks every answer exactly.

The fuzzers never address the alongside client's orders (an id they generate in
``TARGETS < id < 10**9`` is mapped onto the targets), so any failure of a valid command is
the server's, not interference. Then the server is stopped with SIGTERM and its file is
opened read-only, and the figures are computed from what it holds:

- **responses >= 500**: in any phase;
- **state changes from refused requests**: every accepted event in the audit log must be
  accounted for by an acknowledged (2xx) answer -- its ``(order_id, version)`` -- and every
  order in the book must equal the last answer acknowledged for it. Under concurrency this
  is the exact form of "compare the book and the accepted events before and after each
  refused request": an accepted event or a book change that no acknowledged command
  explains can only come from a request that was refused (or never answered);
- **failures of valid commands sent alongside**.

Also printed: error responses not in the one shape ``{"detail": {"code", "message"}}``,
malformed requests that were accepted, acknowledged commands missing from the file, the
server's exit status and tracebacks in its log. Exits 0 when all of those are 0.

    .venv/bin/python benchmarks/fuzz_http.py [--examples 25] [--seconds 300] [--json]

Bounded by count (``--examples``, ``--alongside``) and by time (``--seconds``: every loop
stops at the deadline); loopback only.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
TARGETS = 20
"""Orders created up front for the fuzzers to aim at (ids 1..TARGETS)."""
FAR = 10**9
"""Ids at or above this are left as generated (no run creates that many orders)."""
COMMAND_METHODS = {"POST", "PUT", "DELETE"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Tally:
    """What every phase saw; all threads add to it under ``lock``."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: dict[str, int] = field(default_factory=lambda: {"schemathesis": 0, "raw": 0, "alongside": 0})
    refused: dict[str, int] = field(default_factory=lambda: {"schemathesis": 0, "raw": 0, "alongside": 0})
    unanswered: dict[str, int] = field(default_factory=lambda: {"schemathesis": 0, "raw": 0})
    unsendable: int = 0  # generated cases the HTTP client refused to send
    unexplained: list[str] = field(default_factory=list)  # accepted events no 2xx answer explains
    server_errors: list[str] = field(default_factory=list)
    bad_shape: list[str] = field(default_factory=list)
    malformed_accepted: list[str] = field(default_factory=list)
    alongside_failures: list[str] = field(default_factory=list)
    acknowledged: dict[int, dict[str, Any]] = field(default_factory=dict)  # order_id -> last answer
    claims: set[tuple[int, int]] = field(default_factory=set)  # (order_id, version) of 2xx answers

    def answer(self, phase: str, what: str, method: str, status: int, body: bytes) -> None:
        """Count one answered request: its class, its shape, and the order it acknowledged."""
        with self.lock:
            self.sent[phase] += 1
            if status >= 500:
                self.server_errors.append(f"{phase}: {what} -> {status} {body[:200]!r}")
            if status >= 400:
                self.refused[phase] += 1
                if method != "HEAD" and not _one_shape(body):
                    self.bad_shape.append(f"{phase}: {what} -> {status} {body[:200]!r}")
            elif 200 <= status < 300 and method in COMMAND_METHODS:
                self._claim(body)

    def _claim(self, body: bytes) -> None:
        try:
            order = json.loads(body)
        except ValueError:
            return
        if isinstance(order, dict) and isinstance(order.get("order_id"), int) and "version" in order:
            self.claims.add((order["order_id"], order["version"]))
            last = self.acknowledged.get(order["order_id"])
            if last is None or last["version"] < order["version"]:
                self.acknowledged[order["order_id"]] = order


def _one_shape(body: bytes) -> bool:
    try:
        payload = json.loads(body)
    except ValueError:
        return False
    detail = payload.get("detail") if isinstance(payload, dict) else None
    return (
        isinstance(payload, dict)
        and set(payload) == {"detail"}
        and isinstance(detail, dict)
        and isinstance(detail.get("code"), str)
        and isinstance(detail.get("message"), str)
    )


# ---- the server -----------------------------------------------------------------------


class Server:
    """A real ``oms serve`` child on a free loopback port."""

    def __init__(self, folder: Path) -> None:
        self.db = folder / "fuzz.duckdb"
        self.log_path = folder / "serve.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OMS_")}
        cmd = [sys.executable, "-m", "oms.cli", "serve", "--db", str(self.db), "--port", str(self.port),
               "--head-timeout", "5"]  # fmt: skip
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        for _ in range(600):
            if self.proc.poll() is not None:
                raise RuntimeError(f"oms serve exited with {self.proc.returncode}:\n{self.log}")
            try:
                httpx.get(self.url + "/orders", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"oms serve did not answer within 30 s:\n{self.log}")

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode


def create_targets(url: str, tally: Tally) -> None:
    """Orders 1..TARGETS in every status, for the fuzzers to aim at."""
    with httpx.Client(base_url=url, timeout=10) as http:
        for i in range(TARGETS):
            body: dict[str, Any] = {"symbol": "TGT", "side": "BUY" if i % 2 else "SELL", "quantity": 10 + i}
            if i % 5 == 4:
                body["order_type"] = "MARKET"
            else:
                body["price"] = "100.5"
            r = http.post("/order", json=body)
            tally.answer("alongside", "target create", "POST", r.status_code, r.content)
            if r.status_code != 201:
                raise RuntimeError(f"could not create target {i + 1}: {r.status_code} {r.text}")
        for order_id, action in ((3, "cancel"), (4, "execute"), (6, "modify"), (7, "modify")):
            if action == "cancel":
                r = http.delete(f"/order/{order_id}")
            elif action == "execute":
                r = http.post(f"/order/{order_id}/execute", json={})
            else:
                r = http.put(f"/order/{order_id}", json={"quantity": 5})
            tally.answer("alongside", f"target {action}", r.request.method, r.status_code, r.content)
    with tally.lock:  # setup, not the alongside client's traffic
        tally.sent["alongside"] = tally.refused["alongside"] = 0


# ---- schemathesis ---------------------------------------------------------------------


def aim(value: Any) -> Any:
    """A generated order id, kept off the alongside client's orders."""
    if isinstance(value, bool):
        return value
    number: int | None = None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and not value.startswith("0"):
        number = int(value)
    if number is not None and TARGETS < number < FAR:
        aimed = 1 + number % TARGETS
        return aimed if isinstance(value, int) else str(aimed)
    return value


def run_schemathesis(url: str, tally: Tally, examples: int, deadline: float) -> None:
    """Cases schemathesis generates from the served OpenAPI document, positive then negative."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import HypothesisException
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        for operation in operations:
            if time.monotonic() > deadline:
                return
            bounded = settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                               suppress_health_check=list(HealthCheck), phases=[Phase.generate])  # fmt: skip
            test = bounded(
                given(case=operation.as_strategy(generation_mode=mode))(sender(url, tally, mode.value, deadline))
            )
            try:
                test()
            except HypothesisException:  # e.g. nothing negative to generate for this operation
                continue


def sender(url: str, tally: Tally, label: str, deadline: float) -> Any:
    """The body of one generated case: aim it, send it, count its answer."""
    import requests

    def send(case: Any) -> None:
        if time.monotonic() > deadline:
            return
        if case.path_parameters:
            case.path_parameters = {k: aim(v) for k, v in case.path_parameters.items()}
        try:
            response = case.call(base_url=url, timeout=15)
        except (requests.ConnectionError, requests.Timeout):
            with tally.lock:
                tally.unanswered["schemathesis"] += 1
            return
        except Exception:  # the client refused to send it (say, a header it cannot encode)
            with tally.lock:
                tally.unsendable += 1
            return
        what = f"{case.method} {case.formatted_path} ({label})"
        tally.answer("schemathesis", what, case.method.upper(), response.status_code, response.content)

    return send


# ---- raw malformed HTTP ----------------------------------------------------------------


def request(
    port: int,
    method: bytes,
    path: bytes,
    body: bytes = b"",
    *,
    ctype: bytes | None = b"application/json",
    headers: tuple[bytes, ...] = (),
    chunked: bool = False,
    length: bool = True,
    host: bytes | None = None,
    version: bytes = b"HTTP/1.1",
) -> bytes:
    lines = [method + b" " + path + b" " + version, b"Host: " + (host or b"127.0.0.1:%d" % port), b"Connection: close"]
    if ctype is not None:
        lines.append(b"Content-Type: " + ctype)
    lines += headers
    if chunked:
        lines.append(b"Transfer-Encoding: chunked")
        body = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in _parts(body)) + b"0\r\n\r\n"
    elif length and (body or method in (b"POST", b"PUT")):
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _parts(body: bytes, size: int = 7000) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)] or []


def create_body(**fields: Any) -> bytes:
    return json.dumps({"symbol": "RAW", "side": "BUY", "quantity": 5, "price": "10", **fields}).encode()


def raw_cases(port: int) -> list[tuple[str, bytes, str]]:
    """(name, bytes on the wire, expectation): "refuse" = must not be accepted (>= 400, or
    closed unanswered); "any" = anything below 500 (a legitimate request in odd clothes)."""
    mb = 1024 * 1024

    def r(*args: Any, **kwargs: Any) -> bytes:
        return request(port, *args, **kwargs)

    post, put = b"POST", b"PUT"
    cases: list[tuple[str, bytes, str]] = [
        # deep nesting
        ("nested arrays 30k deep", r(post, b"/order", b'{"symbol":' + b"[" * 30_000 + b"]" * 30_000 + b"}"), "refuse"),
        ("nested objects 5k deep", r(post, b"/order", b'{"a":' * 5000 + b"1" + b"}" * 5000), "refuse"),
        ("unbalanced nesting", r(post, b"/order", b"[" * 60_000), "refuse"),
        ("nested price on modify", r(put, b"/order/1", b'{"price":' + b"[" * 10_000 + b"]" * 10_000 + b"}"), "refuse"),
        ("nested body 100k (413)", r(post, b"/order", b"[" * 50_000 + b"]" * 50_000), "refuse"),
        # huge numbers
        (
            "quantity 1e999999",
            r(post, b"/order", b'{"symbol":"A","side":"BUY","quantity":1e999999,"price":1}'),
            "refuse",
        ),
        (
            "quantity of 4000 digits",
            r(post, b"/order", b'{"symbol":"A","side":"BUY","quantity":' + b"9" * 4000 + b',"price":1}'),
            "refuse",
        ),
        (
            "price 1e-1000027",
            r(post, b"/order", b'{"symbol":"A","side":"BUY","quantity":5,"price":1e-1000027}'),
            "refuse",
        ),
        (
            "price 1e1000000",
            r(post, b"/order", b'{"symbol":"A","side":"BUY","quantity":5,"price":1e1000000}'),
            "refuse",
        ),
        (
            "price of 60000 digits",
            r(post, b"/order", b'{"symbol":"A","side":"BUY","quantity":5,"price":1' + b"0" * 60_000 + b"}"),
            "refuse",
        ),
        ("execute at 1e-1000027", r(post, b"/order/1/execute", b'{"price":"1e-1000027"}'), "refuse"),
        ("modify quantity -0", r(put, b"/order/2", b'{"quantity":-0}'), "refuse"),
        (
            "quantity 2**64",
            r(post, b"/order", b'{"symbol":"A","side":"BUY","quantity":18446744073709551616,"price":1}'),
            "refuse",
        ),
        # NaN / Infinity
        *[
            (
                f"price {v}",
                r(post, b"/order", b'{"symbol":"A","side":"BUY","quantity":5,"price":' + v.encode() + b"}"),
                "refuse",
            )
            for v in ("NaN", "Infinity", "-Infinity", '"NaN"', '"Infinity"', '"inf"')
        ],
        ("quantity NaN", r(post, b"/order", b'{"symbol":"A","side":"BUY","quantity":NaN,"price":1}'), "refuse"),
        ("execute at Infinity", r(post, b"/order/2/execute", b'{"price":Infinity}'), "refuse"),
        # lone surrogates, invalid UTF-8
        (
            "symbol lone high surrogate",
            r(post, b"/order", b'{"symbol":"\\ud800","side":"BUY","quantity":5,"price":1}'),
            "refuse",
        ),
        (
            "client id lone low surrogate",
            r(post, b"/order", create_body(client_order_id="X").replace(b'"X"', b'"\\udfff"')),
            "refuse",
        ),
        (
            "symbol as surrogate bytes",
            r(post, b"/order", b'{"symbol":"\xed\xa0\x80","side":"BUY","quantity":5,"price":1}'),
            "refuse",
        ),
        (
            "invalid UTF-8 body",
            r(post, b"/order", b'{"symbol":"\xff\xfe","side":"BUY","quantity":5,"price":1}'),
            "refuse",
        ),
        # RFC 8259 8.1: a receiver may take UTF-16 / ignore a BOM; what it decodes is then checked
        ("UTF-16 body", r(post, b"/order", create_body().decode().encode("utf-16")), "any"),
        ("surrogate key", r(put, b"/order/2", b'{"\\ud83d":1}'), "refuse"),
        # 1 MB bodies
        (
            "1 MB string",
            r(post, b"/order", b'{"symbol":"' + b"A" * mb + b'","side":"BUY","quantity":5,"price":1}'),
            "refuse",
        ),
        ("1 MB of spaces", r(post, b"/order", b" " * mb + create_body()), "refuse"),
        ("1 MB chunked", r(post, b"/order", b'{"symbol":"' + b"B" * mb + b'"}', chunked=True), "refuse"),
        (
            "1 MB declared, 10 bytes sent",
            r(post, b"/order", b"{}", headers=(b"Content-Length: 1048576",), length=False),
            "refuse",
        ),
        # chunked bodies
        ("chunked valid create", r(post, b"/order", create_body(), chunked=True), "any"),
        (
            "chunked with an extension",
            r(post, b"/order", b"", chunked=False, length=False, headers=(b"Transfer-Encoding: chunked",))
            + b'5;ext=1\r\n{"a":\r\n2\r\n1}\r\n0\r\n\r\n',
            "refuse",
        ),
        (
            "chunked bad size",
            r(post, b"/order", b"", length=False, headers=(b"Transfer-Encoding: chunked",)) + b"zz\r\n{}\r\n0\r\n\r\n",
            "refuse",
        ),
        (
            "chunked and content-length",
            r(post, b"/order", create_body(), chunked=True, headers=(b"Content-Length: 3",)),
            "any",
        ),
        (
            "chunked, declared gzip",
            r(post, b"/order", create_body(), chunked=True, headers=(b"Content-Encoding: gzip",)),
            "refuse",
        ),
        (
            "transfer-encoding gzip, chunked",
            r(post, b"/order", b"", length=False, headers=(b"Transfer-Encoding: gzip, chunked",))
            + b"%x\r\n%s\r\n0\r\n\r\n" % (len(gzip.compress(create_body())), gzip.compress(create_body())),
            "refuse",
        ),
        # wrong content types and encodings
        ("text/plain", r(post, b"/order", create_body(), ctype=b"text/plain"), "refuse"),
        (
            "form encoded",
            r(post, b"/order", b"symbol=A&side=BUY&quantity=5&price=1", ctype=b"application/x-www-form-urlencoded"),
            "refuse",
        ),
        (
            "multipart",
            r(
                post,
                b"/order",
                b'--x\r\nContent-Disposition: form-data; name="symbol"\r\n\r\nA\r\n--x--\r\n',
                ctype=b"multipart/form-data; boundary=x",
            ),
            "refuse",
        ),
        ("no content type", r(post, b"/order", create_body(), ctype=None), "refuse"),
        ("application/jsonx", r(post, b"/order", create_body(), ctype=b"application/jsonx"), "refuse"),
        ("xml", r(post, b"/order", b"<order><symbol>A</symbol></order>", ctype=b"application/xml"), "refuse"),
        (
            "gzip content-encoding",
            r(post, b"/order", gzip.compress(create_body()), headers=(b"Content-Encoding: gzip",)),
            "refuse",
        ),
        ("text/plain execute", r(post, b"/order/2/execute", b"", ctype=b"text/plain"), "any"),
        # duplicate keys, odd JSON
        (
            "duplicate symbol",
            r(post, b"/order", b'{"symbol":"A","symbol":"B","side":"BUY","quantity":5,"price":1}'),
            "refuse",
        ),
        ("duplicate price on modify", r(put, b"/order/2", b'{"price":"1","price":"2"}'), "refuse"),
        ("trailing comma", r(post, b"/order", b'{"symbol":"A","side":"BUY","quantity":5,"price":1,}'), "refuse"),
        ("top-level array", r(post, b"/order", b"[" + create_body() + b"]"), "refuse"),
        ("null body", r(post, b"/order", b"null"), "refuse"),
        ("empty body", r(post, b"/order", b""), "refuse"),
        ("unknown field", r(post, b"/order", create_body(dry_run=True)), "refuse"),
        ("command query parameter", r(post, b"/order?dry_run=true", create_body()), "refuse"),
        ("BOM before JSON", r(post, b"/order", b"\xef\xbb\xbf" + create_body()), "any"),
        ("NUL in symbol", r(post, b"/order", b'{"symbol":"A\\u0000","side":"BUY","quantity":5,"price":1}'), "refuse"),
        # odd ids
        *[
            (f"DELETE /order/{odd.decode()}", r(b"DELETE", b"/order/" + odd, ctype=None), "refuse")
            for odd in (
                b"01",
                b"+1",
                b"1.0",
                b"%201",
                b"1_0",
                b"0x1",
                b"%D9%A1",
                b"-1",
                b"0",
                b"1e1",
                b"1%00",
                b"99999999999999999999999",
                b"9223372036854775808",
                b"1/",
                b"1;x",
            )
        ],
        *[
            (f"GET /order/{odd.decode()}", r(b"GET", b"/order/" + odd, ctype=None), "refuse")
            for odd in (b"01", b"+1", b"1.0", b"%201", b"NaN", b"1_0")
        ],
        # RFC 3986 6.2.2.2: a percent-encoded unreserved character is that character
        ("DELETE /order/%35 (is /order/5)", r(b"DELETE", b"/order/%35", ctype=None), "any"),
        ("execute /order/+2", r(post, b"/order/+2/execute", b"{}"), "refuse"),
        ("PUT /order/1.0", r(put, b"/order/1.0", b'{"quantity":1}'), "refuse"),
        ("encoded slash", r(b"DELETE", b"/order%2F2", ctype=None), "refuse"),
        ("double slash", r(b"DELETE", b"//order/2", ctype=None), "refuse"),
        ("space in the request line", r(b"DELETE", b"/order/ 2", ctype=None), "refuse"),
        ("fragment", r(b"DELETE", b"/order/2#x", ctype=None), "refuse"),
        ("absolute URI to elsewhere", r(b"DELETE", b"http://evil.example/order/2", ctype=None), "refuse"),
        # odd methods
        *[
            (f"{m.decode('latin-1')[:20]} {p.decode()}", r(m, p, ctype=None), "refuse")
            for m, p in (
                (b"PATCH", b"/order/2"),
                (b"OPTIONS", b"/order"),
                (b"TRACE", b"/orders"),
                (b"PROPFIND", b"/orders"),
                (b"BREW", b"/order/2"),
                (b"get", b"/orders"),
                (b"G\x00ET", b"/orders"),
                (b"X" * 2000, b"/orders"),
                (b"DELETE", b"/orders"),
                (b"POST", b"/orders"),
                (b"PUT", b"/order"),
                (b"CONNECT", b"127.0.0.1:80"),
                (b"DELETE", b"/order/2/execute"),
            )
        ],
        ("HEAD /order/2", r(b"HEAD", b"/order/2", ctype=None), "any"),
        ("HEAD /order/01", r(b"HEAD", b"/order/01", ctype=None), "refuse"),
        # cross-site and hosts
        ("foreign Host", r(post, b"/order", create_body(), host=b"evil.example"), "refuse"),
        ("foreign Origin", r(post, b"/order", create_body(), headers=(b"Origin: http://evil.example",)), "refuse"),
        (
            "bodiless execute from a foreign page",
            r(post, b"/order/2/execute", b"", ctype=None, headers=(b"Origin: http://evil.example",)),
            "refuse",
        ),
        ("null Origin", r(b"DELETE", b"/order/2", ctype=None, headers=(b"Origin: null",)), "refuse"),
        # not quite HTTP
        ("TLS client hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64), "refuse"),
        ("blank lines", b"\r\n\r\n\r\n", "refuse"),
        ("HTTP/9.9", r(b"GET", b"/orders", ctype=None, version=b"HTTP/9.9"), "refuse"),
        ("header without colon", r(b"DELETE", b"/order/2", ctype=None, headers=(b"NoColonHere",)), "refuse"),
        ("header with NUL", r(b"DELETE", b"/order/2", ctype=None, headers=(b"X-A: b\x00c",)), "refuse"),
        ("two Content-Lengths", r(post, b"/order", create_body(), headers=(b"Content-Length: 3",)), "refuse"),
        (
            "negative Content-Length",
            r(post, b"/order", b"{}", length=False, headers=(b"Content-Length: -2",)),
            "refuse",
        ),
        (
            "Expect: 100-continue, wrong type",
            r(post, b"/order", create_body(), ctype=b"text/plain", headers=(b"Expect: 100-continue",)),
            "refuse",
        ),
        (
            "websocket upgrade",
            r(b"GET", b"/orders", ctype=None, headers=(b"Upgrade: websocket", b"Connection: Upgrade")),
            "any",
        ),
        (
            "h2c upgrade",
            r(b"GET", b"/orders", ctype=None, headers=(b"Upgrade: h2c", b"HTTP2-Settings: AAMAAABkAAQAAP__")),
            "any",
        ),
    ]
    return cases


def send_raw(port: int, wire: bytes, timeout: float = 15) -> tuple[int | None, bytes, str]:
    """Send ``wire`` on a fresh connection and read until the server closes: (status or
    None when nothing came back, body, method)."""
    method = wire.split(b" ", 1)[0].decode("latin-1")
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        with contextlib.suppress(OSError):  # the server may answer and close before reading it all (413)
            s.sendall(wire)
        try:
            while chunk := s.recv(65536):
                data += chunk
        except OSError:
            pass
    while data.startswith(b"HTTP/1.1 1"):  # an interim answer (100 Continue): the real one follows
        data = data.partition(b"\r\n\r\n")[2]
    if not data.startswith(b"HTTP/1."):
        return None, data, method
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            body = body[: int(value.strip())]
    return status, body, method


def run_raw(port: int, tally: Tally, rounds: int, deadline: float) -> None:
    cases = raw_cases(port)
    for _ in range(rounds):
        for name, wire, expect in cases:
            if time.monotonic() > deadline:
                return
            try:
                status, body, method = send_raw(port, wire)
            except OSError:
                status, body, method = None, b"", ""
            if status is None:
                with tally.lock:
                    tally.sent["raw"] += 1
                    tally.unanswered["raw"] += 1
                continue
            tally.answer("raw", name, method, status, body)
            if expect == "refuse" and status < 400:
                with tally.lock:
                    tally.malformed_accepted.append(f"{name} -> {status} {body[:200]!r}")


# ---- the valid client alongside ---------------------------------------------------------


def run_alongside(url: str, tally: Tally, stop: threading.Event, limit: int, deadline: float) -> None:
    """Valid commands on the client's own orders, every answer checked exactly."""

    def fail(what: str, response: httpx.Response | None, error: str = "") -> None:
        detail = f"{response.status_code} {response.text[:200]}" if response is not None else error
        with tally.lock:
            tally.alongside_failures.append(f"{what}: {detail}")

    def call(what: str, method: str, path: str, expected: int, **kwargs: Any) -> dict[str, Any] | None:
        try:
            response = http.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            fail(what, None, f"{type(e).__name__}: {e}")
            return None
        tally.answer("alongside", what, method, response.status_code, response.content)
        if response.status_code != expected:
            fail(what, response)
            return None
        body: dict[str, Any] = response.json()
        return body

    with httpx.Client(base_url=url, timeout=30) as http:
        i = 0
        while not stop.is_set() and i < limit and time.monotonic() < deadline:
            i += 1
            created = call("create", "POST", "/order", 201,
                           json={"symbol": "ALONG", "side": "BUY", "quantity": i, "price": "50.25"})  # fmt: skip
            if created is None:
                continue
            order_id = created["order_id"]
            if not (created["status"] == "NEW" and created["version"] == 1 and created["quantity"] == i):
                fail("create", None, f"unexpected order {created}")
            step = i % 3
            if step == 0:
                done = call("cancel", "DELETE", f"/order/{order_id}", 200)
                if done is not None and (done["status"], done["version"]) != ("CANCELLED", 2):
                    fail("cancel", None, f"unexpected order {done}")
                continue
            modified = call("modify", "PUT", f"/order/{order_id}", 200, json={"price": "50.1234"})
            if modified is not None and (modified["status"], modified["version"], str(modified["price"])) != (
                "MODIFIED", 2, "50.1234"
            ):  # fmt: skip
                fail("modify", None, f"unexpected order {modified}")
            price = {"price": "50"} if step == 1 else {}
            executed = call("execute", "POST", f"/order/{order_id}/execute", 200, json=price)
            expected_price = "50" if step == 1 else "50.1234"
            if executed is not None and (executed["status"], executed["version"], str(executed["executed_price"])) != (
                "EXECUTED", 3, expected_price
            ):  # fmt: skip
                fail("execute", None, f"unexpected order {executed}")
            got = call("get", "GET", f"/order/{order_id}", 200)
            if got is not None and executed is not None and got != executed:
                fail("get", None, f"{got} != {executed}")


# ---- the run ----------------------------------------------------------------------------


def examine(db: Path, tally: Tally) -> dict[str, int]:
    """What the stopped server's file holds, against the acknowledged answers."""
    sys.path.insert(0, str(ROOT))
    import oms

    with oms.open(db, read_only=True) as book:
        events = [e for e in book.events() if e.accepted]
        orders = {o.order_id: o for o in book.orders()}
        replay_matches = book.replay() == book.orders()
    accepted = {(e.order_id, e.version) for e in events}
    unexplained_events = accepted - tally.claims
    tally.unexplained = [
        f"seq {e.seq}: {e.action.value} order {e.order_id} -> {e.to_status} (version {e.version})"
        for e in events
        if (e.order_id, e.version) in unexplained_events
    ]
    differing = 0
    for order_id, order in orders.items():
        answer = tally.acknowledged.get(order_id)
        if answer is None or not _same(order.to_dict(), answer):
            differing += 1
    lost = len(tally.claims - accepted) + sum(1 for order_id in tally.acknowledged if order_id not in orders)
    return {
        "unexplained_accepted_events": len(unexplained_events),
        "orders_differing_from_their_last_answer": differing,
        "acknowledged_missing_from_the_file": lost,
        "projection_differs_from_replay": 0 if replay_matches else 1,
        "orders_in_the_book": len(orders),
        "accepted_events": len(events),
    }


def _tracebacks(log: str) -> list[int]:
    starts, at = [], log.find("Traceback")
    while at != -1:
        starts.append(max(0, at - 300))
        at = log.find("Traceback", at + 1)
    return starts


def _same(stored: dict[str, Any], answered: dict[str, Any]) -> bool:
    for key, value in stored.items():
        other = answered.get(key)
        if isinstance(value, Decimal) or key in ("price", "executed_price"):
            if (value is None) != (other is None) or (value is not None and Decimal(str(value)) != Decimal(str(other))):
                return False
        elif value != other:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--examples", type=int, default=25, help="schemathesis cases per operation and mode")
    parser.add_argument("--raw-rounds", type=int, default=1, help="times the raw malformed set is sent")
    parser.add_argument("--alongside", type=int, default=100_000, help="at most this many valid rounds alongside")
    parser.add_argument("--seconds", type=float, default=300, help="stop every loop after this long")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    started = time.monotonic()
    deadline = started + args.seconds
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="oms-fuzz-") as folder:
        server = Server(Path(folder))
        try:
            create_targets(server.url, tally)
            stop = threading.Event()
            alongside = threading.Thread(target=run_alongside, args=(server.url, tally, stop, args.alongside, deadline))
            raw = threading.Thread(target=run_raw, args=(server.port, tally, args.raw_rounds, deadline))
            alongside.start()
            raw.start()
            try:
                run_schemathesis(server.url, tally, args.examples, deadline)
                raw.join()
            finally:
                stop.set()
                raw.join(60)
                alongside.join(60)
        finally:
            exit_status = server.stop()
        log = server.log
        state = examine(server.db, tally)
    figures = {
        "responses_5xx": len(tally.server_errors),
        "state_changes_from_refused_requests": state["unexplained_accepted_events"]
        + state["orders_differing_from_their_last_answer"],
        "alongside_failures": len(tally.alongside_failures),
        "errors_not_in_the_one_shape": len(tally.bad_shape),
        "malformed_requests_accepted": len(tally.malformed_accepted),
        "acknowledged_missing_from_the_file": state["acknowledged_missing_from_the_file"],
        "projection_differs_from_replay": state["projection_differs_from_replay"],
        "server_exit_status": exit_status,
        "tracebacks_in_the_server_log": log.count("Traceback"),
    }
    counts = {
        "sent": tally.sent,
        "refused": tally.refused,
        "unanswered": tally.unanswered,
        "unsendable": tally.unsendable,
        "orders_in_the_book": state["orders_in_the_book"],
        "accepted_events": state["accepted_events"],
        "unexplained_accepted_events": state["unexplained_accepted_events"],
        "orders_differing_from_their_last_answer": state["orders_differing_from_their_last_answer"],
    }
    details = {
        "responses_5xx": tally.server_errors[:20],
        "state_changes_from_refused_requests": tally.unexplained[:20],
        "alongside_failures": tally.alongside_failures[:20],
        "errors_not_in_the_one_shape": tally.bad_shape[:20],
        "malformed_requests_accepted": tally.malformed_accepted[:20],
        "tracebacks_in_the_server_log": [log[i : i + 1500] for i in _tracebacks(log)][:3],
    }
    ok = all(value == 0 for value in figures.values())
    if args.json:
        print(json.dumps({"figures": figures, "counts": counts, "details": details, "ok": ok}, indent=2))
    else:
        print_report(figures, counts, details, time.monotonic() - started)
    return 0 if ok else 1


def print_report(figures: dict[str, int], counts: dict[str, Any], details: dict[str, list[str]], took: float) -> None:
    sent, refused, unanswered = counts["sent"], counts["refused"], counts["unanswered"]
    print(f"fuzz run against a real oms serve on 127.0.0.1 ({took:.0f} s)")
    print(f"  schemathesis requests : {sent['schemathesis']:,} ({refused['schemathesis']:,} refused, "
          f"{unanswered['schemathesis']} unanswered, {counts['unsendable']} the client would not send)")  # fmt: skip
    print(
        f"  raw malformed requests: {sent['raw']:,} ({refused['raw']:,} refused, {unanswered['raw']} closed unanswered)"
    )
    print(f"  valid commands alongside: {sent['alongside']:,}")
    print(f"  the book: {counts['orders_in_the_book']:,} orders, {counts['accepted_events']:,} accepted events")
    print(f"responses >= 500                          : {figures['responses_5xx']}")
    print(f"state changes from refused requests       : {figures['state_changes_from_refused_requests']} "
          f"(accepted events no acknowledged answer explains: {counts['unexplained_accepted_events']}; "
          f"orders differing from their last answer: {counts['orders_differing_from_their_last_answer']})")  # fmt: skip
    print(f"failures of valid commands sent alongside : {figures['alongside_failures']}")
    print(f"also: errors not in the one shape {figures['errors_not_in_the_one_shape']}, malformed requests "
          f"accepted {figures['malformed_requests_accepted']}, acknowledged but missing from the file "
          f"{figures['acknowledged_missing_from_the_file']}, projection != replay "
          f"{figures['projection_differs_from_replay']}, server exit status {figures['server_exit_status']}, "
          f"tracebacks in its log {figures['tracebacks_in_the_server_log']}")  # fmt: skip
    for name, lines in details.items():
        for line in lines:
            print(f"  {name}: {line}")


if __name__ == "__main__":
    sys.exit(main())
