"""Cookie persistence (``cookie <name> insert|rewrite|prefix ...`` with ``server ... cookie <v>``).

The worker calls ``on_request`` with a request's headers once its backend is known and
``on_response`` with the response headers; both edit the header list in place.  Whether
the server a cookie names is still usable is the worker's call (shared state), so
``on_request`` only says which server the cookie names.

Log letters (HAProxy's %tsc, third and fourth characters):
client side  N none, I invalid (no server has that value), D the server is down, V valid,
             E expired (idle longer than maxidle), O too old (first seen longer than maxlife
             ago), both also when the date is more than a day in the future;
server side  N nothing done, I inserted, U inserted again only to refresh its dates,
             P a server cookie passed unchanged, R a server cookie rewritten (rewrite,
             prefix), D a server cookie deleted (insert without preserve).

With maxidle or maxlife the inserted value is ``<server cookie>|<last seen>[|<first
seen>]``, each date 30 bits of unix seconds / 4 in 5 characters of the base64 alphabet,
most significant first (HAProxy's s30tob64).  A client's cookie is parsed that way in every
mode but prefix, whether the backend has dates or not.
"""
from __future__ import annotations

import socket
import struct
import time
from typing import NamedTuple, Protocol

from .cacheability import cacheability
from .xxh64 import xxh64

PREFIX_SEPARATOR = "~"
DATE_SEPARATOR = "|"
B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_VALUE = {c: i for i, c in enumerate(B64_ALPHABET)}
FUTURE_TOLERANCE = 86400            # a date up to a day ahead is a clock skew, not an attack
REMOVAL = "=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/"


def encode_date(quarters: int) -> str:
    """The low 30 bits of ``quarters`` (unix seconds >> 2) as 5 base64 characters."""
    return "".join(B64_ALPHABET[(quarters >> shift) & 0x3F] for shift in (24, 18, 12, 6, 0))


def decode_date(text: str) -> int:
    """Unix seconds (a multiple of 4) from the first 5 characters of ``text``; 0 when they
    are not 5 base64 characters or encode 0 (HAProxy then ignores the date)."""
    value = 0
    for char in text[:5]:
        digit = _B64_VALUE.get(char)
        if digit is None:
            return 0
        value = (value << 6) + digit
    return value << 2 if len(text) >= 5 and value > 0 else 0


def dynamic_cookie(key: str, family: int, ip: str, port: int):
    """HAProxy's value for a server of a ``cookie ... dynamic`` backend: XXH64 (seed 0) of
    the key, the packed address and the port as 4 big-endian bytes, in 16 hex digits; None
    for an address that is neither IPv4 nor IPv6."""
    if family not in (socket.AF_INET, socket.AF_INET6):
        return None
    data = key.encode("latin-1") + socket.inet_pton(family, ip) + struct.pack(">I", port)
    return f"{xxh64(data):016x}"


class CookieSeen(NamedTuple):
    """What a request's persistence cookie said: the server it names (-1: none) and its
    dates in unix seconds (0: absent or discarded)."""
    server: int
    last: int
    first: int


NOTHING_SEEN = CookieSeen(-1, 0, 0)


class CookiePolicy(Protocol):
    """What persistence reads of a backend's ``cookie`` line (``config.model.CookieSettings``
    has it; taken by shape so that http code does not depend on the config model)."""
    name: str
    mode: str                       # "insert", "rewrite", "prefix" or "passive"
    indirect: bool
    nocache: bool
    postonly: bool
    preserve: bool
    httponly: bool
    secure: bool
    domains: list
    maxidle: int                    # seconds, 0: none
    maxlife: int
    attrs: list


def _split_cookie_header(value: str) -> list[str]:
    return [part.strip() for part in value.split(";")]


