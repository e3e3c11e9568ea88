"""``oms`` -- the command line: a thin face over the library.

Each command parses, calls the library, and translates an OMSError once into
``CODE: message`` on stderr with exit status 1. Commands that live with their subsystem
(``serve``, ``certify``, ``lab``) are modules exposing ``add_arguments(parser)`` and
``main(args) -> int``; they load only when chosen.

Startup is kept short (``oms --help`` imports the pure core and nothing else): the engine
(duckdb) or the remote client (httpx) loads only when a command opens one, and tables are
plain text fitted to the terminal, never pandas.

Which book a gateway command uses: ``--db PATH`` or ``--url URL`` when given; else
``$OMS_URL`` (what ``oms lab`` hands JupyterLab's kernels and terminals); else, when a
running ``oms lab`` serves the default database, its server (found through the lab's
discovery file, ``oms.workbench.find_lab``); else the default file. A book found either
way is named in one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import oms
from oms.errors import DatabaseLocked, OMSError, StoreError
from oms.gateway import TOKEN_ENV
from oms.lifecycle import to_markdown, to_mermaid

if TYPE_CHECKING:
    from oms.gateway import Gateway

MEMORY = ":memory:"  # oms.store.MEMORY, without importing duckdb
URL_ENV = "OMS_URL"  # oms.workbench.URL_VARIABLE: the served book JupyterLab's kernels use

# name -> (module, one-line help). The module provides add_arguments() and main().
SUBSYSTEM_COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("oms.server", "run the REST API server over a database"),
    "certify": ("oms.certification.cli", "run the certification pack against a gateway or server"),
    "lab": ("oms.workbench", "open the workbench: JupyterLab on notebooks/ with the shared database"),
}


class Refused(Exception):
    """A bad invocation found after parsing: the message is the line shown (exit 2)."""


# ---- which book -----------------------------------------------------------------------


def _gateway(args: argparse.Namespace) -> Gateway:
    url, db = args.url, args.db
    if url is None and db is None:
        url = _discovered_url()
    if url is not None:
        return oms.connect(url, token=_token(args, url))
    db = db if db is not None else oms.DEFAULT_DB
    if args.reads_only and db != MEMORY and not _is_server_url(db) and not os.path.exists(db):
        # A listing never creates a database: a mistyped path must not look like an empty book.
        raise StoreError(f"{db}: no such database: check the path, or create an order there first")
    # A read leaves the file and its write-ahead log as it found them (bytes and mtime).
    return oms.open(db, read_only=args.reads_only)


def _is_server_url(db: str) -> bool:
    """True for a database server's URL; a URL of no known kind is refused here (a
    StoreError), never taken for a file name."""
    from oms.store.base import is_url, kind_of

    kind_of(db)
    return is_url(db)


def _discovered_url() -> str | None:
    """The served book to use when neither --db nor --url is given (saying so on
    stderr), or None for the default file."""
    url = os.environ.get(URL_ENV)
    if url:
        _note(f"using the book at {url} (from ${URL_ENV})")
        return url
    from oms.workbench import find_lab

    book = find_lab(oms.DEFAULT_DB)
    if book is None:
        return None
    _note(f"{oms.DEFAULT_DB} is served by `oms lab` (pid {book.pid}): using {book.url} ({book.path})")
    return book.url


def _token(args: argparse.Namespace, url: str) -> str | None:
    """The bearer token for ``url``: --token-file, else --token, else the one in the
    discovery file of the `oms lab` serving ``url``, else $OMS_API_TOKEN."""
    if args.token_file:
        try:
            with open(args.token_file, encoding="utf-8") as f:
                token = f.read().removesuffix("\n").removesuffix("\r")
        except (OSError, UnicodeError) as e:
            raise Refused(f"cannot read the token file {args.token_file}: {e}") from None
        if not token:
            raise Refused(f"the token file {args.token_file} is empty")
        return token
    if args.token:
        return str(args.token)
    from oms.workbench import find_lab_by_url

    book = find_lab_by_url(url)
    if book is not None:
        return book.token
    return os.environ.get(TOKEN_ENV) or None


def _lock_hint(args: argparse.Namespace, error: OMSError) -> str:
    """``error``'s message, plus where the book is served when a running `oms lab` holds it."""
    db = getattr(args, "db", None)
    if not isinstance(error, DatabaseLocked) or db is None:
        return error.message
    from oms.workbench import find_lab

    book = find_lab(db)
    if book is None:
        return error.message
    return f"{error.message}; `oms lab` (pid {book.pid}) serves it: pass --url {book.url} instead of --db"


def _note(text: str) -> None:
    print(f"oms: {text}", file=sys.stderr, flush=True)


# ---- tables ---------------------------------------------------------------------------


