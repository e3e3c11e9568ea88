"""An independent, standard-library-only order-management server (the system under test).

Written from the contract in DESIGN.md alone ("Orders and validation", "Lifecycle",
"Persistence", "REST contract", tiers core + read + audit) -- no code shared with the
``oms`` package or the certification pack, so the pack is exercised against a second,
separately written implementation.

    python tests/faulty_oms/minimal_oms.py --db PATH --port PORT [--host 127.0.0.1] [--fault NAME]...
    python tests/faulty_oms/minimal_oms.py --list-faults
    ... --choice NAME...   (one of the choices DESIGN.md leaves open: CHOICES, --list-choices)
    ... --fix-port N [--fix-sender OMS] [--fix-target CLIENT]   (also the FIX 4.4 face: minimal_fix.py)

With no ``--fault`` the server follows DESIGN.md.  Each ``--fault NAME`` switches on one
deliberate defect that breaks exactly one rule of DESIGN.md (listed in ``FAULTS``), so a
certification run against it must fail on the cases about that rule and only those.

Endpoints: POST /order, PUT /order/{id}, DELETE /order/{id}, POST /order/{id}/execute,
GET /orders?status=&symbol=, GET /order/{id}, GET /order/{id}/events.  Nothing else.
With ``--fix-port N`` the same engine also accepts one FIX 4.4 session on 127.0.0.1:N
(0 picks a free port; the line "minimal_oms FIX listening on 127.0.0.1:PORT sender=.. target=.."
is printed on stdout and stderr); the ``fix-...`` faults break rules of that face.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import signal
import socket
import sqlite3
import sys
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote

# --------------------------------------------------------------------------------------
# Faults: name -> the one DESIGN.md rule it breaks.
# --------------------------------------------------------------------------------------

FAULTS: dict[str, str] = {
    # lifecycle table
    "cancel-modified": (
        "Lifecycle: MODIFIED x cancel must be refused (INVALID_TRANSITION); this accepts it and cancels the order."
    ),
    "modify-modified": (
        "Lifecycle: MODIFIED x modify must be refused (modify only while NEW); this accepts a second modify."
    ),
    "execute-cancelled": (
        "Lifecycle: CANCELLED is terminal, CANCELLED x execute must be refused; this executes a cancelled order."
    ),
    # validation bounds
    "quantity-int32-max": (
        "Validation: quantity is an integer 1..10^9; this checks against 2^31-1, so 10^9+1 is accepted."
    ),
    "quantity-zero": "Validation: quantity is an integer 1..10^9; this accepts quantity 0.",
    "price-zero": "Validation: 0 < price; this accepts price 0 (checks price >= 0).",
    "price-at-max": "Validation: price < 10^12; this accepts price 10^12 (checks price <= 10^12).",
    "price-8-decimals": (
        "Validation: price has at most 4 decimal places; this accepts up to 8 (so 5 decimal places pass)."
    ),
    "symbol-17-chars": "Validation: symbol is 1-16 chars; this accepts a 17-char symbol.",
    "symbol-16-refused": "Validation: symbol is 1-16 chars; this refuses a 16-char symbol (limit off by one, 15).",
    "market-with-price": (
        "Validation: price is forbidden (absent or null) for MARKET orders; this accepts and stores one."
    ),
    "duplicate-client-order-id": (
        "Orders: client_order_id is unique; this accepts a duplicate instead of 409 DUPLICATE_CLIENT_ORDER_ID."
    ),
    "ignore-unknown-fields": (
        "REST: a body field the command does not take is refused (422, naming it), never ignored; this ignores it."
    ),
    # limit comparison
    "buy-above-limit": (
        "Execute: a BUY fills at a price <= its limit; a BUY above its limit fills here (no PRICE_OUTSIDE_LIMIT)."
    ),
    "sell-at-limit-refused": (
        "Execute: a SELL fills at a price >= its limit; this refuses a SELL at exactly its limit (checks >)."
    ),
    # error shape and status codes
    "validation-400": (
        "REST: VALIDATION_ERROR is HTTP 422; this answers validation refusals with HTTP 400 (body unchanged)."
    ),
    "transition-422": "REST: INVALID_TRANSITION is HTTP 409; this answers it with HTTP 422 (body unchanged).",
    "notfound-flat": (
        'REST: every refusal is {"detail": {"code", "message"}}; ORDER_NOT_FOUND here is {"detail": "<text>"}.'
    ),
    "no-errors-list": 'REST: a 422 adds "errors", one {field, message} per bad field; this omits the errors list.',
    "create-200": "REST: POST /order answers 201; this answers 200.",
    "price-as-string": "REST: price/executed_price are JSON numbers; this writes them as JSON strings.",
    # audit trail
    "refusals-not-logged": (
        "Persistence: order_events also records refused commands (accepted=false, reason); only accepted ones here."
    ),
    "events-no-version": "REST: an accepted event carries the order's version after it; this omits version.",
    "events-newest-first": "REST: GET /order/{id}/events lists events oldest first; this lists them newest first.",
    # durability
    "lazy-commit": (
        "Persistence: acknowledged only after its commit; this acknowledges first and commits in the background "
        "every 100 ms, so kill -9 loses acknowledged commands."
    ),
    "forgets-on-restart": (
        "Persistence: orders persist in the --db file; this keeps the book in memory, so a restart forgets it."
    ),
    # races
    "racy-check-then-act": (
        "REST: concurrent commands on one order, exactly one wins; this reads, decides, sleeps, then writes unlocked."
    ),
    # timestamps
    "timestamps-no-millis": (
        "Orders: created_at/updated_at are UTC ISO-8601 with milliseconds; this drops the milliseconds."
    ),
    "timestamps-ist-offset": "Orders: timestamps are UTC ISO-8601 (Z); this writes local +05:30 times.",
    "modify-keeps-updated-at": (
        "Orders: updated_at moves on every accepted change; a modify here leaves updated_at unchanged."
    ),
    # filters
    "status-filter-ignored": (
        "REST: GET /orders?status= filters by status; this validates the status but returns all orders."
    ),
    "unknown-status-empty": "REST: GET /orders with a bad filter is 422; an unknown status here answers 200 [].",
    # FIX 4.4 face (--fix-port): each breaks one rule of DESIGN.md's FIX section or of FIX 4.4's session rules
    "fix-seq-reset-on-restart": (
        "FIX: sequence numbers and sent messages persist, so a restart resumes the session; "
        "here a restart starts at MsgSeqNum 1 both ways."
    ),
    "fix-no-fill-report": "FIX: an execute from any face sends 150=F to the session that entered the order; none here.",
    "fix-modified-39-5": "FIX: a modify is reported 150=5 with 39=0 (FIX 4.4 has no 39=5); this reports 39=5.",
    "fix-execid-reused": "FIX: every ExecutionReport has a unique 17 ExecID; here all reports of an order share one.",
    "fix-no-ordrejreason": "FIX: a refused create (150=8 39=8) carries 103 OrdRejReason (6/13/99); this omits 103.",
    "fix-cxlrej-wrong-status": (
        "FIX: 39 in an OrderCancelReject (35=9) is the order's current status; this always sends 39=8."
    ),
    "fix-unknown-order-37": "FIX: an OrderCancelReject for an unknown order has 37=NONE; this sends 37=UNKNOWN.",
    "fix-no-session-reject": (
        "FIX: a malformed message gets a session Reject (35=3) or BusinessMessageReject (35=j); this drops it silently."
    ),
    "fix-resend-no-possdup": "FIX: messages resent on a ResendRequest carry PossDupFlag 43=Y; here they lack it.",
    "fix-resend-admin": (
        "FIX: on a ResendRequest admin messages are replaced by SequenceReset-GapFill; here they are resent."
    ),
    "fix-low-seq-accepted": (
        "FIX: a too-low MsgSeqNum without PossDupFlag is answered with Logout; here the message is processed."
    ),
    "fix-garbled-rejected": "FIX: a garbled message (bad checksum) is ignored; here it gets a session Reject (35=3).",
    "fix-offline-reports-lost": (
        "FIX: reports for a logged-out session are stored and reach it after its next logon; here they are dropped."
    ),
    "fix-clordid-trimmed": "FIX: 11 ClOrdID is stored and echoed verbatim; here it is stripped of surrounding spaces.",
    "fix-fill-no-lastpx": "FIX: a fill report (150=F) carries 31 LastPx and 32 LastQty; here both are missing.",
    "fix-cumqty-wrong": "FIX: a fill report has 14 CumQty = filled quantity, 151 LeavesQty = 0; here 14=0, 151=qty.",
    "fix-cxlrej-no-41": (
        "FIX: every OrderCancelReject (35=9) carries 41 OrigClOrdID (FIX 4.4: required); here it lacks 41."
    ),
    "fix-report-41-new": (
        "FIX: a 150=5/150=4 answering a G/F has 41 = the ClOrdID it replaced; here 41 = the new ClOrdID (11)."
    ),
    "fix-status-39-new": (
        "FIX: a status report (150=I) carries the order's current 39 OrdStatus; here 39=0 even if cancelled/filled."
    ),
    "fix-unsolicited-old-price": (
        "FIX: an unsolicited 150=5 (a modify over HTTP) carries the new 44 Price; here the price before the modify."
    ),
    "fix-ordrej-13-for-all": (
        "FIX: 103=13 (incorrect quantity) only for a bad quantity, else 99; here 103=13 for every validation refusal."
    ),
    "fix-gapfill-high": "FIX: a GapFill's 36 NewSeqNo is the MsgSeqNum after the gap; here it is one too high.",
    "fix-resend-current-state": (
        "FIX: a resent ExecutionReport is the message as first sent; here it carries the order's current 39 OrdStatus."
    ),
    "fix-sent-not-persisted": (
        "FIX: sent messages persist: a ResendRequest after a restart resends them; here a restart forgets them."
    ),
    "fix-offline-twice": (
        "FIX: reports stored while logged out are sent once at the next logon; here twice (the copies: new 34, no 43)."
    ),
    "fix-http-orders-reported": (
        "FIX: only orders entered over FIX are reported to the session; here changes of HTTP orders are reported too."
    ),
    "fix-dup-vs-http": "FIX: a D reusing the client_order_id of an HTTP order is refused (103=6); here it is accepted.",
    "fix-possdup-reprocessed": (
        "FIX: a too-low MsgSeqNum with PossDupFlag 43=Y is a duplicate and ignored; here it is processed again."
    ),
    "fix-compid-not-checked": (
        "FIX: a Logon or message with a wrong SenderCompID/TargetCompID is refused; here any CompIDs are accepted."
    ),
    "fix-no-logout-ack": (
        "FIX: a Logout is answered with a Logout before disconnecting; here the connection is just closed."
    ),
    "fix-orig-not-advanced": (
        "FIX: 41 OrigClOrdID names the order's latest ClOrdID; here only the first one is found (chain not advanced)."
    ),
    "fix-clordid-reuse-accepted": (
        "FIX: a G/F whose 11 ClOrdID is already used is refused (35=9); here a replace reusing one is accepted."
    ),
    "fix-reject-no-372": "FIX: a session Reject (35=3) carries 372 RefMsgType; here it lacks 372.",
    "fix-bodylength-logout": (
        "FIX: a message with a wrong BodyLength is garbled and ignored; here it is answered with a Logout."
    ),
    "fix-reports-before-logon": (
        "FIX: the Logon answer comes first, then reports stored while logged out; here the reports come before it."
    ),
    "fix-seq-skip": "FIX: outgoing MsgSeqNums have no gaps; here every 7th message is followed by a skipped number.",
    # found by an audit of the pack against DESIGN.md (each missed before its case was written)
    "symbol-allows-plus": "Validation: symbol has letters/digits and . - _ only; this also accepts + and ,.",
    "market-price-zero-ignored": (
        "Validation: price is forbidden for MARKET; a falsy price (0) is taken as absent here."
    ),
    "errors-message-empty": "REST: a 422 errors entry is {field, message}; the message is empty here.",
    "malformed-body-not-logged": (
        "Persistence: refused commands are logged; here body-level refusals (bad JSON, unknown fields) are not."
    ),
    "refusal-bumps-updated-at": "REST: bad input never changes anything; a refused command here moves updated_at.",
    "orders-sorted-by-updated": "REST: GET /orders is sorted by order_id; here by updated_at.",
    "orders-sorted-as-text": "REST: GET /orders is sorted by order_id; here as text ('10' < '9').",
    "symbol-filter-ignored-with-status": (
        "REST: status and symbol filters combine; with a status the symbol is ignored here."
    ),
    "per-action-lock": (
        "REST: concurrent commands on one order, exactly one wins; only commands of one action are serialized here."
    ),
    "execute-event-default-price-null": (
        "REST: an execute event carries executed_price; null here when the limit price was defaulted."
    ),
    "lazy-refusal-commit": (
        "Persistence: acknowledged after commit; refusals here are committed only with the next accepted command."
    ),
    "validation-message-generic": (
        "REST: the message names the field; VALIDATION_ERROR's message is 'invalid request' (errors still name them)."
    ),
    "coid-unique-per-symbol": "Orders: client_order_id is unique; here only per symbol.",
    "coid-number-500": "REST: bad input never yields a 500; a numeric client_order_id crashes the create.",
    "order-type-nonstring-500": "REST: bad input never yields a 500; a non-string order_type crashes the create.",
    "price-nonscalar-500": (
        "REST: bad input never yields a 500; a list/object price crashes (TypeError, not InvalidOperation)."
    ),
    "quantity-nonscalar-500": "REST: bad input never yields a 500; a list/object quantity crashes.",
    "symbol-leading-letter-required": (
        "Validation: a symbol is 1-16 letters/digits/.-_; here it must start with a letter (3MINDIA refused)."
    ),
    "limit-check-as-text": (
        "Execute: BUY <= limit, SELL >= limit, exact decimals; here compared as text ('99' > '100.5')."
    ),
    "timestamps-millis-000": (
        "Orders: timestamps carry milliseconds; here the milliseconds are always .000 (second precision)."
    ),
    "malformed-json-400": "REST: bad body is 422 VALIDATION_ERROR; malformed JSON here is HTTP 400 (body unchanged).",
    "racy-coid-check": (
        "Orders: client_order_id unique, also under concurrency; here the duplicate check runs outside the lock."
    ),
    "empty-body-500": "REST: bad input never yields a 500; a POST /order or PUT with an empty body crashes.",
    "execute-price-zero-ignored": (
        "Execute: a given price must be valid; price 0 (falsy) is taken as absent here, filling at the limit."
    ),
    "unknown-field-refusal-not-logged": (
        "Persistence: refused commands are logged; a command refused for an unknown body field is not."
    ),
    "refusal-moves-sequence": (
        "REST: bad input never changes anything; here a command on an unknown id moves the next id past it."
    ),
    "price-stored-as-real": (
        "Orders: prices are exact decimals end to end; here every price goes through a float (repr)."
    ),
}

CHOICES: dict[str, str] = {
    # name -> what DESIGN.md leaves open that this choice takes (never a fault: certified)
    # (DESIGN.md's "starts ids at 1 in a fresh database" is said of this project's engine,
    # under Determinism; the fields a system under test keeps say "integer, assigned, increasing")
    "ids-snowflake": "Orders: ids are 'assigned, increasing'; here clock milliseconds << 22 (sparse, near 2^63).",
    "ids-from-0": "Orders: ids are 'assigned, increasing'; here the first is 0.",
    "omit-nulls": "Order and event JSON leave out what is null (client_order_id, a MARKET price, from_status...).",
    "http-501": "A method outside the contract (PATCH) is 501 Not Implemented, as RFC 9110 and http.server say.",
    "clock-16ms": "Timestamps have milliseconds; here the clock ticks every 16 ms (as Windows' does), never forced on.",
    "errors-empty-for-body": "A 422 lists one entry per bad field: none when the body as a whole is bad (not JSON).",
    "unicode-symbols": "A symbol has 'letters/digits and .-_': here letters of any script (ÄPFEL).",
    "noop-modify-refused": "A modify to the values the order has is refused (422), after the lifecycle check.",
    "prose-messages": "VALIDATION_ERROR's message names the fields in prose ('Order type must be ...').",
    "dup-logged-on-owner": "A refused duplicate create is logged on the order that holds the client order id.",
}

# --------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------

STATUSES = ("NEW", "MODIFIED", "CANCELLED", "EXECUTED")
SIDES = ("BUY", "SELL")
ORDER_TYPES = ("LIMIT", "MARKET")
CREATE_FIELDS = ("client_order_id", "symbol", "side", "order_type", "quantity", "price")
MODIFY_FIELDS = ("quantity", "price")
EXECUTE_FIELDS = ("price",)
CANCEL_FIELDS: tuple[str, ...] = ()

# (status, action) -> new status; anything absent is refused with INVALID_TRANSITION.
TRANSITIONS = {
    ("NEW", "modify"): "MODIFIED",
    ("NEW", "cancel"): "CANCELLED",
    ("NEW", "execute"): "EXECUTED",
    ("MODIFIED", "execute"): "EXECUTED",
}

MAX_BODY = 1 << 20
SQLITE_MAX_INT = (1 << 63) - 1
SCHEMA_VERSION = 1
NUMERIC_STRING = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
SYMBOL_CHARS = re.compile(r"[A-Za-z0-9._-]+")
PATH_INT = re.compile(r"-?[0-9]+")
IST = timezone(timedelta(hours=5, minutes=30))


class Refusal(Exception):
    """A refused request: HTTP status, code, message and (for 422) the bad fields."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        errors: list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.headers = headers


