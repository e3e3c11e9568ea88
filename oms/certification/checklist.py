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
- ``UO-<ACTION>``: every command (and the reads) against an order that does not exist.

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
PACK_VERSION = "2.0"
"""The version of the pack's machinery (runner, step kinds, contract checks)."""

EvidenceKind = Literal["orders", "events", "listing", "race", "crash", "sql", "http", "replay", "fix"]
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

_SAMPLE_ORDER = {"symbol": "LCY", "side": "BUY", "quantity": 100, "price": "100.5"}
_SAMPLE_INPUT: dict[str, dict[str, Any]] = {"modify": {"quantity": 50}, "cancel": {}, "execute": {}}
_UNKNOWN_READS = ("get", "events")


def generated_cases() -> list[Case]:
    """One case per grid cell (allowed or refused) and one per unknown-order request."""
    cases = [_cell_case(status.value, action.value, to.value if to else None) for status, action, to in grid()]
    for name in (*(a.value for a in COMMANDS), *_UNKNOWN_READS):
        step: dict[str, Any] = {"action": name, "order": "unknown", "refuse": "ORDER_NOT_FOUND"}
        if _SAMPLE_INPUT.get(name):
            step["input"] = _SAMPLE_INPUT[name]
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
    return cases


def _cell_case(status: str, action: str, to: str | None) -> Case:
    from oms.lifecycle import Action, Status

    steps: list[dict[str, Any]] = [
        {"action": "create", "input": dict(_SAMPLE_ORDER), "as": "o", "expect": {"status": "NEW"}}
    ]
    reached = Status.NEW
    for prior in path_to(Status(status)):
        reached = TRANSITIONS[(reached, prior)]
        steps.append({"action": prior.value, "order": "o", **_input(prior.value), "expect": {"status": reached.value}})
    command = {"action": action, "order": "o", **_input(action)}
    if to is None:
        command["refuse"] = {"code": "INVALID_TRANSITION", "message_contains": [action, status]}
        steps.append(command)
        steps.append(
            {
                "action": "events",
                "order": "o",
                "expect": {
                    "last": {"action": action, "accepted": False, "reason": "INVALID_TRANSITION", "from_status": status}
                },
                "if_offered": True,
            }
        )
        title = f"{action} of {_article(status)} {status} order is refused"
        requirement = (
            f"The lifecycle table has no ({status}, {action}) transition: the command is refused "
            f"with INVALID_TRANSITION (409) naming the action and the status, the order is unchanged, "
            f"and the refusal is in its audit log."
        )
        refusal = FIX_REFUSAL[Action(action)]
        how = "no FIX message (a venue-internal fill)" if refusal.startswith("none") else f"refused with {refusal}"
        fix = f"{how}; OrdStatus 39={FIX_ORD_STATUS[Status(status)][0]} stays"
    else:
        command["expect"] = {"status": to}
        steps.append(command)
        steps.append(
            {
                "action": "events",
                "order": "o",
                "expect": {"last": {"action": action, "accepted": True, "to_status": to}},
                "if_offered": True,
            }
        )
        title = f"{action} of {_article(status)} {status} order gives {to}"
        requirement = f"The lifecycle table allows ({status}, {action}) -> {to}; the audit log records it."
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


def _input(action: str) -> dict[str, Any]:
    return {"input": _SAMPLE_INPUT[action]} if _SAMPLE_INPUT[action] or action == "execute" else {}


def _article(word: str) -> str:
    return "an" if word[0] in "AEIOU" else "a"
