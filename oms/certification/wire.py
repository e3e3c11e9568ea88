"""The order gateway as the certification pack sees a system under test over HTTP:
every answer is checked against DESIGN.md's REST contract *on the wire* before the
runner sees it.

Adapter layer (httpx). Unlike ``oms.connect`` (a client that wants to get on with its
work), ``WireGateway`` is a strict reader:

- success statuses: 201 for ``POST /order``, 200 for everything else;
- every refusal: the status of its code (VALIDATION_ERROR 422, ORDER_NOT_FOUND 404,
  INVALID_TRANSITION / DUPLICATE_CLIENT_ORDER_ID / PRICE_OUTSIDE_LIMIT 409) and the one
  shape ``{"detail": {"code", "message"}}``, a 422 with ``errors`` = one
  ``{"field", "message"}`` per bad field; never a 5xx;
- every order: all the fields DESIGN.md names, with JSON types -- prices JSON numbers
  (never strings), integers integers, timestamps UTC ISO-8601 with milliseconds *as
  written* (``...T09:15:00.123Z`` or ``+00:00``), checked on the text before parsing;
- every event: seq, order_id, action, from_status, to_status, accepted, reason, at; an
  accepted one its version; a modify its quantity and price; an execute its
  executed_quantity and executed_price.

A breach raises ``ContractViolation`` (the step fails, naming the request and the
rule); a refusal in the contract's shape raises the OMSError of its code, as the engine
would. Requests carry exactly the fields a step gives (so a missing ``order_type``
tests the LIMIT default), prices as JSON numbers with the digits written.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from oms.client import ServerUnreachable
from oms.errors import OMSError, from_code
from oms.lifecycle import Action, Status
from oms.model import CHANGED_FIELDS, Order, OrderEvent, OrderType, Side, parse_ts

CODE_STATUS = {
    "VALIDATION_ERROR": 422,
    "ORDER_NOT_FOUND": 404,
    "INVALID_TRANSITION": 409,
    "DUPLICATE_CLIENT_ORDER_ID": 409,
    "PRICE_OUTSIDE_LIMIT": 409,
}
"""DESIGN.md's refusal codes and the HTTP status each must travel with."""

SUCCESS = {("POST", "/order"): 201}
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(Z|\+00:00)")
JSON_NUMBER = re.compile(r"-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?")
STATUSES = {s.value for s in Status}
ACTIONS = {a.value for a in Action}
TIMEOUT_S = 15.0
KEEPALIVE_S = 2.0
CONNECT_TIMEOUT_S = 35.0
"""A race's burst of connections may overflow a server's listen backlog (5 in Python's
http.server): Linux sends a dropped SYN again after 1, 3, 7, 15 and 31 s. A connection
refused (a server down) still fails at once."""


class ContractViolation(Exception):
    """An answer breaks DESIGN.md's REST contract; the message names the request and the rule."""


# ---- the shapes ---------------------------------------------------------------------------


def error_shape_problems(status: int, payload: Any) -> list[str]:
    """What a refusal answer breaks of the one error shape and the status of its code."""
    detail = payload.get("detail") if isinstance(payload, dict) else None
    if not isinstance(detail, dict):
        return [f'the body is not {{"detail": {{"code", "message"}}}}: {_cut(payload)}']
    problems = []
    code, message = detail.get("code"), detail.get("message")
    if not isinstance(code, str) or not code:
        problems.append("detail.code is missing or not a string")
    if not isinstance(message, str) or not message.strip():
        problems.append("detail.message is missing, empty or not a string")
    if isinstance(code, str) and code in CODE_STATUS and CODE_STATUS[code] != status:
        problems.append(f"{code} travels with HTTP {CODE_STATUS[code]}, not {status}")
    if code == "VALIDATION_ERROR" or status == 422:
        errors = detail.get("errors")
        # one entry per bad field: none when no field is at fault (a body that is not JSON);
        # a case that sends a bad field checks that the list names it
        if not isinstance(errors, list):
            problems.append("a 422 has no errors list (one {field, message} per bad field)")
        elif not all(
            isinstance(e, dict) and isinstance(e.get("field"), str) and isinstance(e.get("message"), str)
            for e in errors
        ):
            problems.append(f"errors entries are not {{field, message}} strings: {_cut(errors)}")
        elif not all(e["message"].strip() for e in errors):
            problems.append(f"errors entries with an empty message: {_cut(errors)}")
        else:
            named = [e["field"] for e in errors]
            twice = sorted({f for f in named if named.count(f) > 1})
            if twice:
                problems.append(f"errors name {', '.join(twice)} more than once (one entry per bad field)")
    return problems


