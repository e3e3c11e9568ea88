"""How long the whole certification pack takes: in process against the embedded engine,
and against a managed ``oms serve`` (``--serve``), in one run.

    .venv/bin/python benchmarks/certify_bench.py [--repeat 5]

Three figures, each the median and best of N:

- the pack in process (``Runner(EmbeddedTarget()).run()`` -- every case, the restarts and
  the kill -9 child processes included -- on a fresh database with the simulated clock);
- the command a reviewer types, ``oms certify --quiet --out DIR`` end to end (Python
  start-up, imports and writing the four reports included);
- ``oms certify --serve "oms serve --db {db} --port {port}"``: a real server, started,
  restarted and killed by the pack over HTTP, the probe and every contract check included.

Goals on a quiet machine: in process <= 3 s, ``--serve`` <= 10 s. The script prints the
figures against the goals and exits 0 whenever the pack itself answered correctly
(CERTIFIED): speed is reported, never a pass/fail condition (a loaded machine is 2-3x
slower). It exits 1 only when a run did not certify.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOALS_S = {"in process": 3.0, "oms certify": 3.0, "oms certify --serve": 10.0}
OMS = Path(sys.executable).parent / "oms"


def pack_once() -> tuple[float, str, int]:
    from oms.certification import EmbeddedTarget, Runner

    started = time.perf_counter()
    target = EmbeddedTarget()
    try:
        result = Runner(target).run()
    finally:
        target.close()
    return time.perf_counter() - started, result.verdict, len(result.results)


def cli_once(*extra: str) -> tuple[float, str]:
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        done = subprocess.run([str(OMS), "certify", "--quiet", "--out", out, *extra], capture_output=True, text=True)
        seconds = time.perf_counter() - started
        why = _not_passed(Path(out))
    verdict = done.stdout.split(" ", 1)[0] if done.stdout else f"exit {done.returncode}: {done.stderr.strip()[-200:]}"
    return seconds, verdict + (f" [{why}]" if why and verdict != "CERTIFIED" else "")


def _not_passed(out: Path) -> str:
    """The cases of the run in ``out`` that failed or did not run, with their reasons."""
    found = sorted(out.glob("run-*/results.json"))
    if not found:
        return ""
    cases = json.loads(found[-1].read_text())["cases"]
    return "; ".join(f"{c['id']} {c['status']}: {c.get('reason')}" for c in cases if c["status"] in ("FAIL", "NOT RUN"))


def line(name: str, times: list[float], verdict: str, cases: int | None = None) -> str:
    median = statistics.median(times)
    goal = GOALS_S[name]
    state = "met" if median <= goal else "NOT met (speed is reported, not judged)"
    what = f"{name} ({cases} cases, {verdict})" if cases else f"{name} ({verdict})"
    return (
        f"{what}: median {median:.2f} s, best {min(times):.2f} s over {len(times)} runs; "
        f"goal <= {goal:.0f} s: {state} (ratio {median / goal:.2f})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    pack_once()  # warm imports and the OS file cache
    runs = [pack_once() for _ in range(args.repeat)]
    cli = [cli_once() for _ in range(max(1, args.repeat // 2))]
    served = [cli_once("--serve", "oms serve --db {db} --port {port}") for _ in range(max(1, args.repeat // 2))]
    print(line("in process", [t for t, _, _ in runs], runs[-1][1], runs[-1][2]))
    print(line("oms certify", [t for t, _ in cli], cli[-1][1]))
    print(line("oms certify --serve", [t for t, _ in served], served[-1][1]))
    verdicts = {v for _, v, _ in runs} | {v for _, v in cli} | {v for _, v in served}
    print(f"verdicts: {', '.join(sorted(verdicts))}")
    return 0 if verdicts == {"CERTIFIED"} else 1


if __name__ == "__main__":
    sys.exit(main())
