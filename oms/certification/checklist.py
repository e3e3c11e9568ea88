"""The certification checklist as data: load ``certification/checklist.yaml``, check it
against the typed spec, and add the cases generated from the lifecycle table.

Adapter layer over the pure core (reads a YAML file; imports no duckdb, pandas or HTTP).
Every key at every level is known to a pydantic schema -- the file's, a group's, a
case's, and each step kind's own (``oms.certification.steps``) -- so a misspelt key, a
value of the wrong type, an alias used before it is made, a duplicate id or a mandatory
case that needs an extension is a ``ChecklistError`` naming the case and the key, never
a case that passes because nothing checked it. YAML aliases are refused (no alias
bombs) and the file is read only up to ``MAX_BYTES``.

On top of the hand-written cases ``load()`` generates, from ``oms.lifecycle``:

- ``LC-<STATUS>-<ACTION>``: one case per cell of the transition grid -- an allowed
  cell must reach its status, a refused cell must be refused with INVALID_TRANSITION and
  change nothing -- so transition coverage is 100% by construction;
- ``UO-<ACTION>``: every command (and the reads) against an order that does not exist;
- ``FB-<COMMAND>-<FIELD>``: every bound of DESIGN.md on both sides, per command.

Each lifecycle and bounds case runs on every kind of order (``VARIANTS``: BUY and SELL,
LIMIT and MARKET, with and without a client order id): a rule kept for one kind only is
still broken.

Nothing here restates the table: change ``TRANSITIONS`` and the generated cases follow.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as SchemaError

from oms.certification import needs as needs_
from oms.certification.steps import REGISTRY, StepKind
from oms.lifecycle import COMMANDS, FIX_EXEC_TYPE, FIX_ORD_STATUS, FIX_REFUSAL, TRANSITIONS, grid, path_to

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
DEFAULT_CHECKLIST = Path(__file__).resolve().parents[2] / "certification" / "checklist.yaml"
MAX_BYTES = 2 * 1024 * 1024
PACK_VERSION = "2.1"
"""The version of the pack's machinery (runner, step kinds, contract checks)."""
CLOCK_TICK_MS = 20
"""A wait before a change whose updated_at must be later: past the coarsest common clock
tick (15.6 ms, Windows' default), as DESIGN.md fixes the timestamps' format, not their clock."""

EvidenceKind = Literal["orders", "events", "listing", "race", "crash", "sql", "http", "replay", "fix", "fix_session"]
EVIDENCE_KINDS: tuple[str, ...] = EvidenceKind.__args__  # type: ignore[attr-defined]
HAND_ID = re.compile(r"(?P<prefix>[A-Z]{2})-(?P<number>\d{3})")
GENERATED_GROUP = "SM"
"""The generated cases belong to the negative / state-machine group."""


class ChecklistError(ValueError):
    """The checklist data is malformed; the message names the case and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _CaseSpec(_Strict):
    id: str
    title: str
    requirement: str
    fix: str | None = None
    steps: list[dict[str, Any]]
    evidence: list[EvidenceKind]
    mandatory: bool


class _GroupSpec(_Strict):
    id: str
    name: str
    description: str = ""
    cases: list[dict[str, Any]]


class _FileSpec(_Strict):
    title: str
    version: str
    groups: list[dict[str, Any]]


@dataclass(frozen=True)
class Step:
    kind: StepKind
    spec: Any
    """The validated spec of the step's kind."""

    @property
    def action(self) -> str:
        return str(self.spec.action)

    @property
    def needs(self) -> set[str]:
        return self.kind.needs(self.spec)

    def describe(self) -> str:
        """One line: the action and its inputs, for documents and reports."""
        return self.kind.describe(self.spec)

    def expected(self) -> str:
        """One line: what the step must observe."""
        return self.kind.expected(self.spec)


