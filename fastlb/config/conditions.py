"""The conditions of ``.if``/``.elif`` lines and of ``fastlb -cc``, as HAProxy 2.6 reads them.

An expression is terms joined by ``&&`` (tighter) and ``||``; a term is an optional run of
``!``, then a number (non-zero is true, read as C's ``strtol(.., 0)``: ``0x10``, ``010``,
``-1``), a parenthesised expression, or a predicate with its arguments in parentheses.
The parser keeps HAProxy's error messages and the position it reports them at, so that a
broken condition reads the same in both.

fastlb answers ``version_*`` as HAProxy ``HAPROXY_VERSION`` (the version whose manual it
follows) and ``feature()`` from ``FEATURES``, the build features it really has.
"""
from __future__ import annotations

import os
import re
from typing import Callable, NamedTuple, Optional

from .. import HAPROXY_VERSION

MAX_RECURSION = 1024          # HAProxy's MAX_CFG_RECURSION

# HAProxy's build feature names with what fastlb has ('+') or not ('-'); "-vv" prints this
# list and feature() reads it, so both always agree.
FEATURES = (
    ("ACCEPT4", True),         # listeners accept with accept4()
    ("CPU_AFFINITY", True),    # cpu-map
    ("EPOLL", True),           # the worker loop's poller
    ("GETADDRINFO", True),     # server names resolve through getaddrinfo()
    ("KQUEUE", False), ("EVPORTS", False), ("POLL", False),
    ("LINUX_SPLICE", True),    # the TCP relay splices bulk transfers
    ("LINUX_TPROXY", False), ("TPROXY", False), ("NETFILTER", False),
    ("NS", True),              # bind ... namespace
    ("LUA", False),
    ("OPENSSL", False),        # no TLS yet: ssl/crt options are refused
    ("PCRE", False), ("PCRE2", False), ("PCRE_JIT", False), ("PCRE2_JIT", False),
    ("PRCTL", True),           # workers die with the master (PR_SET_PDEATHSIG)
    ("PROMEX", True),          # the Prometheus exporter applet
    ("QUIC", False),
    ("SLZ", False), ("ZLIB", False),   # no compression
    ("SYSTEMD", True),         # -Ws notifies $NOTIFY_SOCKET (READY=1, RELOADING=1)
    ("TFO", False),
    ("THREAD", False),         # one process per worker, no threads
)


def feature_list() -> str:
    """``+EPOLL -LUA ...`` as in HAProxy's "Feature list"."""
    return " ".join(("+" if on else "-") + name for name, on in sorted(FEATURES))


class ConditionError(ValueError):
    """A condition that cannot be read or evaluated; ``position`` is the 0-based offset
    HAProxy points its caret at."""

    def __init__(self, message: str, position: int = 0):
        super().__init__(message)
        self.position = position


class _ArgError(Exception):
    def __init__(self, message: str, argument: int, position: int):
        super().__init__(message)
        self.argument, self.position = argument, position


# -- versions ---------------------------------------------------------------------------------
_TAGS = (("dev", 1), ("rc", 2), ("pre", 2))
_DECIMAL = re.compile(r"[ \t\n\r\f\v]*([+-]?[0-9]+)")


def _strtol10(text: str, i: int) -> tuple[int, int]:
    """C's strtol(text + i, &end, 10): (value, end), end == i when no digits."""
    m = _DECIMAL.match(text, i)
    if not m:
        return 0, i
    return int(m.group(1)) & 0xFFFFFFFF, m.end()


def split_version(version: str) -> Optional[list[int]]:
    """``2.4-dev18-f6818d-20`` -> [2, 4, 0, 0, 1, 18, 20], by HAProxy's split_version()
    rules: three numbers at most after the first, "-dev"/"-rc"/"-pre" (1, 2, 2; a release
    is 3) and its number, then a commit count after the last '-'.  None if unparsable."""
    value = [0, 0, 0, 0, 3, 0, 0]
    if not version:
        return None
    end = len(version)
    p = 0
    for index in range(4):
        value[index], stop = _strtol10(version, p)
        if stop >= end:
            return value
        p = stop + 1
        if version[stop] == "-":
            break
        if version[stop] != "." or index == 3:
            return None
    if p < end and version[p] not in "0123456789":
        for tag, rank in _TAGS:
            if version.startswith(tag, p):
                value[4] = rank
                value[5], stop = _strtol10(version, p + len(tag))
                if stop >= end:
                    return value
                if version[stop] != "-":
                    return None
                p = stop + 1
                break
    rest = version[p:]
    if "-" in rest:
        rest = rest[rest.rindex("-") + 1:]
        if not rest:
            return None
    value[6] = int(rest) if re.fullmatch(r"[0-9]+", rest) else 0
    return value


