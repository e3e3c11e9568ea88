"""How long the whole certification pack takes against the embedded engine.

    .venv/bin/python benchmarks/certify_bench.py [--repeat 5]

Two figures: the pack itself (``Runner(EmbeddedTarget()).run()`` -- every case, including
the restarts and the two kill -9 child processes -- on a fresh database with the
simulated clock; median and best of N), and the command a reviewer types,
``oms certify --quiet --out DIR`` end to end (Python start-up, imports and writing the
four reports included). The budget is 3 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_S = 3.0


def pack_once() -> tuple[float, str, int]:
    from oms.certification import EmbeddedTarget, Runner

    started = time.perf_counter()
    target = EmbeddedTarget()
    try:
        result = Runner(target).run()
    finally:
        target.close()
    return time.perf_counter() - started, result.verdict, len(result.results)


def cli_once() -> float:
    oms = Path(sys.executable).parent / "oms"
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        subprocess.run([str(oms), "certify", "--quiet", "--out", out], check=True, capture_output=True)
        return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    pack_once()  # warm imports and the OS file cache
    runs = [pack_once() for _ in range(args.repeat)]
    times = [t for t, _, _ in runs]
    verdict, cases = runs[-1][1], runs[-1][2]
    cli = [cli_once() for _ in range(max(1, args.repeat // 2))]
    print(f"pack, in process ({cases} cases, {verdict}): median {statistics.median(times):.2f} s, "
          f"best {min(times):.2f} s over {len(times)} runs")  # fmt: skip
    print(f"oms certify --quiet (cold process, reports written): median {statistics.median(cli):.2f} s, "
          f"best {min(cli):.2f} s over {len(cli)} runs")  # fmt: skip
    ok = statistics.median(cli) <= BUDGET_S and verdict == "CERTIFIED"
    print(f"budget {BUDGET_S:.1f} s: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
