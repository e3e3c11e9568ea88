"""``oms`` -- the command line: a thin face over the library.

Each command parses, calls the library, and translates an OMSError once into
``CODE: message`` on stderr with exit status 1. Commands that live with their subsystem
(``serve``, ``certify``, ``lab``) are modules exposing ``add_arguments(parser)`` and
``main(args) -> int``; they load only when chosen.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import oms
from oms.errors import OMSError, StoreError
from oms.gateway import Gateway
from oms.jsonio import dumps
from oms.lifecycle import to_markdown, to_mermaid
from oms.model import format_ts
from oms.store import MEMORY

# name -> (module, one-line help). The module provides add_arguments() and main().
SUBSYSTEM_COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("oms.server", "run the REST API server over a database"),
    "certify": ("oms.certification.cli", "run the certification pack against a gateway or server"),
    "lab": ("oms.workbench", "open the workbench: JupyterLab on notebooks/ with the shared database"),
}


def _gateway(args: argparse.Namespace) -> Gateway:
    if args.url:
        remote: Gateway = oms.connect(args.url, token=args.token)
        return remote
    if args.reads_only and args.db != MEMORY and not Path(args.db).exists():
        # A listing never creates a database: a mistyped path must not look like an empty book.
        raise StoreError(f"{args.db}: no such database: check the path, or create an order there first")
    return oms.open(args.db)


def _add_target(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--db", default=oms.DEFAULT_DB, help="DuckDB file (default: %(default)s)")
    group.add_argument("--url", help="a running server instead, e.g. http://127.0.0.1:8000")
    parser.add_argument("--token", help="bearer token for a server that requires one")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _print_orders(orders: list[oms.Order], as_json: bool) -> None:
    if as_json:
        print(dumps([o.to_dict() for o in orders], indent=2))
        return
    from oms.views import orders_to_arrow, to_frame

    print(_table(to_frame(orders_to_arrow(orders)), "(no orders)"))


def _table(frame: Any, empty: str) -> str:
    """A DataFrame as a terminal table: timestamps as the API writes them, blanks for
    missing values."""
    if not len(frame):
        return empty
    import pandas as pd

    def cell(value: Any) -> str:
        if value is None or value is pd.NA or value is pd.NaT:
            return ""
        return format_ts(value) if isinstance(value, datetime) else str(value)

    return str(frame.astype(object).map(cell).to_string(index=False))


def _cmd_orders(args: argparse.Namespace, gw: Gateway) -> int:
    _print_orders(gw.orders(status=args.status, symbol=args.symbol), args.json)
    return 0


def _cmd_create(args: argparse.Namespace, gw: Gateway) -> int:
    order = gw.create(
        symbol=args.symbol,
        side=args.side,
        quantity=args.quantity,
        price=args.price,
        order_type=args.type,
        client_order_id=args.client_order_id,
    )
    _print_orders([order], args.json)
    return 0


def _cmd_modify(args: argparse.Namespace, gw: Gateway) -> int:
    _print_orders([gw.modify(args.order_id, quantity=args.quantity, price=args.price)], args.json)
    return 0


def _cmd_cancel(args: argparse.Namespace, gw: Gateway) -> int:
    _print_orders([gw.cancel(args.order_id)], args.json)
    return 0


def _cmd_execute(args: argparse.Namespace, gw: Gateway) -> int:
    _print_orders([gw.execute(args.order_id, price=args.price)], args.json)
    return 0


def _cmd_events(args: argparse.Namespace, gw: Gateway) -> int:
    events = gw.events(args.order_id)
    if args.json:
        print(dumps([e.to_dict() for e in events], indent=2))
        return 0
    from oms.views import events_to_arrow, to_frame

    print(_table(to_frame(events_to_arrow(events)), "(no events)"))
    return 0


def _cmd_lifecycle(args: argparse.Namespace) -> int:
    print(to_mermaid() if args.format == "mermaid" else to_markdown())
    return 0


GatewayCommand = Callable[[argparse.Namespace, Gateway], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="oms", description="Exchange-style order management from the shell.")
    parser.add_argument("--version", action="version", version=f"oms {oms.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def gateway_command(name: str, help: str, fn: GatewayCommand) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        _add_target(p)
        p.set_defaults(gateway_fn=fn, reads_only=False)
        return p

    p = gateway_command("orders", "list orders, sorted by id", _cmd_orders)
    p.set_defaults(reads_only=True)
    p.add_argument("--status", help="NEW, MODIFIED, CANCELLED or EXECUTED")
    p.add_argument("--symbol")

    p = gateway_command("create", "create an order", _cmd_create)
    p.add_argument("symbol")
    p.add_argument("side", help="BUY or SELL")
    p.add_argument("quantity", type=int)
    p.add_argument("price", nargs="?", help="limit price (omit for MARKET)")
    p.add_argument("--type", default="LIMIT", help="LIMIT (default) or MARKET")
    p.add_argument("--client-order-id")

    p = gateway_command("modify", "change quantity and/or price of a NEW order", _cmd_modify)
    p.add_argument("order_id", type=int)
    p.add_argument("--quantity", type=int)
    p.add_argument("--price")

    p = gateway_command("cancel", "cancel a NEW order", _cmd_cancel)
    p.add_argument("order_id", type=int)

    p = gateway_command("execute", "fill a NEW or MODIFIED order in full", _cmd_execute)
    p.add_argument("order_id", type=int)
    p.add_argument("--price", help="execution price (required for MARKET orders)")

    p = gateway_command("events", "the audit log, oldest first (all orders, or one)", _cmd_events)
    p.set_defaults(reads_only=True)
    p.add_argument("order_id", type=int, nargs="?")

    p = sub.add_parser("lifecycle", help="print the lifecycle table", description="print the lifecycle table")
    p.add_argument("--format", choices=("markdown", "mermaid"), default="markdown")
    p.set_defaults(plain_fn=_cmd_lifecycle)

    for name, (module, help) in SUBSYSTEM_COMMANDS.items():
        p = sub.add_parser(name, help=help, description=help)
        try:
            command_module: Any = importlib.import_module(module)
        except ImportError as e:  # a subsystem that is not installed stays listed, and says so
            p.set_defaults(plain_fn=lambda _args, e=e, name=name: _missing(name, e))
            continue
        command_module.add_arguments(p)
        p.set_defaults(plain_fn=command_module.main)
    return parser


def _missing(name: str, error: ImportError) -> int:
    print(f"oms {name} is not available: {error}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if hasattr(args, "gateway_fn"):
            with _gateway(args) as gw:
                return int(args.gateway_fn(args, gw))
        return int(args.plain_fn(args))
    except OMSError as e:
        print(f"{e.code}: {e.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `oms orders | head`: the reader left; say nothing more
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
