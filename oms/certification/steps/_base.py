"""The frame every step kind fits into: the typed spec base, the registry, and the
per-case state (``CaseRun``) with the checks several kinds share.

A step kind is one module under ``oms/certification/steps/``: a pydantic spec (every key
known, every value typed -- a misspelt key is a load error, never a silent pass), what
it needs of the target, ``run()``, and its one-line description and expectation for the
documents and reports. ``register`` adds it to ``REGISTRY``; the loader, the runner and
the documents find it there and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from oms.certification.values import StepFailed, as_list, diff, refusal, same, summary, text
from oms.errors import OMSError
from oms.model import Order, format_ts

if TYPE_CHECKING:
    from oms.certification.targets import Target

Code = Literal[
    "VALIDATION_ERROR", "ORDER_NOT_FOUND", "INVALID_TRANSITION", "DUPLICATE_CLIENT_ORDER_ID", "PRICE_OUTSIDE_LIMIT"
]
StatusName = Literal["NEW", "MODIFIED", "CANCELLED", "EXECUTED"]
ActionName = Literal["create", "modify", "cancel", "execute"]
Scalar = str | int | bool | None


class Spec(BaseModel):
    """Base of every step spec: unknown keys are refused, values are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    if_offered: bool = False
    """Run the step only where the target offers what it needs; elsewhere it is skipped
    (shown as not applicable) and the case does not need it."""


class Refusal(Spec):
    """``refuse:`` -- the code (or codes) a refusal must carry, the fields its errors must
    name, words its message must contain."""

    code: list[Code]
    fields: list[str] = Field(default_factory=list)
    only_fields: bool = False
    """The errors name exactly ``fields`` -- no field that was good."""
    message_contains: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, value: Any) -> Any:
        if isinstance(value, str | list):  # refuse: CODE / refuse: [CODE, CODE]
            value = {"code": value}
        if isinstance(value, dict) and isinstance(value.get("code"), str):
            value = {**value, "code": [value["code"]]}
        return value

    def describe(self) -> str:
        out = " or ".join(self.code)
        if self.fields:
            out += f" naming {', '.join(self.fields)}"
        if self.message_contains:
            out += f"; message mentions {', '.join(self.message_contains)}"
        return out


class OrderExpect(Spec):
    """``expect:`` of an order command or read: fields of the resulting order, and
    relations to orders made earlier in the case."""

    order_id: int | None = None
    client_order_id: str | None = None
    symbol: str | None = None
    side: Literal["BUY", "SELL"] | None = None
    order_type: Literal["LIMIT", "MARKET"] | None = None
    quantity: int | None = None
    price: str | None = None
    status: StatusName | None = None
    version: int | None = None
    executed_quantity: int | None = None
    executed_price: str | None = None
    same_as: str | None = None
    """Identical to the order ``same_as`` as it was last acknowledged."""
    id_after: str | None = None
    """order_id greater than that order's."""
    id_below_far: bool | None = None
    """order_id below the case's ``far`` id, which it asked for and was refused (a refusal
    did not move the sequence up to it)."""
    updated_after: str | None = None
    """updated_at later than that order's as last acknowledged (the change moved it)."""
    current_time: bool | None = None
    """created_at within CLOCK_SKEW of the harness's UTC clock (not for a simulated clock)."""

    def wanted(self) -> dict[str, Any]:
        """The field expectations actually written (``price: null`` included)."""
        relations = {"same_as", "id_after", "id_below_far", "updated_after", "current_time"}
        return {k: getattr(self, k) for k in self.model_fields_set if k not in relations}

    def describe(self) -> str:
        return ", ".join(f"{k}={text(getattr(self, k))}" for k in _written_order(self))


def _written_order(model: BaseModel) -> list[str]:
    return [k for k in type(model).model_fields if k in model.model_fields_set]


class StepKind:
    """One kind of step. Subclasses set ``names`` and ``Spec`` and implement ``run``."""

    names: ClassVar[tuple[str, ...]] = ()
    Spec: ClassVar[type[Spec]]
    needs_text: ClassVar[str] = "core"
    """What the kind needs, for the documents (``needs()`` says it for one step)."""

    def needs(self, spec: Any) -> set[str]:
        """Tiers, extensions and faculties (oms.certification.needs) the step needs."""
        return {"core"}

    def uses(self, spec: Any) -> list[tuple[str, str]]:
        """(alias, where) of every order the step names; each must be made earlier."""
        return []

    def makes(self, spec: Any) -> list[str]:
        """Aliases the step makes (``as:``)."""
        return []

    def marks(self, spec: Any) -> tuple[list[str], list[str]]:
        """(marks made, marks used)."""
        return [], []

    def run(self, case: CaseRun, spec: Any) -> str:
        raise NotImplementedError

    def describe(self, spec: Any) -> str:
        return str(spec.action)

    def expected(self, spec: Any) -> str:
        return "answers"


