"""The command line: thin, documented, one line per refusal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import oms
from conftest import ServeProcess
from oms.cli import build_parser, main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name in commands:
        with pytest.raises(SystemExit) as exit_:
            main([name, "--help"])
        assert exit_.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: oms {name}")


def test_create_cancel_and_list_through_the_cli(capsys: pytest.CaptureFixture[str], db_path: Path) -> None:
    db = str(db_path)
    assert run(capsys, "create", "INFY", "BUY", "100", "1500.25", "--db", db)[0] == 0
    assert run(capsys, "cancel", "1", "--db", db)[0] == 0
    code, out, _ = run(capsys, "orders", "--db", db, "--json")
    assert code == 0
    (order,) = json.loads(out)
    assert (order["order_id"], order["status"], order["price"]) == (1, "CANCELLED", 1500.25)
    assert '"price": 1500.25' in out  # an exact JSON number, not a string


def test_tables_show_timestamps_as_the_api_writes_them_and_blanks_for_missing_values(
    capsys: pytest.CaptureFixture[str], db_path: Path
) -> None:
    db = str(db_path)
    run(capsys, "create", "INFY", "BUY", "100", "1500.25", "--db", db)
    run(capsys, "modify", "1", "--quantity", "0", "--db", db)  # refused, logged
    order = json.loads(run(capsys, "orders", "--db", db, "--json")[1])[0]
    code, out, _ = run(capsys, "orders", "--db", db)
    header, row = out.splitlines()
    assert code == 0 and header.split()[0] == "order_id"
    assert order["created_at"] in row and order["created_at"].endswith("Z")
    assert "<NA>" not in row and "NaT" not in row and "+00:00" not in row
    code, out, _ = run(capsys, "events", "1", "--db", db)
    assert code == 0 and len(out.splitlines()) == 3
    assert "<NA>" not in out and "VALIDATION_ERROR" in out


def test_a_refusal_prints_code_and_message_and_exits_1(capsys: pytest.CaptureFixture[str], db_path: Path) -> None:
    db = str(db_path)
    run(capsys, "create", "INFY", "BUY", "100", "1500.25", "--db", db)
    run(capsys, "execute", "1", "--db", db)
    code, out, err = run(capsys, "cancel", "1", "--db", db)
    assert (code, out, err) == (1, "", "INVALID_TRANSITION: cannot cancel order 1: status is EXECUTED\n")
    code, _, err = run(capsys, "create", "IN FY", "HOLD", "0", "--db", db)
    assert code == 1 and err.startswith("VALIDATION_ERROR: symbol:")


def test_events_show_refused_commands(capsys: pytest.CaptureFixture[str], db_path: Path) -> None:
    db = str(db_path)
    run(capsys, "create", "INFY", "BUY", "100", "1500.25", "--db", db)
    run(capsys, "modify", "1", "--quantity", "0", "--db", db)
    code, out, _ = run(capsys, "events", "1", "--db", db, "--json")
    events = json.loads(out)
    assert code == 0 and [(e["action"], e["accepted"], e["reason"]) for e in events] == [
        ("create", True, None),
        ("modify", False, "VALIDATION_ERROR"),
    ]


def test_lifecycle_prints_the_table_and_the_diagram(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "lifecycle")[1].startswith("| from \\ action | modify | cancel | execute |")
    assert run(capsys, "lifecycle", "--format", "mermaid")[1].startswith("stateDiagram-v2")


def test_listing_a_missing_database_says_so_and_creates_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "typo" / "oms.duckdb"
    code, _, err = run(capsys, "orders", "--db", str(missing))
    assert code == 1 and err.startswith(f"STORE_ERROR: {missing}: no such database")
    assert not (tmp_path / "typo").exists()


# ---- a quick start: lazy imports (real processes, `-X importtime`) --------------------

HEAVY = {"duckdb", "pandas", "pyarrow", "numpy", "httpx", "fastapi", "uvicorn", "pydantic", "ipywidgets"}


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any OMS_* variable or $COLUMNS, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMS_") and k != "COLUMNS"}
    return {**env, **extra}


def oms_process(
    *argv: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "oms.cli", *argv], capture_output=True, text=True, timeout=60,
                          cwd=cwd, env=env if env is not None else clean_env())  # fmt: skip


def imported(*argv: str, env: dict[str, str] | None = None) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """The top-level packages a real ``python -m oms.cli ARGV`` imported, and its result."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "oms.cli", *argv], capture_output=True,
                          text=True, timeout=60, env=env if env is not None else clean_env())  # fmt: skip
    names = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in done.stderr.splitlines() if "|" in line}
    return names, done


