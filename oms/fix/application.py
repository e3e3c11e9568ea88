"""The FIX face's application layer: order messages onto the gateway, reports back.

Adapter layer. ``OrderApplication`` is the ``session.Application`` of the acceptor: it maps
NewOrderSingle (D), OrderCancelReplaceRequest (G), OrderCancelRequest (F) and
OrderStatusRequest (H) onto the gateway's public methods (``create``, ``modify``,
``cancel``, ``get``) and answers with ExecutionReports (8) and OrderCancelRejects (9) as
``oms.fix.mapping`` says; any other application message gets a BusinessMessageReject (j).
Every check is the engine's own, so refusals land in its audit log like REST's. Which
session entered which order, and each order's latest ClOrdID, are kept in the session
store, in the same commit as the report that acknowledges them.

``report`` builds the ExecutionReport body of an order for any action, for the
acceptor's unsolicited reports (a fill or a change made from another face) too.
"""

from __future__ import annotations

import itertools
import threading
from decimal import Decimal, InvalidOperation
from typing import Any

from oms.errors import DuplicateClientOrderId, OMSError, OrderNotFound, ValidationError
from oms.fix.codec import Field, Message
from oms.fix.mapping import (
    CXL_REJ_RESPONSE_TO,
    EXEC_TYPE,
    ORD_STATUS,
    ORD_TYPE,
    ORD_TYPE_OF,
    SIDE,
    SIDE_OF,
    cxl_rej_reason,
    ord_rej_reason,
)
from oms.fix.session import Session, SessionReject, required
from oms.fix.state import OrderLink, SessionStore
from oms.gateway import Gateway
from oms.lifecycle import OPEN, Action
from oms.model import Order

NONE = "NONE"
"""OrderID (37) when there is no order: a rejected create, an unknown order."""

UNSUPPORTED_MESSAGE_TYPE = "3"
"""BusinessRejectReason (380) for a message type this face does not take."""

MAX_TEXT = 2000


def transact_time(order: Order) -> str:
    at = order.updated_at
    return at.strftime("%Y%m%d-%H:%M:%S.") + f"{at.microsecond // 1000:03d}"


def exec_id(order: Order) -> str:
    """A unique ExecID: each accepted event is one (order, version)."""
    return f"{order.order_id}-{order.version}"


def report(
    order: Order,
    exec_type: str,
    *,
    clordid: str | None,
    orig_clordid: str | None = None,
    execution_id: str | None = None,
    extra: list[Field] | None = None,
) -> list[Field]:
    """The body of the ExecutionReport (35=8) of ``order`` with ExecType ``exec_type``."""
    body: list[Field] = [(37, str(order.order_id))]
    if clordid:
        body.append((11, clordid))
    if orig_clordid:
        body.append((41, orig_clordid))
    body += [(17, execution_id or exec_id(order)), (150, exec_type), (39, ORD_STATUS[order.status.value])]
    body += [(55, order.symbol), (54, SIDE[order.side.value]), (38, str(order.quantity))]
    body.append((40, ORD_TYPE[order.order_type.value]))
    if order.price is not None:
        body.append((44, str(order.price)))
    if exec_type == EXEC_TYPE[Action.EXECUTE.value]:
        body += [(32, str(order.executed_quantity)), (31, str(order.executed_price or 0))]
    leaves = order.quantity - order.executed_quantity if order.status in OPEN else 0
    body += [(151, str(leaves)), (14, str(order.executed_quantity)), (6, str(order.executed_price or 0))]
    body.append((60, transact_time(order)))
    return body + (extra or [])


def _text(error: OMSError) -> str:
    return error.message[:MAX_TEXT].replace("\x01", " ")


def _quantity(text: str | None) -> Any:
    """OrderQty as the engine checks it: an int when it is a whole number, else as sent."""
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return text
    return int(value) if value.is_finite() and value == value.to_integral_value() else text


