"""The PostgreSQL store: one book that many server processes write (psycopg 3).

Adapter layer. The same schema version and migrations as the DuckDB store (same
version numbers, this dialect's DDL), the same three-column append-only ``event_log``
(the same payload text, refusals included; a trigger refuses UPDATE, DELETE and
TRUNCATE), and ``orders`` -- here a table kept in step by the statement that appends the
events -- with exact ``NUMERIC(16, 4)`` prices and UTC ``TIMESTAMP(3)`` times.

Many writers, one book, and the book's one ``oms_counters`` row says where it ends
(last seq, last order id). A writer decides a batch on what it knows -- the book as of
its last seq -- and hands it to ``oms_place`` (a PL/pgSQL function, schema version 2) in
one round trip (``place``): under the counter row's lock, held only while the server
runs that statement and commits it, the function checks what others committed since
against what the batch read (its orders, its client order ids, its time), and either
appends the events at the next seqs -- the batch's new orders renumbered after the
book's last, so seqs and order ids stay unique, increasing and without gaps in commit
order -- with the orders and the counters, or writes nothing and returns the news, on
which the writer decides again. Decisions and round trips of different processes thus
overlap; only the server's own work on the book is serialized. A writer that keeps
meeting others decides under the lock instead (``writing``: BEGIN, the lock and the
news in one round trip, then the events with the COMMIT). The commit is as the server
has ``synchronous_commit``: on by default, so an acknowledged command survives a crash
of any process and of the server.

Reads go through a second connection. Analytics are DuckDB's: ``cursor()`` hands out a
connection to an in-memory DuckDB copy of the log, brought up to date from PostgreSQL
first (incrementally: the log is append-only and seq follows commit order), so the
``orders``/``order_events`` SQL, the listing and the backend check are the DuckDB ones.

A broken connection (the server restarted) is reopened on next use. Every PostgreSQL
failure leaves this module as a StoreError naming the book (its password hidden) and
what to do; a failure during COMMIT says the command's fate is unknown.
"""

from __future__ import annotations

import json
import re
import select
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg

from oms.errors import NotRecorded, StoreError
from oms.model import Order, OrderEvent
from oms.store import duck
from oms.store.base import Catchup, EventRow, Placement, schema_version, shown

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

SCHEMA_VERSION = duck.SCHEMA_VERSION
ORDER_COLUMNS = duck.ORDER_COLUMNS
_COLUMNS = ", ".join(ORDER_COLUMNS)
_MIGRATION_LOCK = 0x6F6D73  # pg_advisory_xact_lock key while migrating ("oms")
CONNECT_TIMEOUT_S = 10
MIRROR_BATCH_ROWS = 50_000
_PROBES = 4  # reads of an idle writer connection's socket before a commit (see _ready_writer)
IDLE_CHECK_S = 1.0
"""A writer connection unused this long is checked with a round trip before a commit."""

_TYPED_PAYLOAD = ",\n".join(f"(p->>'{name}')::{sql_type} AS {name}" for name, sql_type in duck.PAYLOAD_TYPES.items())

_CHANGED = ("status", "quantity", "price", "version", "executed_quantity", "executed_price", "updated_at")
# An event's payload as one typed record (``json_to_record``: one parse per event, where
# a ``->>`` per field parses the text once each), and the orders column from each field.
_FIELDS = {"accepted": "BOOLEAN", "to_status": "VARCHAR", "event_at": "TIMESTAMP(3)",
           **{name: duck.PAYLOAD_TYPES[name] for name in ORDER_COLUMNS if name in duck.PAYLOAD_TYPES}}  # fmt: skip
_AS_RECORD = f"json_to_record(oms_payload(a.payload)) AS r({', '.join(f'{n} {t}' for n, t in _FIELDS.items())})"
_AS_ORDER = {"order_id": "a.order_id", "status": "r.to_status", "updated_at": "r.event_at",
             **{name: f"r.{name}" for name in ORDER_COLUMNS
                if name in duck.PAYLOAD_TYPES and name != "updated_at"}}  # fmt: skip
