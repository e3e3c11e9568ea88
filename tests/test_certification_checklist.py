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

GROUPS = ("OE", "MO", "CA", "EX", "SM", "IC", "RP", "FX", "PB")


def test_the_checklist_has_at_least_45_hand_written_cases_in_the_nine_groups() -> None:
    checklist = load()
    hand = [c for c in checklist.cases if not c.generated]
    assert len(hand) >= 45
    assert [g.id for g in checklist.groups] == list(GROUPS)
    for group in checklist.groups:
        assert [c for c in group.cases if not c.generated], f"group {group.id} has no hand-written case"


def test_every_hand_written_case_has_an_id_of_its_group_a_title_requirement_steps_and_evidence() -> None:
    for case in (c for c in load().cases if not c.generated):
        m = HAND_ID.fullmatch(case.id)
        assert m and m["prefix"] == case.group, case.id  # spaced by 10 when written; slot-ins between
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
            assert last_command.spec.refuse.code == ["INVALID_TRANSITION"], case.id
        else:
            status, action = case.cell
            assert last_command.spec.expect.status == TRANSITIONS[(Status(status), Action(action))].value


def test_every_command_and_read_has_an_unknown_order_case() -> None:
    ids = {c.id for c in load().cases}
    for name in [a.value for a in COMMANDS] + ["get", "events"]:
        assert f"UO-{name.upper()}" in ids


def test_the_generated_matrix_follows_the_table_when_the_table_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TRANSITIONS, (Status.MODIFIED, Action.CANCEL), Status.CANCELLED)
    case = next(c for c in generated_cases() if c.cell == ("MODIFIED", "cancel"))
    command = [s for s in case.steps if s.action == "cancel"][-1]
    assert command.spec.expect.status == "CANCELLED"
    assert command.spec.refuse is None


def _write(tmp_path: Path, mutate: object) -> Path:
    data = yaml.safe_load(DEFAULT_CHECKLIST.read_text())
    mutate(data)  # type: ignore[operator]
    path = tmp_path / "checklist.yaml"
    path.write_text(yaml.dump(data, Dumper=_NoAliases))
    return path


class _NoAliases(yaml.SafeDumper):
    """Writes shared objects out in full: a checklist may not use YAML aliases."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def _case(data: dict, case_id: str) -> dict:  # type: ignore[type-arg]
    return next(c for g in data["groups"] for c in g["cases"] if c["id"] == case_id)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        # the three typos of the issue: each ran to CERTIFIED before the schema
        (
            lambda d: _case(d, "OE-090")["steps"][1]["expect"].update(typo_never_checked="WRONG"),
            r"OE-090: step 2 \(events\): expect\.typo_never_checked: unknown key",
        ),
        (
            lambda d: _case(d, "OE-010")["steps"][0].update(expcet=_case(d, "OE-010")["steps"][0].pop("expect")),
            r"OE-010: step 1 \(create\): expcet: unknown key",
        ),
        (
            lambda d: _case(d, "OE-100")["steps"][1]["refuse"].update(codee="VALIDATION_ERROR"),
            r"OE-100: step 2 \(create\): refuse\.codee: unknown key",
        ),
        (lambda d: _case(d, "OE-010")["steps"][0]["expect"].update(quantity="100"), r"OE-010: step 1 .*quantity"),
        (lambda d: _case(d, "OE-010")["steps"][0]["expect"].update(status="OPEN"), r"OE-010: step 1 .*status"),
        (
            lambda d: _case(d, "IC-050")["steps"][1]["expect"].update(acepted=1),
            r"IC-050: step 2 \(race\): expect\.acepted",
        ),
        (lambda d: _case(d, "OE-020").update(id="OE-010"), "OE-010: duplicate id"),
        (lambda d: d["groups"][0]["cases"][1].update(id="OE-005"), "ids increase within a group"),
        (lambda d: d["groups"][0]["cases"][1].update(id="MO-020"), "ids look like OE-010"),
        (lambda d: d["groups"][0]["cases"][0]["steps"][0].update(action="teleport"), "unknown action 'teleport'"),
        (lambda d: _case(d, "OE-100")["steps"][1].update(refuse="NOPE"), r"OE-100: step 2 \(create\): refuse"),
        (lambda d: d["groups"][0]["cases"][0].update(evidence=[]), "evidence"),
        (lambda d: d["groups"][0]["cases"][0].update(evidence=["photos"]), r"case OE-010: evidence\.0"),
        (lambda d: d["groups"][0]["cases"][0].pop("mandatory"), "case OE-010: mandatory: missing"),
        (lambda d: d["groups"][0]["cases"][0].update(mandatory="yes"), "case OE-010: mandatory"),
        (lambda d: d["groups"][0]["cases"][0].update(colour="red"), "case OE-010: colour: unknown key"),
        (lambda d: d["groups"][0].update(colour="red"), "group OE: colour: unknown key"),
        (lambda d: d.update(colour="red"), "colour: unknown key"),
        (lambda d: _case(d, "MO-010")["steps"][1].update(order="p"), "names order 'p', which no earlier step made"),
        (lambda d: _case(d, "OE-100")["steps"][-1].update(since="nope"), "no earlier mark"),
        (lambda d: _case(d, "PB-070").update(mandatory=True), "PB-070: a mandatory case needs only the tiers"),
        (lambda d: _case(d, "RP-055").update(mandatory=True), "RP-055: a mandatory case needs only the tiers"),
        (lambda d: _case(d, "SM-070")["steps"][1].update(method="BREW"), r"SM-070: step 2 \(http\): method"),
    ],
)
def test_a_malformed_checklist_is_refused_naming_the_case_and_the_key(
    tmp_path: Path, mutate: object, message: str
) -> None:
    with pytest.raises(ChecklistError, match=message):
        load(_write(tmp_path, mutate))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("groups: [unclosed", "not valid YAML"),
        ("- just\n- a list\n", "a checklist is a mapping"),
        ("", "a checklist is a mapping"),
        ('a: &a ["x", "x"]\nb: &b [*a, *a]\nc: &c [*b, *b]\n', "YAML aliases"),
        ("title: t\nversion: '1'\n", "groups: missing"),
    ],
)
def test_a_file_that_is_no_checklist_is_refused_in_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "checklist.yaml"
    path.write_text(text)
    with pytest.raises(ChecklistError, match=message) as caught:
        load(path)
    assert "\n" not in str(caught.value)


def test_the_checklist_file_is_identified_by_its_sha256() -> None:
    import hashlib

    assert load().sha256 == hashlib.sha256(DEFAULT_CHECKLIST.read_bytes()).hexdigest()


def test_mandatory_cases_need_only_the_tiers_the_faces_and_the_faculties() -> None:
    from oms.certification import needs

    allowed = set(needs.TIERS) | set(needs.OPERATIONS) | set(needs.FACES) | set(needs.FACULTIES)
    for case in load().cases:
        if case.mandatory:
            assert set(case.needs) <= allowed, case.id
    assert {c.id for c in load().cases if "events_log" in c.needs} == {"RP-055"}


def test_every_step_kind_is_one_registered_module_with_a_strict_schema() -> None:
    from pydantic import ValidationError as SchemaError

    from oms.certification.steps import REGISTRY

    modules = {type(kind).__module__ for kind in REGISTRY.values()}
    assert all(m.startswith("oms.certification.steps.") for m in modules)
    used = {s.action for c in load().cases for s in c.steps}
    assert used <= set(REGISTRY)
    for name, kind in REGISTRY.items():
        with pytest.raises(SchemaError):
            kind.Spec.model_validate({"action": name, "no_such_key": 1})


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