class OrderApplication:
    """Order entry over FIX onto ``gateway`` (the acceptor's engine)."""

    def __init__(self, gateway: Gateway, store: SessionStore) -> None:
        self.gateway = gateway
        self.store = store
        self._reject_ids = itertools.count(1)
        self._reject_lock = threading.Lock()
        self._prefix = f"R{id(self):x}"

    def on_logon(self, session: Session) -> None:
        pass

    def on_logout(self, session: Session) -> None:
        pass

    def on_message(self, session: Session, msg: Message) -> None:
        if msg.msg_type == "3":
            return  # a session Reject of one of our reports: nothing to answer
        handler = {"D": self._new_order, "G": self._replace, "F": self._cancel, "H": self._status}.get(msg.msg_type)
        if handler is None:
            session.send(
                "j",
                [(45, msg.get(34) or "0"), (372, msg.msg_type), (380, UNSUPPORTED_MESSAGE_TYPE),
                 (58, f"unsupported message type {msg.msg_type!r}")],
            )  # fmt: skip
            return
        handler(session, msg)

    def _reject_exec_id(self) -> str:
        with self._reject_lock:
            return f"{self._prefix}-{next(self._reject_ids)}"

    # ---- NewOrderSingle ------------------------------------------------------------

    def _new_order(self, session: Session, msg: Message) -> None:
        required(msg, 11, 54, 55, 38, 40, 60)
        clordid = msg[11]
        try:
            order = self.gateway.create(
                symbol=msg[55],
                side=SIDE_OF.get(msg[54], msg[54]),
                quantity=_quantity(msg.get(38)),
                price=msg.get(44),
                order_type=ORD_TYPE_OF.get(msg[40], msg[40]),
                client_order_id=clordid,
            )
        except OMSError as e:
            body: list[Field] = [(37, NONE), (11, clordid), (17, self._reject_exec_id())]
            body += [(150, EXEC_TYPE["rejected"]), (39, ORD_STATUS["rejected"]), (103, ord_rej_reason(e))]
            body += [(55, msg[55]), (54, msg[54]), (38, msg[38]), (40, msg[40])]
            body += [(151, "0"), (14, "0"), (6, "0"), (58, _text(e))]
            session.send("8", body)
            return
        session.link(OrderLink(order.order_id, session.key, clordid))
        session.send("8", report(order, EXEC_TYPE[Action.CREATE.value], clordid=clordid))

    # ---- OrderCancelReplaceRequest / OrderCancelRequest -------------------------------

    def _resolve(self, msg: Message, orig_tag: int = 41) -> tuple[int, OrderLink | None]:
        """The order a request names by a ClOrdID of it (``orig_tag``) or OrderID (37).

        Raises ORDER_NOT_FOUND."""
        orig, order_text = msg.get(orig_tag), msg.get(37)
        order_id = self.store.order_of_clordid(orig) if orig else None
        if order_id is None and order_text and order_text.isdigit():
            order_id = int(order_text)
        if order_id is None:
            raise OrderNotFound(orig or order_text or "?")
        self.gateway.get(order_id)  # ORDER_NOT_FOUND
        return order_id, self.store.link_of_order(order_id)

    def _check_latest(self, msg: Message, order_id: int, link: OrderLink | None) -> None:
        """Raise VALIDATION_ERROR when OrigClOrdID (41) is a ClOrdID of the order but not its latest."""
        orig = msg.get(41)
        if orig and link is not None and link.clordid != orig and self.store.order_of_clordid(orig) == order_id:
            raise ValidationError(
                f"{orig!r} is not the latest ClOrdID of order {order_id} (that is {link.clordid!r})", "OrigClOrdID"
            )

    def _cancel_reject(self, session: Session, msg: Message, action: Action, order_id: int | None, e: OMSError) -> None:
        status = ORD_STATUS["rejected"]
        if order_id is not None:
            try:
                status = ORD_STATUS[self.gateway.get(order_id).status.value]
            except OMSError:
                order_id = None
        body: list[Field] = [(37, str(order_id) if order_id is not None else NONE), (11, msg[11])]
        body += [(41, msg.get(41) or NONE), (39, status), (434, CXL_REJ_RESPONSE_TO[action.value])]
        body += [(102, cxl_rej_reason(e)), (58, _text(e))]
        session.send("9", body)

    def _change(self, session: Session, msg: Message, action: Action) -> None:
        required(msg, 11, 54, 55, 60)
        if not msg.get(41) and not msg.get(37):
            raise SessionReject(1, "Required tag missing: OrigClOrdID (41)", 41)
        clordid = msg[11]
        order_id: int | None = None
        try:
            order_id, link = self._resolve(msg)
            self._check_latest(msg, order_id, link)
            if self.store.order_of_clordid(clordid) is not None:
                raise DuplicateClientOrderId(clordid)
            current = self.gateway.get(order_id)
            if msg[55].upper() != current.symbol or SIDE_OF.get(msg[54]) != current.side.value:
                raise ValidationError(f"order {order_id} is {current.side.value} {current.symbol}: cannot change them")
            if action is Action.MODIFY:
                order_type = msg.get(40)
                if order_type and ORD_TYPE_OF.get(order_type) != current.order_type.value:
                    raise ValidationError(f"order {order_id} is a {current.order_type.value} order", "OrdType")
                order = self.gateway.modify(order_id, quantity=_quantity(msg.get(38)), price=msg.get(44))
            else:
                order = self.gateway.cancel(order_id)
        except OMSError as e:
            self._cancel_reject(session, msg, action, order_id, e)
            return
        owner = link.key if link is not None else session.key
        session.link(OrderLink(order.order_id, owner, clordid))
        session.send("8", report(order, EXEC_TYPE[action.value], clordid=clordid, orig_clordid=msg.get(41)))

    def _replace(self, session: Session, msg: Message) -> None:
        required(msg, 40)
        self._change(session, msg, Action.MODIFY)

    def _cancel(self, session: Session, msg: Message) -> None:
        self._change(session, msg, Action.CANCEL)

    # ---- OrderStatusRequest --------------------------------------------------------------

    def _status(self, session: Session, msg: Message) -> None:
        if not msg.get(11) and not msg.get(37):
            raise SessionReject(1, "Required tag missing: ClOrdID (11)", 11)
        extra: list[Field] = [(790, msg[790])] if msg.get(790) else []
        try:
            order_id, link = self._resolve(msg, orig_tag=11)
            order = self.gateway.get(order_id)
        except OMSError as e:
            body: list[Field] = [(37, NONE), (11, msg.get(11) or NONE), (17, "0"), (150, EXEC_TYPE["status"])]
            body.append((39, ORD_STATUS["rejected"]))
            body += [(tag, msg[tag]) for tag in (55, 54) if msg.get(tag)]
            body += [(151, "0"), (14, "0"), (6, "0"), (58, _text(e)), *extra]
            session.send("8", body)
            return
        clordid = link.clordid if link is not None else order.client_order_id
        session.send("8", report(order, EXEC_TYPE["status"], clordid=clordid, execution_id="0", extra=extra))