def compare_version(version: str) -> int:
    """-1 if ``version`` is older than HAPROXY_VERSION, 0 the same, 1 newer; -3 unparsable
    (which version_atleast() takes as true and version_before() as false, as HAProxy)."""
    mine, theirs = split_version(HAPROXY_VERSION), split_version(version)
    if theirs is None:
        return -3
    return (theirs > mine) - (theirs < mine)


# -- predicates -------------------------------------------------------------------------------
class Predicate(NamedTuple):
    nargs: int
    test: Callable       # (args, env) -> bool


def _feature(args, env) -> bool:
    return args[0] in {name for name, on in FEATURES if on}


def _no_ssl_library(args, env) -> bool:
    raise ConditionError("fastlb has no SSL library (TLS is not implemented yet)")


PREDICATES = {
    "defined": Predicate(1, lambda args, env: args[0] in env),
    "feature": Predicate(1, _feature),
    "streq": Predicate(2, lambda args, env: args[0] == args[1]),
    "strneq": Predicate(2, lambda args, env: args[0] != args[1]),
    "version_atleast": Predicate(1, lambda args, env: compare_version(args[0]) <= 0),
    "version_before": Predicate(1, lambda args, env: compare_version(args[0]) > 0),
    "openssl_version_atleast": Predicate(1, _no_ssl_library),
    "openssl_version_before": Predicate(1, _no_ssl_library),
    "ssllib_name_startswith": Predicate(1, lambda args, env: False),
}

_NUMBER = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F]+|[1-9][0-9]*|0[0-7]*)")
_ARG_ESCAPES = {"\\": "\\", " ": " ", '"': '"', "'": "'", "r": "\r", "n": "\n", "t": "\t"}