@dataclass(frozen=True)
class Case:
    id: str
    group: str
    title: str
    requirement: str
    steps: tuple[Step, ...]
    evidence: tuple[str, ...]
    mandatory: bool = True
    fix: str | None = None
    generated: bool = False
    cell: tuple[str, str] | None = None
    """For generated lifecycle cases: the (status, action) grid cell covered."""

    @property
    def needs(self) -> tuple[str, ...]:
        """Tiers, extensions and faculties the case needs, in the order of ``needs.ALL``."""
        wanted = set().union(*(s.needs for s in self.steps if not s.spec.if_offered))
        return tuple(n for n in needs_.ALL if n in wanted)

    @property
    def tier(self) -> str:
        """The highest tier the case needs (core < read < audit)."""
        return next((t for t in reversed(needs_.TIERS) if t in self.needs), "core")


@dataclass(frozen=True)
class Group:
    id: str
    name: str
    description: str
    cases: list[Case] = field(default_factory=list)


@dataclass(frozen=True)
class Checklist:
    title: str
    version: str
    groups: list[Group]
    source: str
    sha256: str = ""
    """Of the checklist file as read."""

    @property
    def cases(self) -> list[Case]:
        return [c for g in self.groups for c in g.cases]

    def group(self, group_id: str) -> Group:
        for g in self.groups:
            if g.id == group_id:
                return g
        raise KeyError(f"no group {group_id!r}; groups are {', '.join(g.id for g in self.groups)}")

    def case(self, case_id: str) -> Case:
        for c in self.cases:
            if c.id == case_id:
                return c
        raise KeyError(f"no case {case_id!r}")


def load(path: str | Path = DEFAULT_CHECKLIST) -> Checklist:
    """Read, check and complete the checklist. Raises ChecklistError naming the problem."""
    path = Path(path)
    raw = _read(path)
    data = _yaml(raw, path)
    file = _validate(_FileSpec, data, f"{path}")
    groups: list[Group] = []
    seen: set[str] = set()
    for i, g in enumerate(file.groups, 1):
        spec = _validate(_GroupSpec, g, f"group {g.get('id', i) if isinstance(g, dict) else i}")
        if any(x.id == spec.id for x in groups):
            raise ChecklistError(f"group {spec.id}: duplicate group id")
        group = Group(id=spec.id, name=spec.name, description=" ".join(spec.description.split()))
        previous = 0
        for raw_case in spec.cases:
            case = case_from(raw_case, group.id)
            m = HAND_ID.fullmatch(case.id)
            if not m or m["prefix"] != group.id:
                raise ChecklistError(f"{case.id}: ids look like {group.id}-010 in group {group.id}")
            number = int(m["number"])
            if case.id in seen:
                raise ChecklistError(f"{case.id}: duplicate id")
            if number <= previous:  # spaced by 10 when written, so a case can slot in (OE-015)
                raise ChecklistError(f"{case.id}: ids increase within a group, in file order")
            previous = number
            seen.add(case.id)
            group.cases.append(case)
        if group.id == GENERATED_GROUP:
            group.cases.extend(generated_cases())
        groups.append(group)
    if GENERATED_GROUP not in {g.id for g in groups}:
        raise ChecklistError(
            f"{path}: the generated lifecycle cases belong to group {GENERATED_GROUP}, which is missing"
        )
    return Checklist(
        title=file.title, version=file.version, groups=groups, source=str(path), sha256=hashlib.sha256(raw).hexdigest()
    )


def _read(path: Path) -> bytes:
    try:
        if path.is_dir():
            raise ChecklistError(f"{path}: is a folder, not a checklist file")
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise ChecklistError(f"{path}: cannot read the checklist: {e.strerror or e}") from None
    if len(raw) > MAX_BYTES:
        raise ChecklistError(f"{path}: larger than {MAX_BYTES // 1024 // 1024} MiB; not a checklist")
    return raw


def _yaml(raw: bytes, path: Path) -> Any:
    try:
        text = raw.decode("utf-8")
        for event in yaml.parse(text, Loader=_LOADER):
            if isinstance(event, yaml.AliasEvent):
                mark = event.start_mark
                line = f" (line {mark.line + 1})" if mark else ""
                raise ChecklistError(f"{path}: YAML aliases (*name) are not allowed in a checklist{line}")
        data = yaml.load(text, Loader=_LOADER)
    except UnicodeDecodeError:
        raise ChecklistError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise ChecklistError(f"{path}: not valid YAML{line}: {getattr(e, 'problem', None) or e}") from None
    if not isinstance(data, dict):
        raise ChecklistError(f"{path}: a checklist is a mapping with title, version and groups")
    return data