class Table:
    """The columns of a terminal table, and which give way when it is too wide: ``drop``
    columns are hidden -- those blank in every row first, then in the order given -- and
    ``wrap`` (free text) is wrapped into the room left, down to WRAP_MIN characters,
    before it is hidden last of all. Values are never cut."""

    WRAP_MIN = 20
    GAP = "  "

    def __init__(
        self, columns: Sequence[str], *, drop: Sequence[str], right: Sequence[str] = (), wrap: str | None = None
    ) -> None:
        assert set(drop) <= set(columns) and (wrap is None or wrap in columns), "a column the table does not have"
        self.columns, self.drop, self.right, self.wrap = tuple(columns), tuple(drop), frozenset(right), wrap

    def render(self, rows: Sequence[Mapping[str, Any]], width: int | None) -> tuple[str, list[str]]:
        """The table as text no wider than ``width`` (None: every column, unwrapped), and
        the names of the columns hidden to fit."""
        cells = [{c: _cell(row.get(c)) for c in self.columns} for row in rows]
        natural = {c: max([len(c), *(len(r[c]) for r in cells)]) for c in self.columns}
        shown, hidden = list(self.columns), []
        order = [*self.drop, *([self.wrap] if self.wrap else [])]
        blank = [c for c in order if not any(r[c] for r in cells)]
        give_way = [*blank, *(c for c in order if c not in blank)]
        widths = dict(natural)
        while width is not None:
            widths = dict(natural)
            total = sum(natural[c] for c in shown) + len(self.GAP) * (len(shown) - 1)
            if total > width and self.wrap in shown:
                room = natural[self.wrap] - (total - width)
                if room >= max(self.WRAP_MIN, len(self.wrap)):
                    widths[self.wrap] = room
                    total = width
            if total <= width or not give_way:
                break
            column = give_way.pop(0)
            shown.remove(column)
            hidden.append(column)
        lines = [self._line({c: [c] for c in shown}, shown, widths)]
        for row in cells:
            lines.append(self._line({c: self._fit(c, row[c], widths[c]) for c in shown}, shown, widths))
        return "\n".join(lines), hidden

    def _fit(self, column: str, text: str, width: int) -> list[str]:
        if column != self.wrap or len(text) <= width:
            return [text]
        import textwrap

        return textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) or [""]

    def _line(self, parts: dict[str, list[str]], shown: list[str], widths: dict[str, int]) -> str:
        height = max(len(p) for p in parts.values())
        out = []
        for i in range(height):
            texts = []
            for c in shown:
                text = parts[c][i] if i < len(parts[c]) else ""
                texts.append(text.rjust(widths[c]) if c in self.right else text.ljust(widths[c]))
            out.append(self.GAP.join(texts).rstrip())
        return "\n".join(out)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    return " ".join(str(value).splitlines())


ORDERS = Table(
    ("order_id", "client_order_id", "symbol", "side", "order_type", "quantity", "price", "status", "version",
     "executed_quantity", "executed_price", "created_at", "updated_at"),
    drop=("executed_quantity", "version", "created_at", "client_order_id", "order_type", "updated_at",
          "executed_price"),
    right=("order_id", "quantity", "price", "version", "executed_quantity", "executed_price"),
)  # fmt: skip
EVENTS = Table(
    ("seq", "order_id", "action", "from_status", "to_status", "accepted", "reason", "at", "version",
     "client_order_id", "symbol", "side", "order_type", "quantity", "price", "executed_quantity",
     "executed_price", "message"),
    drop=("client_order_id", "order_type", "side", "symbol", "executed_quantity", "version", "executed_price",
          "quantity", "price", "from_status", "at", "accepted"),
    right=("seq", "order_id", "version", "quantity", "price", "executed_quantity", "executed_price"),
    wrap="message",
)  # fmt: skip


def _width(args: argparse.Namespace) -> int | None:
    """How wide a table may be: the terminal's width (or $COLUMNS) when printing to a
    terminal or when $COLUMNS is set; unlimited for --wide and for a pipe or file."""
    if args.wide or not (os.environ.get("COLUMNS") or sys.stdout.isatty()):
        return None
    import shutil

    return shutil.get_terminal_size().columns


def _print_table(args: argparse.Namespace, table: Table, rows: list[dict[str, Any]], empty: str) -> None:
    if args.json:
        from oms.jsonio import dumps

        print(dumps(rows, indent=2))
        return
    if not rows:
        print(empty)
        return
    width = _width(args)
    text, hidden = table.render(rows, width)
    print(text, flush=True)
    if hidden:
        _note(f"{len(hidden)} columns hidden to fit {width} characters ({', '.join(hidden)}); --wide shows them")


