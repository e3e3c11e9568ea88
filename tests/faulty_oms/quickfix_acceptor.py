"""A third, independent FIX 4.4 order acceptor, built on QuickFIX's C++ engine (``quickfix-ssl``).

Written from DESIGN.md alone ("Lifecycle", "Orders and validation", "FIX 4.4 face") and
sharing no code with the ``oms`` package: QuickFIX runs the session (Logon, sequence
numbers, ResendRequest, session Rejects) with a FileStore, so sequence numbers and sent
messages survive a restart or kill -9; the order book is a sqlite file beside the store,
so orders survive too (ids from 1, increasing, never reused).

    python tests/faulty_oms/quickfix_acceptor.py --port N --db DIR [--sender OMS --target CLIENT]

DIR (created if missing) holds ``store/`` and ``log/`` (QuickFIX), ``book.sqlite`` (the
orders), ``acceptor.cfg`` and ``FIX44.xml`` (the wheel's data dictionary, with the
relaxations listed in RELAXED). Prints ``FIX listening on 127.0.0.1:N`` once accepting;
stops cleanly (Logout, then exit 0) on SIGTERM or SIGINT.

Two things this QuickFIX wheel (1.15.1) forces: its SocketAcceptor binds every interface (no
SocketAcceptHost), so 127.0.0.1:N is a small front piping to QuickFIX's internal port, and only
Logons that came through it can succeed (see LoopbackFront); and an exception raised in a
callback (fix.UnsupportedMessageType, fix.RejectLogon) aborts the process (std::terminate), so
fromApp never raises and writes its BusinessMessageReject itself.

Application mapping: D -> 8 (150=0 39=0, or 150=8 39=8 with 103 6/13/99 and 58);
G -> 8 (150=5 39=0) and F -> 8 (150=4 39=4), or 9 (434 2/1, 102 0/1/6/99, 39, 58);
H -> 8 (150=I, 17=0; unknown order 37=NONE 39=8 103=5). Any other application message
type -> BusinessMessageReject (35=j, 380=3); malformed messages -> QuickFIX's own session
Reject (35=3). There is no execute: FIX has no message for it, and this acceptor has no
other face, so orders never reach EXECUTED here.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import secrets
import signal
import socket
import sqlite3
import sys
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import quickfix as fix

# ---- the order rules (DESIGN "Lifecycle" and "Orders and validation") --------------------

NEW, MODIFIED, CANCELLED, EXECUTED = "NEW", "MODIFIED", "CANCELLED", "EXECUTED"
LIVE = frozenset({NEW})  # modify and cancel are allowed only while NEW
SIDES = {"1": "BUY", "2": "SELL"}
SIDE_TAG = {v: k for k, v in SIDES.items()}
ORD_TYPES = {"1": "MARKET", "2": "LIMIT"}
ORD_TYPE_TAG = {v: k for k, v in ORD_TYPES.items()}
ORD_STATUS = {NEW: "0", MODIFIED: "0", CANCELLED: "4", EXECUTED: "2"}  # FIX 4.4 reports MODIFIED as New
SYMBOL = re.compile(r"[A-Za-z0-9._-]{1,16}")
MAX_QUANTITY = 10**9
PRICE_LIMIT = Decimal(10) ** 12
PRICE_PLACES = 4

# ---- reason codes on this face --------------------------------------------------------------

REJ_DUPLICATE, REJ_QUANTITY, REJ_OTHER, REJ_UNKNOWN_ORDER = "6", "13", "99", "5"  # OrdRejReason (103)
CXL_TOO_LATE, CXL_UNKNOWN, CXL_DUPLICATE, CXL_OTHER = "0", "1", "6", "99"  # CxlRejReason (102)

# Body tags each message takes; any other body tag is refused, naming it (never ignored).
TAKES = {
    "D": {11, 55, 54, 38, 40, 44, 60},
    "G": {11, 41, 37, 55, 54, 38, 40, 44, 60},
    "F": {11, 41, 37, 55, 54, 38, 60},
    "H": {11, 37, 790, 55, 54},
}
TAG_NAMES = {11: "ClOrdID", 37: "OrderID", 38: "quantity", 40: "order_type", 41: "OrigClOrdID", 44: "price",
             54: "side", 55: "symbol", 60: "TransactTime", 790: "OrdStatusReqID"}  # fmt: skip
MSG_NAMES = {"D": "NewOrderSingle", "G": "OrderCancelReplaceRequest", "F": "OrderCancelRequest",
             "H": "OrderStatusRequest"}  # fmt: skip

# The wheel's FIX44.xml, relaxed where DESIGN asks less than FIX 4.4 does: G and F may name the
# order by OrderID (37) alone, and an OrderStatusRequest needs only the OrderID. (message, element)
RELAXED = [
    ("OrderCancelReplaceRequest", "field name='OrigClOrdID'"),
    ("OrderCancelRequest", "field name='OrigClOrdID'"),
    ("OrderStatusRequest", "field name='ClOrdID'"),
    ("OrderStatusRequest", "component name='Instrument'"),
    ("OrderStatusRequest", "field name='Side'"),
]


class Refused(Exception):
    """A command refused by the rules: ``reason`` is the FIX code, ``text`` goes to 58."""

    def __init__(self, reason: str, text: str, order: Order | None = None) -> None:
        super().__init__(text)
        self.reason, self.text, self.order = reason, text, order


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def fix_time(text: str) -> str:
    """ISO-8601 (as stored) -> FIX UTCTimestamp with milliseconds."""
    at = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    return at.strftime("%Y%m%d-%H:%M:%S.") + f"{at.microsecond // 1000:03d}"


def plain(value: Decimal) -> str:
    """A decimal as FIX writes it: no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return text


