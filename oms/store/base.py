"""The Store protocol the engine talks to, and the registry of stores by URL scheme.

Adapter layer (imports nothing heavy: a store's module loads only when a book of its
kind is opened). Two stores implement the protocol:

- ``oms.store.duck`` -- a DuckDB file (or ``":memory:"``): one writer process, the
  engine's cache and counters are the truth (``shared = False``);
- ``oms.store.pg`` -- a PostgreSQL database (``postgresql://...``): any number of server
  processes write one book (``shared = True``, ``SharedBookStore``). A process decides a
  batch on what it knows and the store places it (``place``): in one transaction under
  the book's counter row, unless others changed what the batch read since -- then the
  process takes over their news (``Catchup``) and decides again. Ids stay unique and
  increasing in commit order. ``writing`` decides under that lock instead.

Both keep the same schema version, the same append-only event log (refusals included,
the same payload text), the same ``orders`` projection and the same exact decimals and
UTC millisecond timestamps; analytics (``cursor``) are always DuckDB's.
"""

from __future__ import annotations

import importlib
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from oms.errors import SchemaTooNew, StoreError
from oms.model import Order, OrderEvent

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

EventRow = tuple[int, int | None, str]
"""One ``event_log`` row: (seq, order_id, payload JSON text)."""


@dataclass
class Catchup:
    """What other processes committed since a process's last known sequence number."""

    seq: int
    last_order_id: int
    touched: set[int] = field(default_factory=set)
    """Orders changed by those commits (their cached copies are stale)."""
    client_order_ids: set[str] = field(default_factory=set)
    """Client order ids their creates used."""
    last_at: datetime | None = None
    """The time of the book's last event: no later event may be earlier (oldest first)."""


@dataclass
class Placement:
    """What a shared store did with a batch decided on what its writer knew (``place``)."""

    placed: bool
    """False: others changed what the batch read; nothing was written, decide it again."""
    news: Catchup | None
    """What others committed since the writer's last seq (None: nothing); take it over first."""
    seq_shift: int = 0
    """Added to the batch's seqs (numbered from the writer's last seq) where they landed."""
    id_shift: int = 0
    """Added to the ids of the batch's new orders (numbered from the writer's last order id)."""
    last_at: datetime | None = None
    """The time of the book's last event before the batch (``Catchup.last_at``)."""


class BookStore(Protocol):
    """One book's persistence, as the engine uses it."""

    path: str
    """The book as given (a path or a URL; a URL's password is never shown)."""
    read_only: bool
    shared: bool
    """True when other processes may write the same book at the same time."""
    lock: threading.RLock
    """Held by whoever uses the store's connection (the engine tries it without blocking)."""

    def writing(self, since: int) -> AbstractContextManager[Catchup | None]:
        """One commit: inside it the engine decides and ``append``s; it commits at the end.
        Yields what others committed after ``since`` (None when not ``shared``)."""
        ...

    def append(self, rows: Sequence[EventRow]) -> None:
        """Append event rows in one statement; the ``orders`` projection follows them."""
        ...

    def append_arrow(self, table: pa.Table) -> None: ...

    def fold(self) -> None: ...

    def open_state(self) -> tuple[tuple[int, int, int], set[str]]:
        """(last seq, last order id, folded seq) and every client order id in use."""
        ...

    def load_order(self, order_id: int) -> Order | None: ...

    def load_orders(self, *, status: str | None = None, symbol: str | None = None) -> list[Order]: ...

    def load_events(self, order_id: int | None = None, *, accepted_only: bool = False) -> list[OrderEvent]: ...

    def stream(self, query: str, batch_rows: int = ...) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of ``query`` (SQL both dialects read) in batches, one snapshot, streamed."""
        ...

    def arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table: ...

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection over the book as it is now, for reads (close it when done)."""
        ...

    def close(self) -> None: ...


class SharedBookStore(BookStore, Protocol):
    """A store many processes write at once (``shared = True``)."""

    def place(
        self, since: int, known_order_id: int, rows: Sequence[EventRow], *,
        reads: set[int], client_order_ids: set[str], pinned: int | None, created: int,
    ) -> Placement:  # fmt: skip
        """Commit ``rows`` -- decided on the book as of seq ``since`` and order id
        ``known_order_id``, numbered from them, the batch's ``created`` new orders among
        them -- unless others have since changed an order of ``reads``, taken one of
        ``client_order_ids``, created orders up to ``pinned`` (the smallest id above
        ``known_order_id`` the batch named) or beyond, or committed an event later than
        the batch's first. One round trip; the book is locked only while the database
        runs it."""
        ...


@dataclass(frozen=True)
class StoreKind:
    """One kind of store: its name for people and where its class lives (loaded on use)."""

    name: str
    factory: str
    """``module:attribute`` of the store class."""
    single_file: bool
    """A file on this machine (whose identity the engine guards against a second writer)."""

    def open(self, target: str, *, threads: int | None = None, read_only: bool = False) -> BookStore:
        module, _, attribute = self.factory.partition(":")
        cls: Any = getattr(importlib.import_module(module), attribute)
        store: BookStore = cls(target, threads=threads, read_only=read_only)
        return store


DUCKDB = StoreKind("DuckDB", "oms.store.duck:Store", single_file=True)
POSTGRESQL = StoreKind("PostgreSQL", "oms.store.pg:PgStore", single_file=False)

STORES: dict[str, StoreKind] = {"postgresql": POSTGRESQL, "postgres": POSTGRESQL}
"""Store kinds by URL scheme; anything without a registered scheme is a DuckDB path."""


