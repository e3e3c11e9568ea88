"""``oms lab``: one shared book for every notebook of the workbench, served by one process.

Real processes throughout: the workbench, its ``oms serve`` child, JupyterLab, and two
Python processes standing in for two notebook kernels (they get exactly the environment
JupyterLab hands its kernels).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import lab_process
import pytest

import oms

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
      list(order_history(book.gateway, 5)["order_id"]), check["matches_gateway"].tolist())
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
        assert b == f"True {url} ['FROM-A'] [1] [True, True]"

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
