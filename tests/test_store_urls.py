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
        ("POSTGRESQL://oms:pw0rd@h/oms", "POSTGRESQL://oms:***@h/oms", "POSTGRESQL://oms@h/oms"),
        ("postgresql://u:P@ssw0rd@h/db", "postgresql://u:***@h/db", "postgresql://u@h/db"),  # an unencoded @
        ("postgresql://u:pa/ss#pw0rd@h/db", "postgresql://u:***@h/db", "postgresql://u@h/db"),
        ("postgresql://h/db?password=pw0rd&password=pw0rd", "postgresql://h/db?password=***&password=***",
         "postgresql://h/db"),
        ("data/oms.duckdb", "data/oms.duckdb", "data/oms.duckdb"),
        # no secret: the URL exactly as given (a --retest starts what it started)
        ("postgresql:///oms", "postgresql:///oms", "postgresql:///oms"),
        ("sqlite:///data/x.db", "sqlite:///data/x.db", "sqlite:///data/x.db"),
        ("postgresql://h:5432/db?options=-c%20a%3Db&application_name=x@y",
         "postgresql://h:5432/db?options=-c%20a%3Db&application_name=x@y",
         "postgresql://h:5432/db?options=-c%20a%3Db&application_name=x@y"),
    ],
)  # fmt: skip
def test_a_password_is_never_printed_nor_kept(url: str, printed: str, kept: str) -> None:
    assert shown(url) == printed and without_password(url) == kept
    assert "pw0rd" not in urls_in(f"oms serve --db {url} --port 8000")
    assert "pw0rd" not in kept


def test_a_url_of_no_known_kind_is_refused_and_never_a_path() -> None:
    assert is_url("postgresql://h/db") and is_url("Postgres://h/db") and not is_url("data/x.duckdb")
    for url in ("mysql://u:pw0rd@h/db", "postgresql+psycopg://u:pw0rd@h/db", "file:///tmp/x.duckdb"):
        with pytest.raises(oms.StoreError, match="not a kind of database this oms opens") as refused:
            kind_of(url)
        assert "pw0rd" not in str(refused.value)
