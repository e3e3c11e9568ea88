"""Engine speed, as ratios against baselines measured in the same run (issue 2).

    .venv/bin/python benchmarks/engine_bench.py [--commands 3000] [--book 1000000]

Prints each figure, its baseline and the ratio, then the goals with PASS/MISS. Nothing
here is a test: speed lives in this script, never in timed assertions.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

import oms
from oms import views

RAW_COLUMNS = "a BIGINT, b VARCHAR, c DECIMAL(16, 4)"


def rate(n: int, fn: Callable[[int], object]) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - start)


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    """Best wall time of ``repeat`` runs, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def raw_duckdb_insert_rate(folder: Path, n: int) -> float:
    con = duckdb.connect(str(folder / "raw.duckdb"))
    con.execute(f"CREATE TABLE t ({RAW_COLUMNS})")
    result = rate(n, lambda i: con.execute("INSERT INTO t VALUES (?, ?, ?)", [i, "INFY", "1500.25"]))
    con.close()
    return result


def sqlite_wal_insert_rate(folder: Path, n: int) -> float:
    con = sqlite3.connect(folder / "raw.sqlite", isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE t (a INTEGER, b TEXT, c TEXT)")
    result = rate(n, lambda i: con.execute("INSERT INTO t VALUES (?, ?, ?)", (i, "INFY", "1500.25")))
    con.close()
    return result


def engine_command_rate(folder: Path, n: int) -> float:
    """A create / modify / execute / create / cancel cycle, one durable command at a time."""
    with oms.open(folder / "engine.duckdb") as gw:
        last = 0

        def command(i: int) -> None:
            nonlocal last
            step = i % 5
            if step in (0, 3):
                last = gw.create(symbol="INFY", side="BUY", quantity=100, price="1500.25").order_id
            elif step == 1:
                gw.modify(last, quantity=50)
            elif step == 2:
                gw.execute(last)
            else:
                gw.cancel(last)

        return rate(n, command)


def book(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "symbol": rng.choice(["INFY", "TCS", "HDFC", "RELIANCE", "WIPRO", "ITC"], n),
            "side": rng.choice(["BUY", "SELL"], n),
            "quantity": rng.integers(1, 10_000, n),
            "price": np.round(rng.uniform(10, 5000, n), 2),
        }
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", type=int, default=3000, help="sequential commands to time")
    parser.add_argument("--book", type=int, default=1_000_000, help="orders in the big book")
    args = parser.parse_args()
    goals: list[tuple[str, bool]] = []
    print(
        f"oms {oms.__version__}, duckdb {duckdb.__version__}, pandas {pd.__version__}, Python {sys.version.split()[0]}"
    )

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # Interleave baseline and engine runs so drift in the machine hits both alike.
        raw, ours, lite = [], [], []
        for _ in range(3):
            raw.append(raw_duckdb_insert_rate(folder, args.commands // 3))
            ours.append(engine_command_rate(folder, args.commands // 3))
            lite.append(sqlite_wal_insert_rate(folder, args.commands // 3))
            for f in folder.iterdir():
                f.unlink()
        raw_rate, our_rate, lite_rate = statistics.median(raw), statistics.median(ours), statistics.median(lite)
        print("\n== durable commands, one at a time (median of 3) ==")
        print(f"raw DuckDB one-row INSERT+commit : {raw_rate:10,.0f} /s")
        print(f"SQLite WAL one-row INSERT+commit : {lite_rate:10,.0f} /s  (for scale)")
        print(f"oms engine command mix           : {our_rate:10,.0f} /s  = {our_rate / raw_rate:.2f}x raw DuckDB")
        goals.append(("sequential commands >= 0.8x raw DuckDB INSERT+commit", our_rate / raw_rate >= 0.8))

        print(f"\n== bulk load of {args.book:,} orders ==")
        frame = book(args.book)
        with oms.open(folder / "book.duckdb") as gw:
            start = time.perf_counter()
            ids = gw.bulk_create(frame)
            load = time.perf_counter() - start
            assert len(ids) == args.book
            print(f"bulk_create                      : {args.book / load:10,.0f} orders/s ({load:.2f} s)")
            goals.append(("bulk load >= 100,000 orders/s", args.book / load >= 100_000))

            print(f"\n== reading a book of {args.book:,} orders (best of 5) ==")
            con = duckdb.connect()
            plain = gw.arrow("SELECT * FROM orders_snapshot")
            con.register("plain_arrow", plain)
            con.execute("CREATE TABLE plain AS SELECT * FROM plain_arrow")
            raw_select = best_of(5, lambda: con.execute("SELECT * FROM plain").df())
            ours_blotter = best_of(5, lambda: views.blotter(gw))
            print(f"raw DuckDB SELECT * into pandas  : {raw_select * 1000:8.1f} ms")
            ratio = ours_blotter / raw_select
            print(f"views.blotter (sorted, exact)    : {ours_blotter * 1000:8.1f} ms  = {ratio:.2f}x raw")
            goals.append(("blotter of 1M orders <= 1.3x raw SELECT * into pandas", ratio <= 1.3))
            for key in ("status", "symbol"):
                took = best_of(5, lambda key=key: views.summary(gw, key))
                print(f"views.summary(by={key!r:9})      : {took * 1000:8.1f} ms")
                goals.append((f"summary by {key} over 1M orders <= 50 ms", took <= 0.050))
            con.close()

    print("\n== goals ==")
    for name, met in goals:
        print(f"{'PASS' if met else 'MISS'}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
