"""Time and size values as HAProxy writes them (``5s``, ``200ms``, ``16k``)."""
from __future__ import annotations

import re
from typing import Optional

_TIME_RE = re.compile(r"^([0-9]+)(us|ms|s|m|h|d)?$")
_TIME_MS = {"us": 0.001, "ms": 1, None: 1, "s": 1000, "m": 60_000, "h": 3_600_000,
            "d": 86_400_000}
_SIZE_RE = re.compile(r"^([0-9]+)([kKmMgG])?$")
_SIZE_MUL = {None: 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}

# HAProxy stores timeouts as signed 32-bit millisecond ticks.
MAX_TIME_MS = 2 ** 31 - 1


def parse_time_ms(text: str) -> int:
    """Milliseconds for ``text``; a bare number is milliseconds."""
    match = _TIME_RE.match(text)
    if not match:
        raise ValueError(f"unexpected character in time value '{text}'"
                         " (expected a number with optional unit us, ms, s, m, h or d)")
    value = int(match.group(1)) * _TIME_MS[match.group(2)]
    ms = int(value) if value >= 1 or value == 0 else 1  # round sub-ms values up to 1 ms
    if ms > MAX_TIME_MS:
        raise ValueError(f"timer overflow in '{text}' (maximum is 2147483647 ms, ~24.8 days)")
    return ms


_TIME_US = {"us": 1, "ms": 1000, "s": 1_000_000, None: 1_000_000, "m": 60_000_000,
            "h": 3_600_000_000, "d": 86_400_000_000}


def tcp_user_timeout(option: str, text: Optional[str]) -> int:
    """The ``tcp-ut`` delay of a bind or server line (TCP_USER_TIMEOUT, ms), checked with
    HAProxy's messages."""
    if not text:
        raise ValueError(f"'{option}' : missing TCP User Timeout value")
    match = _TIME_RE.match(text)
    if not match:
        raise ValueError(f"'{option}' : expects a positive delay in milliseconds")
    value = int(match.group(1)) * _TIME_MS[match.group(2)]
    if value > MAX_TIME_MS:
        raise ValueError(f"timer overflow in argument '{text}' to '{option}' (maximum value is "
                         "2147483647 ms or ~24.8 days)")
    return int(value) if value >= 1 or value == 0 else 1     # sub-ms delays round up


def parse_time_s(text: str) -> int:
    """Seconds for ``text`` (a bare number is seconds), rounded up as HAProxy's
    parse_time_err(TIME_UNIT_S) does: ``500ms`` is 1."""
    match = _TIME_RE.match(text)
    if not match:
        raise ValueError(f"unexpected character in time value '{text}'"
                         " (expected a number with optional unit us, ms, s, m, h or d)")
    micros = int(match.group(1)) * _TIME_US[match.group(2)]
    seconds = -(-micros // 1_000_000)
    if seconds >= 2 ** 31:
        raise ValueError(f"timer overflow in '{text}', maximum value is 2147483647 s (~68 years)")
    return seconds


def parse_size(text: str) -> int:
    """Bytes for ``text`` with an optional k/m/g (1024-based) suffix."""
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(f"invalid size value '{text}' (expected a number with optional k, m or g)")
    unit = match.group(2).lower() if match.group(2) else None
    return int(match.group(1)) * _SIZE_MUL[unit]
