"""The order gateway as the certification pack sees a system under test over FIX 4.4: every
message the system sends is checked against DESIGN.md's FIX face before the runner sees it.

Adapter layer (a socket, no threads). Two parts:

- ``FixClient``: one raw FIX 4.4 initiator session the harness drives by hand -- it sends
  exactly what it is told (a chosen MsgSeqNum, PossDupFlag, a garbled checksum, a message
  type that does not exist) and reads with a deadline. It answers TestRequests and the
  system's ResendRequests (with a gap fill) by itself, keeps a journal of every message both
  ways (the evidence), and checks the frame and header of every message it receives:
  BeginString FIX.4.4, CompIDs swapped, MsgSeqNum present, SendingTime present, a valid
  BodyLength and CheckSum (a garbled frame from the system is a breach).
- ``FixWireGateway``: the gateway protocol over a ``FixClient`` (create -> NewOrderSingle,
  modify -> OrderCancelReplaceRequest, cancel -> OrderCancelRequest, get ->
  OrderStatusRequest), with an optional HTTP face of the same system (``rest``) for what FIX
  has no message for: execute (``POST /order/{id}/execute``, after which the fill report
  150=F must reach *this* session), the listing and the audit log. Without ``rest`` those
  raise ``NotOffered`` (the target declares them absent, so their cases are NOT APPLICABLE).

Every ExecutionReport is held to DESIGN.md: 37 OrderID, a unique 17 ExecID, 150 ExecType and
39 OrdStatus as the mapping says (a replace is 150=5 with **39=0**), 14 CumQty / 151
LeavesQty / 6 AvgPx consistent with the order, 11 echoed verbatim; a fill 150=F 39=2 with 31
LastPx / 32 LastQty; a refused create 150=8 39=8 with 103 (6 duplicate ClOrdID, 13 incorrect
quantity, 99 other) and 58; every OrderCancelReject 434 (1 cancel, 2 replace), 102 (0 too
late, 1 unknown, 99 other), 39 the order's current status (an unknown order 37=NONE, 39=8)
and 58. A breach raises ``FixContractViolation`` naming the message and the rule.

What a report does not carry (version, created_at) is taken from the HTTP face when there is
one (the order as ``GET /order/{id}`` answers, after checking the report agrees with it), else
kept by the harness from the reports it saw (version counts the accepted changes).
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from oms.certification.values import NotOffered, same
from oms.certification.wire import ContractViolation
from oms.errors import OMSError, ValidationError, from_code
from oms.fix import mapping
from oms.fix.codec import BEGIN_STRING, Field, FrameReader, Message, checksum, decode, encode, sending_time
from oms.lifecycle import Action, Status
from oms.model import Order, OrderEvent, OrderType, Side

TIMEOUT_S = 10.0
LOGON_ATTEMPTS = 4
FILL_WAIT_S = 5.0
HEARTBEAT_S = 30

# DESIGN.md's FIX face: the one mapping table (oms.fix.mapping), read as the pack needs it.
SIDE, SIDE_OF = mapping.SIDE, mapping.SIDE_OF
ORD_TYPE, ORD_TYPE_OF = mapping.ORD_TYPE, mapping.ORD_TYPE_OF
ORD_STATUS = {s: mapping.ORD_STATUS[s.value] for s in Status}
EXEC_TYPE = {a: mapping.EXEC_TYPE[a.value] for a in Action}
STATUS_EXEC_TYPE = mapping.EXEC_TYPE["status"]
REJECTED = mapping.EXEC_TYPE["rejected"]
CXL_REJ_RESPONSE_TO = {a: mapping.CXL_REJ_RESPONSE_TO[a.value] for a in (Action.CANCEL, Action.MODIFY)}


def _reasons(kind: str) -> dict[str, str]:
    """A reason value (103 / 102) -> the error code it stands for ("other" is bad input)."""
    return {v: mapping.error_code(kind, v) or "VALIDATION_ERROR" for v in mapping.lookup(kind).values()}


ORD_REJ_REASON = _reasons("ord_rej_reason")
CXL_REJ_REASON = _reasons("cxl_rej_reason")
ADMIN = {"0", "1", "2", "3", "4", "5", "A"}
"""Session-level MsgTypes: Heartbeat, TestRequest, ResendRequest, Reject, SequenceReset,
Logout, Logon."""
REPORT_FIELDS = (37, 17, 150, 39, 14, 151, 6)
"""What DESIGN.md has every ExecutionReport carry (14/151/6 with 37 and a unique 17)."""
FIELD_NAMES = ("client_order_id", "quantity", "price", "symbol", "side", "order_type")
UNKNOWN_INSTRUMENT = ("UNKNOWN", "1")
"""Symbol and Side of a request about an order this session never entered (FIX requires both)."""
TAG_FIELD = {"11": "client_order_id", "38": "quantity", "44": "price", "55": "symbol", "54": "side", "40": "order_type"}


def _bad_checksum(data: bytes) -> bytes:
    bad = (checksum(data[:-7]) + 1) % 256
    return data[:-4] + f"{bad:03d}".encode() + b"\x01"


def _bad_body_length(data: bytes) -> bytes:
    """BodyLength three short (the CheckSum recomputed: only the length is wrong)."""
    head, _, rest = data.partition(b"\x019=")
    length, _, body = rest.partition(b"\x01")
    framed = head + b"\x019=" + str(int(length) - 3).encode() + b"\x01" + body[:-7]
    return framed + f"10={checksum(framed):03d}".encode() + b"\x01"


GARBLE = {"checksum": _bad_checksum, "body_length": _bad_body_length}
"""Ways a frame is garbled (DESIGN.md: a bad checksum or body length is ignored)."""


class FixContractViolation(ContractViolation):
    """A message breaks DESIGN.md's FIX face; the message names the request and the rule."""

    contract = "the FIX face"