def _print_orders(args: argparse.Namespace, orders: list[oms.Order]) -> None:
    _print_table(args, ORDERS, [o.to_dict() for o in orders], "(no orders)")


# ---- commands -------------------------------------------------------------------------


def _cmd_orders(args: argparse.Namespace, gw: Gateway) -> int:
    _print_orders(args, gw.orders(status=args.status, symbol=args.symbol))
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
    _print_orders(args, [order])
    return 0


def _cmd_modify(args: argparse.Namespace, gw: Gateway) -> int:
    _print_orders(args, [gw.modify(args.order_id, quantity=args.quantity, price=args.price)])
    return 0


def _cmd_cancel(args: argparse.Namespace, gw: Gateway) -> int:
    _print_orders(args, [gw.cancel(args.order_id)])
    return 0


def _cmd_execute(args: argparse.Namespace, gw: Gateway) -> int:
    _print_orders(args, [gw.execute(args.order_id, price=args.price)])
    return 0


def _cmd_events(args: argparse.Namespace, gw: Gateway) -> int:
    _print_table(args, EVENTS, [e.to_dict() for e in gw.events(args.order_id)], "(no events)")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    db = args.db if args.db is not None else oms.DEFAULT_DB
    if db != MEMORY and not _is_server_url(db) and not os.path.exists(db):
        raise StoreError(f"{db}: no such database: check the path")
    with oms.open(db, read_only=True) as engine:
        try:
            written = engine.export_parquet(args.parquet)
        except OSError as e:
            raise Refused(f"cannot write Parquet files into {args.parquet}: {e.strerror or e}") from None
    for name, rows in written.items():
        print(f"{os.path.join(args.parquet, name)}: {rows:,} rows")
    return 0


def _cmd_lifecycle(args: argparse.Namespace) -> int:
    print(to_mermaid() if args.format == "mermaid" else to_markdown())
    return 0


GatewayCommand = Callable[[argparse.Namespace, "Gateway"], int]


# ---- the parser -----------------------------------------------------------------------


def _add_target(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--db",
        help=f"DuckDB file or postgresql:// URL (default: {oms.DEFAULT_DB}, or the server of the `oms lab` "
        f"serving it, or ${URL_ENV})",
    )
    group.add_argument("--url", help="a running server instead, e.g. http://127.0.0.1:8000")
    tokens = parser.add_mutually_exclusive_group()
    tokens.add_argument(
        "--token-file",
        metavar="PATH",
        help=f"file holding the server's bearer token (default: the token of the `oms lab` serving --url, "
        f"else ${TOKEN_ENV})",
    )
    tokens.add_argument("--token", help="the bearer token itself (visible to other users in ps: prefer a file)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--wide", action="store_true", help="every column, however wide the terminal")


class _Version(argparse.Action):
    """``--version``, reading the installed version only when asked (it costs an import)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        print(f"oms {oms.__version__}")
        parser.exit()


def chosen_command(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names (its first word that is not an option), or None."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``oms`` parser. A subsystem command's options come from its module, imported
    only for the command ``argv`` names (so ``oms --help`` imports none of them); with
    ``argv=None`` every module is imported and the parser is complete."""
    everything = argv is None
    load = None if argv is None else chosen_command(argv)
    parser = argparse.ArgumentParser(prog="oms", description="Exchange-style order management from the shell.")
    parser.add_argument("--version", action=_Version)
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

    help = "write the event log and the orders as Parquet files (streamed: any size)"
    p = sub.add_parser("export", help=help, description=help)
    p.add_argument("--db", help=f"DuckDB file or postgresql:// URL (default: {oms.DEFAULT_DB})")
    p.add_argument("--parquet", required=True, metavar="DIR", help="folder for order_events.parquet and orders.parquet")
    p.set_defaults(plain_fn=_cmd_export)

    p = sub.add_parser("lifecycle", help="print the lifecycle table", description="print the lifecycle table")
    p.add_argument("--format", choices=("markdown", "mermaid"), default="markdown")
    p.set_defaults(plain_fn=_cmd_lifecycle)

    for name, (module, help) in SUBSYSTEM_COMMANDS.items():
        p = sub.add_parser(name, help=help, description=help)
        if not everything and name != load:
            continue  # listed in `oms --help`, its module left unloaded
        try:
            import importlib

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
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    try:
        if hasattr(args, "gateway_fn"):
            with _gateway(args) as gw:
                return int(args.gateway_fn(args, gw))
        return int(args.plain_fn(args))
    except OMSError as e:
        print(f"{e.code}: {_lock_hint(args, e)}", file=sys.stderr)
        return 1
    except Refused as e:
        print(f"oms {args.command}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `oms orders | head`: the reader left; say nothing more
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
