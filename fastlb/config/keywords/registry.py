"""The table of configuration keywords, in the spirit of HAProxy's ``cfg_register_keywords``.

The module that implements a keyword registers it next to its handler::

    @keyword("timeout", sections=PROXY_AND_DEFAULTS)
    def timeout(parser, proxy, args, origin): ...

A handler receives the ``Parser`` (for ``warn`` and ``alerts``), the object the section
configures (``GlobalSettings`` in ``global``, else the ``Proxy``), the words after the
keyword and the statement's ``Origin``; it raises ``ValueError`` to refuse the statement.
The parser refuses a proxy keyword in a section its entry does not list, with HAProxy's
"not allowed" messages, before the handler runs.

The keywords fastlb knows from HAProxy but does not implement, and those it accepts
without effect, are data here too: refused by name, never silently lost.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

GLOBAL = frozenset({"global"})
DEFAULTS = frozenset({"defaults"})
FRONTENDS = frozenset({"frontend", "listen"})      # the sections with a frontend capability
BACKENDS = frozenset({"backend", "listen"})        # the sections with a backend capability
PROXIES = FRONTENDS | BACKENDS
PROXY_AND_DEFAULTS = PROXIES | DEFAULTS


@dataclass(frozen=True)
class Keyword:
    name: str
    sections: frozenset
    handler: Callable


_global_keywords: dict[str, Keyword] = {}
_proxy_keywords: dict[str, Keyword] = {}          # by spelling_key(name)


def spelling_key(name: str) -> str:
    """Proxy keywords also answer with '_' and '-' swapped (fastlb always took
    "use-backend" for "use_backend"), except in 'defaults', which wants the spelling
    registered."""
    return name.replace("-", "_")


def keyword(name: str, sections: frozenset):
    """Register the decorated function as the handler of ``name`` in ``sections``."""
    if not sections or not sections <= GLOBAL | PROXY_AND_DEFAULTS:
        raise ValueError(f"keyword '{name}': unknown sections {sorted(sections)}")
    if sections != GLOBAL and "global" in sections:
        raise ValueError(f"keyword '{name}': a handler configures 'global' or proxies, not both")
    if sections & PROXIES and "listen" not in sections:
        raise ValueError(f"keyword '{name}': a listen section has both capabilities")
    table, key = (_global_keywords, name) if sections == GLOBAL else \
        (_proxy_keywords, spelling_key(name))

    def register(handler: Callable) -> Callable:
        if key in table:
            raise ValueError(f"keyword '{name}' registered twice")
        table[key] = Keyword(name, sections, handler)
        return handler
    return register


def global_keyword(word: str) -> Optional[Keyword]:
    return _global_keywords.get(word)


def proxy_keyword(word: str) -> Optional[Keyword]:
    """The entry for ``word`` in any of defaults, frontend, backend, listen."""
    return _proxy_keywords.get(spelling_key(word))


def registered() -> list[Keyword]:
    return list(_global_keywords.values()) + list(_proxy_keywords.values())


# -- "did you mean" -----------------------------------------------------------------------------
_SECTION_WORDS = ("global", "defaults", "frontend", "backend", "listen", "userlist",
                  "http-errors", "peers", "resolvers", "mailers", "cache", "fcgi-app",
                  "program", "ring", "log-forward")


def _fingerprint(word: str) -> Counter:
    """HAProxy's word fingerprint: which classes of characters occur (a letter each, digit,
    other) and how often each class follows another, from the word's start to its end."""
    other = 28                           # also stands for the start and the end
    marks: Counter = Counter()
    previous = other
    for c in word.lower():
        current = ord(c) - ord("a") + 1 if "a" <= c <= "z" else 27 if c.isdigit() else other
        marks[current] = 1
        marks[32 * previous + current] += 1
        previous = current
    marks[32 * previous + other] += 1
    return marks


def best_match(word: str, candidates: Iterable[str]) -> Optional[str]:
    """The candidate whose fingerprint is nearest to ``word``'s (the first of equals), or
    None when even that one is too far (more than twice the length of either word)."""
    mine = _fingerprint(word)
    best, best_distance = None, None
    for candidate in candidates:
        theirs = _fingerprint(candidate)
        distance = sum(abs(mine[k] - theirs[k]) for k in mine.keys() | theirs.keys())
        if best_distance is None or distance < best_distance:
            best, best_distance = candidate, distance
    if best is None or best_distance > 2 * len(word) or best_distance > 2 * len(best):
        return None
    return best


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """HAProxy's "; did you mean '<word>' maybe ?" for an unknown word, or ''."""
    best = best_match(word, candidates)
    return f"; did you mean '{best}' maybe ?" if best else ""


