"""scripts/regenerate_notebooks.py, run for real on small notebooks in tmp_path: byte-identical
reruns, and a refusal to store a notebook whose widget callback failed (``Button.click()``
never raises; the traceback only shows up as an error output)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from test_notebook_hygiene import regen

pytestmark = pytest.mark.slow


def write(path: Path, *sources: str, tags: dict[int, list[str]] | None = None) -> Path:
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    for index, cell_tags in (tags or {}).items():
        nb.cells[index].metadata["tags"] = cell_tags
    nb.metadata["kernelspec"] = {"name": "analyst-env", "display_name": "Analyst", "language": "python"}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nbformat.write(nb, path)
    return path


def test_two_runs_give_byte_identical_files_with_normalized_metadata(tmp_path: Path) -> None:
    path = write(
        tmp_path / "demo.ipynb",
        "import ipywidgets as w\nw.Button(description='Go')",
        "import os, sys\nfor i in range(3):\n    print(i); sys.stdout.flush()\n"
        "print(sorted({'b', 'a'}), os.environ['TZ'])",
        tags={0: ["nbval-ignore-output"]},
    )
    assert regen.main([str(path)]) == 0
    first, first_pair = path.read_bytes(), regen.pair_path(path).read_bytes()
    assert regen.main([str(path)]) == 0
    assert path.read_bytes() == first and regen.pair_path(path).read_bytes() == first_pair
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3" and "widgets" not in nb.metadata
    assert regen.WIDGET_VIEW_MIME not in nb.cells[0].outputs[0]["data"]
    [stream] = nb.cells[1].outputs  # split stream outputs merged into one
    assert stream["text"] == "0\n1\n2\n['a', 'b'] UTC\n"
    assert b'# %% tags=["nbval-ignore-output"]' in first_pair


def test_a_failing_widget_callback_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    path = write(
        tmp_path / "broken.ipynb",
        "import ipywidgets as w\nb = w.Button()\nb.on_click(lambda _: 1 / 0)\nb.click()\nprint('clicked')",
    )
    before = path.read_bytes()
    assert regen.main([str(path)]) == 1
    assert path.read_bytes() == before
    assert not regen.pair_path(path).exists()


def test_an_expected_error_is_allowed_where_the_cell_says_so(tmp_path: Path) -> None:
    path = write(tmp_path / "expected.ipynb", "raise ValueError('shown on purpose')", tags={0: ["raises-exception"]})
    assert regen.main([str(path)]) == 0
    assert nbformat.read(path, as_version=4).cells[0].outputs[0]["ename"] == "ValueError"
