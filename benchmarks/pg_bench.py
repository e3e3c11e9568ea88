"""The REST lifecycle mix on DuckDB and on PostgreSQL with 1, 2 and 4 server processes.

One run starts a throwaway PostgreSQL (``oms.store.pgcluster``: initdb into a temporary
folder, fsync on, as a real server would run) and serves, one after another, with the
same uvicorn options:

- ``duckdb``   -- ``oms serve --db FILE`` (one process: a DuckDB file has one writer);
- ``pg-1``, ``pg-2``, ``pg-4`` -- ``oms serve --db postgresql://... --workers N``, each on
  a fresh database.

Each is driven by the mix of ``http_bench.py`` -- create; modify + execute; create +
cancel; create + execute (7 requests per round) -- from 8 and from 32 concurrent
keep-alive clients. Every answer's status is checked, and so is the book afterwards (every
order there, in the state the mix left it). Prints ops/s and the p99 latency of each, and
the ratios: PG 2 workers / PG 1 worker at 32 clients (goal >= 1.5x) and PG 2 workers /
DuckDB (goal >= 1x). Exits 1 when an answer was wrong, whatever the speed.

What limits the curve is measured, not guessed: for each measurement, the cores used
(CPU seconds per second, from /proc) by the server processes, by PostgreSQL's backends
and by this load generator, out of the machine's, and so the CPU one request costs and
the cores the 1.5x goal would need at that cost (all the parts, and the workers alone);
and on PostgreSQL the requests per transaction (transaction ids used: a commit, or a
batch placed again), which says how well group commit groups.

    .venv/bin/python benchmarks/pg_bench.py [--rounds 600] [--clients 8 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from http_bench import Connection, free_port, one_round

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from oms.store.pgcluster import TempCluster  # noqa: E402

WORKERS = (1, 2, 4)


@dataclass
class Run:
    ops: float
    p99_ms: float
    requests: int
    errors: list[str] = field(default_factory=list)
    cores: dict[str, float] = field(default_factory=dict)
    per_commit: float | None = None  # requests per PostgreSQL transaction

    @property
    def cpu_per_request_us(self) -> float:
        """CPU microseconds one request cost, all the parts measured together."""
        return sum(self.cores.values()) / self.ops * 1e6 if self.ops else 0.0

    def part_per_request_us(self, part: str) -> float:
        """CPU microseconds one request cost in ``part`` alone (server, postgres, client)."""
        return self.cores.get(part, 0.0) / self.ops * 1e6 if self.ops else 0.0


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of the processes ``pids`` (those gone count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid, *(p for child in children for p in process_tree(int(child)))]


class Meter:
    """CPU of the server, of PostgreSQL and of this process, and PostgreSQL's commits."""

    def __init__(self, server: int, postmaster: int | None, db: str | None) -> None:
        self.groups = {"server": lambda: process_tree(server), "postgres": lambda: [], "client": lambda: [os.getpid()]}
        if postmaster is not None:
            self.groups["postgres"] = lambda: process_tree(postmaster)
        self.db = db

    def commits(self) -> int:
        import psycopg

        assert self.db is not None
        with psycopg.connect(self.db, autocommit=True) as conn:
            # The next transaction id: each commit of the book's writers takes one (a read takes none).
            row = conn.execute("SELECT txid_snapshot_xmax(txid_current_snapshot())").fetchone()
        return int(row[0]) if row else 0

    def start(self) -> tuple[float, dict[str, float], int]:
        commits = self.commits() if self.db else 0
        return time.perf_counter(), {name: cpu_seconds(pids()) for name, pids in self.groups.items()}, commits

    def stop(self, started: tuple[float, dict[str, float], int], run: Run) -> None:
        at, cpu, commits = started
        wall = time.perf_counter() - at
        run.cores = {name: (cpu_seconds(pids()) - cpu[name]) / wall for name, pids in self.groups.items()}
        if self.db:
            run.per_commit = run.requests / max(1, self.commits() - commits)


async def one_client(port: int, rounds: int, latencies: list[float], errors: list[str]) -> None:
    conn = await Connection.open(port)

    async def call(method: str, path: str, body: bytes, expect: int) -> bytes:
        started = time.perf_counter()
        status, payload = await conn.request(method, path, body)
        latencies.append(time.perf_counter() - started)
        if status != expect and len(errors) < 5:
            errors.append(f"{method} {path} -> {status} {payload[:200]!r}")
        return payload

    try:
        for _ in range(rounds):
            await one_round(call)
    finally:
        conn.close()


