"""The checklist data: enough hand-written cases, well-formed ids, the generated
lifecycle matrix complete by construction, and the generated documents current."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from oms.certification import docs
from oms.certification.checklist import (
    DEFAULT_CHECKLIST,
    HAND_ID,
    ChecklistError,
    generated_cases,
    load,
)
from oms.lifecycle import COMMANDS, TRANSITIONS, Action, Status, grid, refused_pairs

GROUPS = ("OE", "MO", "CA", "EX", "SM", "IC", "RP", "PB")


def test_the_checklist_has_at_least_45_hand_written_cases_in_the_eight_groups() -> None:
    checklist = load()
    hand = [c for c in checklist.cases if not c.generated]
    assert len(hand) >= 45
    assert [g.id for g in checklist.groups] == list(GROUPS)
    for group in checklist.groups:
        assert [c for c in group.cases if not c.generated], f"group {group.id} has no hand-written case"


def test_every_hand_written_case_has_a_spaced_id_title_requirement_steps_and_evidence() -> None:
    for case in (c for c in load().cases if not c.generated):
        m = HAND_ID.fullmatch(case.id)
        assert m and m["prefix"] == case.group and int(m["number"]) % 10 == 0, case.id
        assert case.title and case.requirement and case.steps and case.evidence, case.id
        for step in case.steps:
            assert step.describe() and step.expected(), case.id


def test_a_case_can_slot_in_between_two_spaced_ids(tmp_path: Path) -> None:
    def slot_in(data: dict) -> None:  # type: ignore[type-arg]
        first = dict(data["groups"][0]["cases"][0], id="OE-015", title="slotted in")
        data["groups"][0]["cases"].insert(1, first)

    ids = [c.id for c in load(_write(tmp_path, slot_in)).group("OE").cases]
    assert ids[:3] == ["OE-010", "OE-015", "OE-020"]


def test_ids_are_unique() -> None:
    ids = [c.id for c in load().cases]
    assert len(ids) == len(set(ids))


def test_generated_cases_cover_every_cell_of_the_lifecycle_grid() -> None:
    cases = [c for c in load().cases if c.cell]
    assert sorted(c.cell for c in cases) == sorted((s.value, a.value) for s, a, _ in grid())
    refused = {(s.value, a.value) for s, a in refused_pairs()}
    for case in cases:
        last_command = [s for s in case.steps if s.action in ("modify", "cancel", "execute")][-1]
        if case.cell in refused:
            assert last_command.spec["refuse"]["code"] == "INVALID_TRANSITION", case.id
        else:
            status, action = case.cell
            assert last_command.spec["expect"]["status"] == TRANSITIONS[(Status(status), Action(action))].value


def test_every_command_and_read_has_an_unknown_order_case() -> None:
    ids = {c.id for c in load().cases}
    for name in [a.value for a in COMMANDS] + ["get", "events"]:
        assert f"UO-{name.upper()}" in ids


def test_the_generated_matrix_follows_the_table_when_the_table_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TRANSITIONS, (Status.MODIFIED, Action.CANCEL), Status.CANCELLED)
    case = next(c for c in generated_cases() if c.cell == ("MODIFIED", "cancel"))
    assert case.steps[-1].spec["expect"] == {"status": "CANCELLED"}
    assert "refuse" not in case.steps[-1].spec


def _write(tmp_path: Path, mutate: object) -> Path:
    data = yaml.safe_load(DEFAULT_CHECKLIST.read_text())
    mutate(data)  # type: ignore[operator]
    path = tmp_path / "checklist.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["groups"][0]["cases"][1].update(id="OE-005"), "ids increase within a group"),
        (lambda d: d["groups"][0]["cases"][1].update(id="MO-020"), "ids look like OE-010"),
        (lambda d: d["groups"][0]["cases"][0]["steps"][0].update(action="teleport"), "unknown action"),
        (lambda d: d["groups"][0]["cases"][9]["steps"][1].update(refuse="NOPE"), "unknown refusal code"),
        (lambda d: d["groups"][0]["cases"][0].update(evidence=[]), "evidence"),
        (lambda d: d["groups"][0]["cases"][0].pop("mandatory"), "missing mandatory"),
        (lambda d: d["groups"][0]["cases"][0].update(colour="red"), "unknown keys colour"),
        (lambda d: d["groups"][1]["cases"][0]["steps"][1].update(order="p"), "names order 'p', which no earlier"),
        (lambda d: d["groups"][0]["cases"][0]["steps"][0]["expect"].update(colr="red"), "cannot expect colr"),
        (lambda d: d["groups"][0]["cases"][9]["steps"][2].update(since="nope"), "no earlier mark"),
    ],
)
def test_a_malformed_checklist_is_refused_naming_the_case(tmp_path: Path, mutate: object, message: str) -> None:
    with pytest.raises(ChecklistError, match=message):
        load(_write(tmp_path, mutate))


def test_the_generated_documents_are_current() -> None:
    """Run `oms certify --docs` after editing checklist.yaml."""
    for name, text in docs.generated(load()).items():
        assert (DEFAULT_CHECKLIST.parent / name).read_text(encoding="utf-8") == text, f"{name} is stale"


def test_the_documents_list_every_case() -> None:
    checklist = load()
    cases_md, checklist_md = docs.test_cases_md(checklist), docs.checklist_md(checklist)
    for case in checklist.cases:
        assert f"### {case.id} " in cases_md
        assert f"| {case.id} |" in checklist_md
