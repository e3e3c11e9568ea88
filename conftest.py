"""Root pytest configuration for the strict nbval run over ``notebooks/``.

- nbval compares ``text/plain`` strictly but not ``text/html``: a DataFrame's HTML
  changes with pandas versions while its text does not (see /work/shared/NOTEBOOKS.md).
- Kernels inherit this process's environment: without ``OMS_URL`` every notebook works on
  its scratch book (in-memory DuckDB, simulated clock), as the stored outputs do, even
  when pytest is started from a workbench terminal.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

for _variable in ("OMS_URL", "OMS_API_TOKEN"):
    os.environ.pop(_variable, None)
os.environ["TZ"] = "UTC"
os.environ["PYTHONHASHSEED"] = "0"

NOT_COMPARED = ("text/html",)


@pytest.hookimpl(hookwrapper=True)
def pytest_collect_file(file_path: Any, parent: Any) -> Generator[None, Any, None]:
    outcome = yield
    if file_path.suffix != ".ipynb":
        return
    for collector in outcome.get_result() or []:
        if hasattr(collector, "skip_compare"):
            collector.skip_compare = tuple(collector.skip_compare) + NOT_COMPARED
