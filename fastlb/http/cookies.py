"""Cookie persistence (``cookie <name> insert|rewrite|prefix ...`` with ``server ... cookie <v>``).

The worker calls ``on_request`` with a request's headers once its backend is known and
``on_response`` with the response headers; both edit the header list in place.  Whether
the server a cookie names is still usable is the worker's call (shared state), so
``on_request`` only says which server the cookie names.

Log letters (HAProxy's %tsc, third and fourth characters):
client side  N none, I invalid (no server has that value), D the server is down, V valid;
server side  N nothing done, I inserted, P a server cookie passed unchanged,
             R a server cookie rewritten (rewrite, prefix), D a server cookie deleted
             (insert without preserve).
"""
from __future__ import annotations

from typing import Protocol

PREFIX_SEPARATOR = "~"


class CookiePolicy(Protocol):
    """What persistence reads of a backend's ``cookie`` line (``config.model.CookieSettings``
    has it; taken by shape so that http code does not depend on the config model)."""
    name: str
    mode: str                       # "insert", "rewrite" or "prefix"
    indirect: bool
    nocache: bool
    postonly: bool
    preserve: bool
    httponly: bool
    secure: bool
    domains: list


def _cacheable(headers: list) -> bool:
    """Whether a shared cache could store this response (``nocache`` then marks it
    private).  HAProxy 2.6, as observed: explicit freshness (max-age, s-maxage, Expires) or
    a validator (Last-Modified) makes it cacheable; no-cache, no-store or private do not."""
    cacheable = False
    for name, value in headers:
        if name == b"cache-control":
            directives = value.lower()
            if any(d in directives for d in (b"no-cache", b"no-store", b"private")):
                return False
            if b"max-age" in directives:
                cacheable = True
        elif name in (b"expires", b"last-modified"):
            cacheable = True
    return cacheable


def _split_cookie_header(value: str) -> list[str]:
    return [part.strip() for part in value.split(";")]


class Persistence:
    def __init__(self, settings: CookiePolicy, server_cookies: list):
        self.settings = settings
        self.name = settings.name
        self.by_value = {}
        for index, value in enumerate(server_cookies):
            if value is not None and value not in self.by_value:
                self.by_value[value] = index
        self.server_cookies = server_cookies
        self.name_b = settings.name.lower().encode()

    # -- request ---------------------------------------------------------------------------
    def on_request(self, headers: list) -> tuple[int, str]:
        """(server index the cookie names or -1, client letter N/I/V-candidate).  Removes
        the cookie (insert indirect) or its prefix (prefix mode) from ``headers``."""
        s = self.settings
        found = -1
        letter = "N"
        for position in range(len(headers)):
            name, value = headers[position]
            if name != b"cookie":
                continue
            parts = _split_cookie_header(value.decode("latin-1"))
            kept = []
            changed = False
            for part in parts:
                key, eq, val = part.partition("=")
                if not eq or key.strip() != self.name or found >= 0 or letter == "I":
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
                elif s.mode == "insert" and s.indirect:
                    changed = True            # the server never sees the persistence cookie
                else:
                    kept.append(part)
                server = self.by_value.get(val, -1) if val is not None else -1
                if server >= 0:
                    found, letter = server, "V"
                else:
                    letter = "I"
            if changed:
                headers[position] = (name, "; ".join(kept).encode("latin-1")) if kept else None
        if any(h is None for h in headers):
            headers[:] = [h for h in headers if h is not None]
        return found, letter

    # -- response --------------------------------------------------------------------------
    def on_response(self, headers: list, server: int, client_letter: str, method: bytes) -> str:
        """Insert, rewrite or prefix the persistence cookie for ``server``; returns the
        server-side letter."""
        s = self.settings
        value = self.server_cookies[server] if 0 <= server < len(self.server_cookies) else None
        if value is None:
            return "N"
        letter = "N"
        server_set = False
        kept = []
        for name, raw in headers:
            if name == b"set-cookie" and raw.split(b"=", 1)[0].strip() == self.name.encode():
                server_set = True
                if s.mode == "insert":
                    if s.preserve:
                        kept.append((name, raw))
                        letter = "P"
                    else:
                        letter = "D"           # ours replaces it
                    continue
                rest = raw.split(b"=", 1)[1] if b"=" in raw else b""
                if s.mode == "rewrite":
                    cookie_value, semi, attributes = rest.partition(b";")
                    raw = self.name.encode() + b"=" + value.encode() + semi + attributes
                else:                          # prefix: keep the server's value behind ours
                    raw = self.name.encode() + b"=" + value.encode() + \
                        PREFIX_SEPARATOR.encode() + rest.lstrip()
                letter = "R"
            kept.append((name, raw))
        headers[:] = kept
        if s.mode != "insert" or (server_set and s.preserve):
            return letter
        if s.indirect and client_letter == "V":
            return letter                      # the client already holds the right one
        if s.postonly and method != b"POST":
            return letter
        cookie = f"{self.name}={value}; path=/"
        for domain in s.domains[:1]:
            cookie += f"; domain={domain}"
        if s.httponly:
            cookie += "; HttpOnly"
        if s.secure:
            cookie += "; Secure"
        if s.nocache and _cacheable(headers):
            headers.append((b"cache-control", b"private"))
        headers.append((b"set-cookie", cookie.encode("latin-1")))
        return "I"
