"""The keyword tables of the sample engine: fetches and converters, each registered by the
module that implements it (``@fetch``, ``@converter``), with its arguments, its output
type and what it reads (so that a rule that could never have it is refused at start-up).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Optional

from .types import ANY, STR, SINT


class SampleError(ValueError):
    pass


class NotAvailable(SampleError):
    """The fetch reads what the place it is used in does not have (an ACL using it there
    never matches; a rule value using it is refused)."""


# What a fetch reads, named as HAProxy names it in its start-up errors.
INTERNAL = "internal"                         # constants, variables, the clock: anywhere
L4 = "layer4"                                 # addresses, names, counters: always there
REQ_HEADERS = "HTTP request headers"
RES_HEADERS = "HTTP response headers"
RESPONSE = "HTTP response"                    # the status, the captures
BACKEND = "backend"
SERVER = "server"
REQ_BODY = "request buffer"
REQ_CONTENT = "request contents"              # the bytes tcp-request content rules inspect
RES_CONTENT = "response contents"             # ... and tcp-response content rules


class MissingData(Exception):
    """A content fetch could still change its answer (HAProxy's SMP_F_MAY_CHANGE) while
    the rules are evaluated on partial data: the evaluation waits for more bytes."""

# Where an expression runs -> what it may read there.
PLACES = {
    "frontend http-request": {INTERNAL, L4, REQ_HEADERS, REQ_BODY},
    "backend http-request": {INTERNAL, L4, REQ_HEADERS, BACKEND, REQ_BODY},
    "use_backend": {INTERNAL, L4, REQ_HEADERS, REQ_BODY},
    "http-response": {INTERNAL, L4, RES_HEADERS, RESPONSE, BACKEND, SERVER},
    "http-after-response": {INTERNAL, L4, RES_HEADERS, RESPONSE, BACKEND, SERVER},
    "log": {INTERNAL, L4, RESPONSE, BACKEND, SERVER},
    # an http-error page with log-format parts: made when the answer is (request or
    # response side); hdr() reads the request's
    "http-error": {INTERNAL, L4, REQ_HEADERS, RESPONSE, BACKEND, SERVER},
    "tcp-request connection": {INTERNAL, L4},
    "tcp-request content": {INTERNAL, L4, REQ_CONTENT},
    "tcp-request session": {INTERNAL, L4},
    "tcp-response content": {INTERNAL, L4, RES_CONTENT, BACKEND, SERVER},
    "tcp use_backend": {INTERNAL, L4, REQ_CONTENT},
    "balance": {INTERNAL, L4, REQ_HEADERS, BACKEND, REQ_CONTENT},
    "global": {INTERNAL},                     # set-var in the global section, at parse time
}


@dataclass(frozen=True)
class Context:
    """What the compiler knows of the place an expression is compiled for."""
    place: str
    env: object = None             # run-time lookups (names, counters, maps): see SampleEnv
    proxy: str = ""                # the proxy the expression belongs to

    @property
    def available(self) -> set:
        return PLACES[self.place]

    @property
    def base_dir(self) -> str:
        """Where relative file names (maps) of its proxy are read from."""
        return self.env.base_dir(self.proxy) if self.env is not None else "."

    @property
    def response(self) -> bool:
        return RES_HEADERS in PLACES[self.place]


@dataclass(frozen=True)
class Fetch:
    """``build(args, ctx) -> read(stream)``: a sample, None (none), or with ``many`` the
    list of every occurrence; ``pick`` then says which one an expression takes."""
    name: str
    out: str
    args: tuple                     # (kind, optional) per argument
    needs: tuple                    # what it reads: any one of them will do
    build: Callable
    many: bool = False
    pick: int = -1
    refused: str = ""               # why fastlb refuses it at start-up (not supported yet)


@dataclass(frozen=True)
class Converter:
    """``build(args, ctx) -> convert(sample, stream) -> sample | None``."""
    name: str
    takes: str
    out: str
    args: tuple
    build: Callable
    refused: str = ""


FETCHES: dict[str, Fetch] = {}
CONVERTERS: dict[str, Converter] = {}


def _signature(spec: str) -> tuple:
    if not spec:
        return ()
    return tuple((kind.rstrip("?"), kind.endswith("?")) for kind in spec.split(","))


def fetch(*names: str, out: str = STR, args: str = "", needs=(L4,), many: bool = False,
          pick: int = -1, refused: str = ""):
    """Register ``build`` under ``names``.  A fetch without arguments may register a
    plain ``read(stream)`` (``build`` then takes no arguments and returns it)."""
    def register(build):
        entry = Fetch(names[0], out, _signature(args), tuple(needs), build, many, pick,
                      refused)
        for name in names:
            FETCHES[name] = entry
        return build
    return register


def converter(*names: str, takes: str = STR, out: str = STR, args: str = "",
              refused: str = ""):
    def register(build):
        entry = Converter(names[0], takes, out, _signature(args), build, refused)
        for name in names:
            CONVERTERS[name] = entry
        return build
    return register


def constant(read: Callable) -> Callable:
    """A fetch without arguments: its builder returns ``read`` itself."""
    return lambda args, ctx: read


# ------------------------------------------------------------------ argument lists
def split_arguments(text: str) -> list[str]:
    """``a,"b,c",'d'`` -> ["a", "b,c", "d"]: commas separate, quotes group; outside
    single quotes a backslash escapes a backslash, a space or a quote and writes \\r \\n
    \\t, and any other backslash stays (``regsub(\\.,_)`` keeps its regex): HAProxy 2.6's
    argument syntax."""
    out, current, quote, i = [], [], "", 0
    while i < len(text):
        char = text[i]
        if char == "\\" and quote != "'" and i + 1 < len(text):
            following = text[i + 1]
            if following in "\\ \"'":
                current.append(following)
            elif following in "rnt":
                current.append({"r": "\r", "n": "\n", "t": "\t"}[following])
            else:
                current.append(char)
                i += 1
                continue
            i += 2
            continue
        if quote:
            if char == quote:
                quote = ""
            else:
                current.append(char)
        elif char in "\"'":
            quote = char
        elif char == ",":
            out.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    if quote:
        raise SampleError(f"unterminated quote in argument list '{text}'")
    out.append("".join(current))
    return out


VAR_NAME = re.compile(r"(proc|sess|txn|req|res)\.[A-Za-z0-9._]+")


def parse_arguments(keyword: str, signature: tuple, text: Optional[str]) -> list:
    """The typed arguments of ``keyword(text)``, missing optional ones as None."""
    words = split_arguments(text) if text else []
    required = sum(1 for _, optional in signature if not optional)
    if len(words) > len(signature):
        raise SampleError(f"invalid args in '{keyword}' : end of arguments expected at "
                          f"position {len(signature) + 1}, but got ','.")
    if len(words) < required:
        raise SampleError(f"missing args for '{keyword}' : expects at least {required} "
                          f"arguments ({len(words)} given).")
    values = []
    for index, (kind, optional) in enumerate(signature):
        if index >= len(words):
            values.append(None)
            continue
        word = words[index]
        if kind == "int":
            try:
                values.append(int(word))
            except ValueError:
                raise SampleError(f"invalid arg {index + 1} in '{keyword}' : expects an "
                                  f"integer, got '{word}'.") from None
        elif kind == "var":
            if not VAR_NAME.fullmatch(word):
                raise SampleError(f"invalid arg {index + 1} in '{keyword}' : invalid "
                                  f"variable name '{word}'. Expects 'proc', 'sess', 'txn', "
                                  "'req' or 'res' scope, then a name.")
            values.append(word)
        elif kind == "reg":
            try:
                values.append(re.compile(word.encode("utf-8", "surrogateescape")))
            except re.error as exc:
                raise SampleError(f"invalid arg {index + 1} in '{keyword}' : invalid "
                                  f"regex '{word}' ({exc}).") from None
        else:                      # str
            values.append(word)
    return values


def int_or_var(word: Optional[str]):
    """An arithmetic converter's argument: a number, or a variable read per request."""
    if word is None:
        raise SampleError("missing argument")
    try:
        value = int(word)
        return lambda stream: value
    except ValueError:
        pass
    if not VAR_NAME.fullmatch(word):
        raise SampleError(f"'{word}' is neither a number nor a variable name")

    def read(stream):
        from .types import dynamic_cast
        sample = stream.get_var(word)
        return None if sample is None else dynamic_cast(sample, SINT)
    return read


__all__ = ["ANY", "BACKEND", "CONVERTERS", "Context", "Converter", "FETCHES", "Fetch", "L4",
           "PLACES", "REQ_BODY", "REQ_CONTENT", "RES_CONTENT", "MissingData", "REQ_HEADERS", "RESPONSE", "RES_HEADERS", "SERVER",
           "NotAvailable", "SampleError", "constant", "converter", "fetch", "int_or_var", "parse_arguments",
           "split_arguments"]