def test_help_lists_every_command_and_imports_no_heavy_library() -> None:
    names, done = imported("--help")
    assert done.returncode == 0 and done.stdout.startswith("usage: oms")
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert all(f"\n    {name}" in done.stdout for name in commands), done.stdout
    assert names & HEAVY == set() and "oms" in names
    assert not {"oms.certification", "oms.server", "oms.workbench"} & {
        line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if "|" in line
    }
    names, done = imported("lifecycle")
    assert done.returncode == 0 and names & HEAVY == set()
    version = oms_process("--version")
    assert (version.returncode, version.stdout) == (0, f"oms {oms.__version__}\n")


def test_orders_on_a_file_load_the_engine_but_no_dataframe_or_http_library(db_path: Path) -> None:
    with oms.open(db_path) as gw:
        gw.create(symbol="INFY", side="BUY", quantity=100, price="1500.25")
    names, done = imported("orders", "--db", str(db_path))
    assert done.returncode == 0 and "INFY" in done.stdout
    assert "duckdb" in names and names & {"pandas", "pyarrow", "numpy", "httpx", "fastapi"} == set()


def test_orders_over_a_server_load_the_client_but_no_database_or_dataframe_library(
    serve: Callable[..., ServeProcess], db_path: Path
) -> None:
    server = serve(db_path)
    with server.connect() as gw:
        gw.create(symbol="TCS", side="SELL", quantity=5, price="3000")
    names, done = imported("orders", "--url", server.url)
    assert done.returncode == 0 and "TCS" in done.stdout
    assert "httpx" in names and names & {"duckdb", "pandas", "pyarrow", "numpy", "fastapi"} == set()


# ---- tables that fit the terminal --------------------------------------------------------

ALL_ORDER_COLUMNS = ["order_id", "client_order_id", "symbol", "side", "order_type", "quantity", "price", "status",
                     "version", "executed_quantity", "executed_price", "created_at", "updated_at"]  # fmt: skip


def small_book(capsys: pytest.CaptureFixture[str], db: str) -> None:
    run(capsys, "create", "INFY", "BUY", "100", "1500.25", "--db", db, "--client-order-id", "DESK-1")
    run(capsys, "create", "TCS", "SELL", "10", "3000", "--db", db)
    run(capsys, "execute", "2", "--price", "3001.5", "--db", db)
    run(capsys, "cancel", "2", "--db", db)  # refused: a message in the audit log


def test_a_table_fits_the_width_by_hiding_columns_and_wide_shows_them_all(
    capsys: pytest.CaptureFixture[str], db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = str(db_path)
    small_book(capsys, db)
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = run(capsys, "orders", "--db", db)
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3 and max(map(len, lines)) <= 80, out
    assert lines[0].split()[:6] == ["order_id", "symbol", "side", "quantity", "price", "status"]
    assert "1500.25" in lines[1] and "3001.5" in lines[2]  # prices as entered, never cut
    hidden = [c for c in ALL_ORDER_COLUMNS if c not in lines[0].split()]
    assert err.startswith(f"oms: {len(hidden)} columns hidden to fit 80 characters (") and "--wide" in err
    assert all(c in err for c in hidden)

    code, out, err = run(capsys, "orders", "--db", db, "--wide")
    assert code == 0 and out.splitlines()[0].split() == ALL_ORDER_COLUMNS and err == ""
    monkeypatch.delenv("COLUMNS")  # a pipe or a file (not a terminal): every column
    code, out, err = run(capsys, "orders", "--db", db)
    assert code == 0 and out.splitlines()[0].split() == ALL_ORDER_COLUMNS and err == ""


def test_the_audit_log_wraps_its_messages_to_fit(
    capsys: pytest.CaptureFixture[str], db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = str(db_path)
    small_book(capsys, db)
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run(capsys, "events", "--db", db)
    lines = out.splitlines()
    assert code == 0 and max(map(len, lines)) <= 80 and lines[0].split()[-1] == "message"
    assert len(lines) > 5  # four events and a header: the refusal's message took two lines
    assert " ".join(" ".join(lines[4:]).split()).endswith("cannot cancel order 2: status is EXECUTED")


def test_a_table_printed_to_a_terminal_fits_the_terminal(capsys: pytest.CaptureFixture[str], db_path: Path) -> None:
    import fcntl
    import pty
    import select
    import struct
    import termios

    small_book(capsys, str(db_path))
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 60, 0, 0))
    process = subprocess.Popen([sys.executable, "-m", "oms.cli", "orders", "--db", str(db_path)],
                               stdin=follower, stdout=follower, stderr=follower, env=clean_env())  # fmt: skip
    os.close(follower)
    output = b""
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not select.select([leader], [], [], 1)[0]:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: every writer is gone
                break
            if not chunk:
                break
            output += chunk
        assert process.wait(10) == 0
    finally:
        os.close(leader)
        if process.poll() is None:
            process.kill()
            process.wait(5)
    lines = output.decode().replace("\r", "").splitlines()
    assert lines[0].split()[:2] == ["order_id", "symbol"] and max(map(len, lines[:3])) <= 60, lines
    assert "hidden to fit 60 characters" in lines[3]