class Persistence:
    def __init__(self, settings: CookiePolicy, server_cookies: list, real_servers=None):
        """``server_cookies``: each server's value (None: it has none); ``real_servers``:
        per entry, False for a dispatch address or option transparent's client destination
        (no server of ours: no cookie is set or removed for it, as HAProxy); None: all."""
        self.settings = settings
        self.name = settings.name
        self.set_server_cookies(server_cookies)
        self.real_servers = [True] * len(server_cookies) if real_servers is None else real_servers
        self.name_b = settings.name.lower().encode()
        # fixed attributes after "path=/", in HAProxy's order
        tail = "".join(f"; domain={d}" for d in settings.domains)
        tail += "; HttpOnly" if settings.httponly else ""
        tail += "; Secure" if settings.secure else ""
        tail += "".join(f"; {a}" for a in settings.attrs)
        self.attributes = tail
        # passive mode without indirect: HAProxy's log shows "-" for both letters
        self.silent = "-" if settings.mode == "passive" and not settings.indirect else ""

    def set_server_cookies(self, server_cookies: list) -> None:
        """Each server's value (None: none), at start or after the stats socket changed
        a backend's dynamic cookies."""
        self.by_value = {}
        for index, value in enumerate(server_cookies):
            if value is not None and value not in self.by_value:
                self.by_value[value] = index
        self.server_cookies = server_cookies

    # -- request ---------------------------------------------------------------------------
    def on_request(self, headers: list, now: int = 0) -> tuple:
        """(server index the cookie names or -1, client letter, CookieSeen).  Removes the
        cookie (insert indirect) or its prefix (prefix mode) from ``headers``.  The letter
        is V for a named server whether it is up or not: that is the caller's call."""
        s = self.settings
        now = now or int(time.time())
        found = -1
        letter = "N"
        last = first = 0
        for position in range(len(headers)):
            name, value = headers[position]
            if name != b"cookie":
                continue
            parts = _split_cookie_header(value.decode("latin-1"))
            kept = []
            changed = False
            for part in parts:
                key, eq, val = part.partition("=")
                if not eq or key.strip() != self.name or letter != "N":
                    if part:
                        kept.append(part)
                    continue
                val = val.strip()
                if s.mode == "prefix":
                    server_value, sep, rest = val.partition(PREFIX_SEPARATOR)
                    if sep:
                        kept.append(f"{self.name}={rest}")
                        changed = True
                    else:
                        kept.append(part)
                    val = server_value if sep else None
                else:
                    if s.mode == "insert" and s.indirect:
                        changed = True        # the server never sees the persistence cookie
                    else:
                        kept.append(part)
                    val, bar, dates = val.partition(DATE_SEPARATOR)
                    if bar:
                        last = decode_date(dates)
                        _, bar, later = dates.partition(DATE_SEPARATOR)
                        first = decode_date(later) if bar else 0
                if first and s.maxlife and (now - first > s.maxlife or
                                            first - now > FUTURE_TOLERANCE):
                    letter, last, first = "O", 0, 0
                    continue
                if last and s.maxidle and (now - last > s.maxidle or
                                           last - now > FUTURE_TOLERANCE):
                    letter, last, first = "E", 0, 0
                    continue
                server = self.by_value.get(val, -1) if val else -1
                if server >= 0:
                    found, letter = server, "V"
                else:
                    letter = "I"
            if changed:
                headers[position] = (name, "; ".join(kept).encode("latin-1")) if kept else None
        if any(h is None for h in headers):
            headers[:] = [h for h in headers if h is not None]
        return found, self.silent or letter, CookieSeen(found, last, first)

    # -- response --------------------------------------------------------------------------
    def on_response(self, headers: list, server: int, client_letter: str, method: bytes,
                    seen=None, now: int = 0, forced: bool = False, status: int = 200) -> str:
        """Insert, rewrite or prefix the persistence cookie for ``server``; returns the
        server-side letter.  ``seen``: what ``on_request`` found (None: not called);
        ``forced``: a use-server rule chose the server (HAProxy's SF_DIRECT as well)."""
        s = self.settings
        seen = seen if seen is not None else NOTHING_SEEN
        if not 0 <= server < len(self.server_cookies):
            return self.silent or "N"
        real = self.real_servers[server]    # a dispatch address is no server of ours
        value = self.server_cookies[server] if real else None
        # the client came straight to this server with its cookie (HAProxy's SF_DIRECT)
        direct = real and ((seen.server == server and client_letter != "D") or forced)
        letter = "N"
        server_set = False
        kept = []
        for name, raw in headers:
            if name == b"set-cookie" and raw.split(b"=", 1)[0].strip() == self.name.encode():
                server_set = True
                letter = "P"                   # passed unchanged, unless below
                if s.preserve:
                    pass
                elif (real and s.mode == "insert") or (direct and s.indirect):
                    letter = "D"               # insert: ours replaces it; indirect: the
                    continue                   # client already has what it needs
                elif value is not None and s.mode in ("rewrite", "prefix"):
                    rest = raw.split(b"=", 1)[1] if b"=" in raw else b""
                    if s.mode == "rewrite":
                        cookie_value, semi, attributes = rest.partition(b";")
                        raw = self.name.encode() + b"=" + value.encode() + semi + attributes
                    else:                      # prefix: keep the server's value behind ours
                        raw = self.name.encode() + b"=" + value.encode() + \
                            PREFIX_SEPARATOR.encode() + rest.lstrip()
                    letter = "R"
            kept.append((name, raw))
        headers[:] = kept
        if self.silent:
            return self.silent
        if s.mode != "insert" or not real or (server_set and s.preserve):
            return letter
        now = now or int(time.time())
        refresh = ((s.maxidle or seen.last) and (not seen.last or seen.last < now)) or \
            (s.maxlife and not seen.first) or (not s.maxlife and seen.first)
        if direct and not refresh:
            return letter                      # the client already holds the right one
        if s.postonly and method != b"POST":
            return letter
        if value is None:                      # a server without a cookie: forget ours
            cookie = self.name + REMOVAL
        else:
            cookie = f"{self.name}={value}"
            if s.maxidle or s.maxlife:
                cookie += DATE_SEPARATOR + encode_date((now + 3) >> 2)
                if s.maxlife:
                    first = seen.first >> 2 if seen.first else (now + 3) >> 2
                    cookie += DATE_SEPARATOR + encode_date(first)
            cookie += "; path=/"
        cookie += self.attributes
        if s.nocache and cacheability(method, status, headers)[0]:
            headers.append((b"cache-control", b"private"))
        headers.append((b"set-cookie", cookie.encode("latin-1")))
        return "U" if value is not None and direct else "I"
