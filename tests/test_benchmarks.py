"""The benchmark scripts still run, on tiny sizes: each drives real servers or a real
DuckDB file and checks its own answers. Their figures are not judged here (speed goals
live in the scripts' output, not in timed tests)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_http_bench_drives_all_three_servers_and_every_answer_is_the_expected_one() -> None:
    out = run("http_bench.py", "--rounds", "4", "--passes", "1", "--clients", "1", "2")
    for clients in ("1 client ", "2 clients"):
        assert re.search(rf"{clients}: oms/baseline = +\d+\.\d\dx +oms/noop = \d\.\d\d", out), out
    assert "ERRORS" not in out


def test_engine_bench_prints_its_figures_and_goals() -> None:
    out = run("engine_bench.py", "--commands", "30", "--book", "1000")
    assert re.search(r"oms engine command mix +: +[\d,]+ /s += \d+\.\d\dx raw DuckDB", out), out
    assert "== goals ==" in out


def test_certify_bench_runs_the_pack_in_process_and_against_a_served_system() -> None:
    out = run("certify_bench.py", "--repeat", "1")  # exits 0 when every run certified, whatever the speed
    assert re.search(r"in process \(\d+ cases, CERTIFIED\): median \d+\.\d\d s", out), out
    assert re.search(r"oms certify --serve \(CERTIFIED\): median \d+\.\d\d s", out), out
    assert "verdicts: CERTIFIED\n" in out


def test_cli_bench_times_help_and_orders_on_a_file_a_server_and_a_lab_s_book() -> None:
    out = run("cli_bench.py", "--runs", "2", "--orders", "5")  # exits 0 when every answer was right, whatever the speed
    for name, goal in (("oms --help", "0.30"), (r"oms orders --db \(5 orders, embedded\)", "0.60"),
                       (r"oms orders --url \(5 orders, server\)", "0.60"),
                       (r"oms orders \(no flags: the lab's book\)", "0.60")):  # fmt: skip
        assert re.search(
            rf"{name} +median \d+\.\d{{3}} s  best \d+\.\d{{3}} s  goal <= {goal} s  median/goal \d+\.\d\d  "
            r"\d+\.\dx interpreter",
            out,
        ), out
    assert "heavy libraries imported: oms --help: none;" in out
    assert "answers: all correct (5 orders, every run of every command)" in out and "ERRORS" not in out


def test_listing_bench_pages_and_lists_a_served_book_and_every_answer_is_right() -> None:
    out = run("listing_bench.py", "--orders", "1500", "--pages", "10", "--runs", "1")  # exits 0 when answers are right
    assert re.search(
        r"COPY \(SELECT \* FROM orders ORDER BY order_id\) TO \.\.\. \(FORMAT JSON\): median +\d+\.\d ms", out
    )
    assert re.search(r"GET /orders \(full, streamed\) +: median +\d+\.\d ms .* = \d+\.\d\dx COPY  goal <= 3x", out), out
    page = r"GET /orders\?limit=500&after=ID \(10 pages\): p50 +\d+\.\d\d ms  p99 +\d+\.\d\d ms  goal p50 <= 25 ms"
    assert re.search(page, out), out
    assert "answers: all correct (1,501 orders;" in out and "ERRORS" not in out


def test_pg_bench_serves_duckdb_and_one_two_and_four_postgresql_workers_and_checks_every_answer() -> None:
    out = run("pg_bench.py", "--rounds", "16", "--clients", "8", "32")  # exits 0 when every answer was right
    for label in ("DuckDB, 1 process", *(f"PostgreSQL, {n} worker(s)" for n in (1, 2, 4))):
        for clients in ("8", "32"):
            assert re.search(rf"{re.escape(label)} +{clients} clients +\d+ ops/s +p99 +\d+\.\d ms", out), out
    for name in ("pg-1", "pg-2", "pg-4"):  # what limits the curve: cores of each part, CPU and requests per commit
        line = rf"{name} +32 clients +server \d\.\d\d +postgres \d\.\d\d +client \d\.\d\d +total \d\.\d\d"
        assert re.search(line + r" +\d+ us/request +\d+\.\d requests/transaction", out), out
    assert re.search(r"duckdb +32 clients +server \d\.\d\d +postgres 0\.00 .* \d+ us/request$", out, re.M), out
    assert re.search(r"PG 2 workers / PG 1 worker at 32 clients = \d+\.\d\dx   goal >= 1.5x", out), out
    assert re.search(r"PG 2 workers / DuckDB      at 32 clients = \d+\.\d\dx   goal >= 1x", out), out
    need = re.search(r"1\.5x PG 1 worker is (\d+) ops/s: at PG 2 workers' (\d+) us of CPU per request .* "
                     r"it needs (\d+\.\d\d) cores busy all the time; the machine has (\d+)", out)  # fmt: skip
    assert need, out
    goal, per_request, cores = int(need[1]), int(need[2]), float(need[3])
    assert abs(cores - goal * per_request / 1e6) <= 0.01 * cores + 0.01  # the figures' own arithmetic
    workers = re.search(r"of which the 2 workers alone, at their (\d+) us per request: (\d+\.\d\d) cores", out)
    assert workers, out
    server_us, server_cores = int(workers[1]), float(workers[2])
    assert server_us < per_request  # a part of the whole, which also counts PostgreSQL and the clients
    assert abs(server_cores - goal * server_us / 1e6) <= 0.01 * server_cores + 0.01
    assert "answers: all correct" in out and "ERRORS" not in out
