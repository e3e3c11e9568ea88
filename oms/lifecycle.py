"""The order lifecycle as data: statuses, actions and the one transition table.

Pure core (no I/O, no third-party imports). Everything else -- the engine, the REST API,
the docs table, the Mermaid diagram, the parametrized tests and the negative
certification matrix -- is derived from ``TRANSITIONS``; nothing restates it.

Modify and cancel are allowed only while NEW. That is stricter than FIX, where an order
can be replaced again and again (chained cancel/replace); here a MODIFIED order can only
be executed.
"""

from __future__ import annotations

from enum import StrEnum

from oms.errors import InvalidTransition


class Status(StrEnum):
    NEW = "NEW"
    MODIFIED = "MODIFIED"
    CANCELLED = "CANCELLED"
    EXECUTED = "EXECUTED"

    def __repr__(self) -> str:
        return f"Status.{self.name}"


class Action(StrEnum):
    CREATE = "create"
    MODIFY = "modify"
    CANCEL = "cancel"
    EXECUTE = "execute"

    def __repr__(self) -> str:
        return f"Action.{self.name}"


INITIAL_STATUS = Status.NEW
"""What ``create`` makes."""

COMMANDS: tuple[Action, ...] = (Action.MODIFY, Action.CANCEL, Action.EXECUTE)
"""The actions that act on an existing order (the columns of the table)."""

# (current status, action) -> next status. A missing key is a refused transition.
TRANSITIONS: dict[tuple[Status, Action], Status] = {
    (Status.NEW, Action.MODIFY): Status.MODIFIED,
    (Status.NEW, Action.CANCEL): Status.CANCELLED,
    (Status.NEW, Action.EXECUTE): Status.EXECUTED,
    (Status.MODIFIED, Action.EXECUTE): Status.EXECUTED,  # no cancel/replace chains after a modify
}

TERMINAL: frozenset[Status] = frozenset({Status.CANCELLED, Status.EXECUTED})
OPEN: frozenset[Status] = frozenset(Status) - TERMINAL

# FIX 4.4 equivalents, for reports. OrdStatus (tag 39) of each status.
FIX_ORD_STATUS: dict[Status, tuple[str, str]] = {
    Status.NEW: ("0", "New"),
    Status.MODIFIED: ("0", "New"),  # FIX 4.4 no longer uses 39=5: the replace is ExecType 150=5
    Status.CANCELLED: ("4", "Canceled"),
    Status.EXECUTED: ("2", "Filled"),
}
# ExecType (tag 150) of the ExecutionReport each accepted action produces.
FIX_EXEC_TYPE: dict[Action, tuple[str, str]] = {
    Action.CREATE: ("0", "New"),
    Action.MODIFY: ("5", "Replaced"),
    Action.CANCEL: ("4", "Canceled"),
    Action.EXECUTE: ("F", "Trade"),
}
# How FIX reports a refusal of each action: a rejected new order is an ExecutionReport
# with ExecType 8; a refused replace or cancel is an OrderCancelReject (35=9) with
# CxlRejResponseTo (434) 2 or 1. Execution is venue-internal and has no FIX request.
FIX_REFUSAL: dict[Action, str] = {
    Action.CREATE: "ExecutionReport 150=8 (Rejected)",
    Action.MODIFY: "OrderCancelReject 35=9, 434=2 (Cancel/Replace Request)",
    Action.CANCEL: "OrderCancelReject 35=9, 434=1 (Cancel Request)",
    Action.EXECUTE: "none (venue-internal fill)",
}


def next_status(status: Status, action: Action, order_id: int | None = None) -> Status:
    """Return the status ``action`` leads to from ``status``.

    Raises InvalidTransition (INVALID_TRANSITION) when the table has no such row.
    """
    try:
        return TRANSITIONS[(status, action)]
    except KeyError:
        raise InvalidTransition(action.value, status.value, order_id) from None


def allowed_actions(status: Status) -> tuple[Action, ...]:
    """The commands the table allows from ``status``, in table column order."""
    return tuple(a for a in COMMANDS if (status, a) in TRANSITIONS)


def path_to(status: Status) -> list[Action]:
    """The shortest list of commands that takes a NEW order to ``status`` (from the table)."""
    paths: dict[Status, list[Action]] = {INITIAL_STATUS: []}
    frontier = [INITIAL_STATUS]
    while frontier:
        current = frontier.pop(0)
        for (start, action), end in TRANSITIONS.items():
            if start is current and end not in paths:
                paths[end] = [*paths[current], action]
                frontier.append(end)
    if status not in paths:
        raise ValueError(f"{status} is not reachable from {INITIAL_STATUS}")
    return paths[status]


def grid() -> list[tuple[Status, Action, Status | None]]:
    """Every (status, command) pair with its outcome (None = refused), row by row."""
    return [(s, a, TRANSITIONS.get((s, a))) for s in Status for a in COMMANDS]


def refused_pairs() -> list[tuple[Status, Action]]:
    """The (status, command) pairs the table refuses: the negative test matrix."""
    return [(s, a) for s, a, to in grid() if to is None]


def to_markdown() -> str:
    """The table as a Markdown grid: rows are statuses, columns are commands."""
    head = "| from \\ action | " + " | ".join(a.value for a in COMMANDS) + " |"
    rule = "|---" * (len(COMMANDS) + 1) + "|"
    rows = [
        f"| {s.value} | "
        + " | ".join((to.value if to else "refused") for to in (TRANSITIONS.get((s, a)) for a in COMMANDS))
        + " |"
        for s in Status
    ]
    return "\n".join([head, rule, *rows])


def to_mermaid() -> str:
    """The lifecycle as a Mermaid state diagram (``stateDiagram-v2``)."""
    lines = ["stateDiagram-v2", f"    [*] --> {INITIAL_STATUS.value}: {Action.CREATE.value}"]
    lines += [f"    {s.value} --> {to.value}: {a.value}" for (s, a), to in TRANSITIONS.items()]
    lines += [f"    {s.value} --> [*]" for s in Status if s in TERMINAL]
    return "\n".join(lines)
