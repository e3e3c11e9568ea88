"""``oms serve``: the REST API (``oms.api``) over one DuckDB file, in uvicorn.

Adapter layer. Opens the database first, so a locked, foreign or newer file is one clear
line and a non-zero exit, never a traceback; binds 127.0.0.1 unless told otherwise and
refuses any other address without a token; on SIGTERM or Ctrl-C uvicorn finishes the
requests in flight, then the engine is closed and the file released.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import sys

import oms
from oms.errors import OMSError
from oms.gateway import TOKEN_ENV

DEFAULT_HOST = "127.0.0.1"


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 65535, got {text!r}")
    return int(text)


DEFAULT_PORT = 8000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=oms.DEFAULT_DB, help="DuckDB file (default: %(default)s)")
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT, help="port 1-65535 (default: %(default)s)")
    parser.add_argument(
        "--token",
        help=f"require 'Authorization: Bearer TOKEN' on every request (default: ${TOKEN_ENV}; "
        "required to bind anything but loopback; prefer the variable, arguments show in ps)",
    )
    parser.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    parser.add_argument("--access-log", action="store_true", help="log every request (off by default: it costs)")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def main(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT. 0 after a clean stop, 1 if the database or the port
    cannot be used, 2 for a refused configuration."""
    import uvicorn

    from oms.api import SERVER_THREADS, create_app

    token = args.token or os.environ.get(TOKEN_ENV) or None
    if not is_loopback(args.host) and not token:
        print(
            f"oms serve: refusing to bind {args.host} without a token: set {TOKEN_ENV} (or pass --token), "
            f"or bind {DEFAULT_HOST}",
            file=sys.stderr,
        )
        return 2
    try:
        gateway = oms.open(args.db, threads=SERVER_THREADS)
    except OMSError as e:
        print(f"oms serve: {e.code}: {e.message}", file=sys.stderr)
        return 1

    def stop() -> None:
        # Here, not after server.run(): uvicorn re-raises SIGTERM once it has shut down.
        gateway.close()
        print(f"oms serve: stopped; {args.db} closed", file=sys.stderr, flush=True)

    try:
        config = uvicorn.Config(
            create_app(gateway, token=token, on_shutdown=stop),
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            access_log=args.access_log,
            lifespan="on",
        )
        server = uvicorn.Server(config)
        # uvicorn re-raises SIGTERM once it has shut down; with this handler in place the
        # re-raise is a no-op and a clean stop exits 0 (SIGINT still ends as Ctrl-C: 130).
        signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
        print(f"oms serve: {args.db} on http://{args.host}:{args.port} (docs at /docs)", file=sys.stderr, flush=True)
        server.run()
    finally:
        gateway.close()  # idempotent: for a server that never started (port in use)
    return 0 if server.started else 1