def _validate(model: type[BaseModel], data: Any, where: str) -> Any:
    try:
        return model.model_validate(data)
    except SchemaError as e:
        raise ChecklistError(f"{where}: {_first(e)}") from None


def _first(e: SchemaError) -> str:
    """The first schema error as ``key.sub: what is wrong`` (and how many more)."""
    errors = e.errors()
    err = errors[0]
    loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-")) or "(top)"
    kind = err["type"]
    if kind == "extra_forbidden":
        what = "unknown key"
    elif kind == "missing":
        what = "missing"
    else:
        what = err["msg"]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{loc}: {what}{more}"


def case_from(raw: Any, group: str, *, generated: bool = False, cell: tuple[str, str] | None = None) -> Case:
    """One case from its data, every step validated by its kind's schema."""
    cid = raw.get("id", "?") if isinstance(raw, dict) else "?"
    spec = _validate(_CaseSpec, raw, f"case {cid}")
    steps = []
    for i, s in enumerate(spec.steps, 1):
        action = s.get("action") if isinstance(s, dict) else None
        kind = REGISTRY.get(action) if isinstance(action, str) else None
        if kind is None:
            raise ChecklistError(f"{cid}: step {i}: unknown action {action!r}; expected one of {', '.join(REGISTRY)}")
        steps.append(Step(kind, _validate(kind.Spec, s, f"{cid}: step {i} ({action})")))
    if not steps:
        raise ChecklistError(f"{cid}: a case needs at least one step")
    if not spec.evidence:
        raise ChecklistError(f"{cid}: evidence: name at least one of {', '.join(EVIDENCE_KINDS)}")
    _check_references(cid, steps)
    case = Case(
        id=cid,
        group=group,
        title=" ".join(spec.title.split()),
        requirement=" ".join(spec.requirement.split()),
        fix=spec.fix,
        steps=tuple(steps),
        evidence=tuple(spec.evidence),
        mandatory=spec.mandatory,
        generated=generated,
        cell=cell,
    )
    extensions = [n for n in case.needs if n in needs_.EXTENSIONS]
    if case.mandatory and extensions:
        raise ChecklistError(
            f"{cid}: a mandatory case needs only the tiers (core, read, audit); it needs {', '.join(extensions)}"
        )
    return case


def _check_references(cid: str, steps: list[Step]) -> None:
    """Every order a step names was made (``as:``) by an earlier step; every mark used was made."""
    defined: set[str] = set()
    marks: set[str] = set()
    for i, step in enumerate(steps, 1):
        for alias, where in step.kind.uses(step.spec):
            if alias not in defined:
                raise ChecklistError(
                    f"{cid}: step {i} ({where}) names order {alias!r}, which no earlier step made (as: {alias})"
                )
        made, used = step.kind.marks(step.spec)
        for name in used:
            if name not in marks:
                raise ChecklistError(f"{cid}: step {i}: unchanged since {name!r}, but no earlier mark has that name")
        marks.update(made)
        defined.update(step.kind.makes(step.spec))


# ---- generated from the lifecycle table -------------------------------------------------

VARIANTS: tuple[dict[str, Any], ...] = (
    {"side": "BUY", "order_type": "LIMIT", "price": "100.5", "quantity": 100},
    {"side": "SELL", "order_type": "LIMIT", "price": "100.5", "client_order_id": "{run}-%s", "quantity": 1000001},
    {"side": "BUY", "order_type": "MARKET", "client_order_id": "{run}-%s", "quantity": 999999999},
    {"side": "SELL", "order_type": "MARKET", "quantity": 123456789},
)
"""Each generated rule runs on every side x order type, with and without a client order id:
a rule kept for one kind of order only is still a broken rule."""
FILL_PRICE = "100.5"
"""The price a MARKET order is executed at when the price is not what a case is about."""
_UNKNOWN_READS = ("get", "events")