def _may_be_absent(d: dict[str, Any]) -> list[str]:
    """The order fields that may be left out, as null (a server that omits nulls): the
    optional client_order_id, a MARKET order's price, and the fill of an order not filled."""
    keys = ["client_order_id"]
    if d.get("order_type") == "MARKET":
        keys.append("price")
    if d.get("status") != "EXECUTED":
        keys += ["executed_quantity", "executed_price"]
    return keys


def parse_order(d: Any, where: str) -> Order:
    """An order as DESIGN.md writes it, or ContractViolation naming what is wrong."""
    if not isinstance(d, dict):
        raise ContractViolation(f"{where}: an order is a JSON object, got {_cut(d)}")
    d = {**{key: None for key in _may_be_absent(d)}, **d}
    problems = []
    need = {
        "order_id": _is_int,
        "client_order_id": lambda v: v is None or isinstance(v, str),
        "symbol": lambda v: isinstance(v, str),
        "side": lambda v: v in ("BUY", "SELL"),
        "order_type": lambda v: v in ("LIMIT", "MARKET"),
        "quantity": _is_int,
        "price": lambda v: v is None or _is_number(v),
        "status": lambda v: v in STATUSES,
        "version": _is_int,
        "executed_quantity": lambda v: v is None or _is_int(v),
        "executed_price": lambda v: v is None or _is_number(v),
        "created_at": _is_timestamp,
        "updated_at": _is_timestamp,
    }
    for key, ok in need.items():
        if key not in d:
            problems.append(f"no {key}")
        elif not ok(d[key]):
            problems.append(f"{key} {_cut(d[key])} ({_json_type(d[key])}) breaks the contract")
    if not problems and d["status"] == "EXECUTED" and d["executed_quantity"] is None:
        problems.append("an EXECUTED order with executed_quantity null")
    if problems:
        raise ContractViolation(f"{where}: order " + "; ".join(problems))
    return Order(
        order_id=d["order_id"],
        client_order_id=d["client_order_id"],
        symbol=d["symbol"],
        side=Side(d["side"]),
        order_type=OrderType(d["order_type"]),
        quantity=d["quantity"],
        price=_decimal(d["price"]),
        status=Status(d["status"]),
        version=d["version"],
        executed_quantity=d["executed_quantity"] or 0,
        executed_price=_decimal(d["executed_price"]),
        created_at=parse_ts(d["created_at"]),
        updated_at=parse_ts(d["updated_at"]),
    )


