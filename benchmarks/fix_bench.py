"""Order round trip over FIX 4.4 against the REST round trip, measured in the same run.

Starts two real servers on loopback, each on a fresh DuckDB file with the same commit rule
(an answer only after the order is committed):

- ``fix``  -- ``python -m oms.fix.serve`` (the FIX acceptor), driven by raw FIX sessions:
  NewOrderSingle -> ExecutionReport 150=0, one order in flight per session;
- ``rest`` -- ``oms serve``, driven by ``httpx`` clients: POST /order -> 201.

Each runs with 1 and with 8 concurrent sessions/clients (one thread each). Every answer is
checked (150=0 with our ClOrdID; 201 with an order id). Prints p50 / p99 round trip and
orders/s, and the ratios FIX/REST. Exits 0 whenever every answer was right: speed is
reported, never judged.

Also prints, from the same run, the floor under any face: ``Engine.create`` called in this
process on a fresh DuckDB file, one at a time (the one commit every acknowledged order
pays, with no transport at all), as a fraction of REST's p50 -- a FIX p50 cannot be below it.

    .venv/bin/python benchmarks/fix_bench.py [--orders 2000] [--sessions 1 8]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from oms.fix.codec import FrameReader, decode, encode, sending_time  # noqa: E402

WAIT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Result:
    latencies: list[float]
    elapsed: float
    errors: list[str]

    @property
    def count(self) -> int:
        return len(self.latencies)

    def p(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    @property
    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0


def start(argv: list[str], ready: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(argv, cwd=ROOT, stderr=subprocess.PIPE, text=True, env={**os.environ})
    assert proc.stderr is not None
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if re.search(ready, line):
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc, line
    proc.kill()
    raise SystemExit("server did not start:\n" + "".join(lines))


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.wait(timeout=60)
    if proc.stderr is not None:
        proc.stderr.close()


# ---- FIX --------------------------------------------------------------------------------


class FixSession:
    def __init__(self, port: int, sender: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sender, self.seq, self.frames = sender, 1, FrameReader()
        self.inbox: list[bytes] = []
        self.send("A", [(98, "0"), (108, "30"), (141, "Y")])
        assert decode(self.recv()).msg_type == "A"

    def send(self, msg_type: str, body: list[tuple[int, str]]) -> None:
        header = [(49, self.sender), (56, "OMS"), (34, str(self.seq)), (52, sending_time())]
        self.seq += 1
        self.sock.sendall(encode(msg_type, header, body))

    def recv(self) -> bytes:
        while not self.inbox:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            self.inbox += self.frames.feed(data)
        return self.inbox.pop(0)

    def order(self, clordid: str) -> str | None:
        """One round trip; None if right, else what was wrong."""
        body = [(11, clordid), (55, "INFY"), (54, "1"), (38, "100"), (40, "2"), (44, "1500.25"), (60, sending_time())]
        self.send("D", body)
        while True:
            msg = decode(self.recv())
            if msg.msg_type == "0":
                continue
            if msg.msg_type != "8" or msg.get(150) != "0" or msg.get(11) != clordid:
                return f"unexpected answer {msg}"
            return None

    def close(self) -> None:
        self.sock.close()


def drive(n_sessions: int, per_session: int, one: object) -> Result:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(n_sessions + 1)

    def worker(i: int) -> None:
        run = one(i)  # type: ignore[operator]
        barrier.wait()
        mine: list[float] = []
        try:
            for k in range(per_session):
                t0 = time.perf_counter()
                problem = run(k)
                mine.append(time.perf_counter() - t0)
                if problem:
                    with lock:
                        errors.append(problem)
        finally:
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_sessions)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return Result(latencies, time.perf_counter() - t0, errors)


def run_fix(port: int, n: int, per: int, tag: str) -> Result:
    sessions = [FixSession(port, f"C{i + 1}") for i in range(n)]
    try:
        return drive(n, per, lambda i: lambda k: sessions[i].order(f"{tag}-{i}-{k}"))
    finally:
        for s in sessions:
            s.close()


def run_rest(port: int, n: int, per: int) -> Result:
    clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=WAIT) for _ in range(n)]
    body = {"symbol": "INFY", "side": "BUY", "quantity": 100, "price": 1500.25}

    def one(i: int) -> object:
        def call(k: int) -> str | None:
            r = clients[i].post("/order", json=body)
            return None if r.status_code == 201 and r.json().get("order_id") else f"{r.status_code} {r.text[:200]}"

        return call

    try:
        return drive(n, per, one)
    finally:
        for c in clients:
            c.close()


def run_engine(path: str, count: int) -> Result:
    """``Engine.create`` in this process, one at a time: the commit alone, no transport."""
    import oms

    latencies: list[float] = []
    with oms.open(path, threads=1) as engine:  # as the servers open it
        for k in range(20):
            engine.create(symbol="INFY", side="BUY", quantity=100, price="1500.25", client_order_id=f"warm-{k}")
        t0 = time.perf_counter()
        for k in range(count):
            t = time.perf_counter()
            engine.create(symbol="INFY", side="BUY", quantity=100, price="1500.25", client_order_id=f"e-{k}")
            latencies.append(time.perf_counter() - t)
        return Result(latencies, time.perf_counter() - t0, [])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=2000, help="orders per configuration (default %(default)s)")
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    most = max(args.sessions)
    with tempfile.TemporaryDirectory() as tmp:
        targets = [a for i in range(most) for a in ("--target", f"C{i + 1}")]
        fix_argv = [sys.executable, "-m", "oms.fix.serve", "--db", f"{tmp}/fix.duckdb", "--fix-port", "0", *targets]
        fix_proc, line = start(fix_argv, r"fix://127\.0\.0\.1:\d+")
        fix_port = int(re.search(r":(\d+) as", line).group(1))  # type: ignore[union-attr]
        rest_port = free_port()
        rest_argv = [sys.executable, "-m", "oms.cli", "serve", "--db", f"{tmp}/rest.duckdb", "--port", str(rest_port)]
        rest_proc, _ = start(rest_argv, r"on http://")
        results: dict[tuple[str, int], Result] = {}
        try:
            run_fix(fix_port, 1, 20, "warm")
            run_rest(rest_port, 1, 20)
            for n in args.sessions:
                per = max(1, args.orders // n)
                results[("fix", n)] = run_fix(fix_port, n, per, f"s{n}")
                results[("rest", n)] = run_rest(rest_port, n, per)
        finally:
            stop(fix_proc)
            stop(rest_proc)
        floor = run_engine(f"{tmp}/engine.duckdb", args.orders)
    errors = [e for r in results.values() for e in r.errors]
    print(f"order round trip, {args.orders} orders per configuration (durable: answered after commit)")
    print(f"{'face':<5} {'sessions':>8} {'p50 ms':>8} {'p99 ms':>8} {'orders/s':>10}")
    for (face, n), r in results.items():
        print(f"{face:<5} {n:>8} {r.p(0.5):>8.3f} {r.p(0.99):>8.3f} {r.rate:>10,.0f}")
    for n in args.sessions:
        f, r = results[("fix", n)], results[("rest", n)]
        print(
            f"{n} session{'s' if n > 1 else ' '}: FIX/REST p50 = {f.p(0.5) / r.p(0.5):.2f}x  "
            f"p99 = {f.p(0.99) / r.p(0.99):.2f}x  orders/s = {f.rate / r.rate:.2f}x  (goal: p50 <= 0.33x)"
        )
    rest_1 = results[("rest", min(args.sessions))]
    print(
        f"floor: Engine.create in-process, one at a time (the commit alone): p50 {floor.p(0.5):.3f} ms "
        f"= {floor.p(0.5) / rest_1.p(0.5):.2f}x REST's p50 with {min(args.sessions)} session"
        f"{'s' if min(args.sessions) > 1 else ''}"
    )
    if errors:
        print(f"ERRORS: {len(errors)} wrong answers, first: {errors[0]}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