def check_quantity(raw: str | None) -> tuple[int | None, str | None]:
    if raw is None:
        return None, "quantity: required"
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value != value.to_integral_value() or not 1 <= value <= MAX_QUANTITY:
        return None, f"quantity: must be an integer from 1 to {MAX_QUANTITY} (got {raw})"
    return int(value), None


def check_price(raw: str) -> tuple[Decimal | None, str | None]:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or not 0 < value < PRICE_LIMIT:
        return None, f"price: must be greater than 0 and less than 10^12 (got {raw})"
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -PRICE_PLACES:
        return None, f"price: at most {PRICE_PLACES} decimal places (got {raw})"
    return value, None


def refusal_reason(errors: list[str]) -> str:
    return REJ_QUANTITY if all(e.startswith("quantity:") for e in errors) else REJ_OTHER


# ---- the book (sqlite beside the QuickFIX store) ----------------------------------------------

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    order_id INTEGER PRIMARY KEY AUTOINCREMENT,
    client_order_id TEXT NOT NULL UNIQUE,
    latest_clordid TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    order_type TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    price TEXT,
    status TEXT NOT NULL,
    version INTEGER NOT NULL,
    executed_quantity INTEGER NOT NULL DEFAULT 0,
    executed_price TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS clordids (
    clordid TEXT PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders(order_id)
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id INTEGER,
    action TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT,
    accepted INTEGER NOT NULL,
    reason TEXT,
    clordid TEXT,
    at TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Order:
    order_id: int
    client_order_id: str
    latest_clordid: str
    symbol: str
    side: str
    order_type: str
    quantity: int
    price: Decimal | None
    status: str
    version: int
    executed_quantity: int
    executed_price: Decimal | None
    created_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Order:
        values = dict(row)
        for name in ("price", "executed_price"):
            values[name] = Decimal(values[name]) if values[name] is not None else None
        return cls(**values)


class Book:
    """Orders, every accepted ClOrdID, and an append-only event log (which also numbers ExecIDs)."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self.lock = threading.Lock()

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def order(self, order_id: int) -> Order | None:
        row = self.db.execute("SELECT * FROM orders WHERE order_id = ?", (order_id,)).fetchone()
        return Order.from_row(row) if row else None

    def order_by_text(self, text: str) -> Order | None:
        """The order an OrderID (37) names, if it is one of ours."""
        return self.order(int(text)) if text.isdigit() and len(text) <= 18 else None

    def order_of(self, clordid: str) -> Order | None:
        row = self.db.execute("SELECT order_id FROM clordids WHERE clordid = ?", (clordid,)).fetchone()
        return self.order(row[0]) if row else None

    def event(self, order: Order | None, action: str, before: str | None, accepted: bool,
              reason: str | None, clordid: str | None, at: str) -> int:  # fmt: skip
        cur = self.db.execute(
            "INSERT INTO events (order_id, action, from_status, to_status, accepted, reason, clordid, at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (order.order_id if order else None, action, before, order.status if order and accepted else before,
             int(accepted), reason, clordid, at),
        )  # fmt: skip
        return int(cur.lastrowid or 0)


# ---- building reports --------------------------------------------------------------------------


def report(msg_type: str, fields: list[tuple[int, str]]) -> fix.Message:
    message = fix.Message()
    message.getHeader().setField(fix.BeginString(fix.BeginString_FIX44))
    message.getHeader().setField(fix.MsgType(msg_type))
    for tag, value in fields:
        message.setField(tag, value)
    return message


def execution_report(order: Order, exec_type: str, exec_id: str, clordid: str,
                     extra: tuple[tuple[int, str], ...] | list[tuple[int, str]] = ()) -> fix.Message:  # fmt: skip
    live = order.status in (NEW, MODIFIED)
    fields = [(37, str(order.order_id)), (11, clordid), *extra, (17, exec_id), (150, exec_type),
              (39, ORD_STATUS[order.status]), (55, order.symbol), (54, SIDE_TAG[order.side]),
              (40, ORD_TYPE_TAG[order.order_type]), (38, str(order.quantity))]  # fmt: skip
    if order.price is not None:
        fields.append((44, plain(order.price)))
    leaves = order.quantity - order.executed_quantity if live else 0
    avg = plain(order.executed_price) if order.executed_price is not None else "0"
    fields += [(151, str(leaves)), (14, str(order.executed_quantity)), (6, avg), (60, fix_time(order.updated_at))]
    return report("8", fields)


# ---- the application ---------------------------------------------------------------------------


def body_of(message: fix.Message) -> list[tuple[int, str]]:
    """The body's (tag, value) pairs in wire order (QuickFIX has already validated the framing)."""
    pairs = []
    for part in message.toString().split("\x01"):
        tag, sep, value = part.partition("=")
        if sep and tag.isdigit() and not (fix.Message.isHeaderField(int(tag)) or fix.Message.isTrailerField(int(tag))):
            pairs.append((int(tag), value))
    return pairs


class OrderAcceptor(fix.Application):  # type: ignore[misc]
    """The application of the session: D/G/F/H against the book, one reply each."""

    def __init__(self, book: Book) -> None:
        super().__init__()
        self.book = book

    # session callbacks
    def onCreate(self, session_id: Any) -> None:
        log(f"session {session_id} ready")

    def onLogon(self, session_id: Any) -> None:
        log(f"logon {session_id}")

    def onLogout(self, session_id: Any) -> None:
        log(f"logout {session_id}")

    def toAdmin(self, message: Any, session_id: Any) -> None:
        pass

    def fromAdmin(self, message: Any, session_id: Any) -> None:
        pass  # a Logon without the front's Password (554) fails the data dictionary: never answered

    def toApp(self, message: Any, session_id: Any) -> None:
        pass

    def fromApp(self, message: Any, session_id: Any) -> None:
        # Never raise here: an exception (even fix.UnsupportedMessageType) thrown back through this
        # wheel's SWIG director ends in std::terminate, killing the process.
        try:
            header = message.getHeader()
            msg_type, seq = header.getField(35), header.getField(34)
            handler = {"D": self.new_order, "G": self.replace, "F": self.cancel, "H": self.status}.get(msg_type)
            if handler is None:
                reply = report("j", [(45, seq), (372, msg_type), (380, "3"),
                                     (58, f"unsupported message type {msg_type}")])  # fmt: skip
            else:
                body = body_of(message)
                try:
                    reply = handler(dict(body), [t for t, _ in body], msg_type)
                except Exception:
                    traceback.print_exc(file=sys.stderr)
                    reply = self.failure(msg_type, dict(body))
            fix.Session.sendToTarget(reply, session_id)
        except Exception:
            traceback.print_exc(file=sys.stderr)

    # one handler per message type: (fields, tags in order, msg type) -> the reply
    def new_order(self, f: dict[int, str], tags: list[int], msg_type: str) -> fix.Message:
        clordid = f[11]
        at = iso(utc_now())
        errors = unsupported(tags, msg_type)
        symbol = f.get(55)
        if symbol is None:
            errors.append("symbol: required")
        elif not SYMBOL.fullmatch(symbol):
            errors.append(f"symbol: 1-16 letters, digits or . - _ (got {symbol!r})")
        side = SIDES.get(f.get(54, ""))
        if side is None:
            errors.append(f"side: must be 1 (BUY) or 2 (SELL) (got {f.get(54)})")
        order_type = ORD_TYPES.get(f.get(40, ""))
        if order_type is None:
            errors.append(f"order_type: must be 1 (MARKET) or 2 (LIMIT) (got {f.get(40)})")
        quantity, problem = check_quantity(f.get(38))
        errors += [problem] if problem else []
        price: Decimal | None = None
        if order_type == "MARKET" and 44 in f:
            errors.append("price: must be absent for a MARKET order")
        elif order_type == "LIMIT":
            if 44 not in f:
                errors.append("price: required for a LIMIT order")
            else:
                price, problem = check_price(f[44])
                errors += [problem] if problem else []
        with self.book.transaction():
            reason = refusal_reason(errors) if errors else None
            if not errors and (taken := self.book.order_of(clordid)) is not None:
                reason = REJ_DUPLICATE
                errors = [f"client_order_id {clordid!r} is already used (order {taken.order_id})"]
            if reason is not None:
                exec_id = self.book.event(None, "create", None, False, reason, clordid, at)
                fields = [(37, "NONE"), (11, clordid), (17, str(exec_id)), (150, "8"), (39, "8"), (103, reason),
                          (58, "; ".join(errors))]  # fmt: skip
                fields += [(t, f[t]) for t in (55, 54, 40, 38, 44) if t in f]
                fields += [(151, "0"), (14, "0"), (6, "0"), (60, fix_time(at))]
                return report("8", fields)
            assert symbol and side and order_type and quantity
            cur = self.book.db.execute(
                "INSERT INTO orders (client_order_id, latest_clordid, symbol, side, order_type, quantity, price,"
                " status, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
                (clordid, clordid, symbol.upper(), side, order_type, quantity, str(price) if price else None, NEW,
                 at, at),
            )  # fmt: skip
            order = self.book.order(int(cur.lastrowid or 0))
            assert order is not None
            self.book.db.execute("INSERT INTO clordids VALUES (?, ?)", (clordid, order.order_id))
            exec_id = self.book.event(order, "create", None, True, None, clordid, at)
        return execution_report(order, "0", str(exec_id), clordid)

    def locate(self, f: dict[int, str]) -> Order:
        """The order a G/F/H names: 37 OrderID and/or 41 OrigClOrdID (the latest accepted ClOrdID)."""
        by_id = by_clordid = None
        if 37 in f:
            by_id = self.book.order_by_text(f[37])
            if by_id is None:
                raise Refused(CXL_UNKNOWN, f"order {f[37]} does not exist")
        if 41 in f:
            by_clordid = self.book.order_of(f[41])
            if by_clordid is None:
                raise Refused(CXL_UNKNOWN, f"OrigClOrdID {f[41]!r} names no order")
        if by_id is None and by_clordid is None:
            raise Refused(CXL_OTHER, "OrigClOrdID: required (or OrderID)")
        order = by_id or by_clordid
        assert order is not None
        if by_id and by_clordid and by_id.order_id != by_clordid.order_id:
            raise Refused(CXL_OTHER, f"OrigClOrdID {f[41]!r} is order {by_clordid.order_id}, not order {f[37]}")
        if 41 in f and f[41] != order.latest_clordid:
            raise Refused(CXL_OTHER, f"OrigClOrdID: {f[41]!r} is not the latest ClOrdID of order {order.order_id}"
                                     f" ({order.latest_clordid!r})", order)  # fmt: skip
        return order

    def change(self, f: dict[int, str], tags: list[int], msg_type: str) -> fix.Message:
        """G (modify) and F (cancel): the same lookup, checks and refusal."""
        action = "modify" if msg_type == "G" else "cancel"
        at = iso(utc_now())
        order: Order | None = None
        with self.book.transaction():
            try:
                order = self.locate(f)
                errors = unsupported(tags, msg_type)
                if 55 in f and f[55].upper() != order.symbol:
                    errors.append(f"symbol: cannot change (order {order.order_id} is {order.symbol})")
                if 54 in f and SIDES.get(f[54]) != order.side:
                    errors.append(f"side: cannot change (order {order.order_id} is {order.side})")
                quantity, price = order.quantity, order.price
                if msg_type == "F":
                    if 38 in f and check_quantity(f[38])[0] != order.quantity:
                        errors.append(f"quantity: {f[38]} is not the order's quantity ({order.quantity})")
                else:
                    if 40 in f and ORD_TYPES.get(f[40]) != order.order_type:
                        errors.append(f"order_type: cannot change (order {order.order_id} is {order.order_type})")
                    if 38 not in f and 44 not in f:
                        errors.append("body: modify needs quantity and/or price")
                    if 38 in f:
                        new_quantity, problem = check_quantity(f[38])
                        errors += [problem] if problem else []
                        quantity = new_quantity or quantity
                    if 44 in f and order.order_type == "MARKET":
                        errors.append("price: must be absent for a MARKET order")
                    elif 44 in f:
                        new_price, problem = check_price(f[44])
                        errors += [problem] if problem else []
                        price = new_price or price
                if errors:
                    raise Refused(CXL_OTHER, "; ".join(errors), order)
                if order.status not in LIVE:
                    raise Refused(CXL_TOO_LATE, f"cannot {action} an order in status {order.status}", order)
                if self.book.order_of(f[11]) is not None:
                    raise Refused(CXL_DUPLICATE, f"ClOrdID {f[11]!r} is already used", order)
            except Refused as refusal:
                order = refusal.order or order
                before = order.status if order else None
                self.book.event(order, action, before, False, refusal.reason, f[11], at)
                status = ORD_STATUS[order.status] if order else "8"
                orig = f.get(41) or (order.latest_clordid if order else "NONE")
                return report("9", [(37, str(order.order_id) if order else "NONE"), (11, f[11]), (41, orig),
                                    (39, status), (434, "2" if msg_type == "G" else "1"), (102, refusal.reason),
                                    (58, refusal.text), (60, fix_time(at))])  # fmt: skip
            status = MODIFIED if msg_type == "G" else CANCELLED
            self.book.db.execute(
                "UPDATE orders SET quantity = ?, price = ?, status = ?, version = version + 1, latest_clordid = ?,"
                " updated_at = ? WHERE order_id = ?",
                (quantity, str(price) if price is not None else None, status, f[11], at, order.order_id),
            )
            self.book.db.execute("INSERT INTO clordids VALUES (?, ?)", (f[11], order.order_id))
            before, orig = order.status, order.latest_clordid
            order = self.book.order(order.order_id)
            assert order is not None
            exec_id = self.book.event(order, action, before, True, None, f[11], at)
        return execution_report(order, "5" if msg_type == "G" else "4", str(exec_id), f[11], [(41, orig)])

    replace = change
    cancel = change

    def status(self, f: dict[int, str], tags: list[int], msg_type: str) -> fix.Message:
        """H: the order named by 37 (or, without 37, by any ClOrdID it was entered or changed with)."""
        echo = [(790, f[790])] if 790 in f else []
        errors = unsupported(tags, msg_type)
        order = None
        if errors:
            reason = REJ_OTHER
        elif 37 in f:
            order = self.book.order_by_text(f[37])
            reason, errors = REJ_UNKNOWN_ORDER, [f"order {f[37]} does not exist"]
        elif 11 in f:
            order = self.book.order_of(f[11])
            reason, errors = REJ_UNKNOWN_ORDER, [f"ClOrdID {f[11]!r} names no order"]
        else:
            reason, errors = REJ_OTHER, ["OrderID: required (or ClOrdID)"]
        if order is None:
            fields = [(37, "NONE"), (11, f.get(11, "NONE")), *echo, (17, "0"), (150, "I"), (39, "8"),
                      (103, reason), (58, "; ".join(errors))]  # fmt: skip
            fields += [(t, f[t]) for t in (55, 54) if t in f]
            return report("8", [*fields, (151, "0"), (14, "0"), (6, "0"), (60, fix_time(iso(utc_now())))])
        return execution_report(order, "I", "0", f.get(11, order.latest_clordid), echo)

    def failure(self, msg_type: str, f: dict[int, str]) -> fix.Message:
        """The answer when this acceptor itself failed (logged on stderr; nothing was changed)."""
        text = "internal error: nothing was changed"
        if msg_type in ("G", "F"):
            fields = [(37, f.get(37, "NONE")), (11, f.get(11, "NONE")), (41, f.get(41, "NONE")), (39, "8")]
            return report("9", [*fields, (434, "2" if msg_type == "G" else "1"), (102, CXL_OTHER), (58, text)])
        exec_type = "8" if msg_type == "D" else "I"
        fields = [(37, "NONE"), (11, f.get(11, "NONE")), (17, "0"), (150, exec_type), (39, "8"), (103, REJ_OTHER)]
        return report("8", [*fields, (58, text), (54, f.get(54, "1")), (151, "0"), (14, "0"), (6, "0")])


def unsupported(tags: list[int], msg_type: str) -> list[str]:
    return [f"{tag}: not taken by {MSG_NAMES[msg_type]}" for tag in dict.fromkeys(tags) if tag not in TAKES[msg_type]]


# ---- the loopback front ------------------------------------------------------------------------
#
# QuickFIX 1.15.1 (C++) binds its acceptor to INADDR_ANY: it has no SocketAcceptHost (that is a
# QuickFIX/J setting; this wheel ignores it). So QuickFIX listens on an internal port and this
# front, bound to 127.0.0.1:PORT, pipes each connection to it, adding a per-process secret as
# Password (554) to the connection's first message; fromAdmin refuses a Logon without it. A
# connection that reaches the internal port from anywhere else cannot log on.

FRAME_START = re.compile(rb"8=FIX[^\x01]*\x019=(\d{1,6})\x01")
MAX_FIRST_MESSAGE = 65536  # bytes buffered while waiting for the Logon


def checksum(data: bytes) -> bytes:
    return b"10=%03d\x01" % (sum(data) % 256)


def with_password(frame: bytes, token: str) -> bytes:
    """A well-formed Logon frame with 554=token (replacing any 554); anything else unchanged."""
    head = FRAME_START.match(frame)
    if head is None or not frame.startswith(b"8=FIX.4.4\x01"):
        return frame
    end = head.end() + int(head.group(1))
    if frame[end:] != checksum(frame[:end]) or not frame[head.end() :].startswith(b"35=A\x01"):
        return frame  # garbled or not a Logon: QuickFIX ignores or refuses it as it is
    fields = [f for f in frame[head.end() : end].split(b"\x01") if f and not f.startswith(b"554=")]
    body = b"".join(f + b"\x01" for f in fields) + b"554=" + token.encode() + b"\x01"
    message = b"8=FIX.4.4\x019=%d\x01" % len(body) + body
    return message + checksum(message)


class LoopbackFront:
    """127.0.0.1:port, piped to QuickFIX's listener on 127.0.0.1:inner_port."""

    def __init__(self, port: int, inner_port: int, token: str) -> None:
        self.inner_port, self.token = inner_port, token
        self.server = socket.create_server(("127.0.0.1", port))
        self.thread = threading.Thread(target=self.serve, name="loopback-front", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.server.close()

    def serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self.connect, args=(client,), daemon=True).start()

    def connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.inner_port), timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
        back.start()
        pump(client, upstream, self.token)
        back.join()
        client.close()
        upstream.close()


