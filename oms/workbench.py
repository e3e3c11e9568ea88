"""``oms lab``: the analyst workbench -- JupyterLab on ``notebooks/`` over one shared book.

Adapter layer. A DuckDB file takes one writer *process*, and an analyst opens the
order-entry and the order-views notebooks side by side (two kernels, two processes). So
no notebook opens the file: the workbench starts ``oms serve --db FILE`` on a free
loopback port with a fresh random token, exports ``OMS_URL`` and ``OMS_API_TOKEN`` to
JupyterLab (its kernels inherit them; ``oms.notebook.session()`` connects to the server),
runs ``jupyter lab``, and stops the server when JupyterLab exits (or on Ctrl-C/SIGTERM).

A database that cannot be used (locked by another process, not a DuckDB file, newer
schema) is reported as one line naming the file and what to do, before JupyterLab
starts -- never as a lock error inside a notebook. ``--db postgresql://...`` serves a
team's PostgreSQL book the same way: the workbench's server is then one writer among
the team's, its log sits with the discovery files, and no file ever holds the URL's
password.

While it runs, the workbench says where the book is: it prints the server's URL and where
its token is, and leaves a *discovery file* -- ``lab-<hash of the database path>.json`` in
``$XDG_RUNTIME_DIR/oms/`` (else ``~/.local/state/oms/``), mode 0600, naming the URL, the
token, the database and the workbench's pid -- which it removes when it exits. ``oms
orders`` and the other gateway commands read it (``find_lab``) to reach the served book
instead of the locked file; a file whose pid is gone is stale, ignored and removed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import oms

URL_VARIABLE = "OMS_URL"
TOKEN_VARIABLE = "OMS_API_TOKEN"
SERVER_START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
DEFAULT_NOTEBOOKS = "notebooks"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", default=oms.DEFAULT_DB,
        help="the shared book: a DuckDB file or a postgresql:// URL (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--notebooks", default=DEFAULT_NOTEBOOKS, help="folder JupyterLab opens (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="JupyterLab's port (default: a free one)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    parser.add_argument(
        "jupyter_args",
        nargs=argparse.REMAINDER,
        help="after --, more arguments for jupyter lab (e.g. -- --IdentityProvider.token=...)",
    )


# ---- the discovery file: where a running workbench's book is --------------------------

DISCOVERY_VERSION = 1
RUNTIME_SUBDIR = "oms"


def runtime_dir() -> Path:
    """The per-user folder of discovery files: ``$XDG_RUNTIME_DIR/oms`` when that variable
    names a folder (private to the user, emptied at logout), else ``~/.local/state/oms``."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isabs(base) and os.path.isdir(base):
        return Path(base) / RUNTIME_SUBDIR
    return Path.home() / ".local" / "state" / RUNTIME_SUBDIR


def book_name(db: str | os.PathLike[str]) -> str:
    """How a workbench names its book: a file by its resolved path, a database server's
    URL without its password (never kept in a file)."""
    from oms.store.base import is_url, normalized, without_password  # on use: oms.store loads DuckDB

    return without_password(normalized(db)) if is_url(db) else str(Path(db).resolve())


def _key(db: str | os.PathLike[str]) -> str:
    return hashlib.sha256(os.fsencode(book_name(db))).hexdigest()[:16]


def discovery_path(db: str | os.PathLike[str]) -> Path:
    """The discovery file of a workbench serving ``db`` (by its ``book_name``)."""
    return runtime_dir() / f"lab-{_key(db)}.json"


@dataclass(frozen=True, slots=True)
class LabBook:
    """A running workbench's shared book, as its discovery file names it."""

    url: str
    token: str
    db: str
    pid: int
    path: Path