QUANTITY: dict[str, list[Any]] = {
    "refused": [0, -5, 2.5, 1000000001, 4294967396, 18446744073709551617, "abc"],
    "accepted": [1, 1000000000, 123456789, 999999999],
}
PRICE: dict[str, list[Any]] = {
    "refused": ["0", "-3", "1.23456", "1000000000000", "1E-7", "abc"],
    "accepted": ["0.0001", "999999999999.9999"],
}
"""DESIGN.md's bounds, both sides of each: quantity 1..10^9 whole; 0 < price < 10^12, at most 4 places."""


def generated_cases() -> list[Case]:
    """One case per grid cell (allowed or refused), one per unknown-order request, and one
    per (command, field) of the field bounds -- each over every order VARIANT."""
    cases = [_cell_case(status.value, action.value, to.value if to else None) for status, action, to in grid()]
    for name in (*(a.value for a in COMMANDS), *_UNKNOWN_READS):
        step: dict[str, Any] = {"action": name, "order": "unknown", "refuse": "ORDER_NOT_FOUND"}
        if name == "modify":
            step["input"] = {"quantity": 50}
        if name == "execute":
            step["input"] = {}
        fix = {
            "modify": "OrderCancelReject 102=1 (Unknown order)",
            "cancel": "OrderCancelReject 102=1 (Unknown order)",
            "get": "OrderStatusRequest 35=H for an unknown order (App. D group G)",
            "events": "OrderStatusRequest 35=H for an unknown order (App. D group G)",
        }.get(name)
        raw = {
            "id": f"UO-{name.upper()}",
            "title": f"{name} of an unknown order is refused",
            "requirement": f"{name} of an order id that does not exist answers ORDER_NOT_FOUND (404) "
            "and creates nothing.",
            "fix": fix,
            "steps": [{"action": "mark", "as": "before"}, step, {"action": "unchanged", "since": "before"}],
            "evidence": ["listing"],
            "mandatory": True,
        }
        cases.append(case_from(raw, GENERATED_GROUP, generated=True))
    cases += _bounds_cases()
    return cases


def _order(i: int, symbol: str, *, quantity: Any = None, tag: str = "") -> dict[str, Any]:
    """The create input of variant ``i`` (its client order id unique to the case and run)."""
    v = dict(VARIANTS[i])
    if quantity is not None:
        v["quantity"] = quantity
    if "client_order_id" in v:
        v["client_order_id"] = v["client_order_id"] % f"{tag or symbol}-{i}"
    return {"symbol": symbol, **v}


def _is_market(i: int) -> bool:
    return bool(VARIANTS[i]["order_type"] == "MARKET")


def _command_input(action: str, i: int, *, nth: int = 1) -> dict[str, Any]:
    """The input of the ``nth`` lifecycle command on variant ``i``: a MARKET order is
    executed at a price, and each modify asks for a quantity the order does not have, so
    the refusal a case checks is the transition's, never a missing price or a change of
    nothing (which DESIGN.md does not settle)."""
    if action == "modify":  # large orders stay large: a rule broken only above some size is still broken
        quantity, top = VARIANTS[i]["quantity"], max(QUANTITY["accepted"])
        return {"input": {"quantity": quantity + nth if quantity + nth <= top else quantity - nth}}
    if action == "execute":
        return {"input": {"price": FILL_PRICE} if _is_market(i) else {}}
    return {}


