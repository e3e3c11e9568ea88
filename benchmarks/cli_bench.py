"""How quickly the ``oms`` command answers, as a person at a terminal sees it (issue 11, item 8).

    .venv/bin/python benchmarks/cli_bench.py [--runs 21] [--orders 20]

Every figure is a whole process run of the installed ``oms`` command -- interpreter start,
imports, opening the book, the answer printed -- timed from outside, the median and the
best of ``--runs``:

- ``python -c pass``: the interpreter alone, the floor every command stands on;
- ``oms --help``;
- ``oms orders --db FILE`` on a small embedded book (``--orders`` orders, table fitted to
  100 columns);
- ``oms orders --url URL`` against a running ``oms serve`` holding the same orders;
- ``oms orders`` with no flags beside a running ``oms lab``: the book found through the
  lab's discovery file (written here for the server above, in a private runtime dir).

Goals on a quiet machine: ``--help`` <= 0.3 s, ``orders`` <= 0.6 s. Each line shows the
goal, median/goal and the multiple of the interpreter's own start. It also lists the heavy
libraries each command imported (``-X importtime``). The script exits 0 whenever every
command answered correctly -- speed is reported, never a pass/fail condition -- and 1 when
an answer was wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

OMS = Path(sys.executable).parent / "oms"
HELP_GOAL_S = 0.3
ORDERS_GOAL_S = 0.6
HEAVY = ("duckdb", "pandas", "pyarrow", "numpy", "httpx", "fastapi", "uvicorn", "pydantic", "ipywidgets")
TOKEN = "cli-bench-token"
SERVER_START_S = 30.0


def oms_command() -> list[str]:
    """The ``oms`` console script of this environment (else ``python -m oms.cli``)."""
    return [str(OMS)] if OMS.exists() else [sys.executable, "-m", "oms.cli"]


def make_book(path: Path, orders: int) -> list[tuple[int, str, str]]:
    """A small book at ``path``: every status present. Returns (id, status, price) per order."""
    import oms

    with oms.open(path) as gw:
        for i in range(orders):
            o = gw.create(symbol=("INFY", "TCS", "WIPRO")[i % 3], side=("BUY", "SELL")[i % 2],
                          quantity=10 * (i + 1), price=f"{1500 + i}.25", client_order_id=f"B-{i + 1}")  # fmt: skip
            if i % 4 == 1:
                gw.execute(o.order_id)
            elif i % 4 == 2:
                gw.cancel(o.order_id)
            elif i % 4 == 3:
                gw.modify(o.order_id, price=f"{1400 + i}.5")
        return [(o.order_id, o.status.value, format(o.price, "f")) for o in gw.orders()]


class Checked:
    """One command, run as a process: its times, and whether every answer was right."""

    def __init__(
        self, name: str, argv: Sequence[str], env: dict[str, str], cwd: Path, check: Callable[[str, str], str | None]
    ) -> None:
        self.name, self.argv, self.env, self.cwd, self.check = name, list(argv), env, cwd, check
        self.times: list[float] = []
        self.errors: list[str] = []

    def run_once(self) -> None:
        started = time.perf_counter()
        done = subprocess.run(self.argv, env=self.env, cwd=self.cwd, capture_output=True, text=True, timeout=60)
        self.times.append(time.perf_counter() - started)
        problem = f"exit {done.returncode}" if done.returncode else self.check(done.stdout, done.stderr)
        if problem and len(self.errors) < 3:
            self.errors.append(f"{problem}: {(done.stderr or done.stdout).strip()[-300:]}")

    def heavy_imports(self) -> list[str]:
        """The heavy libraries one run imports (by ``-X importtime``)."""
        rest = self.argv[1:] if self.argv[0] == sys.executable else ["-m", "oms.cli", *self.argv[1:]]
        done = subprocess.run([sys.executable, "-X", "importtime", *rest], env=self.env, cwd=self.cwd,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        names = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines() if "|" in line}
        return [m for m in HEAVY if m in names]


def table_check(expected: list[tuple[int, str, str]]) -> Callable[[str, str], str | None]:
    def check(out: str, err: str) -> str | None:
        lines = out.splitlines()
        if not lines or lines[0].split()[:1] != ["order_id"]:
            return "no table header"
        rows = [line.split() for line in lines[1:]]
        got = [(int(r[0]), next((s for s in r if s in STATUSES), "?"), r) for r in rows]
        if [(i, s) for i, s, _ in got] != [(i, s) for i, s, _ in expected]:
            return f"wrong rows: {[(i, s) for i, s, _ in got]}"
        if any(price not in r for (_, _, price), (_, _, r) in zip(expected, got, strict=True)):
            return "a price is not shown as entered"
        return None

    return check


STATUSES = ("NEW", "MODIFIED", "CANCELLED", "EXECUTED")


def json_answer(argv: Sequence[str], env: dict[str, str], cwd: Path) -> list[tuple[int, str, str]]:
    done = subprocess.run([*argv, "--json"], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
    if done.returncode:
        return []
    return [(o["order_id"], o["status"], str(o["price"])) for o in json.loads(done.stdout, parse_float=str)]


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + SERVER_START_S
    request = urllib.request.Request(f"{url}/orders?symbol=READY", headers={"Authorization": f"Bearer {TOKEN}"})
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"oms serve exited with {process.returncode}")
        try:
            with urllib.request.urlopen(request, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"oms serve did not answer within {SERVER_START_S:.0f} s")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def figure(name: str, times: list[float], floor: float, goal: float | None) -> str:
    median, best = statistics.median(times), min(times)
    text = f"  {name:<40} median {median:.3f} s  best {best:.3f} s"
    if goal is None:
        return text
    state = "met" if median <= goal else "NOT met (reported, not judged)"
    return f"{text}  goal <= {goal:.2f} s  median/goal {median / goal:.2f}  {median / floor:.1f}x interpreter  {state}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="process runs per figure (default: %(default)s)")
    parser.add_argument("--orders", type=int, default=20, help="orders in the small book (default: %(default)s)")
    args = parser.parse_args()
    runs = max(1, args.runs)

    with tempfile.TemporaryDirectory(prefix="oms-cli-bench-") as tmp:
        root = Path(tmp)
        embedded, served_home = root / "embedded.duckdb", root / "beside-the-lab"
        (served_home / "data").mkdir(parents=True)
        served = served_home / "data" / "oms.duckdb"
        expected = make_book(embedded, args.orders)
        if make_book(served, args.orders) != expected:
            raise SystemExit("the two books differ")
        runtime = root / "runtime"
        runtime.mkdir(mode=0o700)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OMS_") and k != "COLUMNS"}
        env.update(XDG_RUNTIME_DIR=str(runtime), PYTHONDONTWRITEBYTECODE="1")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "-m", "oms.cli", "serve", "--db", str(served), "--port", str(port), "--log-level",
             "warning"],
            env={**env, "OMS_API_TOKEN": TOKEN}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_ready(url, server)
            from oms.workbench import write_discovery

            os.environ["XDG_RUNTIME_DIR"] = str(runtime)  # write where the commands will look
            write_discovery(served, url, TOKEN, pid=server.pid, server_pid=server.pid)
            token_file = root / "token"
            token_file.write_text(TOKEN + "\n")
            token_file.chmod(0o600)

            oms_ = oms_command()
            fitted = {**env, "COLUMNS": "100"}
            check_help: Callable[[str, str], str | None] = lambda out, _err: (  # noqa: E731
                None if out.startswith("usage: oms") and all(c in out for c in ("orders", "serve", "lab")) else "help"
            )
            check_found: Callable[[str, str], str | None] = lambda out, err: (  # noqa: E731
                table_check(expected)(out, err) or (None if url in err else "the discovered book was not named")
            )
            floor = Checked("python -c pass (interpreter start)", [sys.executable, "-c", "pass"], env, root,
                            lambda _o, _e: None)  # fmt: skip
            commands = [
                (Checked("oms --help", [*oms_, "--help"], env, root, check_help), HELP_GOAL_S),
                (Checked(f"oms orders --db ({args.orders} orders, embedded)", [*oms_, "orders", "--db", str(embedded)],
                         fitted, root, table_check(expected)), ORDERS_GOAL_S),
                (Checked(f"oms orders --url ({args.orders} orders, server)",
                         [*oms_, "orders", "--url", url, "--token-file", str(token_file)], fitted, root,
                         table_check(expected)), ORDERS_GOAL_S),
                (Checked("oms orders (no flags: the lab's book)", [*oms_, "orders"], fitted, served_home, check_found),
                 ORDERS_GOAL_S),
            ]  # fmt: skip
            everything = [floor, *(c for c, _ in commands)]
            for c in everything:
                c.run_once()  # warm the OS file cache and the bytecode of every module
                c.times.clear()
            for _ in range(runs):
                for c in everything:  # interleaved: a burst of load hits every figure alike
                    c.run_once()
            answers = {
                "--json over the embedded file": json_answer(commands[1][0].argv, env, root),
                "--json over the server": json_answer(commands[2][0].argv, env, root),
            }
            heavy = {c.name.split(" (")[0]: c.heavy_imports() for c, _ in commands}
        finally:
            server.terminate()
            server.wait(15)

    floor_median = statistics.median(floor.times)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    print(f"== oms CLI, whole process runs: median and best of {runs} (CPUs {os.cpu_count()}, load {load}) ==")
    print(figure(floor.name, floor.times, floor_median, None))
    for c, goal in commands:
        print(figure(c.name, c.times, floor_median, goal))
    print("heavy libraries imported: " + "; ".join(f"{n}: {', '.join(m) or 'none'}" for n, m in heavy.items()))
    errors = [f"{c.name}: {e}" for c in everything for e in c.errors]
    errors += [f"{name}: {got}" for name, got in answers.items() if got != expected]
    if errors:
        print("ERRORS (wrong answers):")
        for error in errors:
            print(f"  {error}")
        return 1
    print(f"answers: all correct ({len(expected)} orders, every run of every command)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
