"""``oms certify``: run the certification pack against a target and write the reports.

    oms certify                                        # fresh embedded database, simulated clock
    oms certify --target data/oms.duckdb               # an embedded database file
    oms certify --target http://127.0.0.1:8000         # a server someone else runs
    oms certify --serve "oms serve --db {db} --port {port}"   # a managed server (restart, kill -9)
    oms certify --serve CMD --offers read,audit --require audit   # declare what it speaks; insist on audit
    oms certify --retest run-007                       # again the failed and not-run cases of run-007
    oms certify --check FILE                           # lint a checklist without running it
    oms certify --docs                                 # regenerate TEST_CASES.md and CHECKLIST.md

Exit status: 0 certified (every mandatory case that applies ran and passed), 1 failed (a
case failed, or a required tier is not offered), 2 incomplete (nothing failed, but a
mandatory case was not run) -- and 2 for every bad invocation (a checklist that does not
load, an ``--out`` that cannot hold reports, a target that cannot start), with one line
naming the problem and nothing written. Progress goes to stderr, one line per case.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oms.certification import needs as needs_
from oms.certification.checklist import DEFAULT_CHECKLIST, ChecklistError, load
from oms.store.base import urls_in, without_password

if TYPE_CHECKING:
    from oms.certification.checklist import Case, Checklist
    from oms.certification.runner import CaseResult, Progress, RunResult

DEFAULT_OUT = "certification/runs"
DEFAULT_FIX_COMP_IDS = ":".join(needs_.DEFAULT_FIX_IDS)
"""``--fix-comp-ids`` when not given: OURS:THEIRS."""


class Refused(Exception):
    """A bad invocation: the message is the one line the user sees (exit 2)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--target",
        metavar="PATH|URL",
        help="a DuckDB file (embedded engine), the URL of a running server, or a FIX 4.4 system "
        "fix://HOST:PORT?sender=OURS&target=THEIRS[&rest=http://HOST:PORT] "
        "(default: a fresh embedded database with the simulated clock)",
    )
    where.add_argument(
        "--serve",
        metavar="CMD",
        help="start the system under test with CMD, which contains {port} (HTTP) and/or {fix_port} "
        '(FIX 4.4) and usually {db} (e.g. "oms serve --db {db} --port {port} --fix-port {fix_port}"); '
        "it may be stopped, killed and restarted",
    )
    where.add_argument(
        "--retest",
        metavar="RUN",
        help="run again the failed and not-run cases of RUN (run-NNN under --out, or its folder) "
        "against the same target; the new run is linked to it",
    )
    where.add_argument("--check", metavar="YAML", help="check a checklist file against the schema, run nothing")
    parser.add_argument("--token", help="bearer token for a --target URL that requires one")
    parser.add_argument(
        "--fix-comp-ids",
        metavar="OURS:THEIRS",
        default=DEFAULT_FIX_COMP_IDS,
        help="the CompIDs of the FIX session with a --serve system: the pack's SenderCompID and the "
        "system's (default: %(default)s, oms serve's)",
    )
    parser.add_argument(
        "--offers",
        metavar="NAMES",
        help=f"what the system offers, instead of probing it: comma-separated from {', '.join(needs_.OFFERABLE)}",
    )
    parser.add_argument(
        "--require",
        metavar="NAMES",
        default="",
        help="tiers or extensions the system must offer: one absent is a failure (e.g. read,audit)",
    )
    parser.add_argument(
        "--out",
        default=DEFAULT_OUT,
        metavar="DIR",
        help="reports go to a new DIR/run-NNN (default: %(default)s); earlier runs are kept",
    )
    parser.add_argument("--group", action="append", default=[], metavar="ID", help="run only this group (repeatable)")
    parser.add_argument("--case", action="append", default=[], metavar="ID", help="run only this case (repeatable)")
    parser.add_argument("--checklist", default=str(DEFAULT_CHECKLIST), metavar="YAML", help="(default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument(
        "--docs",
        action="store_true",
        help="write TEST_CASES.md and CHECKLIST.md beside the checklist from its data, then exit",
    )