def _cell_case(status: str, action: str, to: str | None) -> Case:
    from oms.lifecycle import Action, Status

    steps: list[dict[str, Any]] = []
    for i in range(len(VARIANTS)):
        alias = f"o{i + 1}"
        order = _order(i, "LCY", tag=f"LC-{status}-{action}")
        steps.append({"action": "create", "input": order, "as": alias, "expect": {"status": "NEW"}})
        reached = Status.NEW
        for n, prior in enumerate(path_to(Status(status)), start=1):
            reached = TRANSITIONS[(reached, prior)]
            steps.append(
                {
                    "action": prior.value,
                    "order": alias,
                    **_command_input(prior.value, i, nth=n),
                    "expect": {"status": reached.value},
                }
            )
        nth = len(path_to(Status(status))) + 1
        command: dict[str, Any] = {"action": action, "order": alias, **_command_input(action, i, nth=nth)}
        if to is not None:  # the change must move updated_at: let the clock move first
            steps.append({"action": "wait", "ms": CLOCK_TICK_MS})
        if to is None:
            command["refuse"] = {"code": "INVALID_TRANSITION", "message_contains": [action, status]}
            last: dict[str, Any] = {
                "action": action,
                "accepted": False,
                "reason": "INVALID_TRANSITION",
                "from_status": status,
            }
        else:
            command["expect"] = {"status": to, "updated_after": alias}
            last = {"action": action, "accepted": True, "to_status": to}
        steps.append(command)
        steps.append({"action": "events", "order": alias, "expect": {"last": last}, "if_offered": True})
    kinds = "BUY and SELL, LIMIT and MARKET, with and without a client order id"
    if to is None:
        title = f"{action} of {_article(status)} {status} order is refused"
        requirement = (
            f"The lifecycle table has no ({status}, {action}) transition: the command is refused "
            f"with INVALID_TRANSITION (409) naming the action and the status, the order is unchanged, "
            f"and the refusal is in its audit log -- for orders of every kind ({kinds})."
        )
        refusal = FIX_REFUSAL[Action(action)]
        how = "no FIX message (a venue-internal fill)" if refusal.startswith("none") else f"refused with {refusal}"
        fix = f"{how}; OrdStatus 39={FIX_ORD_STATUS[Status(status)][0]} stays"
    else:
        title = f"{action} of {_article(status)} {status} order gives {to}"
        requirement = (
            f"The lifecycle table allows ({status}, {action}) -> {to}, for orders of every kind ({kinds}); "
            "the audit log records it."
        )
        exec_type, ord_status = FIX_EXEC_TYPE[Action(action)], FIX_ORD_STATUS[Status(to)]
        fix = f"ExecutionReport 150={exec_type[0]} ({exec_type[1]}), 39={ord_status[0]} ({ord_status[1]})"
    raw = {
        "id": f"LC-{status}-{action.upper()}",
        "title": title,
        "requirement": requirement,
        "fix": fix,
        "steps": steps,
        "evidence": ["orders", "events"],
        "mandatory": True,
    }
    return case_from(raw, GENERATED_GROUP, generated=True, cell=(status, action))


def _bounds_cases() -> list[Case]:
    """FB-<COMMAND>-<FIELD>: every bound of DESIGN.md on both sides, for each command that
    takes the field, on every order variant. Refused values change nothing; the bounds
    themselves are accepted, exactly."""
    specs = [
        ("CREATE", "QUANTITY", _create_quantity, "a create"),
        ("CREATE", "PRICE", _create_price, "a create"),
        ("MODIFY", "QUANTITY", _modify_quantity, "a modify"),
        ("MODIFY", "PRICE", _modify_price, "a modify"),
        ("EXECUTE", "PRICE", _execute_price, "an execute"),
    ]
    out = []
    for command, field_, build, what in specs:
        name = field_.lower()
        bounds = QUANTITY if name == "quantity" else PRICE
        raw = {
            "id": f"FB-{command}-{field_}",
            "title": f"The {name} bounds hold on {what}, for every kind of order",
            "requirement": (
                f"In {what}, {name} {', '.join(map(str, bounds['refused']))} are refused with VALIDATION_ERROR "
                f"naming {name}, changing nothing; {' and '.join(map(str, bounds['accepted']))} are accepted exactly "
                "-- on BUY and SELL, LIMIT and MARKET orders, with and without a client order id."
            ),
            "steps": build(),
            "evidence": ["orders"],
            "mandatory": True,
        }
        out.append(case_from(raw, GENERATED_GROUP, generated=True))
    return out


def _refused(action: str, field_: str, **step: Any) -> dict[str, Any]:
    return {"action": action, **step, "refuse": {"code": "VALIDATION_ERROR", "fields": [field_]}}


def _create_quantity() -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = [{"action": "mark", "as": "before"}]
    for i in range(len(VARIANTS)):
        for q in QUANTITY["refused"]:
            steps.append(_refused("create", "quantity", input=_order(i, "FBQ", quantity=q)))
    steps.append({"action": "unchanged", "since": "before"})
    for i in range(len(VARIANTS)):
        q = QUANTITY["accepted"][i % len(QUANTITY["accepted"])]
        steps.append(
            {"action": "create", "input": _order(i, "FBQ", quantity=q), "as": f"o{i + 1}", "expect": {"quantity": q}}
        )
    return steps


