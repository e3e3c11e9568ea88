"""``oms serve --workers N``: N server processes on one port and one book.

Adapter layer (standard library). The supervisor opens the book once (so a bad URL, a
server that is down or a newer schema is one line before any worker starts, and the
migrations run once), checks the port is free and holds it, then starts each worker as
``oms serve``. Each worker listens on the port with a socket of its own (SO_REUSEPORT),
and the kernel spreads new connections evenly over them. (One shared listening socket
does not: whichever worker wakes first accepts a whole burst -- measured, one worker of
two took 80% of 32 keep-alive clients, so a second worker added almost nothing.) A worker killed by a
signal (kill -9) is started again at once; one that exits by itself (it could not reach
the database while starting: the server was restarting) is started again after
RETRY_AFTER_S, and after MAX_FAILURES such exits the whole server stops with status 1.
SIGTERM or SIGINT stops the workers (each finishes its requests in flight) and exits 0
when every worker stopped cleanly. Each worker asks the kernel to kill it when the
supervisor dies (``die_with``), so nothing outlives a kill -9 of ``oms serve`` and the
port is free at once.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time

import oms
from oms.errors import OMSError
from oms.gateway import TOKEN_ENV
from oms.store import shown

STOP_TIMEOUT_S = 30.0
"""Seconds the workers get to stop after SIGTERM before they are killed."""
RETRY_AFTER_S = 1.0
MAX_FAILURES = 10
WORKER_DB_ENV = "OMS_WORKER_DB"
"""How a worker learns its book: the environment, not its command line, where ps would
show the URL's password to every user of the machine."""
_PR_SET_PDEATHSIG = 1


def die_with(parent: int) -> None:
    """In a worker: be killed when the supervisor ``parent`` dies (Linux); exit at once
    if it is already gone."""
    libc = ctypes.CDLL(None, use_errno=True)
    if hasattr(libc, "prctl"):
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def _socket(host: str, port: int, *, reuse_port: bool, reuse_addr: bool = True) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        if reuse_addr:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host.strip("[]"), port))
    except BaseException:
        sock.close()
        raise
    return sock


def hold_port(host: str, port: int) -> socket.socket:
    """Check that nothing listens on ``host:port`` (a probe bound without SO_REUSEPORT
    fails if anything does, another ``oms serve --workers`` included) and hold the port
    for the workers: a socket bound with SO_REUSEPORT and without SO_REUSEADDR that
    never listens. No connection waits on it; a socket of another kind cannot bind the
    port while it is held (with SO_REUSEADDR it could, while no worker listens), nor can
    another supervisor's probe -- only this user's SO_REUSEPORT workers can."""
    _socket(host, port, reuse_port=False).close()
    return _socket(host, port, reuse_port=True, reuse_addr=False)


def listening_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A socket listening on ``host:port`` -- a worker's own on its supervisor's port
    (``reuse_port``), or a lone server's, bound before its book is opened so that a
    taken port writes nothing."""
    sock = _socket(host, port, reuse_port=reuse_port)
    sock.listen(2048)
    return sock


def _worker_command(args: argparse.Namespace) -> list[str]:
    command = [
        sys.executable, "-m", "oms.cli", "serve", "--host", args.host, "--port", str(args.port),
        "--head-timeout", str(args.head_timeout), "--log-level", args.log_level, "--worker-of", str(os.getpid()),
    ]  # fmt: skip
    return [*command, "--access-log"] if args.access_log else command


def supervise(args: argparse.Namespace, token: str | None) -> int:
    """Serve ``args.db`` from ``args.workers`` processes until SIGTERM/SIGINT. 0 after a
    clean stop; 1 when the book or the port cannot be used, or a worker failed."""
    try:  # first: a taken port writes nothing into the book
        held = hold_port(args.host, args.port)
    except OSError as e:
        print(f"oms serve: cannot listen on {args.host}:{args.port}: {e.strerror or e}", file=sys.stderr)
        return 1
    try:
        oms.open(args.db).close()  # one clear line for a bad book; the migrations run once
    except OMSError as e:
        held.close()
        print(f"oms serve: {e.code}: {e.message}", file=sys.stderr)
        return 1
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    if token:
        env[TOKEN_ENV] = token  # never on a command line, where ps would show it
    env[WORKER_DB_ENV] = args.db
    command = _worker_command(args)
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
    signal.signal(signal.SIGINT, lambda signum, _frame: stopping.append(signum))
    workers = [subprocess.Popen(command, env=env) for _ in range(args.workers)]
    print(
        f"oms serve: {shown(args.db)} on http://{args.host}:{args.port} with {args.workers} workers "
        f"(pids {', '.join(str(w.pid) for w in workers)})",
        file=sys.stderr,
        flush=True,
    )
    failures = 0
    try:
        while not stopping and failures < MAX_FAILURES:
            time.sleep(0.2)
            for i, worker in enumerate(workers):
                status = worker.poll()
                if status is None or stopping:
                    continue
                if status < 0:
                    why = f"was killed ({signal.Signals(-status).name})"
                else:
                    failures += 1
                    why = f"exited with status {status} ({failures} of at most {MAX_FAILURES})"
                    time.sleep(RETRY_AFTER_S)
                print(f"oms serve: worker {worker.pid} {why}: starting another", file=sys.stderr, flush=True)
                workers[i] = subprocess.Popen(command, env=env)
    finally:
        held.close()
        clean = _stop(workers)
    if failures >= MAX_FAILURES:
        print(f"oms serve: workers failed {failures} times: stopped the server", file=sys.stderr)
        return 1
    print(f"oms serve: stopped {args.workers} workers; {shown(args.db)} closed", file=sys.stderr, flush=True)
    return 0 if clean else 1


def _stop(workers: list[subprocess.Popen[bytes]]) -> bool:
    """SIGTERM every worker and wait (killing those still running after STOP_TIMEOUT_S);
    True when every one exited 0."""
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    clean = True
    for worker in workers:
        try:
            clean &= worker.wait(max(0.1, deadline - time.monotonic())) == 0
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
            clean = False
    return clean
