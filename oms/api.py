"""The REST API of the specification: a thin FastAPI face over any order gateway.

Adapter layer. Each endpoint parses, calls the gateway, and writes JSON through
``oms.jsonio`` (prices as exact JSON numbers). Bodies are parsed here as raw JSON and
handed to the engine unchanged (``Engine.submit``), so every check -- unknown fields,
types, ranges, the lifecycle -- happens once, in the engine, and refusals land in the
event log. Errors are translated once: every OMSError becomes
``{"detail": {"code", "message"[, "errors"]}}`` with the error's HTTP status; FastAPI's
own refusals (a non-integer id, an unknown route) use the same shape.

Commands to the embedded engine go through ``oms.committer``: the commands of one
event-loop turn share one commit (group commit), and a 2xx response is sent only after
the command is committed. Reads, and commands to any other gateway, run in the thread
pool. A command with a plain id takes the command lane (``_CommandLane``): the same
function as its endpoint, without FastAPI's per-request routing machinery.

``create_app(gateway)`` serves a gateway the caller owns; ``app`` (for
``uvicorn oms.api:app``) opens the database named by ``OMS_DB`` (default
``data/oms.duckdb``) at startup and closes it at shutdown. With a token
(``OMS_API_TOKEN``), every request needs ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import re
import secrets
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, BeforeValidator, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match

import oms
from oms.commands import Command
from oms.committer import Committer
from oms.engine import Engine
from oms.errors import (
    Forbidden,
    OMSError,
    PayloadTooLarge,
    SqlRefused,
    Unauthorized,
    UnsupportedMediaType,
    ValidationError,
)
from oms.gateway import TOKEN_ENV, Gateway, JsonListing, JsonPage, SqlCapable
from oms.jsonio import dumps
from oms.lifecycle import Action, Status
from oms.server import is_loopback, token_problem
from oms.validation import (
    CLIENT_ORDER_ID_PATTERN,
    CREATE_FIELDS,
    EXECUTE_FIELDS,
    MAX_PRICE,
    MAX_QUANTITY,
    MODIFY_FIELDS,
    SYMBOL_PATTERN,
    shown,
    shown_name,
)

log = logging.getLogger("oms.api")

DB_ENV = "OMS_DB"
SERVER_THREADS = 1
"""DuckDB worker threads for a database the server opens: its statements are one-row
transactions, which run faster on the calling thread (``oms.open(threads=...)``)."""
MAX_ORDER_ID = 2**63 - 1

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# ---- schemas, for the OpenAPI document only (the engine validates) -----------------------

# Exactly what the engine accepts, so schema-driven clients (and fuzzers) agree with it:
# enums in any case, prices as JSON numbers (or decimal strings), null for "not given".
_PRICE: dict[str, Any] = {
    "anyOf": [
        {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": int(MAX_PRICE), "multipleOf": 0.0001},
        {
            "type": "string",
            "pattern": r"^(?:[1-9][0-9]{0,11}(?:\.[0-9]{1,4})?"
            r"|0\.(?:[1-9][0-9]{0,3}|0[1-9][0-9]{0,2}|00[1-9][0-9]?|000[1-9]))$",
            "description": 'a decimal number as text, e.g. "1500.25"',
        },
        {"type": "null"},
    ],
    "description": "exact decimal, 0 < price < 10^12, at most 4 decimal places",
    "example": 1500.25,
}
_QUANTITY: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": MAX_QUANTITY, "example": 100}


def _any_case(*words: str) -> str:
    return "^(?:" + "|".join("".join(f"[{c.upper()}{c.lower()}]" for c in w) for w in words) + ")$"


CREATE_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "symbol": {
            "type": "string",
            "pattern": f"^{SYMBOL_PATTERN.pattern}$",
            "description": "stored upper-case",
            "example": "INFY",
        },
        "side": {"type": "string", "pattern": _any_case("BUY", "SELL"), "description": "BUY or SELL (any case)"},
        "order_type": {
            "type": ["string", "null"],
            "pattern": _any_case("LIMIT", "MARKET"),
            "description": "LIMIT (default) or MARKET (any case)",
        },
        "quantity": _QUANTITY,
        "price": {**_PRICE, "description": "required for LIMIT, absent or null for MARKET; " + _PRICE["description"]},
        "client_order_id": {
            "type": ["string", "null"],
            "pattern": f"^{CLIENT_ORDER_ID_PATTERN.pattern}$",
            "description": "optional, unique: 1-64 printable ASCII characters, no spaces",
        },
    },
    "required": ["symbol", "side", "quantity"],
    "additionalProperties": False,
    "example": {"symbol": "INFY", "side": "BUY", "quantity": 100, "price": 1500.25},
}
MODIFY_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {"quantity": {**_QUANTITY, "type": ["integer", "null"]}, "price": _PRICE},
    "description": "quantity and/or price (at least one)",
    "minProperties": 1,
    "additionalProperties": False,
    "example": {"price": 1499.5},
}
EXECUTE_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {"price": {**_PRICE, "description": "defaults to the limit price; required for MARKET"}},
    "additionalProperties": False,
    "example": {},
}


def _body(schema: dict[str, Any], required: bool) -> dict[str, Any]:
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": schema}}}}


class OrderOut(BaseModel):
    order_id: int
    client_order_id: str | None
    symbol: str
    side: Literal["BUY", "SELL"]
    order_type: Literal["LIMIT", "MARKET"]
    quantity: int
    price: float | None = Field(description="exact decimal as a JSON number")
    status: Literal["NEW", "MODIFIED", "CANCELLED", "EXECUTED"]
    version: int
    executed_quantity: int
    executed_price: float | None
    created_at: str = Field(examples=["2026-01-05T09:15:00.000Z"])
    updated_at: str


class EventOut(BaseModel):
    seq: int
    order_id: int | None
    action: Literal["create", "modify", "cancel", "execute"]
    from_status: str | None
    to_status: str | None
    accepted: bool
    reason: str | None = Field(description="the refusal code of a refused command")
    message: str | None
    at: str
    version: int | None
    request: dict[str, Any] | None = Field(None, description="what a refused command asked")
    model_config = {"extra": "allow"}  # plus the fields the action changed


class FieldError(BaseModel):
    field: str
    message: str


class ErrorDetail(BaseModel):
    code: str = Field(examples=["INVALID_TRANSITION"])
    message: str = Field(examples=["cannot cancel order 17: status is EXECUTED"])
    errors: list[FieldError] | None = Field(None, description="VALIDATION_ERROR only: one entry per bad field")


class ErrorBody(BaseModel):
    detail: ErrorDetail


def _refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    text = {
        401: "missing or wrong bearer token (UNAUTHORIZED)",
        404: "no such order (ORDER_NOT_FOUND)",
        409: "refused by the lifecycle or a business rule "
        "(INVALID_TRANSITION, DUPLICATE_CLIENT_ORDER_ID, PRICE_OUTSIDE_LIMIT)",
        415: "a body not sent as application/json (UNSUPPORTED_MEDIA_TYPE)",
        422: "bad input (VALIDATION_ERROR), one entry per bad field in `errors`",
        503: "the database cannot be used (STORE_ERROR)",
    }
    return {s: {"model": ErrorBody, "description": text[s]} for s in (*statuses, 401, 503)}


def _ok(model: Any, description: str, status: int = 200) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": model, "description": description}}


# ---- the app ------------------------------------------------------------------------------


def _json(value: Any, status: int = 200) -> Response:
    return Response(content=dumps(value), status_code=status, media_type="application/json")


def error_response(err: OMSError) -> Response:
    """The one error shape: ``{"detail": err.to_dict()}`` with ``err.http_status``."""
    return _json({"detail": err.to_dict()}, err.http_status)


def _plain_error(status: int, code: str, message: str, **extra: Any) -> Response:
    return _json({"detail": {"code": code, "message": message, **extra}}, status)


NO_BODY: Any = object()


MAX_BODY = 64 * 1024
"""Bytes a request body may have; an order fits in a few hundred."""


def _check_query(request: Request, allowed: tuple[str, ...]) -> None:
    """Refuse a misspelt or repeated filter instead of silently ignoring it."""
    errors = [
        {"field": shown_name(k), "message": f"unknown filter; expected one of {', '.join(allowed)}"}
        for k in sorted(set(request.query_params))
        if k not in allowed
    ]
    errors += [
        {"field": k, "message": "given more than once"} for k in allowed if len(request.query_params.getlist(k)) > 1
    ]
    if errors:
        raise ValidationError(errors)


async def _read_body(request: Request) -> bytes:
    """The raw request body; larger than MAX_BODY -> PAYLOAD_TOO_LARGE (refused on the
    declared length, before reading, when there is one)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise PayloadTooLarge(f"the body has {int(declared):,} bytes; at most {MAX_BODY:,} are accepted")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():  # a chunked body declares no length: count it
            size += len(chunk)
            if size > MAX_BODY:
                raise PayloadTooLarge(f"the body has more than {MAX_BODY:,} bytes; at most {MAX_BODY:,} are accepted")
            chunks.append(chunk)
    except ClientDisconnect:  # closed mid-body (or its chunks were malformed): nothing to decide
        raise ValidationError("the connection closed before the whole body arrived", "body") from None
    return b"".join(chunks)


