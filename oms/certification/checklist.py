"""The certification checklist as data: load ``certification/checklist.yaml``, check it,
and add the cases generated from the lifecycle table.

Adapter layer over the pure core (reads a YAML file; imports no duckdb, pandas or HTTP).
Hand-written cases live in the YAML file, in groups, with ids spaced by 10 (``OE-010``).
On top of them ``load()`` generates, from ``oms.lifecycle``:

- ``LC-<STATUS>-<ACTION>``: one case per cell of the transition grid -- an allowed
  cell must reach its status, a refused cell must be refused with INVALID_TRANSITION and
  change nothing -- so transition coverage is 100% by construction;
- ``UO-<ACTION>``: every command (and the reads) against an order that does not exist.

Nothing here restates the table: change ``TRANSITIONS`` and the generated cases follow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from oms.lifecycle import COMMANDS, FIX_EXEC_TYPE, FIX_ORD_STATUS, FIX_REFUSAL, TRANSITIONS, grid, path_to

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
DEFAULT_CHECKLIST = Path(__file__).resolve().parents[2] / "certification" / "checklist.yaml"

ORDER_COMMANDS = ("create", "modify", "cancel", "execute")
READS = ("get", "orders", "events")
CHECKS = ("mark", "unchanged", "replay")
FAULTS = ("restart", "crash", "crash_stream")
OTHER = ("race", "sql", "http")
ACTIONS = ORDER_COMMANDS + READS + CHECKS + FAULTS + OTHER

CAPABILITY_OF_ACTION = {"restart": "restart", "crash": "crash", "crash_stream": "crash", "sql": "sql", "http": "http"}
"""Actions a target may not support; a case using one is NOT RUN on such a target."""

EVIDENCE_KINDS = ("orders", "events", "listing", "race", "crash", "sql", "http", "replay", "fix")
CODES = (
    "VALIDATION_ERROR",
    "ORDER_NOT_FOUND",
    "INVALID_TRANSITION",
    "DUPLICATE_CLIENT_ORDER_ID",
    "PRICE_OUTSIDE_LIMIT",
)
HAND_ID = re.compile(r"(?P<prefix>[A-Z]{2})-(?P<number>\d{3})")
GENERATED_GROUP = "SM"
"""The generated cases belong to the negative / state-machine group."""


class ChecklistError(ValueError):
    """The checklist data is malformed; the message names the case and the problem."""


@dataclass(frozen=True)
class Step:
    action: str
    spec: dict[str, Any]
    """The whole step mapping as written (inputs, order, expect, refuse, ...)."""

    def describe(self) -> str:
        """One line: the action and its inputs, for documents and reports."""
        parts = [self.action]
        if "order" in self.spec:
            parts.append(f"order={self.spec['order']}")
        if "order_id" in self.spec:
            parts.append(f"order_id={self.spec['order_id']}")
        for key in ("input", "filters"):
            if self.spec.get(key):
                parts.append(", ".join(f"{k}={v!r}" for k, v in self.spec[key].items()))
        if self.action == "race":
            parts.append(describe_race(self.spec))
        if self.action == "crash":
            parts.append("; ".join(Step(w["action"], w).describe() for w in self.spec.get("writes", [])))
        if self.action == "crash_stream":
            parts.append(f"kill -9 after {self.spec.get('acks', 20)} acknowledged creates")
        if self.action == "sql":
            parts.append(" ".join(str(self.spec["query"]).split()))
        if self.action == "http":
            parts.append(f"{self.spec['method']} {self.spec['path']} {self.spec.get('body', '')}".strip())
        if "since" in self.spec:
            parts.append(f"since {self.spec['since']}")
        if "as" in self.spec:
            parts.append(f"-> {self.spec['as']}")
        return " ".join(parts)

    def expected(self) -> str:
        """One line: what the step must observe."""
        if "refuse" in self.spec:
            refuse = self.spec["refuse"]
            if isinstance(refuse, dict):
                text = " or ".join(_as_list(refuse["code"]))
                if refuse.get("fields"):
                    text += f" naming {', '.join(refuse['fields'])}"
                if refuse.get("message_contains"):
                    text += f"; message mentions {', '.join(map(str, refuse['message_contains']))}"
            else:
                text = " or ".join(_as_list(refuse))
            if self.action in ("modify", "cancel", "execute") and self.spec.get("order") not in (None, "unknown"):
                text += "; order unchanged"
            return "refused " + text
        expect = self.spec.get("expect")
        if self.action == "unchanged":
            return f"orders identical to mark {self.spec['since']}"
        if self.action == "replay":
            return "replay of accepted events == orders"
        if self.action in ("restart", "crash") and not expect:
            return "system back up on the same database"
        if not expect:
            return "accepted" if self.action in ORDER_COMMANDS else "answers"
        return ", ".join(f"{k}={_short(v)}" for k, v in expect.items())


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
    def requires(self) -> tuple[str, ...]:
        """Target capabilities the case needs (restart, crash, sql, http), sorted."""
        needed = {CAPABILITY_OF_ACTION[s.action] for s in self.steps if s.action in CAPABILITY_OF_ACTION}
        return tuple(sorted(needed))


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
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except (OSError, yaml.YAMLError) as e:
        raise ChecklistError(f"{path}: cannot read the checklist: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("groups"), list):
        raise ChecklistError(f"{path}: expected a mapping with a 'groups' list")
    groups: list[Group] = []
    seen: set[str] = set()
    for g in data["groups"]:
        _require(g, ("id", "name", "cases"), f"group {g.get('id', '?')}")
        group = Group(id=g["id"], name=g["name"], description=str(g.get("description", "")).strip())
        previous = 0
        for raw in g["cases"]:
            case = _case(raw, group.id)
            m = HAND_ID.fullmatch(case.id)
            if not m or m["prefix"] != group.id:
                raise ChecklistError(f"{case.id}: ids look like {group.id}-010 in group {group.id}")
            number = int(m["number"])
            if number <= previous:  # spaced by 10 when written, so a case can slot in (OE-015)
                raise ChecklistError(f"{case.id}: ids increase within a group, in file order")
            previous = number
            if case.id in seen:
                raise ChecklistError(f"{case.id}: duplicate id")
            seen.add(case.id)
            group.cases.append(case)
        if g["id"] == GENERATED_GROUP:
            group.cases.extend(generated_cases())
        groups.append(group)
    if GENERATED_GROUP not in {g.id for g in groups}:
        raise ChecklistError(
            f"{path}: the generated lifecycle cases belong to group {GENERATED_GROUP}, which is missing"
        )
    return Checklist(
        title=str(data.get("title", "")), version=str(data.get("version", "")), groups=groups, source=str(path)
    )


def _require(mapping: Any, keys: tuple[str, ...], where: str) -> None:
    if not isinstance(mapping, dict):
        raise ChecklistError(f"{where}: expected a mapping")
    missing = [k for k in keys if k not in mapping]
    if missing:
        raise ChecklistError(f"{where}: missing {', '.join(missing)}")


def _case(raw: Any, group: str) -> Case:
    _require(raw, ("id", "title", "requirement", "steps", "evidence", "mandatory"), f"case {raw.get('id', '?')}")
    cid = raw["id"]
    unknown = set(raw) - {"id", "title", "requirement", "fix", "steps", "evidence", "mandatory"}
    if unknown:
        raise ChecklistError(f"{cid}: unknown keys {', '.join(sorted(unknown))}")
    steps = tuple(_step(s, cid) for s in raw["steps"])
    if not steps:
        raise ChecklistError(f"{cid}: a case needs at least one step")
    _check_aliases(cid, steps)
    evidence = tuple(raw["evidence"])
    bad = [e for e in evidence if e not in EVIDENCE_KINDS]
    if bad or not evidence:
        raise ChecklistError(f"{cid}: evidence must be a non-empty list of {', '.join(EVIDENCE_KINDS)}; got {bad}")
    if not isinstance(raw["mandatory"], bool):
        raise ChecklistError(f"{cid}: mandatory is true or false")
    return Case(
        id=cid,
        group=group,
        title=str(raw["title"]).strip(),
        requirement=" ".join(str(raw["requirement"]).split()),
        fix=raw.get("fix"),
        steps=steps,
        evidence=evidence,
        mandatory=raw["mandatory"],
    )


def _step(raw: Any, cid: str) -> Step:
    _require(raw, ("action",), f"{cid} step")
    action = raw["action"]
    if action not in ACTIONS:
        raise ChecklistError(f"{cid}: unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
    refuse = raw.get("refuse")
    if refuse is not None:
        codes = _as_list(refuse["code"] if isinstance(refuse, dict) else refuse)
        bad = [c for c in codes if c not in CODES]
        if bad:
            raise ChecklistError(f"{cid}: unknown refusal code {bad}; expected one of {', '.join(CODES)}")
    if action in ("modify", "cancel", "execute", "get") and "order" not in raw and "order_id" not in raw:
        raise ChecklistError(f"{cid}: {action} needs an order (an alias, or 'unknown') or an order_id")
    if action == "crash":
        for w in raw.get("writes", []):
            if w.get("action") not in ORDER_COMMANDS:
                raise ChecklistError(f"{cid}: crash writes are order commands, got {w.get('action')!r}")
    if action == "unchanged" and "since" not in raw:
        raise ChecklistError(f"{cid}: unchanged needs 'since: <mark>'")
    if action == "http" and not {"method", "path"} <= set(raw):
        raise ChecklistError(f"{cid}: http needs method and path")
    if action == "sql" and "query" not in raw:
        raise ChecklistError(f"{cid}: sql needs a query")
    return Step(action=action, spec=dict(raw))


ORDER_EXPECT_KEYS = frozenset(
    {"order_id", "client_order_id", "symbol", "side", "order_type", "quantity", "price", "status", "version",
     "executed_quantity", "executed_price", "created_at", "updated_at",
     "same_as", "id_after", "id_below_unknown", "timestamps", "updated_equals_created"}
)  # fmt: skip


def _check_aliases(cid: str, steps: tuple[Step, ...]) -> None:
    """Every order a step names was made (``as:``) by an earlier step; expectations of an
    order command name real fields. Mistakes in the data surface at load time."""
    defined: set[str] = set()
    marks: set[str] = set()

    def need(name: Any, what: str) -> None:
        if name != "unknown" and name not in defined:
            raise ChecklistError(f"{cid}: {what} names order {name!r}, which no earlier step made (as: {name})")

    for step in steps:
        spec = step.spec
        for sub in [spec, *spec.get("writes", []), *spec.get("commands", [])]:
            if "order" in sub:
                need(sub["order"], f"{sub['action']}")
            expect = sub.get("expect") or {}
            if sub["action"] in (*ORDER_COMMANDS, "get"):
                bad = sorted(set(expect) - ORDER_EXPECT_KEYS)
                if bad:
                    raise ChecklistError(f"{cid}: {sub['action']} cannot expect {', '.join(bad)}")
                for key in ("same_as", "id_after"):
                    if key in expect:
                        need(expect[key], key)
            for key in ("includes", "excludes", "includes_orders"):
                for name in expect.get(key, []) if sub["action"] in ("orders", "events") else []:
                    need(name, key)
            if sub.get("as") and sub["action"] != "mark":
                defined.add(sub["as"])
        for param in spec.get("params", []):
            if isinstance(param, str) and param.startswith("@"):
                need(param[1:], "a sql parameter")
        if step.action == "mark":
            marks.add(spec["as"])
        if step.action == "unchanged" and spec["since"] not in marks:
            raise ChecklistError(f"{cid}: unchanged since {spec['since']!r}, but no earlier mark has that name")


def describe_race(spec: dict[str, Any]) -> str:
    parts = []
    for c in spec["commands"]:
        target = f" {c['order']}" if "order" in c else ""
        parts.append(f"{c.get('copies', 1)} x {c['action']}{target}")
    return " | ".join(parts) + " at once"


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---- generated from the lifecycle table -------------------------------------------------

_SAMPLE_ORDER = {"symbol": "LCY", "side": "BUY", "quantity": 100, "price": "100.5"}
_SAMPLE_INPUT = {"modify": {"quantity": 50}, "cancel": {}, "execute": {}}


def generated_cases() -> list[Case]:
    """One case per grid cell (allowed or refused) and one per unknown-order request."""
    cases = []
    for status, action, to in grid():
        steps: list[Step] = [
            Step("create", {"action": "create", "input": dict(_SAMPLE_ORDER), "as": "o", "expect": {"status": "NEW"}})
        ]
        for prior in path_to(status):
            steps.append(
                Step(
                    prior.value,
                    {
                        "action": prior.value,
                        "order": "o",
                        "input": _SAMPLE_INPUT[prior.value],
                        "expect": {"status": TRANSITIONS[(_status_before(steps), prior)].value},
                    },
                )
            )
        spec: dict[str, Any] = {"action": action.value, "order": "o", "input": _SAMPLE_INPUT[action.value]}
        if to is None:
            spec["refuse"] = {"code": "INVALID_TRANSITION", "message_contains": [action.value, status.value]}
            title = f"{action.value} of {_article(status.value)} {status.value} order is refused"
            requirement = (
                f"The lifecycle table has no ({status.value}, {action.value}) transition: the command is refused "
                f"with INVALID_TRANSITION naming the action and the status, and the order is unchanged."
            )
            refusal = FIX_REFUSAL[action]
            how = "no FIX message (a venue-internal fill)" if refusal.startswith("none") else f"refused with {refusal}"
            fix = f"{how}; OrdStatus 39={FIX_ORD_STATUS[status][0]} stays"
            evidence: tuple[str, ...] = ("orders", "events")
            steps.append(Step(action.value, spec))
            steps.append(
                Step(
                    "events",
                    {
                        "action": "events",
                        "order": "o",
                        "expect": {
                            "last": {"accepted": False, "reason": "INVALID_TRANSITION", "from_status": status.value}
                        },
                    },
                )
            )
        else:
            spec["expect"] = {"status": to.value}
            title = f"{action.value} of {_article(status.value)} {status.value} order gives {to.value}"
            requirement = f"The lifecycle table allows ({status.value}, {action.value}) -> {to.value}."
            exec_type = FIX_EXEC_TYPE[action]
            ord_status = FIX_ORD_STATUS[to]
            fix = f"ExecutionReport 150={exec_type[0]} ({exec_type[1]}), 39={ord_status[0]} ({ord_status[1]})"
            evidence = ("orders", "events")
            steps.append(Step(action.value, spec))
        cases.append(
            Case(
                id=f"LC-{status.value}-{action.value.upper()}",
                group=GENERATED_GROUP,
                title=title,
                requirement=requirement,
                steps=tuple(steps),
                evidence=evidence,
                fix=fix,
                generated=True,
                cell=(status.value, action.value),
            )
        )
    for name in (*(a.value for a in COMMANDS), *_UNKNOWN_READS):
        step_spec: dict[str, Any] = {"action": name, "order": "unknown", "refuse": "ORDER_NOT_FOUND"}
        if name in _SAMPLE_INPUT:
            step_spec["input"] = _SAMPLE_INPUT[name]
        cases.append(
            Case(
                id=f"UO-{name.upper()}",
                group=GENERATED_GROUP,
                title=f"{name} of an unknown order is refused",
                requirement=f"{name} of an order id that does not exist answers ORDER_NOT_FOUND and creates nothing.",
                steps=(
                    Step("mark", {"action": "mark", "as": "before"}),
                    Step(name, step_spec),
                    Step("unchanged", {"action": "unchanged", "since": "before"}),
                ),
                evidence=("listing",),
                generated=True,
                fix="OrderCancelReject 102=1 (Unknown order)"
                if name in ("modify", "cancel")
                else (
                    "OrderStatusRequest 35=H for an unknown order (App. D group G)"
                    if name in ("get", "events")
                    else None
                ),
            )
        )
    return cases


_UNKNOWN_READS = ("get", "events")


def _article(word: str) -> str:
    return "an" if word[0] in "AEIOU" else "a"


def _status_before(steps: list[Step]) -> Any:
    """The status an order reaches after the steps so far (create, then the path prefix)."""
    from oms.lifecycle import INITIAL_STATUS, Action

    status = INITIAL_STATUS
    for s in steps[1:]:
        status = TRANSITIONS[(status, Action(s.action))]
    return status
