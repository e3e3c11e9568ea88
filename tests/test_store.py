"""Files the store must refuse -- clearly, naming the file, without changing a byte."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

import oms
from oms.store import SCHEMA_VERSION

HOLDER = """
import sys, oms
gw = oms.open(sys.argv[1])
gw.create(symbol="INFY", side="BUY", quantity=1, price=1)
print("ready", flush=True)
sys.stdin.readline()
gw.close()
"""


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_beside(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


@pytest.fixture
def held_file(db_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """A database file held open by another (real) process."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        yield db_path, holder
    finally:
        holder.communicate(timeout=20)  # closes its stdin: the holder closes the file and exits


def test_a_file_locked_by_another_process_is_refused_naming_file_and_process(
    held_file: tuple[Path, subprocess.Popen[str]],
) -> None:
    path, holder = held_file
    before = digest(path)
    with pytest.raises(oms.DatabaseLocked) as caught:
        oms.open(path)
    assert caught.value.code == "DATABASE_LOCKED"
    assert str(path) in caught.value.message
    assert f"process {holder.pid}" in caught.value.message
    assert "oms.connect" in caught.value.message  # says what to do
    assert digest(path) == before


def test_the_cli_reports_a_locked_file_in_one_line_without_a_traceback(
    held_file: tuple[Path, subprocess.Popen[str]],
) -> None:
    path, _ = held_file
    out = subprocess.run([sys.executable, "-m", "oms.cli", "orders", "--db", str(path)], capture_output=True, text=True)
    assert out.returncode == 1
    assert out.stderr.startswith(f"DATABASE_LOCKED: {path} is in use by process")
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_a_file_that_is_not_a_duckdb_database_is_refused_and_left_alone(db_path: Path) -> None:
    db_path.write_text("order_id,symbol\n1,INFY\n")
    before, beside = digest(db_path), files_beside(db_path)
    with pytest.raises(oms.NotADatabase) as caught:
        oms.open(db_path)
    assert str(db_path) in caught.value.message and "not a DuckDB database" in caught.value.message
    assert digest(db_path) == before and files_beside(db_path) == beside


def test_a_duckdb_database_of_something_else_is_refused_and_left_alone(db_path: Path) -> None:
    con = duckdb.connect(str(db_path))
    con.execute("CREATE TABLE trades (id INTEGER)")
    con.close()
    before, beside = digest(db_path), files_beside(db_path)
    with pytest.raises(oms.StoreError) as caught:
        oms.open(db_path)
    assert str(db_path) in caught.value.message and "trades" in caught.value.message
    assert digest(db_path) == before and files_beside(db_path) == beside


def test_a_file_from_a_newer_schema_is_refused_and_left_alone(db_path: Path) -> None:
    with oms.open(db_path) as gw:
        gw.create(symbol="INFY", side="BUY", quantity=1, price=1)
    con = duckdb.connect(str(db_path))
    con.execute("INSERT INTO oms_schema VALUES (?, now())", [SCHEMA_VERSION + 1])
    con.close()
    before, beside = digest(db_path), files_beside(db_path)
    with pytest.raises(oms.SchemaTooNew) as caught:
        oms.open(db_path)
    assert str(db_path) in caught.value.message
    assert f"schema version {SCHEMA_VERSION + 1}" in caught.value.message and "upgrade" in caught.value.message
    assert digest(db_path) == before and files_beside(db_path) == beside


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(oms.StoreError, match="is a directory"):
        oms.open(tmp_path)


def test_a_missing_parent_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "data" / "nested" / "oms.duckdb"
    with oms.open(path) as gw:
        gw.create(symbol="INFY", side="BUY", quantity=1, price=1)
    assert path.exists()


def test_the_schema_version_is_recorded(db_path: Path) -> None:
    oms.open(db_path).close()
    con = duckdb.connect(str(db_path), read_only=True)
    assert con.execute("SELECT max(version) FROM oms_schema").fetchone() == (SCHEMA_VERSION,)
    con.close()