assert set(_AS_ORDER) == set(ORDER_COLUMNS)
# A payload as JSON, for PostgreSQL's parser: it refuses the escape \u0000 (a NUL, which a
# refused request may carry: '"symbol": "A\u0000"') in any string it reads, so an
# unescaped \u0000 is read as \u2400 (the symbol for NUL). The log keeps the text as it is.
_PAYLOAD = r"""CREATE FUNCTION oms_payload(payload TEXT) RETURNS json LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT CASE WHEN strpos(payload, '\u0000') = 0 THEN payload::json
                ELSE regexp_replace(payload, '(?<!\\)((?:\\\\)*)\\u0000', '\1\\u2400', 'g')::json END $fn$"""


def _events_view(parsed: str, *, replace: bool) -> str:
    """The typed ``order_events`` view over ``event_log``, each payload read by ``parsed``."""
    return (
        f"CREATE {'OR REPLACE ' if replace else ''}VIEW order_events AS SELECT seq, order_id, {_TYPED_PAYLOAD}, "
        f"p->'request' AS request FROM event_log, LATERAL (SELECT {parsed} AS p) AS parsed"
    )


# The orders the appended events (the CTE ``appended``) leave, as one CTE of a statement.
_PROJECTED = (
    f"projected AS (INSERT INTO orders ({_COLUMNS}) "
    f"SELECT DISTINCT ON (a.order_id) {', '.join(_AS_ORDER[name] for name in ORDER_COLUMNS)} "
    f"FROM appended AS a, {_AS_RECORD} WHERE r.accepted ORDER BY a.order_id, a.seq DESC "
    f"ON CONFLICT (order_id) DO UPDATE SET {', '.join(f'{c} = EXCLUDED.{c}' for c in _CHANGED)} "
    "RETURNING order_id)"
)
# One statement per commit of a writer holding the lock: the events, their orders, the counters.
_APPEND = (
    "WITH appended AS (INSERT INTO event_log (seq, order_id, payload) VALUES {values} "
    f"RETURNING seq, order_id, payload), {_PROJECTED} "
    "UPDATE oms_counters SET last_seq = %s, last_order_id = greatest(%s, (SELECT max(order_id) FROM projected))"
)

# A batch decided on what its writer knew (its last seq ``since``, its last order id
# ``known``), placed in the book in one statement. Under the counter row's lock -- held
# only while this runs and commits, never across a round trip -- the news since ``since``
# (each statement of a VOLATILE function takes a fresh snapshot, so it sees every commit
# made before the lock was ours) is checked against what the batch read: an order it read
# (touched since), a client order id it took (taken since), or an id it named above
# ``known`` (``pinned``: the smallest) that others' creates since may have moved onto one
# of the batch's ``created`` new orders; and the batch must not be late: decided at a time
# before the book's last event (the log stays oldest first). Nothing conflicts: the events
# are appended at the next seqs, the batch's new orders (ids ``known`` + 1 .. ``known`` +
# ``created``; a refusal naming an id beyond keeps it) renumbered after the book's last,
# the orders projected and the counters moved. Else nothing is written. Returns [placed,
# last seq, last order id, touched, taken, last event's time] as of the lock, as JSON text.
_PLACE = (
    """CREATE FUNCTION oms_place(since BIGINT, known BIGINT, batch TEXT) RETURNS TEXT LANGUAGE plpgsql AS $fn$
    DECLARE
        b jsonb := batch::jsonb;
        top oms_counters%ROWTYPE;
        touched BIGINT[] := '{}';
        taken TEXT[] := '{}';
        last_at TIMESTAMP(3);
        placed BOOLEAN;
    BEGIN
        SELECT * INTO top FROM oms_counters FOR UPDATE;
        IF top.last_seq <> since THEN
            touched := ARRAY(SELECT DISTINCT order_id FROM event_log WHERE seq > since AND order_id IS NOT NULL);
            taken := ARRAY(SELECT client_order_id FROM orders WHERE order_id > known AND client_order_id IS NOT NULL);
        END IF;
        last_at := (SELECT (oms_payload(payload)->>'event_at')::TIMESTAMP(3) FROM event_log WHERE seq = top.last_seq);
        placed := NOT (coalesce(last_at > (oms_payload(b->'events'->0->>1)->>'event_at')::TIMESTAMP(3), FALSE)
                       OR touched && ARRAY(SELECT jsonb_array_elements_text(b->'reads')::BIGINT)
                       OR taken && ARRAY(SELECT jsonb_array_elements_text(b->'clients'))
                       OR (top.last_order_id <> known AND coalesce(
                           (b->>'pinned')::BIGINT <= top.last_order_id + (b->>'created')::BIGINT, FALSE)));
        IF placed THEN
            WITH appended AS (
                INSERT INTO event_log (seq, order_id, payload)
                SELECT top.last_seq + t.n,  -- the batch's new orders are ids known + 1 .. known + created
                       CASE WHEN (t.e->>0)::BIGINT BETWEEN known + 1 AND known + (b->>'created')::BIGINT
                            THEN (t.e->>0)::BIGINT + (top.last_order_id - known) ELSE (t.e->>0)::BIGINT END,
                       t.e->>1
                FROM jsonb_array_elements(b->'events') WITH ORDINALITY AS t(e, n)
                RETURNING seq, order_id, payload), """
    + _PROJECTED
    + """
            UPDATE oms_counters SET last_seq = top.last_seq + jsonb_array_length(b->'events'),
                last_order_id = greatest(top.last_order_id, (SELECT max(order_id) FROM projected));
        END IF;
        IF NOT placed THEN  -- only a row lock to release: nothing to wait for the disk for
            PERFORM set_config('synchronous_commit', 'off', TRUE);
        END IF;
        RETURN json_build_array(placed, top.last_seq, top.last_order_id, touched, taken, last_at)::text;
    END $fn$"""
)

