"""How a book's URL is told apart from a path, and printed or kept without its password."""

from __future__ import annotations

import pytest

import oms
from oms.store.base import is_url, kind_of, shown, urls_in, without_password


@pytest.mark.parametrize(
    ("url", "printed", "kept"),
    [
        ("postgresql://oms:pw0rd@127.0.0.1:5432/oms", "postgresql://oms:***@127.0.0.1:5432/oms",
         "postgresql://oms@127.0.0.1:5432/oms"),
        ("postgresql://oms@h/db?password=pw0rd&sslmode=disable", "postgresql://oms@h/db?password=***&sslmode=disable",
         "postgresql://oms@h/db?sslmode=disable"),
        ("postgres://h/db?sslmode=require&PASSWORD=pw0rd", "postgres://h/db?sslmode=require&PASSWORD=***",
         "postgres://h/db?sslmode=require"),
        ("postgresql://oms:pw0rd@127.0.0.1:notaport/oms", "postgresql://oms:***@127.0.0.1:notaport/oms",
         "postgresql://oms@127.0.0.1:notaport/oms"),  # a bad port is the server's to refuse, not a crash here
        ("POSTGRESQL://oms:pw0rd@h/oms", "postgresql://oms:***@h/oms", "postgresql://oms@h/oms"),
        ("data/oms.duckdb", "data/oms.duckdb", "data/oms.duckdb"),
    ],
)  # fmt: skip
def test_a_password_is_never_printed_nor_kept(url: str, printed: str, kept: str) -> None:
    assert shown(url) == printed and without_password(url) == kept
    assert "pw0rd" not in urls_in(f"oms serve --db {url} --port 8000")


def test_a_url_of_no_known_kind_is_refused_and_never_a_path() -> None:
    assert is_url("postgresql://h/db") and is_url("Postgres://h/db") and not is_url("data/x.duckdb")
    for url in ("mysql://u:pw0rd@h/db", "postgresql+psycopg://u:pw0rd@h/db", "file:///tmp/x.duckdb"):
        with pytest.raises(oms.StoreError, match="not a kind of database this oms opens") as refused:
            kind_of(url)
        assert "pw0rd" not in str(refused.value)
