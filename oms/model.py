"""Domain values: Order and OrderEvent (frozen dataclasses), sides, order types, and the
exact-decimal and UTC-timestamp conventions every layer shares.

Pure core: no I/O. Row mapping lives in the store, JSON mapping here (``to_dict`` /
``from_dict``) so the API and the remote client agree by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from oms.lifecycle import Action, Status


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    def __repr__(self) -> str:
        return f"Side.{self.name}"


class OrderType(StrEnum):
    LIMIT = "LIMIT"
    MARKET = "MARKET"

    def __repr__(self) -> str:
        return f"OrderType.{self.name}"


PRICE_PLACES = 4
"""Prices carry at most this many decimal places (stored as DECIMAL(16, 4))."""


MAX_CANONICAL_EXPONENT = 64
"""Decimals whose exponent, once trailing zeros are dropped, lies beyond +-this are not
canonicalized: writing them out without an exponent would take that many digits."""


def canonical_decimal(value: Decimal | None) -> Decimal | None:
    """The one representation of a price: exact, no exponent, no trailing zeros.

    Works on the digits themselves (no decimal context, so nothing is ever rounded).
    Raises ValueError for a non-finite value, or one whose plain form would be longer
    than MAX_CANONICAL_EXPONENT digits (say 1e-1000027): check prices before this."""
    if value is None:
        return None
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise ValueError(f"not a finite decimal: {value!r}")
    end = len(digits)
    while end > 1 and digits[end - 1] == 0 and exponent < 0:
        end, exponent = end - 1, exponent + 1
    if not any(digits):
        return Decimal(0)
    if abs(exponent) > MAX_CANONICAL_EXPONENT:
        raise ValueError(f"decimal exponent out of range: {value!r}")
    kept = digits[:end]
    if exponent > 0:  # 1E+3 -> 1000
        kept, exponent = kept + (0,) * exponent, 0
    return Decimal((sign, kept, exponent))


def format_ts(at: datetime) -> str:
    """UTC ISO-8601 with milliseconds: ``2026-01-05T09:15:00.000Z``."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Order:
    """One order as the projection holds it after its latest accepted event."""

    order_id: int
    symbol: str
    side: Side
    order_type: OrderType
    quantity: int
    price: Decimal | None
    status: Status
    version: int
    created_at: datetime
    updated_at: datetime
    client_order_id: str | None = None
    executed_quantity: int = 0
    executed_price: Decimal | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "price", canonical_decimal(self.price))
        object.__setattr__(self, "executed_price", canonical_decimal(self.executed_price))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (Decimals stay Decimals: encode them as JSON numbers)."""
        return {
            "order_id": self.order_id,
            "client_order_id": self.client_order_id,
            "symbol": self.symbol,
            "side": self.side.value,
            "order_type": self.order_type.value,
            "quantity": self.quantity,
            "price": self.price,
            "status": self.status.value,
            "version": self.version,
            "executed_quantity": self.executed_quantity,
            "executed_price": self.executed_price,
            "created_at": format_ts(self.created_at),
            "updated_at": format_ts(self.updated_at),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Order:
        return cls(
            order_id=int(d["order_id"]),
            client_order_id=d.get("client_order_id"),
            symbol=d["symbol"],
            side=Side(d["side"]),
            order_type=OrderType(d["order_type"]),
            quantity=int(d["quantity"]),
            price=_to_decimal(d.get("price")),
            status=Status(d["status"]),
            version=int(d["version"]),
            executed_quantity=int(d.get("executed_quantity") or 0),
            executed_price=_to_decimal(d.get("executed_price")),
            created_at=parse_ts(d["created_at"]),
            updated_at=parse_ts(d["updated_at"]),
        )


# What each accepted action changes: the fields an event reports besides its header.
CHANGED_FIELDS: dict[Action, tuple[str, ...]] = {
    Action.CREATE: ("client_order_id", "symbol", "side", "order_type", "quantity", "price"),
    Action.MODIFY: ("quantity", "price"),
    Action.CANCEL: (),
    Action.EXECUTE: ("executed_quantity", "executed_price"),
}


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One entry of the append-only audit log: an accepted or a refused command.

    ``changes`` holds the fields the action set (see CHANGED_FIELDS); a refused command
    has none, but keeps what was asked in ``request``.
    """

    seq: int
    order_id: int | None
    action: Action
    from_status: Status | None
    to_status: Status | None
    accepted: bool
    reason: str | None
    message: str | None
    at: datetime
    version: int | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    request: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "seq": self.seq,
            "order_id": self.order_id,
            "action": self.action.value,
            "from_status": self.from_status.value if self.from_status else None,
            "to_status": self.to_status.value if self.to_status else None,
            "accepted": self.accepted,
            "reason": self.reason,
            "message": self.message,
            "at": format_ts(self.at),
            "version": self.version,
        }
        out.update(self.changes)
        out["request"] = self.request
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OrderEvent:
        action = Action(d["action"])
        changes = {k: d.get(k) for k in CHANGED_FIELDS[action] if k in d} if d["accepted"] else {}
        for k in ("price", "executed_price"):
            if k in changes:
                changes[k] = _to_decimal(changes[k])
        return cls(
            seq=int(d["seq"]),
            order_id=d.get("order_id"),
            action=action,
            from_status=Status(d["from_status"]) if d.get("from_status") else None,
            to_status=Status(d["to_status"]) if d.get("to_status") else None,
            accepted=bool(d["accepted"]),
            reason=d.get("reason"),
            message=d.get("message"),
            at=parse_ts(d["at"]),
            version=d.get("version"),
            changes=changes,
            request=d.get("request"),
        )


def _to_decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    return canonical_decimal(Decimal(str(value)))