# ---- which book: --db, --url, $OMS_URL, or the book of a running `oms lab` --------------


def served_default_book(
    tmp_path: Path, serve: Callable[..., ServeProcess], monkeypatch: pytest.MonkeyPatch
) -> tuple[ServeProcess, Path, dict[str, str]]:
    """A real `oms serve` (with a token) holding ``tmp_path/data/oms.duckdb`` -- the default
    database of a terminal in ``tmp_path`` -- with one order in it, and the environment
    of that terminal (its own private runtime dir)."""
    (tmp_path / "data").mkdir()
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    server = serve(tmp_path / oms.DEFAULT_DB, token="lab-token")
    with server.connect() as gw:
        gw.create(symbol="INFY", side="BUY", quantity=100, price="1500.25", client_order_id="FROM-LAB")
    return server, runtime, clean_env(XDG_RUNTIME_DIR=str(runtime))


def test_commands_beside_a_running_lab_use_its_server_and_say_so_in_one_line(
    tmp_path: Path, serve: Callable[..., ServeProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, runtime, env = served_default_book(tmp_path, serve, monkeypatch)
    from oms.workbench import write_discovery

    discovery = write_discovery(tmp_path / oms.DEFAULT_DB, server.url, "lab-token", pid=server.proc.pid)
    assert discovery.parent == runtime / "oms" and discovery.stat().st_mode & 0o777 == 0o600

    done = oms_process("orders", "--json", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert [o["client_order_id"] for o in json.loads(done.stdout)] == ["FROM-LAB"]
    assert done.stderr == (
        f"oms: {oms.DEFAULT_DB} is served by `oms lab` (pid {server.proc.pid}): using {server.url} ({discovery})\n"
    )
    created = oms_process("create", "TCS", "SELL", "10", "3000", "--json", cwd=tmp_path, env=env)
    assert created.returncode == 0 and json.loads(created.stdout)[0]["order_id"] == 2
    # --url alone: the token comes from the discovery file of the lab serving that URL
    listed = oms_process("orders", "--url", server.url, "--json", cwd=tmp_path, env=env)
    assert listed.returncode == 0 and listed.stderr == "" and len(json.loads(listed.stdout)) == 2
    token_file = tmp_path / "token"
    token_file.write_text("lab-token\n")
    events = oms_process("events", "2", "--url", server.url, "--token-file", str(token_file), cwd=tmp_path,
                         env=clean_env())  # fmt: skip
    assert events.returncode == 0 and "create" in events.stdout
    wrong = oms_process("orders", "--url", server.url, "--token", "nope", cwd=tmp_path, env=env)
    assert wrong.returncode == 1 and wrong.stderr.startswith("UNAUTHORIZED: ")
    missing = oms_process("orders", "--url", server.url, "--token-file", str(tmp_path / "nope"), cwd=tmp_path, env=env)
    assert missing.returncode == 2 and missing.stderr.startswith("oms orders: cannot read the token file ")


def test_an_explicit_db_wins_over_a_running_lab_and_its_refusal_says_where_the_book_is(
    tmp_path: Path, serve: Callable[..., ServeProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, _, env = served_default_book(tmp_path, serve, monkeypatch)
    from oms.workbench import write_discovery

    write_discovery(tmp_path / oms.DEFAULT_DB, server.url, "lab-token", pid=server.proc.pid)
    done = oms_process("orders", "--db", oms.DEFAULT_DB, cwd=tmp_path, env=env)
    assert done.returncode == 1 and len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("DATABASE_LOCKED: ") and f"pass --url {server.url} instead of --db" in done.stderr
    other = oms_process("create", "WIPRO", "BUY", "1", "400", "--db", "other.duckdb", "--json", cwd=tmp_path, env=env)
    assert other.returncode == 0 and other.stderr == "" and json.loads(other.stdout)[0]["order_id"] == 1


def test_oms_url_in_the_environment_names_the_book_and_an_explicit_db_still_wins(
    tmp_path: Path, serve: Callable[..., ServeProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, _, env = served_default_book(tmp_path, serve, monkeypatch)
    elsewhere = tmp_path / "notebooks"  # a JupyterLab terminal: the lab's variables, another folder
    elsewhere.mkdir()
    env.update(OMS_URL=server.url, OMS_API_TOKEN="lab-token")
    done = oms_process("orders", cwd=elsewhere, env=env)
    assert done.returncode == 0 and "FROM-LAB" in done.stdout
    assert done.stderr == f"oms: using the book at {server.url} (from $OMS_URL)\n"
    own = oms_process("orders", "--db", "own.duckdb", cwd=elsewhere, env=env)
    assert own.returncode == 1 and own.stderr.startswith("STORE_ERROR: own.duckdb: no such database")


def test_a_stale_or_foreign_discovery_file_is_never_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from oms.workbench import discovery_path, write_discovery

    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.chdir(tmp_path)
    run(capsys, "create", "INFY", "BUY", "100", "1500.25", "--db", oms.DEFAULT_DB)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = write_discovery(oms.DEFAULT_DB, "http://127.0.0.1:9", "t", pid=int(gone.stdout))
    done = oms_process("orders", cwd=tmp_path, env=clean_env(XDG_RUNTIME_DIR=str(runtime)))
    assert done.returncode == 0 and "INFY" in done.stdout and done.stderr == ""  # the file itself
    assert not stale.exists()  # the lab that wrote it is gone: removed

    foreign = write_discovery(oms.DEFAULT_DB, "http://127.0.0.1:9", "t", pid=os.getpid())
    assert foreign == discovery_path(oms.DEFAULT_DB)
    foreign.chmod(0o644)  # readable by others: not a file a workbench of this user left
    done = oms_process("orders", cwd=tmp_path, env=clean_env(XDG_RUNTIME_DIR=str(runtime)))
    assert done.returncode == 0 and "INFY" in done.stdout and done.stderr == ""


# ---- a read leaves the file as it found it (issue 10: 14) ------------------------------

KILLED_WRITER = """
import os, signal, sys, oms
gw = oms.open(sys.argv[1])
for quantity in (1, 2, 3):
    gw.create(symbol="INFY", side="BUY", quantity=quantity, price="10")
gw.cancel(2)
os.kill(os.getpid(), signal.SIGKILL)  # no close: the commits stay in the write-ahead log
"""


def killed_writer(db: Path) -> None:
    done = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(db)], capture_output=True, timeout=60)
    assert done.returncode == -9, done.stderr
    assert Path(f"{db}.wal").exists()


def as_found(db: Path) -> dict[str, tuple[bytes, int]]:
    """Every file in the database's folder: its bytes and its mtime."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(db.parent.iterdir())}


def test_a_read_command_leaves_the_file_and_its_write_ahead_log_as_it_found_them(db_path: Path) -> None:
    killed_writer(db_path)
    before = as_found(db_path)
    orders = oms_process("orders", "--db", str(db_path), "--json")
    assert orders.returncode == 0, orders.stderr
    assert [(o["order_id"], o["status"]) for o in json.loads(orders.stdout)] == [
        (1, "NEW"), (2, "CANCELLED"), (3, "NEW")
    ]  # fmt: skip
    events = oms_process("events", "--db", str(db_path), "--json")
    assert events.returncode == 0 and len(json.loads(events.stdout)) == 4, events.stderr
    one = oms_process("events", "2", "--db", str(db_path))
    assert one.returncode == 0 and "CANCELLED" in one.stdout, one.stderr
    assert as_found(db_path) == before  # the same files, bytes and mtimes: nothing written
    # A write command still folds the log into the file, as before.
    assert oms_process("cancel", "1", "--db", str(db_path)).returncode == 0


def test_a_write_ahead_log_a_read_only_open_cannot_replay_is_one_line_and_changes_nothing(db_path: Path) -> None:
    killed_writer(db_path)  # the book is in the log alone: the file was never checkpointed
    Path(f"{db_path}.wal").write_bytes(b"\x00garbage, not a DuckDB log\xff" * 100)
    before = as_found(db_path)
    done = oms_process("orders", "--db", str(db_path))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("STORE_ERROR: "), done.stderr
    assert f"{db_path}.wal" in done.stderr and "cannot be replayed by a read-only open" in done.stderr
    assert as_found(db_path) == before


def test_a_read_only_gateway_reads_and_refuses_every_command_without_writing(db_path: Path) -> None:
    with oms.open(db_path) as gw:
        order = gw.create(symbol="INFY", side="BUY", quantity=1, price="10")
    before = as_found(db_path)
    with oms.open(db_path, read_only=True) as reader:
        assert reader.orders() == [order] and reader.get(1) == order and len(reader.events()) == 1
        for command in (
            lambda: reader.create(symbol="INFY", side="BUY", quantity=1, price="10"),
            lambda: reader.cancel(1),
            lambda: reader.bulk_create([{"symbol": "A", "side": "BUY", "quantity": 1, "price": "1"}]),
        ):
            with pytest.raises(oms.StoreError, match="open read-only"):
                command()
    assert as_found(db_path) == before