# This dialect's DDL, version by version (the same versions as duck.MIGRATIONS).
MIGRATIONS: dict[int, list[str]] = {
    1: [
        "CREATE TABLE oms_schema (version INTEGER NOT NULL, applied_at TIMESTAMP(3) NOT NULL)",
        "CREATE TABLE event_log (seq BIGINT PRIMARY KEY, order_id BIGINT, payload TEXT NOT NULL)",
        "CREATE INDEX event_log_by_order ON event_log (order_id, seq)",
        """CREATE FUNCTION oms_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN RAISE EXCEPTION 'event_log is append-only: % refused', TG_OP; END $$""",
        """CREATE TRIGGER event_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON event_log
           FOR EACH STATEMENT EXECUTE FUNCTION oms_append_only()""",
        _events_view("payload::json", replace=False),
        """CREATE TABLE orders (
            order_id BIGINT PRIMARY KEY, client_order_id VARCHAR UNIQUE, symbol VARCHAR NOT NULL,
            side VARCHAR NOT NULL, order_type VARCHAR NOT NULL, quantity BIGINT NOT NULL,
            price NUMERIC(16, 4), status VARCHAR NOT NULL, version INTEGER NOT NULL,
            executed_quantity BIGINT NOT NULL, executed_price NUMERIC(16, 4),
            created_at TIMESTAMP(3) NOT NULL, updated_at TIMESTAMP(3) NOT NULL)""",
        "CREATE INDEX orders_by_status ON orders (status, order_id)",
        "CREATE INDEX orders_by_symbol ON orders (symbol, order_id)",
        """CREATE TABLE oms_counters (one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
            last_seq BIGINT NOT NULL, last_order_id BIGINT NOT NULL)""",
        "INSERT INTO oms_counters VALUES (TRUE, 0, 0)",
    ],
    2: [_PAYLOAD, _events_view("oms_payload(payload)", replace=True), _PLACE],
}
assert MIGRATIONS.keys() == duck.MIGRATIONS.keys(), "both stores migrate through the same versions"
_READS_FROM = 1
"""The oldest schema a read-only open reads as it is: version 2 adds only what writers call."""

# After a bulk COPY into event_log: the orders of the events seq %s..%s, and the counters.
_PROJECT_SEQS = (
    f"WITH projected AS (INSERT INTO orders ({_COLUMNS}) "
    f"SELECT {', '.join(_AS_ORDER[name] for name in ORDER_COLUMNS)} "
    f"FROM event_log AS a, {_AS_RECORD} WHERE a.seq BETWEEN %s AND %s "
    "RETURNING order_id) "
    "UPDATE oms_counters SET last_seq = %s, last_order_id = greatest(%s, (SELECT max(order_id) FROM projected))"
)