def _progress(i: int, n: int, r: CaseResult) -> None:
    tail = "" if r.status == "PASS" else f" -- {r.reason}"
    print(f"[{i:>3}/{n}] {r.status:<7} {r.case.id} {r.case.title}{tail}", file=sys.stderr, flush=True)


def main(args: argparse.Namespace) -> int:
    try:
        return _main(args)
    except (Refused, ChecklistError) as e:
        print(f"oms certify: {e}", file=sys.stderr)
        return 2


def _main(args: argparse.Namespace) -> int:
    if args.check:
        checklist = load(args.check)
        mandatory = sum(c.mandatory for c in checklist.cases)
        print(f"{args.check}: ok -- {len(checklist.cases)} cases ({mandatory} mandatory), sha256 {checklist.sha256}")
        return 0
    previous = _previous(args) if args.retest else None
    invocation = _invocation(args, previous)
    checklist = load(invocation["checklist"])
    if args.docs:
        from oms.certification.docs import write_docs

        for path in write_docs(checklist, Path(invocation["checklist"]).parent):
            print(f"wrote {path}")
        return 0
    _names(invocation["offers"] or "", "--offers")
    _names(invocation["require"] or "", "--require")
    cases = _select(args, checklist, previous)
    _check_out(Path(args.out))

    if not args.quiet:
        print(f"oms certify: {len(cases)} cases", file=sys.stderr, flush=True)
    try:
        result, run_dir = certify(
            invocation,
            checklist,
            cases,
            out=Path(args.out),
            token=args.token,
            retest_of=previous["run"] if previous else None,
            progress=None if args.quiet else _progress,
        )
    except Refused as e:
        print(f"oms certify: {e}", file=sys.stderr)
        return 2
    print(
        f"{result.verdict_line}: {result.count('PASS')} passed, {result.count('FAIL')} failed, "
        f"{result.count('NOT RUN')} not run, {result.count('NOT APPLICABLE')} not applicable "
        f"of {len(result.results)} cases in {result.seconds:.2f} s"
    )
    print(f"report: {run_dir / 'report.html'}")
    return result.exit_code


def certify(
    invocation: dict[str, Any],
    checklist: Checklist,
    cases: list[Case],
    *,
    out: Path,
    token: str | None = None,
    retest_of: str | None = None,
    progress: Progress | None = None,
) -> tuple[RunResult, Path]:
    """One run: start the target the invocation names, run ``cases``, write the reports
    into a new run directory under ``out``. The one path of the CLI and the notebook desk.
    Raises Refused when the target cannot be started or opened (nothing but its log written)."""
    # Imported here: `oms --help` and the other commands do not pay for the runner and DuckDB.
    from oms.certification.report import new_run_dir, write_reports
    from oms.certification.runner import Runner
    from oms.certification.targets import TargetError, make_target

    offers = _names(invocation["offers"], "--offers") if invocation.get("offers") is not None else None
    require = _names(invocation.get("require") or "", "--require")
    _check_out(out)
    run_dir = new_run_dir(out)
    try:
        ours, _, theirs = (invocation.get("fix_comp_ids") or DEFAULT_FIX_COMP_IDS).partition(":")
        target = make_target(
            invocation["target"], invocation["serve"], token=token, log=run_dir / "server.log", fix_ids=(ours, theirs)
        )
    except (TargetError, OSError) as e:
        raise Refused(f"the target could not be started: {e}") from None
    except Exception as e:
        raise Refused(f"the target could not be opened: {e}") from None
    try:
        result = Runner(target, checklist, offers=offers, require=require).run(cases, progress=progress)
        result.started_as = urls_in(" ".join(target.argv())) if hasattr(target, "argv") else None
    finally:
        target.close()
    result.invocation = _kept(invocation)
    result.retest_of = retest_of
    detail = urls_in(invocation["target"] or invocation["serve"] or "")
    write_reports(result, out, run_dir=run_dir, target_detail=detail)
    return result, run_dir