def global_words() -> list[str]:
    """Every word known in 'global': what is implemented, refused by name or ignored."""
    return [*_global_keywords, *sorted(NOT_YET_GLOBAL), *sorted(NEEDS_GLOBAL), *IGNORED_GLOBAL,
            *NO_EFFECT_GLOBAL, *_SECTION_WORDS]


def proxy_words() -> list[str]:
    """Every keyword known in proxies and defaults (HAProxy suggests from one list too)."""
    return [*(entry.name for entry in _proxy_keywords.values()), *sorted(NOT_YET_PROXY),
            *sorted(NEEDS_PROXY), *_SUGGESTED_REMOVED, *_SECTION_WORDS]


# Global keywords accepted with no effect, and why ignoring them cannot change behaviour.
IGNORED_GLOBAL = {
    "tune.idle-pool.shared": "fastlb keeps no idle server connection pool shared between threads",
    "master-worker": "fastlb always runs as a master with workers",
    # pollers fastlb never uses (it has epoll only), and a trimming it never does
    "nopoll": "fastlb polls with epoll only", "nokqueue": "fastlb polls with epoll only",
    "noevports": "fastlb polls with epoll only",
    "no-memory-trimming": "fastlb never calls malloc_trim",
}
# Accepted with a start-up warning: tunables of HAProxy internals fastlb lacks, so that
# leaving them in a config changes nothing either way (the warning says so).
NO_EFFECT_GLOBAL = {
    "tune.idletimer": "fastlb sizes no packets by idleness",
    "tune.recv_enough": "fastlb reads until EAGAIN",
    "tune.pattern.cache-size": "fastlb's pattern lookups keep no LRU cache",
    "numa-cpu-mapping": "fastlb binds no CPUs but by cpu-map",
    "nogetaddrinfo": "fastlb always resolves with getaddrinfo(3)",
    # HTTP/2 settings: fastlb speaks no HTTP/2 on either side, so they have nothing to tune
    **{kw: "fastlb speaks no HTTP/2" for kw in (
        "h2-workaround-bogus-websocket-clients", "tune.h2.header-table-size",
        "tune.h2.initial-window-size", "tune.h2.max-concurrent-streams",
        "tune.h2.max-frame-size")},
    # HAProxy's task scheduler's tuning: fastlb runs ready events in the order epoll gives
    **{kw: "it has no task scheduler" for kw in (
        "tune.runqueue-depth", "tune.sched.low-latency", "profiling.tasks")},
}

