"""The FIX 4.4 face's mapping, as one table: OMS fields, actions, statuses and reason codes
<-> FIX tags and values (DESIGN.md, "FIX 4.4 face").

Pure core (no I/O). ``TABLE`` is written once; the lookups below (``SIDE``, ``ORD_STATUS``,
``ORD_REJ_REASON`` ...) and the Markdown rendering (``to_markdown``) are derived from it, so
the acceptor, the FIX gateway, the tests and the docs cannot disagree.

Where this face differs from ``oms.lifecycle.FIX_ORD_STATUS``: a MODIFIED order is reported
with OrdStatus 0 (New), because FIX 4.4 no longer uses 39=5 (Replaced); the replace itself
is the ExecType 150=5.
"""

from __future__ import annotations

from dataclasses import dataclass

from oms.errors import OMSError, ValidationError
from oms.lifecycle import Action, Status


@dataclass(frozen=True, slots=True)
class Row:
    kind: str
    """What the row maps: field, side, order_type, request, exec_type, ord_status, ..."""
    oms: str
    """The OMS side: a field name, an enum value, an action, or an error code ("*" = any other)."""
    tag: int
    value: str
    """The FIX tag's value ("" for a field row: the value is the field's)."""
    name: str
    note: str = ""


OTHER = "*"
"""The row that applies when no other row of its kind matches."""

TABLE: tuple[Row, ...] = (
    # ---- fields -----------------------------------------------------------------------
    Row("field", "client_order_id", 11, "", "ClOrdID", "stored verbatim; a replace or cancel brings a new one"),
    Row("field", "order_id", 37, "", "OrderID", "NONE when there is no order (rejected, unknown)"),
    Row("field", "symbol", 55, "", "Symbol"),
    Row("field", "side", 54, "", "Side"),
    Row("field", "quantity", 38, "", "OrderQty"),
    Row("field", "order_type", 40, "", "OrdType"),
    Row("field", "price", 44, "", "Price", "LIMIT only"),
    Row("field", "updated_at", 60, "", "TransactTime"),
    Row("field", "executed_quantity", 14, "", "CumQty", "151 LeavesQty = quantity - CumQty while open, else 0"),
    Row("field", "executed_price", 6, "", "AvgPx", "0 before a fill"),
    Row("field", "fill quantity", 32, "", "LastQty", "fill reports (150=F) only"),
    Row("field", "fill price", 31, "", "LastPx", "fill reports (150=F) only"),
    Row("field", "reason message", 58, "", "Text", "the refusal's message"),
    # ---- enumerations ---------------------------------------------------------------
    Row("side", "BUY", 54, "1", "Buy"),
    Row("side", "SELL", 54, "2", "Sell"),
    Row("order_type", "MARKET", 40, "1", "Market"),
    Row("order_type", "LIMIT", 40, "2", "Limit"),
    # ---- requests (35) --------------------------------------------------------------
    Row("request", Action.CREATE.value, 35, "D", "NewOrderSingle"),
    Row("request", Action.MODIFY.value, 35, "G", "OrderCancelReplaceRequest", "41 = latest accepted ClOrdID, or 37"),
    Row("request", Action.CANCEL.value, 35, "F", "OrderCancelRequest", "41 = latest accepted ClOrdID, or 37"),
    Row("request", "status", 35, "H", "OrderStatusRequest"),
    # ---- reports: ExecType (150) of an ExecutionReport (35=8) -----------------------
    Row("exec_type", Action.CREATE.value, 150, "0", "New"),
    Row("exec_type", Action.MODIFY.value, 150, "5", "Replaced"),
    Row("exec_type", Action.CANCEL.value, 150, "4", "Canceled"),
    Row("exec_type", Action.EXECUTE.value, 150, "F", "Trade", "from any face; sent to the session that entered it"),
    Row("exec_type", "status", 150, "I", "Order Status", "ExecID 17 = 0"),
    Row("exec_type", "rejected", 150, "8", "Rejected", "a refused create"),
    # ---- OrdStatus (39) ---------------------------------------------------------------
    Row("ord_status", Status.NEW.value, 39, "0", "New"),
    Row("ord_status", Status.MODIFIED.value, 39, "0", "New", "FIX 4.4 no longer uses 39=5"),
    Row("ord_status", Status.CANCELLED.value, 39, "4", "Canceled"),
    Row("ord_status", Status.EXECUTED.value, 39, "2", "Filled"),
    Row("ord_status", "rejected", 39, "8", "Rejected", "a refused create; an unknown order"),
    # ---- refusals -----------------------------------------------------------------------
    Row("ord_rej_reason", "DUPLICATE_CLIENT_ORDER_ID", 103, "6", "Duplicate Order"),
    Row("ord_rej_reason", "VALIDATION_ERROR:quantity", 103, "13", "Incorrect quantity"),
    Row("ord_rej_reason", OTHER, 103, "99", "Other"),
    Row("cxl_rej_response_to", Action.CANCEL.value, 434, "1", "Order Cancel Request"),
    Row("cxl_rej_response_to", Action.MODIFY.value, 434, "2", "Order Cancel/Replace Request"),
    Row("cxl_rej_reason", "INVALID_TRANSITION", 102, "0", "Too late to cancel", "the lifecycle refuses"),
    Row("cxl_rej_reason", "ORDER_NOT_FOUND", 102, "1", "Unknown order", "37=NONE, 39=8"),
    Row("cxl_rej_reason", "DUPLICATE_CLIENT_ORDER_ID", 102, "6", "Duplicate ClOrdID received", "FIX 4.4 value"),
    Row("cxl_rej_reason", OTHER, 102, "99", "Other"),
)


