"""``FixGateway``: the order gateway over FIX 4.4, as an initiator (``oms.connect("fix://...")``).

Adapter layer (a socket and one reader thread). ``create`` / ``modify`` / ``cancel`` / ``get``
send NewOrderSingle / OrderCancelReplaceRequest / OrderCancelRequest / OrderStatusRequest
and wait for the report that answers them; refusals come back as the same OMSError
classes the engine raises (``mapping.error_code``: 103/102 -> the error code, 58 -> the
message). What FIX cannot ask is answered from the execution reports this gateway has
received (``orders``), or refused with NOT_SUPPORTED (``execute``, ``events``).

What a report cannot carry is reconstructed: ``version`` counts the accepted changes this
gateway saw (1 on create), ``created_at`` is the first report's TransactTime, and an order
first seen through a status request reports MODIFIED as NEW (FIX 4.4 reports both as 39=0).
Each connection logs on with ResetSeqNumFlag=Y and keeps its session in memory.

Beyond the Gateway protocol: ``messages(order_id)`` -- the journal of the FIX messages this
gateway sent and received (``oms.fix.journal``: bounded, raw and decoded), ``seen(order_id)``
-- an order as the reports received last described it (no message sent), ``wait_for`` -- a
bounded wait for a report to bring an order to a status (a fill made on another face), and
``unsupported`` -- what this face cannot do and why, for a desk to show instead of a button
that would only fail. ``clock`` stamps SendingTime (52) and TransactTime (60) (the wall clock
by default; an engine's simulated clock in a reproducible notebook) and ``clordid_prefix``
fixes the ClOrdIDs it makes (``PREFIX-1``, ``PREFIX-2``, ...; by default a random prefix).
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType, TracebackType
from typing import ClassVar, Self
from urllib.parse import parse_qs, urlsplit

from oms.clock import Clock
from oms.errors import OMSError, StoreError, ValidationError, from_code
from oms.fix.codec import Field, FrameReader, Message, sending_time
from oms.fix.journal import JOURNAL_SIZE, RECEIVED, SENT, Journal, Record
from oms.fix.mapping import EXEC_TYPE, ORD_TYPE, ORD_TYPE_OF, SIDE, SIDE_OF, error_code
from oms.fix.session import Session
from oms.fix.state import SessionKey, SqliteSessionStore
from oms.gateway import PriceInput
from oms.lifecycle import Action, Status
from oms.model import Order, OrderEvent, OrderType, Side

DEFAULT_TIMEOUT = 10.0
TICK = 0.5


class NotSupported(OMSError):
    """The FIX face has no message for what was asked."""

    code = "NOT_SUPPORTED"
    http_status = 501


class FixUnreachable(StoreError):
    """The FIX acceptor did not answer: refused connection, refused Logon, no report in time."""

    code = "SERVER_UNREACHABLE"


def _parse_time(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    fmt = "%Y%m%d-%H:%M:%S.%f" if "." in text else "%Y%m%d-%H:%M:%S"
    return datetime.strptime(text, fmt).replace(tzinfo=UTC)


def _error(code: str | None, text: str) -> OMSError:
    """The OMSError a refusal's reason code and Text stand for."""
    if code is None or code == ValidationError.code:
        errors = []
        for part in text.split("; "):
            field, sep, message = part.partition(": ")
            errors.append({"field": field, "message": message} if sep else {"field": "body", "message": part})
        return ValidationError(errors)
    return from_code(code, text)


class _SocketTransport:
    def __init__(self, sock: socket.socket, journal: Journal | None = None) -> None:
        self.sock = sock
        self.lock = threading.Lock()
        self.journal = journal

    def write(self, data: bytes) -> None:
        with self.lock:
            if self.journal is not None:  # the session writes one whole message per call
                self.journal.add(SENT, data)
            with contextlib.suppress(OSError):
                self.sock.sendall(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)