# Keywords HAProxy has and fastlb refuses for now, so that a config never loses a setting silently.
# (every global keyword HAProxy 2.6 has and fastlb refuses now says what it needs: NEEDS_GLOBAL)
NOT_YET_GLOBAL: set = set()
# HAProxy 2.6 keywords that belong to a subsystem fastlb does not have yet: refused by name,
# saying which (the README's list of what stays unsupported).
_TLS = "TLS (issue #11)"
_LUA = "Lua"
_COMP = "compression"
NEEDS_GLOBAL = {
    **{kw: _TLS for kw in (
        "issuers-chain-path", "maxsslrate", "ssl-dh-param-file", "ssl-mode-async",
        "ssl-propquery", "ssl-provider", "ssl-provider-path", "ssl-server-verify",
        "ssl-skip-self-issued-ca", "tune.ssl.cachesize", "tune.ssl.capture-buffer-size",
        "tune.ssl.capture-cipherlist-size", "tune.ssl.force-private-cache",
        "tune.ssl.hard-maxrecord", "tune.ssl.keylog", "tune.ssl.lifetime", "tune.ssl.maxrecord",
        "tune.ssl.ssl-ctx-cache-size", "httpclient.ssl.ca-file", "httpclient.ssl.verify")},
    **{kw: _LUA for kw in (
        "lua-load-per-thread", "lua-prepend-path", "tune.lua.forced-yield", "tune.lua.maxmem",
        "tune.lua.service-timeout", "tune.lua.session-timeout", "tune.lua.task-timeout")},
    **{kw: _COMP for kw in ("maxcompcpuusage", "maxcomprate", "maxzlibmem", "tune.comp.maxlevel")},
    "cluster-secret": "QUIC",
    "tune.ssl.default-dh-param": _TLS, "maxsslconn": _TLS,
    "spread-checks": "spread health checks (issue #13)",
    "lua-load": _LUA, "localpeer": "peers (issue #14)",
    "external-check": "external health checks (issue #13)",
    "tune.pool-high-fd-ratio": "the idle connection pool's limits (issue #12)",
    "tune.pool-low-fd-ratio": "the idle connection pool's limits (issue #12)",
    "max-spread-checks": "spread health checks (issue #13)",
    "httpclient.resolvers.id": "resolvers (issue #13)",
    "httpclient.resolvers.prefer": "resolvers (issue #13)",
    "noepoll": "a poller other than epoll",
}
NEEDS_PROXY = {
    "use-fcgi-app": "FastCGI applications (fcgi-app sections)",
    "stick-table": "stick tables (issue #14)", "stick": "stick tables (issue #14)",
    "tcp-check": "tcp-check health checks (issue #13)",
    "external-check": "external health checks (issue #13)",
    "compression": "compression",
    "server-template": "resolvers (DNS service discovery, issue #13)",
}
# Keywords HAProxy 2.6 only warns about in a proxy without the capability they need
# (its warnifnotcap: "ignored because ..."); the others there are errors.
WARN_WITHOUT_CAPABILITY = {
    "monitor-uri", "dynamic-cookie-key", "cookie", "max-session-srv-conns", "capture",
    "retries", "http-send-name-header", "use-server", "ignore-persist", "http-reuse",
    "monitor", "maxconn", "backlog", "fullconn", "dispatch", "balance", "hash-type", "source",
}
# (every proxy keyword HAProxy 2.6 has and fastlb refuses now says what it needs: NEEDS_PROXY)
NOT_YET_PROXY: set = set()
# Keywords HAProxy 2.6 itself no longer takes: refused with its own words ({kw}: the
# keyword, {arg}: its first argument), so that a config haproxy refuses is refused here too.
_GONE_21 = "The '{kw}' directive is not supported anymore since HAProxy 2.1."


def _use(action: str) -> str:
    return _GONE_21 + " Use '" + action + "' instead."



REMOVED_PROXY = {
    "block": _GONE_21 + " Use 'http-request deny' which uses the exact same syntax.",
    "redispatch": "keyword '{kw}' directive is not supported anymore since HAProxy 2.1. Use "
                  "'option redispatch'.",
    "appsession": "'{kw}' is not supported anymore since HAProxy 1.6.",
    "grace": "the '{kw}' keyword is not supported any more since HAProxy version 2.5.",
    "monitor-net": "'monitor-net' doesn't exist anymore. Please use 'http-request return "
                   "status 200 if {{ src {arg} }}' instead.",
    "reqrep": _GONE_21 + " Use 'http-request replace-path', 'http-request replace-uri' or "
                         "'http-request replace-header' instead.",
    "reqdel": _use("http-request del-header"),
    "reqdeny": "The '{kw}' not supported anymore since HAProxy 2.1. Use 'http-request deny' "
               "instead.",
    "reqpass": "The '{kw}' not supported anymore since HAProxy 2.1.",
    "reqallow": _use("http-request allow"),
    "reqtarpit": _use("http-request tarpit"),
    "reqirep": _use("http-request replace-header"),
    "reqidel": _use("http-request del-header"),
    "reqideny": _use("http-request deny"),
    "reqipass": _GONE_21,
    "reqiallow": _use("http-request allow"),
    "reqitarpit": _use("http-request tarpit"),
    "reqadd": _use("http-request add-header"),
    "rsprep": _use("http-response replace-header"),
    "rspdel": _GONE_21 + " Use 'http-response del-header' .",
    "rspdeny": _use("http-response deny"),
    "rspirep": _use("http-response replace-header"),
    "rspidel": _use("http-response del-header"),
    "rspideny": _use("http-response deny"),
    "rspadd": _use("http-response add-header"),
}
REMOVED_PROXY.update(redisp=REMOVED_PROXY["redispatch"], cliexp=REMOVED_PROXY["reqrep"],
                     srvexp=REMOVED_PROXY["rsprep"])
# HAProxy suggests these for a misspelt keyword (its common_kw_list) although it refuses them
_SUGGESTED_REMOVED = ("monitor-net", "appsession", "block")
