"""How fast ``GET /orders`` answers on a big book, in pages and in full (issue 11, item 3).

    .venv/bin/python benchmarks/listing_bench.py [--orders 200000] [--pages 300] [--runs 5]

A book of ``--orders`` orders (bulk-loaded, then some modified, executed and cancelled, so
the listing reads the folded snapshot and the newer events alike) is served by a real
``oms serve`` process on loopback; every figure is a whole HTTP request timed from this
process with one keep-alive httpx client:

- a page: ``GET /orders?limit=500&after=ID`` at ``--pages`` random ids -- p50 and p99
  (goal: p50 <= 25 ms);
- the full listing: ``GET /orders`` streamed and read to the end -- the median of
  ``--runs``, as a ratio to DuckDB's own ``COPY (SELECT * FROM orders ORDER BY order_id)
  TO ... (FORMAT JSON)`` on the same file, measured in the same run just before the server
  starts (goal: <= 3x).

Answers are checked: every page is the slice of the full listing it names, with a ``Link``
header exactly while more remain; the full listing has every order, sorted, with the
prices the book holds. The script exits 0 whenever every answer was right -- speed is
reported, never a pass/fail condition -- and 1 when one was wrong.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

PAGE = 500
PAGE_GOAL_S = 0.025
FULL_GOAL_RATIO = 3.0


def make_book(path: Path, n: int) -> dict[int, tuple[str, Decimal | None]]:
    """``n`` orders at ``path``; returns each order's (status, price) as the book holds it."""
    import numpy as np
    import pandas as pd

    import oms

    rng = np.random.default_rng(7)
    prices = rng.integers(1, 10**8, n) / 10**4
    frame = pd.DataFrame({"symbol": rng.choice(["INFY", "TCS", "WIPRO", "HDFC.B"], n),
                          "side": rng.choice(["BUY", "SELL"], n), "quantity": rng.integers(1, 10**6, n),
                          "price": [f"{p:.4f}" for p in prices]})  # fmt: skip
    expected = {i + 1: ("NEW", Decimal(f"{p:.4f}")) for i, p in enumerate(prices)}
    with oms.open(path) as gw:
        gw.bulk_create(frame)
        touched = random.Random(7).sample(range(1, n + 1), min(n // 20, 3000))
        for k, order_id in enumerate(touched):
            if k % 3 == 0:
                o = gw.modify(order_id, price="12.5")
            elif k % 3 == 1:
                o = gw.execute(order_id)
            else:
                o = gw.cancel(order_id)
            expected[order_id] = (o.status.value, o.price)
        gw.create(symbol="MKT", side="BUY", quantity=1, order_type="MARKET", client_order_id='odd"\\id')
        expected[n + 1] = ("NEW", None)
    return expected


def copy_baseline(path: Path, out: Path, runs: int) -> float:
    import duckdb

    con = duckdb.connect(str(path))
    try:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            con.execute(f"COPY (SELECT * FROM orders ORDER BY order_id) TO '{out}' (FORMAT JSON)")
            times.append(time.perf_counter() - start)
        return statistics.median(times)
    finally:
        con.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)

    import httpx

    from oms.jsonio import loads

    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="oms-listing-bench-") as tmp:
        db = Path(tmp) / "book.duckdb"
        started = time.perf_counter()
        expected = make_book(db, args.orders)
        total = len(expected)
        print(f"book: {total:,} orders ({time.perf_counter() - started:.1f} s to build)")
        copy_s = copy_baseline(db, Path(tmp) / "copy.json", args.runs)
        copy_bytes = (Path(tmp) / "copy.json").stat().st_size

        port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "OMS_API_TOKEN"}
        server = subprocess.Popen(
            [sys.executable, "-m", "oms.cli", "serve", "--db", str(db), "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=url, timeout=120) as http:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        http.get("/orders?limit=1")
                        break
                    except httpx.TransportError:
                        if time.monotonic() > deadline or server.poll() is not None:
                            print("oms serve did not start", file=sys.stderr)
                            return 1
                        time.sleep(0.05)

                full_times, full_text = [], b""
                for _ in range(args.runs):
                    start = time.perf_counter()
                    with http.stream("GET", "/orders") as response:
                        full_text = response.read()
                    full_times.append(time.perf_counter() - start)
                listing = loads(full_text)
                ids = [o["order_id"] for o in listing]
                if ids != sorted(expected):
                    errors.append(f"the full listing has {len(ids)} orders, not the {total} of the book, sorted")
                wrong = [o["order_id"] for o in listing if (o["status"], o["price"]) != expected.get(o["order_id"])]
                if wrong:
                    errors.append(f"{len(wrong)} orders listed with a wrong status or price, e.g. {wrong[:3]}")

                rng = random.Random(11)
                page_times = []
                for _ in range(args.pages):
                    after = rng.randrange(0, total)
                    start = time.perf_counter()
                    response = http.get("/orders", params={"limit": PAGE, "after": after})
                    page_times.append(time.perf_counter() - start)
                    page = loads(response.content)
                    if page != listing[after : after + PAGE]:
                        errors.append(f"the page after {after} is not that slice of the listing")
                    more = after + PAGE < total
                    link = response.headers.get("link")
                    if more != (link is not None) or (more and f"after={after + PAGE}>" not in (link or "")):
                        errors.append(f"the page after {after} has Link {link!r}; more remain: {more}")
        finally:
            server.terminate()
            server.wait(30)

    page_times.sort()
    p50 = statistics.median(page_times)
    p99 = page_times[min(len(page_times) - 1, int(0.99 * len(page_times)))]
    full_s = statistics.median(full_times)
    print(f"COPY (SELECT * FROM orders ORDER BY order_id) TO ... (FORMAT JSON): median {copy_s * 1000:8.1f} ms "
          f"({copy_bytes / 1e6:.1f} MB)")  # fmt: skip
    print(f"GET /orders (full, streamed)           : median {full_s * 1000:8.1f} ms ({len(full_text) / 1e6:.1f} MB)  "
          f"= {full_s / copy_s:.2f}x COPY  goal <= {FULL_GOAL_RATIO:.0f}x")  # fmt: skip
    print(f"GET /orders?limit={PAGE}&after=ID ({len(page_times)} pages): p50 {p50 * 1000:6.2f} ms  "
          f"p99 {p99 * 1000:6.2f} ms  goal p50 <= {PAGE_GOAL_S * 1000:.0f} ms")  # fmt: skip
    if errors:
        print("ERRORS:\n" + "\n".join(f"  {e}" for e in dict.fromkeys(errors)))
        return 1
    print(f"answers: all correct ({total:,} orders; every page the slice it names, Link exactly while more remain)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