class FixGateway:
    """The gateway of a FIX 4.4 acceptor at ``host:port``, as ``sender`` talking to ``target``."""

    unsupported: ClassVar[Mapping[str, str]] = MappingProxyType(
        {
            "execute": "not on the FIX face: a fill is venue-internal (it arrives here as an ExecutionReport)",
            "events": "not on the FIX face: FIX carries none (the venue's REST or embedded face has it)",
        }
    )
    """Gateway methods this face cannot carry out (they raise NOT_SUPPORTED), and why."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        target: str,
        heartbeat: int = 30,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Clock | None = None,
        clordid_prefix: str | None = None,
        journal_size: int = JOURNAL_SIZE,
    ) -> None:
        self.url = f"fix://{host}:{port}?sender={sender}&target={target}"
        self.timeout = timeout
        self.clock = clock
        self.journal = Journal(journal_size)
        self._store = SqliteSessionStore()
        self._session = Session(
            SessionKey(sender, target), self._store, self, heartbeat=heartbeat, initiator=True, reset_on_logon=True,
            timestamps=clock,
        )  # fmt: skip
        self._cond = threading.Condition()
        self._replies: dict[str, Message] = {}
        self._rejects: dict[int, Message] = {}
        self._orders: dict[int, Order] = {}
        self._clordids: dict[int, str] = {}
        self._ids = itertools.count(1)
        self._prefix = clordid_prefix if clordid_prefix is not None else f"{sender}-{uuid.uuid4().hex[:8]}"
        self._closed = False
        try:
            self._sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as e:
            raise FixUnreachable(f"cannot connect to {self.url}: {e.strerror or e}") from None
        self._sock.settimeout(TICK)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._transport = _SocketTransport(self._sock, self.journal)
        self._session.attach(self._transport)
        self._reader = threading.Thread(target=self._read_loop, name="oms-fix-gateway", daemon=True)
        self._reader.start()
        self._session.start_logon()
        if not self._session.logon_event.wait(timeout):
            self._shutdown()
            raise FixUnreachable(f"{self.url} did not accept the Logon")

    @classmethod
    def from_url(cls, url: str, **kwargs: object) -> FixGateway:
        """``fix://HOST:PORT?sender=OURS&target=THEIRS[&heartbeat=S]``. Raises ValueError."""
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if parts.scheme != "fix" or not parts.hostname or not parts.port:
            raise ValueError(f"not a fix://HOST:PORT URL: {url!r}")
        if "sender" not in query or "target" not in query:
            raise ValueError(f"{url!r} needs ?sender=..&target=.. (our CompID and the acceptor's)")
        heartbeat = int(query.get("heartbeat", "30"))
        return cls(parts.hostname, parts.port, sender=query["sender"], target=query["target"], heartbeat=heartbeat,
                   **kwargs)  # type: ignore[arg-type]  # fmt: skip

    @property
    def target(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"FixGateway({self.url!r})"

    # ---- the connection ----------------------------------------------------------------

    def _read_loop(self) -> None:
        frames = FrameReader()
        while True:
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                self._session.on_timer()
                continue
            except OSError:
                data = b""
            if not data:
                break
            whole = frames.feed(data)
            for frame in whole:
                self.journal.add(RECEIVED, frame)
            self._session.on_frames(whole)
        self._session.detach()
        with self._cond:
            self._cond.notify_all()

    # ---- the session's application ---------------------------------------------------

    def on_logon(self, session: Session) -> None:
        pass

    def on_logout(self, session: Session) -> None:
        with self._cond:
            self._cond.notify_all()

    def on_message(self, session: Session, msg: Message) -> None:
        with self._cond:
            if msg.msg_type == "8" and msg.get(37) not in (None, "NONE") and msg.get(150) != EXEC_TYPE["rejected"]:
                self._remember(msg)
            if msg.msg_type in ("8", "9") and (msg.get(790) or msg.get(11)):
                self._replies[msg.get(790) or msg[11]] = msg
            elif msg.msg_type in ("j", "3") and (msg.get(45) or "").isdigit():
                self._rejects[int(msg[45])] = msg
            self._cond.notify_all()

    def _remember(self, msg: Message) -> None:
        order_id = int(msg[37])
        before = self._orders.get(order_id)
        exec_type = msg.get(150)
        status = {"0": Status.NEW, "4": Status.CANCELLED, "2": Status.EXECUTED}.get(msg.get(39) or "", Status.NEW)
        if exec_type == EXEC_TYPE[Action.MODIFY.value] or (status is Status.NEW and before is not None
                                                           and before.status is Status.MODIFIED):  # fmt: skip
            status = Status.MODIFIED
        accepted = exec_type in {EXEC_TYPE[a.value] for a in Action}
        if before is None:
            version = {Status.NEW: 1}.get(status, 2)
        else:
            version = before.version + (1 if accepted and exec_type != EXEC_TYPE[Action.CREATE.value] else 0)
        at = _parse_time(msg.get(60))
        price = msg.get(44)
        executed = int(msg.get(14) or 0)
        order = Order(
            order_id=order_id,
            symbol=msg.get(55) or (before.symbol if before else ""),
            side=Side(SIDE_OF.get(msg.get(54) or "", before.side if before else "BUY")),
            order_type=OrderType(ORD_TYPE_OF.get(msg.get(40) or "", before.order_type if before else "LIMIT")),
            quantity=int(msg.get(38) or (before.quantity if before else 0)),
            price=Decimal(price) if price else None,
            status=status,
            version=version,
            created_at=before.created_at if before else at,
            updated_at=at,
            client_order_id=(before.client_order_id if before else (msg.get(11) if exec_type == "0" else None)),
            executed_quantity=executed,
            executed_price=Decimal(msg.get(6) or "0") if executed else None,
        )
        self._orders[order_id] = order
        if msg.get(11) and exec_type != EXEC_TYPE["status"]:
            self._clordids[order_id] = msg[11]

    # ---- requests -----------------------------------------------------------------------

    def _now(self) -> str:
        """TransactTime (60) text from ``clock`` (the wall clock when None)."""
        return sending_time(self.clock() if self.clock is not None else None)

    def _clordid(self) -> str:
        return f"{self._prefix}-{next(self._ids)}"

    def _request(self, msg_type: str, body: list[Field], clordid: str) -> Message:
        if self._closed:
            raise StoreError(f"{self.url} is closed")
        with self._cond:
            self._replies.pop(clordid, None)
        seq = self._session.send(msg_type, body)
        if seq is None:
            raise FixUnreachable(f"{self.url}: the session is not logged on")
        with self._cond:
            answered = self._cond.wait_for(
                lambda: clordid in self._replies or seq in self._rejects or not self._session.logged_on,
                timeout=self.timeout,
            )
            if seq in self._rejects:
                reject = self._rejects.pop(seq)
                text = reject.get(58) or f"message type {msg_type} refused"
                raise NotSupported(text) if reject.msg_type == "j" else ValidationError(text)
            if not answered or clordid not in self._replies:
                raise FixUnreachable(f"{self.url}: no answer to {msg_type} {clordid}")
            return self._replies.pop(clordid)

    def _order(self, order_id: int) -> Order:
        with self._cond:
            order = self._orders.get(order_id)
        return order if order is not None else self.get(order_id)

    def create(
        self,
        *,
        symbol: str,
        side: str,
        quantity: int,
        price: PriceInput | None = None,
        order_type: str = "LIMIT",
        client_order_id: str | None = None,
    ) -> Order:
        """NewOrderSingle. Raises VALIDATION_ERROR or DUPLICATE_CLIENT_ORDER_ID."""
        clordid = client_order_id if client_order_id is not None else self._clordid()
        body: list[Field] = [(11, clordid), (55, str(symbol)), (54, SIDE.get(str(side).upper(), str(side)))]
        body += [(38, str(quantity)), (40, ORD_TYPE.get(str(order_type).upper(), str(order_type)))]
        if price is not None:
            body.append((44, str(price)))
        body.append((60, self._now()))
        reply = self._request("D", body, clordid)
        if reply.get(150) == EXEC_TYPE["rejected"]:
            raise _error(error_code("ord_rej_reason", reply.get(103) or ""), reply.get(58) or "refused")
        return self._remembered(reply)

    def _remembered(self, reply: Message) -> Order:
        with self._cond:
            return self._orders[int(reply[37])]

    def _change(self, msg_type: str, order_id: int, extra: list[Field]) -> Order:
        current = self._order(order_id)
        clordid = self._clordid()
        body: list[Field] = [(11, clordid)]
        with self._cond:
            orig = self._clordids.get(order_id) or current.client_order_id
        if orig:
            body.append((41, orig))
        body += [(37, str(order_id)), (55, current.symbol), (54, SIDE[current.side.value])]
        body += [*extra, (60, self._now())]
        reply = self._request(msg_type, body, clordid)
        if reply.msg_type == "9":
            raise _error(error_code("cxl_rej_reason", reply.get(102) or ""), reply.get(58) or "refused")
        return self._remembered(reply)

    def modify(self, order_id: int, *, quantity: int | None = None, price: PriceInput | None = None) -> Order:
        """OrderCancelReplaceRequest. Raises VALIDATION_ERROR, ORDER_NOT_FOUND or INVALID_TRANSITION."""
        current = self._order(order_id)
        extra: list[Field] = [(40, ORD_TYPE[current.order_type.value])]
        if quantity is not None:
            extra.append((38, str(quantity)))
        if price is not None:
            extra.append((44, str(price)))
        return self._change("G", order_id, extra)

    def cancel(self, order_id: int) -> Order:
        """OrderCancelRequest. Raises ORDER_NOT_FOUND or INVALID_TRANSITION."""
        return self._change("F", order_id, [])

    def execute(self, order_id: int, *, price: PriceInput | None = None) -> Order:
        """Always NOT_SUPPORTED: a fill is venue-internal; FIX has no request for it."""
        raise NotSupported("execute is venue-internal: FIX has no request for it (use the venue's own face)")

    def get(self, order_id: int) -> Order:
        """OrderStatusRequest. Raises ORDER_NOT_FOUND."""
        clordid = self._clordid()
        body: list[Field] = [(37, str(order_id)), (790, clordid)]
        with self._cond:
            known = self._orders.get(order_id)
            latest = self._clordids.get(order_id)
        if latest:
            body.insert(0, (11, latest))
        if known is not None:
            body += [(55, known.symbol), (54, SIDE[known.side.value])]
        reply = self._request("H", body, clordid)
        if reply.get(39) == "8" or reply.get(37) in (None, "NONE"):
            raise from_code("ORDER_NOT_FOUND", reply.get(58) or f"order {order_id} does not exist")
        return self._remembered(reply)

    def orders(self, *, status: str | None = None, symbol: str | None = None) -> list[Order]:
        """The orders this gateway has seen reports of, by id (FIX has no listing request)."""
        with self._cond:
            found = sorted(self._orders.values(), key=lambda o: o.order_id)
        if status is not None:
            found = [o for o in found if o.status.value == str(status).upper()]
        if symbol is not None:
            found = [o for o in found if o.symbol == str(symbol).upper()]
        return found

    def events(self, order_id: int | None = None) -> list[OrderEvent]:
        """Always NOT_SUPPORTED: FIX carries no audit log."""
        raise NotSupported("the audit log is not available over FIX (use the venue's REST or embedded face)")

    # ---- beyond the Gateway protocol --------------------------------------------------

    def messages(self, order_id: int | None = None) -> list[Record]:
        """The FIX messages this gateway sent and received, oldest first: every one kept
        (the newest ``journal_size``), or those of ``order_id`` (``oms.fix.journal``). Each
        record has ``direction``, ``msg_type``/``msg_type_name``, ``text`` (tag=value, ``|``
        for SOH) and ``decoded()``; ``oms.fix.journal`` makes frames of them."""
        return self.journal.records(order_id)

    def seen(self, order_id: int) -> Order | None:
        """``order_id`` as the reports received last described it; None when none came.
        Sends nothing (``get`` asks the acceptor)."""
        with self._cond:
            return self._orders.get(order_id)

    def wait_for(self, order_id: int, status: Status | str, *, timeout: float | None = None) -> Order:
        """Wait until a report brings ``order_id`` to ``status`` (a fill or cancel made on
        another face reaches this session unsolicited); returns the order. Raises
        SERVER_UNREACHABLE when no such report came within ``timeout`` (default: the
        gateway's) or the session ended."""
        wanted = Status(str(status).upper()) if not isinstance(status, Status) else status

        def done() -> bool:
            order = self._orders.get(order_id)
            return (order is not None and order.status is wanted) or not self._session.logged_on

        with self._cond:
            self._cond.wait_for(done, timeout=self.timeout if timeout is None else timeout)
            order = self._orders.get(order_id)
        if order is None or order.status is not wanted:
            raise FixUnreachable(f"{self.url}: no report of order {order_id} {wanted.value} in time")
        return order

    # ---- life ----------------------------------------------------------------------------

    def close(self) -> None:
        """Log out (waiting a little for the answer), close the socket. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._session.logged_on:
            self._session.logout("bye")
            with self._cond:
                self._cond.wait_for(lambda: not self._session.connected, timeout=min(self.timeout, 5.0))
        self._shutdown()

    def _shutdown(self) -> None:
        self._transport.close()
        self._reader.join(timeout=5)
        with contextlib.suppress(OSError):
            self._sock.close()
        self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
