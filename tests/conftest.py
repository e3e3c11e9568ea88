"""Shared fixtures: a fresh in-memory gateway, a DuckDB file in tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import oms
from oms.engine import Engine


@pytest.fixture
def gw() -> Iterator[Engine]:
    """A fresh in-memory embedded gateway on the simulated clock: ids from 1."""
    with oms.open(":memory:", clock=oms.SimulatedClock()) as gateway:
        yield gateway


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where a test's DuckDB file goes (not created yet)."""
    return tmp_path / "oms.duckdb"
