"""The one rule for bytes that go into a head fastlb writes: no CR, LF or NUL.

Header values, status lines and ``Location`` targets built from samples, rules or the
configuration pass through ``safe_value``; the worker loop checks every rewritten header
list once more before it writes it (``fields_safe`` in ``fastlb/loop/http_message.pxi``).  A value that fails
ends its request with an error (500 for a request rule, 502 for a response rule), never
with a header split in two.
"""
from __future__ import annotations

FORBIDDEN = (b"\r", b"\n", b"\0")


class HeaderValueError(ValueError):
    """A value holds CR, LF or NUL and cannot be written into a head."""


def is_safe(value: bytes) -> bool:
    return not any(c in value for c in FORBIDDEN)


def safe_value(value: bytes, what: str = "header value") -> bytes:
    if not is_safe(value):
        raise HeaderValueError(f"{what} holds CR, LF or NUL")
    return value