def test_a_version_1_file_is_read_as_it_is_and_upgraded_by_its_next_writer(db_path: Path) -> None:
    """Version 2 is PostgreSQL's commit function: nothing changes in a DuckDB file, so a
    read needs no upgrade, and a write records the version."""
    with oms.open(db_path) as gw:
        gw.create(symbol="INFY", side="BUY", quantity=1, price=1)
    con = duckdb.connect(str(db_path))
    con.execute("DELETE FROM oms_schema WHERE version > 1")
    con.close()
    with oms.open(db_path, read_only=True) as book:
        assert [o.order_id for o in book.orders()] == [1]
    oms.open(db_path).close()
    con = duckdb.connect(str(db_path), read_only=True)
    assert con.execute("SELECT list(version ORDER BY version) FROM oms_schema").fetchone() == ([1, 2],)
    con.close()


def test_order_events_are_append_only_in_the_file(db_path: Path) -> None:
    """Commands only ever add rows to the log; earlier rows are never rewritten."""
    with oms.open(db_path) as gw:
        order = gw.create(symbol="INFY", side="BUY", quantity=1, price=1)
        snapshot = gw.arrow("SELECT * FROM order_events ORDER BY seq")
        gw.modify(order.order_id, quantity=2)
        gw.execute(order.order_id)
        after = gw.arrow("SELECT * FROM order_events ORDER BY seq")
    assert after.slice(0, snapshot.num_rows).equals(snapshot)
    assert after.num_rows == snapshot.num_rows + 2


def test_a_path_whose_folder_cannot_be_made_is_refused_in_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(oms.StoreError) as caught:
        oms.open(blocker / "oms.duckdb")
    assert str(blocker / "oms.duckdb") in caught.value.message and "writable folder" in caught.value.message


def test_threads_caps_duckdb_workers_and_a_bad_value_opens_nothing(db_path: Path) -> None:
    with oms.open(db_path, threads=1) as gw:
        assert gw._store.fetchone("SELECT current_setting('threads')") == (1,)
        gw.create(symbol="INFY", side="BUY", quantity=1, price="1")
    for bad in (0, -1, True, 1.5, "2"):
        with pytest.raises(ValueError, match="threads must be a positive integer"):
            oms.open(db_path, threads=bad)  # type: ignore[arg-type]
    with oms.open(db_path) as gw:  # nothing was left holding the file
        assert len(gw.orders()) == 1


def test_opening_for_writing_proves_the_folder_writable_and_leaves_no_probe_behind(tmp_path: Path) -> None:
    from oms.store import write_problem

    db = tmp_path / "oms.duckdb"
    assert write_problem(str(db)) is None
    assert files_beside(db) == []  # the probe file was written, synced and removed
    assert write_problem(str(tmp_path / "not" / "yet" / "oms.duckdb")) is None  # judged by tmp_path
    assert not (tmp_path / "not").exists()
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert write_problem(str(blocker / "oms.duckdb")) == f"{blocker} is not a folder"


def test_closing_reports_a_checkpoint_that_failed_and_still_releases_the_file(db_path: Path) -> None:
    gw = oms.open(db_path)
    gw.create(symbol="INFY", side="BUY", quantity=1, price=1)
    real = gw._store._con

    class FailingCheckpoint:
        def execute(self, sql: str, *args: object) -> object:
            if sql == "CHECKPOINT":
                raise duckdb.IOException('Could not write file "x": No space left on device')
            return real.execute(sql, *args)

        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

    gw._store._con = FailingCheckpoint()  # type: ignore[assignment]
    with pytest.raises(oms.StoreError, match="No space left on device"):
        gw.close()
    with oms.open(db_path) as reopened:  # released, and nothing lost (the log is replayed)
        assert len(reopened.orders()) == 1