# What a writer needs, table by table (checked when a book is opened for writing).
_WRITE_RIGHTS = {"event_log": ("SELECT", "INSERT"), "orders": ("SELECT", "INSERT", "UPDATE"),
                 "oms_counters": ("SELECT", "UPDATE")}  # fmt: skip
_WRITE_CALLS = ("oms_place(bigint, bigint, text)", "oms_payload(text)")

# The first round trip of a commit under the lock: BEGIN, lock the book's counter row,
# read what others committed after this writer's last known seq ({since}) and the time of
# the book's last event. Statements of one simple query: in READ COMMITTED each takes its
# own snapshot, so those after the lock see every commit made before the lock was ours --
# and none can be made while it is.
_BEGIN = (
    "BEGIN; SELECT last_seq, last_order_id FROM oms_counters FOR UPDATE; "
    "SELECT order_id, p->>'action', p->>'client_order_id' FROM event_log, "
    "LATERAL (SELECT oms_payload(payload) AS p) AS parsed WHERE seq > {since} AND (p->>'accepted')::boolean; "
    "SELECT oms_payload(payload)->>'event_at' FROM event_log WHERE seq = (SELECT last_seq FROM oms_counters)"
)

# What a connection failure means, found in libpq's message (it carries no SQLSTATE).
_CONNECT_PROBLEMS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"password authentication failed|no password supplied|authentication failed", re.I),
     "the server refused the user or password in the URL: check them"),
    (re.compile(r'role "[^"]*" does not exist', re.I), "no such user on that server: check the user in the URL"),
    (re.compile(r'database "[^"]*" does not exist', re.I),
     "no such database on that server: create it first (createdb NAME), or check the URL"),
    (re.compile(r"Connection refused|could not connect|No such file or directory|timeout expired", re.I),
     "cannot reach the PostgreSQL server: start it, or check the host and port in the URL"),
    (re.compile(r"could not translate host name|Name or service not known", re.I),
     "unknown host: check the host in the URL"),
    (re.compile(r"the database system is (starting up|shutting down|in recovery mode)", re.I),
     "the server is starting or stopping: try again in a moment"),
)  # fmt: skip


def _first_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text[:300] if text else type(e).__name__


def _utc(text: str | None) -> datetime | None:
    """An event time as PostgreSQL gives it back (naive UTC text), or None."""
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC)


