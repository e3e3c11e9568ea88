"""JSON with exact decimals: prices are written as JSON numbers with their exact digits
(never through a float) and read back as Decimal. Pure core; the API, the remote client
and the CLI all go through here.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from oms.model import canonical_decimal, format_ts

# A Decimal travels through json.dumps as a marked string, then the marks are replaced by
# the digits. The nonce keeps any user text from ever looking like a mark.
_NONCE = secrets.token_hex(8)
_MARK = f"\x00decimal-{_NONCE}:"
_MARKED = re.compile(r'"\\u0000decimal-' + _NONCE + r':([-0-9.]+)"')


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _MARK + format(canonical_decimal(value), "f")
    if isinstance(value, datetime):
        return format_ts(value)
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _mark(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _default(value)
    if isinstance(value, dict):
        return {k: _mark(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mark(v) for v in value]
    return value


def dumps(value: Any, *, indent: int | None = None) -> str:
    """``json.dumps`` that writes Decimals as exact JSON numbers."""
    text = json.dumps(_mark(value), default=_default, indent=indent, ensure_ascii=True)
    return _MARKED.sub(r"\1", text)


def loads(text: str | bytes) -> Any:
    """``json.loads`` that reads every non-integer number as an exact Decimal."""
    return json.loads(text, parse_float=Decimal)
