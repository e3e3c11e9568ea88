"""The FIX 4.4 face of the independent minimal OMS (``minimal_oms.py --fix-port N``).

Written from DESIGN.md's section "FIX 4.4 face (same engine, same rules)" and FIX 4.4's
session rules alone -- nothing shared with the ``oms`` package.  Standard library only
(its own tag=value codec).  One acceptor on loopback for one session (our SenderCompID
``--fix-sender``, the counterparty's ``--fix-target``), driving the SAME ``Engine`` as the
HTTP face: a FIX order is created by ``Engine.create`` (same rules, same ids, same audit
log), and every accepted change of an order entered over FIX -- from any face -- is
reported to that session.

Persistence (same sqlite file and connection as the orders, under the engine's lock):

- ``fix_sessions``: the next incoming and outgoing MsgSeqNum of the session (a D/G/F that
  changes an order is counted in the same transaction as the change, so a kill -9 never
  leaves an order made by a message the session would ask to have resent);
- ``fix_sent``: every message sent, by MsgSeqNum (body + SendingTime), for ResendRequest;
- ``fix_pending``: reports not yet sent (written in the same transaction as the order
  change that caused them); sent, with fresh sequence numbers, as soon as the session is
  logged on -- so reports for a logged-out session reach it after its next Logon;
- ``fix_orders`` / ``fix_clordids``: the session that entered an order and its ClOrdIDs
  (the latest one is what OrigClOrdID must name), ``fix_meta``: the ExecID counter.

Faults (``--fault fix-...``, registered in minimal_oms.FAULTS) each break one FIX rule.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

SOH = b"\x01"
BEGIN_STRING = "FIX.4.4"
HEADER_START = b"8=FIX.4.4\x019="
FRAME_HEAD = re.compile(rb"8=FIX\.4\.4\x019=([0-9]{1,7})\x01")
TRAILER = re.compile(rb"10=([0-9]{3})\x01")
MAX_BODY = 64 * 1024
ADMIN_TYPES = frozenset({"0", "1", "2", "3", "4", "5", "A"})
FIX_FLOAT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
FIX_INT = re.compile(r"-?[0-9]+")
UTC_TIMESTAMP = re.compile(r"[0-9]{8}-[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?")
MSG_TYPE_SHAPE = re.compile(r"[0-9A-Za-z]{1,2}")
TICK = 0.1  # the session loop's poll interval (seconds)
LOGON_TIMEOUT = 10.0  # a connection that does not log on within this is dropped
SENDING_TIME_WINDOW = 120.0  # SendingTime accuracy (seconds)

# Engine status -> OrdStatus (39).  FIX 4.4 no longer uses 39=5: MODIFIED is New here.
ORD_STATUS = {"NEW": "0", "MODIFIED": "0", "CANCELLED": "4", "EXECUTED": "2"}
# Engine action -> ExecType (150) of the report of an accepted change.
EXEC_TYPE = {"create": "0", "modify": "5", "cancel": "4", "execute": "F"}
SIDE = {"1": "BUY", "2": "SELL"}
ORD_TYPE = {"1": "MARKET", "2": "LIMIT"}
SIDE_CODE = {v: k for k, v in SIDE.items()}
ORD_TYPE_CODE = {v: k for k, v in ORD_TYPE.items()}

# SessionRejectReason (373)
INVALID_TAG = 0
REQUIRED_TAG_MISSING = 1
TAG_WITHOUT_VALUE = 4
VALUE_INCORRECT = 5
INCORRECT_DATA_FORMAT = 6
COMPID_PROBLEM = 9
SENDING_TIME_PROBLEM = 10
INVALID_MSG_TYPE = 11

SCHEMA = """
CREATE TABLE IF NOT EXISTS fix_sessions (
    session TEXT PRIMARY KEY, next_in INTEGER NOT NULL, next_out INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS fix_sent (
    session TEXT NOT NULL, seq INTEGER NOT NULL, msg_type TEXT NOT NULL, body TEXT NOT NULL,
    sending_time TEXT NOT NULL, PRIMARY KEY (session, seq));
CREATE TABLE IF NOT EXISTS fix_pending (
    id INTEGER PRIMARY KEY AUTOINCREMENT, session TEXT NOT NULL, msg_type TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fix_orders (
    order_id INTEGER PRIMARY KEY, session TEXT, clordid TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS fix_orders_clordid ON fix_orders (clordid);
CREATE TABLE IF NOT EXISTS fix_clordids (clordid TEXT PRIMARY KEY, order_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS fix_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

Fields = list[tuple[int, str]]


def utc_timestamp(t: float | None = None) -> str:
    dt = datetime.fromtimestamp(time.time() if t is None else t, UTC)
    return dt.strftime("%Y%m%d-%H:%M:%S.") + f"{dt.microsecond // 1000:03d}"


def parse_utc_timestamp(text: str) -> float | None:
    if not UTC_TIMESTAMP.fullmatch(text):
        return None
    try:
        dt = datetime.strptime(text[:17], "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return dt.timestamp()


# --------------------------------------------------------------------------------------
# Codec
# --------------------------------------------------------------------------------------


def encode(fields: Fields) -> bytes:
    """A whole message from its fields after 9 (35 first): 8, 9, the fields, 10."""
    body = b"".join(f"{tag}={value}".encode() + SOH for tag, value in fields)
    head = f"8={BEGIN_STRING}\x019={len(body)}\x01".encode()
    return head + body + f"10={sum(head + body) % 256:03d}\x01".encode()


@dataclass
class Frame:
    kind: str  # "message", "garbled", "badlen" (fault fix-bodylength-logout) or "need" (more bytes needed)
    consumed: int = 0
    raw: bytes = b""


def take_frame(buf: bytes, faults: frozenset[str] | set[str] = frozenset()) -> Frame:
    """The first frame of buf.  A message whose BodyLength does not lead to a CheckSum
    field, or whose CheckSum is wrong, is garbled (FIX: ignored, the stream re-synced at
    the next BeginString)."""
    start = buf.find(b"8=FIX")
    if start < 0:
        return Frame("garbled", max(0, len(buf) - 4)) if len(buf) > 4 else Frame("need")
    if start > 0:
        return Frame("garbled", start)  # bytes before a BeginString
    next_head = buf.find(b"\x01" + HEADER_START, 1)
    resync = next_head + 1 if next_head >= 0 else 0
    m = FRAME_HEAD.match(buf)
    if m is None:
        if len(buf) < len(HEADER_START) + 8 and HEADER_START.startswith(buf[: len(HEADER_START)]):
            return Frame("need")
        return Frame("garbled", resync or 1)
    end = m.end() + int(m.group(1))
    if int(m.group(1)) > MAX_BODY or (next_head >= 0 and resync < end + 7):
        return Frame("garbled", resync or len(buf))
    if len(buf) < end + 7:
        return Frame("need")
    t = TRAILER.fullmatch(buf, end, end + 7)
    if t is None:
        kind = "badlen" if "fix-bodylength-logout" in faults else "garbled"
        return Frame(kind, resync or end + 7, bytes(buf[: end + 7]))
    raw = bytes(buf[: end + 7])
    if int(t.group(1)) != sum(buf[:end]) % 256:
        return Frame("garbled", end + 7, raw)
    return Frame("message", end + 7, raw)


@dataclass
class Message:
    fields: Fields
    values: dict[int, str]
    problem: tuple[int, int | None, str] | None = None  # (373, 371, 58) found while parsing

    @property
    def msg_type(self) -> str:
        return self.values.get(35, "")

    def get(self, tag: int, default: str | None = None) -> str | None:
        return self.values.get(tag, default)

    def seq(self) -> int | None:
        v = self.values.get(34)
        return int(v) if v is not None and v.isdigit() else None


def parse(raw: bytes) -> Message | None:
    """The fields of a framed message (None without a MsgType: treated as garbled)."""
    pieces = raw.split(SOH)[:-1]
    fields: Fields = []
    values: dict[int, str] = {}
    problem = None
    for piece in pieces[2:-1]:  # after 8 and 9, before 10
        tag_text, sep, value_bytes = piece.partition(b"=")
        value = value_bytes.decode("utf-8", "replace")
        if not sep or not tag_text.isdigit() or int(tag_text) == 0:
            problem = problem or (INVALID_TAG, None, f"invalid tag number {tag_text.decode('utf-8', 'replace')!r}")
            continue
        tag = int(tag_text)
        if value == "":
            problem = problem or (TAG_WITHOUT_VALUE, tag, f"tag {tag} specified without a value")
        fields.append((tag, value))
        values.setdefault(tag, value)
    if not fields or fields[0][0] != 35 or fields[0][1] == "":
        return None
    return Message(fields, values, problem)


class MessageProblem(Exception):
    """A malformed message: answered with a session Reject (35=3)."""

    def __init__(self, reason: int, tag: int | None, text: str) -> None:
        super().__init__(text)
        self.reason = reason
        self.tag = tag
        self.text = text


def require(msg: Message, *tags: int) -> None:
    for tag in tags:
        if msg.get(tag) is None:
            raise MessageProblem(REQUIRED_TAG_MISSING, tag, f"required tag {tag} missing")


def enum_value(msg: Message, tag: int, table: dict[str, str]) -> str:
    value = msg.values[tag]
    if value not in table:
        raise MessageProblem(VALUE_INCORRECT, tag, f"value {value!r} is incorrect for tag {tag}")
    return table[value]


def float_value(msg: Message, tag: int) -> str:
    value = msg.values[tag]
    if not FIX_FLOAT.fullmatch(value):
        raise MessageProblem(INCORRECT_DATA_FORMAT, tag, f"incorrect data format for tag {tag}: {value!r}")
    return value


def quantity_value(msg: Message, tag: int = 38) -> int | Decimal:
    """An integral Qty as int; anything else as Decimal (the engine refuses it)."""
    d = Decimal(float_value(msg, tag))
    return int(d) if d == d.to_integral_value() else d


def check_optional_enums(msg: Message) -> None:
    """54 / 40 / 60 of a G or F: optional here, but well-formed when given."""
    for tag, table in ((54, SIDE), (40, ORD_TYPE)):
        if msg.get(tag) is not None:
            enum_value(msg, tag, table)
    timestamp_value(msg, 60)


def timestamp_value(msg: Message, tag: int) -> None:
    value = msg.get(tag)
    if value is not None and parse_utc_timestamp(value) is None:
        raise MessageProblem(INCORRECT_DATA_FORMAT, tag, f"incorrect data format for tag {tag}: {value!r}")


# --------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------


@dataclass
class Request:
    """The FIX request an engine command is running for (None: another face)."""

    session: str
    clordid: str
    orig: str | None = None
    seq: int = 0  # its MsgSeqNum: counted in the same transaction as the change it makes
    conn: Connection | None = field(default=None, repr=False, compare=False)  # it came on


CURRENT_REQUEST: contextvars.ContextVar[Request | None] = contextvars.ContextVar("fix_request", default=None)


def create_rejection(refusal, faults: frozenset[str] | set[str] = frozenset()) -> str:
    """OrdRejReason (103) for a refused create."""
    if refusal.code == "DUPLICATE_CLIENT_ORDER_ID":
        return "6"
    if any(f == "quantity" for f, _ in refusal.errors or []):
        return "13"
    if "fix-ordrej-13-for-all" in faults and refusal.code == "VALIDATION_ERROR":
        return "13"
    return "99"


def cancel_rejection(refusal) -> str:
    """CxlRejReason (102) for a refused G or F."""
    return {"INVALID_TRANSITION": "0", "ORDER_NOT_FOUND": "1"}.get(refusal.code, "99")


# --------------------------------------------------------------------------------------
# Session
# --------------------------------------------------------------------------------------


class Session:
    """The one configured session: its sequence numbers, its store, its live connection.

    A connection counts incoming sequence numbers only while it is the session's
    ``owner`` -- the connection that logged on last -- and sends in the session's name only
    while it is ``conn``, the live connection.  It stays the owner after it closes (so a
    Logout it answered is still counted) until the next connection logs on; from then on
    whatever it still had under way (the bookkeeping of its last message, a timer, an
    answer) is dropped instead of landing on the new connection's numbers.  ``owner`` and
    ``conn`` are set under the send lock and the engine lock together; ``owner`` is
    compared in the transaction that writes, ``conn`` under the send lock before sending,
    so no Logon can come between a check and its write.
    """

    def __init__(self, acceptor: Acceptor, sender: str, target: str) -> None:
        self.acceptor = acceptor
        self.sender = sender
        self.target = target
        self.key = f"{sender}->{target}"
        self.send_lock = threading.RLock()  # held from assigning a MsgSeqNum to writing it
        self.conn: Connection | None = None  # the live, logged-on connection
        self.owner: Connection | None = None  # the connection that logged on last
        self.next_in = 1
        self.next_out = 1

    # ---- persistence (callers hold the engine lock: inside Engine.transaction) ---------

    def load(self, reset: bool) -> None:
        db = self.acceptor.engine.db
        row = db.execute("SELECT next_in, next_out FROM fix_sessions WHERE session=?", (self.key,)).fetchone()
        if row is None or reset:
            db.execute("INSERT OR REPLACE INTO fix_sessions VALUES (?, 1, 1)", (self.key,))
            db.execute("DELETE FROM fix_sent WHERE session=?", (self.key,))
            row = (1, 1)
        self.next_in, self.next_out = row

    def _save(self) -> None:
        self.acceptor.engine.db.execute(
            "UPDATE fix_sessions SET next_in=?, next_out=? WHERE session=?", (self.next_in, self.next_out, self.key)
        )

    def _stamp(self, msg_type: str, body: Fields) -> bytes:
        """Give the message the next MsgSeqNum, store it as sent, return its bytes."""
        seq, now = self.next_out, utc_timestamp()
        self.acceptor.engine.db.execute(
            "INSERT OR REPLACE INTO fix_sent VALUES (?,?,?,?,?)", (self.key, seq, msg_type, json.dumps(body), now)
        )
        self.next_out = seq + 1
        if "fix-seq-skip" in self.acceptor.faults and seq % 7 == 0:
            self.next_out = seq + 2
        self._save()
        return encode([(35, msg_type), *self.header(seq, now), *body])

    def header(self, seq: int, sending_time: str) -> Fields:
        return [(49, self.sender), (56, self.target), (34, str(seq)), (52, sending_time)]

    def count_in(self, seq: int) -> None:
        """Inside a transaction: incoming message seq is processed."""
        self.next_in = seq + 1
        self._save()

    def set_next_in(self, conn: Connection, n: int, at_least: bool = False) -> None:
        """The next incoming MsgSeqNum becomes n (with at_least: never lowered), if conn is
        still the session's owner -- checked in the same transaction as the write."""

        def run() -> None:
            if self.owner is not conn:
                return  # a connection superseded by a newer Logon: its update is stale
            self.next_in = max(n, self.next_in) if at_least else n
            self._save()

        self.acceptor.transaction(run)

    def attach(self, conn: Connection, reset: bool) -> None:
        """conn is the session's live connection and owner (caller holds the send lock);
        with reset (141=Y) both sequence numbers restart at 1, in the same transaction."""

        def run() -> None:
            self.owner = self.conn = conn
            if reset:
                self.next_in = self.next_out = 1
                self.acceptor.engine.db.execute("DELETE FROM fix_sent WHERE session=?", (self.key,))
                self._save()

        self.acceptor.transaction(run)

    # ---- sending -----------------------------------------------------------------------

    def send(self, msg_type: str, body: Fields, via: Connection | None = None) -> None:
        """Send now on the live connection (nothing without one); with via, only if via is
        that connection (a closed or superseded connection sends nothing)."""
        with self.send_lock:
            conn = self.conn
            if conn is None or (via is not None and conn is not via):
                return
            conn.write(self.acceptor.transaction(lambda: self._stamp(msg_type, body)))

    def flush(self, logon: bool = False) -> None:
        """Send the pending reports, in order, if logged on (logon: just logged on)."""
        with self.send_lock:
            while (conn := self.conn) is not None and conn.logged_on:
                raws = self.acceptor.transaction(lambda: self._take_pending(logon))
                if not raws:
                    return
                conn.write(b"".join(raws))

    def _take_pending(self, logon: bool = False) -> list[bytes]:
        db = self.acceptor.engine.db
        rows = db.execute(
            "SELECT id, msg_type, body FROM fix_pending WHERE session=? ORDER BY id LIMIT 100", (self.key,)
        ).fetchall()
        out = [self._stamp(mt, [(int(t), v) for t, v in json.loads(body)]) for _, mt, body in rows]
        if logon and rows and "fix-offline-twice" in self.acceptor.faults:
            out += [self._stamp(mt, [(int(t), v) for t, v in json.loads(body)]) for _, mt, body in rows]
        if rows:
            db.execute("DELETE FROM fix_pending WHERE session=? AND id<=?", (self.key, rows[-1][0]))
        return out

    def resend(self, via: Connection, begin: int, end: int) -> None:
        """Answer a ResendRequest (received on via, still the live connection):
        stored application messages again with PossDupFlag and OrigSendingTime; admin
        messages (and anything not stored) as SequenceReset-GapFill."""
        faults = self.acceptor.faults
        with self.send_lock:
            conn = self.conn
            if conn is None or conn is not via:
                return
            last = self.next_out - 1
            end = last if end == 0 or end > last else end
            if begin < 1 or begin > end:
                return
            rows = self.acceptor.transaction(
                lambda: self.acceptor.engine.db.execute(
                    "SELECT seq, msg_type, body, sending_time FROM fix_sent WHERE session=? AND seq BETWEEN ? AND ?",
                    (self.key, begin, end),
                ).fetchall()
            )
            stored = {seq: (mt, body, at) for seq, mt, body, at in rows}
            out: list[bytes] = []
            gap_from = None
            for seq in range(begin, end + 1):
                row = stored.get(seq)
                if row is None or (row[0] in ADMIN_TYPES and "fix-resend-admin" not in faults):
                    gap_from = gap_from or seq
                    continue
                if gap_from is not None:
                    out.append(self._gap_fill(gap_from, seq))
                    gap_from = None
                mt, body, at = row
                possdup: Fields = [] if "fix-resend-no-possdup" in faults else [(43, "Y")]
                fields = [(int(t), v) for t, v in json.loads(body)]
                if "fix-resend-current-state" in faults and mt == "8":
                    oid = dict(fields).get(37, "")
                    cur = self.acceptor.order(int(oid)) if oid.isdigit() else None
                    if cur is not None:
                        fields = [(t, ORD_STATUS[cur["status"]]) if t == 39 else (t, v) for t, v in fields]
                header = [*self.header(seq, utc_timestamp()), *possdup, (122, at)]
                out.append(encode([(35, mt), *header, *fields]))
            if gap_from is not None:
                out.append(self._gap_fill(gap_from, end + 1))
            conn.write(b"".join(out))

    def _gap_fill(self, seq: int, new_seq: int) -> bytes:
        now = utc_timestamp()
        if "fix-gapfill-high" in self.acceptor.faults:
            new_seq += 1
        return encode([(35, "4"), *self.header(seq, now), (43, "Y"), (122, now), (123, "Y"), (36, str(new_seq))])


# --------------------------------------------------------------------------------------
# Connection: one TCP connection, its framing, timers and message handlers
# --------------------------------------------------------------------------------------

Handler = Callable[["Connection", Message], "int | None"]
HANDLERS: dict[str, Handler] = {}


def handles(msg_type: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[msg_type] = fn
        return fn

    return register


@dataclass
class Timers:
    heartbeat: float = 0.0
    last_recv: float = field(default_factory=time.monotonic)
    last_sent: float = field(default_factory=time.monotonic)
    test_id: str | None = None
    test_sent: float = 0.0


class Connection:
    def __init__(self, acceptor: Acceptor, sock: socket.socket) -> None:
        self.acceptor = acceptor
        self.session = acceptor.session
        self.faults = acceptor.faults
        self.sock = sock
        self.buf = bytearray()
        self.logged_on = False
        self.closed = False
        self.logout_sent = False
        self.resend_until = 0  # a ResendRequest is outstanding until next_in passes this
        self.timers = Timers()
        self.opened = time.monotonic()
        self.tests = 0
        self.done = threading.Event()  # set when run() returns: nothing more from this one

    def send(self, msg_type: str, body: Fields) -> None:
        """Send in the session's name, if this is still its live connection."""
        self.session.send(msg_type, body, via=self)

    # ---- io --------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.closed or not data:
            return
        try:
            self.sock.sendall(data)
            self.timers.last_sent = time.monotonic()
        except OSError:
            self.close()

    def close(self) -> None:
        with self.session.send_lock:
            self.closed = True
            self.logged_on = False
            if self.session.conn is self:
                self.session.conn = None
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()

    def run(self) -> None:
        self.sock.settimeout(TICK)
        try:
            while not self.closed and not self.acceptor.stopping.is_set():
                try:
                    data = self.sock.recv(65536)
                except TimeoutError:
                    data = None
                if data == b"":
                    break
                if data:
                    self.buf += data
                    self._drain_frames()
                self._timers()
        except OSError:
            pass
        except Exception:  # a bug; never take the server down with it
            if self.acceptor.verbose:
                raise
        finally:
            self.close()
            self.done.set()

    def _drain_frames(self) -> None:
        while self.buf and not self.closed:
            frame = take_frame(bytes(self.buf), self.faults)
            if frame.kind == "need":
                return
            del self.buf[: frame.consumed]
            if frame.kind == "badlen":
                self.logout("bad BodyLength")
                return
            if frame.kind == "garbled":
                self.on_garbled(frame.raw)
                continue
            self.timers.last_recv = time.monotonic()
            msg = parse(frame.raw)
            if msg is None:
                continue  # no MsgType: garbled
            self.receive(msg)

    def _timers(self) -> None:
        now = time.monotonic()
        if not self.logged_on:
            if now - self.opened > LOGON_TIMEOUT:
                self.close()
            return
        hb = self.timers.heartbeat
        if hb <= 0:
            return
        if now - self.timers.last_sent >= hb:
            self.send("0", [])
        if self.timers.test_id is not None and self.timers.last_recv >= self.timers.test_sent:
            self.timers.test_id = None  # answered (any message shows the peer is alive)
        if self.timers.test_id is not None:
            if now - self.timers.test_sent >= hb:
                self.logout("no answer to TestRequest")
        elif now - self.timers.last_recv >= hb * 1.2:
            self.tests += 1
            self.timers.test_id = f"TEST-{self.tests}"
            self.timers.test_sent = now
            self.send("1", [(112, self.timers.test_id)])

    # ---- receiving -------------------------------------------------------------------

    def on_garbled(self, raw: bytes) -> None:
        """FIX: a garbled message is ignored (no Reject, no sequence number consumed)."""
        if "fix-garbled-rejected" not in self.faults or not self.logged_on or not raw:
            return
        msg = parse(raw)
        seq = msg.seq() if msg is not None else None
        body: Fields = [(45, str(seq or 0)), (371, "10"), (373, str(VALUE_INCORRECT)), (58, "garbled message")]
        self.send("3", body)

    def receive(self, msg: Message) -> None:
        if not self.logged_on:
            self.before_logon(msg)
            return
        session = self.session
        compids_checked = "fix-compid-not-checked" not in self.faults
        if compids_checked and (msg.get(49) != session.target or msg.get(56) != session.sender):
            self.reject(msg, COMPID_PROBLEM, None, "CompID problem", force=True)
            self.logout("CompID problem")
            return
        seq = msg.seq()
        if seq is None:
            self.logout("MsgSeqNum missing or invalid")
            return
        mt = msg.msg_type
        if mt == "4" and msg.get(123) != "Y":
            self.sequence_reset(msg)  # reset mode: the MsgSeqNum is not checked
            return
        expected = session.next_in
        if seq > expected:
            if mt == "2":  # answered first, then the gap is asked for
                try:
                    self.on_resend_request(msg)
                except MessageProblem as p:
                    self.reject(msg, p.reason, p.tag, p.text)
            if mt == "5":
                self.on_logout(msg)
                return
            self.request_resend(expected, seq)
            return
        if seq < expected:
            if msg.get(43) == "Y":
                if "fix-possdup-reprocessed" in self.faults:
                    self.dispatch(msg, advance=False)
                return  # a duplicate already processed
            if "fix-low-seq-accepted" not in self.faults:
                self.logout(f"MsgSeqNum too low, expecting {expected} but received {seq}")
                return
            self.dispatch(msg, advance=False)
            return
        self.dispatch(msg)

    def dispatch(self, msg: Message, advance: bool = True) -> None:
        seq = msg.seq() or 0
        new_next = None
        try:
            if msg.problem is not None:
                raise MessageProblem(*msg.problem)
            self.check_sending_time(msg)
            handler = HANDLERS.get(msg.msg_type)
            if handler is None:
                self.unsupported(msg)
            else:
                new_next = handler(self, msg)
        except MessageProblem as p:
            self.reject(msg, p.reason, p.tag, p.text)
        if advance:  # (after a Logout this connection is closed, but still the owner)
            self.session.set_next_in(self, new_next or seq + 1, at_least=True)
        if self.resend_until and self.session.next_in > self.resend_until:
            self.resend_until = 0

    def check_sending_time(self, msg: Message) -> None:
        value = msg.get(52)
        if value is None:
            raise MessageProblem(REQUIRED_TAG_MISSING, 52, "required tag 52 missing")
        t = parse_utc_timestamp(value)
        if t is None:
            raise MessageProblem(INCORRECT_DATA_FORMAT, 52, f"incorrect data format for tag 52: {value!r}")
        if abs(time.time() - t) > SENDING_TIME_WINDOW and msg.get(43) != "Y":
            raise MessageProblem(SENDING_TIME_PROBLEM, 52, "SendingTime accuracy problem")

    def reject(self, msg: Message, reason: int, tag: int | None, text: str, force: bool = False) -> None:
        if "fix-no-session-reject" in self.faults and not force:
            return
        body: Fields = [(45, str(msg.seq() or 0))]
        if tag is not None:
            body.append((371, str(tag)))
        if msg.msg_type and "fix-reject-no-372" not in self.faults:
            body.append((372, msg.msg_type))
        body += [(373, str(reason)), (58, text)]
        self.send("3", body)

    def unsupported(self, msg: Message) -> None:
        mt = msg.msg_type
        if not MSG_TYPE_SHAPE.fullmatch(mt):
            raise MessageProblem(INVALID_MSG_TYPE, 35, f"invalid MsgType {mt!r}")
        if "fix-no-session-reject" in self.faults:
            return
        text = f"unsupported message type {mt!r}"
        self.send("j", [(45, str(msg.seq() or 0)), (372, mt), (380, "3"), (58, text)])

    def request_resend(self, expected: int, seq: int) -> None:
        if self.resend_until and expected <= self.resend_until:
            return  # one outstanding ResendRequest covers the gap
        self.resend_until = seq
        self.send("2", [(7, str(expected)), (16, "0")])

    def logout(self, text: str) -> None:
        if not self.logout_sent:
            self.logout_sent = True
            self.send("5", [(58, text)])
        self.close()

    def before_logon(self, msg: Message) -> None:
        """The first message must be a valid Logon; a refused Logon simply disconnects."""
        session = self.session
        hb = msg.get(108, "")
        seq = msg.seq()
        if (
            msg.msg_type != "A"
            or msg.problem is not None
            or ("fix-compid-not-checked" not in self.faults and msg.get(49) != session.target)
            or ("fix-compid-not-checked" not in self.faults and msg.get(56) != session.sender)
            or seq is None
            or msg.get(98) != "0"
            or not hb.isdigit()
            or msg.get(52) is None
        ):
            self.close()
            return
        # A reconnect may race the previous connection's close: wait (bounded) for it to
        # go -- detached, and done with the message it was handling (its Logout is counted
        # before this Logon reads the sequence numbers).  Past the bound, a connection
        # still logged on means this Logon is refused; one still closing is superseded
        # (it is no longer the owner: whatever it still does is dropped).
        deadline = time.monotonic() + 1.0
        while session.conn is not None and time.monotonic() < deadline:
            time.sleep(TICK / 5)
        previous = session.owner
        if previous is not None and previous is not self:
            previous.done.wait(max(0.0, deadline - time.monotonic()))
        with session.send_lock:
            if session.conn is not None:  # already logged on elsewhere
                self.close()
                return
            reset = msg.get(141) == "Y"
            session.attach(self, reset)
            expected = session.next_in
            if seq < expected and "fix-low-seq-accepted" not in self.faults:
                self.logout(f"MsgSeqNum too low, expecting {expected} but received {seq}")
                return
            self.timers.heartbeat = float(int(hb))
            reply: Fields = [(98, "0"), (108, hb)] + ([(141, "Y")] if reset else [])
            if "fix-reports-before-logon" in self.faults:
                self.logged_on = True
                session.flush()
            self.send("A", reply)
            self.logged_on = True
            if seq > expected:
                self.request_resend(expected, seq)
            elif seq == expected:
                session.set_next_in(self, seq + 1)
        session.flush(logon=True)  # reports stored while logged out

    # ---- session messages ------------------------------------------------------------

    @handles("A")
    def on_logon(self, msg: Message) -> None:
        return None  # a second Logon on a live session: counted, nothing else

    @handles("0")
    def on_heartbeat(self, msg: Message) -> None:
        if self.timers.test_id is not None and msg.get(112) == self.timers.test_id:
            self.timers.test_id = None
        return None

    @handles("1")
    def on_test_request(self, msg: Message) -> None:
        require(msg, 112)
        self.send("0", [(112, msg.values[112])])
        return None

    @handles("2")
    def on_resend_request(self, msg: Message) -> None:
        require(msg, 7, 16)
        for tag in (7, 16):
            if not msg.values[tag].isdigit():
                raise MessageProblem(INCORRECT_DATA_FORMAT, tag, f"incorrect data format for tag {tag}")
        self.session.resend(self, int(msg.values[7]), int(msg.values[16]))
        return None

    @handles("3")
    def on_reject(self, msg: Message) -> None:
        return None

    @handles("4")
    def on_gap_fill(self, msg: Message) -> int | None:
        require(msg, 36)
        if not msg.values[36].isdigit():
            raise MessageProblem(INCORRECT_DATA_FORMAT, 36, "incorrect data format for tag 36")
        new = int(msg.values[36])
        if new <= (msg.seq() or 0):
            raise MessageProblem(VALUE_INCORRECT, 36, f"attempt to lower sequence number, NewSeqNo {new}")
        return new

    def sequence_reset(self, msg: Message) -> None:
        """SequenceReset-Reset: NewSeqNo becomes the next incoming MsgSeqNum (never lower)."""
        value = msg.get(36, "")
        if not value.isdigit():
            self.reject(msg, REQUIRED_TAG_MISSING if not value else INCORRECT_DATA_FORMAT, 36, "bad NewSeqNo")
            return
        new = int(value)
        if new < self.session.next_in:
            self.reject(msg, VALUE_INCORRECT, 36, f"attempt to lower sequence number, NewSeqNo {new}")
            return
        self.session.set_next_in(self, new)
        if self.resend_until and new > self.resend_until:
            self.resend_until = 0

    @handles("5")
    def on_logout(self, msg: Message) -> None:
        if "fix-no-logout-ack" in self.faults:
            self.logout_sent = True
        if not self.logout_sent:
            self.logout_sent = True
            self.send("5", [])
        self.close()
        return None

    # ---- application messages --------------------------------------------------------

    @handles("D")
    def on_new_order(self, msg: Message) -> None:
        require(msg, 11, 55, 54, 38, 40, 60)
        clordid = msg.values[11]
        if "fix-clordid-trimmed" in self.faults:
            clordid = clordid.strip()
        body: dict = {
            "client_order_id": clordid,
            "symbol": msg.values[55],
            "side": enum_value(msg, 54, SIDE),
            "order_type": enum_value(msg, 40, ORD_TYPE),
            "quantity": quantity_value(msg),
        }
        if msg.get(44) is not None:
            body["price"] = float_value(msg, 44)
        timestamp_value(msg, 60)
        try:
            request = Request(self.session.key, clordid, seq=msg.seq() or 0, conn=self)
            self.acceptor.command(request, lambda: self.acceptor.engine.create(body))
        except self.acceptor.refusal as r:
            self.acceptor.report_refused_create(self.session, msg, clordid, r)
        return None

    def _target(self, msg: Message) -> tuple[dict | None, str]:
        """The order a G/F/H names (37 OrderID, else 41 OrigClOrdID = its latest ClOrdID)
        and that order's latest ClOrdID."""
        acceptor = self.acceptor
        order_id_text = msg.get(37)
        if order_id_text is not None:
            order = acceptor.order(int(order_id_text)) if order_id_text.isdigit() else None
        else:
            order = acceptor.order_by_latest_clordid(msg.values[41])
        return order, (acceptor.latest_clordid(order) if order else "NONE")

    def _order_command(self, msg: Message, action: str, changes: dict | None) -> None:
        order, latest = self._target(msg)
        clordid = msg.values[11]
        acceptor = self.acceptor
        if order is None:
            named = f"order {msg.values[37]}" if 37 in msg.values else f"ClOrdID {msg.values[41]!r}"
            acceptor.cancel_reject(self.session, msg, action, None, "1", f"unknown order: {named} not found")
            return
        if "fix-clordid-reuse-accepted" not in self.faults and acceptor.clordid_used(clordid):
            acceptor.cancel_reject(self.session, msg, action, order, "99", f"ClOrdID {clordid!r} is already used")
            return
        for tag, key, table in ((54, "side", SIDE_CODE), (40, "order_type", ORD_TYPE_CODE)):
            if msg.get(tag) is not None and msg.values[tag] != table[order[key]]:
                text = f"tag {tag} does not match the order ({key} cannot change)"
                acceptor.cancel_reject(self.session, msg, action, order, "99", text)
                return
        if msg.get(55) is not None and msg.values[55].upper() != order["symbol"]:
            acceptor.cancel_reject(self.session, msg, action, order, "99", "tag 55 does not match the order")
            return
        request = Request(self.session.key, clordid, latest, msg.seq() or 0, conn=self)
        try:
            acceptor.command(
                request, lambda: acceptor.engine.command(action, order["order_id"], changes if changes else None)
            )
        except acceptor.refusal as r:
            current = acceptor.order(order["order_id"])
            acceptor.cancel_reject(self.session, msg, action, current, cancel_rejection(r), r.message)

    @handles("G")
    def on_replace(self, msg: Message) -> None:
        require(msg, 11)
        if msg.get(37) is None:
            require(msg, 41)
        changes: dict = {}
        if msg.get(38) is not None:
            changes["quantity"] = quantity_value(msg)
        if msg.get(44) is not None:
            changes["price"] = float_value(msg, 44)
        check_optional_enums(msg)
        self._order_command(msg, "modify", changes)
        return None

    @handles("F")
    def on_cancel(self, msg: Message) -> None:
        require(msg, 11)
        if msg.get(37) is None:
            require(msg, 41)
        check_optional_enums(msg)
        self._order_command(msg, "cancel", None)
        return None

    @handles("H")
    def on_status(self, msg: Message) -> None:
        if msg.get(37) is None:
            require(msg, 11)
        acceptor = self.acceptor
        order_id_text = msg.get(37)
        if order_id_text is not None:
            order = acceptor.order(int(order_id_text)) if order_id_text.isdigit() else None
        else:
            order = acceptor.order_by_any_clordid(msg.values[11])
        acceptor.report_status(self.session, msg, order)
        return None


# --------------------------------------------------------------------------------------
# Acceptor: the listener, the engine hooks, the report builders
# --------------------------------------------------------------------------------------


class Acceptor:
    def __init__(
        self,
        engine,
        refusal: type[Exception],
        faults: set[str],
        sender: str = "OMS",
        target: str = "CLIENT",
        verbose: bool = False,
    ) -> None:
        self.engine = engine
        self.refusal = refusal
        self.faults = faults
        self.verbose = verbose
        self.stopping = threading.Event()
        self.session = Session(self, sender, target)
        self.listener: socket.socket | None = None
        self.thread: threading.Thread | None = None
        with engine.lock:
            if engine.db.in_transaction:
                engine.db.execute("COMMIT")
                engine.in_txn = False
            engine.db.executescript(SCHEMA)
        self.transaction(lambda: self.session.load(reset="fix-seq-reset-on-restart" in faults))
        if "fix-sent-not-persisted" in faults:
            self.transaction(lambda: engine.db.execute("DELETE FROM fix_sent"))
        if "fix-dup-vs-http" in faults:
            engine.dup_exempt = self._dup_exempt
        engine.observers.append(self.on_change)
        engine.after_commit.append(self.after_commit)

    def transaction(self, fn):
        return self.engine.transaction(fn)

    def _dup_exempt(self, coid: str) -> bool:
        """Fault fix-dup-vs-http (inside the create's transaction): a FIX create whose
        client_order_id is used only by orders of other faces skips the duplicate check."""
        if CURRENT_REQUEST.get() is None:
            return False
        row = self.engine.db.execute(
            "SELECT 1 FROM orders WHERE client_order_id=? AND order_id IN (SELECT order_id FROM fix_orders)", (coid,)
        ).fetchone()
        return row is None

    # ---- listener --------------------------------------------------------------------

    def start(self, port: int) -> tuple[str, int]:
        self.listener = socket.create_server(("127.0.0.1", port), reuse_port=False)
        self.listener.settimeout(0.2)
        self.thread = threading.Thread(target=self._accept_loop, name="fix-acceptor", daemon=True)
        self.thread.start()
        host, bound = self.listener.getsockname()[:2]
        return host, bound

    def _accept_loop(self) -> None:
        assert self.listener is not None
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(self, sock)
            threading.Thread(target=conn.run, name="fix-session", daemon=True).start()

    def stop(self) -> None:
        self.stopping.set()
        if self.listener is not None:
            with contextlib.suppress(OSError):
                self.listener.close()
        conn = self.session.conn
        if conn is not None:
            conn.close()
        if self.thread is not None:
            self.thread.join(2.0)

    # ---- engine hooks ----------------------------------------------------------------

    def command(self, request: Request, fn):
        token = CURRENT_REQUEST.set(request)
        try:
            return fn()
        finally:
            CURRENT_REQUEST.reset(token)

    def on_change(self, action: str, before: dict | None, after: dict) -> None:
        """Inside the engine's transaction of an accepted command: queue the report for
        the requesting session, or (another face) for the session that entered the order."""
        request = CURRENT_REQUEST.get()
        db = self.engine.db
        order_id = after["order_id"]
        if request is not None and request.conn is self.session.owner and request.seq >= self.session.next_in:
            self.session.count_in(request.seq)  # a kill -9 cannot separate the two
        if action == "create":
            if request is None:
                return
            db.execute("INSERT OR REPLACE INTO fix_orders VALUES (?,?,?)", (order_id, request.session, request.clordid))
            self.queue(request.session, "8", self.execution_report(after, "0", request.clordid))
            return
        row = db.execute("SELECT session, clordid FROM fix_orders WHERE order_id=?", (order_id,)).fetchone()
        owner, latest = row if row else (None, after["client_order_id"])
        if owner is None and "fix-http-orders-reported" in self.faults:
            owner, latest = self.session.key, after["client_order_id"] or f"REST-{order_id}"
        clordid, orig = latest, None
        if request is not None:
            clordid, orig = request.clordid, request.orig
            db.execute("INSERT OR REPLACE INTO fix_orders VALUES (?,?,?)", (order_id, owner, request.clordid))
            db.execute("INSERT OR REPLACE INTO fix_clordids VALUES (?,?)", (request.clordid, order_id))
        session = request.session if request is not None else owner
        if session is None or clordid is None:
            return
        if action == "execute" and "fix-no-fill-report" in self.faults:
            return
        shown = after
        if request is None and action == "modify" and "fix-unsolicited-old-price" in self.faults:
            shown = dict(after, price=before["price"])
        self.queue(session, "8", self.execution_report(shown, EXEC_TYPE[action], clordid, orig))

    def after_commit(self) -> None:
        """After a transaction in which an accepted command was observed (the command is
        committed: whatever happens to the FIX session must not fail it)."""
        try:
            self.session.flush()
        except Exception:
            if self.verbose:
                raise

    def queue(self, session: str, msg_type: str, body: Fields) -> None:
        """Store a report to send (inside a transaction); it is sent once logged on."""
        if "fix-offline-reports-lost" in self.faults:
            conn = self.session.conn
            if conn is None or not conn.logged_on:
                return
        self.engine.db.execute(
            "INSERT INTO fix_pending (session, msg_type, body) VALUES (?,?,?)", (session, msg_type, json.dumps(body))
        )

    def send_report(self, session: Session, msg_type: str, build: Callable[[], Fields]) -> None:
        self.transaction(lambda: self.queue(session.key, msg_type, build()))
        session.flush()

    # ---- lookups (inside or outside a transaction) -------------------------------------

    def order(self, order_id: int) -> dict | None:
        try:
            return self.engine.get(order_id)
        except self.refusal:
            return None

    def latest_clordid(self, order: dict) -> str:
        """The latest accepted ClOrdID of the order (outside a transaction)."""
        with self.engine.lock:
            row = self.engine.db.execute("SELECT clordid FROM fix_orders WHERE order_id=?", (order["order_id"],))
            found = row.fetchone()
        return found[0] if found else (order["client_order_id"] or "NONE")

    def _lookup(self, sql: str, args: tuple) -> dict | None:
        with self.engine.lock:
            row = self.engine.db.execute(sql, args).fetchone()
        return self.order(row[0]) if row else None

    def order_by_latest_clordid(self, clordid: str) -> dict | None:
        if "fix-orig-not-advanced" in self.faults:
            return self._lookup("SELECT order_id FROM orders WHERE client_order_id=?", (clordid,))
        return self._lookup(
            "SELECT order_id FROM fix_orders WHERE clordid=? UNION ALL SELECT order_id FROM orders "
            "WHERE client_order_id=? AND order_id NOT IN (SELECT order_id FROM fix_orders) LIMIT 1",
            (clordid, clordid),
        )

    def order_by_any_clordid(self, clordid: str) -> dict | None:
        return self._lookup(
            "SELECT order_id FROM fix_clordids WHERE clordid=? UNION ALL "
            "SELECT order_id FROM orders WHERE client_order_id=? LIMIT 1",
            (clordid, clordid),
        )

    def clordid_used(self, clordid: str) -> bool:
        return self.order_by_any_clordid(clordid) is not None

    # ---- reports ---------------------------------------------------------------------

    def exec_id(self, order_id: int) -> str:
        if "fix-execid-reused" in self.faults:
            return f"E{order_id}"
        db = self.engine.db
        db.execute("INSERT OR IGNORE INTO fix_meta VALUES ('exec_id', 0)")
        db.execute("UPDATE fix_meta SET value = value + 1 WHERE key='exec_id'")
        (value,) = db.execute("SELECT value FROM fix_meta WHERE key='exec_id'").fetchone()
        return f"E{value}"

    def ord_status(self, status: str) -> str:
        if status == "MODIFIED" and "fix-modified-39-5" in self.faults:
            return "5"
        return ORD_STATUS[status]

    def order_fields(self, order: dict) -> Fields:
        out: Fields = [
            (55, order["symbol"]),
            (54, SIDE_CODE[order["side"]]),
            (38, str(order["quantity"])),
            (40, ORD_TYPE_CODE[order["order_type"]]),
        ]
        if order["price"] is not None:
            out.append((44, order["price"]))
        return out

    def execution_report(
        self, order: dict, exec_type: str, clordid: str, orig: str | None = None, exec_id: str | None = None
    ) -> Fields:
        done = order["status"] in ("CANCELLED", "EXECUTED")
        cum = order["executed_quantity"]
        leaves = 0 if done else order["quantity"] - cum
        fields: Fields = [(37, str(order["order_id"])), (11, clordid)]
        if "fix-report-41-new" in self.faults and orig is not None:
            orig = clordid
        if orig is not None:
            fields.append((41, orig))
        fields += [
            (17, exec_id or self.exec_id(order["order_id"])),
            (150, exec_type),
            (39, self.ord_status(order["status"])),
            *self.order_fields(order),
        ]
        if exec_type == "F":
            if "fix-fill-no-lastpx" not in self.faults:
                fields += [(31, order["executed_price"]), (32, str(order["executed_quantity"]))]
            if "fix-cumqty-wrong" in self.faults:
                cum, leaves = 0, order["quantity"]
        fields += [
            (14, str(cum)),
            (151, str(leaves)),
            (6, order["executed_price"] or "0"),
            (60, utc_timestamp(order["updated_at"] / 1000)),
        ]
        return fields

    def report_refused_create(self, session: Session, msg: Message, clordid: str, refusal) -> None:
        def build() -> Fields:
            fields: Fields = [(37, "NONE"), (11, clordid), (17, self.exec_id(0)), (150, "8"), (39, "8")]
            fields += [(tag, msg.values[tag]) for tag in (55, 54, 38, 40, 44) if tag in msg.values]
            fields += [(14, "0"), (151, "0"), (6, "0")]
            if "fix-no-ordrejreason" not in self.faults:
                fields.append((103, create_rejection(refusal, self.faults)))
            return [*fields, (58, refusal.message), (60, utc_timestamp())]

        self.send_report(session, "8", build)

    def cancel_reject(
        self, session: Session, msg: Message, action: str, order: dict | None, reason: str, text: str
    ) -> None:
        if order is None:
            order_id = "UNKNOWN" if "fix-unknown-order-37" in self.faults else "NONE"
            status = "8"
            orig = msg.get(41) or "NONE"
        else:
            order_id = str(order["order_id"])
            status = "8" if "fix-cxlrej-wrong-status" in self.faults else self.ord_status(order["status"])
            orig = msg.get(41) or self.latest_clordid(order)

        def build() -> Fields:
            out: Fields = [
                (37, order_id),
                (11, msg.values[11]),
                (41, orig),
                (39, status),
                (434, "2" if action == "modify" else "1"),
                (102, reason),
                (58, text),
            ]
            if "fix-cxlrej-no-41" in self.faults:
                out = [f for f in out if f[0] != 41]
            return out

        self.send_report(session, "9", build)

    def report_status(self, session: Session, msg: Message, order: dict | None) -> None:
        latest = self.latest_clordid(order) if order is not None else "NONE"

        def build() -> Fields:
            extra: Fields = [(790, msg.values[790])] if 790 in msg.values else []
            if order is None:
                fields: Fields = [(37, "NONE"), (11, msg.get(11) or "NONE"), (17, "0"), (150, "I"), (39, "8")]
                fields += [(tag, msg.values[tag]) for tag in (55, 54) if tag in msg.values]
                named = f"order {msg.values[37]}" if 37 in msg.values else f"ClOrdID {msg.values[11]!r}"
                return [*fields, (14, "0"), (151, "0"), (6, "0"), *extra, (58, f"unknown order: {named} not found")]
            report = self.execution_report(order, "I", latest, exec_id="0")
            if "fix-status-39-new" in self.faults:
                report = [(t, "0") if t == 39 else (t, v) for t, v in report]
            return [*report, *extra]

        self.send_report(session, "8", build)