class _DuplicateKey(Exception):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all distinct (``{"price": 1, "price": 2}`` is refused,
    not read as its last value)."""
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return value


def _check_no_query(request: Request) -> None:
    """Commands take their input from the path and the body only: a query parameter
    (``POST /order?dry_run=true``) is refused, never ignored."""
    if request.scope.get("query_string"):
        names = sorted({shown_name(k) for k, _ in request.query_params.multi_items()}) or ["?"]
        raise ValidationError([{"field": name, "message": "commands take no query parameters"} for name in names])


def _check_json_media_type(request: Request) -> None:
    """A body must say it is JSON: a form or ``text/plain`` body is what a foreign web page
    can send without asking (CSRF), and a compressed one would be read as garbage."""
    declared = request.headers.get("content-type")
    media_type = (declared or "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        got = f"got {shown(declared)}" if declared is not None else "got none"
        raise UnsupportedMediaType(f"a request body must be sent with 'Content-Type: application/json', {got}")
    encoding = request.headers.get("content-encoding")
    if encoding is not None and encoding.strip().lower() != "identity":
        raise UnsupportedMediaType(f"a request body must not be encoded (Content-Encoding: {shown(encoding)})")


def _parse_body(raw: bytes) -> Any:
    """The body as exact JSON (NO_BODY when empty). Malformed -> VALIDATION_ERROR."""
    if not raw.strip():
        return NO_BODY
    try:
        value = json.loads(raw, parse_float=Decimal, object_pairs_hook=_unique_keys)
    except _DuplicateKey as e:
        raise ValidationError(f"gives the key {shown(e.args[0])} more than once", "body") from None
    except (ValueError, RecursionError) as e:
        raise ValidationError(f"is not valid JSON: {str(e).splitlines()[0][:200]}", "body") from None
    _check_shape(value)
    return value


MAX_JSON_DEPTH = 16
"""Nesting a body may have; an order is one flat object."""


def _check_shape(value: Any) -> None:
    """Refuse, before the engine sees it, what no command takes and what would cost the
    engine: nesting deeper than MAX_JSON_DEPTH, text that is not valid Unicode."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeError:
                raise ValidationError("holds a string that is not valid Unicode (a lone surrogate)", "body") from None
        elif isinstance(item, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise ValidationError(f"is nested deeper than {MAX_JSON_DEPTH} levels", "body")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack += [(child, depth + 1) for child in children]


_JSON_TYPES = {"NoneType": "null", "bool": "boolean", "int": "number", "Decimal": "number", "str": "string"}


def _object(body: Any, *, required: bool) -> dict[str, Any]:
    if body is NO_BODY and not required:
        return {}
    if not isinstance(body, dict):
        name = type(body).__name__
        what = "an empty body" if body is NO_BODY else f"a JSON {_JSON_TYPES.get(name, name)}"
        raise ValidationError(f"must be a JSON object, got {what}", "body")
    return body


_BODY_REQUIRED = frozenset({Action.CREATE, Action.MODIFY})
_ALLOWED = {Action.CREATE: CREATE_FIELDS, Action.MODIFY: MODIFY_FIELDS, Action.EXECUTE: EXECUTE_FIELDS}


def _submit(gateway: Gateway, command: Command) -> oms.Order:
    """One command through the gateway: ``submit`` (the engine: raw request, logged
    refusals), or the gateway's typed methods for any other implementation."""
    submit = getattr(gateway, "submit", None)
    if submit is not None:
        order: oms.Order = submit(command)
        return order
    # Any other gateway (a RemoteGateway, when this app relays to another server): its
    # typed methods, every field passed (None when absent) so that it judges them all.
    allowed = _ALLOWED.get(command.action, ())
    unknown = sorted(set(command.request) - set(allowed), key=str)
    if unknown:
        raise ValidationError([{"field": str(k), "message": f"unknown field; expected one of {', '.join(allowed)}"}
                               for k in unknown])  # fmt: skip
    r: Any = {name: command.request.get(name) for name in allowed}
    order_id: Any = command.order_id
    if command.action is Action.CREATE:
        return gateway.create(**{**r, "order_type": r["order_type"] or "LIMIT"})
    if command.action is Action.MODIFY:
        return gateway.modify(order_id, **r)
    if command.action is Action.CANCEL:
        return gateway.cancel(order_id)
    return gateway.execute(order_id, **r)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    out = []
    for e in exc.errors():
        loc = [str(p) for p in e.get("loc", ()) if p not in ("path", "query", "body", "header")]
        message = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        out.append({"field": ".".join(loc) or "request", "message": message})
    return out or [{"field": "request", "message": "invalid"}]


StatusFilter = Query(None, description=f"one of {', '.join(Status)} (any case)", examples=["NEW"])
SymbolFilter = Query(None, description="1-16 letters, digits or . - _ (any case)", examples=["INFY"])
_CANONICAL_ID = re.compile(r"-?(?:0|[1-9][0-9]*)", re.ASCII)


def _canonical_id(value: Any) -> Any:
    """Only an id written the one way -- decimal digits, no sign, space, leading zero or
    separator -- addresses an order: ``/order/01``, ``/order/+1``, ``/order/1_0`` and
    ``/order/1.0`` are refused, not read as another id. (0 and negative ids pass here and
    are refused, and logged, by the engine.)"""
    if isinstance(value, str) and not _CANONICAL_ID.fullmatch(value):
        raise ValueError("must be a whole number written in plain decimal digits (no sign, spaces or leading zeros)")
    return value


OrderId = Annotated[
    int,
    BeforeValidator(_canonical_id),
    Path(description="the order's id", json_schema_extra={"minimum": 1, "maximum": MAX_ORDER_ID}),
]


MAX_PAGE = 10_000
"""Orders one page of ``GET /orders?limit=`` may hold."""

PageLimit = Annotated[
    int | None,
    BeforeValidator(_canonical_id),
    Query(ge=1, le=MAX_PAGE, description=f"a page of at most this many orders (1 to {MAX_PAGE:,})", examples=[500]),
]
AfterId = Annotated[
    int | None,
    BeforeValidator(_canonical_id),
    Query(ge=0, le=MAX_ORDER_ID, description="only orders whose id is above this one (the next page)", examples=[0]),
]


def _next_page(request: Request, after: int) -> str:
    """The next page's URL, relative to this server: this request's filters and limit,
    ``after`` the last order sent."""
    from urllib.parse import urlencode

    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "after"]
    return f"{request.url.path}?{urlencode([*kept, ('after', str(after))])}"