REGISTRY: dict[str, StepKind] = {}


def register(kind: type[StepKind]) -> type[StepKind]:
    """Class decorator: the kind answers for each of its ``names``."""
    instance = kind()
    for name in kind.names:
        if name in REGISTRY:
            raise RuntimeError(f"step kind {name!r} registered twice")
        REGISTRY[name] = instance
    return kind


def alias_field() -> Any:
    return Field(default=None, alias="as")


# ---- the state of one case while it runs --------------------------------------------------


INT64_MAX = 2**63 - 1
NAMED_IDS = ("unknown", "far")
"""Order names a step may use besides its aliases: ids that do not exist."""


@dataclass
class CaseRun:
    """What one case remembers while it runs, and the checks its steps share."""

    runner: Any
    """The Runner (token, unknown id, offers)."""
    target: Target
    aliases: dict[str, Order] = field(default_factory=dict)
    marks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    cells: list[tuple[str, str]] = field(default_factory=list)
    tables: dict[str, list[list[str]]] = field(default_factory=dict)
    """Evidence rows by kind (listing, race, crash, sql, http, replay)."""

    _far: int | None = None

    @property
    def gw(self) -> Any:
        return self.target.gateway

    def far_id(self) -> int:
        """An id halfway from the largest this case has seen to the largest 64-bit one:
        unknown, and far above the next ids however sparse the system's are (DESIGN.md asks
        only that they increase). Fixed at its first use in the case."""
        if self._far is None:
            top = max([o.order_id for o in self.aliases.values()] + [self.runner.last_id or 0, 0])
            self._far = top + (INT64_MAX - top) // 2
        return self._far

    def offers(self, name: str) -> bool:
        return bool(self.runner.offers_now(name))

    def assigned(self, order_id: int) -> dict[str, Any]:
        """What the face had to send for an order that its create left out (FIX: a ClOrdID):
        the order must show it as if the create had given it."""
        return dict(getattr(self.gw, "assigned", {}).get(order_id, {}))

    def evidence(self, kind: str, row: list[str]) -> None:
        self.tables.setdefault(kind, []).append(row)

    # ---- values from the data ------------------------------------------------------------

    def template(self, value: Any, *, orders: bool = False) -> Any:
        """``{run}`` -> the run's token, ``{unknown}`` -> an id that does not exist, and with
        ``orders`` ``{alias}`` -> that order's id."""
        if isinstance(value, dict):
            return {k: self.template(v, orders=orders) for k, v in value.items()}
        if not isinstance(value, str) or "{" not in value:
            return value
        value = value.replace("{run}", self.runner.token)
        if "{unknown}" in value:
            value = value.replace("{unknown}", str(self.runner.unknown_id()))
        if orders:
            for alias, order in self.aliases.items():
                value = value.replace("{" + alias + "}", str(order.order_id))
        return value

    def order_id(self, order: str | None, order_id: int | None) -> int:
        if order_id is not None:
            return order_id
        if order == "unknown":
            return int(self.runner.unknown_id())
        if order == "far":
            return self.far_id()
        assert order is not None
        return self.aliases[order].order_id

    # ---- reads that need only what the target offers ---------------------------------------

    def lookup(self, order_id: int) -> Order | None:
        """The order as the target reports it now: ``GET /order/{id}`` where the read tier
        is offered, else its row in ``GET /orders`` (core). None when it is not listed."""
        if self.offers("read"):
            return self.gw.get(order_id)  # type: ignore[no-any-return]
        return next((o for o in self.gw.orders() if o.order_id == order_id), None)

    def book(self) -> list[dict[str, Any]]:
        return [o.to_dict() for o in self.gw.orders()]

    # ---- shared checks -------------------------------------------------------------------

    def check_refusal(self, e: OMSError, want: Refusal) -> None:
        if e.code not in want.code:
            raise StepFailed(f"refused {refusal(e)}; expected {' or '.join(want.code)}")
        fields = getattr(e, "fields", None) or []
        # FIX: the fields its Text or RefTagID names -- one refusal names one problem, so it
        # must name one of the bad fields (the REST error shape lists each)
        from_text = getattr(e, "fields_from_text", False)
        missing = [f for f in want.fields if f not in fields]
        if from_text and len(missing) < len(want.fields):
            missing = []
        if missing:
            raise StepFailed(f"refused {refusal(e)}; the refusal does not name {', '.join(missing)}")
        extra = sorted(set(fields) - set(want.fields)) if want.only_fields and not from_text else []
        if extra:
            raise StepFailed(f"refused {refusal(e)}; the errors also name {', '.join(extra)}, which were good")
        rej_reason = getattr(e, "ord_rej_reason", None)  # FIX: a refused create's 103
        if rej_reason == "13" and want.fields and "quantity" not in want.fields:
            raise StepFailed(f"refused {refusal(e)} with OrdRejReason (103) 13 (incorrect quantity): quantity was good")
        if rej_reason not in (None, "13") and want.fields == ["quantity"]:
            raise StepFailed(f"refused {refusal(e)} with OrdRejReason (103) {rej_reason}; DESIGN.md: 13 for quantity")
        message = e.message.lower()
        without_statuses = message  # the action must be named besides the status ("EXECUTED" holds "execut")
        for word in want.message_contains:
            if word.lower() in ("new", "modified", "cancelled", "executed"):
                without_statuses = without_statuses.replace(word.lower(), " ", 1)
        absent = [
            w
            for w in want.message_contains
            if _stem(str(self.template(w))) not in (without_statuses if w in STEMS else message)
        ]
        if absent:
            raise StepFailed(f"refused {refusal(e)}; the message does not mention {', '.join(absent)}")
        if e.code == "VALIDATION_ERROR":  # DESIGN.md: the message names the field
            unnamed = [f for f in want.fields if f.lower() not in message]
            if unnamed and not (from_text and len(unnamed) < len(want.fields)):
                raise StepFailed(f"refused {refusal(e)}; the message does not name {', '.join(unnamed)}")
            # detail.message as the server wrote it (over HTTP): it names a bad field, each
            # of which the errors list names (checked above); "order type" names order_type
            said = getattr(e, "wire_message", None)
            prose = str(said).lower().replace("_", " ")
            if said is not None and want.fields and not any(f.replace("_", " ") in prose for f in want.fields):
                named_none = f"detail.message {said!r} names none of {', '.join(want.fields)}"
                raise StepFailed(f"refused {refusal(e)}; {named_none}")
        named = FIELD_NAMED.get(e.code)
        if named and not any(n in message.replace("_", " ") for n in named):
            raise StepFailed(f"refused {refusal(e)}; the message does not name the field ({named[0]})")

    def check_unchanged(self, before: Order) -> None:
        after = self.lookup(before.order_id)
        if after is None:
            raise StepFailed(f"refused, but order #{before.order_id} is gone")
        changed = diff(before, after)
        if changed:
            raise StepFailed(f"refused, but the order changed: {changed}")

    def check_order(self, order: Order, expect: OrderExpect | None) -> None:
        if expect is None:
            return
        problems = []
        if expect.same_as is not None:
            changed = diff(self.aliases[expect.same_as], order)
            if changed:
                problems.append(f"differs from {expect.same_as} as acknowledged: {changed}")
        if expect.id_after is not None and not order.order_id > self.aliases[expect.id_after].order_id:
            problems.append(f"order_id {order.order_id} is not after {self.aliases[expect.id_after].order_id}")
        if expect.updated_after is not None:
            earlier = self.aliases[expect.updated_after].updated_at
            if not order.updated_at > earlier:
                problems.append(
                    f"updated_at {format_ts(order.updated_at)} is not after {format_ts(earlier)}: "
                    "the change did not move it"
                )
        if expect.current_time and not getattr(self.target, "simulated", False):
            for name in ("created_at", "updated_at"):
                at = getattr(order, name)
                skew = abs((at - datetime.now(UTC)).total_seconds())
                if skew > CLOCK_SKEW_S:
                    problems.append(f"{name} {format_ts(at)} is {skew / 3600:.1f} h from the UTC time now")
        if expect.id_below_far and not order.order_id < self.far_id():
            problems.append(f"order_id {order.order_id} jumped past the refused id {self.far_id()}")
        assigned = self.assigned(order.order_id)
        for key, want in expect.wanted().items():
            got = getattr(order, key)
            want = self.template(want) if want is not None or key not in assigned else assigned[key]
            if not same(got, want):
                problems.append(f"{key} is {text(got)}, expected {text(want)}")
        if problems:
            raise StepFailed(f"{summary(order)}: " + "; ".join(problems))


CLOCK_SKEW_S = 600.0
"""How far a system's clock may be from the harness's for 'the UTC time now' (10 min)."""

FIELD_NAMED = {
    "PRICE_OUTSIDE_LIMIT": ("price", "limit"),
    "DUPLICATE_CLIENT_ORDER_ID": ("client order id", "clientorderid", "clordid"),
}
"""DESIGN.md: a refusal's message names the field; these codes are about one field each."""

STEMS = {"modify": "modif", "cancel": "cancel", "execute": "execut", "create": "creat"}
"""An action named in a message in any form: 'cannot modify', 'cannot be modified'."""


def _stem(word: str) -> str:
    return STEMS.get(word.lower(), word.lower())


__all__ = [
    "REGISTRY",
    "ActionName",
    "CaseRun",
    "Code",
    "OrderExpect",
    "Refusal",
    "Scalar",
    "Spec",
    "StatusName",
    "StepFailed",
    "StepKind",
    "alias_field",
    "as_list",
    "register",
]