async def drive(port: int, clients: int, rounds: int, meter: Meter) -> Run:
    errors: list[str] = []
    await asyncio.gather(*(one_client(port, 1, [], errors) for _ in range(clients)))  # warm-up
    latencies: list[float] = []
    per_client = max(1, rounds // clients)
    metered = meter.start()
    started = time.perf_counter()
    await asyncio.gather(*(one_client(port, per_client, latencies, errors) for _ in range(clients)))
    elapsed = time.perf_counter() - started
    p99 = statistics.quantiles(latencies, n=100)[98] if len(latencies) > 1 else latencies[0]
    run = Run(len(latencies) / elapsed, p99 * 1000, len(latencies), errors)
    meter.stop(metered, run)
    return run


def serve(db: str, workers: int, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cmd = [sys.executable, "-m", "oms.cli", "serve", "--db", db, "--port", str(port), "--log-level", "warning"]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    env = {k: v for k, v in os.environ.items() if k != "OMS_API_TOKEN"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"oms serve exited with {proc.returncode}:\n{log.read_text()}")
        try:  # every worker imports before it answers; one answer is enough to start
            httpx.get(f"http://127.0.0.1:{port}/orders?limit=1", timeout=2)
            return proc, port
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"oms serve did not answer within 60 s:\n{log.read_text()}")


def check_book(port: int, expected_rounds: int) -> list[str]:
    """The book after the mix: 3 orders a round, 2 executed and 1 cancelled, ids 1..n."""
    orders = httpx.get(f"http://127.0.0.1:{port}/orders", timeout=60).json()
    counts = {s: sum(o["status"] == s for o in orders) for s in ("EXECUTED", "CANCELLED", "NEW", "MODIFIED")}
    wanted = {"EXECUTED": 2 * expected_rounds, "CANCELLED": expected_rounds, "NEW": 0, "MODIFIED": 0}
    problems = [] if counts == wanted else [f"book holds {counts}, expected {wanted}"]
    if [o["order_id"] for o in orders] != list(range(1, len(orders) + 1)):
        problems.append("order ids are not 1..n in order")
    return problems


def measure(
    name: str, db: str, workers: int, clients: list[int], rounds: int, work: Path, postmaster: int | None
) -> dict[int, Run]:
    proc, port = serve(db, workers, work / f"{name}.log")
    meter = Meter(proc.pid, postmaster, db if db.startswith("postgresql") else None)
    try:
        runs = {n: asyncio.run(drive(port, n, rounds, meter)) for n in clients}
        done_rounds = sum(n + n * max(1, rounds // n) for n in clients)  # warm-up + measured
        runs[clients[-1]].errors += check_book(port, done_rounds)
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
    if proc.returncode != 0:
        runs[clients[-1]].errors.append(f"oms serve exited with {proc.returncode}")
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=600, help="rounds of the 7-request mix per measurement")
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 32])
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; {args.rounds} rounds x 7 requests per measurement; PostgreSQL with fsync on")
    results: dict[str, dict[int, Run]] = {}
    with tempfile.TemporaryDirectory(prefix="oms-pg-bench-") as tmp, TempCluster() as cluster:
        work = Path(tmp)
        postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
        results["duckdb"] = measure("duckdb", str(work / "oms.duckdb"), 1, args.clients, args.rounds, work, None)
        for n in WORKERS:
            url = cluster.create_database(f"bench_{n}")
            results[f"pg-{n}"] = measure(f"pg-{n}", url, n, args.clients, args.rounds, work, postmaster)
    errors = [f"{name} ({n} clients): {e}" for name, runs in results.items() for n, r in runs.items() for e in r.errors]
    for name, runs in results.items():
        label = "DuckDB, 1 process" if name == "duckdb" else f"PostgreSQL, {name[3:]} worker(s)"
        for n, run in runs.items():
            figures = f"{run.ops:7.0f} ops/s   p99 {run.p99_ms:7.1f} ms   ({run.requests} requests)"
            print(f"{label:<26} {n:>3} clients  {figures}")
    cores = os.cpu_count() or 1
    print(f"\nWhat the machine did ({cores} cores): cores used by each part, CPU per request (all parts), "
          "and requests per PostgreSQL transaction")  # fmt: skip
    for name, runs in results.items():
        for n, run in runs.items():
            used = "  ".join(f"{part} {share:4.2f}" for part, share in run.cores.items())
            grouped = f"   {run.per_commit:5.1f} requests/transaction" if run.per_commit is not None else ""
            print(f"  {name:<7} {n:>3} clients   {used}   total {sum(run.cores.values()):4.2f}"
                  f"   {run.cpu_per_request_us:4.0f} us/request{grouped}")  # fmt: skip
    top = args.clients[-1]
    print()
    pg1, pg2 = results["pg-1"][top], results["pg-2"][top]
    print(f"PG 2 workers / PG 1 worker at {top} clients = {pg2.ops / pg1.ops:4.2f}x   goal >= 1.5x")
    print(f"PG 2 workers / DuckDB      at {top} clients = {pg2.ops / results['duckdb'][top].ops:4.2f}x   goal >= 1x")
    print(f"PG 4 workers / PG 1 worker at {top} clients = {results['pg-4'][top].ops / pg1.ops:4.2f}x")
    # The bound every part shares: the CPU one request costs, times the requests asked for.
    goal = 1.5 * pg1.ops
    print(f"1.5x PG 1 worker is {goal:.0f} ops/s: at PG 2 workers' {pg2.cpu_per_request_us:.0f} us of CPU per "
          f"request (server, PostgreSQL and load generator) it needs {goal * pg2.cpu_per_request_us / 1e6:.2f} "
          f"cores busy all the time; the machine has {cores}")  # fmt: skip
    # The same bound were PostgreSQL and the load generator free: the workers' own CPU.
    server_us = pg2.part_per_request_us("server")
    print(f"  of which the 2 workers alone, at their {server_us:.0f} us per request: "
          f"{goal * server_us / 1e6:.2f} cores")  # fmt: skip
    if errors:
        print("ERRORS:", *errors[:10], sep="\n  ")
        return 1
    print("answers: all correct (every status, and every book afterwards)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