def _listing_in_python(
    gateway: Gateway, *, status: str | None, symbol: str | None, after: int | None, limit: int | None
) -> JsonPage:
    """The listing of a gateway that cannot write it as JSON itself (a relayed server)."""
    from oms.listing import JsonListing as Listing

    orders = gateway.orders(status=status, symbol=symbol)
    if after is not None:
        orders = [o for o in orders if o.order_id > after]
    more = limit is not None and len(orders) > limit
    orders = orders[:limit] if limit is not None else orders
    text = dumps([o.to_dict() for o in orders]).encode()
    return Listing(iter([text]), orders[-1].order_id if more else None)


ARROW_STREAM = "application/vnd.apache.arrow.stream"
SQL_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "sql": {"type": "string", "minLength": 1, "description": "one SELECT statement"},
        "params": {
            "type": "array",
            "items": {"type": ["string", "number", "boolean", "null"]},
            "description": "values for the ? placeholders, in order",
        },
    },
    "required": ["sql"],
    "additionalProperties": False,
    "example": {"sql": "SELECT status, count(*) AS n FROM orders WHERE symbol = ? GROUP BY status", "params": ["INFY"]},
}


class SqlOut(BaseModel):
    columns: list[str]
    types: list[str] = Field(description="each column's Arrow type, e.g. decimal128(16, 4)")
    rows: list[list[Any]] = Field(description="decimals as exact JSON numbers, timestamps as ISO-8601 text")


