"""``oms lab``: one shared book for every notebook of the workbench, served by one process.

Real processes throughout: the workbench, its ``oms serve`` child, JupyterLab, and two
Python processes standing in for two notebook kernels (they get exactly the environment
JupyterLab hands its kernels).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import lab_process
import pytest

import oms
from oms.store.pgcluster import PASSWORD

pytestmark = pytest.mark.slow

KERNEL_A = """
from oms.notebook import session
book = session()
order = book.gateway.create(symbol="INFY", side="BUY", quantity=10, price="1500", client_order_id="FROM-A")
print(book.shared, book.gateway.target, order.order_id)
"""
KERNEL_B = """
from oms.notebook import backend_check, order_history, session
book = session(demo=True)  # a shared book is never seeded with the demo orders
check = backend_check(book.gateway)
print(book.shared, book.gateway.target, [o.client_order_id for o in book.gateway.orders()],
      list(order_history(book.gateway, 1).frame["order_id"]), check["matches_gateway"].tolist(),
      repr(order_history(book.gateway, 5)).splitlines()[0])
"""


def kernel_environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def run_as_kernel(code: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_both_notebooks_share_one_served_book_and_everything_stops_cleanly(tmp_path: Path) -> None:
    with lab_process.running_lab(tmp_path, ["order_entry.ipynb", "order_views.ipynb"]) as lab:
        children = lab.children()
        assert set(children) == {"server", "lab"}, lab.output()
        env = kernel_environment(children["lab"])
        url = env["OMS_URL"]
        assert url.startswith("http://127.0.0.1:") and env["OMS_API_TOKEN"]

        # the order-entry kernel writes, the order-views kernel sees it: one book
        a = run_as_kernel(KERNEL_A, env)
        assert a == f"True {url} 1"
        b = run_as_kernel(KERNEL_B, env)
        assert b == f"True {url} ['FROM-A'] [1] [True, True, True] no order 5 in this book (it holds 1 order, id 1)"

        # the server wants the token JupyterLab's kernels were given
        assert httpx.get(f"{url}/orders", timeout=5).status_code == 401

        # the file belongs to the server: a direct open is refused, never half-done
        with pytest.raises(oms.DatabaseLocked):
            oms.open(lab.db)

        # a second workbench on the same book says why in one line, and starts no JupyterLab
        second = subprocess.run(
            [sys.executable, "-m", "oms.cli", "lab", "--db", str(lab.db), "--notebooks", str(lab.notebooks),
             "--no-browser"],
            env=lab_process.throwaway_home(tmp_path / "second"), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert second.returncode == 1
        assert "cannot open the shared book" in second.stderr and "Traceback" not in second.stderr

        assert lab.stop() == 0
        for pid in children.values():
            assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{url}/orders", timeout=2)
    assert "shared book server stopped" in lab.output()
    with oms.open(lab.db) as gw:  # released, and durable
        assert [(o.order_id, o.client_order_id) for o in gw.orders()] == [(1, "FROM-A")]


def test_lab_refuses_a_missing_notebooks_folder(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "oms.cli", "lab", "--db", str(tmp_path / "x.duckdb"), "--notebooks",
         str(tmp_path / "nope")],
        capture_output=True, text=True, timeout=60, env={**os.environ, "HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 1 and "is not a folder" in done.stderr
    assert not (tmp_path / "x.duckdb").exists()


def terminal_environment(runtime: Path) -> dict[str, str]:
    """A terminal of the same user beside the lab: no OMS_* variables, its runtime dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMS_") and k != "COLUMNS"}
    return {**env, "XDG_RUNTIME_DIR": str(runtime)}