def _alive(pid: int) -> bool:
    """True while process ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, someone else's
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc: the signal check is all there is
    return state not in ("Z", "X")


def write_discovery(
    db: str | os.PathLike[str], url: str, token: str, *, pid: int | None = None, server_pid: int | None = None
) -> Path:
    """Write (atomically, mode 0600) the discovery file for ``db``: the server's URL and
    token, the database, the workbench's ``pid`` (default: this process) and the server's.
    Returns its path. Stale files of workbenches that are gone are removed on the way."""
    folder = runtime_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for other in folder.glob("lab-*.json"):
        read_discovery(other)  # removes it when its workbench is gone
    path = discovery_path(db)
    pid = os.getpid() if pid is None else pid
    body = {
        "version": DISCOVERY_VERSION, "url": url, "token": token, "db": book_name(db),
        "pid": pid, "server_pid": server_pid,
    }  # fmt: skip
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)  # whatever the umask
        json.dump(body, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
    return path


def read_discovery(path: Path) -> LabBook | None:
    """The book a discovery file names, or None: missing, unreadable, not ours, readable
    by others, malformed -- or stale (its workbench is gone: the file is removed)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if info.st_mode & 0o077 or (hasattr(os, "geteuid") and info.st_uid != os.geteuid()):
            return None  # not a file this user's workbench wrote: never trust its token
        try:
            body = json.loads(f.read(64 * 1024))
            book = LabBook(str(body["url"]), str(body["token"]), str(body["db"]), int(body["pid"]), path)
        except (ValueError, KeyError, TypeError):
            return None
    if not _alive(book.pid):
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    return book


def find_lab(db: str | os.PathLike[str]) -> LabBook | None:
    """The running workbench serving ``db``, or None."""
    book = read_discovery(discovery_path(db))
    return book if book is not None and book.db == book_name(db) else None


def find_lab_by_url(url: str) -> LabBook | None:
    """The running workbench whose server is at ``url``, or None."""
    url = url.rstrip("/")
    folder = runtime_dir()
    if not folder.is_dir():
        return None
    for path in sorted(folder.glob("lab-*.json")):
        book = read_discovery(path)
        if book is not None and book.url.rstrip("/") == url:
            return book
    return None


def remove_discovery(path: Path, pid: int | None = None) -> None:
    """Remove a discovery file, if it is still the one ``pid`` (default: this process) wrote."""
    pid = os.getpid() if pid is None else pid
    try:
        body = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return
    if isinstance(body, dict) and body.get("pid") == pid:
        with contextlib.suppress(OSError):
            path.unlink()


def cli_folder(db: Path) -> Path | None:
    """The folder where ``oms orders`` (no --db) means ``db``: where DEFAULT_DB resolves to
    it, or None when ``db`` is not at that relative place."""
    folder = db
    for part in reversed(Path(oms.DEFAULT_DB).parts):
        if folder.name != part:
            return None
        folder = folder.parent
    return folder


# ---- processes --------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _stop(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT_S) -> int:
    """SIGTERM, wait, then SIGKILL. Returns the exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    return process.returncode


class SharedBookServer:
    """``oms serve`` as a child process on a free loopback port, with its own token."""

    def __init__(self, db: str | os.PathLike[str], *, env: dict[str, str] | None = None) -> None:
        self.db = str(db)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_urlsafe(24)
        self.env = dict(env if env is not None else os.environ)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    def start(self, log_dir: Path) -> None:
        """Start the server and wait until it answers. Raises oms.StoreError with the
        server's own one-line reason when it cannot start (e.g. DATABASE_LOCKED)."""
        from oms.store.base import is_url

        if is_url(self.db):  # a database server's: the log goes with the discovery files
            log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.log_path = log_dir / f"lab-{_key(self.db)}.serve.log"
        else:
            Path(self.db).parent.mkdir(parents=True, exist_ok=True)
            self.log_path = log_dir / f"{Path(self.db).name}.serve.log"
        env = {**self.env, TOKEN_VARIABLE: self.token}
        command = [sys.executable, "-m", "oms.cli", "serve", "--db", self.db, "--port", str(self.port)]
        command += ["--log-level", "warning"]
        with self.log_path.open("wb") as log:
            # Its own session: a Ctrl-C in the terminal reaches JupyterLab, and the server
            # is stopped after it, not under it.
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise oms.StoreError(self._reason())
            if self.ready():
                return
            time.sleep(0.1)
        self.stop()
        from oms.store.base import shown

        raise oms.StoreError(
            f"the order server for {shown(self.db)} did not answer within {SERVER_START_TIMEOUT_S:.0f} s"
        )

    def ready(self) -> bool:
        import httpx

        try:
            response = httpx.get(
                f"{self.url}/orders", params={"symbol": "READY"}, timeout=1.0,
                headers={"Authorization": f"Bearer {self.token}"},
            )  # fmt: skip
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def _reason(self) -> str:
        from oms.store.base import shown

        text = self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""
        lines = [line.removeprefix("oms serve: ") for line in text.splitlines() if line.strip()]
        return lines[-1] if lines else f"the order server for {shown(self.db)} stopped at start"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def stop(self) -> int | None:
        if self.process is None:
            return None
        return _stop(self.process)

    def __enter__(self) -> SharedBookServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def jupyter_command(notebooks: Path, port: int, no_browser: bool, extra: Sequence[str]) -> list[str]:
    """The ``jupyter lab`` command line: loopback only, rooted at ``notebooks``."""
    command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={notebooks}", "--ServerApp.ip=127.0.0.1"]
    command.append(f"--ServerApp.port={port or free_port()}")
    if no_browser:
        command.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in extra:
        command.append("--allow-root")
    return command + [a for a in extra if a != "--"]


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _say_where(db: str | Path, url: str, token: str, discovery: Path | None) -> None:
    """Tell the terminal where the book is and how to authenticate to it."""
    from oms.store.base import shown

    lines = [f"shared book {shown(db)} served at {url}"]
    if discovery is None:  # no discovery file: the terminal is the only place to say it
        lines.append(f"requests need 'Authorization: Bearer {token}'")
        lines.append(f"from a terminal: oms orders --url {url} --token-file FILE (FILE holding that token)")
    else:
        lines.append(f"requests need 'Authorization: Bearer <token>'; the token is in {discovery} (yours alone, 0600)")
        folder = cli_folder(db) if isinstance(db, Path) else None
        if folder is not None:
            lines.append(f"`oms orders` and the other oms commands run in {folder} use this book by themselves")
        else:
            lines.append(f"from a terminal: oms orders --url {url} (the token is read from that file)")
    for line in lines:
        print(f"oms lab: {line}", file=sys.stderr, flush=True)


