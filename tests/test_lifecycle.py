"""The transition table itself, and the engine held to it over the whole grid."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import oms
from oms.engine import Engine
from oms.lifecycle import (
    COMMANDS,
    FIX_EXEC_TYPE,
    FIX_ORD_STATUS,
    FIX_REFUSAL,
    INITIAL_STATUS,
    OPEN,
    TERMINAL,
    TRANSITIONS,
    Action,
    Status,
    allowed_actions,
    grid,
    next_status,
    path_to,
    refused_pairs,
    to_markdown,
    to_mermaid,
)


def order_in(gw: Engine, status: Status) -> oms.Order:
    """A fresh LIMIT BUY order driven to ``status`` along the table's shortest path."""
    order = gw.create(symbol="INFY", side="BUY", quantity=100, price="1500.25")
    for action in path_to(status):
        order = {
            "modify": lambda o: gw.modify(o.order_id, quantity=50),
            "cancel": lambda o: gw.cancel(o.order_id),
            "execute": lambda o: gw.execute(o.order_id),
        }[action.value](order)
    assert order.status is status
    return order


def test_every_status_is_reachable_from_new() -> None:
    for status in Status:
        assert path_to(status) is not None


def test_nothing_leaves_a_terminal_status() -> None:
    assert not [key for key in TRANSITIONS if key[0] in TERMINAL]


def test_modify_and_cancel_are_allowed_only_while_new() -> None:
    for action in (Action.MODIFY, Action.CANCEL):
        assert {s for (s, a) in TRANSITIONS if a is action} == {Status.NEW}


def test_open_and_terminal_partition_the_statuses() -> None:
    assert set(Status) == OPEN | TERMINAL and not OPEN & TERMINAL
    assert INITIAL_STATUS in OPEN


def test_every_status_and_action_has_a_fix_equivalent() -> None:
    assert set(FIX_ORD_STATUS) == set(Status)
    assert set(FIX_EXEC_TYPE) == set(Action) == set(FIX_REFUSAL)


def test_grid_covers_every_status_and_command_once() -> None:
    cells = [(s, a) for s, a, _ in grid()]
    assert len(cells) == len(set(cells)) == len(Status) * len(COMMANDS)
    assert set(refused_pairs()) == set(cells) - set(TRANSITIONS)


def test_next_status_refuses_with_the_action_and_status_in_the_message() -> None:
    with pytest.raises(oms.InvalidTransition) as caught:
        next_status(Status.EXECUTED, Action.CANCEL, 17)
    assert caught.value.code == "INVALID_TRANSITION"
    assert caught.value.message == "cannot cancel order 17: status is EXECUTED"


@pytest.mark.parametrize(("status", "action", "outcome"), grid(), ids=lambda v: getattr(v, "value", str(v)))
def test_engine_follows_the_table_over_the_whole_grid(
    gw: Engine, status: Status, action: Action, outcome: Status | None
) -> None:
    order = order_in(gw, status)
    act = {
        Action.MODIFY: lambda: gw.modify(order.order_id, price="1499"),
        Action.CANCEL: lambda: gw.cancel(order.order_id),
        Action.EXECUTE: lambda: gw.execute(order.order_id),
    }[action]
    if outcome is not None:
        after = act()
        assert after.status is outcome
        assert after.version == order.version + 1
        return
    events_before = len(gw.events())
    with pytest.raises(oms.InvalidTransition) as caught:
        act()
    assert caught.value.message == f"cannot {action.value} order {order.order_id}: status is {status.value}"
    assert gw.get(order.order_id) == order, "a refused command changed the order"
    refused = gw.events()[events_before:]
    assert [(e.action, e.accepted, e.reason, e.from_status) for e in refused] == [
        (action, False, "INVALID_TRANSITION", status)
    ]


def test_allowed_actions_follow_the_table() -> None:
    for status in Status:
        assert set(allowed_actions(status)) == {a for (s, a) in TRANSITIONS if s is status}


def test_markdown_table_has_a_row_per_status_and_says_refused_where_the_table_is_silent() -> None:
    text = to_markdown()
    for status, action, outcome in grid():
        row = next(line for line in text.splitlines() if line.startswith(f"| {status.value} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1 + COMMANDS.index(action)] == (outcome.value if outcome else "refused")


def test_mermaid_diagram_draws_every_transition_and_terminal() -> None:
    text = to_mermaid()
    assert text.startswith("stateDiagram-v2")
    for (start, action), end in TRANSITIONS.items():
        assert f"{start.value} --> {end.value}: {action.value}" in text
    for status in TERMINAL:
        assert f"{status.value} --> [*]" in text


def test_the_core_imports_no_database_dataframe_web_or_widget_library() -> None:
    code = (
        "import sys, oms, oms.lifecycle, oms.model, oms.errors, oms.validation, oms.commands, oms.clock, "
        "oms.jsonio, oms.gateway\n"
        "heavy = {'duckdb', 'pandas', 'pyarrow', 'fastapi', 'ipywidgets', 'httpx', 'numpy'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_readme_shows_the_table_and_diagram_as_generated() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"```mermaid\n{to_mermaid()}\n```" in readme
    assert to_markdown() in readme