def invocation_for(
    target: str | None = None, serve: str | None = None, *, offers: str | None = None, require: str = "",
    checklist: str = str(DEFAULT_CHECKLIST), fix_comp_ids: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """How a run names its target (kept in results.json: what ``--retest`` reaches again)."""
    identity = f"serve: {serve}" if serve else (f"target: {target}" if target else "embedded: fresh")
    out = {"identity": identity, "target": target, "serve": serve, "offers": offers, "require": require,
           "checklist": checklist}  # fmt: skip
    if fix_comp_ids and fix_comp_ids != DEFAULT_FIX_COMP_IDS:
        out["fix_comp_ids"] = fix_comp_ids
    return out


def _kept(invocation: dict[str, Any]) -> dict[str, Any]:
    """The invocation as results.json keeps it: every URL without its password (a report
    is shared; ``--retest`` then takes the password from the environment, PGPASSWORD)."""
    return {
        key: urls_in(value, without_password) if key in ("identity", "target", "serve") and value else value
        for key, value in invocation.items()
    }


def _names(text: str, option: str) -> frozenset[str]:
    try:
        return needs_.parse_names(text, needs_.OFFERABLE, option)
    except ValueError as e:
        raise Refused(str(e)) from None


def _invocation(args: argparse.Namespace, previous: dict[str, Any] | None) -> dict[str, Any]:
    """How this run names its target: from the options, or from the run a retest repeats."""
    if previous is not None:
        inv = dict(previous["invocation"])
        if not inv:
            raise Refused(f"{previous['run']} does not say how its target was reached; run it again instead")
        return inv
    ids = args.fix_comp_ids
    if ids.count(":") != 1 or not all(ids.split(":")):
        raise Refused(f"--fix-comp-ids: expected OURS:THEIRS (two CompIDs), got {ids!r}")
    return invocation_for(
        args.target, args.serve, offers=args.offers, require=args.require, checklist=args.checklist, fix_comp_ids=ids
    )


def _previous(args: argparse.Namespace) -> dict[str, Any]:
    """The run ``--retest`` names: its results, its name, its failed and not-run cases."""
    path = Path(args.retest)
    if not path.is_dir():
        path = Path(args.out) / args.retest
    try:
        data = json.loads((path / "results.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Refused(f"--retest {args.retest}: no run with a results.json at {path}") from None
    except (OSError, ValueError) as e:
        raise Refused(f"--retest {args.retest}: cannot read {path / 'results.json'}: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise Refused(f"--retest {args.retest}: {path / 'results.json'} is not a run's results")
    again = [c["id"] for c in data["cases"] if c.get("status") in ("FAIL", "NOT RUN")]
    return {"run": path.name, "invocation": data.get("invocation") or {}, "again": again}


def _select(args: argparse.Namespace, checklist: Any, previous: dict[str, Any] | None) -> list[Any]:
    cases = checklist.cases
    if previous is not None:
        known = {c.id for c in cases}
        gone = [cid for cid in previous["again"] if cid not in known]
        if gone:
            raise Refused(f"--retest: the checklist no longer has {', '.join(gone)}")
        if not previous["again"]:
            raise Refused(f"--retest {previous['run']}: nothing to retest (no failed or not-run case)")
        return [c for c in cases if c.id in set(previous["again"])]
    if args.group or args.case:
        known = {c.id for c in cases} | {g.id for g in checklist.groups}
        unknown = [x for x in args.group + args.case if x not in known]
        if unknown:
            raise Refused(f"unknown group or case {', '.join(unknown)}")
        cases = [c for c in cases if c.group in args.group or c.id in args.case]
    return list(cases)


def _check_out(out: Path) -> None:
    """``--out`` must be (or can become) a writable folder; nothing is created here."""
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        where = "is a file" if probe == out else f"is inside {probe}, which is a file"
        raise Refused(f"--out {out}: {where}; give a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise Refused(f"--out {out}: {probe} is not writable")