def main(args: argparse.Namespace) -> int:
    """Run the workbench until JupyterLab exits. 0 on a clean stop; 1 if the shared book
    cannot be served (the reason is printed as one line)."""
    notebooks = Path(args.notebooks).resolve()
    if not notebooks.is_dir():
        print(f"oms lab: {notebooks} is not a folder", file=sys.stderr)
        return 1
    from oms.store.base import is_url, kind_of, normalized, shown

    try:
        kind_of(args.db)  # a URL of no known kind is refused, never taken for a file name
    except oms.OMSError as e:
        print(f"oms lab: cannot open the shared book: {e.message}", file=sys.stderr)
        return 1
    # A DuckDB file (one writer process: this workbench's server), or a PostgreSQL
    # database (its server is one more writer among the team's).
    db: str | Path = normalized(args.db) if is_url(args.db) else Path(args.db).resolve()
    server = SharedBookServer(db)
    log_dir = runtime_dir() if isinstance(db, str) else db.parent
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    lab: subprocess.Popen[bytes] | None = None
    discovery: Path | None = None
    try:
        try:
            server.start(log_dir)
        except oms.OMSError as e:
            print(f"oms lab: cannot open the shared book: {e.message}", file=sys.stderr)
            other = find_lab(db)
            if other is not None:
                print(f"oms lab: `oms lab` (pid {other.pid}) already serves it at {other.url}", file=sys.stderr)
            if isinstance(db, Path):  # a file has one writer process: who holds it?
                print(
                    "oms lab: close the program using it (another `oms lab` or `oms serve`?), or pass --db",
                    file=sys.stderr,
                )
            return 1
        discovery = discovery_path(db)
        try:
            write_discovery(db, server.url, server.token, server_pid=server.pid)
        except OSError as e:
            print(f"oms lab: cannot write the discovery file {discovery}: {e}", file=sys.stderr)
            discovery = None
        _say_where(db, server.url, server.token, discovery)
        env = {**os.environ, URL_VARIABLE: server.url, TOKEN_VARIABLE: server.token}
        lab = subprocess.Popen(jupyter_command(notebooks, args.port, args.no_browser, args.jupyter_args), env=env)
        lab.wait()
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        if lab is not None:
            _stop(lab)
        if discovery is not None:
            remove_discovery(discovery)
        stopped = server.stop()
        signal.signal(signal.SIGTERM, previous)
        if stopped is not None:
            print(
                f"oms lab: shared book server stopped (exit {stopped}); {shown(db)} released",
                file=sys.stderr,
                flush=True,
            )