def validation_error(errors: list[tuple[str, str]]) -> Refusal:
    message = "invalid request: " + "; ".join(f"{f}: {m}" for f, m in errors)
    return Refusal(422, "VALIDATION_ERROR", message, errors)


class Price(str):
    """A canonical decimal price, written into JSON as a number with its exact digits."""


def canonical_price(d: Decimal) -> Price:
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return Price(s)


def decimal_places(d: Decimal) -> int:
    """Decimal places of the value (trailing zeros do not count: 1.50000 has 1)."""
    _sign, digits, exp = d.as_tuple()
    if not isinstance(exp, int) or exp >= 0:
        return 0
    n = len(digits)
    while exp < 0 and n > 0 and digits[n - 1] == 0:
        n -= 1
        exp += 1
    return max(0, -exp)


class Rules:
    """Field validation, with the bounds the active faults bend."""

    def __init__(self, faults: set[str]) -> None:
        self.faults = faults
        self.qty_min = 0 if "quantity-zero" in faults else 1
        self.qty_max = 2**31 - 1 if "quantity-int32-max" in faults else 10**9
        self.symbol_max = 17 if "symbol-17-chars" in faults else 15 if "symbol-16-refused" in faults else 16
        self.price_places = 8 if "price-8-decimals" in faults else 4

    def quantity(self, v: object) -> tuple[int | None, str | None]:
        if "quantity-nonscalar-500" in self.faults and isinstance(v, (list, dict)):
            raise TypeError("quantity")  # FAULT quantity-nonscalar-500
        if isinstance(v, bool) or not isinstance(v, int):
            return None, "must be a JSON integer"
        if not self.qty_min <= v <= self.qty_max:
            return None, f"must be an integer from 1 to 1000000000, got {v}"
        return v, None

    def price(self, v: object) -> tuple[Price | None, str | None]:
        if "price-nonscalar-500" in self.faults and isinstance(v, (list, dict)):
            Decimal(v)  # FAULT price-nonscalar-500: TypeError escapes
        if isinstance(v, bool):
            return None, "must be a decimal number"
        if isinstance(v, int):
            d = Decimal(v)
        elif isinstance(v, Decimal):
            d = v
        elif isinstance(v, str):
            if not NUMERIC_STRING.fullmatch(v):
                return None, "must be a decimal number"
            try:
                d = Decimal(v)
            except InvalidOperation:
                return None, "must be a decimal number"
        else:
            return None, "must be a decimal number"
        if not d.is_finite():
            return None, "must be a finite decimal number"
        low_ok = d >= 0 if "price-zero" in self.faults else d > 0
        high_ok = d <= 10**12 if "price-at-max" in self.faults else d < 10**12
        if not (low_ok and high_ok):
            return None, "must be greater than 0 and less than 1000000000000"
        if decimal_places(d) > self.price_places:
            return None, "must have at most 4 decimal places"
        if "price-stored-as-real" in self.faults:
            d = Decimal(repr(float(d)))  # FAULT price-stored-as-real
        return canonical_price(d), None

    def symbol(self, v: object) -> tuple[str | None, str | None]:
        if not isinstance(v, str):
            return None, "must be a string"
        if not 1 <= len(v) <= self.symbol_max:
            return None, "must be 1 to 16 characters"
        chars = re.compile(r"[A-Za-z0-9._+,-]+") if "symbol-allows-plus" in self.faults else SYMBOL_CHARS
        if "symbol-leading-letter-required" in self.faults:
            chars = re.compile(r"[A-Za-z][A-Za-z0-9._-]*")  # FAULT symbol-leading-letter-required
        if "unicode-symbols" in self.faults:
            return (v.upper(), None) if all(c.isalnum() or c in "._-" for c in v) else (None, "bad characters")
        if not chars.fullmatch(v):
            return None, "may contain only letters, digits and . - _"
        return v.upper(), None