def _sql_request(body: dict[str, Any]) -> tuple[str, list[Any]]:
    errors = [
        {"field": shown_name(k), "message": "unknown field; expected sql, params"}
        for k in body
        if k not in ("sql", "params")
    ]
    query, params = body.get("sql"), body.get("params", [])
    if not isinstance(query, str):
        errors.append({"field": "sql", "message": "is required: one SELECT statement as text"})
    if not isinstance(params, list):
        errors.append({"field": "params", "message": "must be a list of values"})
    if errors:
        raise ValidationError(errors)
    return str(query), list(params)


def _arrow_stream(table: Any) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def _sql_json(table: Any) -> dict[str, Any]:
    names = table.column_names
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    rows = [[_json_value(v) for v in row] for row in zip(*columns, strict=True)] if columns else []
    return {"columns": names, "types": [str(t) for t in table.schema.types], "rows": rows}


def _json_value(value: Any) -> Any:
    """A SQL value as JSON: decimals stay exact (written as numbers), times as ISO-8601
    text as DuckDB holds them (a TIMESTAMP has no zone), bytes as base64, NaN as null."""
    import base64
    import datetime as dt
    import math

    if value is None or isinstance(value, (bool, int, str, Decimal)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    return str(value)


_DOCS_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon.png": "image/png",
}
DOCS_ASSETS_PATH = "/docs/assets"