def pump(src: socket.socket, dst: socket.socket, token: str | None = None) -> None:
    """Copy src to dst until EOF; with a token, frame by frame until a Logon has carried it."""
    pending = b""
    try:
        while data := src.recv(65536):
            if token is None:
                dst.sendall(data)
                continue
            pending += data
            while token is not None and (head := FRAME_START.match(pending)) is not None:
                end = head.end() + int(head.group(1)) + 7
                if len(pending) < end:
                    break
                frame, pending = pending[:end], pending[end:]
                rewritten = with_password(frame, token)
                dst.sendall(rewritten)
                if rewritten != frame:
                    token = None
            if token is None or (FRAME_START.match(pending) is None and len(pending) >= 32):
                dst.sendall(pending)  # the Logon is through, or this is no FIX: QuickFIX deals with it
                token, pending = None, b""
            elif len(pending) > MAX_FIRST_MESSAGE:
                dst.sendall(pending)
                token, pending = None, b""
    except OSError:
        pass
    for sock, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
        with contextlib.suppress(OSError):
            sock.shutdown(how)


# ---- configuration and process life ------------------------------------------------------------


def log(text: str) -> None:
    print(f"quickfix_acceptor: {text}", file=sys.stderr, flush=True)


def wheel_dictionary() -> Path:
    for base in (Path(sys.prefix), Path(sys.base_prefix)):
        candidate = base / "share" / "quickfix" / "FIX44.xml"
        if candidate.exists():
            return candidate
    raise SystemExit("quickfix_acceptor: FIX44.xml not found beside the quickfix wheel (<prefix>/share/quickfix)")


