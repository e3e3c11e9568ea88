"""HTTP throughput of the OMS REST API against the original stack and a no-op ceiling.

One run starts three real uvicorn processes on loopback, one after another, with the same
uvicorn options:

- ``oms``      -- ``oms.api:app`` over a fresh DuckDB file (durable, with the event log);
- ``baseline`` -- ``benchmarks/baseline_sqlalchemy_app.py``: FastAPI + SQLAlchemy + SQLite,
                  the original specification's stack;
- ``noop``     -- the same routes answering a constant: FastAPI + uvicorn doing no work.

Each is driven by the same mix -- create; modify + execute; create + cancel; create +
execute (7 requests per round) -- from 1 client and from 8 concurrent clients, each a
keep-alive connection driven by a lean asyncio HTTP/1.1 client (so the client costs little
of the machine's CPU). Every answer's status is checked. Prints ops/s (requests per second)
and the ratios oms/baseline and oms/noop.

    .venv/bin/python benchmarks/http_bench.py [--rounds 150] [--passes 3] [--clients 1 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CREATE = json.dumps({"symbol": "INFY", "side": "BUY", "quantity": 100, "price": 1500.25}).encode()
MODIFY = json.dumps({"price": 1499.5}).encode()


@dataclass
class Target:
    name: str
    app: str
    env: dict[str, str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Connection:
    """One keep-alive HTTP/1.1 connection: request -> (status, body)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer, f"127.0.0.1:{port}")

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: {len(body)}\r\n"
        if body:
            head += "Content-Type: application/json\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        payload = await self.reader.readexactly(length) if length else b""
        return int(status_line.split()[1]), payload

    def close(self) -> None:
        self.writer.close()


Call = Callable[[str, str, bytes, int], Awaitable[bytes]]
"""One request of the mix: (method, path, body, expected status) -> the answer's body."""


async def one_round(call: Call) -> None:
    """One round of the lifecycle mix (7 requests): create, modify, execute; create,
    cancel; create, execute."""
    a = json.loads(await call("POST", "/order", CREATE, 201))["order_id"]
    await call("PUT", f"/order/{a}", MODIFY, 200)
    await call("POST", f"/order/{a}/execute", b"", 200)
    b = json.loads(await call("POST", "/order", CREATE, 201))["order_id"]
    await call("DELETE", f"/order/{b}", b"", 200)
    c = json.loads(await call("POST", "/order", CREATE, 201))["order_id"]
    await call("POST", f"/order/{c}/execute", b"", 200)


async def one_client(port: int, rounds: int, errors: list[str]) -> int:
    """Run ``rounds`` rounds of the mix; returns the number of requests made."""
    conn = await Connection.open(port)
    done = 0

    async def call(method: str, path: str, body: bytes, expect: int) -> bytes:
        nonlocal done
        status, payload = await conn.request(method, path, body)
        done += 1
        if status != expect and len(errors) < 5:
            errors.append(f"{method} {path} -> {status} {payload[:200]!r}")
        return payload

    try:
        for _ in range(rounds):
            await one_round(call)
    finally:
        conn.close()
    return done


async def drive(port: int, clients: int, rounds: int) -> tuple[float, list[str]]:
    errors: list[str] = []
    per_client = max(1, rounds // clients)
    await asyncio.gather(*(one_client(port, 3, errors) for _ in range(clients)))  # warm-up
    started = time.perf_counter()
    counts = await asyncio.gather(*(one_client(port, per_client, errors) for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return sum(counts) / elapsed, errors


def start(target: Target, port: int, log: Path) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable, "-m", "uvicorn", target.app, "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "warning", "--no-access-log", "--app-dir", str(ROOT / "benchmarks"),
    ]  # fmt: skip
    env = {**os.environ, **target.env, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{target.name} exited with {proc.returncode}:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{target.name} did not start within 30 s:\n{log.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=150, help="rounds of the 7-request mix per pass (all clients)")
    parser.add_argument("--passes", type=int, default=3, help="interleaved passes; the median is reported")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    import uvicorn

    loop = "uvloop" if _has("uvloop") else "asyncio"
    http = "httptools" if _has("httptools") else "h11"
    print(f"uvicorn {uvicorn.__version__} (loop {loop}, http {http}); {os.cpu_count()} CPUs; "
          f"{args.passes} interleaved passes of {args.rounds} rounds x 7 requests; median ops/s")  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="oms-http-bench-") as tmp:
        work = Path(tmp)
        targets = [
            Target("oms", "oms.api:app", {"OMS_DB": str(work / "oms.duckdb"), "OMS_API_TOKEN": ""}),
            Target("baseline", "baseline_sqlalchemy_app:app", {"BASELINE_DB": str(work / "baseline.sqlite")}),
            Target("noop", "baseline_sqlalchemy_app:noop_app", {"BASELINE_DB": str(work / "noop.sqlite")}),
        ]
        # All three run at once (idle while another is driven), and the passes alternate
        # between them, so a change in the machine's background load hits all alike.
        ports = {t.name: free_port() for t in targets}
        procs: list[subprocess.Popen[bytes]] = []
        samples: dict[tuple[str, int], list[float]] = {}
        all_errors: list[str] = []
        try:
            for t in targets:
                procs.append(start(t, ports[t.name], work / f"{t.name}.log"))
            for _ in range(args.passes):
                for clients in args.clients:
                    for t in targets:
                        rate, errors = asyncio.run(drive(ports[t.name], clients, args.rounds))
                        samples.setdefault((t.name, clients), []).append(rate)
                        all_errors += [f"{t.name}: {e}" for e in errors]
        finally:
            for proc in procs:
                stop(proc)

        engine_rate = engine_alone(work / "engine.duckdb", args.rounds)

    results = {key: statistics.median(rates) for key, rates in samples.items()}
    for t in targets:
        for clients in args.clients:
            rates = ", ".join(f"{r:.0f}" for r in samples[(t.name, clients)])
            plural = "s" if clients > 1 else " "
            print(f"{t.name:>8}  {clients} client{plural}  {results[(t.name, clients)]:7.0f} ops/s   (passes: {rates})")
    print()
    for clients in args.clients:
        ours, base, noop = (results[(n, clients)] for n in ("oms", "baseline", "noop"))
        print(
            f"{clients} client{'s' if clients > 1 else ' '}: oms/baseline = {ours / base:5.2f}x   "
            f"oms/noop = {ours / noop:4.2f}   (oms {ours:.0f}, baseline {base:.0f}, noop {noop:.0f} ops/s)"
        )
    ours = results[("oms", args.clients[0])]
    print(
        f"the engine alone (oms.open, same mix, no HTTP): {engine_rate:.0f} commands/s -- "
        f"{args.clients[0]} HTTP client reaches {ours / engine_rate:.0%} of it"
    )
    if all_errors:
        print("ERRORS:", *all_errors[:10], sep="\n  ")
    return 1 if all_errors else 0


def engine_alone(path: Path, rounds: int) -> float:
    """The same mix straight into the embedded engine: the floor an HTTP request cannot beat."""
    import oms

    with oms.open(path) as gw:
        fields = {"symbol": "INFY", "side": "BUY", "quantity": 100, "price": "1500.25"}
        started = time.perf_counter()
        for _ in range(rounds):
            a = gw.create(**fields).order_id  # type: ignore[arg-type]
            gw.modify(a, price="1499.5")
            gw.execute(a)
            gw.cancel(gw.create(**fields).order_id)  # type: ignore[arg-type]
            gw.execute(gw.create(**fields).order_id)  # type: ignore[arg-type]
        return rounds * 7 / (time.perf_counter() - started)


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    sys.exit(main())
