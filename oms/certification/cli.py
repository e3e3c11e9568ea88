"""``oms certify``: run the certification pack against a target and write the reports.

    oms certify                                        # fresh embedded database, simulated clock
    oms certify --target data/oms.duckdb               # an embedded database file
    oms certify --target http://127.0.0.1:8000         # a server someone else runs
    oms certify --serve "oms serve --db {db} --port {port}"   # a managed server (restart, kill -9)
    oms certify --docs                                 # regenerate TEST_CASES.md and CHECKLIST.md

Exit status: 0 certified (every mandatory case ran and passed), 1 a case failed,
2 incomplete (nothing failed, but a mandatory case was not run -- or the target could
not be started at all). Progress goes to stderr, one line per case.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from oms.certification.checklist import DEFAULT_CHECKLIST, ChecklistError, load

if TYPE_CHECKING:
    from oms.certification.runner import CaseResult

DEFAULT_OUT = "certification/runs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--target",
        metavar="PATH|URL",
        help="a DuckDB file (embedded engine) or the URL of a running server "
        "(default: a fresh embedded database with the simulated clock)",
    )
    where.add_argument(
        "--serve",
        metavar="CMD",
        help="start the system under test with CMD, which contains {port} and {db} "
        '(e.g. "oms serve --db {db} --port {port}"); it may be stopped, killed and restarted',
    )
    parser.add_argument("--token", help="bearer token for a --target URL that requires one")
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
        checklist = load(args.checklist)
    except ChecklistError as e:
        print(f"oms certify: {e}", file=sys.stderr)
        return 2
    if args.docs:
        from oms.certification.docs import write_docs

        for path in write_docs(checklist, Path(args.checklist).parent):
            print(f"wrote {path}")
        return 0
    cases = checklist.cases
    if args.group or args.case:
        known = {c.id for c in cases} | {g.id for g in checklist.groups}
        unknown = [x for x in args.group + args.case if x not in known]
        if unknown:
            print(f"oms certify: unknown group or case {', '.join(unknown)}", file=sys.stderr)
            return 2
        cases = [c for c in cases if c.group in args.group or c.id in args.case]

    # Imported here: `oms --help` and the other commands do not pay for the runner and DuckDB.
    from oms.certification.report import new_run_dir, write_reports
    from oms.certification.runner import Runner
    from oms.certification.targets import TargetError, make_target

    run_dir = new_run_dir(args.out)
    try:
        target = make_target(args.target, args.serve, token=args.token, log=run_dir / "server.log")
    except (TargetError, OSError) as e:
        print(f"oms certify: the target could not be started: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        print(f"oms certify: the target could not be opened: {e}", file=sys.stderr)
        return 2
    try:
        if not args.quiet:
            print(f"oms certify: {len(cases)} cases against {target.description}", file=sys.stderr, flush=True)
        result = Runner(target, checklist).run(cases, progress=None if args.quiet else _progress)
    finally:
        target.close()
    write_reports(result, args.out, run_dir=run_dir, target_detail=args.target or args.serve or "")
    print(
        f"{result.verdict}: {result.count('PASS')} passed, {result.count('FAIL')} failed, "
        f"{result.count('NOT RUN')} not run of {len(result.results)} cases in {result.seconds:.2f} s"
    )
    print(f"report: {run_dir / 'report.html'}")
    return result.exit_code