def parse_event(d: Any, where: str) -> OrderEvent:
    """An audit-log event as DESIGN.md writes it, or ContractViolation."""
    if not isinstance(d, dict):
        raise ContractViolation(f"{where}: an event is a JSON object, got {_cut(d)}")
    # a server that omits nulls: what may be null may be absent (a modify event's price is
    # null for a MARKET order; a LIMIT order's left out fails the replay)
    nullable = ["order_id", "from_status", "to_status", "reason", *(["price"] if d.get("action") == "modify" else [])]
    d = {**{key: None for key in nullable}, **d}
    problems = []
    need = {
        "seq": _is_int,
        "order_id": lambda v: v is None or _is_int(v),
        "action": lambda v: v in ACTIONS,
        "from_status": lambda v: v is None or v in STATUSES,
        "to_status": lambda v: v is None or v in STATUSES,
        "accepted": lambda v: isinstance(v, bool),
        "reason": lambda v: v is None or isinstance(v, str),
        "at": _is_timestamp,
    }
    for key, ok in need.items():
        if key not in d:
            problems.append(f"no {key}")
        elif not ok(d[key]):
            problems.append(f"{key} {_cut(d[key])} breaks the contract")
    if not problems and d["accepted"]:
        if d["reason"] is not None:
            problems.append(f"an accepted event with reason {_cut(d['reason'])}")
        if not _is_int(d.get("version")):
            problems.append("an accepted event without the order's version after it")
        if d["to_status"] is None:
            problems.append("an accepted event without to_status")
        carried = {"modify": ("quantity", "price"), "execute": ("executed_quantity", "executed_price")}
        for key in carried.get(d["action"], ()):
            if key not in d:
                problems.append(f"an accepted {d['action']} event without {key}")
            elif d[key] is not None and not (_is_int(d[key]) if "quantity" in key else _is_number(d[key])):
                problems.append(f"{key} {_cut(d[key])} ({_json_type(d[key])}) breaks the contract")
    elif not problems and not d["reason"]:
        problems.append("a refused event without its reason code")
    if problems:
        raise ContractViolation(f"{where}: event " + "; ".join(problems))
    action = Action(d["action"])
    changes = {k: d[k] for k in CHANGED_FIELDS[action] if k in d} if d["accepted"] else {}
    for k in ("price", "executed_price"):
        if k in changes:
            changes[k] = _decimal(changes[k])
    return OrderEvent(
        seq=d["seq"],
        order_id=d["order_id"],
        action=action,
        from_status=Status(d["from_status"]) if d["from_status"] else None,
        to_status=Status(d["to_status"]) if d["to_status"] else None,
        accepted=d["accepted"],
        reason=d["reason"],
        message=d.get("message"),
        at=parse_ts(d["at"]),
        version=d.get("version"),
        changes=changes,
    )


# ---- the gateway --------------------------------------------------------------------------