def _create_price() -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = [{"action": "mark", "as": "before"}]
    for i in range(len(VARIANTS)):
        for p in PRICE["refused"] if not _is_market(i) else ["10"]:
            steps.append(_refused("create", "price", input={**_order(i, "FBP"), "price": p}))
    steps.append({"action": "unchanged", "since": "before"})
    for i in (0, 1):
        for j, p in enumerate(PRICE["accepted"]):
            alias = f"o{i + 1}{'ab'[j]}"
            order = {**_order(i, "FBP"), "price": p}
            if "client_order_id" in order:
                order["client_order_id"] += f"-{j}"
            steps.append({"action": "create", "input": order, "as": alias, "expect": {"price": p}})
    return steps


def _modify_quantity() -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for i in range(len(VARIANTS)):
        alias = f"o{i + 1}"
        steps.append({"action": "create", "input": _order(i, "FBMQ"), "as": alias})
        for q in QUANTITY["refused"]:
            steps.append(_refused("modify", "quantity", order=alias, input={"quantity": q}))
        # an accepted bound the order does not hold already (a change of nothing is not settled)
        accepted = QUANTITY["accepted"][i + 1 :] + QUANTITY["accepted"][: i + 1]
        q = next(q for q in accepted if q != VARIANTS[i]["quantity"])
        steps.append({"action": "modify", "order": alias, "input": {"quantity": q}, "expect": {"quantity": q}})
    return steps


def _modify_price() -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for i in range(len(VARIANTS)):
        alias = f"o{i + 1}"
        steps.append({"action": "create", "input": _order(i, "FBMP"), "as": alias})
        for p in PRICE["refused"] if not _is_market(i) else ["10"]:
            steps.append(_refused("modify", "price", order=alias, input={"price": p}))
        if not _is_market(i):
            p = PRICE["accepted"][i % 2]
            steps.append({"action": "modify", "order": alias, "input": {"price": p}, "expect": {"price": p}})
    return steps


def _execute_price() -> list[dict[str, Any]]:
    """A LIMIT order's refused price may also be worse than its limit: either refusal is
    right then (DESIGN does not order the two checks); a MARKET order's can only be bad input.
    The SELL MARKET order is MODIFIED first: a modified MARKET order still needs a price."""
    steps: list[dict[str, Any]] = []
    for i in range(len(VARIANTS)):
        alias = f"o{i + 1}"
        steps.append({"action": "create", "input": _order(i, "FBX"), "as": alias})
        if i == 3:
            steps.append(
                {"action": "modify", "order": alias, "input": {"quantity": 7}, "expect": {"status": "MODIFIED"}}
            )
        side, limit = VARIANTS[i]["side"], VARIANTS[i].get("price")
        for p in PRICE["refused"]:
            worse = limit is not None and _worse(side, p, limit)
            refuse: dict[str, Any] = (
                {"code": ["VALIDATION_ERROR", "PRICE_OUTSIDE_LIMIT"]}
                if worse
                else {"code": "VALIDATION_ERROR", "fields": ["price"]}
            )
            steps.append({"action": "execute", "order": alias, "input": {"price": p}, "refuse": refuse})
        if _is_market(i):
            steps.append(_refused("execute", "price", order=alias, input={}))
        best = PRICE["accepted"][0] if side == "BUY" else PRICE["accepted"][1]
        steps.append(
            {
                "action": "execute",
                "order": alias,
                "input": {"price": best},
                "expect": {"status": "EXECUTED", "executed_price": best},
            }
        )
    return steps


def _worse(side: str, price: str, limit: str) -> bool:
    from decimal import Decimal, InvalidOperation

    try:
        p, lim = Decimal(price), Decimal(limit)
    except InvalidOperation:
        return False
    return p > lim if side == "BUY" else p < lim


def _article(word: str) -> str:
    return "an" if word[0] in "AEIOU" else "a"
