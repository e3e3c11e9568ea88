"""``python -m oms.fix.serve``: the FIX 4.4 acceptor over one DuckDB file, until SIGTERM.

Adapter layer. Opens the engine (``oms.open``) and the session store beside it
(``<db>.fix.sqlite``), listens on loopback, prints one line naming the port, and on SIGTERM
or Ctrl-C logs the sessions out, closes the connections, the store and the engine, and
exits 0. A database that cannot be opened is one line and exit 1; a refused configuration
exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import oms
from oms.errors import OMSError
from oms.fix.acceptor import DEFAULT_HOST, FixAcceptor
from oms.fix.state import SqliteSessionStore, default_path


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 (any free port) to 65535, got {text!r}")
    return int(text)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m oms.fix.serve", description=__doc__.split("\n\n")[0])
    p.add_argument("--db", default=oms.DEFAULT_DB, help="DuckDB file (default: %(default)s)")
    p.add_argument("--fix-host", default=DEFAULT_HOST, help="address to bind (default: %(default)s)")
    p.add_argument("--fix-port", type=_port, required=True, help="port (0: any free port, printed)")
    p.add_argument("--sender", default="OMS", help="our SenderCompID (default: %(default)s)")
    p.add_argument(
        "--target", action="append", required=True, help="a counterparty's CompID (repeat for several sessions)"
    )
    return p


async def run(args: argparse.Namespace) -> int:
    from oms.server import is_loopback

    if not is_loopback(args.fix_host):
        print(f"oms fix: refusing to bind {args.fix_host}: FIX sessions are not authenticated", file=sys.stderr)
        return 2
    try:
        engine = oms.open(args.db, threads=1)
    except OMSError as e:
        print(f"oms fix: {e.code}: {e.message}", file=sys.stderr)
        return 1
    try:
        try:
            store = SqliteSessionStore(default_path(str(args.db)))
        except ValueError as e:
            print(f"oms fix: {e}", file=sys.stderr)
            return 1
        acceptor = FixAcceptor(engine, sender=args.sender, targets=args.target, store=store,
                               host=args.fix_host, port=args.fix_port)  # fmt: skip
        try:
            port = await acceptor.start()
        except OSError as e:
            store.close()
            print(f"oms fix: cannot listen on {args.fix_host}:{args.fix_port}: {e.strerror}", file=sys.stderr)
            return 1
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print(f"oms fix: {args.db} on fix://{args.fix_host}:{port} as {args.sender}", file=sys.stderr, flush=True)
        await stop.wait()
        await acceptor.stop()
    finally:
        engine.close()
    print(f"oms fix: stopped; {args.db} closed", file=sys.stderr, flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