def _docs_asset(name: str) -> bytes:
    """One file of Swagger UI, from the installed ``fastapi-offline`` package."""
    from importlib.resources import files

    return (files("fastapi_offline") / "static" / name).read_bytes()


def _add_offline_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) with its script, style and icon served by this server from
    an installed package: the page works with no network. No ``/redoc``: ReDoc's bundle
    fetches a logo from its CDN."""
    from fastapi.openapi.docs import get_swagger_ui_html

    def asset_url(request: Request, name: str) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/") + f"{DOCS_ASSETS_PATH}/{name}"

    async def swagger_ui(request: Request) -> Response:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + str(app.openapi_url),
            title=f"{app.title} - Swagger UI",
            swagger_js_url=asset_url(request, "swagger-ui-bundle.js"),
            swagger_css_url=asset_url(request, "swagger-ui.css"),
            swagger_favicon_url=asset_url(request, "favicon.png"),
            swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from swagger.io
        )

    app.add_api_route("/docs", swagger_ui, methods=["GET"], include_in_schema=False)
    for name, media_type in _DOCS_ASSETS.items():
        app.add_api_route(
            f"{DOCS_ASSETS_PATH}/{name}", _asset_endpoint(name, media_type), methods=["GET"], include_in_schema=False
        )


def _asset_endpoint(name: str, media_type: str) -> Callable[[], Awaitable[Response]]:
    content: list[bytes] = []

    async def asset() -> Response:
        if not content:
            content.append(_docs_asset(name))  # read once, on first use
        return Response(content[0], media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})

    return asset


def create_app(
    gateway: Gateway | None = None,
    *,
    db: str | None = None,
    token: str | None = None,
    on_shutdown: Callable[[], None] | None = None,
) -> FastAPI:
    """The API over ``gateway`` (owned by the caller), or -- when None -- over the DuckDB
    file ``db`` (default: ``$OMS_DB`` or ``data/oms.duckdb``), opened at startup and
    closed at shutdown. ``token`` (default ``$OMS_API_TOKEN``) makes every request need
    ``Authorization: Bearer <token>``. ``on_shutdown`` runs when the server stops (after
    the last request), e.g. to close a gateway the caller opened."""
    token = token if token is not None else (os.environ.get(TOKEN_ENV) or None)
    holder: dict[str, Any] = {"gateway": gateway, "startup_error": None}
    problem = token_problem(token) if token is not None else None
    bad_token = OMSError(f"refusing the token ({TOKEN_ENV}): {problem}") if problem else None
    # One committer per event loop (uvicorn runs one; a TestClient used without ``with``
    # runs each request on a loop of its own).
    committers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Committer] = weakref.WeakKeyDictionary()

    def close_committers() -> None:
        for committer in list(committers.values()):
            committer.close()
        committers.clear()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if bad_token is not None:  # no request could ever authenticate: do not start
            holder["startup_error"] = bad_token
            raise bad_token
        if holder["gateway"] is not None:
            try:
                yield
            finally:
                close_committers()
                if on_shutdown is not None:
                    on_shutdown()
            return
        path = db or os.environ.get(DB_ENV) or oms.DEFAULT_DB
        try:
            opened = oms.open(path, threads=SERVER_THREADS)
        except OMSError as e:
            holder["startup_error"] = e
            raise
        holder["gateway"] = opened
        try:
            yield
        finally:
            holder["gateway"] = None
            close_committers()
            opened.close()

    app = FastAPI(
        title="OMS",
        version=oms.__version__,
        summary="Exchange-style order management: create, modify, cancel, execute.",
        description=(
            "Lifecycle: NEW -> MODIFIED | CANCELLED | EXECUTED; MODIFIED -> EXECUTED. "
            'Every refusal is `{"detail": {"code", "message"}}` (422 adds `errors`).'
        ),
        lifespan=lifespan,
        redirect_slashes=False,  # a redirect would be built from the request's Host header
        docs_url=None,  # FastAPI's page loads Swagger UI from a CDN: ours is served here (_add_offline_docs)
        redoc_url=None,
    )
    _add_offline_docs(app)

    async def submit(command: Command) -> oms.Order:
        """Commands go to the committer (the engine, group-committed per loop turn), or,
        for any other gateway, through the thread pool."""
        gateway = gw()
        if isinstance(gateway, Engine):
            loop = asyncio.get_running_loop()
            committer = committers.get(loop)
            if committer is None or committer.engine is not gateway:
                committer = committers[loop] = Committer(gateway)
            result: oms.Order = await committer.submit(command)
            return result
        return await run_in_threadpool(_submit, gateway, command)

    async def run_command(action: Action, order_id: int | None, request: Request) -> Response:
        """A command request, from its body to its response: all that each command
        endpoint does, and all that the command lane does."""
        _check_no_query(request)
        raw = await _read_body(request)
        if raw:
            _check_json_media_type(request)
        body = _object(_parse_body(raw), required=action in _BODY_REQUIRED)
        order = await submit(Command(action, order_id, body))
        return _json(order.to_dict(), 201 if action is Action.CREATE else 200)

    def gw() -> Gateway:
        current = holder["gateway"]
        if current is None:
            raise oms.StoreError("the server has no database open (not started, or shutting down)")
        return current  # type: ignore[no-any-return]

    # -- errors, translated once --------------------------------------------------------

    @app.exception_handler(OMSError)
    async def _oms_error(_request: Request, exc: OMSError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(_request: Request, exc: RequestValidationError) -> Response:
        return error_response(ValidationError(_validation_errors(exc)))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return _plain_error(404, "NOT_FOUND", f"no route {request.method} {request.url.path}")
        if exc.status_code == 405:
            allowed = _allowed_methods(app, request.scope)
            response = _plain_error(
                405, "METHOD_NOT_ALLOWED", f"{request.method} is not allowed on {request.url.path}; allowed: {allowed}"
            )
            response.headers["Allow"] = allowed
            return response
        return _plain_error(exc.status_code, "HTTP_ERROR", str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _plain_error(500, "INTERNAL_ERROR", "internal error; the server log has the details")

    # -- commands -------------------------------------------------------------------------

    @app.post(
        "/order",
        status_code=201,
        summary="Create an order (NEW)",
        response_model=None,
        responses={**_ok(OrderOut, "the order, NEW", 201), **_refusals(409, 422)},
        openapi_extra=_body(CREATE_BODY, True),
    )
    async def create_order(request: Request) -> Response:
        return await run_command(Action.CREATE, None, request)

    @app.put(
        "/order/{order_id}",
        summary="Modify quantity and/or price of a NEW order (-> MODIFIED)",
        response_model=None,
        responses={**_ok(OrderOut, "the order, MODIFIED"), **_refusals(404, 409, 422)},
        openapi_extra=_body(MODIFY_BODY, True),
    )
    async def modify_order(order_id: OrderId, request: Request) -> Response:
        return await run_command(Action.MODIFY, order_id, request)

    @app.delete(
        "/order/{order_id}",
        summary="Cancel a NEW order (-> CANCELLED)",
        response_model=None,
        responses={**_ok(OrderOut, "the order, CANCELLED"), **_refusals(404, 409, 422)},
    )
    async def cancel_order(order_id: OrderId, request: Request) -> Response:
        return await run_command(Action.CANCEL, order_id, request)

    @app.post(
        "/order/{order_id}/execute",
        summary="Fill a NEW or MODIFIED order in full (-> EXECUTED)",
        response_model=None,
        responses={**_ok(OrderOut, "the order, EXECUTED"), **_refusals(404, 409, 422)},
        openapi_extra=_body(EXECUTE_BODY, False),
    )
    async def execute_order(order_id: OrderId, request: Request) -> Response:
        return await run_command(Action.EXECUTE, order_id, request)

    # -- reads ----------------------------------------------------------------------------

    @app.get(
        "/orders",
        summary="Orders sorted by order_id, optionally filtered; a page of them with limit (and after)",
        description="Without `limit`, every order (streamed). With `limit=N`, the first N orders whose id is "
        "above `after` (default 0); while more remain the answer has an RFC 8288 header "
        '`Link: </orders?...&after=ID>; rel="next"` naming the next page.',
        response_model=None,
        responses={**_ok(list[OrderOut], "the orders (a page of them with limit)"), **_refusals(422)},
    )
    def list_orders(
        request: Request,
        status: str | None = StatusFilter,
        symbol: str | None = SymbolFilter,
        limit: PageLimit = None,
        after: AfterId = None,
    ) -> Response:
        _check_query(request, ("status", "symbol", "limit", "after"))
        gateway = gw()
        if isinstance(gateway, JsonListing):
            page = gateway.orders_json(status=status, symbol=symbol, after=after, limit=limit)
        else:
            page = _listing_in_python(gateway, status=status, symbol=symbol, after=after, limit=limit)
        headers = {}
        if page.next_after is not None:
            headers["Link"] = f'<{_next_page(request, page.next_after)}>; rel="next"'
        if limit is None:  # everything, streamed as DuckDB writes it
            return StreamingResponse(page.chunks, media_type="application/json", headers=headers)
        return Response(b"".join(page.chunks), media_type="application/json", headers=headers)

    @app.get(
        "/order/{order_id}",
        summary="One order",
        response_model=None,
        responses={**_ok(OrderOut, "the order"), **_refusals(404, 422)},
    )
    def get_order(order_id: OrderId) -> Response:
        return _json(gw().get(order_id).to_dict())

    @app.get(
        "/order/{order_id}/events",
        summary="The order's audit log, oldest first (refused commands included)",
        response_model=None,
        responses={**_ok(list[EventOut], "the events"), **_refusals(404, 422)},
    )
    def order_events(order_id: OrderId) -> Response:
        return _json([e.to_dict() for e in gw().events(order_id)])

    @app.get(
        "/events",
        summary="The whole audit log, oldest first (an extension: what gw.events() returns)",
        response_model=None,
        responses={**_ok(list[EventOut], "the events"), **_refusals()},
    )
    def all_events() -> Response:
        return _json([e.to_dict() for e in gw().events()])

    @app.post(
        "/sql",
        summary="Read-only SQL over the book (an extension): one SELECT, time-limited",
        description='The body is `{"sql": "SELECT ...", "params": [...]}` (`?` placeholders). '
        "Only one SELECT over the book's tables is run (orders, order_events, ...), on a read-only "
        "connection, cancelled past the server's time limit. The answer is JSON `{columns, types, rows}`, "
        "or Arrow IPC (a stream) with `Accept: application/vnd.apache.arrow.stream`. Anything that could "
        "write or reach files, the network or other databases is 400 SQL_REFUSED and runs nothing.",
        response_model=None,
        responses={
            **_ok(SqlOut, "the rows (or an Arrow IPC stream)"),
            400: {"model": ErrorBody, "description": "SQL_REFUSED, SQL_ERROR, SQL_TIMEOUT or SQL_TOO_LARGE"},
            **_refusals(415, 422),
        },
        openapi_extra=_body(SQL_BODY, True),
    )
    async def run_sql(request: Request) -> Response:
        _check_no_query(request)
        raw = await _read_body(request)
        if raw:
            _check_json_media_type(request)
        query, params = _sql_request(_object(_parse_body(raw), required=True))
        gateway = gw()
        if not isinstance(gateway, SqlCapable):
            raise SqlRefused("this server's book offers no SQL")
        table = await run_in_threadpool(gateway.sql_arrow, query, params)
        if ARROW_STREAM in request.headers.get("accept", ""):
            return Response(_arrow_stream(table), media_type=ARROW_STREAM)
        return _json(_sql_json(table))

    app.add_middleware(_CommandLane, run=run_command)
    app.add_middleware(_Guard, token=token, holder=holder)  # added last: runs first
    return app


def _allowed_methods(app: FastAPI, scope: Scope) -> str:
    """Every method some route takes on this path (HEAD wherever GET is), for ``Allow``."""
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches({**scope, "method": "GET"})
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


async def _head_as_get(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """HEAD on a GET route: the GET's status and headers, no body."""

    async def headers_only(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    await app({**scope, "method": "GET"}, receive, headers_only)


# The four command routes with a plain order id (1 to MAX_ORDER_ID, no sign, no leading
# zero): exactly the requests FastAPI would route to a command endpoint with that id.
_COMMAND_PATH = re.compile(r"/order(?:/([1-9][0-9]{0,18})(/execute)?)?")
_COMMAND_ROUTES = {
    ("POST", False, False): Action.CREATE,
    ("PUT", True, False): Action.MODIFY,
    ("DELETE", True, False): Action.CANCEL,
    ("POST", True, True): Action.EXECUTE,
}


class _CommandLane:
    """Pure ASGI middleware: a command request with a plain order id goes straight to
    ``run_command`` -- the function the command endpoints call -- without FastAPI's
    routing and parameter machinery, which cost ~0.15 ms a request (a sixth of a
    one-client round trip, measured with benchmarks/http_bench.py). Anything else (an
    odd id such as ``/order/abc``, another route) goes on to FastAPI, which also keeps
    documenting these routes in /docs. Errors take the one error shape."""

    def __init__(self, app: ASGIApp, *, run: Callable[[Action, int | None, Request], Awaitable[Response]]) -> None:
        self.app, self.run = app, run

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        action, order_id = _command_route(scope) if scope["type"] == "http" else (None, None)
        if action is None:
            await self.app(scope, receive, send)
            return
        try:
            response = await self.run(action, order_id, Request(scope, receive))
        except OMSError as err:
            response = error_response(err)
        await response(scope, receive, send)


def _command_route(scope: Scope) -> tuple[Action | None, int | None]:
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root + "/"):  # mounted, or behind --root-path: as Starlette routes
        path = path[len(root) :]
    match = _COMMAND_PATH.fullmatch(path)
    if match is None:
        return None, None
    digits, execute = match.groups()
    action = _COMMAND_ROUTES.get((scope["method"], digits is not None, execute is not None))
    order_id = int(digits) if digits else None
    if action is None or (order_id is not None and order_id > MAX_ORDER_ID):
        return None, None
    return action, order_id