class WireGateway:
    """The gateway face over HTTP, checking every answer against the contract."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        limits = httpx.Timeout(timeout, connect=max(timeout, CONNECT_TIMEOUT_S))
        # An idle connection is dropped before a server's own keep-alive timeout can close
        # it under a request (uvicorn's is 5 s, httpx's default expiry too: a race).
        pool = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=KEEPALIVE_S)
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=limits, limits=pool)
        self.server: str | None = None
        """What the server says about itself (its ``Server`` header), if anything."""

    @property
    def target(self) -> str:
        return self.url

    def create(self, **fields: Any) -> Order:
        return parse_order(self._command("POST", "/order", fields), "POST /order")

    def modify(self, order_id: int, **fields: Any) -> Order:
        path = f"/order/{order_id}"
        return parse_order(self._command("PUT", path, fields), f"PUT {path}")

    def cancel(self, order_id: int) -> Order:
        path = f"/order/{order_id}"
        return parse_order(self._command("DELETE", path, None), f"DELETE {path}")

    def execute(self, order_id: int, **fields: Any) -> Order:
        path = f"/order/{order_id}/execute"
        return parse_order(self._command("POST", path, fields), f"POST {path}")

    def get(self, order_id: int) -> Order:
        path = f"/order/{order_id}"
        return parse_order(self._command("GET", path, None), f"GET {path}")

    def orders(self, *, status: str | None = None, symbol: str | None = None) -> list[Order]:
        params = {k: v for k, v in (("status", status), ("symbol", symbol)) if v is not None}
        where = "GET /orders" + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")
        listing = self._command("GET", "/orders", None, params=params)
        if not isinstance(listing, list):
            raise ContractViolation(f"{where}: a listing is a JSON array, got {_cut(listing)}")
        return [parse_order(d, where) for d in listing]

    def events(self, order_id: int | None = None) -> list[OrderEvent]:
        path = "/events" if order_id is None else f"/order/{order_id}/events"
        log = self._command("GET", path, None)
        if not isinstance(log, list):
            raise ContractViolation(f"GET {path}: a log is a JSON array, got {_cut(log)}")
        return [parse_event(d, f"GET {path}") for d in log]

    def request(self, method: str, path: str, content: str | None = None) -> tuple[int, Any]:
        """One raw request: (status, the JSON body or the text)."""
        headers = {"Content-Type": "application/json"} if content is not None else {}
        response = self._send(method, path, content=content, headers=headers)
        try:
            return response.status_code, json.loads(response.content, parse_float=Decimal)
        except ValueError:
            return response.status_code, response.text

    def _command(self, method: str, path: str, fields: dict[str, Any] | None, params: Any = None) -> Any:
        content = None if fields is None else encode(fields)
        headers = {"Content-Type": "application/json"} if content is not None else {}
        response = self._send(method, path, content=content, headers=headers, params=params)
        where = f"{method} {path}"
        status = response.status_code
        try:
            payload = json.loads(response.content, parse_float=Decimal)
        except ValueError:
            raise ContractViolation(
                f"{where} answered {status} with a body that is not JSON: {_cut(response.text)}"
            ) from None
        if 200 <= status < 300:
            want = SUCCESS.get((method, path), 200)
            if status != want:
                raise ContractViolation(f"{where} answered {status}; the contract says {want}")
            return payload
        if status >= 500:
            raise ContractViolation(f"{where} answered {status} (a server error): {_cut(payload)}")
        problems = error_shape_problems(status, payload)
        code = payload["detail"].get("code") if not problems else None
        if not problems and code not in CODE_STATUS:
            problems.append(f"code {code} is not one of the contract's ({', '.join(CODE_STATUS)})")
        if problems:
            raise ContractViolation(f"{where} answered {status}: " + "; ".join(problems))
        detail = payload["detail"]
        errors = [{**e, "field": leaf(e["field"])} for e in detail["errors"]] if detail.get("errors") else None
        refused = from_code(str(code), detail["message"], errors)
        vars(refused)["wire_message"] = detail["message"]  # a ValidationError rebuilds its message from errors
        return _raise(refused)

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as e:
            raise ServerUnreachable(f"{self.url} did not answer {method} {path} in time") from e
        except httpx.TransportError as e:
            raise ServerUnreachable(f"cannot reach {self.url} ({type(e).__name__}: {e})") from e
        self.server = self.server or response.headers.get("server")
        return response

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> WireGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def encode(fields: dict[str, Any]) -> str:
    """A request body with exactly ``fields``; a price written as a numeric string goes as a
    JSON number with exactly those digits (``"10.5000"`` -> ``10.5000``)."""
    parts = []
    for key, value in fields.items():
        if key == "price" and isinstance(value, str) and JSON_NUMBER.fullmatch(value):
            parts.append(f"{json.dumps(key)}: {value}")
        elif isinstance(value, Decimal):
            parts.append(f"{json.dumps(key)}: {format(value, 'f')}")
        else:
            parts.append(f"{json.dumps(key)}: {json.dumps(value)}")
    return "{" + ", ".join(parts) + "}"


def leaf(field: str) -> str:
    """The field a path names: ``body.quantity`` and ``/body/quantity`` name ``quantity``."""
    return field.replace("/", ".").rstrip(".").rsplit(".", 1)[-1] if field else field


def _raise(e: OMSError) -> Any:
    raise e


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, Decimal | int) and not isinstance(v, bool)


def _is_timestamp(v: Any) -> bool:
    if not isinstance(v, str) or not TIMESTAMP.fullmatch(v):
        return False
    try:
        datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _decimal(v: Any) -> Decimal | None:
    return None if v is None else Decimal(v)


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, str):
        return "string"
    if isinstance(v, int | Decimal):
        return "number"
    return "array" if isinstance(v, list) else "object"


def _cut(value: Any, n: int = 120) -> str:
    s = value if isinstance(value, str) else json.dumps(value, default=str)
    return s if len(s) <= n else s[: n - 1] + "…"
