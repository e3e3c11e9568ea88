"""``oms certify`` as a reviewer types it: bad invocations fail cleanly (one line, exit 2,
nothing written), ``--check`` lints a checklist, ``--retest`` re-runs what failed and
links the new run to the old one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from oms.certification.checklist import DEFAULT_CHECKLIST

OMS = str(Path(sys.executable).parent / "oms")


def oms_certify(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([OMS, "certify", *argv], capture_output=True, text=True, timeout=300, cwd=cwd)


def refused_cleanly(done: subprocess.CompletedProcess[str], words: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], done.stderr


def test_an_out_that_is_a_file_or_inside_a_file_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    file = tmp_path / "report.txt"
    file.write_text("not a folder")
    refused_cleanly(oms_certify("--out", str(file), "--quiet"), "is a file")
    refused_cleanly(oms_certify("--out", str(file / "runs"), "--quiet"), "which is a file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.txt"]
    assert file.read_text() == "not a folder"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("groups: [unclosed\n", "not valid YAML"),
        ("- a\n- list\n", "a checklist is a mapping"),
        ('a: &a ["lol", "lol"]\nb: &b [*a, *a, *a]\nc: &c [*b, *b, *b]\nd: [*c, *c, *c]\n', "YAML aliases"),
    ],
)
def test_a_checklist_that_does_not_load_is_refused_in_one_line(tmp_path: Path, text: str, words: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    out = tmp_path / "out"
    refused_cleanly(oms_certify("--checklist", str(bad), "--out", str(out), "--quiet"), words)
    refused_cleanly(oms_certify("--check", str(bad)), words)
    assert not out.exists()


def test_check_lints_a_checklist_without_running_it(tmp_path: Path) -> None:
    done = oms_certify("--check", str(DEFAULT_CHECKLIST))
    assert done.returncode == 0 and ": ok -- " in done.stdout and "sha256" in done.stdout
    data = yaml.safe_load(DEFAULT_CHECKLIST.read_text())
    data["groups"][0]["cases"][0]["steps"][0]["expcet"] = data["groups"][0]["cases"][0]["steps"][0].pop("expect")
    bad = tmp_path / "typo.yaml"
    bad.write_text(yaml.safe_dump(data))
    refused_cleanly(oms_certify("--check", str(bad)), "OE-010: step 1 (create): expcet: unknown key")


def test_unknown_tier_names_are_refused(tmp_path: Path) -> None:
    refused_cleanly(oms_certify("--offers", "read,telepathy", "--out", str(tmp_path / "o")), "unknown telepathy")
    refused_cleanly(oms_certify("--require", "audit,fix", "--out", str(tmp_path / "o")), "unknown fix")
    assert not (tmp_path / "o").exists()


def test_a_retest_reruns_the_failed_cases_against_the_same_target_and_says_what_changed(tmp_path: Path) -> None:
    data = yaml.safe_load(DEFAULT_CHECKLIST.read_text())
    steps = data["groups"][0]["cases"][0]["steps"]
    steps[0]["expect"]["version"] = 2  # OE-010 now expects the impossible
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump(data))
    out = tmp_path / "runs"
    first = oms_certify("--checklist", str(wrong), "--out", str(out), "--group", "OE", "--group", "CA", "--quiet")
    assert first.returncode == 1
    # the fix lands in the checklist file the run named; the retest reads the same file
    steps[0]["expect"]["version"] = 1
    wrong.write_text(yaml.safe_dump(data))
    again = oms_certify("--retest", "run-001", "--out", str(out), "--quiet")
    assert again.returncode == 0, again.stdout + again.stderr
    retest = json.loads((out / "run-002" / "results.json").read_text())
    assert [c["id"] for c in retest["cases"]] == ["OE-010"]  # only what failed (or did not run)
    assert retest["retest_of"] == "run-001"
    assert retest["invocation"] == json.loads((out / "run-001" / "results.json").read_text())["invocation"]
    history = (out / "history.md").read_text()
    assert "| run-001 | vs run-001; newly passing: OE-010 |" in history
    html = (out / "run-002" / "report.html").read_text()
    assert "<td>retest of</td><td>run-001</td>" in html and "newly passing" in html
    nothing = oms_certify("--retest", "run-002", "--out", str(out), "--quiet")
    refused_cleanly(nothing, "nothing to retest")
    refused_cleanly(oms_certify("--retest", "run-099", "--out", str(out)), "no run with a results.json")