def _readable(fd: int) -> bool:
    """Whether ``fd`` has something to read now (``poll``: any fd number, where ``select``
    refuses those of 1024 and above, which a busy server process reaches)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


def connect_problem(e: psycopg.Error) -> str:
    """What a failure to connect means, for people."""
    text = str(e)
    for pattern, meaning in _CONNECT_PROBLEMS:
        if pattern.search(text):
            return meaning
    return _first_line(e)


class PgStore:
    """One PostgreSQL database holding the OMS schema (``oms.store.base.BookStore``)."""

    shared = True

    def __init__(self, url: str, *, threads: int | None = None, read_only: bool = False) -> None:
        self.url = url
        self.path = shown(url)
        self.read_only = read_only
        self.lock = threading.RLock()  # the writer connection
        self._read_lock = threading.Lock()
        self._mirror_lock = threading.Lock()
        self._threads = threads
        self._writer: psycopg.Connection[Any] | None = None
        self._writer_used = 0.0  # time.monotonic() of the writer's last statement
        self._reader: psycopg.Connection[Any] | None = None
        self._mirror: duck.Store | None = None
        self._mirrored = self._mirror_folded = 0
        self._last_order_id = 0
        self._staged: tuple[str, list[Any]] | None = None  # the append the COMMIT will carry
        conn = self._connect()
        try:
            if read_only:
                self._check_version(conn, allow_empty=False)
            else:
                self._migrate(conn)
                self._check_write_rights(conn)
        except BaseException:
            conn.close()
            raise
        self._reader = conn

    # ---- connections -------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S, application_name="oms")
        except psycopg.Error as e:
            raise StoreError(f"{self.path}: {connect_problem(e)}") from None
        # Commits rely on READ COMMITTED (each statement of oms_place and _BEGIN sees every
        # commit made before the lock was taken), whatever the database's default.
        settings = ["SET default_transaction_isolation = 'read committed'"]
        if self.read_only:
            settings.append("SET default_transaction_read_only = on")
        try:
            conn.execute("; ".join(settings))  # type: ignore[call-overload]
        except psycopg.Error as e:
            conn.close()
            raise self._failure(e) from None
        return conn

    def _live(self, conn: psycopg.Connection[Any] | None) -> psycopg.Connection[Any]:
        """``conn``, or a new connection when it is missing or broken (the server restarted)."""
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        if conn is not None:
            conn.close()
        return self._connect()

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one read. A connection that turns out broken (the server restarted
        since its last use) is opened again and the read run once more."""
        with self._read_lock:
            for attempt in (1, 2):
                self._reader = conn = self._live(self._reader)
                try:
                    return conn.execute(sql, params).fetchall()  # type: ignore[call-overload, no-any-return]
                except psycopg.OperationalError as e:
                    if attempt == 2 or not conn.broken:
                        raise self._failure(e) from e
                except psycopg.Error as e:
                    raise self._failure(e) from e
        raise AssertionError("unreachable")

    @contextmanager
    def _reading(self) -> Iterator[psycopg.Connection[Any]]:
        self._fetch("SELECT 1")  # a live connection first
        with self._read_lock:
            assert self._reader is not None
            try:
                yield self._reader
            except psycopg.Error as e:
                raise self._failure(e) from e

    def _failure(self, e: psycopg.Error) -> StoreError:
        if isinstance(e, psycopg.OperationalError):
            return StoreError(f"{self.path}: the PostgreSQL server is unreachable ({_first_line(e)[:160]}): "
                              "the command was not recorded; try again once the server is back")  # fmt: skip
        return StoreError(f"{self.path}: {_first_line(e)}")

    # ---- opening -----------------------------------------------------------------------

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", [_MIGRATION_LOCK])  # several workers start at once
                version = self._check_version(conn, allow_empty=True)
                for target in sorted(v for v in MIGRATIONS if v > version):
                    for statement in MIGRATIONS[target]:
                        conn.execute(statement)  # type: ignore[call-overload]
                    conn.execute("INSERT INTO oms_schema VALUES (%s, %s)", [target, duck.naive_utc(datetime.now(UTC))])
        except psycopg.errors.InsufficientPrivilege as e:
            user, why = conn.info.user, e.diag.message_primary or _first_line(e)[:120]
            advice = (  # a new book's tables, or rights on an existing book's
                f"GRANT CREATE ON SCHEMA public TO {user}" if "for schema" in why else "GRANT the user those rights"
            )
            raise StoreError(
                f"{self.path}: the user {user} may not open this book for writing ({why}): "
                f"connect as the database's owner, or {advice}"
            ) from None
        except psycopg.Error as e:
            raise self._failure(e) from None

    def _check_write_rights(self, conn: psycopg.Connection[Any]) -> None:
        """Refuse, at open, a user who could read the book but not write it: otherwise
        every command would fail later (a server answering 503 for good)."""
        checks = " UNION ALL ".join(
            [f"SELECT '{table}', '{right}' WHERE NOT has_table_privilege('{table}', '{right}')"
             for table, rights in _WRITE_RIGHTS.items() for right in rights]
            + [f"SELECT '{call.split('(')[0]}', 'EXECUTE' WHERE NOT has_function_privilege('{call}', 'EXECUTE')"
               for call in _WRITE_CALLS]
        )  # fmt: skip
        try:
            rows = conn.execute(checks).fetchall()  # type: ignore[call-overload]
        except psycopg.Error as e:
            raise self._failure(e) from None
        missing = [f"{right} on {table}" for table, right in rows]
        if missing:
            user = conn.info.user
            raise StoreError(
                f"{self.path}: the user {user} may read this book but not write it (no {', '.join(missing)}): "
                "connect as a user that may (the book's owner), or GRANT those rights; reads such as "
                "`oms orders` need SELECT only"
            )

    def _check_version(self, conn: psycopg.Connection[Any], *, allow_empty: bool) -> int:
        """The database's schema version (0: empty). Refuses a database of something else,
        a newer schema, and (``allow_empty=False``) a database without a book."""
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            ).fetchall()
        }
        version = schema_version(
            self.path, tables, lambda sql: conn.execute(sql).fetchone(),  # type: ignore[call-overload]
            newest=SCHEMA_VERSION, store="PostgreSQL", thing="database", fresh="database",
        )  # fmt: skip
        if version is None:
            if not allow_empty:
                raise StoreError(f"{self.path} holds no OMS book yet (an empty database)")
            return 0
        if version < _READS_FROM and not allow_empty:
            raise StoreError(f"{self.path} has schema version {version}: open it once for writing to upgrade it")
        return version

    # ---- writing -----------------------------------------------------------------------

    @contextmanager
    def writing(self, since: int) -> Iterator[Catchup | None]:
        """One transaction holding the book's counter row: yields what others committed
        after ``since`` (a Catchup even when nothing: it carries the book's last event
        time), commits when the block ends.

        Two round trips while the row is held, since every other writer waits for it:
        BEGIN with the lock and the news (``_BEGIN``), then the appended events and the
        COMMIT, sent together (one pipeline)."""
        with self.lock:
            conn, news = self._begin(since)
            self._staged = None
            try:
                yield news
            except BaseException:
                self._staged = None
                self._rollback(conn)
                raise
            staged, self._staged = self._staged, None
            self._commit(conn, staged)

    def _begin(self, since: int) -> tuple[psycopg.Connection[Any], Catchup | None]:
        """BEGIN, lock the counter row, read the news after ``since``. A connection found
        broken here (nothing sent yet) is opened again, once."""
        for attempt in (1, 2):
            self._writer = conn = self._live(self._writer)
            try:
                cur = conn.execute(_BEGIN.format(since=int(since)))  # type: ignore[call-overload]
                cur.nextset()
                counters = cur.fetchone()
                cur.nextset()
                news = cur.fetchall()
                cur.nextset()
                last = cur.fetchone()
            except psycopg.Error as e:
                self._rollback(conn)
                if attempt == 2 or not conn.broken:
                    raise self._failure(e) from e
                continue
            assert counters is not None
            last_seq, self._last_order_id = int(counters[0]), int(counters[1])
            return conn, Catchup(  # the last event's time even without news: this writer's clock may lag
                seq=last_seq,
                last_order_id=self._last_order_id,
                touched={r[0] for r in news},
                client_order_ids={r[2] for r in news if r[1] == "create" and r[2] is not None},
                last_at=_utc(last[0] if last else None),
            )
        raise AssertionError("unreachable")

    def _commit(self, conn: psycopg.Connection[Any], staged: tuple[str, list[Any]] | None) -> None:
        """The staged append, if any, and COMMIT in one round trip. Refused by the server
        (the connection still up): nothing was recorded. The connection failing: the
        command's fate is unknown."""
        try:
            if staged is None:
                conn.execute("COMMIT")
            else:
                with conn.pipeline():
                    conn.execute(*staged)  # type: ignore[call-overload]
                    conn.execute("COMMIT")
        except psycopg.Error as e:
            failure = self._commit_failure(conn, e)
            if isinstance(failure, NotRecorded):
                self._rollback(conn)
            raise failure from e

    @staticmethod
    def _rollback(conn: psycopg.Connection[Any]) -> None:
        if not conn.closed and not conn.broken:
            try:
                conn.execute("ROLLBACK")
            except psycopg.Error:
                conn.close()

    def place(
        self, since: int, known_order_id: int, rows: Sequence[EventRow], *,
        reads: set[int], client_order_ids: set[str], pinned: int | None, created: int,
    ) -> Placement:  # fmt: skip
        """Commit ``rows`` (decided on the book as of ``since`` and ``known_order_id``)
        in one round trip, unless others changed what they read (``oms_place``). The
        book is locked only while the server runs the statement and commits it, so
        writers' decisions and round trips overlap. Refused by the server (the
        connection up): nothing was recorded. The connection failing: fate unknown."""
        if not rows:
            return Placement(placed=True, news=None)
        batch = json.dumps(
            {"events": [(row[1], row[2]) for row in rows], "reads": sorted(reads),
             "clients": sorted(client_order_ids), "pinned": pinned, "created": created},
            separators=(",", ":"),
        )  # fmt: skip
        with self.lock:
            conn = self._ready_writer()
            try:
                answer = conn.execute("SELECT oms_place(%s, %s, %s)", [since, known_order_id, batch]).fetchone()
            except psycopg.Error as e:
                raise self._commit_failure(conn, e) from e
        assert answer is not None
        placed, seq, last_order_id, touched, taken, last_at = json.loads(answer[0])
        news = None if seq == since else Catchup(seq, last_order_id, set(touched), set(taken))
        return Placement(placed, news, seq_shift=seq - since, id_shift=last_order_id - known_order_id,
                         last_at=_utc(last_at))  # fmt: skip

    def _ready_writer(self) -> psycopg.Connection[Any]:
        """The writer connection, opened again first when it is dead, so that a statement
        that writes is not sent on it (whether such a statement was recorded cannot be
        known): the server closed it (it restarted), which shows on the socket, read
        without a round trip; or, after ``IDLE_CHECK_S`` unused, a middlebox dropped it
        without a word, which one ``SELECT 1`` tells."""
        conn = self._writer
        for _ in range(_PROBES):  # the server spoke unasked: a notice, or its last words and the end
            if conn is None or conn.closed or not _readable(conn.fileno()):
                break
            try:
                conn.pgconn.consume_input()
            except psycopg.OperationalError:
                break  # the connection is closed: opened again below
        if conn is not None and not conn.closed and time.monotonic() - self._writer_used > IDLE_CHECK_S:
            try:  # idle for a while: a firewall may have forgotten it without a word
                conn.execute("SELECT 1")
            except psycopg.Error:
                conn.close()
        self._writer = conn = self._live(conn)
        self._writer_used = time.monotonic()
        return conn

    def _commit_failure(self, conn: psycopg.Connection[Any], e: psycopg.Error) -> StoreError:
        """What a failed commit means: refused by the server with the connection still up,
        nothing was recorded (NotRecorded); the connection failing, its fate is unknown."""
        if not conn.broken and not conn.closed:
            return NotRecorded(self._failure(e).message)
        return StoreError(
            f"{self.path}: the connection failed while committing ({_first_line(e)[:160]}): "
            "the command may or may not have been recorded; read the order to know"
        )

    def append(self, rows: Sequence[EventRow]) -> None:
        """Stage, for the COMMIT of the transaction ``writing`` holds, the ONE statement
        that appends the events, moves each order they accepted to the state its latest
        one left it in (the payload carries it, as in DuckDB's view), and moves the
        counters."""
        if not rows:
            return
        params: list[Any] = [value for row in rows for value in row]
        params += [max(row[0] for row in rows), self._last_order_id]
        sql = _APPEND.format(values=", ".join(["(%s::BIGINT, %s::BIGINT, %s::TEXT)"] * len(rows)))
        with self.lock:
            if self._writer is None or self._staged is not None:
                raise RuntimeError("append runs inside writing(), once per commit")
            self._staged = (sql, params)

    def append_arrow(self, table: pa.Table) -> None:
        """Append a whole Arrow table of create events (``oms.bulk.EVENT_SCHEMA``) and
        their orders, in the transaction ``writing`` holds: the payloads written as the
        DuckDB store writes them (``duck.bulk_log``), COPYed into ``event_log``, then the
        orders projected from them and the counters moved by one statement."""
        if table.num_rows == 0:
            return
        log = duck.bulk_log(table)
        seqs, order_ids, payloads = (log.column(name).to_pylist() for name in ("seq", "order_id", "payload"))
        with self.lock:
            assert self._writer is not None, "append_arrow runs inside writing()"
            try:
                with self._writer.cursor().copy("COPY event_log (seq, order_id, payload) FROM STDIN") as copy:
                    for row in zip(seqs, order_ids, payloads, strict=True):
                        copy.write_row(row)
                self._writer.execute(_PROJECT_SEQS, [seqs[0], seqs[-1], seqs[-1], self._last_order_id])
            except psycopg.Error as e:
                raise self._failure(e) from e

    def fold(self) -> None:
        """Nothing to fold: ``orders`` is a table kept in step."""

    # ---- reading -----------------------------------------------------------------------

    def open_state(self) -> tuple[tuple[int, int, int], set[str]]:
        (row,) = self._fetch("SELECT last_seq, last_order_id FROM oms_counters")
        ids = self._fetch("SELECT client_order_id FROM orders WHERE client_order_id IS NOT NULL")
        return (int(row[0]), int(row[1]), int(row[0])), {r[0] for r in ids}

    def load_order(self, order_id: int) -> Order | None:
        rows = self._fetch(f"SELECT {_COLUMNS} FROM orders WHERE order_id = %s", [order_id])
        return duck.order_from_row(rows[0]) if rows else None

    def load_orders(self, *, status: str | None = None, symbol: str | None = None) -> list[Order]:
        filters = [(name, value) for name, value in (("status", status), ("symbol", symbol)) if value is not None]
        where = ("WHERE " + " AND ".join(f"{name} = %s" for name, _ in filters)) if filters else ""
        rows = self._fetch(f"SELECT {_COLUMNS} FROM orders {where} ORDER BY order_id", [v for _, v in filters])
        return [duck.order_from_row(r) for r in rows]

    def load_events(self, order_id: int | None = None, *, accepted_only: bool = False) -> list[OrderEvent]:
        where, params = ("WHERE order_id = %s", [order_id]) if order_id is not None else ("", [])
        rows = self._fetch(f"SELECT seq, order_id, payload FROM event_log {where} ORDER BY seq", params)
        events = [duck.event_from_row(r) for r in rows]
        return [e for e in events if e.accepted] if accepted_only else events

    def stream(self, query: str, batch_rows: int = MIRROR_BATCH_ROWS) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of ``query`` in lists of at most ``batch_rows``, fetched as they come
        (one snapshot; never the whole result in memory)."""
        with self._reading() as conn:
            batch: list[tuple[Any, ...]] = []
            for row in conn.cursor().stream(query, size=min(batch_rows, 10_000)):  # type: ignore[arg-type]
                batch.append(row)
                if len(batch) >= batch_rows:
                    yield batch
                    batch = []
            if batch:
                yield batch

    # ---- analytics: a DuckDB copy of the log ------------------------------------------------

    def _synced_mirror(self) -> duck.Store:
        """The in-memory DuckDB copy of the book, brought up to date."""
        import pyarrow as pa

        with self._mirror_lock:
            if self._mirror is None:
                self._mirror = duck.Store(duck.MEMORY, threads=self._threads)
            mirror = self._mirror
            query = f"SELECT seq, order_id, payload FROM event_log WHERE seq > {int(self._mirrored)} ORDER BY seq"
            for batch in self.stream(query):
                seqs, order_ids, payloads = zip(*batch, strict=True)
                table = pa.table(
                    {"seq": pa.array(seqs, pa.int64()), "order_id": pa.array(order_ids, pa.int64()),
                     "payload": pa.array(payloads, pa.string())}
                )  # fmt: skip
                mirror.append_log(table)
                self._mirrored = int(seqs[-1])
            if self._mirrored - self._mirror_folded >= MIRROR_BATCH_ROWS:
                mirror.fold()
                self._mirror_folded = self._mirrored
            return mirror

    def arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        return self._synced_mirror().arrow(sql, params)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self._synced_mirror().cursor()

    def close(self) -> None:
        """Close the connections and drop the DuckDB copy (every commit is already durable)."""
        with self.lock, self._read_lock, self._mirror_lock:
            for conn in (self._writer, self._reader):
                if conn is not None:
                    conn.close()
            if self._mirror is not None:
                self._mirror.close()
                self._mirror = None