def oms_command(*argv: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "oms.cli", *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip


def test_the_lab_says_where_its_book_is_and_a_terminal_beside_it_finds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))  # the lab's and this test's; never the real one
    terminal = terminal_environment(runtime)
    with lab_process.running_lab(tmp_path, []) as lab:
        children = lab.children()
        env = kernel_environment(children["lab"])
        url, token = env["OMS_URL"], env["OMS_API_TOKEN"]

        # the discovery file: only the user can read it; it names URL, token, book and pids
        (discovery,) = (runtime / "oms").glob("lab-*.json")
        assert discovery.stat().st_mode & 0o777 == 0o600 and discovery.parent.stat().st_mode & 0o777 == 0o700
        assert json.loads(discovery.read_text()) == {
            "version": 1, "url": url, "token": token, "db": str(lab.db.resolve()), "pid": lab.process.pid,
            "server_pid": children["server"],
        }  # fmt: skip
        said = lab.output()
        assert f"oms lab: shared book {lab.db.resolve()} served at {url}\n" in said
        assert f"'Authorization: Bearer <token>'; the token is in {discovery}" in said and token not in said
        assert f"run in {tmp_path.resolve()} use this book by themselves" in said

        # a terminal in the project folder: no flags, and the commands reach the served book
        created = oms_command("create", "INFY", "BUY", "10", "1500", "--client-order-id", "FROM-SHELL", "--json",
                              cwd=tmp_path, env=terminal)  # fmt: skip
        assert created.returncode == 0, created.stderr
        assert created.stderr == (
            f"oms: {oms.DEFAULT_DB} is served by `oms lab` (pid {lab.process.pid}): using {url} ({discovery})\n"
        )
        listed = oms_command("orders", "--json", cwd=tmp_path, env=terminal)
        assert [o["client_order_id"] for o in json.loads(listed.stdout)] == ["FROM-SHELL"]
        # JupyterLab's own terminals get the kernels' variables, in the notebooks folder
        inside = oms_command("orders", cwd=lab.notebooks, env={**env, "XDG_RUNTIME_DIR": str(runtime)})
        assert inside.returncode == 0 and "FROM-SHELL" in inside.stdout
        assert inside.stderr == f"oms: using the book at {url} (from $OMS_URL)\n"

        # a second workbench on the book is refused, names the first, and leaves its file alone
        second = subprocess.run(
            [sys.executable, "-m", "oms.cli", "lab", "--db", str(lab.db), "--notebooks", str(lab.notebooks),
             "--no-browser"],
            env=lab_process.throwaway_home(tmp_path / "second"), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert second.returncode == 1 and f"`oms lab` (pid {lab.process.pid}) already serves it at {url}" in (
            second.stderr
        )
        assert discovery.exists()
        assert lab.stop() == 0
    assert not discovery.exists()  # removed when the lab exits
    after = oms_command("orders", "--json", cwd=tmp_path, env=terminal)  # the file itself again, said nothing
    assert after.returncode == 0 and after.stderr == ""
    assert [o["client_order_id"] for o in json.loads(after.stdout)] == ["FROM-SHELL"]


def test_the_lab_serves_a_postgresql_book_and_no_file_holds_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_url: str
) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    with oms.open(pg_url) as team:  # a team's book, already in use
        team.create(symbol="TEAM", side="BUY", quantity=1, price="1", client_order_id="FROM-TEAM")
    with lab_process.running_lab(tmp_path, [], db=pg_url) as lab:
        env = kernel_environment(lab.children()["lab"])
        assert run_as_kernel(KERNEL_A, env).split()[0] == "True"  # the kernel reaches the served book
        (discovery,) = (runtime / "oms").glob("lab-*.json")
        assert json.loads(discovery.read_text())["db"] == pg_url.replace(f":{PASSWORD}@", "@")
        said = lab.output()
        assert f"oms lab: shared book {pg_url.replace(PASSWORD, '***')} served at {env['OMS_URL']}" in said
        assert lab.stop() == 0
    with oms.open(pg_url) as team:
        assert [o.client_order_id for o in team.orders()] == ["FROM-TEAM", "FROM-A"]
    for kept in [*runtime.rglob("*"), lab.log, *tmp_path.glob("*.log")]:
        if kept.is_file():
            assert PASSWORD not in kept.read_text(errors="replace"), kept
    assert not discovery.exists() and not (tmp_path / "data").exists()  # no DuckDB file named after the URL
