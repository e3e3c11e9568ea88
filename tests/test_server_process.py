"""A real `oms serve` process on a free loopback port: persistence across restarts, kill -9
in the middle of a stream of requests, the 32-way race on one order, parallel creates,
the token rule, clean shutdown on SIGTERM, and one-line refusals of unusable files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

import oms
from conftest import ServeProcess, free_port
from oms.client import RemoteGateway, ServerUnreachable
from oms.lifecycle import Status

Serve = Callable[..., ServeProcess]
LIMIT = {"symbol": "INFY", "side": "BUY", "quantity": 100, "price": "1500.25"}

pytestmark = pytest.mark.slow


def test_orders_survive_a_restart_and_ids_continue(serve: Serve, db_path: Path) -> None:
    server = serve(db_path)
    with server.connect() as gw:
        first = gw.create(**LIMIT)  # type: ignore[arg-type]
        second = gw.modify(gw.create(**LIMIT).order_id, price="1499.9999")  # type: ignore[arg-type]
        gw.execute(first.order_id)
        before, events = gw.orders(), gw.events()
    assert server.terminate() == 0
    server = serve(db_path)
    with server.connect() as gw:
        assert gw.orders() == before and gw.events() == events
        assert gw.get(second.order_id).price == second.price
        assert gw.create(**LIMIT).order_id == 3  # type: ignore[arg-type]


def test_sigterm_stops_the_server_cleanly_and_releases_the_file(serve: Serve, db_path: Path) -> None:
    server = serve(db_path)
    with server.connect() as gw:
        gw.create(**LIMIT)  # type: ignore[arg-type]
    started = time.monotonic()
    assert server.terminate(timeout=15) == 0
    assert time.monotonic() - started < 10
    assert "stopped; " in server.log and "closed" in server.log
    assert "Traceback" not in server.log
    assert not Path(f"{db_path}.wal").exists(), "the engine was not closed (write-ahead log left behind)"
    with oms.open(db_path) as reopened:  # released: this process can take it
        assert [o.status for o in reopened.orders()] == [Status.NEW]


def test_every_acknowledged_command_survives_kill_9_in_the_middle_of_a_stream(serve: Serve, db_path: Path) -> None:
    server = serve(db_path)
    acknowledged: dict[int, oms.Order] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def stream(worker: int) -> None:
        with server.connect() as gw:
            try:
                for i in range(10_000):
                    if stop.is_set():
                        return
                    order = gw.create(symbol=f"S{worker}", side="BUY", quantity=i + 1, price="10.5")
                    with lock:
                        acknowledged[order.order_id] = order
                    if i % 3 == 1:
                        order = gw.cancel(order.order_id)
                    elif i % 3 == 2:
                        order = gw.execute(gw.modify(order.order_id, quantity=7).order_id, price="10")
                    with lock:
                        acknowledged[order.order_id] = order
            except ServerUnreachable:
                return  # the server died under us: expected

    workers = [threading.Thread(target=stream, args=(w,)) for w in range(4)]
    for w in workers:
        w.start()
    deadline = time.monotonic() + 20
    while len(acknowledged) < 120 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.kill9()
    stop.set()
    for w in workers:
        w.join(20)
    assert not any(w.is_alive() for w in workers)
    assert len(acknowledged) >= 120

    with oms.open(db_path) as reopened:
        stored = {o.order_id: o for o in reopened.orders()}
        assert reopened.replay() == reopened.orders()
    ahead = 0
    for order_id, acked in acknowledged.items():
        assert order_id in stored, f"acknowledged order {order_id} lost"
        kept = stored[order_id]
        assert kept.version >= acked.version
        if kept.version == acked.version:
            assert kept == acked
        else:
            ahead += 1  # a command committed just before the kill, its answer never sent
    assert ahead <= len(workers)
    assert len(stored) - len(acknowledged) <= len(workers)  # creates committed but never answered


@pytest.mark.parametrize("first", ["cancel", "execute"])
def test_32_concurrent_cancels_and_executes_on_one_new_order_have_exactly_one_winner(
    serve: Serve, db_path: Path, first: str
) -> None:
    server = serve(db_path)
    order_id = httpx.post(server.url + "/order", json=LIMIT).json()["order_id"]
    barrier = threading.Barrier(32)
    answers: list[httpx.Response] = []

    def race(i: int) -> None:
        with httpx.Client(base_url=server.url, timeout=20) as http:
            http.get("/orders")  # connect before the start line
            barrier.wait(10)
            if (i % 2 == 0) == (first == "cancel"):
                answers.append(http.delete(f"/order/{order_id}"))
            else:
                answers.append(http.post(f"/order/{order_id}/execute"))

    threads = [threading.Thread(target=race, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] + [409] * 31
    assert {r.json()["detail"]["code"] for r in answers if r.status_code == 409} == {"INVALID_TRANSITION"}
    winner = next(r.json() for r in answers if r.status_code == 200)
    events = httpx.get(f"{server.url}/order/{order_id}/events").json()
    terminal = [e for e in events if e["accepted"] and e["to_status"] in ("CANCELLED", "EXECUTED")]
    assert len(terminal) == 1 and terminal[0]["to_status"] == winner["status"]
    assert sum(not e["accepted"] for e in events) == 31


def test_parallel_creates_all_get_unique_consecutive_ids(serve: Serve, db_path: Path) -> None:
    server = serve(db_path)
    ids: list[int] = []

    def creates() -> None:
        with server.connect() as gw:
            ids.extend(gw.create(**LIMIT).order_id for _ in range(10))  # type: ignore[arg-type]

    threads = [threading.Thread(target=creates) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(ids) == list(range(1, 161))
    with server.connect() as gw:
        assert [o.order_id for o in gw.orders()] == list(range(1, 161))


def test_with_a_token_requests_need_it_and_the_remote_gateway_sends_it(serve: Serve, db_path: Path) -> None:
    server = serve(db_path, token="tok-123")
    refused = httpx.get(server.url + "/orders")
    assert refused.status_code == 401 and refused.json()["detail"]["code"] == "UNAUTHORIZED"
    wrong = httpx.get(server.url + "/orders", headers={"Authorization": "Bearer tok-12"})
    assert wrong.status_code == 401
    with oms.connect(server.url) as anonymous, pytest.raises(oms.OMSError) as err:
        anonymous.create(**LIMIT)  # type: ignore[arg-type]
    assert err.value.code == "UNAUTHORIZED"
    with oms.connect(server.url, token="tok-123") as gw:
        assert gw.create(**LIMIT).order_id == 1  # type: ignore[arg-type]
        assert len(gw.events()) == 1  # the refused request above never reached the engine


def test_binding_a_public_address_without_a_token_refuses_to_start(serve: Serve, db_path: Path) -> None:
    server = serve(db_path, args=("--host", "0.0.0.0"), ready=False)
    assert server.wait(timeout=20) == 2
    assert "refusing to bind 0.0.0.0 without a token" in server.log and "OMS_API_TOKEN" in server.log
    assert "Traceback" not in server.log
    assert not db_path.exists()


def test_a_database_held_by_another_server_is_one_clear_line_and_exit_1(serve: Serve, db_path: Path) -> None:
    holder = serve(db_path)
    second = serve(db_path, ready=False)
    assert second.wait(timeout=20) == 1
    assert second.log.strip().splitlines() == [
        line for line in second.log.strip().splitlines() if line.startswith("oms serve: DATABASE_LOCKED:")
    ]
    assert str(db_path) in second.log and "Traceback" not in second.log
    assert httpx.get(holder.url + "/orders").status_code == 200


def test_a_taken_port_is_one_line_and_writes_no_database(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "oms.cli", "serve", "--db", str(tmp_path / "new.duckdb"), "--port", str(port)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == f"oms serve: cannot listen on 127.0.0.1:{port}: Address already in use"
    assert list(tmp_path.iterdir()) == []  # the book is opened only once the port is ours


def test_a_url_of_no_known_kind_is_refused_never_taken_for_a_file_name(tmp_path: Path) -> None:
    for url in ("mysql://oms:secret@127.0.0.1/oms", "postgresql+psycopg://oms:secret@127.0.0.1/oms"):
        for command in (["serve", "--db", url, "--port", str(free_port())], ["orders", "--db", url]):
            done = subprocess.run(
                [sys.executable, "-m", "oms.cli", *command], capture_output=True, text=True, timeout=60, cwd=tmp_path
            )
            assert done.returncode in (1, 2), done.stderr
            (line,) = done.stderr.strip().splitlines()
            assert "not a kind of database this oms opens" in line and "secret" not in line, line
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_not_a_database_is_refused_and_left_unchanged(serve: Serve, tmp_path: Path) -> None:
    notes = tmp_path / "notes.duckdb"
    notes.write_text("these are my notes, not a database\n" * 10)
    server = serve(notes, ready=False)
    assert server.wait(timeout=20) == 1
    assert "NOT_A_DATABASE" in server.log and "Traceback" not in server.log
    assert notes.read_text() == "these are my notes, not a database\n" * 10


def test_uvicorn_oms_api_app_serves_oms_db_with_the_token_rule(db_path: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "OMS_DB": str(db_path), "OMS_API_TOKEN": "uv-tok"}
    log = (tmp_path / "uvicorn.log").open("wb")
    cmd = [sys.executable, "-m", "uvicorn", "oms.api:app", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(url + "/orders", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, (tmp_path / "uvicorn.log").read_text()
                time.sleep(0.05)
        assert httpx.get(url + "/orders").status_code == 401
        with RemoteGateway(url, token="uv-tok") as gw:
            gw.create(**LIMIT)  # type: ignore[arg-type]
        proc.terminate()
        proc.wait(15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()
    assert "Traceback" not in (tmp_path / "uvicorn.log").read_text()
    with oms.open(db_path) as reopened:
        assert len(reopened.orders()) == 1


def test_uvicorn_oms_api_app_on_a_locked_database_fails_in_one_line(serve: Serve, db_path: Path) -> None:
    holder = serve(db_path)
    env = {**os.environ, "OMS_DB": str(db_path)}
    cmd = [sys.executable, "-m", "uvicorn", "oms.api:app", "--port", str(free_port())]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "DATABASE_LOCKED" in done.stderr and str(db_path) in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert httpx.get(holder.url + "/orders").status_code == 200


# ---- a database the server cannot write; a shutdown that cannot complete (issue 10: 8, 9) ----

CAP_DAC_OVERRIDE = 1
PR_CAPBSET_DROP = 24


def obey_permission_bits() -> None:
    """preexec_fn: the child obeys file permission bits even as root. Root writes anywhere
    through CAP_DAC_OVERRIDE; dropped from the bounding set before exec, the child's uid 0
    keeps every other capability but not that one (non-root: nothing to do)."""
    if os.geteuid() != 0:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE)")


def require_unwritable(path: Path) -> None:
    """Skip unless a child started with ``obey_permission_bits`` really cannot write ``path``
    (a folder: create a file in it; a file: open it for writing)."""
    probe = f"open({str(path / 'probe')!r}, 'x')" if path.is_dir() else f"open({str(path)!r}, 'r+b')"
    done = subprocess.run([sys.executable, "-c", probe], preexec_fn=obey_permission_bits, capture_output=True)
    if done.returncode == 0:
        (path / "probe").unlink(missing_ok=True)
        pytest.skip(f"{path} stays writable for a child process here (no way to drop the override)")


def book_with_one_order(db: Path) -> oms.Order:
    with oms.open(db) as gw:
        return gw.create(**LIMIT)  # type: ignore[arg-type]


def serve_unprivileged(db: Path) -> tuple[int | None, str]:
    """Run `oms serve` on ``db`` as a child that obeys permission bits: (exit status or
    None if it was still serving after 30 s, stderr)."""
    cmd = [sys.executable, "-m", "oms.cli", "serve", "--db", str(db), "--port", str(free_port())]
    env = {k: v for k, v in os.environ.items() if k != "OMS_API_TOKEN"}
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env,
                            preexec_fn=obey_permission_bits)  # fmt: skip
    try:
        _, err = proc.communicate(timeout=30)
        return proc.returncode, err
    except subprocess.TimeoutExpired:  # it started (the defect): stop it
        proc.kill()
        _, err = proc.communicate(timeout=10)
        return None, err


def test_serve_refuses_to_start_on_a_database_in_a_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "readonly"
    folder.mkdir()
    db = folder / "oms.duckdb"
    book_with_one_order(db)
    before = db.read_bytes(), db.stat().st_mtime_ns
    folder.chmod(0o555)
    try:
        require_unwritable(folder)
        status, err = serve_unprivileged(db)
        assert status == 2, err
        assert err.strip().splitlines() == [err.strip()], err  # one line
        assert str(db) in err and f"cannot create a file in its folder {folder}" in err and "Permission denied" in err
        assert "Traceback" not in err
        assert (db.read_bytes(), db.stat().st_mtime_ns) == before
        assert sorted(p.name for p in folder.iterdir()) == ["oms.duckdb"]
        # Reading it is still possible: a read command opens it read-only.
        cmd = [sys.executable, "-m", "oms.cli", "orders", "--db", str(db), "--json"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, preexec_fn=obey_permission_bits)
        assert done.returncode == 0, done.stderr
        assert [o["order_id"] for o in json.loads(done.stdout)] == [1]
    finally:
        folder.chmod(0o755)


def test_serve_refuses_to_start_on_a_read_only_database_file(tmp_path: Path) -> None:
    db = tmp_path / "oms.duckdb"
    book_with_one_order(db)
    db.chmod(0o444)
    try:
        require_unwritable(db)
        status, err = serve_unprivileged(db)
        assert status == 2, err
        assert err.strip().splitlines() == [err.strip()], err
        assert str(db) in err and "the file is not writable" in err and "Traceback" not in err
    finally:
        db.chmod(0o644)


def test_sigterm_when_the_final_checkpoint_fails_exits_1_in_one_line_and_loses_nothing(
    db_path: Path, tmp_path: Path
) -> None:
    # A real write failure at shutdown: the file may not grow (RLIMIT_FSIZE, as a full disk
    # would refuse it), so the commands fit in the write-ahead log but the final checkpoint,
    # which writes new blocks to the file, fails with EFBIG.
    import resource

    oms.open(db_path).close()
    size = db_path.stat().st_size

    def file_may_not_grow() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.RLIM_INFINITY))

    port = free_port()
    log_path = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if k != "OMS_API_TOKEN"}
    cmd = [sys.executable, "-m", "oms.cli", "serve", "--db", str(db_path), "--port", str(port)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=file_may_not_grow)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(400):
            assert proc.poll() is None, log_path.read_text()
            try:
                httpx.get(url + "/orders", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        with httpx.Client(base_url=url, timeout=20) as http:
            acknowledged = [http.post("/order", json=LIMIT).json()["order_id"] for _ in range(20)]
        proc.terminate()
        status = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    text = log_path.read_text()
    failed = [line for line in text.splitlines() if "shutdown failed" in line]
    assert status == 1, text
    assert len(failed) == 1 and failed[0].startswith("oms serve: shutdown failed: STORE_ERROR: "), text
    assert str(db_path) in failed[0] and "File too large" in failed[0]
    assert "Traceback" not in text and "Application shutdown failed" not in text and "stopped; " not in text
    with oms.open(db_path) as reopened:  # the acknowledged commands were in the log
        assert [o.order_id for o in reopened.orders()] == acknowledged == list(range(1, 21))