def lookup(kind: str) -> dict[str, str]:
    """The rows of ``kind`` as ``{oms: fix value}``."""
    return {row.oms: row.value for row in TABLE if row.kind == kind}


SIDE = lookup("side")
SIDE_OF = {v: k for k, v in SIDE.items()}
ORD_TYPE = lookup("order_type")
ORD_TYPE_OF = {v: k for k, v in ORD_TYPE.items()}
MSG_TYPE = lookup("request")
EXEC_TYPE = lookup("exec_type")
ORD_STATUS = lookup("ord_status")
CXL_REJ_RESPONSE_TO = lookup("cxl_rej_response_to")
TAG = {row.oms: row.tag for row in TABLE if row.kind == "field"}
"""The FIX tag of each OMS field."""


def _reason(kind: str, error: OMSError) -> str:
    table = lookup(kind)
    if isinstance(error, ValidationError):
        for field in error.fields:
            if f"{error.code}:{field}" in table:
                return table[f"{error.code}:{field}"]
    return table.get(error.code, table[OTHER])


def ord_rej_reason(error: OMSError) -> str:
    """OrdRejReason (103) of a refused create."""
    return _reason("ord_rej_reason", error)


def cxl_rej_reason(error: OMSError) -> str:
    """CxlRejReason (102) of a refused replace or cancel."""
    return _reason("cxl_rej_reason", error)


def error_code(kind: str, value: str) -> str | None:
    """The OMS error code a reason value stands for (None for "other"): the FIX gateway's
    half of the translation."""
    for row in TABLE:
        if row.kind == kind and row.value == value and row.oms != OTHER:
            return row.oms.split(":", 1)[0]
    return None


def to_markdown() -> str:
    """The table as Markdown, one section per kind (for the docs and the certification report)."""
    titles = {
        "field": "Fields",
        "side": "Side (54)",
        "order_type": "OrdType (40)",
        "request": "Requests (35)",
        "exec_type": "ExecType (150) of ExecutionReport (35=8)",
        "ord_status": "OrdStatus (39)",
        "ord_rej_reason": "OrdRejReason (103) of a refused create",
        "cxl_rej_response_to": "CxlRejResponseTo (434) of OrderCancelReject (35=9)",
        "cxl_rej_reason": "CxlRejReason (102) of OrderCancelReject (35=9)",
    }
    out: list[str] = []
    for kind, title in titles.items():
        rows = [row for row in TABLE if row.kind == kind]
        out += [f"#### {title}", "", "| OMS | FIX | name | note |", "|---|---|---|---|"]
        for row in rows:
            fix = f"{row.tag}" if kind == "field" else f"{row.tag}={row.value}"
            oms = "any other" if row.oms == OTHER else f"`{row.oms}`"
            out.append(f"| {oms} | {fix} | {row.name} | {row.note} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
