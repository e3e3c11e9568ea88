"""``oms serve``: the REST API (``oms.api``) over one book, in uvicorn.

The book is a DuckDB file (one server process) or a PostgreSQL database
(``--db postgresql://...``), which ``--workers N`` serves from N processes sharing one
listening socket: a supervisor binds it, checks the database once (migrating it), starts
the workers, starts again a worker that was killed, and on SIGTERM stops them all. A
worker dies with its supervisor (PR_SET_PDEATHSIG), so a kill -9 of ``oms serve`` frees
the port at once. Several separate ``oms serve`` processes on one database work as well.

Adapter layer. Opens the database first, so a locked, foreign or newer file is one clear
line and a non-zero exit, never a traceback; refuses to start on a database it cannot
write (a read-only folder or file: it would answer 503 to everything); binds 127.0.0.1
unless told otherwise and refuses any other address without a token; on SIGTERM or
Ctrl-C uvicorn finishes the requests in flight, then the engine is closed and the file
released -- and when that close fails (the final checkpoint on a full disk), one line
says so and the exit status is 1, never a clean 0.

With ``--fix-port`` the same process also runs the FIX 4.4 acceptor (``oms.fix``) on the
same engine and the same address: FIX sessions are not authenticated, so an address other
than loopback also needs ``--fix-allow-remote``. On a stop the FIX sessions are logged out
and the acceptor stopped before the engine closes.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import socket
import sys
from typing import TYPE_CHECKING

import oms
from oms.errors import OMSError
from oms.gateway import TOKEN_ENV

if TYPE_CHECKING:
    from oms.engine import Engine
    from oms.fix.acceptor import AcceptorThread

DEFAULT_HOST = "127.0.0.1"


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 65535, got {text!r}")
    return int(text)


DEFAULT_PORT = 8000
MAX_WORKERS = 64


def _workers(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_WORKERS}, got {text!r}")
    return int(text)


HEAD_TIMEOUT = 10.0
GIL_SWITCH_S = 0.0005
"""The server's GIL switch interval (Python's default: 5 ms). A commit thread coming back
from the database waits at most this long for the event loop to let it run; on a
PostgreSQL book it holds the book's lock meanwhile. Measured with benchmarks/pg_bench.py,
32 clients, one worker: 4,469-4,713 -> 5,507-5,704 ops/s; DuckDB unchanged."""
DEFAULT_FIX_SENDER = "OMS"
DEFAULT_FIX_TARGET = "CLIENT"


def _comp_id(text: str) -> str:
    """A FIX CompID: 1-64 printable ASCII characters, no spaces."""
    if not 1 <= len(text) <= 64 or any(not 0x21 <= ord(c) <= 0x7E for c in text):
        raise argparse.ArgumentTypeError(f"must be 1-64 printable ASCII characters without spaces, got {text!r}")
    return text


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0 and at most 3600, got {text!r}")
    return value


def token_problem(token: str) -> str | None:
    """Why ``token`` can never be sent in an Authorization header as given, or None."""
    if not token.strip():
        return "the token is empty or only spaces"
    if token != token.strip():
        return "the token has leading or trailing whitespace (no request could ever send it)"
    if any(not 0x21 <= ord(c) <= 0x7E for c in token):
        return "the token must be printable ASCII without spaces"
    return None


def _read_token(args: argparse.Namespace) -> str | None:
    """The token: --token-file (one line; its newline is not part of it), else --token,
    else the environment. Raises ValueError naming what is wrong."""
    if args.token_file:
        try:
            with open(args.token_file, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeError) as e:
            raise ValueError(f"cannot read the token file {args.token_file}: {e}") from None
        token: str | None = text.removesuffix("\n").removesuffix("\r")
    else:
        token = args.token if args.token is not None else os.environ.get(TOKEN_ENV)
    if token is None or token == "":
        if args.token_file:
            raise ValueError(f"the token file {args.token_file} is empty")
        return None
    problem = token_problem(token)
    if problem:
        raise ValueError(problem)
    return token


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        default=oms.DEFAULT_DB,
        help="DuckDB file, or postgresql://USER:PASSWORD@HOST:PORT/DB (default: %(default)s)",
    )
    parser.add_argument(
        "--workers", type=_workers, default=1, metavar="N",
        help="server processes on one port (PostgreSQL only; default: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--worker-of", type=int, help=argparse.SUPPRESS)  # the supervisor's pid, in a worker
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT, help="port 1-65535 (default: %(default)s)")
    parser.add_argument(
        "--token-file",
        metavar="PATH",
        help=f"require 'Authorization: Bearer TOKEN' on every request, TOKEN read from PATH "
        f"(default: ${TOKEN_ENV}); required to bind anything but loopback",
    )
    # Still accepted, no longer advertised: an argument is visible to every local user in ps.
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument(
        "--head-timeout",
        type=_seconds,
        default=HEAD_TIMEOUT,
        metavar="SECONDS",
        help="close a connection that takes longer to send a request head (default: %(default)s)",
    )
    parser.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    parser.add_argument("--access-log", action="store_true", help="log every request (off by default: it costs)")
    fix = parser.add_argument_group("FIX 4.4", "also accept FIX 4.4 sessions on the same engine and --host")
    fix.add_argument("--fix-port", type=_port, metavar="N", help="the FIX acceptor's port (default: no FIX)")
    fix.add_argument(
        "--fix-sender", type=_comp_id, default=DEFAULT_FIX_SENDER, metavar="COMPID",
        help="our SenderCompID (default: %(default)s)",
    )  # fmt: skip
    fix.add_argument(
        "--fix-target", type=_comp_id, action="append", metavar="COMPID",
        help=f"a counterparty's CompID, one session each (repeat; default: {DEFAULT_FIX_TARGET})",
    )  # fmt: skip
    fix.add_argument(
        "--fix-allow-remote", action="store_true",
        help="accept FIX sessions on a --host other than loopback (FIX logons are not authenticated)",
    )  # fmt: skip


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def main(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT. 0 after a clean stop; 1 if the database or the port
    cannot be used, or the database could not be closed cleanly at the end; 2 for a
    refused configuration (a bad token, a public address without one, a database this
    process cannot write)."""
    import uvicorn

    from oms.api import SERVER_THREADS, create_app
    from oms.http_guard import GuardedHttpToolsProtocol, default_max_connections, raise_fd_limit

    if args.worker_of is not None:  # a worker of --workers N: its book comes in the environment
        from oms.supervisor import WORKER_DB_ENV

        args.db = os.environ.pop(WORKER_DB_ENV, args.db)

    try:
        token = _read_token(args)
    except ValueError as e:
        print(f"oms serve: refusing the token: {e}", file=sys.stderr)
        return 2
    if not is_loopback(args.host) and not token:
        print(
            f"oms serve: refusing to bind {args.host} without a token: set {TOKEN_ENV} (or pass --token-file), "
            f"or bind {DEFAULT_HOST}",
            file=sys.stderr,
        )
        return 2
    fix_problem = _fix_problem(args) or _store_problem(args)
    if fix_problem is not None:
        print(f"oms serve: {fix_problem}", file=sys.stderr)
        return 2
    if args.workers > 1 and args.worker_of is None:
        from oms.supervisor import supervise

        return supervise(args, token)
    if args.worker_of is not None:
        from oms.supervisor import die_with

        die_with(args.worker_of)
    raise_fd_limit()
    sys.setswitchinterval(GIL_SWITCH_S)
    protocol = GuardedHttpToolsProtocol.configured(
        max_head_bytes=GuardedHttpToolsProtocol.max_head_bytes,
        head_timeout=args.head_timeout,
        max_connections=default_max_connections(),
    )
    from oms.store import MEMORY, is_url, shown, write_problem

    problem = None if args.db == MEMORY or is_url(args.db) else write_problem(args.db)
    if problem is not None:
        print(
            f"oms serve: refusing to serve {args.db}: {problem}: every command would fail; "
            "pass a database in a writable folder (`oms orders --db` reads a read-only one)",
            file=sys.stderr,
        )
        return 2
    from oms.supervisor import listening_socket

    def listen() -> socket.socket | None:
        try:
            return listening_socket(args.host, args.port, reuse_port=args.worker_of is not None)
        except OSError as e:
            print(f"oms serve: cannot listen on {args.host}:{args.port}: {e.strerror or e}", file=sys.stderr)
            return None

    # A lone server takes its port before it opens the book, so a taken port writes
    # nothing; a worker (its supervisor checked the port) opens the book first, since the
    # kernel sends connections to its socket as soon as it listens.
    listener = None if args.worker_of is not None else listen()
    if listener is None and args.worker_of is None:
        return 1
    try:
        gateway = oms.open(args.db, threads=SERVER_THREADS)
    except OMSError as e:
        if listener is not None:
            listener.close()
        print(f"oms serve: {e.code}: {e.message}", file=sys.stderr)
        return 1
    if listener is None:
        listener = listen()
        if listener is None:
            gateway.close()
            return 1
    closed: list[bool] = []  # [True] once closed cleanly, [False] once the close failed
    fix: list[AcceptorThread] = []  # the running FIX acceptor, until it is stopped
    fix_failed: list[bool] = []

    def stop_fix() -> None:
        # Before the engine closes: the sessions are logged out, reports still due are stored.
        if not fix:
            return
        try:
            fix.pop().stop()
        except Exception as e:
            fix_failed.append(True)
            reason = " ".join(f"{type(e).__name__}: {e}".split())
            print(f"oms serve: the FIX acceptor did not stop cleanly: {reason}", file=sys.stderr, flush=True)
            return
        print("oms serve: FIX stopped; its sessions were logged out", file=sys.stderr, flush=True)

    def close() -> None:
        stop_fix()
        if closed:
            return
        try:
            gateway.close()
        except Exception as e:
            closed.append(False)
            reason = f"{e.code}: {e.message}" if isinstance(e, OMSError) else f"{type(e).__name__}: {e}"
            print(
                f"oms serve: shutdown failed: {' '.join(reason.split())}; the acknowledged commands are "
                f"kept in {shown(args.db)}{'' if is_url(args.db) else '.wal'} and replayed when it is next opened",
                file=sys.stderr,
                flush=True,
            )
            return
        closed.append(True)

    def stop() -> None:
        # Here, not after server.run(): uvicorn re-raises SIGTERM once it has shut down.
        # Never raises: uvicorn would log a traceback and still exit 0.
        close()
        if closed == [True]:
            print(f"oms serve: stopped; {shown(args.db)} closed", file=sys.stderr, flush=True)

    if args.fix_port is not None:
        try:
            fix.append(_start_fix(gateway, args))
        except (OSError, ValueError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            print(f"oms serve: cannot serve FIX on {args.host}:{args.fix_port}: {reason}", file=sys.stderr)
            close()
            listener.close()
            return 1

    try:
        config = uvicorn.Config(
            create_app(gateway, token=token, on_shutdown=stop),
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            access_log=args.access_log,
            lifespan="on",
            http=protocol,  # bounded request heads, a head timeout, a connection cap
        )
        server = uvicorn.Server(config)
        # uvicorn re-raises SIGTERM once it has shut down; with this handler in place the
        # re-raise is a no-op and a clean stop exits 0 (SIGINT still ends as Ctrl-C: 130).
        signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
        worker = "" if args.worker_of is None else f" (worker {os.getpid()})"
        print(
            f"oms serve: {shown(args.db)} on http://{args.host}:{args.port}{worker} (docs at /docs)",
            file=sys.stderr,
            flush=True,
        )
        server.run(sockets=[listener])
    finally:
        close()  # for a server that never started (port in use)
    return 0 if server.started and closed == [True] and not fix_failed else 1


def _store_problem(args: argparse.Namespace) -> str | None:
    """Why this book cannot be served (a URL of no known kind: never taken for a file
    name), or ``--workers`` or ``--fix-port`` cannot be used on it, or None."""
    from oms.store import is_url, kind_of

    try:
        kind_of(args.db)
    except OMSError as e:
        return e.message

    if args.workers > 1 and not is_url(args.db):
        return (
            f"--workers {args.workers} needs a PostgreSQL book (--db postgresql://...): a DuckDB file "
            "takes one writer process"
        )
    if args.fix_port is not None and is_url(args.db):
        return "--fix-port keeps its sessions beside a DuckDB file: it is not offered on a PostgreSQL book yet"
    return None


def _fix_problem(args: argparse.Namespace) -> str | None:
    """Why the FIX options cannot be used as given, or None."""
    if args.fix_port is None:
        options = {
            "--fix-sender": args.fix_sender != DEFAULT_FIX_SENDER,
            "--fix-target": bool(args.fix_target),
            "--fix-allow-remote": args.fix_allow_remote,
        }
        given = [name for name, used in options.items() if used]
        return f"{', '.join(given)} without --fix-port: pass --fix-port N" if given else None
    if args.fix_port == args.port:
        return f"--fix-port and --port are both {args.port}: give FIX a port of its own"
    if not is_loopback(args.host) and not args.fix_allow_remote:
        return (
            f"refusing to accept FIX sessions on {args.host}: FIX logons are not authenticated; "
            f"pass --fix-allow-remote, or bind {DEFAULT_HOST}"
        )
    targets = args.fix_target or [DEFAULT_FIX_TARGET]
    if args.fix_sender in targets:
        return f"--fix-sender {args.fix_sender} is also a --fix-target"
    return None


def _start_fix(gateway: Engine, args: argparse.Namespace) -> AcceptorThread:
    """The FIX acceptor over ``gateway``, listening. Raises OSError (the port), ValueError (the store)."""
    from oms.fix.acceptor import AcceptorThread, FixAcceptor
    from oms.fix.state import SqliteSessionStore, default_path

    targets = list(dict.fromkeys(args.fix_target or [DEFAULT_FIX_TARGET]))
    store = SqliteSessionStore(default_path(str(args.db)))
    runner = AcceptorThread(
        FixAcceptor(gateway, sender=args.fix_sender, targets=targets, store=store, host=args.host, port=args.fix_port)
    )
    try:
        port = runner.start()
    except BaseException:
        runner.stop()
        raise
    print(
        f"oms serve: FIX 4.4 on fix://{args.host}:{port} as {args.fix_sender} for {', '.join(targets)}",
        file=sys.stderr,
        flush=True,
    )
    return runner
