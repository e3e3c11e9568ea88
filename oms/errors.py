"""The error tree. Every refusal carries a stable machine-readable ``code``.

Pure core. Each boundary translates these once: the REST API into
``{"detail": {"code", "message"[, "errors"]}}`` with the status in ``HTTP_STATUS``, the
remote client back into the same classes (``from_code``), the CLI into ``code: message``,
the widgets into an inline line of text.

    OMSError
    ├── ValidationError          VALIDATION_ERROR           422  bad input; names the field
    ├── OrderNotFound            ORDER_NOT_FOUND            404
    ├── InvalidTransition        INVALID_TRANSITION         409  the lifecycle refuses
    ├── DuplicateClientOrderId   DUPLICATE_CLIENT_ORDER_ID  409
    ├── PriceOutsideLimit        PRICE_OUTSIDE_LIMIT        409  execution worse than the limit
    ├── PayloadTooLarge          PAYLOAD_TOO_LARGE          413  (REST only)
    ├── Unauthorized             UNAUTHORIZED               401  (REST only)
    ├── Forbidden                FORBIDDEN                  403  (REST only) a cross-site request
    ├── UnsupportedMediaType     UNSUPPORTED_MEDIA_TYPE     415  (REST only) a body that is not JSON
    ├── SqlRefused               SQL_REFUSED                400  not one read-only SELECT over the book
    ├── SqlError                 SQL_ERROR                  400  DuckDB could not run it (syntax, a column)
    ├── SqlTimeout               SQL_TIMEOUT                400  ran past the time limit: cancelled
    ├── SqlTooLarge              SQL_TOO_LARGE              400  more rows than a result may have
    ├── InternalError            INTERNAL_ERROR             500  a defect: one command failed unexpectedly
    └── StoreError               STORE_ERROR                503  the database cannot be used
        ├── DatabaseLocked       DATABASE_LOCKED
        ├── NotADatabase         NOT_A_DATABASE
        └── SchemaTooNew         SCHEMA_TOO_NEW
"""

from __future__ import annotations

from typing import Any, ClassVar


class OMSError(Exception):
    """Base of every refusal. ``code`` is stable; ``message`` is for people."""

    code: ClassVar[str] = "OMS_ERROR"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        """The ``detail`` object of the REST error shape."""
        return {"code": self.code, "message": self.message}

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class ValidationError(OMSError):
    """Bad input. ``errors`` has one ``{"field", "message"}`` entry per bad field."""

    code = "VALIDATION_ERROR"
    http_status = 422

    def __init__(self, errors: list[dict[str, str]] | str, field: str | None = None) -> None:
        if isinstance(errors, str):
            errors = [{"field": field or "body", "message": errors}]
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))

    @property
    def fields(self) -> list[str]:
        return [e["field"] for e in self.errors]

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "errors": self.errors}


class OrderNotFound(OMSError):
    code = "ORDER_NOT_FOUND"
    http_status = 404

    def __init__(self, order_id: object) -> None:
        self.order_id = order_id
        super().__init__(f"order {order_id} does not exist")


class InvalidTransition(OMSError):
    code = "INVALID_TRANSITION"
    http_status = 409

    def __init__(self, action: str, status: str, order_id: int | None = None) -> None:
        self.action, self.status, self.order_id = action, status, order_id
        target = f"order {order_id}" if order_id is not None else "order"
        super().__init__(f"cannot {action} {target}: status is {status}")


class DuplicateClientOrderId(OMSError):
    code = "DUPLICATE_CLIENT_ORDER_ID"
    http_status = 409

    def __init__(self, client_order_id: str) -> None:
        self.client_order_id = client_order_id
        super().__init__(f"client_order_id {client_order_id!r} is already used by another order")


class PriceOutsideLimit(OMSError):
    code = "PRICE_OUTSIDE_LIMIT"
    http_status = 409


class PayloadTooLarge(OMSError):
    code = "PAYLOAD_TOO_LARGE"
    http_status = 413


class Unauthorized(OMSError):
    code = "UNAUTHORIZED"
    http_status = 401


class Forbidden(OMSError):
    code = "FORBIDDEN"
    http_status = 403


class UnsupportedMediaType(OMSError):
    code = "UNSUPPORTED_MEDIA_TYPE"
    http_status = 415


class SqlRefused(OMSError):
    """A query that is not one read-only SELECT over the book's tables: nothing ran."""

    code = "SQL_REFUSED"
    http_status = 400


class SqlError(OMSError):
    """DuckDB could not parse or run the query (the message is DuckDB's first line)."""

    code = "SQL_ERROR"
    http_status = 400


class SqlTimeout(OMSError):
    """The query ran past the time limit and was cancelled."""

    code = "SQL_TIMEOUT"
    http_status = 400


class SqlTooLarge(OMSError):
    """The result has more rows than a query may return."""

    code = "SQL_TOO_LARGE"
    http_status = 400


class InternalError(OMSError):
    """A command failed in a way no rule foresaw (a defect). Only that command fails."""

    code = "INTERNAL_ERROR"
    http_status = 500


class StoreError(OMSError):
    """The database cannot be used as asked. The message names the file and what to do."""

    code = "STORE_ERROR"
    http_status = 503


class NotRecorded(StoreError):
    """The database refused the commit and is known to have recorded none of it (the
    connection stayed up): the commands may be tried again, one by one."""


class DatabaseLocked(StoreError):
    code = "DATABASE_LOCKED"


class NotADatabase(StoreError):
    code = "NOT_A_DATABASE"


class SchemaTooNew(StoreError):
    code = "SCHEMA_TOO_NEW"


def _all_subclasses(cls: type[OMSError]) -> list[type[OMSError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out += _all_subclasses(sub)
    return out


ERRORS_BY_CODE: dict[str, type[OMSError]] = {c.code: c for c in _all_subclasses(OMSError)}


def from_code(code: str, message: str, errors: list[dict[str, str]] | None = None) -> OMSError:
    """Rebuild the error a server reported (the remote client's half of the translation)."""
    cls = ERRORS_BY_CODE.get(code, OMSError)
    if cls is ValidationError:
        return ValidationError(errors or message)
    err = cls.__new__(cls)
    OMSError.__init__(err, message)
    if cls is OMSError:
        err.code = code  # type: ignore[misc]  # keep a code this version does not know
    return err
