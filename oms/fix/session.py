"""The FIX 4.4 session layer as a state machine, for either side of a session.

Adapter-free: a ``Session`` is fed whole frames (``on_frames``) and clock ticks
(``on_timer``) and writes bytes to a ``Transport`` it is attached to; it knows nothing of
sockets or event loops. It implements the FIX 4.4 session rules:

- Logon (35=A) first, with HeartBtInt (108); ResetSeqNumFlag (141=Y) resets both numbers
  to 1; a Logon with a MsgSeqNum too low is answered with Logout.
- Heartbeat (0) after HeartBtInt seconds without sending; TestRequest (1) after a silence
  of 1.2 x HeartBtInt, answered by a Heartbeat carrying its TestReqID (112); a counterparty
  silent after that is disconnected.
- MsgSeqNum (34): too high -> ResendRequest (2) from the expected number to infinity, the
  early messages are kept and processed in order once the gap is filled; too low without
  PossDupFlag (43=Y) -> Logout and disconnect; too low with it -> ignored.
- ResendRequest (2) -> the stored application messages again, with PossDupFlag=Y and
  OrigSendingTime (122), runs of administrative messages replaced by one
  SequenceReset-GapFill (35=4, 123=Y, 36).
- SequenceReset (4): GapFill moves the expected number up; Reset mode sets it regardless of
  MsgSeqNum; an attempt to lower it is rejected (Reject 35=3, 373=5).
- Reject (35=3) with RefSeqNum (45), RefMsgType (372), RefTagID (371),
  SessionRejectReason (373) and Text (58); a wrong CompID (373=9) is rejected, then logged out.
- Garbled frames never reach a Session (``codec.FrameReader`` drops them).

Each unit of work (one batch of frames, one tick, one send) ends with one
``SessionStore.commit`` of the new sequence numbers and every message it sent, and only then
are the bytes written: nothing is on the wire that a restart would not resend.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Protocol

from oms.fix.codec import BEGIN_STRING, Field, Message, decode, encode, parse_pairs, sending_time
from oms.fix.state import Commit, OrderLink, Sent, SessionKey, SessionStore

log = logging.getLogger("oms.fix.session")

ADMIN_MSG_TYPES = frozenset("0A12345")
NOT_RESENT = frozenset("0A1245")
"""Administrative messages a resend replaces by a GapFill (a Reject is resent, as FIX says)."""
_HEADER_TAGS = frozenset({8, 9, 10, 35, 34, 43, 49, 52, 56, 97, 122})

# SessionRejectReason (373)
REQUIRED_TAG_MISSING = 1
VALUE_INCORRECT = 5
INCORRECT_DATA_FORMAT = 6
COMPID_PROBLEM = 9
INVALID_MSG_TYPE = 11

TEST_REQUEST_FACTOR = 1.2
"""A TestRequest goes out after this many HeartBtInts of silence (FIX: 'reasonable transmission time')."""


class Transport(Protocol):
    def write(self, data: bytes) -> None:
        """Queue ``data`` for the counterparty, in call order. Never blocks for long."""
        ...

    def close(self) -> None:
        """Close the connection once everything written so far is flushed."""
        ...


class Application(Protocol):
    def on_logon(self, session: Session) -> None: ...

    def on_message(self, session: Session, msg: Message) -> None:
        """An application message (or a session Reject, 35=3), in sequence. May call
        ``session.send`` and raise SessionReject."""
        ...

    def on_logout(self, session: Session) -> None: ...


class SessionReject(Exception):
    """Raised by an application to refuse a message with a session-level Reject (35=3)."""

    def __init__(self, reason: int, text: str, tag: int | None = None) -> None:
        super().__init__(text)
        self.reason, self.text, self.tag = reason, text, tag


def required(msg: Message, *tags: int) -> None:
    """Raise SessionReject (373=1) naming the first of ``tags`` that ``msg`` lacks."""
    for tag in tags:
        if not msg.get(tag):
            raise SessionReject(REQUIRED_TAG_MISSING, f"Required tag missing: {tag}", tag)


class Session:
    """One FIX session (``key``): its sequence numbers, timers and rules. Thread-safe."""

    def __init__(
        self,
        key: SessionKey,
        store: SessionStore,
        app: Application | None = None,
        *,
        heartbeat: int = 30,
        initiator: bool = False,
        reset_on_logon: bool = False,
        clock: Callable[[], float] = time.monotonic,
        timestamps: Callable[[], datetime] | None = None,
    ) -> None:
        """``clock`` (monotonic seconds) times heartbeats and timeouts; ``timestamps`` (a
        UTC ``datetime``, e.g. an engine's ``oms.clock.Clock``) is what SendingTime (52) and
        OrigSendingTime (122) are read from -- the wall clock when None."""
        self.key, self.store, self.app = key, store, app
        self.timestamps = timestamps
        self.heartbeat = heartbeat
        self.initiator = initiator
        self.reset_on_logon = reset_on_logon
        self.clock = clock
        self.lock = threading.RLock()
        self.next_out, self.next_in = store.load(key)
        self._committed = (self.next_out, self.next_in)
        self.transport: Transport | None = None
        self.logged_on = False
        self.logon_event = threading.Event()
        self._logout_sent_at: float | None = None
        self._queue: dict[int, Message] = {}
        self._resend_until = 0
        self._test_sent_at: float | None = None
        self._test_count = 0
        self._last_sent = self._last_received = clock()
        # the unit of work in progress
        self._depth = 0
        self._sent: list[Sent] = []
        self._writes: list[bytes] = []
        self._links: list[OrderLink] = []
        self._pending_added: list[tuple[str, list[Field]]] = []
        self._pending_done: list[int] = []
        self._close_after = False

    def __repr__(self) -> str:
        return f"Session({self.key}, out={self.next_out}, in={self.next_in}, logged_on={self.logged_on})"

    # ---- the connection ------------------------------------------------------------

    def attach(self, transport: Transport) -> None:
        """A new connection for this session (not logged on yet)."""
        with self.lock:
            self.transport = transport
            self.logged_on = False
            self.logon_event.clear()
            self._logout_sent_at = None
            self._queue.clear()
            self._resend_until = 0
            self._test_sent_at = None
            self._last_sent = self._last_received = self.clock()

    def detach(self, transport: Transport | None = None) -> None:
        """The connection (``transport``, or whichever is attached) is gone."""
        with self.lock:
            if transport is not None and transport is not self.transport:
                return  # a newer connection is attached
            was_logged_on = self.logged_on
            self.transport = None
            self.logged_on = False
            self.logon_event.clear()
            self._queue.clear()
            if was_logged_on and self.app is not None:
                self.app.on_logout(self)

    @property
    def connected(self) -> bool:
        return self.transport is not None

    def start_logon(self) -> None:
        """The initiator's first message: Logon (with 141=Y when ``reset_on_logon``)."""
        with self.lock, self._unit():
            body: list[Field] = [(98, "0"), (108, str(self.heartbeat))]
            if self.reset_on_logon:
                self.store.reset(self.key)
                self.next_out = self.next_in = 1
                self._committed = (1, 1)
                body.append((141, "Y"))
            self._send("A", body)

    def logout(self, text: str = "") -> None:
        """Send Logout; the counterparty's Logout (or a timeout) closes the connection."""
        with self.lock, self._unit():
            if self.logged_on and self._logout_sent_at is None:
                self._logout(text)

    # ---- the unit of work: one commit, then the writes --------------------------------

    @contextmanager
    def _unit(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._finish()

    def _finish(self) -> None:
        sent, writes, links = self._sent, self._writes, self._links
        added, done, close = self._pending_added, self._pending_done, self._close_after
        self._sent, self._writes, self._links, self._pending_added, self._pending_done = [], [], [], [], []
        self._close_after = False
        numbers = (self.next_out, self.next_in)
        if sent or links or added or done or numbers != self._committed:
            self.store.commit(self.key, Commit(*numbers, sent, links, added, done))
            self._committed = numbers
        transport = self.transport
        if transport is not None:
            for data in writes:
                transport.write(data)
            if close:
                transport.close()
                self.detach()

    def link(self, link: OrderLink) -> None:
        """Record, in the current unit's commit, which session entered an order (for the application)."""
        self._links.append(link)

    # ---- sending ---------------------------------------------------------------------

    def send(self, msg_type: str, body: list[Field]) -> int | None:
        """Send an application message; returns its MsgSeqNum. A session not logged on keeps
        it (persisted) and sends it after its next logon: returns None."""
        with self.lock, self._unit():
            if not self.logged_on:
                self._pending_added.append((msg_type, body))
                return None
            return self._send(msg_type, body)

    def _stamp(self) -> str:
        """SendingTime now, from ``timestamps`` (the wall clock when None)."""
        return sending_time(self.timestamps() if self.timestamps is not None else None)

    def _header(self, seq: int, now: str) -> list[Field]:
        return [(49, self.key.sender), (56, self.key.target), (34, str(seq)), (52, now)]

    def _send(self, msg_type: str, body: list[Field]) -> int:
        seq = self.next_out
        data = encode(msg_type, self._header(seq, self._stamp()), body)
        self.next_out = seq + 1
        self._sent.append(Sent(seq, msg_type, data))
        self._writes.append(data)
        self._last_sent = self.clock()
        return seq

    def _retransmit(self, sent: Sent) -> None:
        fields = parse_pairs(sent.data)
        original = next((v for t, v in fields if t == 52), None)
        if original is None:
            original = self._stamp()
        header = [(49, self.key.sender), (56, self.key.target), (34, str(sent.seq)), (43, "Y")]
        header += [(52, self._stamp()), (122, original)]
        self._writes.append(encode(sent.msg_type, header, [(t, v) for t, v in fields if t not in _HEADER_TAGS]))

    def _gap_fill(self, seq: int, new_seq: int) -> None:
        now = self._stamp()
        header = [(49, self.key.sender), (56, self.key.target), (34, str(seq)), (43, "Y"), (52, now), (122, now)]
        self._writes.append(encode("4", header, [(123, "Y"), (36, str(new_seq))]))

    def _reject(self, msg: Message, reason: int, text: str, tag: int | None = None) -> None:
        body: list[Field] = [(45, msg.get(34) or "0")]
        if tag is not None:
            body.append((371, str(tag)))
        if msg.msg_type:
            body.append((372, msg.msg_type))
        body += [(373, str(reason)), (58, text)]
        self._send("3", body)

    def _logout(self, text: str) -> None:
        self._send("5", [(58, text)] if text else [])
        self._logout_sent_at = self.clock()

    def _disconnect(self) -> None:
        self._close_after = True

    # ---- receiving ---------------------------------------------------------------------

    def on_frames(self, frames: list[bytes]) -> None:
        """Process whole frames from the connection, in order."""
        with self.lock, self._unit():
            for frame in frames:
                if self.transport is None or self._close_after:
                    return
                try:
                    msg = decode(frame)
                except ValueError:
                    continue  # not tag=value: garbled
                self._on_message(msg)

    def _on_message(self, msg: Message) -> None:
        self._last_received = self.clock()
        self._test_sent_at = None
        if msg.get(8) != BEGIN_STRING:
            self._logout(f"BeginString must be {BEGIN_STRING}")
            self._disconnect()
            return
        seq_text = msg.get(34) or ""
        if not seq_text.isdigit():
            if self.logged_on:
                self._logout("MsgSeqNum (34) missing or not a number")
            self._disconnect()
            return
        seq = int(seq_text)
        msg_type = msg.msg_type
        if msg.get(49) != self.key.target or msg.get(56) != self.key.sender:
            if self.logged_on:
                self._reject(msg, COMPID_PROBLEM, "CompID problem", 49 if msg.get(49) != self.key.target else 56)
                self._logout("CompID problem")
            self._disconnect()
            return
        if not self.logged_on:
            if msg_type != "A":
                log.warning("%s: first message is not a Logon (35=%s): disconnecting", self.key, msg_type)
                self._disconnect()
                return
            self._on_logon(msg, seq)
            return
        if msg_type == "4" and msg.get(123) != "Y":
            self._sequence_reset(msg)
            return
        if msg_type == "2":
            self._on_resend_request(msg)
        if seq > self.next_in:
            if msg_type != "2":
                self._queue[seq] = msg
            self._request_resend(seq)
            return
        if seq < self.next_in:
            if msg.get(43) == "Y":
                return  # a duplicate we have already seen
            self._logout(f"MsgSeqNum too low, expecting {self.next_in} but received {seq}")
            self._disconnect()
            return
        self._process(msg, seq)
        while self.next_in in self._queue and not self._close_after:
            nxt = self.next_in
            self._process(self._queue.pop(nxt), nxt)
        for early in [s for s in self._queue if s < self.next_in]:
            del self._queue[early]

    def _on_logon(self, msg: Message, seq: int) -> None:
        heartbeat = msg.get(108) or ""
        if not heartbeat.isdigit():
            self._logout("HeartBtInt (108) missing or not a number")
            self._disconnect()
            return
        reset = msg.get(141) == "Y"
        if reset and not self.initiator:
            self.store.reset(self.key)
            self.next_out = self.next_in = 1
            self._committed = (1, 1)
        if seq < self.next_in:
            self._logout(f"MsgSeqNum too low, expecting {self.next_in} but received {seq}")
            self._disconnect()
            return
        self.logged_on = True
        if not self.initiator:
            self.heartbeat = int(heartbeat)
            body: list[Field] = [(98, "0"), (108, heartbeat)]
            if reset:
                body.append((141, "Y"))
            self._send("A", body)
        if seq > self.next_in:
            self._request_resend(seq)
        else:
            self.next_in = seq + 1
        self.logon_event.set()
        if self.app is not None:
            self.app.on_logon(self)
        for pending in self.store.pending(self.key):
            self._send(pending.msg_type, pending.body)
            self._pending_done.append(pending.id)

    def _request_resend(self, seq: int) -> None:
        if self._resend_until >= self.next_in:  # one outstanding request (to infinity) covers it
            self._resend_until = max(self._resend_until, seq)
            return
        self._resend_until = seq
        self._send("2", [(7, str(self.next_in)), (16, "0")])

    def _sequence_reset(self, msg: Message) -> None:
        new = msg.get(36) or ""
        if not new.isdigit():
            self._reject(msg, REQUIRED_TAG_MISSING, "NewSeqNo (36) missing or not a number", 36)
            return
        if int(new) < self.next_in:
            self._reject(msg, VALUE_INCORRECT, f"attempt to lower sequence number, invalid value NewSeqNo={new}", 36)
            return
        self.next_in = int(new)
        self._queue = {s: m for s, m in self._queue.items() if s >= self.next_in}

    def _on_resend_request(self, msg: Message) -> None:
        begin_text, end_text = msg.get(7) or "", msg.get(16) or ""
        if not begin_text.isdigit() or not end_text.isdigit():
            self._reject(msg, REQUIRED_TAG_MISSING, "BeginSeqNo (7) and EndSeqNo (16) are required", 7)
            return
        begin, end, last = int(begin_text), int(end_text), self.next_out - 1
        if end == 0 or end > last:
            end = last
        if begin < 1 or begin > end:
            return
        stored = {s.seq: s for s in self.store.sent_between(self.key, begin, end)}
        stored.update({s.seq: s for s in self._sent if begin <= s.seq <= end})
        gap_from: int | None = None
        for n in range(begin, end + 1):
            sent = stored.get(n)
            if sent is None or sent.msg_type in NOT_RESENT:
                gap_from = n if gap_from is None else gap_from
                continue
            if gap_from is not None:
                self._gap_fill(gap_from, n)
                gap_from = None
            self._retransmit(sent)
        if gap_from is not None:
            self._gap_fill(gap_from, end + 1)

    def _process(self, msg: Message, seq: int) -> None:
        self.next_in = seq + 1
        msg_type = msg.msg_type
        if msg.get(43) == "Y" and not msg.get(122):
            self._reject(msg, REQUIRED_TAG_MISSING, "Required tag missing: OrigSendingTime (122)", 122)
            return
        if msg_type == "0" or msg_type == "2":
            return  # a ResendRequest was answered on arrival
        if msg_type == "3":
            if self.app is not None:  # so that an initiator can match it to its request
                self.app.on_message(self, msg)
            return
        if msg_type == "1":
            test_id = msg.get(112)
            if not test_id:
                self._reject(msg, REQUIRED_TAG_MISSING, "Required tag missing: TestReqID (112)", 112)
                return
            self._send("0", [(112, test_id)])
        elif msg_type == "4":  # GapFill (a Reset never gets here)
            new = msg.get(36) or ""
            if not new.isdigit():
                self._reject(msg, REQUIRED_TAG_MISSING, "NewSeqNo (36) missing or not a number", 36)
            elif int(new) <= seq:
                self._reject(msg, VALUE_INCORRECT, f"attempt to lower sequence number, NewSeqNo={new}", 36)
            else:
                self.next_in = int(new)
        elif msg_type == "5":
            if self._logout_sent_at is None:
                self._logout("")
            self._disconnect()
        elif msg_type == "A":
            self._reject(msg, VALUE_INCORRECT, "already logged on")
        elif self.app is not None:
            try:
                self.app.on_message(self, msg)
            except SessionReject as r:
                self._reject(msg, r.reason, r.text, r.tag)

    # ---- timers --------------------------------------------------------------------------

    def on_timer(self) -> None:
        """Heartbeats, TestRequests, and the end of a silent or logging-out connection."""
        with self.lock, self._unit():
            if self.transport is None or not self.logged_on:
                return
            now = self.clock()
            if self._logout_sent_at is not None:
                if now - self._logout_sent_at > max(2.0, self.heartbeat):
                    self._disconnect()
                return
            hb = self.heartbeat
            if hb <= 0:
                return
            if self._test_sent_at is not None and now - self._test_sent_at > hb * TEST_REQUEST_FACTOR:
                log.warning("%s: no answer to a TestRequest: disconnecting", self.key)
                self._disconnect()
                return
            if self._test_sent_at is None and now - self._last_received > hb * TEST_REQUEST_FACTOR:
                self._test_count += 1
                self._send("1", [(112, f"TEST{self._test_count}")])
                self._test_sent_at = now
            elif now - self._last_sent >= hb:
                self._send("0", [])