# --------------------------------------------------------------------------------------
# Clock: UTC milliseconds, strictly increasing so updated_at always moves.
# --------------------------------------------------------------------------------------


class Clock:
    def __init__(self, last_ms: int = 0, *, coarse: bool = False) -> None:
        self.last_ms = last_ms
        self.coarse = coarse

    def next(self) -> int:
        now = time.time_ns() // 1_000_000
        if self.coarse:  # choice clock-16ms: a 16 ms tick, two events may share it
            return now // 16 * 16
        self.last_ms = max(now, self.last_ms + 1)
        return self.last_ms


def format_ts(ms: int, faults: set[str]) -> str:
    sec, milli = divmod(ms, 1000)
    if "timestamps-ist-offset" in faults:
        dt = datetime.fromtimestamp(sec, IST)
        return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{milli:03d}+05:30"
    if "timestamps-millis-000" in faults:
        return datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S") + ".000Z"  # FAULT timestamps-millis-000
    dt = datetime.fromtimestamp(sec, UTC)
    if "timestamps-no-millis" in faults:
        return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{milli:03d}Z"


# --------------------------------------------------------------------------------------
# Store + engine
# --------------------------------------------------------------------------------------

SCHEMA = """
CREATE TABLE IF NOT EXISTS oms_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    order_id INTEGER PRIMARY KEY,
    client_order_id TEXT,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    order_type TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    price TEXT,
    status TEXT NOT NULL,
    version INTEGER NOT NULL,
    executed_quantity INTEGER NOT NULL,
    executed_price TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_client_order_id ON orders (client_order_id);
CREATE TABLE IF NOT EXISTS order_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id INTEGER,
    action TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT,
    accepted INTEGER NOT NULL,
    reason TEXT,
    at INTEGER NOT NULL,
    version INTEGER,
    quantity INTEGER,
    price TEXT,
    executed_quantity INTEGER,
    executed_price TEXT
);
CREATE INDEX IF NOT EXISTS order_events_order ON order_events (order_id, seq);
"""