_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
"""A URL's scheme (RFC 3986), written before ``://``."""
SECRET_PARAMETERS = frozenset({"password", "sslpassword"})
"""Connection parameters of a URL's query that are never printed."""


def scheme(target: str | os.PathLike[str]) -> str:
    """The URL scheme of ``target`` in lower case, or "" for a path."""
    match = _SCHEME.match(os.fspath(target))
    return match.group(1).lower() if match else ""


def kind_of(target: str | os.PathLike[str]) -> StoreKind:
    """The store kind that opens ``target``: a registered URL scheme's, DuckDB's for a
    path. A URL of any other scheme is refused (never taken for a file name)."""
    name = scheme(target)
    if not name:
        return DUCKDB
    if name not in STORES:
        known = ", ".join(f"{s}://" for s in STORES)
        raise StoreError(
            f"{shown(target)}: not a kind of database this oms opens ({name}://): "
            f"a book is a DuckDB file path or a {known} URL"
        )
    return STORES[name]


def is_url(target: str | os.PathLike[str]) -> bool:
    """True when ``target`` names a database server (a registered scheme), not a file."""
    return scheme(target) in STORES


def normalized(target: str | os.PathLike[str]) -> str:
    """``target`` with its URL scheme in lower case (schemes are case-insensitive; the
    drivers are not)."""
    text = os.fspath(target)
    name = scheme(text)
    return name + text[len(name) :] if name else text


def _password_span(text: str) -> tuple[int, int] | None:
    """Where the password of a URL's user part is (start, end), or None.

    As libpq reads a URL, the user part ends at an ``@`` before the first ``/``, ``?``
    or ``#`` -- the password may hold an unencoded ``@``, so the last such one. A
    password holding an unencoded ``/``, ``?`` or ``#`` (a URL libpq cannot use) is
    found too, from the last ``@``, unless what follows the ``:`` is a port (digits)."""
    start = len(scheme(text)) + 3
    stop = min([i for i in (text.find(mark, start) for mark in "/?#") if i != -1], default=len(text))
    at = text.rfind("@", start, stop)
    if at == -1:
        at = text.rfind("@", start)
        if at == -1:
            return None
        colon = text.find(":", start, stop)
        if colon == -1 or text[colon + 1 : stop].isdigit():
            return None
        return colon + 1, at
    colon = text.find(":", start, at)
    return (colon + 1, at) if colon != -1 else None


_SECRET_QUERY = re.compile(r"([?&](?:" + "|".join(sorted(SECRET_PARAMETERS)) + r")=)[^&#]*", re.I)


def shown(target: str | os.PathLike[str]) -> str:
    """``target`` as it may be printed: a URL's password -- in its user part or its
    query -- replaced by ``***``, and nothing else of it changed. Never raises."""
    text = os.fspath(target)
    if not scheme(text):
        return text
    span = _password_span(text)
    if span is not None:
        text = text[: span[0]] + "***" + text[span[1] :]
    return _SECRET_QUERY.sub(lambda m: m.group(1) + "***", text)


def without_password(target: str | os.PathLike[str]) -> str:
    """``target`` with a URL's password left out (user part and query), for what is kept
    on disk: reaching the book again takes the password from the environment
    (``PGPASSWORD``, ``~/.pgpass``). Nothing else of the URL changes. Never raises."""
    text = os.fspath(target)
    if not scheme(text):
        return text
    span = _password_span(text)
    if span is not None:
        text = text[: span[0] - 1] + text[span[1] :]  # the ":" before the password goes too
    base, sep, rest = text.partition("?")
    if not sep:
        return text
    query, hash_sep, fragment = rest.partition("#")
    kept = [pair for pair in query.split("&") if pair.split("=", 1)[0].lower() not in SECRET_PARAMETERS]
    return base + ("?" + "&".join(kept) if kept else "") + hash_sep + fragment


_URL_WORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+")


def urls_in(text: str, how: Callable[[str], str] = shown) -> str:
    """``text`` (a command line, say) with every URL in it passed through ``how``:
    by default, each password masked."""
    return _URL_WORD.sub(lambda match: how(match.group(0)), text)


def schema_version(
    where: str, tables: set[str], fetchone: Callable[[str], Sequence[Any] | None], *,
    newest: int, store: str, thing: str, fresh: str,
) -> int | None:  # fmt: skip
    """A book's schema version, by the one rule both stores keep: None for a database with
    no table at all, else its ``oms_schema`` version (read with ``fetchone``, which runs
    a query and returns its first row); a database of something else, or a
    schema newer than ``newest`` (this oms's), is refused. ``store``: its kind for people;
    ``thing``: what was left unchanged; ``fresh``: what to pass instead."""
    if "oms_schema" not in tables:
        if tables:
            raise StoreError(
                f"{where} is a {store} database of something else (tables: {', '.join(sorted(tables))}); "
                f"pass a new {fresh} for the OMS"
            )
        return None
    row = fetchone("SELECT max(version) FROM oms_schema")
    version = int(row[0]) if row and row[0] is not None else 0
    if version > newest:
        raise SchemaTooNew(
            f"{where} has schema version {version}, newer than this oms ({newest}): "
            f"upgrade the oms package to open it; the {thing} was not changed"
        )
    return version


def open_store(target: str | os.PathLike[str], *, threads: int | None = None, read_only: bool = False) -> BookStore:
    """The store for ``target``: a PostgreSQL URL, else a DuckDB path (or ``":memory:"``).
    Raises StoreError subclasses naming the book and what to do."""
    return kind_of(target).open(normalized(target), threads=threads, read_only=read_only)
