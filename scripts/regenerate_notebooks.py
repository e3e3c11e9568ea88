#!/usr/bin/env python
"""Regenerate the stored outputs of the checked notebooks -- the only writer of them.

    .venv/bin/python scripts/regenerate_notebooks.py [NOTEBOOK.ipynb ...]

Default: every ``.ipynb`` under ``notebooks/``. Each notebook runs top to bottom in a
fresh kernel (nbclient, in-process driver) with ``TZ=UTC``, ``PYTHONHASHSEED=0`` and no
``OMS_URL`` (so ``oms.notebook.session()`` gives the scratch book on the simulated clock),
then is normalized so that running this twice gives byte-identical files:

- kernelspec -> python3; no ``metadata.widgets``, no ``language_info.version``;
- no per-cell execution/timing metadata; cell ids made deterministic when missing;
- consecutive stream outputs merged (the kernel splits them by timing);
- no widget-view MIME entries (the ``text/plain`` repr stays; tag such cells
  ``nbval-ignore-output``).

It fails (exit 1, file left untouched) on any error output in a cell not tagged
``raises-exception`` -- including exceptions a widget callback logged during a scripted
``.click()``, which never raise. It also writes the jupytext ``py:percent`` pair
(``NAME.py`` beside ``NAME.ipynb``) for review.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
PAIR_FORMAT = "py:percent"
PAIR_FILTERS = {"notebook_metadata_filter": "-all", "cell_metadata_filter": "tags,-all"}
CELL_METADATA_DROPPED = ("execution", "ExecuteTime", "collapsed", "scrolled", "jupyter", "lines_to_next_cell")
CELL_TIMEOUT_S = 120


class NotebookError(Exception):
    """A notebook produced an unexpected error output (or failed to run)."""


def kernel_environment() -> None:
    """The deterministic environment every kernel inherits."""
    os.environ["TZ"] = "UTC"
    os.environ["PYTHONHASHSEED"] = "0"
    os.environ.pop("OMS_URL", None)
    os.environ.pop("OMS_API_TOKEN", None)
    time.tzset()


def default_paths() -> list[Path]:
    return sorted(p for p in NOTEBOOKS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def unexpected_errors(nb: Any) -> list[str]:
    """One line per error output in a cell not tagged ``raises-exception``."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or "raises-exception" in cell.metadata.get("tags", []):
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append(f"cell {index}: {output.get('ename')}: {output.get('evalue')}")
            elif output.get("output_type") == "stream" and output.get("name") == "stderr":
                text = output.get("text", "")
                if "Traceback" in text or "Error" in text:
                    found.append(f"cell {index}: stderr: {text.strip().splitlines()[-1]}")
    return found


def normalize(nb: Any) -> Any:
    """Strip everything that differs between runs or environments (in place)."""
    nb.metadata.pop("widgets", None)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    language_info = nb.metadata.get("language_info")
    if language_info is not None:
        language_info.pop("version", None)
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("jupytext", None)  # the pair is written by this script, not by jupytext's pairing
    seen: set[str] = set()
    for index, cell in enumerate(nb.cells):
        for key in CELL_METADATA_DROPPED:
            cell.metadata.pop(key, None)
        cell_id = cell.get("id")
        if not cell_id or cell_id in seen:
            cell_id = f"cell-{index:03d}"
            cell["id"] = cell_id
        seen.add(cell_id)
        if cell.cell_type != "code":
            continue
        cell.outputs = coalesce_streams(cell.outputs)
        for output in cell.outputs:
            output.get("metadata", {}).pop("execution", None)
            data = output.get("data")
            if data is not None and WIDGET_VIEW_MIME in data:
                del data[WIDGET_VIEW_MIME]
    return nb


def coalesce_streams(outputs: list[Any]) -> list[Any]:
    """Merge consecutive outputs of one stream: where the kernel splits them depends on timing."""
    merged: list[Any] = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (
            previous is not None
            and output.get("output_type") == "stream"
            and previous.get("output_type") == "stream"
            and previous.get("name") == output.get("name")
        ):
            previous["text"] = "".join(previous["text"]) + "".join(output["text"])
            continue
        if output.get("output_type") == "stream":
            output["text"] = "".join(output["text"])
        merged.append(output)
    return merged


def pair_text(nb: Any) -> str:
    """The jupytext py:percent rendering of ``nb`` used for review."""
    import jupytext

    paired = copy.deepcopy(nb)
    paired.metadata["jupytext"] = dict(PAIR_FILTERS)
    text: str = jupytext.writes(paired, fmt=PAIR_FORMAT)
    return text


def pair_path(path: Path) -> Path:
    return path.with_suffix(".py")


def write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def notebook_text(nb: Any) -> str:
    import nbformat

    return nbformat.writes(nb) + "\n"


def regenerate(path: Path) -> bool:
    """Run one notebook and store its normalized outputs and pair. Returns True if changed."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        record_timing=False,
        allow_errors=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    try:
        client.execute()
    except CellExecutionError as e:
        raise NotebookError(f"{path}: a cell failed:\n{e}") from None
    problems = unexpected_errors(nb)
    if problems:
        raise NotebookError(f"{path}: unexpected error output:\n  " + "\n  ".join(problems))
    normalize(nb)
    nbformat.validate(nb)
    changed = write_if_changed(path, notebook_text(nb))
    changed |= write_if_changed(pair_path(path), pair_text(nb))
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: every .ipynb under notebooks/)")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.paths] or default_paths()
    if not paths:
        print("no notebooks found", file=sys.stderr)
        return 1
    kernel_environment()
    failed = 0
    for path in paths:
        started = time.monotonic()
        try:
            changed = regenerate(path)
        except (NotebookError, OSError) as e:
            print(f"FAIL {e}", file=sys.stderr)
            failed += 1
            continue
        rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        state = "updated" if changed else "unchanged"
        print(f"ok   {rel} ({state}, {time.monotonic() - started:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