ORDER_COLUMNS = (
    "order_id",
    "client_order_id",
    "symbol",
    "side",
    "order_type",
    "quantity",
    "price",
    "status",
    "version",
    "executed_quantity",
    "executed_price",
    "created_at",
    "updated_at",
)
EVENT_COLUMNS = (
    "seq",
    "order_id",
    "action",
    "from_status",
    "to_status",
    "accepted",
    "reason",
    "at",
    "version",
    "quantity",
    "price",
    "executed_quantity",
    "executed_price",
)


class StartupError(Exception):
    pass


class Engine:
    def __init__(self, db_path: str, faults: set[str]) -> None:
        self.faults = faults
        self.rules = Rules(faults)
        self.lock = threading.Lock()
        self.closed = False
        self.lazy = "lazy-commit" in faults
        self.racy = "racy-check-then-act" in faults
        self.in_txn = False
        path = ":memory:" if "forgets-on-restart" in faults else db_path
        try:
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
            if path != ":memory:":
                mode = self.db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StartupError(
                        f"{db_path}: could not switch the database to WAL mode "
                        f"(got {mode!r}); is the file on a filesystem that "
                        "supports it?"
                    )
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)
            row = self.db.execute("SELECT value FROM oms_meta WHERE key='schema_version'").fetchone()
            if row is None:
                self.db.execute("INSERT INTO oms_meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise StartupError(
                    f"{db_path}: schema version {row[0]} is newer than this "
                    f"server ({SCHEMA_VERSION}); use a newer server or a new --db file"
                )
            last = self.db.execute(
                "SELECT MAX(m) FROM (SELECT MAX(updated_at) AS m FROM orders "
                "UNION ALL SELECT MAX(at) FROM order_events)"
            ).fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise StartupError(
                f"{db_path}: cannot open as an OMS sqlite database ({exc}); "
                "point --db at a new file or at a file this server created"
            ) from exc
        self.clock = Clock(int(last or 0), coarse="clock-16ms" in faults)
        self.committer: threading.Thread | None = None
        # Other faces (the FIX face) hook in here: observers see each accepted command
        # inside its transaction; after_commit hooks run after such a transaction, off the lock.
        self.observers: list = []
        self.after_commit: list = []
        # The FIX face may exempt a client_order_id from the duplicate check (fault fix-dup-vs-http).
        self.dup_exempt = lambda coid: False
        self.changed = False
        if self.lazy:
            self.committer = threading.Thread(target=self._lazy_committer, daemon=True)
            self.committer.start()

    # ---- transactions ----------------------------------------------------------------

    def _begin(self) -> None:
        if "lazy-refusal-commit" in self.faults and self.db.in_transaction:
            return  # FAULT lazy-refusal-commit: the pending refusal rides on this transaction
        if self.lazy:
            if not self.in_txn:
                self.db.execute("BEGIN IMMEDIATE")
                self.in_txn = True
        else:
            self.db.execute("BEGIN IMMEDIATE")

    def _commit(self) -> None:
        if not self.lazy:  # lazy-commit: acknowledged now, committed later
            self.db.execute("COMMIT")

    def _rollback(self) -> None:
        if not self.lazy and self.db.in_transaction:
            self.db.execute("ROLLBACK")

    def _lazy_committer(self) -> None:
        while True:
            time.sleep(0.1)
            with self.lock:
                if self.closed:
                    return
                if self.in_txn:
                    self.db.execute("COMMIT")
                    self.in_txn = False

    def _txn(self, fn):
        """Run fn inside one transaction under the lock; a Refusal raised by fn is
        committed too (its audit event), anything else rolls back."""
        notify = False
        try:
            with self.lock:
                self._check_open()
                self._begin()
                self.changed = False
                try:
                    result = fn()
                except Refusal:
                    if "lazy-refusal-commit" not in self.faults:
                        self._commit()
                    raise
                except BaseException:
                    self._rollback()
                    raise
                self._commit()
                notify = self.changed
                return result
        finally:
            if notify:
                for hook in self.after_commit:
                    hook()

    def transaction(self, fn):
        """fn inside one transaction under the engine lock (used by the FIX face)."""
        return self._txn(fn)

    def _observe(self, action: str, before: dict | None, after: dict) -> None:
        for observer in self.observers:
            observer(action, before, after)
        self.changed = True

    def _check_open(self) -> None:
        if self.closed:
            raise Refusal(503, "SERVICE_UNAVAILABLE", "the server is shutting down")

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            if self.in_txn:
                self.db.execute("COMMIT")
                self.in_txn = False
            if self.db.in_transaction:
                self.db.execute("COMMIT")
            self.closed = True
            self.db.close()

    # ---- rows ------------------------------------------------------------------------

    def _load(self, order_id: int) -> dict | None:
        row = self.db.execute(f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders WHERE order_id=?", (order_id,)).fetchone()
        return dict(zip(ORDER_COLUMNS, row, strict=True)) if row else None

    def _load_or_404(self, order_id: int) -> dict:
        lowest = 0 if "ids-from-0" in self.faults else 1
        order = self._load(order_id) if lowest <= order_id <= SQLITE_MAX_INT else None
        if order is None and "refusal-moves-sequence" in self.faults and order_id < SQLITE_MAX_INT:
            self.id_floor = max(getattr(self, "id_floor", 0), order_id + 1)  # FAULT refusal-moves-sequence
        if order is None:
            raise Refusal(404, "ORDER_NOT_FOUND", f"order {order_id} not found")
        return order

    def _append_event(self, order_id, action, from_status, to_status, accepted, reason, at, order: dict | None) -> None:
        version = quantity = price = exq = exp = None
        if order is not None:
            if accepted:
                version = order["version"]
            if action == "modify":
                quantity, price = order["quantity"], order["price"]
            if action == "execute":
                exq, exp = order["executed_quantity"], order["executed_price"]
                if accepted and order.get("_defaulted") and "execute-event-default-price-null" in self.faults:
                    exp = None  # FAULT execute-event-default-price-null
        self.db.execute(
            "INSERT INTO order_events (order_id, action, from_status, to_status, accepted, "
            "reason, at, version, quantity, price, executed_quantity, executed_price) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                order_id,
                action,
                from_status,
                to_status,
                1 if accepted else 0,
                reason,
                at,
                version,
                quantity,
                price,
                exq,
                exp,
            ),
        )

    def _log_refusal(self, order: dict | None, action: str, refusal: Refusal) -> None:
        if "refusals-not-logged" in self.faults:
            return
        self._append_event(
            order["order_id"] if order else None,
            action,
            order["status"] if order else None,
            None,
            False,
            refusal.code,
            self.clock.next(),
            order,
        )

    # ---- commands --------------------------------------------------------------------

    def create(self, body: object, body_error: Refusal | None = None) -> dict:
        def run() -> dict:
            try:
                if body_error is not None:
                    raise body_error
                fields = self._validate_create(body)
                coid = fields["client_order_id"]
                if (
                    coid is not None
                    and "duplicate-client-order-id" not in self.faults
                    and "racy-coid-check" not in self.faults
                    and not self.dup_exempt(coid)
                    and (
                        self.db.execute(
                            "SELECT 1 FROM orders WHERE client_order_id=? AND symbol=?", (coid, fields["symbol"])
                        ).fetchone()
                        if "coid-unique-per-symbol" in self.faults
                        else self.db.execute("SELECT 1 FROM orders WHERE client_order_id=?", (coid,)).fetchone()
                    )
                ):
                    raise Refusal(
                        409,
                        "DUPLICATE_CLIENT_ORDER_ID",
                        f"client_order_id {coid!r} is already used by another order",
                    )
            except Refusal as r:
                owner = None
                if r.code == "DUPLICATE_CLIENT_ORDER_ID" and "dup-logged-on-owner" in self.faults:
                    held = self.db.execute("SELECT order_id FROM orders WHERE client_order_id=?", (coid,)).fetchone()
                    owner = self._load(held[0]) if held else None
                self._log_refusal(owner, "create", r)
                raise
            now = self.clock.next()
            first = 0 if "ids-from-0" in self.faults else 1
            order_id = self.db.execute("SELECT COALESCE(MAX(order_id) + 1, ?) FROM orders", (first,)).fetchone()[0]
            order_id = max(order_id, getattr(self, "id_floor", 0))
            if "ids-snowflake" in self.faults:
                order_id = max(order_id, (time.time_ns() // 1_000_000) << 22)
            order = dict(
                order_id=order_id,
                status="NEW",
                version=1,
                executed_quantity=0,
                executed_price=None,
                created_at=now,
                updated_at=now,
                **fields,
            )
            self.db.execute(
                f"INSERT INTO orders ({', '.join(ORDER_COLUMNS)}) VALUES ({', '.join('?' * len(ORDER_COLUMNS))})",
                tuple(order[c] for c in ORDER_COLUMNS),
            )
            self._append_event(order_id, "create", None, "NEW", True, None, now, order)
            self._observe("create", None, order)
            return order

        if "racy-coid-check" in self.faults and isinstance(body, dict) and isinstance(body.get("client_order_id"), str):
            with self.lock:  # FAULT racy-coid-check: check, let go, then insert
                dup = self.db.execute(
                    "SELECT 1 FROM orders WHERE client_order_id=?", (body["client_order_id"],)
                ).fetchone()
            if dup:
                used = f"client_order_id {body['client_order_id']!r} is already used"
                r = Refusal(409, "DUPLICATE_CLIENT_ORDER_ID", used)
                with self.lock:
                    self._begin()
                    self._log_refusal(None, "create", r)
                    self._commit()
                raise r
            time.sleep(0.05)
        return self._txn(run)

    def command(self, action: str, order_id: int, body: object, body_error: Refusal | None = None) -> dict:
        """modify / cancel / execute on an existing order."""
        if self.racy:
            return self._racy_command(action, order_id, body, body_error)
        if "per-action-lock" in self.faults:  # FAULT per-action-lock
            per_action = {a: threading.Lock() for a in ("modify", "cancel", "execute")}
            locks = self.__dict__.setdefault("action_locks", per_action)
            with locks[action]:
                return self._racy_command(action, order_id, body, body_error)

        def run() -> dict:
            order = self._load_or_404(order_id)
            try:
                changes = self._decide(action, order, body, body_error)
            except Refusal as r:
                allowed = {"modify": MODIFY_FIELDS, "cancel": CANCEL_FIELDS, "execute": EXECUTE_FIELDS}[action]
                body_level = (
                    body_error is not None
                    or (body is not None and not isinstance(body, dict))
                    or (isinstance(body, dict) and any(k not in allowed for k in body))
                )
                if body_level and "malformed-body-not-logged" in self.faults:
                    raise  # FAULT malformed-body-not-logged
                if (
                    "unknown-field-refusal-not-logged" in self.faults
                    and isinstance(body, dict)
                    and any(k not in allowed for k in body)
                ):
                    raise  # FAULT unknown-field-refusal-not-logged
                self._log_refusal(order, action, r)
                if "refusal-bumps-updated-at" in self.faults:  # FAULT refusal-bumps-updated-at
                    self.db.execute("UPDATE orders SET updated_at=? WHERE order_id=?", (self.clock.next(), order_id))
                raise
            return self._apply(action, order, changes)

        return self._txn(run)

    def _racy_command(self, action: str, order_id: int, body: object, body_error: Refusal | None) -> dict:
        # FAULT racy-check-then-act: read and decide under one lock hold, write under
        # another, with a gap between: concurrent commands all see the old state.
        with self.lock:
            self._check_open()
            order = self._load_or_404(order_id)
        try:
            changes = self._decide(action, order, body, body_error)
        except Refusal as r:
            with self.lock:
                self._check_open()
                self._begin()
                self._log_refusal(order, action, r)
                self._commit()
            raise
        time.sleep(0.05)
        return self._txn(lambda: self._apply(action, order, changes))

    def _apply(self, action: str, order: dict, changes: dict) -> dict:
        now = self.clock.next()
        new = dict(order, **changes)
        new["version"] = order["version"] + 1
        if not (action == "modify" and "modify-keeps-updated-at" in self.faults):
            new["updated_at"] = now
        sets = [c for c in ORDER_COLUMNS if c not in ("order_id", "created_at")]
        self.db.execute(
            f"UPDATE orders SET {', '.join(c + '=?' for c in sets)} WHERE order_id=?",
            (*(new[c] for c in sets), order["order_id"]),
        )
        self._append_event(order["order_id"], action, order["status"], new["status"], True, None, now, new)
        self._observe(action, order, new)
        return new

    def _transition(self, action: str, status: str) -> str:
        extra = {}
        if "cancel-modified" in self.faults:
            extra[("MODIFIED", "cancel")] = "CANCELLED"
        if "modify-modified" in self.faults:
            extra[("MODIFIED", "modify")] = "MODIFIED"
        if "execute-cancelled" in self.faults:
            extra[("CANCELLED", "execute")] = "EXECUTED"
        to = TRANSITIONS.get((status, action)) or extra.get((status, action))
        if to is None:
            raise Refusal(409, "INVALID_TRANSITION", f"cannot {action} an order in status {status}")
        return to

    def _decide(self, action: str, order: dict, body: object, body_error: Refusal | None) -> dict:
        """Validate the body, check the transition, then the order-dependent rules;
        return the changed fields (version/updated_at are added by _apply)."""
        if body_error is not None:
            raise body_error
        allowed = {"modify": MODIFY_FIELDS, "cancel": CANCEL_FIELDS, "execute": EXECUTE_FIELDS}[action]
        if body is None:
            if action == "modify":
                raise validation_error([("body", "a JSON object with quantity and/or price is required")])
            body = {}
        if not isinstance(body, dict):
            raise validation_error([("body", "must be a JSON object")])
        errors = self._unknown_fields(body, allowed, action)
        quantity = price = None
        if action == "modify":
            if body.get("quantity") is not None:
                quantity, err = self.rules.quantity(body["quantity"])
                if err:
                    errors.append(("quantity", err))
            if body.get("price") is not None:
                price, err = self.rules.price(body["price"])
                if err:
                    errors.append(("price", err))
            if not errors and quantity is None and price is None:
                errors.append(("body", "modify takes quantity and/or price; neither was given"))
        elif action == "execute" and "execute-price-zero-ignored" in self.faults and not body.get("price"):
            pass  # FAULT execute-price-zero-ignored: `if body.get("price"):`
        elif action == "execute" and body.get("price") is not None:
            price, err = self.rules.price(body["price"])
            if err:
                errors.append(("price", err))
        if errors:
            raise validation_error(errors)

        to = self._transition(action, order["status"])

        if action == "modify":
            asked = [(f, v) for f, v in (("quantity", quantity), ("price", price)) if v is not None]
            if "noop-modify-refused" in self.faults and all(
                order[f] is not None and Decimal(str(v)) == Decimal(str(order[f])) for f, v in asked
            ):
                raise validation_error([(f, f"is already the order's {f}: nothing to modify") for f, _ in asked])
            changes: dict = {"status": to}
            if quantity is not None:
                changes["quantity"] = quantity
            if price is not None:
                if order["order_type"] == "MARKET" and "market-with-price" not in self.faults:
                    raise validation_error([("price", "is forbidden for MARKET orders")])
                changes["price"] = price
            return changes
        if action == "cancel":
            return {"status": to}
        # execute
        if order["order_type"] == "MARKET":
            if price is None:
                raise validation_error([("price", "is required to execute a MARKET order")])
        else:
            limit = Decimal(order["price"])
            if price is None:
                price = Price(order["price"])
                if "execute-event-default-price-null" in self.faults:
                    filled = {"executed_quantity": order["quantity"], "executed_price": price}
                    return {"status": to, **filled, "_defaulted": True}
            else:
                given = Decimal(price)
                if "limit-check-as-text" in self.faults:  # FAULT limit-check-as-text (TEXT columns compared)
                    given, limit = str(price), str(order["price"])  # type: ignore[assignment]
                if order["side"] == "BUY":
                    ok = True if "buy-above-limit" in self.faults else given <= limit
                    worse = "above"
                else:
                    ok = given > limit if "sell-at-limit-refused" in self.faults else given >= limit
                    worse = "below"
                if not ok:
                    raise Refusal(
                        409,
                        "PRICE_OUTSIDE_LIMIT",
                        f"execute price {price} is {worse} the {order['side']} limit "
                        f"{order['price']} of order {order['order_id']}",
                    )
        return {"status": to, "executed_quantity": order["quantity"], "executed_price": price}

    def _unknown_fields(self, body: dict, allowed: tuple[str, ...], action: str) -> list:
        if "ignore-unknown-fields" in self.faults:
            for k in [k for k in body if k not in allowed]:
                del body[k]
            return []
        takes = ", ".join(allowed) if allowed else "no fields"
        return [(k, f"unknown field; {action} takes {takes}") for k in body if k not in allowed]

    def _validate_create(self, body: object) -> dict:
        if not isinstance(body, dict):
            raise validation_error([("body", "a JSON object is required")])
        errors = self._unknown_fields(body, CREATE_FIELDS, "create")
        out: dict = {}
        coid = body.get("client_order_id")
        if "coid-number-500" in self.faults and isinstance(coid, (int, Decimal)) and not isinstance(coid, bool):
            coid.strip()  # FAULT coid-number-500: AttributeError escapes
        if coid is not None and not isinstance(coid, str):
            errors.append(("client_order_id", "must be a string"))
        out["client_order_id"] = coid
        if body.get("symbol") is None:
            errors.append(("symbol", "is required"))
        else:
            out["symbol"], err = self.rules.symbol(body["symbol"])
            if err:
                errors.append(("symbol", err))
        side = body.get("side")
        if side is None:
            errors.append(("side", "is required"))
        elif side not in SIDES:
            errors.append(("side", "must be BUY or SELL"))
        out["side"] = side
        order_type = body.get("order_type")
        if "order-type-nonstring-500" in self.faults and order_type is not None and not isinstance(order_type, str):
            order_type.upper()  # FAULT order-type-nonstring-500: AttributeError escapes
        if order_type is None:
            order_type = "LIMIT"
        elif order_type not in ORDER_TYPES:
            errors.append(("order_type", "must be LIMIT or MARKET"))
        out["order_type"] = order_type
        if body.get("quantity") is None:
            errors.append(("quantity", "is required"))
        else:
            out["quantity"], err = self.rules.quantity(body["quantity"])
            if err:
                errors.append(("quantity", err))
        price = body.get("price")
        if "market-price-zero-ignored" in self.faults:
            price = price or None  # FAULT market-price-zero-ignored: 0 is falsy
        out["price"] = None
        if order_type == "MARKET" and price is not None and "market-with-price" not in self.faults:
            errors.append(("price", "is forbidden for MARKET orders"))
        elif order_type == "LIMIT" and price is None:
            errors.append(("price", "is required for LIMIT orders"))
        elif price is not None:
            out["price"], err = self.rules.price(price)
            if err:
                errors.append(("price", err))
        if errors:
            raise validation_error(errors)
        return out

    # ---- reads -----------------------------------------------------------------------

    def get(self, order_id: int) -> dict:
        with self.lock:
            self._check_open()
            return self._load_or_404(order_id)

    def orders(self, query: list[tuple[str, str]]) -> list[dict]:
        errors = []
        status = symbol = None
        seen = set()
        for key, value in query:
            if key in seen:
                errors.append((key, "given more than once"))
                continue
            seen.add(key)
            if key not in ("status", "symbol"):
                errors.append((key, "unknown filter; GET /orders takes status and symbol"))
            elif value == "":
                continue  # "?status=&symbol=" means no filter
            elif key == "status":
                if value not in STATUSES:
                    if "unknown-status-empty" in self.faults:
                        return []
                    errors.append(("status", "must be one of NEW, MODIFIED, CANCELLED, EXECUTED"))
                else:
                    status = value
            elif key == "symbol":
                symbol, err = self.rules.symbol(value)
                if err:
                    errors.append(("symbol", err))
        if errors:
            raise validation_error(errors)
        if "status-filter-ignored" in self.faults:
            status = None
        sql = f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders WHERE 1=1"
        args: list = []
        if status is not None:
            sql += " AND status=?"
            args.append(status)
        if symbol is not None and not (status is not None and "symbol-filter-ignored-with-status" in self.faults):
            sql += " AND symbol=?"
            args.append(symbol)
        if "orders-sorted-by-updated" in self.faults:
            sql += " ORDER BY updated_at"  # FAULT orders-sorted-by-updated
        elif "orders-sorted-as-text" in self.faults:
            sql += " ORDER BY CAST(order_id AS TEXT)"  # FAULT orders-sorted-as-text
        else:
            sql += " ORDER BY order_id"
        with self.lock:
            self._check_open()
            return [dict(zip(ORDER_COLUMNS, r, strict=True)) for r in self.db.execute(sql, args).fetchall()]

    def events(self, order_id: int) -> list[dict]:
        order_by = "seq DESC" if "events-newest-first" in self.faults else "seq"
        with self.lock:
            self._check_open()
            self._load_or_404(order_id)
            rows = self.db.execute(
                f"SELECT {', '.join(EVENT_COLUMNS)} FROM order_events WHERE order_id=? ORDER BY {order_by}", (order_id,)
            ).fetchall()
        return [dict(zip(EVENT_COLUMNS, r, strict=True)) for r in rows]

    # ---- JSON views ------------------------------------------------------------------

    def order_json(self, o: dict) -> dict:
        out = self._order_json(o)
        if "omit-nulls" in self.faults:
            out = {k: v for k, v in out.items() if v is not None}
        return out

    def _order_json(self, o: dict) -> dict:
        return {
            "order_id": o["order_id"],
            "client_order_id": o["client_order_id"],
            "symbol": o["symbol"],
            "side": o["side"],
            "order_type": o["order_type"],
            "quantity": o["quantity"],
            "price": _price(o["price"]),
            "status": o["status"],
            "version": o["version"],
            "executed_quantity": o["executed_quantity"],
            "executed_price": _price(o["executed_price"]),
            "created_at": format_ts(o["created_at"], self.faults),
            "updated_at": format_ts(o["updated_at"], self.faults),
        }

    def event_json(self, e: dict) -> dict:
        out = {
            "seq": e["seq"],
            "order_id": e["order_id"],
            "action": e["action"],
            "from_status": e["from_status"],
            "to_status": e["to_status"],
            "accepted": bool(e["accepted"]),
            "reason": e["reason"],
            "at": format_ts(e["at"], self.faults),
        }
        if e["accepted"] and "events-no-version" not in self.faults:
            out["version"] = e["version"]
        if e["action"] == "modify":
            out["quantity"] = e["quantity"]
            out["price"] = _price(e["price"])
        if e["action"] == "execute":
            out["executed_quantity"] = e["executed_quantity"]
            out["executed_price"] = _price(e["executed_price"])
        if "omit-nulls" in self.faults:
            out = {k: v for k, v in out.items() if v is not None}
        return out


def _price(v: str | None) -> Price | None:
    return None if v is None else Price(v)


# --------------------------------------------------------------------------------------
# JSON in and out
# --------------------------------------------------------------------------------------


def _no_constants(name: str):
    raise ValueError(f"{name} is not valid JSON")


def parse_body(raw: bytes) -> object:
    """None for an empty body; otherwise the JSON value (numbers with a fraction or an
    exponent as exact Decimals); malformed JSON -> 422."""
    if not raw.strip():
        return None
    try:
        return json.loads(raw.decode("utf-8"), parse_float=Decimal, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, int limits
        raise validation_error([("body", f"malformed JSON ({str(exc)[:120]})")]) from None


def dump(o: object, price_as_string: bool) -> str:
    if o is None:
        return "null"
    if o is True:
        return "true"
    if o is False:
        return "false"
    if isinstance(o, Price):
        return json.dumps(str(o)) if price_as_string else str(o)
    if isinstance(o, str):
        return json.dumps(o)
    if isinstance(o, int):
        return str(o)
    if isinstance(o, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {dump(v, price_as_string)}" for k, v in o.items()) + "}"
    if isinstance(o, (list, tuple)):
        return "[" + ", ".join(dump(v, price_as_string) for v in o) + "]"
    raise TypeError(f"cannot write {type(o).__name__} as JSON")


# --------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------

ROUTE_METHODS = {  # route kind -> allowed methods
    "order": ("POST",),
    "orders": ("GET",),
    "order_id": ("GET", "PUT", "DELETE"),
    "execute": ("POST",),
    "events": ("GET",),
}


class BadFraming(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "minimal-oms/1.0"
    timeout = 120  # idle keep-alive connections are dropped after this
    engine: Engine  # set on the subclass made by serve()
    verbose = False
    core_only = False

    def version_string(self) -> str:
        return self.server_version

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # Every method, known or not, goes through dispatch (unknown ones get 404/405).
    def __getattr__(self, name: str):
        if name.startswith("do_"):
            return lambda: self.dispatch(name[3:])
        raise AttributeError(name)

    def log_message(self, format: str, *args: object) -> None:
        if self.verbose:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")

    # Errors raised by BaseHTTPRequestHandler itself (bad request line, headers too long,
    # bad HTTP version): the canonical shape, then close.
    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        self.close_connection = True
        text = message or self.responses.get(code, ("error",))[0]
        body = {"detail": {"code": "BAD_REQUEST" if code < 500 else "SERVER_ERROR", "message": text}}
        if self.request_version == "HTTP/0.9":  # answer a garbled request line with a status line
            self.request_version = "HTTP/1.0"
        with contextlib.suppress(OSError):
            self._send(code, body)

    def _send(self, status: int, obj: object, headers: dict | None = None) -> None:
        data = dump(obj, "price-as-string" in self.engine.faults).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        # Headers and body in one write (end_headers() would send them apart, and Nagle
        # plus delayed ACK would then add ~40 ms to every keep-alive request).
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(data)
        self.flush_headers()

    def _refuse(self, r: Refusal, headers: dict | None = None) -> None:
        faults = self.engine.faults
        status = r.status
        if r.code == "VALIDATION_ERROR" and "validation-400" in faults:
            status = 400
        if "malformed-json-400" in faults and r.errors and any("malformed JSON" in m for _f, m in r.errors):
            status = 400  # FAULT malformed-json-400
        if r.code == "INVALID_TRANSITION" and "transition-422" in faults:
            status = 422
        if r.code == "ORDER_NOT_FOUND" and "notfound-flat" in faults:
            self._send(status, {"detail": r.message}, headers)
            return
        message = r.message
        if r.code == "VALIDATION_ERROR" and "validation-message-generic" in faults:
            message = "invalid request"  # FAULT validation-message-generic
        detail: dict = {"code": r.code, "message": message}
        if r.code == "VALIDATION_ERROR" and r.errors and "prose-messages" in faults:
            detail["message"] = "; ".join(f"{f.replace('_', ' ').capitalize()} {m}" for f, m in r.errors)
        if r.errors is not None and "no-errors-list" not in faults:
            empty = "errors-message-empty" in faults  # FAULT errors-message-empty
            named = [(f, m) for f, m in r.errors if not (f == "body" and "errors-empty-for-body" in faults)]
            detail["errors"] = [{"field": f, "message": "" if empty else m} for f, m in named]
        self._send(status, {"detail": detail}, headers)

    def _read_body(self) -> bytes:
        te = self.headers.get("Transfer-Encoding")
        if te is not None:
            if te.strip().lower() != "chunked":
                raise BadFraming(501, f"Transfer-Encoding {te!r} is not supported")
            return self._read_chunked()
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            return b""
        if len(set(v.strip() for v in lengths)) != 1 or not re.fullmatch(r"[0-9]{1,12}", lengths[0].strip()):
            raise BadFraming(400, "invalid Content-Length header")
        n = int(lengths[0])
        if n > MAX_BODY:
            raise BadFraming(413, f"request body larger than {MAX_BODY} bytes")
        data = self.rfile.read(n) if n else b""
        if len(data) < n:
            raise BadFraming(400, "request body shorter than its Content-Length")
        return data

    def _read_chunked(self) -> bytes:
        data = bytearray()
        while True:
            line = self.rfile.readline(1024)
            size_text = line.split(b";", 1)[0].strip()
            if not re.fullmatch(rb"[0-9A-Fa-f]{1,8}", size_text):
                raise BadFraming(400, "malformed chunked body")
            size = int(size_text, 16)
            if size == 0:
                for _ in range(100):  # trailers
                    if self.rfile.readline(8192) in (b"\r\n", b"\n", b""):
                        break
                return bytes(data)
            if len(data) + size > MAX_BODY:
                raise BadFraming(413, f"request body larger than {MAX_BODY} bytes")
            chunk = self.rfile.read(size)
            if len(chunk) < size:
                raise BadFraming(400, "truncated chunked body")
            data += chunk
            self.rfile.readline(1024)

    def dispatch(self, method: str) -> None:
        if "http-501" in self.engine.faults and method not in ("GET", "POST", "PUT", "DELETE"):
            self.send_error(501, f"Unsupported method ({method!r})")
            return
        server = self.server
        assert isinstance(server, Server)
        if not server.enter():
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._refuse(Refusal(503, "SERVICE_UNAVAILABLE", "the server is shutting down"))
            return
        try:
            self._dispatch(method)
        finally:
            if server.stopping:
                self.close_connection = True
            server.leave()

    def _dispatch(self, method: str) -> None:
        try:
            try:
                raw = self._read_body()
            except BadFraming as exc:
                self.close_connection = True
                self._refuse(Refusal(exc.status, "BAD_REQUEST", exc.message))
                return
            try:
                self._route(method, raw)
            except Refusal as r:
                if r.status == 503:
                    self.close_connection = True
                self._refuse(r, r.headers)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # a bug, never bad input; keep the shape
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._refuse(Refusal(500, "INTERNAL_ERROR", f"internal error: {type(exc).__name__}"))
            if self.verbose:
                raise

    def _route(self, method: str, raw: bytes) -> None:
        target = self.path
        path, _, query = target.partition("?")
        path = path.split("#", 1)[0]
        parts = path.split("/")
        if parts[0] != "" or len(parts) < 2:
            raise Refusal(404, "NOT_FOUND", f"no such resource: {path}")
        segs = [unquote(p) for p in parts[1:]]
        kind = None
        id_text = None
        if segs == ["order"]:
            kind = "order"
        elif segs == ["orders"]:
            kind = "orders"
        elif len(segs) == 2 and segs[0] == "order" and segs[1] != "":
            kind, id_text = "order_id", segs[1]
        elif len(segs) == 3 and segs[0] == "order" and segs[1] != "" and segs[2] in ("execute", "events"):
            kind, id_text = segs[2], segs[1]
        if kind is None or (self.core_only and kind == "events"):
            raise Refusal(404, "NOT_FOUND", f"no such resource: {path}")
        allowed = ROUTE_METHODS[kind]
        if self.core_only and kind == "order_id":
            allowed = tuple(m for m in allowed if m != "GET")
        if method not in allowed:
            raise Refusal(
                405,
                "METHOD_NOT_ALLOWED",
                f"{method} is not allowed on {path}; allowed: {', '.join(allowed)}",
                headers={"Allow": ", ".join(allowed)},
            )

        eng = self.engine
        order_id = 0
        if id_text is not None:
            if not PATH_INT.fullmatch(id_text):
                raise validation_error([("order_id", f"must be a positive integer, got {id_text!r}")])
            order_id = int(id_text)

        creates_or_modifies = (kind, method) in (("order", "POST"), ("order_id", "PUT"))
        if "empty-body-500" in eng.faults and not raw.strip() and creates_or_modifies:
            json.loads(raw.decode())  # FAULT empty-body-500: JSONDecodeError escapes
        if kind == "orders":
            pairs = parse_qsl(query, keep_blank_values=True, max_num_fields=50) if query else []
            self._send(200, [eng.order_json(o) for o in eng.orders(pairs)])
        elif kind == "order":
            body, body_error = _parse_deferred(raw)
            order = eng.create(body, body_error)
            self._send(200 if "create-200" in eng.faults else 201, eng.order_json(order))
        elif kind == "order_id" and method == "GET":
            self._send(200, eng.order_json(eng.get(order_id)))
        elif kind == "events":
            self._send(200, [eng.event_json(e) for e in eng.events(order_id)])
        else:
            action = {"PUT": "modify", "DELETE": "cancel", "POST": "execute"}[method]
            body, body_error = _parse_deferred(raw)
            self._send(200, eng.order_json(eng.command(action, order_id, body, body_error)))


def _parse_deferred(raw: bytes) -> tuple[object, Refusal | None]:
    """The body, or the refusal for a malformed one -- raised by the engine only once the
    order is known to exist, so a malformed command on an existing order is audited."""
    try:
        return parse_body(raw), None
    except Refusal as r:
        return None, r


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[Handler]) -> None:
        super().__init__(address, handler)
        self.stopping = False
        self.active = 0
        self.idle = threading.Condition()

    def enter(self) -> bool:
        """Count a request in; False once shutting down (it is answered 503)."""
        with self.idle:
            if self.stopping:
                return False
            self.active += 1
            return True

    def leave(self) -> None:
        with self.idle:
            self.active -= 1
            self.idle.notify_all()

    def drain(self, timeout: float) -> None:
        """Refuse new requests, wait for those in flight to be answered."""
        with self.idle:
            self.stopping = True
            self.idle.wait_for(lambda: self.active == 0, timeout)

    def handle_error(self, request, client_address) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def serve(
    db: str,
    host: str,
    port: int,
    faults: set[str],
    verbose: bool = False,
    core_only: bool = False,
    fix: tuple[int, str, str] | None = None,
) -> int:
    """Serve HTTP; with fix = (port, sender, target) also the FIX 4.4 face on loopback."""
    try:
        engine = Engine(db, faults)
    except StartupError as exc:
        print(f"minimal_oms: {exc}", file=sys.stderr)
        return 2
    acceptor = None
    if fix is not None:
        import minimal_fix  # next to this file (run as a script); loaded only with --fix-port

        fix_port, sender, target = fix
        try:
            acceptor = minimal_fix.Acceptor(engine, Refusal, faults, sender, target, verbose)
            fix_host, fix_bound = acceptor.start(fix_port)
        except (OSError, sqlite3.DatabaseError) as exc:
            print(f"minimal_oms: cannot start the FIX face on 127.0.0.1:{fix_port}: {exc}", file=sys.stderr)
            engine.close()
            return 2
    handler = type("BoundHandler", (Handler,), {"engine": engine, "verbose": verbose, "core_only": core_only})
    try:
        server = Server((host, port), handler)
    except OSError as exc:
        print(f"minimal_oms: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        if acceptor is not None:
            acceptor.stop()
        engine.close()
        return 2

    stopping = threading.Event()

    def on_signal(signum, frame) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    bound = server.server_address
    broken, chosen = sorted(faults - CHOICES.keys()), sorted(faults & CHOICES.keys())
    fault_note = f" faults: {', '.join(broken)}" if broken else ""
    fault_note += f" choices: {', '.join(chosen)}" if chosen else ""
    if acceptor is not None:
        line = f"minimal_oms FIX listening on {fix_host}:{fix_bound} sender={sender} target={target}"
        print(line, flush=True)  # stdout, for a harness that asked for --fix-port 0
        print(line, file=sys.stderr, flush=True)
    print(f"minimal_oms listening on http://{bound[0]}:{bound[1]} db={db}{fault_note}", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()  # stop accepting connections
        server.drain(10.0)  # answer the requests in flight, refuse new ones with 503
        if acceptor is not None:
            acceptor.stop()  # before the engine closes
        engine.close()  # commits (lazy-commit) and closes the db
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Minimal independent OMS (REST tiers core+read+audit).")
    p.add_argument("--db", help="sqlite database file (created if absent)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME",
        help="switch on a deliberate defect (repeatable); see --list-faults",
    )
    p.add_argument("--list-faults", action="store_true", help="print the faults and exit")
    p.add_argument(
        "--choice",
        action="append",
        default=[],
        metavar="NAME",
        help="take one of the choices DESIGN.md leaves open (repeatable; never a fault); see --list-choices",
    )
    p.add_argument("--list-choices", action="store_true", help="print the choices and exit")
    p.add_argument(
        "--core-only",
        action="store_true",
        help="speak only the core tier (no GET /order/{id}: 405; no /order/{id}/events: 404) -- not a fault",
    )
    p.add_argument("--verbose", action="store_true", help="log requests to stderr")
    p.add_argument(
        "--fix-port",
        type=int,
        metavar="N",
        help="also accept FIX 4.4 sessions on 127.0.0.1:N (0: pick a free port and print it)",
    )
    p.add_argument("--fix-sender", default="OMS", help="our SenderCompID on the FIX face (default OMS)")
    p.add_argument("--fix-target", default="CLIENT", help="the counterparty's CompID on the FIX face (default CLIENT)")
    args = p.parse_args(argv)
    if args.list_faults:
        width = max(len(n) for n in FAULTS)
        for name, rule in FAULTS.items():
            print(f"{name:<{width}}  {rule}")
        return 0
    if args.list_choices:
        width = max(len(n) for n in CHOICES)
        for name, choice in CHOICES.items():
            print(f"{name:<{width}}  {choice}")
        return 0
    unknown = [f for f in args.fault if f not in FAULTS]
    if unknown:
        p.error(f"unknown fault(s): {', '.join(unknown)} (see --list-faults)")
    unknown = [c for c in args.choice if c not in CHOICES]
    if unknown:
        p.error(f"unknown choice(s): {', '.join(unknown)} (see --list-choices)")
    if not args.db:
        p.error("--db is required")
    fix = None if args.fix_port is None else (args.fix_port, args.fix_sender, args.fix_target)
    switches = set(args.fault) | set(args.choice)  # a choice is a switch like a fault, but breaks no rule
    return serve(args.db, args.host, args.port, switches, args.verbose, args.core_only, fix)


if __name__ == "__main__":
    sys.exit(main())