class _Parser:
    """Recursive descent over one condition text.  Each level returns (node, position) or
    (None, position) when it found nothing to read ("desynchronised" in HAProxy), which
    the level above turns into its own message."""

    def __init__(self, text: str):
        self.text = text

    def skip(self, i: int) -> int:
        while i < len(self.text) and self.text[i] in " \t":
            i += 1
        return i

    def unparsable(self, what: str, i: int) -> ConditionError:
        return ConditionError(f"unparsable conditional {what} '{self.text[i:]}'", i)

    def expr(self, i: int, depth: int):
        if i >= len(self.text):
            return None, i
        if depth <= 0:
            raise self.unparsable("expression", i)
        left, i = self.and_(i, depth - 1)
        if left is None:
            raise self.unparsable("expression", i)
        i = self.skip(i)
        if not self.text.startswith("||", i):
            return ("or", [left]), i
        right, end = self.expr(self.skip(i + 2), depth - 1)
        if right is None:
            return None, i
        return ("or", [left] + right[1]), end

    def and_(self, i: int, depth: int):
        if i >= len(self.text):
            return None, i
        if depth <= 0:
            raise self.unparsable("sub-expression", i)
        left, end = self.term(i, depth - 1)
        if left is None:
            raise self.unparsable("sub-expression", i)
        i = self.skip(end)
        if not self.text.startswith("&&", i):
            return ("and", [left]), i
        right, end = self.and_(self.skip(i + 2), depth - 1)
        if right is None:
            return None, i
        return ("and", [left] + right[1]), end

    def term(self, start: int, depth: int):
        text = self.text
        i = self.skip(start)
        if i >= len(text):
            return None, start
        if depth <= 0:
            raise self.unparsable("expression", start)
        negate = False
        while i < len(text) and text[i] == "!":
            negate = not negate
            i = self.skip(i + 1)
        number = _NUMBER.match(text, i)
        if number:
            digits = number.group().lstrip("+-")
            if digits[:2] in ("0x", "0X"):
                digits = digits[2:]
            return ("const", negate, digits.strip("0") != ""), number.end()
        if text.startswith("(", i):
            inner, i = self.expr(self.skip(i + 1), depth - 1)
            if inner is None:
                raise self.unparsable("expression", start)
            i = self.skip(i)
            if not text.startswith(")", i):
                raise ConditionError("expected ')' after conditional expression "
                                     f"'{text[start:]}'", start)
            return ("paren", negate, inner), self.skip(i + 1)
        name = re.match(r"[^ (]*", text[i:]).group()
        predicate = PREDICATES.get(name)
        if predicate is None:
            raise self.unparsable("expression", start)
        try:
            args, end = self.arguments(i + len(name), predicate.nargs)
        except _ArgError as exc:
            raise ConditionError(f"{exc} in argument {exc.argument} of predicate '{name}' "
                                 "used in conditional expression", exc.position) from None
        return ("pred", negate, name, args), end

    def arguments(self, i: int, count: int) -> tuple[list[str], int]:
        """``(a,b)`` as HAProxy's make_arg_list() reads string arguments: quotes group,
        a backslash escapes, ``,`` and ``)`` end an argument.  Without parentheses the
        predicate gets one empty argument."""
        text, n = self.text, len(self.text)
        empty = not text.startswith("(", i)
        if not empty:
            i += 1
        args: list[str] = []
        while len(args) < count:
            out: list[str] = []
            single = double = False
            while not empty and i < n:
                c = text[i]
                if c == '"' and not single:
                    double = not double
                elif c == "'" and not double:
                    single = not single
                elif c == "\\" and not single:
                    if i + 1 >= n:
                        raise _ArgError(f"failed to parse '{text[i:]}' after '{''.join(out)}' as "
                                        f"type 'string' at position {len(args) + 1}", len(args), i)
                    escaped = _ARG_ESCAPES.get(text[i + 1])
                    out.append(escaped if escaped is not None else "\\")
                    i += 1 if escaped is None else 2
                    continue
                elif not single and not double and c in ",)":
                    break
                else:
                    out.append(c)
                i += 1
            args.append("".join(out))
            if empty or i >= n or text[i] == ")" or len(args) >= count:
                break
            i += 1                   # the comma
        if len(args) < count:
            raise _ArgError(f"missing arguments (got {len(args)}/{count}), type 'string' "
                            "expected", len(args), i)
        if not empty:
            if i < n and text[i] == ")":
                i += 1
            else:
                rest = text[i:]
                message = f"expected ')' before '{rest}'" if rest else "expected ')'"
                raise _ArgError(message, len(args) - 1 if len(args) > 1 else len(args), i)
        return args, i


def _evaluate(node, env) -> bool:
    kind = node[0]
    if kind == "or":
        return any(_evaluate(term, env) for term in node[1])
    if kind == "and":
        return all(_evaluate(term, env) for term in node[1])
    negate = node[1]
    if kind == "const":
        value = node[2]
    elif kind == "paren":
        value = _evaluate(node[2], env)
    else:
        value = PREDICATES[node[2]].test(node[3], env)
    return value != negate


def evaluate(text: str, env=None) -> bool:
    """The truth of one condition (its words joined by single spaces); an empty condition
    is false.  Raises ``ConditionError``."""
    env = os.environ if env is None else env
    if not text:
        return False
    parser = _Parser(text)
    try:
        tree, end = parser.expr(0, MAX_RECURSION)
    except RecursionError:
        raise ConditionError(f"unparsable conditional expression '{text}'") from None
    if tree is None:
        raise ConditionError(f"unparsable conditional expression '{text}'", end)
    end = parser.skip(end)
    if end < len(text):
        raise ConditionError(f"unexpected character '{text[end]}' at the end of conditional "
                             f"expression '{text}'", end)
    return _evaluate(tree, env)


def caret_lines(directive: str, text: str, position: int) -> str:
    """HAProxy's two lines under a broken condition: the condition (cut to fit about 80
    columns around ``position``, non-printable characters as '?') and a caret under it."""
    width = 80 - len(directive) - 1
    shift = 0
    if position >= width:
        shift = position - width // 2
        shown = "..." + text[shift + 3:shift + width - 3] + "..."
    else:
        shown = text[:width]
    shown = "".join(" " if c.isspace() else c if c.isprintable() and c.isascii() else "?"
                    for c in shown)
    return f"  {directive} {shown}\n  {' ' * (position - shift + len(directive) + 1)}^"
