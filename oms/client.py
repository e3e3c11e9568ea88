"""The order gateway over HTTP: the REST contract of ``oms serve`` behind the same
Python face as the embedded engine (``oms.connect(url)``).

Adapter layer (httpx). One persistent ``httpx.Client`` per gateway (keep-alive). Error
bodies ``{"detail": {"code", "message"[, "errors"]}}`` are mapped back to the same
OMSError subclasses the engine raises (``oms.errors.from_code``), so widgets, views and
certification behave alike on both transports. A server that cannot be reached raises
ServerUnreachable (a StoreError) naming the URL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import httpx

from oms.errors import OMSError, StoreError, from_code
from oms.gateway import PriceInput, create_request, execute_request, modify_request
from oms.jsonio import dumps, loads
from oms.model import Order, OrderEvent

if TYPE_CHECKING:
    import pyarrow as pa

DEFAULT_TIMEOUT = 10.0
PAGE_SIZE = 10_000
"""Orders per request when the gateway lists orders (``GET /orders?limit=``)."""
ARROW_STREAM = "application/vnd.apache.arrow.stream"
_NEXT = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?', re.IGNORECASE)


class ServerUnreachable(StoreError):
    """The server did not answer (refused, timed out, connection dropped)."""

    code = "SERVER_UNREACHABLE"


class RemoteGateway:
    """The gateway of a running server. Thread-safe (httpx's client is)."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.url = url.rstrip("/")
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        self._closed = False

    @property
    def target(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"RemoteGateway({self.url!r})"

    # ---- commands --------------------------------------------------------------------

    def create(
        self,
        *,
        symbol: str,
        side: str,
        quantity: int,
        price: PriceInput | None = None,
        order_type: str = "LIMIT",
        client_order_id: str | None = None,
    ) -> Order:
        """Create a NEW order. Raises VALIDATION_ERROR or DUPLICATE_CLIENT_ORDER_ID."""
        body = create_request(
            symbol=symbol, side=side, quantity=quantity, price=price, order_type=order_type,
            client_order_id=client_order_id,
        )  # fmt: skip
        return Order.from_dict(self._call("POST", "/order", body))

    def modify(self, order_id: int, *, quantity: int | None = None, price: PriceInput | None = None) -> Order:
        """Change quantity and/or price of a NEW order (-> MODIFIED).

        Raises VALIDATION_ERROR, ORDER_NOT_FOUND or INVALID_TRANSITION."""
        return Order.from_dict(self._call("PUT", f"/order/{_id(order_id)}", modify_request(quantity, price)))

    def cancel(self, order_id: int) -> Order:
        """Cancel a NEW order. Raises ORDER_NOT_FOUND or INVALID_TRANSITION."""
        return Order.from_dict(self._call("DELETE", f"/order/{_id(order_id)}"))

    def execute(self, order_id: int, *, price: PriceInput | None = None) -> Order:
        """Fill a NEW or MODIFIED order in full. Raises VALIDATION_ERROR, ORDER_NOT_FOUND,
        INVALID_TRANSITION or PRICE_OUTSIDE_LIMIT."""
        body = execute_request(price) or None  # no price: no body at all
        return Order.from_dict(self._call("POST", f"/order/{_id(order_id)}/execute", body))

    # ---- reads -----------------------------------------------------------------------

    def get(self, order_id: int) -> Order:
        """The order. Raises ORDER_NOT_FOUND (or VALIDATION_ERROR for a bad id)."""
        return Order.from_dict(self._call("GET", f"/order/{_id(order_id)}"))

    def orders(self, *, status: str | None = None, symbol: str | None = None) -> list[Order]:
        """Orders sorted by id, optionally filtered, read page by page. Raises
        VALIDATION_ERROR for a bad filter."""
        return [order for page in self.order_pages(status=status, symbol=symbol) for order in page]

    def order_pages(
        self, *, status: str | None = None, symbol: str | None = None, limit: int = PAGE_SIZE
    ) -> Iterator[list[Order]]:
        """The listing one page (``GET /orders?limit=``) at a time, following each answer's
        ``Link: <...>; rel="next"`` until there is none."""
        params = {k: v for k, v in (("status", status), ("symbol", symbol)) if v is not None}
        url: str | None = "/orders"
        query: dict[str, str] | None = {**params, "limit": str(limit)}
        while url is not None:
            response = self._send("GET", url, params=query)
            yield [Order.from_dict(d) for d in loads(response.content)]
            match = _NEXT.search(response.headers.get("link", ""))
            url, query = (match.group(1), None) if match else (None, None)

    def sql_arrow(self, query: str, params: Sequence[Any] | None = None) -> pa.Table:
        """One read-only SELECT run by the server (``POST /sql``), as Arrow: the same table
        the embedded engine gives. Raises SQL_REFUSED, SQL_ERROR, SQL_TIMEOUT,
        SQL_TOO_LARGE or VALIDATION_ERROR."""
        import pyarrow as pa

        from oms.sqlread import bind_params

        body = {"sql": query, "params": bind_params(params)}
        response = self._send("POST", "/sql", body, headers={"Accept": ARROW_STREAM})
        return pa.ipc.open_stream(response.content).read_all()

    def events(self, order_id: int | None = None) -> list[OrderEvent]:
        """The audit log, oldest first: one order's (ORDER_NOT_FOUND if unknown) or all."""
        path = "/events" if order_id is None else f"/order/{_id(order_id)}/events"
        return [OrderEvent.from_dict(d) for d in self._call("GET", path)]

    # ---- transport -------------------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None) -> Any:
        return loads(self._send(method, path, body, params=params).content)

    def _send(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """The server's answer when it is a success; its refusal raised as the OMSError it names."""
        if self._closed:
            raise StoreError(f"the gateway to {self.url} is closed")
        content = None if body is None else dumps(body)
        headers = dict(headers or {})
        if content is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = self._http.request(method, path, content=content, headers=headers or None, params=params)
        except httpx.TimeoutException as e:
            raise ServerUnreachable(f"{self.url} did not answer {method} {path} in time ({type(e).__name__})") from e
        except httpx.TransportError as e:
            raise ServerUnreachable(
                f"cannot reach {self.url} ({type(e).__name__}: {e}): is `oms serve` running there?"
            ) from e
        if response.is_success:
            return response
        raise _error_from(response)

    def close(self) -> None:
        """Close the connection pool. Idempotent."""
        self._closed = True
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _id(order_id: Any) -> str:
    """An order id for a URL path. Any integer goes to the server (which judges and logs
    it, as the engine does); anything else is refused here with the engine's error."""
    if isinstance(order_id, int) and not isinstance(order_id, bool):
        return str(order_id)
    from oms.validation import validate_order_id

    return str(validate_order_id(order_id))


def _error_from(response: httpx.Response) -> OMSError:
    """The OMSError a refusal body describes (an unexpected body becomes a plain OMSError)."""
    try:
        detail = loads(response.content)["detail"]
        code, message = str(detail["code"]), str(detail["message"])
    except (ValueError, KeyError, TypeError):
        text = response.text.strip().splitlines()[0][:200] if response.text.strip() else response.reason_phrase
        err = OMSError(f"{response.request.method} {response.request.url} answered {response.status_code}: {text}")
        return err
    errors = detail.get("errors") if isinstance(detail, dict) else None
    return from_code(code, message, errors if isinstance(errors, list) else None)


__all__ = ["DEFAULT_TIMEOUT", "RemoteGateway", "ServerUnreachable"]
