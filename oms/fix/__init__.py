"""The FIX 4.4 face of the OMS: the same engine, the same rules, over FIX sessions.

    mapping      the one table: OMS fields/actions/statuses/reasons <-> FIX tags/values
    codec        tag=value encoding, BodyLength/CheckSum, framing (garbled frames dropped)
    state        persisted session state (sqlite3 beside the DuckDB file)
    session      the FIX 4.4 session layer (Logon, Heartbeat, TestRequest, ResendRequest, ...)
    application  NewOrderSingle / Replace / Cancel / Status onto the gateway, reports back
    acceptor     asyncio TCP acceptor over one engine (``python -m oms.fix.serve``)
    gateway      FixGateway: the order gateway over FIX, as an initiator

Adapter layer: nothing here is imported by the core. ``connect`` is what
``oms.connect("fix://127.0.0.1:N?sender=..&target=..")`` dispatches to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from oms.fix.gateway import FixGateway

SCHEME = "fix://"


def is_fix_url(url: str) -> bool:
    """True for a ``fix://`` URL (the FIX gateway), False for anything else (REST)."""
    return url.lower().startswith(SCHEME)


def connect(url: str, **kwargs: Any) -> FixGateway:
    """The gateway of a FIX 4.4 acceptor: ``fix://HOST:PORT?sender=OURS&target=THEIRS``.

    Logs on before returning. Raises ValueError for a malformed URL, SERVER_UNREACHABLE
    when the acceptor cannot be reached or refuses the Logon."""
    from oms.fix.gateway import FixGateway

    return FixGateway.from_url(url, **kwargs)