class FixSessionEnded(Exception):
    """The system logged out or closed the connection."""


# ---- one raw session ------------------------------------------------------------------------


@dataclass
class Journal:
    """Every message both ways, oldest first: (direction, MsgSeqNum, MsgType, tag=value with |)."""

    rows: list[tuple[str, str, str, str]] = field(default_factory=list)

    def add(self, direction: str, data: bytes) -> None:
        text = data.replace(b"\x01", b"|").decode("latin-1")
        pairs = dict(p.split("=", 1) for p in text.strip("|").split("|") if "=" in p)
        self.rows.append((direction, pairs.get("34", "?"), pairs.get("35", "?"), text))
        del self.rows[:-2000]


class FixClient:
    """One FIX 4.4 initiator session, driven by hand (see the module docstring)."""

    def __init__(self, host: str, port: int, *, sender: str, target: str, timeout: float = TIMEOUT_S) -> None:
        self.sender, self.target, self.timeout = sender, target, timeout
        self.host, self.port = host, port
        self.where = f"fix://{host}:{port}"
        self.next_out = 1
        self.next_in = 1
        self.journal = Journal()
        self.inbox: list[Message] = []
        """Received application messages (and Rejects) not yet taken by a ``wait``."""
        self.admin: list[Message] = []
        """Received session messages, for the session cases to inspect."""
        self.gaps: list[tuple[int, int]] = []
        """(expected, received) for each MsgSeqNum gap the system made."""
        self.problems: list[str] = []
        """What the system broke of the session rules while messages came in (``check()``)."""
        self.logged_on = False
        self._exec_ids: set[str] = set()
        self.ended = False
        self._frames = FrameReader()
        # Thread-safe for the race cases: one sender at a time, one reader at a time, and
        # what the reader receives for another thread waits in the inbox.
        self._send_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._box = threading.Lock()
        self.sock = self._connect()

    def _connect(self) -> socket.socket:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as e:
            raise FixSessionEnded(f"cannot connect to {self.where}: {e.strerror or e}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    # ---- sending -------------------------------------------------------------------------

    def frame(self, msg_type: str, body: list[Field], *, seq: int | None = None, poss_dup: bool = False) -> bytes:
        header: list[Field] = [(49, self.sender), (56, self.target), (34, str(seq or self.next_out))]
        header.append((52, sending_time()))
        if poss_dup:
            header += [(43, "Y"), (122, sending_time())]
        return encode(msg_type, header, body)

    def send(
        self,
        msg_type: str,
        body: list[Field],
        *,
        seq: int | None = None,
        poss_dup: bool = False,
        garble: str | None = None,
    ) -> int:
        """Send one message; its MsgSeqNum (the next one unless ``seq``). A garbled message (a
        wrong CheckSum) does not use up a number."""
        with self._send_lock:
            used = seq or self.next_out
            data = self.frame(msg_type, body, seq=used, poss_dup=poss_dup)
            data = GARBLE[garble](data) if garble else data
            self.write(data)
            if not garble and used >= self.next_out:  # a number chosen too high moves ours on
                self.next_out = used + 1
            return used

    def write(self, data: bytes) -> None:
        self.journal.add("sent", data)
        try:
            self.sock.sendall(data)
        except OSError as e:
            self.ended = True
            raise FixSessionEnded(f"{self.where}: the connection is closed ({e.strerror or e})") from None

    def logon(self, *, reset: bool = True, seq: int | None = None, heartbeat: int = HEARTBEAT_S) -> Message:
        """Logon (98=0, 108, 141=Y when ``reset``) and the system's Logon in answer."""
        first_out, first_in = (1, 1) if reset else (seq or self.next_out, self.next_in)
        body: list[Field] = [(98, "0"), (108, str(heartbeat))] + ([(141, "Y")] if reset else [])
        for attempt in range(LOGON_ATTEMPTS):
            # The system may still hold the session's previous connection (it has not seen it
            # close yet) and drop this Logon: connect again, a bounded number of times.
            self.next_out, self.next_in = first_out, first_in
            sent = self.send("A", body)
            try:
                reply = self.wait_admin(lambda m: m.msg_type in ("A", "5"), f"the Logon (MsgSeqNum {sent})")
                break
            except FixContractViolation:
                if not self.ended or attempt == LOGON_ATTEMPTS - 1:
                    raise
            time.sleep(0.2 * (attempt + 1))
            self.close()
            self.sock, self.ended, self._frames = self._connect(), False, FrameReader()
        if reply.msg_type == "5":
            raise FixSessionEnded(f"{self.where} answered the Logon with a Logout: {reply.get(58) or ''}".strip())
        self.check()
        return reply

    def check(self) -> None:
        """FixContractViolation for what the system broke of the session rules so far."""
        if self.problems:
            problems, self.problems = self.problems, []
            raise FixContractViolation(f"{self.where}: " + "; ".join(problems))

    def logout(self) -> None:
        """Logout, and the system's Logout (or the connection closing) in answer."""
        if self.ended:
            self.close()
            return
        with contextlib.suppress(FixSessionEnded):
            self.send("5", [(58, "certification: bye")])
            with contextlib.suppress(FixContractViolation):
                self.wait_admin(lambda m: m.msg_type == "5", "the Logout", timeout=3.0)
        self.close()

    def close(self) -> None:
        self.ended = True
        with contextlib.suppress(OSError):
            self.sock.close()

    # ---- receiving -----------------------------------------------------------------------

    def wait(self, predicate: Callable[[Message], bool], what: str, *, timeout: float | None = None) -> Message:
        """The first received application message (or Reject) ``predicate`` accepts, taken out
        of the inbox; FixContractViolation when none comes in time."""
        found = self._pump(lambda: self._take(predicate), timeout)
        if found is None:
            raise FixContractViolation(f"no answer from {self.where} to {what} within {timeout or self.timeout:.0f} s")
        return found

    def wait_admin(self, predicate: Callable[[Message], bool], what: str, *, timeout: float | None = None) -> Message:
        def take() -> Message | None:
            found = next((m for m in self.admin if predicate(m)), None)
            if found is not None:
                self.admin.remove(found)
            return found

        found = self._pump(take, timeout)
        if found is None:
            raise FixContractViolation(f"no answer from {self.where} to {what} within {timeout or self.timeout:.0f} s")
        return found

    def drain(self, seconds: float) -> None:
        """Read whatever arrives for ``seconds`` (answering the session's own requests)."""
        self._pump(lambda: None, seconds)

    def _take(self, predicate: Callable[[Message], bool]) -> Message | None:
        for i, m in enumerate(self.inbox):
            if predicate(m):
                return self.inbox.pop(i)
        return None

    def _pump(self, done: Callable[[], Message | None], timeout: float | None) -> Message | None:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            with self._box:
                found = done()
            if found is not None:
                return found
            left = deadline - time.monotonic()
            if left <= 0 or self.ended:
                return None
            if not self._read_lock.acquire(timeout=min(left, 0.5)):
                continue
            try:
                with self._box:
                    found = done()  # it may have come in while another thread was reading
                if found is not None:
                    return found
                self._read_once(min(left, 0.5))
            finally:
                self._read_lock.release()

    def _read_once(self, timeout: float) -> None:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return
        except OSError:
            data = b""
        if not data:
            self.ended = True
            return
        garbled = self._frames.garbled
        for frame in self._frames.feed(data):
            self.journal.add("received", frame)
            with self._box:
                self._receive(decode(frame))
        if self._frames.garbled != garbled:
            raise FixContractViolation(f"{self.where} sent a garbled frame (a wrong BodyLength or CheckSum)")

    def _receive(self, msg: Message) -> None:
        self._check_header(msg)
        seq = int(msg.get(34) or 0)
        poss_dup = msg.get(43) == "Y"
        if msg.msg_type == "4" and msg.get(123) != "Y":  # SequenceReset-Reset
            self.next_in = int(msg.get(36) or self.next_in)
            self.admin.append(msg)
            return
        if msg.msg_type == "A":
            self.logged_on = True
        elif not self.logged_on and msg.msg_type not in ADMIN:
            self.problems.append(f"{_name(msg)} came before the answer to our Logon (FIX: the Logon comes first)")
        if msg.msg_type == "8" and not poss_dup and msg.get(150) != STATUS_EXEC_TYPE and msg.get(17):
            if msg[17] in self._exec_ids:
                self.problems.append(f"{_name(msg)} repeats ExecID {msg[17]} without PossDupFlag (a report sent twice)")
            self._exec_ids.add(msg[17])
        if seq > self.next_in and msg.msg_type not in ("5",):
            if msg.msg_type != "A":  # at a Logon stored reports may wait: we ask for them
                self.problems.append(f"MsgSeqNum jumped from {self.next_in} to {seq} ({_name(msg)})")
            self.gaps.append((self.next_in, seq))
            expected = self.next_in
            if msg.msg_type != "2":  # ask for what we missed (a ResendRequest of theirs is answered below)
                self.send("2", [(7, str(expected)), (16, "0")])
        if seq < self.next_in and not poss_dup and msg.msg_type != "5":
            self.admin.append(msg)  # a number used twice: the session cases look at it
            return
        if seq >= self.next_in:
            self.next_in = seq + 1
        if msg.msg_type == "4":  # GapFill
            self.next_in = max(self.next_in, int(msg.get(36) or self.next_in))
        if msg.msg_type == "1":
            self.send("0", [(112, msg.get(112) or "")])
        elif msg.msg_type == "2":
            self._answer_resend(msg)
        if msg.msg_type == "5":
            self.ended = True
        (self.admin if msg.msg_type in ADMIN and msg.msg_type != "3" else self.inbox).append(msg)

    def _answer_resend(self, msg: Message) -> None:
        """The harness resends nothing: it gap-fills the whole range (its requests were answered)."""
        begin = int(msg.get(7) or 1)
        self.write(self.frame("4", [(123, "Y"), (36, str(self.next_out))], seq=begin, poss_dup=True))

    def _check_header(self, msg: Message) -> None:
        problems = []
        if msg.get(8) != BEGIN_STRING:
            problems.append(f"BeginString is {msg.get(8)!r}, not {BEGIN_STRING}")
        if msg.get(49) != self.target or msg.get(56) != self.sender:
            problems.append(f"CompIDs 49={msg.get(49)} 56={msg.get(56)}, expected 49={self.target} 56={self.sender}")
        if not (msg.get(34) or "").isdigit():
            problems.append("MsgSeqNum (34) missing or not a number")
        if not msg.get(52):
            problems.append("SendingTime (52) missing")
        if problems:
            raise FixContractViolation(f"{_name(msg)} from {self.where}: " + "; ".join(problems))


def _name(msg: Message) -> str:
    return f"35={msg.msg_type} (MsgSeqNum {msg.get(34)})"


# ---- the gateway -----------------------------------------------------------------------------


@dataclass
class _Known:
    """What the harness knows of one order it entered."""

    order: Order
    clordid: str | None
    """The latest accepted ClOrdID (what a replace or cancel names as 41)."""


class FixRefusal(ValidationError):
    """A VALIDATION_ERROR read off a FIX refusal: the fields are those its Text (58) names."""

    def __init__(self, text: str, ord_rej_reason: str | None = None) -> None:
        named = [f for f in FIELD_NAMES if f in text.lower() or f.replace("_", " ") in text.lower()]
        super().__init__([{"field": f, "message": text} for f in named] or [{"field": "body", "message": text}])
        self.message = text
        self.ord_rej_reason = ord_rej_reason
        """A refused create's OrdRejReason (103); None for other refusals."""
        self.fields_from_text = True


class FixWireGateway:
    """The gateway protocol over FIX, strict (see the module docstring)."""

    def __init__(self, client: FixClient, *, rest: Any = None) -> None:
        self.client = client
        self.rest = rest
        self.assigned: dict[int, dict[str, Any]] = {}
        """What a create sent that its caller left out (FIX requires a ClOrdID), by order id:
        the order must echo it as if given."""
        self.rest_read = rest is not None
        """The HTTP face answers ``GET /order/{id}`` (the read tier): reads go there."""
        self._known: dict[int, _Known] = {}
        self._exec_ids: set[str] = set()
        self._ids = itertools.count(1)
        self._flight = threading.Lock()
        self._in_flight: dict[int, int] = {}
        self._prefix = f"C{uuid.uuid4().hex[:6]}"

    @property
    def server(self) -> str | None:
        return getattr(self.rest, "server", None)

    def close(self) -> None:
        self.client.logout()
        if self.rest is not None:
            self.rest.close()

    def _clordid(self) -> str:
        return f"{self._prefix}-{next(self._ids)}"

    # ---- commands ------------------------------------------------------------------------

    def create(
        self,
        *,
        symbol: Any,
        side: Any,
        quantity: Any,
        price: Any = None,
        order_type: Any = "LIMIT",
        client_order_id: Any = None,
        **extra: Any,
    ) -> Order:
        if extra:  # no FIX tag for it: the FIX face has nothing to refuse
            raise NotOffered(f"the FIX face has no field for {', '.join(sorted(extra))}")
        clordid = str(client_order_id) if client_order_id is not None else self._clordid()
        given = [(55, symbol), (54, SIDE.get(str(side), side)), (38, quantity)]
        given += [(40, ORD_TYPE.get(str(order_type), order_type)), (44, price)]
        body: list[Field] = [(11, clordid)] + [(t, _wire(v)) for t, v in given if v is not None]
        body.append((60, sending_time()))
        seq = self.client.send("D", body)
        reply = self._answer(seq, clordid, "NewOrderSingle")
        what = f"the ExecutionReport answering NewOrderSingle 11={clordid}"
        if reply.msg_type != "8":
            raise FixContractViolation(f"{what}: a NewOrderSingle is answered by 35=8, not 35={reply.msg_type}")
        self._check_report(reply, what)
        if reply.get(11) != clordid:
            raise FixContractViolation(f"{what}: ClOrdID (11) {reply.get(11)!r}, not {clordid!r} verbatim")
        if reply.get(150) == REJECTED:
            raise self._refused_create(reply, what)
        self._expect(reply, what, exec_type=EXEC_TYPE[Action.CREATE], ord_status="0")
        order_id = _order_id(reply, what)
        at = _transact_time(reply)
        order = Order(
            order_id=order_id,
            symbol=reply.get(55) or str(symbol).upper(),
            side=Side(SIDE_OF.get(reply.get(54) or "", str(side))),
            order_type=OrderType(ORD_TYPE_OF.get(reply.get(40) or "", str(order_type))),
            quantity=int(reply.get(38) or _int(reply, 14) + _int(reply, 151)),
            price=as_decimal(reply.get(44))
            if reply.get(44)
            else (as_decimal(_wire(price)) if price is not None else None),
            status=Status.NEW,
            version=1,
            created_at=at,
            updated_at=at,
            client_order_id=clordid,
        )
        self._check_amounts(reply, order, what)
        if client_order_id is None:
            self.assigned[order_id] = {"client_order_id": clordid}
        return self._settle(order, clordid, reply, what)

    def modify(self, order_id: int, *, quantity: Any = None, price: Any = None, **extra: Any) -> Order:
        if extra:
            raise NotOffered(f"the FIX face has no field for {', '.join(sorted(extra))}")
        if quantity is None and price is None:
            raise NotOffered("a replace that changes nothing: a FIX OrderCancelReplaceRequest always carries 38")
        known = self._known.get(order_id)
        body: list[Field] = [(40, ORD_TYPE[known.order.order_type.value] if known else "2")]
        body.append((38, _wire(quantity if quantity is not None else (known.order.quantity if known else 1))))
        new_price = price if price is not None else (known.order.price if known else None)
        if new_price is not None:
            body.append((44, _wire(new_price)))
        return self._change(Action.MODIFY, order_id, known, body)

    def cancel(self, order_id: int) -> Order:
        return self._change(Action.CANCEL, order_id, self._known.get(order_id), [])

    def _change(self, action: Action, order_id: int, known: _Known | None, extra: list[Field]) -> Order:
        clordid = self._clordid()
        body: list[Field] = [(11, clordid)]
        with self._flight:
            racing = self._in_flight.get(order_id, 0) > 0
            self._in_flight[order_id] = self._in_flight.get(order_id, 0) + 1
        try:
            return self._change_sent(action, order_id, known, body, extra, racing=racing)
        finally:
            with self._flight:
                self._in_flight[order_id] -= 1

    def _change_sent(
        self,
        action: Action,
        order_id: int,
        known: _Known | None,
        body: list[Field],
        extra: list[Field],
        *,
        racing: bool,
    ) -> Order:
        # 41 is the latest accepted ClOrdID; while another command on the order is in flight it
        # may be going stale, so the order is then named by 37 alone (DESIGN.md allows either)
        clordid = body[0][1]
        if known is not None and known.clordid and not racing:
            body.append((41, known.clordid))
        body.append((37, str(order_id)))
        symbol, side = (known.order.symbol, SIDE[known.order.side.value]) if known else UNKNOWN_INSTRUMENT
        body += [(55, symbol), (54, side), *extra, (60, sending_time())]
        name = "OrderCancelReplaceRequest" if action is Action.MODIFY else "OrderCancelRequest"
        seq = self.client.send("G" if action is Action.MODIFY else "F", body)
        reply = self._answer(seq, clordid, name)
        what = f"the answer to {name} 11={clordid} (order {order_id})"
        if reply.msg_type == "9":
            raise self._cancel_reject(reply, action, order_id, known, what, body)
        if reply.msg_type != "8":
            raise FixContractViolation(f"{what}: 35={reply.msg_type}; expected 35=8 or 35=9")
        self._check_report(reply, what)
        if known is None:
            raise FixContractViolation(f"{what}: accepted for an order this session never saw acknowledged")
        self._expect(reply, what, exec_type=EXEC_TYPE[action], ord_status="0" if action is Action.MODIFY else "4")
        self._check_orig(reply, body, what)
        before = known.order
        quantity = int(reply.get(38) or (_int(reply, 14) + _int(reply, 151) if action is Action.MODIFY else 0))
        order = replace(
            before,
            status=Status.MODIFIED if action is Action.MODIFY else Status.CANCELLED,
            version=before.version + 1,
            updated_at=max(_transact_time(reply), before.updated_at),
            quantity=quantity or before.quantity,
            price=as_decimal(reply.get(44)) if reply.get(44) else before.price,
        )
        self._check_amounts(reply, order, what)
        return self._settle(order, clordid, reply, what)

    def execute(self, order_id: int, *, price: Any = None, **extra: Any) -> Order:
        if self.rest is None:
            raise NotOffered("execute: the FIX face has no message for it, and no HTTP face was given")
        executed: Order = self.rest.execute(order_id, price=price, **extra)
        what = f"the fill report (150=F) of order {order_id}, executed through the HTTP face"
        known = self._known.get(order_id)
        if known is None:
            return executed
        report = self.client.wait(
            lambda m: (
                m.msg_type == "8"
                and m.get(43) != "Y"
                and m.get(37) == str(order_id)
                and m.get(150) == EXEC_TYPE[Action.EXECUTE]
            ),
            what + " (DESIGN.md: an execute from any face sends 150=F to the session that entered the order)",
            timeout=FILL_WAIT_S,
        )
        self._check_report(report, what)
        self._expect(report, what, exec_type=EXEC_TYPE[Action.EXECUTE], ord_status="2")
        problems = []
        if as_decimal(report.get(31)) != executed.executed_price:
            problems.append(f"LastPx (31) {report.get(31)}, the fill was at {executed.executed_price}")
        if _int(report, 32) != executed.executed_quantity:
            problems.append(f"LastQty (32) {report.get(32)}, the fill was {executed.executed_quantity}")
        if problems:
            raise FixContractViolation(f"{what}: " + "; ".join(problems))
        self._check_amounts(report, executed, what)
        self._known[order_id] = _Known(executed, known.clordid)
        return executed

    def get(self, order_id: int) -> Order:
        if self.rest is not None and self.rest_read:
            return self.rest.get(order_id)  # type: ignore[no-any-return]
        return self.status(order_id)

    def status(self, order_id: int) -> Order:
        """OrderStatusRequest: the order as its 150=I report says (what it carries) and as the
        harness last knew it (what it does not)."""
        known = self._known.get(order_id)
        clordid = self._clordid()
        body: list[Field] = [(37, str(order_id)), (790, clordid)]
        if known is not None:
            body = [(11, known.clordid or clordid), *body, (55, known.order.symbol), (54, SIDE[known.order.side.value])]
        else:
            body = [(11, clordid), *body, *zip((55, 54), UNKNOWN_INSTRUMENT, strict=True)]
        seq = self.client.send("H", body)
        what = f"the answer to OrderStatusRequest of order {order_id}"
        reply = self.client.wait(
            lambda m: (
                m.get(43) != "Y"
                and (
                    (m.msg_type == "8" and m.get(150) == STATUS_EXEC_TYPE and (m.get(37) in (str(order_id), "NONE")))
                    or (m.msg_type in ("3", "j") and m.get(45) == str(seq))
                )
            ),
            what,
        )
        if reply.msg_type != "8":
            raise FixContractViolation(f"{what}: refused with 35={reply.msg_type}: {reply.get(58) or ''}")
        if reply.get(37) == "NONE" or reply.get(39) == REJECTED:
            raise from_code("ORDER_NOT_FOUND", reply.get(58) or f"order {order_id} is unknown")
        self._check_report(reply, what, exec_id_unique=False)
        if known is None:
            raise FixContractViolation(f"{what}: reports order {order_id}, which this session never entered")
        status = _status_of(reply, known.order.status, what)
        order = replace(
            known.order,
            status=status,
            quantity=int(reply.get(38) or known.order.quantity),
            price=as_decimal(reply.get(44)) if reply.get(44) else known.order.price,
            executed_quantity=_int(reply, 14),
            executed_price=as_decimal(reply.get(6)) if _int(reply, 14) else None,
        )
        self._check_amounts(reply, order, what)
        return order

    def orders(self, *, status: str | None = None, symbol: str | None = None) -> list[Order]:
        if self.rest is None:
            raise NotOffered("the listing: the FIX face has no message for it, and no HTTP face was given")
        return self.rest.orders(status=status, symbol=symbol)  # type: ignore[no-any-return]

    def events(self, order_id: int | None = None) -> list[OrderEvent]:
        if self.rest is None:
            raise NotOffered("the audit log: the FIX face carries none, and no HTTP face was given")
        return self.rest.events(order_id)  # type: ignore[no-any-return]

    # ---- what every answer is held to ------------------------------------------------------

    def _answer(self, seq: int, clordid: str, name: str) -> Message:
        """The report or cancel reject answering ClOrdID ``clordid``; a Reject (35=3) or
        BusinessMessageReject (35=j) of message ``seq`` is a refusal of bad input (FIX lets a
        session refuse a value of the wrong format), raised as VALIDATION_ERROR naming the field
        of its RefTagID (371)."""
        reply = self.client.wait(
            lambda m: (
                m.get(43) != "Y"  # a resent copy answers nothing new
                and (
                    (m.msg_type in ("8", "9") and m.get(11) == clordid and m.get(150) != STATUS_EXEC_TYPE)
                    or (m.msg_type in ("3", "j") and m.get(45) == str(seq))
                )
            ),
            f"{name} 11={clordid}",
        )
        self.client.check()
        if reply.msg_type in ("3", "j"):
            if reply.get(372) != REQUEST_TYPES.get(name):
                raise FixContractViolation(
                    f"{_name(reply)} refusing {name}: RefMsgType (372) {reply.get(372)}, expected "
                    f"{REQUEST_TYPES.get(name)} (DESIGN.md: 35=3 or 35=j with 45/372)"
                )
            field_name = TAG_FIELD.get(reply.get(371) or "")
            where = f" (RefTagID 371={reply.get(371)}: {field_name})" if field_name else ""
            text = f"{reply.get(58) or 'refused'}{where}"
            raise FixRefusal(f"35={reply.msg_type} session-level refusal: {text}")
        return reply

    def _settle(self, order: Order, clordid: str, reply: Message, what: str) -> Order:
        """Remember the order; with an HTTP face, check the report against ``GET /order/{id}``
        and answer that (it carries version and timestamps)."""
        self._known[order.order_id] = _Known(order, clordid)
        if self.rest is None or not self.rest_read:
            return order
        there = self.rest.get(order.order_id)
        if there.version != order.version:  # changed again since (a racing command): nothing to compare
            return order
        mismatch = [
            f"{k} {getattr(order, k)} on FIX, {getattr(there, k)} over HTTP"
            for k in SETTLED
            if not same(getattr(order, k), getattr(there, k))
        ]
        if mismatch:
            raise FixContractViolation(f"{what} disagrees with GET /order/{order.order_id}: " + "; ".join(mismatch))
        self._known[order.order_id] = _Known(there, clordid)
        return there  # type: ignore[no-any-return]

    def _check_report(self, msg: Message, what: str, *, exec_id_unique: bool = True) -> None:
        missing = [str(t) for t in REPORT_FIELDS if not msg.get(t)]
        if msg.get(150) == REJECTED:
            missing = [t for t in missing if t not in ("14", "151", "6")] + ([] if msg.get(58) else ["58"])
        if missing:
            raise FixContractViolation(f"{what}: an ExecutionReport without {', '.join(missing)}")
        exec_id = msg[17]
        if exec_id_unique and msg.get(43) != "Y":
            if exec_id in self._exec_ids:
                raise FixContractViolation(f"{what}: ExecID (17) {exec_id} was used before; each must be unique")
            self._exec_ids.add(exec_id)
        for tag in () if msg.get(150) == REJECTED else (14, 151, 6, 31, 32, 38, 44):  # a refusal may echo bad input
            value = msg.get(tag)
            if value is not None and as_decimal(value) is None:
                raise FixContractViolation(f"{what}: tag {tag} is {value!r}, not a number")

    def _expect(self, msg: Message, what: str, *, exec_type: str, ord_status: str) -> None:
        if msg.get(150) != exec_type or msg.get(39) != ord_status:
            raise FixContractViolation(
                f"{what}: 150={msg.get(150)} 39={msg.get(39)}; DESIGN.md's FIX face reports this with "
                f"150={exec_type} 39={ord_status}"
            )

    def _check_amounts(self, msg: Message, order: Order, what: str) -> None:
        """14 CumQty, 151 LeavesQty and 6 AvgPx agree with the order."""
        open_ = order.status in (Status.NEW, Status.MODIFIED)
        want = {
            14: order.executed_quantity,
            151: order.quantity - order.executed_quantity if open_ else 0,
            6: order.executed_price or 0,
        }
        wrong = [
            f"{tag}={msg.get(tag)} (expected {value})"
            for tag, value in want.items()
            if as_decimal(msg.get(tag)) != value
        ]
        if msg.get(38) and as_decimal(msg.get(38)) != order.quantity:
            wrong.append(f"38={msg.get(38)} (the order's quantity is {order.quantity})")
        if wrong:
            raise FixContractViolation(f"{what}: " + ", ".join(wrong))

    def _status_now(self, order_id: int, known: _Known) -> Status:
        """The order's status as the system reports it now (after a refusal left it as it was)."""
        try:
            return self.get(order_id).status
        except OMSError:
            return known.order.status

    def _refused_create(self, reply: Message, what: str) -> OMSError:
        self._expect(reply, what, exec_type=REJECTED, ord_status=REJECTED)
        reason = reply.get(103)
        if reason not in ORD_REJ_REASON:
            allowed = ", ".join(ORD_REJ_REASON)
            raise FixContractViolation(f"{what}: a refused create has OrdRejReason (103) {reason}, not {allowed}")
        text = reply.get(58) or ""
        code = ORD_REJ_REASON[reason]
        return FixRefusal(text, reason) if code == "VALIDATION_ERROR" else from_code(code, text)

    def _check_orig(self, reply: Message, body: list[Field], what: str) -> None:
        """41 of the answer to a replace or cancel is the OrigClOrdID the request gave (FIX
        4.4 has it on the report of a replace or cancel and on every OrderCancelReject)."""
        sent = next((v for t, v in body if t == 41), None)
        if sent is not None and reply.get(41) != sent:
            raise FixContractViolation(f"{what}: OrigClOrdID (41) {reply.get(41)!r}, the request gave {sent!r}")
        if reply.msg_type == "9" and not reply.get(41):
            raise FixContractViolation(f"{what}: an OrderCancelReject without OrigClOrdID (41)")

    def _cancel_reject(
        self, reply: Message, action: Action, order_id: int, known: _Known | None, what: str, body: list[Field]
    ) -> OMSError:
        self._check_orig(reply, body, what)
        problems = []
        if reply.get(434) != CXL_REJ_RESPONSE_TO[action]:
            problems.append(f"434={reply.get(434)}, expected {CXL_REJ_RESPONSE_TO[action]}")
        reason = reply.get(102)
        if reason not in CXL_REJ_REASON:
            problems.append(f"CxlRejReason (102) {reason}, not one of {', '.join(CXL_REJ_REASON)}")
        if not reply.get(58):
            problems.append("no Text (58)")
        unknown = CXL_REJ_REASON.get(reason or "") == "ORDER_NOT_FOUND"
        if unknown and (reply.get(37) != "NONE" or reply.get(39) != REJECTED):
            problems.append(f"an unknown order is 37=NONE 39=8, not 37={reply.get(37)} 39={reply.get(39)}")
        if not unknown and known is not None and reply.get(39) != ORD_STATUS[known.order.status]:
            status = self._status_now(order_id, known)  # a command of another thread may have won
            if reply.get(39) != ORD_STATUS[status]:
                problems.append(f"39={reply.get(39)}, but the order is {status.value} (39={ORD_STATUS[status]})")
        if problems:
            raise FixContractViolation(f"{what}: OrderCancelReject " + "; ".join(problems))
        assert reason is not None
        code = CXL_REJ_REASON[reason]
        text = reply.get(58) or ""
        if code == "VALIDATION_ERROR":
            return FixRefusal(text)
        return from_code(code, text)


REQUEST_TYPES = {"NewOrderSingle": "D", "OrderCancelReplaceRequest": "G", "OrderCancelRequest": "F"}


SETTLED = ("status", "quantity", "price", "symbol", "side", "order_type", "client_order_id", "executed_quantity")
"""What a report says of an order that ``GET /order/{id}`` must say too."""


def _wire(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def as_decimal(text: str | None) -> Decimal | None:
    """The exact finite number a tag says, or None."""
    try:
        value = Decimal(text or "")
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _int(msg: Message, tag: int) -> int:
    value = as_decimal(msg.get(tag))
    return int(value) if value is not None else 0


def _order_id(msg: Message, what: str) -> int:
    text = msg.get(37) or ""
    if not text.isdigit():
        raise FixContractViolation(f"{what}: OrderID (37) {text!r} is not the order's id (an integer)")
    return int(text)


def _transact_time(msg: Message) -> datetime:
    text = msg.get(60) or msg.get(52) or ""
    for fmt in ("%Y%m%d-%H:%M:%S.%f", "%Y%m%d-%H:%M:%S"):
        with contextlib.suppress(ValueError):
            at = datetime.strptime(text, fmt).replace(tzinfo=UTC)
            return at.replace(microsecond=at.microsecond // 1000 * 1000)
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _status_of(msg: Message, last: Status, what: str) -> Status:
    """The status a 150=I report's 39 says (0 keeps NEW or MODIFIED: FIX 4.4 reports both as New)."""
    found = {"0": last if last in (Status.NEW, Status.MODIFIED) else None, "4": Status.CANCELLED, "2": Status.EXECUTED}
    status = found.get(msg.get(39) or "")
    if status is None:
        raise FixContractViolation(f"{what}: 39={msg.get(39)}, but the order was {last.value}")
    return status
