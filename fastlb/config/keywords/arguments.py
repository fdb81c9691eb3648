"""Argument checks several keywords share, with HAProxy's messages."""
from __future__ import annotations

import re

from .. import addresses
from ...http.acl import AclError, PREDEFINED, condition_acl_names, parse_condition
from ..model import FACILITIES, LEVELS, LOG_FORMATS, LogTarget
from ..units import parse_size


def one_arg(args, keyword, allow_more=False):
    if not args or (len(args) > 1 and not allow_more):
        raise ValueError(f"'{keyword}' expects exactly one argument.")
    return args[0]


def positive_int(args, keyword, size=False):
    text = one_arg(args, keyword)
    try:
        value = parse_size(text) if size else int(text)
    except ValueError:
        raise ValueError(f"'{keyword}' expects an integer argument.") from None
    if value <= 0:
        raise ValueError(f"'{keyword}' expects a positive integer argument.")
    return value


def c_atol(text: str) -> int:
    """C's atol()/atoi(), as HAProxy reads many numbers: optional blanks and sign, then the
    leading digits; 0 when there are none."""
    digits = re.match(r"\s*[-+]?\d*", text).group().strip()
    return int(digits) if digits.lstrip("+-") else 0


def process_set(text: str, maximum: int) -> set:
    """HAProxy's parse_process_number(): ``all``, ``odd``, ``even``, ``<n>`` or
    ``<n>-[<m>]``, numbered from 1 to ``maximum``; its messages otherwise."""
    if text == "all":
        return set(range(1, maximum + 1))
    if text in ("odd", "even"):
        return set(range(1 if text == "odd" else 2, maximum + 1, 2))
    dash = text.find("-")
    if any(c not in "0123456789" for i, c in enumerate(text) if i != dash):
        raise ValueError(f"'{text}' is not a valid number/range.")
    low, high = (text[:dash], text[dash + 1:]) if dash >= 0 else (text, None)
    first = int(low) if low else 0              # str2uic(): no digit reads as 0
    last = first if high is None else int(high) if high else maximum
    first, last = min(first, last), max(first, last)
    if first < 1 or last > maximum:
        raise ValueError(f"'{text}' is not a valid number/range. It supports numbers from 1 "
                         f"to {maximum}.")
    return set(range(first, last + 1))


# the stats socket's settings, and their values (HAProxy's cli.c)
CLI_BIND_VALUES = {"level": ("user", "operator", "admin"), "expose-fd": ("listeners",),
                   "severity-output": ("none", "number", "string")}
_CLI_MISSING = {"level": "level", "expose-fd": "fd type", "severity-output": "severity format"}


def cli_bind_option(option: str, value: str | None) -> str:
    """A ``level``, ``expose-fd`` or ``severity-output`` value, checked with HAProxy's
    messages."""
    if not value:
        raise ValueError(f"'{option}' : missing {_CLI_MISSING[option]}")
    allowed = CLI_BIND_VALUES[option]
    if value not in allowed:
        names = ", ".join(f"'{v}'" for v in allowed[:-1])
        listed = f"{names}, and '{allowed[-1]}'" if len(allowed) > 1 else f"'{allowed[0]}'"
        raise ValueError(f"'{option}' only supports {listed} (got '{value}')")
    return value


def non_negative_int(args, keyword):
    """An integer where 0 means "no limit" (HAProxy's rate limits)."""
    text = one_arg(args, keyword)
    if not text.isdigit():
        raise ValueError(f"'{keyword}' expects an integer argument.")
    return int(text)


def condition(proxy, words, what):
    """An ``if|unless <condition>`` whose ACLs the proxy has declared (or are predefined)."""
    try:
        parsed = parse_condition(words)
    except AclError as exc:
        raise ValueError(f"error detected while parsing {what} condition : {exc}") from None
    for name in condition_acl_names(parsed):
        if name not in proxy.acls and name not in PREDEFINED:
            raise ValueError(f"error detected while parsing {what} : no such ACL : '{name}'.")
    return parsed


def log_statement(targets, args, in_global):
    """``log <address> [len <n>] [format <f>] <facility> [<level> [<minlevel>]]``, in
    global or in a proxy; appends the target to ``targets``."""
    if not args:
        raise ValueError("'log' expects either <address[:port]> and <facility> or 'global' as arguments.")
    if args[0] == "global":
        if in_global:
            raise ValueError("'log global' is only permitted in proxies.")
    kind, address, family = addresses.parse_log_address(args[0])
    target = LogTarget(kind=kind, address=address, family=family, text=args[0])
    rest = args[1:]
    while rest and rest[0] in ("len", "format", "sample"):
        if len(rest) < 2:
            raise ValueError(f"'log' : missing value after '{rest[0]}'.")
        if rest[0] == "len":
            if not rest[1].isdigit() or not 80 <= int(rest[1]) <= 65535:
                raise ValueError(f"'log' : invalid 'len' value '{rest[1]}' (80..65535).")
            target.length = int(rest[1])
        elif rest[0] == "format":
            if rest[1] not in LOG_FORMATS:
                raise ValueError(f"'log' : unknown log format '{rest[1]}'")
            target.format = rest[1]
        else:
            raise ValueError("'log ... sample' is not supported by fastlb yet.")
        rest = rest[2:]
    if not rest:
        raise ValueError("'log' expects <facility> as argument.")
    if rest[0] not in FACILITIES:
        raise ValueError(f"unknown log facility '{rest[0]}'")
    target.facility = FACILITIES.index(rest[0])
    if len(rest) > 1:
        if rest[1] not in LEVELS:
            raise ValueError(f"unknown optional log level '{rest[1]}'")
        target.max_level = LEVELS.index(rest[1])
    if len(rest) > 2:
        if rest[2] not in LEVELS:
            raise ValueError(f"unknown optional minimum log level '{rest[2]}'")
        target.min_level = LEVELS.index(rest[2])
    if len(rest) > 3:
        raise ValueError(f"'log' : unexpected argument '{rest[3]}'.")
    targets.append(target)
