"""Sample types and the casts between them.

A sample is a plain Python value whose class says its type: ``bool`` (BOOL), ``int``
(SINT), ``bytes`` (STR and BIN: text stays bytes until a converter says otherwise),
``IPv4Address`` / ``IPv6Address`` (IPV4, IPV6).  The compiler knows each step's output
type and checks, once, that the next step can take it (HAProxy's cast matrix, below);
a step whose input type is only known at run time (``var()``) casts by the value's class.
"""
from __future__ import annotations

import ipaddress
from typing import Callable, Optional

ANY, BOOL, SINT, ADDR, IPV4, IPV6, STR, BIN, METH = (
    "any", "bool", "sint", "addr", "ipv4", "ipv6", "str", "bin", "meth")
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def clamp(value: int) -> int:
    """HAProxy's integers are signed 64 bits: arithmetic saturates."""
    return INT64_MIN if value < INT64_MIN else INT64_MAX if value > INT64_MAX else value


def str_to_int(value: bytes) -> Optional[int]:
    """An optional sign and the leading digits ("12ab" -> 12, "ab" -> 0); empty: no sample."""
    if not value:
        return None
    i, sign = 0, 1
    if value[:1] in (b"-", b"+"):
        sign = -1 if value[:1] == b"-" else 1
        i = 1
    n = 0
    while i < len(value) and 48 <= value[i] <= 57:
        n = n * 10 + value[i] - 48
        i += 1
    return clamp(sign * n)


def _str_to_ipv4(value: bytes):
    try:
        return ipaddress.IPv4Address(value.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None


def _str_to_ipv6(value: bytes):
    try:
        return ipaddress.IPv6Address(value.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None


def _str_to_addr(value: bytes):
    return _str_to_ipv4(value) or _str_to_ipv6(value)


def _ipv6_to_ipv4(value):
    return value.ipv4_mapped


def _ipv4_to_ipv6(value):
    return ipaddress.IPv6Address("::ffff:" + str(value))


def _int_to_ipv4(value: int):
    return ipaddress.IPv4Address(value & 0xFFFFFFFF)


_same = None      # "no conversion": the value as it is
# (from, to) -> cast function (None: the same value); a pair not listed cannot be cast
CASTS: dict = {
    (BOOL, SINT): int, (BOOL, STR): lambda v: b"1" if v else b"0",
    (BOOL, BIN): lambda v: b"1" if v else b"0",
    (SINT, BOOL): bool, (SINT, STR): lambda v: b"%d" % v,
    (SINT, BIN): lambda v: (v & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big"),
    (SINT, IPV4): _int_to_ipv4, (SINT, ADDR): _int_to_ipv4,
    (SINT, IPV6): lambda v: _ipv4_to_ipv6(_int_to_ipv4(v)),
    (IPV4, SINT): int, (IPV4, ADDR): _same, (IPV4, IPV6): _ipv4_to_ipv6,
    (IPV4, STR): lambda v: str(v).encode(), (IPV4, BIN): lambda v: v.packed,
    (IPV6, ADDR): _same, (IPV6, IPV4): _ipv6_to_ipv4,
    (IPV6, STR): lambda v: str(v).encode(), (IPV6, BIN): lambda v: v.packed,
    (STR, BOOL): lambda v: bool(str_to_int(v)), (STR, SINT): str_to_int,
    (STR, ADDR): _str_to_addr, (STR, IPV4): _str_to_ipv4, (STR, IPV6): _str_to_ipv6,
    (STR, BIN): _same, (STR, METH): _same,
    (BIN, STR): _same, (BIN, METH): _same,
    (METH, STR): _same, (METH, BIN): _same,
}


def can_cast(source: str, target: str) -> bool:
    if source == ADDR:             # an IPv4 or IPv6 address, known at run time
        return can_cast(IPV4, target) or can_cast(IPV6, target)
    return source == target or target == ANY or source == ANY or (source, target) in CASTS


def caster(source: str, target: str) -> Optional[Callable]:
    """The function turning a ``source`` sample into a ``target`` one (None: keep it).
    Raises KeyError when there is none; ANY casts by the value's class at run time."""
    if source == target or target == ANY or (source in (IPV4, IPV6) and target == ADDR):
        return None
    if source in (ANY, ADDR):
        return lambda value: dynamic_cast(value, target)
    cast = CASTS[(source, target)]
    return cast


def type_of(value) -> str:
    """A run-time sample's type, from its class."""
    cls = value.__class__
    if cls is bytes:
        return STR
    if cls is bool:
        return BOOL
    if cls is int:
        return SINT
    if cls is ipaddress.IPv4Address:
        return IPV4
    if cls is ipaddress.IPv6Address:
        return IPV6
    raise TypeError(f"not a sample: {cls.__name__}")


def dynamic_cast(value, target: str):
    source = type_of(value)
    if source == target or (source in (IPV4, IPV6) and target == ADDR):
        return value
    cast = CASTS.get((source, target), False)
    if cast is False:
        return None
    return value if cast is None else cast(value)


def as_bytes(value) -> bytes:
    """A sample as text (log lines, header values): HAProxy's cast to string."""
    cls = value.__class__
    if cls is bytes:
        return value
    if cls is bool:
        return b"1" if value else b"0"
    if cls is int:
        return b"%d" % value
    return str(value).encode()
