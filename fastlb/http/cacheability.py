"""Whether a shared cache could store a response, as HAProxy 2.6 judges it: the one
answer behind ``cookie ... nocache`` (mark it private) and ``option checkcache`` (block a
cacheable response that sets a cookie)."""
from __future__ import annotations

# RFC 7231 6.1: the statuses cacheable by default
CACHEABLE_STATUSES = frozenset({200, 203, 204, 206, 300, 301, 404, 405, 410, 414, 501})
# RFC 7231 4.2.1: the safe methods (a cache may answer them)
SAFE_METHODS = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE"})
_UNCACHEABLE = frozenset({b"private", b"no-cache", b"no-store", b"max-age=0", b"s-maxage=0"})


def _values(headers: list, name: bytes):
    """Each comma-separated value of every ``name`` header, trimmed."""
    for field, value in headers:
        if field == name:
            for part in value.split(b","):
                part = part.strip()
                if part:
                    yield part.lower()


def cacheability(method: bytes, status: int, headers: list) -> tuple[bool, bool]:
    """(cacheable, cookies may be cached with it) for a final response to ``method``;
    HAProxy's TX_CACHEABLE and TX_CACHE_COOK.  ``headers``: (lower-case name, value)."""
    cacheable = cook = method in SAFE_METHODS and status in CACHEABLE_STATUSES
    if status < 200:
        return False, False
    for field, value in headers:           # HTTP/1.0's Pragma: the first one only
        if field == b"pragma":
            if value.strip().lower() == b"no-cache":
                return False, False
            break
    fresh = False
    for directive in _values(headers, b"cache-control"):
        if directive == b"public":
            cacheable = cook = True         # even for a status or method that is not
        elif directive in _UNCACHEABLE:
            cacheable = cook = False
        elif directive.startswith(b'no-cache="set-cookie'):
            cook = False                    # cacheable, but not its cookies
        elif directive.startswith((b"s-maxage", b"max-age")):
            fresh = True
    fresh = fresh or any(field == b"expires" for field, _ in headers)
    if not fresh and not any(field in (b"etag", b"last-modified") for field, _ in headers):
        # neither an explicit lifetime nor a validator: no cache keeps it (RFC 7234 3),
        # and haproxy 2.6.12 neither marks nor blocks it
        return False, False
    return cacheable, cook


def sets_cookie(headers: list) -> bool:
    return any(field in (b"set-cookie", b"set-cookie2") for field, _ in headers)


def blocks_cacheable_cookie(method: bytes, status: int, headers: list) -> bool:
    """option checkcache: the response sets a cookie a cache could keep and hand to others."""
    if not sets_cookie(headers):
        return False
    cacheable, cook = cacheability(method, status, headers)
    return cacheable and cook