def _socket_is_loopback(server: Any) -> bool | None:
    """Whether the socket a request arrived on is a loopback address; None when it is not
    an IP socket at all (a test client, a unix socket)."""
    if not server:
        return None
    try:
        return ipaddress.ip_address(str(server[0]).strip("[]")).is_loopback
    except ValueError:
        return None


def _is_exposed(server: Any) -> bool:
    """True when the socket a request arrived on is not a loopback address."""
    return _socket_is_loopback(server) is False


_HOST_PORT = re.compile(r"(\[[^\]]*\]|[^:\[\]]*)(?::[0-9]{1,5})?")


def _is_loopback_host(host: str) -> bool:
    """``127.0.0.1``, ``localhost``, ``[::1]``, with or without a port."""
    match = _HOST_PORT.fullmatch(host)
    return match is not None and is_loopback(match.group(1))


def _is_loopback_origin(origin: str) -> bool:
    scheme, sep, rest = origin.partition("://")
    return bool(sep) and scheme.lower() in ("http", "https") and _is_loopback_host(rest)


def _cross_site(scope: Scope) -> str | None:
    """Why a request to a loopback server without a token may come from a foreign web
    page -- a Host that is not a loopback name (DNS rebinding) or a foreign Origin (CSRF)
    -- or None. Jupyter refuses the same requests."""
    for name, value in scope["headers"]:
        if name == b"host" and not _is_loopback_host(value.decode("latin-1")):
            return f"Host {shown(value.decode('latin-1'))} is not a loopback name"
        if name == b"origin" and not _is_loopback_origin(value.decode("latin-1")):
            return f"Origin {shown(value.decode('latin-1'))} is not a loopback origin"
    return None