def dictionary(target: Path, token: str) -> Path:
    """The wheel's FIX44.xml with RELAXED made optional, and a Logon that must carry 554=token."""
    text = wheel_dictionary().read_text()

    def edit(text: str, start: int, end: int, old: str, new: str) -> str:
        block = text[start:end]
        if block.count(old) != 1:
            raise SystemExit(f"quickfix_acceptor: unexpected FIX44.xml: no single {old!r}")
        return text[:start] + block.replace(old, new) + text[end:]

    def message(name: str) -> tuple[int, int]:
        start = text.index(f"<message name='{name}'")
        return start, text.index("</message>", start)

    for name, element in RELAXED:
        text = edit(text, *message(name), f"<{element} required='Y'", f"<{element} required='N'")
    text = edit(text, *message("Logon"), "<field name='Password' required='N'", "<field name='Password' required='Y'")
    password = "<field number='554' name='Password' type='STRING' />"
    at = text.index(password)
    only_token = (
        f"<field number='554' name='Password' type='STRING'><value enum='{token}' description='FRONT' /></field>"
    )
    text = edit(text, at, at + len(password), password, only_token)
    target.write_text(text)
    target.chmod(0o600)
    return target


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def settings_file(directory: Path, port: int, sender: str, target: str, token: str) -> Path:
    config = directory / "acceptor.cfg"
    config.write_text(
        "\n".join([
            "[DEFAULT]",
            "ConnectionType=acceptor",
            f"SocketAcceptPort={port}",
            "SocketReuseAddress=Y",
            f"FileStorePath={directory / 'store'}",
            f"FileLogPath={directory / 'log'}",
            "NonStopSession=Y",
            "StartTime=00:00:00",
            "EndTime=00:00:00",
            "UseDataDictionary=Y",
            f"DataDictionary={dictionary(directory / 'FIX44.xml', token)}",
            "ValidateUserDefinedFields=Y",
            "ValidateFieldsOutOfOrder=Y",
            "ValidateFieldsHaveValues=Y",
            "AllowUnknownMsgFields=N",
            "ResetOnLogon=N",
            "ResetOnLogout=N",
            "ResetOnDisconnect=N",
            "PersistMessages=Y",
            "TimestampPrecision=3",
            "[SESSION]",
            "BeginString=FIX.4.4",
            f"SenderCompID={sender}",
            f"TargetCompID={target}",
            "",
        ])
    )  # fmt: skip
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A FIX 4.4 order acceptor on QuickFIX, with a sqlite book.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", type=Path, required=True, help="directory for the QuickFIX store, log and book")
    parser.add_argument("--sender", default="OMS", help="our SenderCompID")
    parser.add_argument("--target", default="CLIENT", help="the counterparty's CompID")
    args = parser.parse_args(argv)
    directory: Path = args.db.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    book = Book(directory / "book.sqlite")
    inner_port, token = free_loopback_port(), secrets.token_hex(16)
    settings = fix.SessionSettings(str(settings_file(directory, inner_port, args.sender, args.target, token)))
    app = OrderAcceptor(book)
    acceptor = fix.SocketAcceptor(app, fix.FileStoreFactory(settings), settings, fix.FileLogFactory(settings))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        front = LoopbackFront(args.port, inner_port, token)
        acceptor.start()
    except (OSError, fix.ConfigError, fix.RuntimeError) as e:
        log(f"cannot accept on 127.0.0.1:{args.port}: {e}")
        book.close()
        return 2
    front.start()
    print(f"FIX listening on 127.0.0.1:{args.port}", flush=True)
    try:
        while not stop.wait(0.2):
            pass
    finally:
        acceptor.stop()
        front.close()
        book.close()
        log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
