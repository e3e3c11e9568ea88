"""Many server processes, one PostgreSQL book: real `oms serve --workers N` processes and
separate `oms serve` processes on one database. Ids stay unique and increasing, racing
commands across processes have one winner, acknowledged commands survive kill -9 of any
process and a crash-restart of the database server, and the certification pack certifies
`oms serve --db postgresql://... --workers 4`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg

import oms
from conftest import ServeProcess
from oms.store.pgcluster import PASSWORD, TempCluster

ROOT = Path(__file__).resolve().parent.parent
CREATE = {"symbol": "INFY", "side": "BUY", "quantity": 10, "price": 100}


def workers_of(server: ServeProcess, count: int, *, without: int = 0) -> list[int]:
    """The worker pids of a supervisor, once it has ``count`` of them and ``without`` is
    not one of them (bounded wait)."""
    path = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children")
    for _ in range(400):
        pids = [int(p) for p in path.read_text().split()]
        if len(pids) == count and without not in pids:
            return pids
        time.sleep(0.05)
    raise AssertionError(f"the supervisor never had {count} workers: {path.read_text()!r}")


def gone(pid: int) -> bool:
    for _ in range(400):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":  # exited, not yet reaped
            return True
        time.sleep(0.05)
    return False


def until_answered(send: Callable[[], httpx.Response]) -> httpx.Response:
    """``send()`` until the server answers other than 503 (it is reconnecting): bounded."""
    response = None
    for _ in range(200):
        try:
            response = send()
            if response.status_code != 503:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"the server never answered again: {response.text[:300] if response else 'no answer'}")


def test_racing_commands_on_two_server_processes_have_exactly_one_winner(
    serve: Callable[..., ServeProcess], pg_url: str
) -> None:
    a, b = serve(pg_url), serve(pg_url)
    with httpx.Client(base_url=a.url) as left, httpx.Client(base_url=b.url) as right:
        created = [(left if i % 2 else right).post("/order", json=CREATE).json()["order_id"] for i in range(30)]
        assert created == list(range(1, 31))  # unique, increasing, whichever process took the command
        barrier = threading.Barrier(2)
        answers: dict[str, list[int]] = {"cancel": [], "execute": []}

        def race(client: httpx.Client, act: str) -> None:
            for order_id in created:
                barrier.wait(timeout=30)
                request = client.delete if act == "cancel" else lambda p: client.post(p + "/execute")
                answers[act].append(request(f"/order/{order_id}").status_code)

        threads = [threading.Thread(target=race, args=args) for args in ((left, "cancel"), (right, "execute"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        pairs = list(zip(answers["cancel"], answers["execute"], strict=True))
        assert len(pairs) == 30 and all(sorted(pair) == [200, 409] for pair in pairs), pairs
    with oms.open(pg_url) as book:
        for order, (cancel, _) in zip(book.orders(), pairs, strict=True):
            assert order.status.value == ("CANCELLED" if cancel == 200 else "EXECUTED")
        assert book.replay() == book.orders()
        assert [e.seq for e in book.events()] == list(range(1, 91))
    assert a.terminate() == 0 and b.terminate() == 0


_LISTEN, _ESTABLISHED = "0A", "01"


def sockets_of(pid: int, port: int, state: str) -> int:
    """How many TCP sockets on local ``port`` in ``state`` process ``pid`` holds (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == state and fields[9] in inodes:
            count += 1
    return count


def test_the_workers_share_the_clients_and_a_taken_port_is_one_line(
    serve: Callable[..., ServeProcess], pg_url: str, pg_cluster: TempCluster
) -> None:
    """Each worker listens on the port with a socket of its own, so the kernel spreads
    connections over them (from one shared socket, the first worker to wake took a whole burst)."""
    server = serve(pg_url, args=("--workers", "2"))
    pids = workers_of(server, 2)
    for pid in pids:  # the book's URL reaches a worker in its environment: ps shows no password
        assert PASSWORD.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    for _ in range(400):  # both listening (the first to listen answers wait_ready)
        if all(sockets_of(pid, server.port, _LISTEN) == 1 for pid in pids):
            break
        time.sleep(0.05)
    burst = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(16)]  # at once
    try:
        for conn in burst:
            conn.sendall(f"GET /orders?limit=1 HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
        answers = [conn.recv(64) for conn in burst]
        assert all(a.startswith(b"HTTP/1.1 200") for a in answers), answers  # 16 kept-alive connections
        held = {pid: sockets_of(pid, server.port, _ESTABLISHED) for pid in pids}
    finally:
        for conn in burst:
            conn.close()
    assert sum(held.values()) == 16 and all(held.values()), held  # both serve (all on one: p = 2 * 2**-16)
    taken = subprocess.run(
        [sys.executable, "-m", "oms.cli", "serve", "--db", pg_url, "--port", str(server.port), "--workers", "2"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert taken.returncode == 1, taken.stderr
    assert f"cannot listen on 127.0.0.1:{server.port}" in taken.stderr and "Traceback" not in taken.stderr
    fresh = pg_cluster.create_database(f"untouched_{os.getpid()}")
    for workers in ("1", "2"):  # a taken port writes nothing: the book is opened once the port is ours
        taken = subprocess.run(
            [sys.executable, "-m", "oms.cli", "serve", "--db", fresh, "--port", str(server.port), "--workers", workers],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert taken.returncode == 1 and "cannot listen" in taken.stderr and "Traceback" not in taken.stderr
    with psycopg.connect(fresh) as con:
        tables = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
        assert tables.fetchone() == (0,)
    assert server.proc.poll() is None and httpx.get(server.url + "/orders?limit=1").status_code == 200


def test_acknowledged_commands_survive_kill_9_of_a_worker_and_of_the_server_and_a_database_crash(
    serve: Callable[..., ServeProcess], pg_url: str, pg_cluster: TempCluster
) -> None:
    server = serve(pg_url, args=("--workers", "2"))
    first, second = workers_of(server, 2)
    acknowledged: dict[int, str] = {}
    with httpx.Client(base_url=server.url) as client:
        for _ in range(10):
            acknowledged[client.post("/order", json=CREATE).json()["order_id"]] = "NEW"
        os.kill(first, signal.SIGKILL)  # one worker dies; the other serves, the supervisor starts another
        assert gone(first)
    with httpx.Client(base_url=server.url) as client:
        for order_id in list(acknowledged)[:5]:
            assert client.post(f"/order/{order_id}/execute").status_code == 200
            acknowledged[order_id] = "EXECUTED"
        assert second in workers_of(server, 2, without=first)  # a new worker in place of the killed one
        pg_cluster.restart(immediate=True)  # the database server crashes and comes back
        try:
            response = until_answered(lambda: client.post("/order", json=CREATE))
        except AssertionError:
            raise AssertionError(server.log) from None
        assert response.status_code == 201
        acknowledged[response.json()["order_id"]] = "NEW"
        assert client.delete(f"/order/{list(acknowledged)[5]}").status_code == 200
        acknowledged[list(acknowledged)[5]] = "CANCELLED"
    workers = workers_of(server, 2)
    server.kill9()  # the supervisor itself: its workers go with it, freeing the port
    assert all(gone(pid) for pid in workers)
    with oms.open(pg_url) as book:
        assert {o.order_id: o.status.value for o in book.orders()} == acknowledged
        assert book.replay() == book.orders()
    again = serve(pg_url, args=("--workers", "2"))  # same port free? a new one; same book
    assert [o["order_id"] for o in httpx.get(again.url + "/orders").json()] == sorted(acknowledged)
    assert again.terminate() == 0 and "stopped 2 workers" in again.log


def test_the_certification_pack_certifies_four_workers_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    serve = f"{sys.executable} -m oms.cli serve --db {pg_url} --port {{port}} --workers 4"
    done = subprocess.run(
        [sys.executable, "-m", "oms.cli", "certify", "--quiet", "--serve", serve, "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    (run,) = sorted(tmp_path.glob("run-*"))
    results = json.loads((run / "results.json").read_text())
    failed = {c["id"]: c["reason"] for c in results["cases"] if c["status"] in ("FAIL", "NOT RUN")}
    assert failed == {} and done.returncode == 0, done.stdout + done.stderr
    verdict = results["verdict_line"]
    assert verdict.startswith("CERTIFIED (core, read, audit; extensions: events_log, sql"), verdict
    for kept in run.rglob("*"):  # the reports name the book, never its password
        if kept.is_file():
            assert PASSWORD not in kept.read_text(errors="replace"), kept
    assert "postgresql://oms@127.0.0.1" in results["invocation"]["serve"]  # --retest: PGPASSWORD
    # the backend check reads the PostgreSQL database the command names, types and all
    (backend,) = [c for c in results["cases"] if c["id"] == "PB-070"]
    assert backend["status"] == "PASS", backend
    assert "DECIMAL(16,4)" in json.dumps(backend)
