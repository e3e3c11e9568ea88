"""Every checked notebook is stored as the regeneration script writes it.

nbval passes a never-run notebook silently (cells without an execution count are not
compared), so this checks what nbval cannot: code cells numbered 1..N top to bottom,
normalized metadata, no widget-view entries, no error outputs, and a current jupytext pair.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _regenerate_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("regenerate_notebooks", ROOT / "scripts" / "regenerate_notebooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


regen = _regenerate_module()
NOTEBOOKS = regen.default_paths()
IDS = [str(p.relative_to(ROOT)) for p in NOTEBOOKS]


def test_the_analyst_notebooks_are_checked() -> None:
    names = {p.name for p in NOTEBOOKS}
    assert {"order_entry.ipynb", "order_views.ipynb"} <= names


@pytest.fixture(params=NOTEBOOKS, ids=IDS)
def notebook(request: pytest.FixtureRequest) -> tuple[Path, Any]:
    path: Path = request.param
    return path, nbformat.read(path, as_version=4)


def test_code_cells_ran_once_each_top_to_bottom(notebook: tuple[Path, Any]) -> None:
    _path, nb = notebook
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
    assert counts, "a notebook without code checks nothing"
    assert counts == list(range(1, len(counts) + 1))
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if "execution_count" in output:
                assert output["execution_count"] == cell.execution_count


def test_metadata_is_normalized(notebook: tuple[Path, Any]) -> None:
    _path, nb = notebook
    assert nb.metadata["kernelspec"] == regen.KERNELSPEC
    assert "widgets" not in nb.metadata
    assert "version" not in nb.metadata.get("language_info", {})
    for cell in nb.cells:
        assert not set(cell.metadata) & set(regen.CELL_METADATA_DROPPED), cell.metadata
        for output in cell.get("outputs", []):
            assert regen.WIDGET_VIEW_MIME not in output.get("data", {})
            assert "execution" not in output.get("metadata", {})


def test_no_unexpected_error_outputs(notebook: tuple[Path, Any]) -> None:
    _path, nb = notebook
    assert regen.unexpected_errors(nb) == []


def test_file_is_byte_for_byte_what_the_script_writes(notebook: tuple[Path, Any]) -> None:
    path, nb = notebook
    assert path.read_text(encoding="utf-8") == regen.notebook_text(regen.normalize(nb))
    json.loads(path.read_text(encoding="utf-8"))


def test_jupytext_pair_is_current(notebook: tuple[Path, Any]) -> None:
    path, nb = notebook
    pair = regen.pair_path(path)
    assert pair.exists(), f"run scripts/regenerate_notebooks.py {path.relative_to(ROOT)}"
    assert pair.read_text(encoding="utf-8") == regen.pair_text(nb), "pair is stale: regenerate"