class _Guard:
    """Pure ASGI middleware: the bearer-token rule, cross-site refusals, and a one-line
    startup failure.

    Without a token, a request that arrived on a non-loopback address is refused (the
    server was bound beyond loopback with no token: ``oms serve`` refuses to start that
    way; ``uvicorn oms.api:app --host 0.0.0.0`` cannot be stopped from starting), and on
    loopback a request a foreign web page may have sent is refused (403 FORBIDDEN). It
    runs before the command lane and the routes, so both answer alike."""

    def __init__(self, app: ASGIApp, *, token: str | None, holder: dict[str, Any]) -> None:
        self.app, self.holder = app, holder
        self.expected = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] == "http" and b"%2f" in (scope.get("raw_path") or b"").lower():
            # An encoded "/" is part of a path segment, never a separator: /order%2F12 is
            # not /order/12 (the decoded path would route it there).
            raw = (scope.get("raw_path") or b"").decode("latin-1")
            await _plain_error(404, "NOT_FOUND", f"no route {scope['method']} {raw[:200]}")(scope, receive, send)
            return
        if scope["type"] == "http" and self.expected is None and _socket_is_loopback(scope.get("server")):
            why = _cross_site(scope)
            if why is not None:
                forbidden = Forbidden(f"refused a request that may come from another web site: {why}")
                await error_response(forbidden)(scope, receive, send)
                return
        if scope["type"] == "http" and not self._allowed(scope):
            if self.expected is None:
                err = Unauthorized(
                    f"this server is reachable on {scope['server'][0]} without a token: "
                    f"restart it with {TOKEN_ENV} set (or bind 127.0.0.1)"
                )
            else:
                err = Unauthorized("send the header 'Authorization: Bearer <token>' with the server's token")
            response = error_response(err)
            response.headers["WWW-Authenticate"] = "Bearer"
            await response(scope, receive, send)
            return
        if scope["type"] == "http" and scope["method"] == "HEAD":
            await _head_as_get(self.app, scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _allowed(self, scope: Scope) -> bool:
        if self.expected is None:
            return not _is_exposed(scope.get("server"))
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, credentials = value.strip().partition(b" ")
                # The scheme is case-insensitive (RFC 9110 11.1); the token is not.
                return scheme.lower() == b"bearer" and secrets.compare_digest(credentials.strip(), self.expected)
        return False

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_one_line(message: Message) -> None:
            err = self.holder.get("startup_error")
            if message["type"] == "lifespan.startup.failed" and err is not None:
                message = {**message, "message": str(err)}
            await send(message)

        try:
            await self.app(scope, receive, send_one_line)
        except OMSError:
            if self.holder.get("startup_error") is None:
                raise  # not ours: let the server report it


app = create_app()
"""For ``uvicorn oms.api:app``: the database from ``$OMS_DB``, opened at startup."""
