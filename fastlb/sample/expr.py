"""Sample expressions: ``fetch[(args)][,converter[(args)]]*`` compiled once into callables.

``compile_expr`` checks everything HAProxy checks at start-up (unknown keywords, argument
counts and types, a converter that cannot take the previous step's type, a fetch that
reads what the place it is used in does not have) and returns an ``Expr``:
``one(stream)`` is the expression's sample (None: no sample), ``all(stream)`` every
sample of a fetch with several occurrences (what an ACL tests), each converted.

``compile_format`` does the same for the value strings of rules (HAProxy log-format
syntax): literal text, ``%[expr]`` and the ``%ci``-style aliases of fetches.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Optional

from . import converters as _converters  # noqa: F401 - registers the converters
from . import fetches as _fetches  # noqa: F401 - registers the fetches
from . import payload as _payload  # noqa: F401 - registers the layer-6 (content) fetches
from .registry import CONVERTERS, FETCHES, Context, NotAvailable, SampleError, parse_arguments
from .fetches import INTERNAL_READERS
from .types import ANY, as_bytes, can_cast, caster


@dataclass(frozen=True)
class Expr:
    text: str
    type: str
    one: Callable                 # stream -> sample | None
    all: Callable                 # stream -> [sample]
    fetch: str                    # the fetch's keyword as written
    args: tuple
    plain: bool                   # no converter: ``all`` is the fetch's own reader
    many: bool


def parse_chain(text: str) -> list[tuple[str, Optional[str]]]:
    """``a(x),b,c(y,z)`` -> [("a", "x"), ("b", None), ("c", "y,z")]."""
    steps, i, n = [], 0, len(text)
    while True:
        start = i
        while i < n and text[i] not in "(,":
            i += 1
        name = text[start:i].strip()
        if not name:
            raise SampleError(f"missing fetch method in sample expression '{text}'"
                              if not steps else f"missing converter name in '{text}'")
        args = None
        if i < n and text[i] == "(":
            end = closing_parenthesis(text, i)
            if end < 0:
                raise SampleError(f"missing closing ')' after arguments to '{name}'")
            args = text[i + 1:end]
            i = end + 1
        steps.append((name, args))
        if i >= n:
            return steps
        if text[i] != ",":
            raise SampleError(f"syntax error after '{text[:i]}' in sample expression "
                              f"'{text}'")
        i += 1


def closing_parenthesis(text: str, start: int) -> int:
    """The index of the ')' closing the '(' at ``start`` (quotes and backslashes
    respected), or -1."""
    quote, i = "", start + 1
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == ")":
            return i
        i += 1
    return -1


@dataclass(frozen=True)
class Checked:
    """What parsing an expression tells without building it (at configuration time, before
    the run-time tables exist): its output type, its fetch, whether it has several values."""
    text: str
    type: str
    fetch: str
    args: tuple
    plain: bool
    many: bool
    needs: tuple


def check_expr(text: str, ctx: Optional[Context] = None) -> Checked:
    """Every check that needs no run-time table: keywords, arguments, types, and (with a
    ``ctx``) whether the fetch reads what the place has."""
    steps = parse_chain(text)
    name, arg_text = steps[0]
    entry = FETCHES.get(name)
    if entry is None:
        raise SampleError(f"unknown fetch method '{name}'")
    if entry.refused:
        raise SampleError(f"fetch method '{name}' {entry.refused}")
    if ctx is not None and not any(need in ctx.available for need in entry.needs):
        raise NotAvailable(f"sample fetch <{text}> may not be reliably used here because it "
                           f"needs '{','.join(entry.needs)}' which is not available here.")
    args = tuple(parse_arguments(name, entry.args, arg_text))
    kind = entry.out
    for conv_name, conv_args in steps[1:]:
        conv = CONVERTERS.get(conv_name)
        if conv is None:
            raise SampleError(f"unknown converter '{conv_name}'")
        if conv.refused:
            raise SampleError(f"converter '{conv_name}' {conv.refused}")
        if not can_cast(kind, conv.takes):
            raise SampleError(f"converter '{conv_name}' cannot be applied.")
        parse_arguments(conv_name, conv.args, conv_args)
        kind = conv.out if conv.out != "same" else kind
    return Checked(text, kind, name, args, len(steps) == 1, entry.many, entry.needs)


def compile_expr(text: str, ctx: Context) -> Expr:
    checked = check_expr(text, ctx)
    steps = parse_chain(text)
    entry = FETCHES[checked.fetch]
    read = entry.build(list(checked.args), ctx)
    kind = entry.out
    chain = []
    for conv_name, conv_args in steps[1:]:
        conv = CONVERTERS[conv_name]
        convert = conv.build(parse_arguments(conv_name, conv.args, conv_args), ctx)
        chain.append((caster(kind, conv.takes), convert))
        kind = conv.out if conv.out != "same" else kind
    one, every = _compose(read, entry.many, entry.pick, tuple(chain))
    return Expr(text, kind, one, every, checked.fetch, checked.args, not chain, entry.many)


def _compose(read: Callable, many: bool, pick: int, chain: tuple):
    if many:
        def first(stream):
            values = read(stream)
            return values[pick] if values else None
    else:
        first = read
    if not chain:
        every = read if many else (lambda stream: _listed(read(stream)))
        return first, every

    def convert(value, stream):
        for cast, step in chain:
            if cast is not None:
                value = cast(value)
                if value is None:
                    return None
            value = step(value, stream)
            if value is None:
                return None
        return value

    def one(stream):
        value = first(stream)
        return None if value is None else convert(value, stream)

    if many:
        def every(stream):
            out = []
            for value in read(stream):
                value = convert(value, stream)
                if value is not None:
                    out.append(value)
            return out
    else:
        def every(stream):
            return _listed(one(stream))
    return one, every


def _listed(value) -> list:
    return [] if value is None else [value]


# ----------------------------------------------------------------- format strings
# log-format variables a rule's value may use, as the fetches they stand for
ALIASES = {
    "ci": "src", "cp": "src_port", "fi": "dst", "fp": "dst_port", "ft": "fe_name",
    "f": "fe_name", "b": "be_name", "s": "srv_name", "ID": "unique-id", "H": "hostname",
    "HM": "method", "HU": "url", "HP": "path", "ST": "status",
}


def find_sample_end(text: str, start: int) -> int:
    """The index of the ']' ending the sample expression starting at ``start``."""
    depth, quote, i = 0, "", start
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "]" and depth <= 0:
            return i
        i += 1
    return -1


# What HAProxy percent-encodes in a sample written into an HTTP value: the control
# characters but HTAB (so no sample can end a header or a line), and DEL.
_HTTP_ENCODED = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def http_encode(value: bytes) -> bytes:
    if _HTTP_ENCODED.search(value) is None:
        return value
    return _HTTP_ENCODED.sub(lambda m: b"%%%02X" % m.group(0)[0], value)


@dataclass(frozen=True)
class Format:
    """A compiled value: ``render(stream) -> bytes`` (a missing sample renders empty).
    ``http``: its samples go into an HTTP value, encoded as HAProxy encodes them."""
    text: str
    pieces: tuple                 # bytes, or an Expr
    constant: Optional[bytes]     # the whole value when it has no sample
    http: bool = True

    def render(self, stream) -> bytes:
        if self.constant is not None:
            return self.constant
        out = []
        for piece in self.pieces:
            if piece.__class__ is bytes:
                out.append(piece)
            else:
                value = piece.one(stream)
                if value is not None:
                    value = as_bytes(value)
                    out.append(http_encode(value) if self.http else value)
        return b"".join(out)


def compile_format(text: str, ctx: Context, check_only: bool = False,
                   http: bool = True) -> Format:
    """A rule's value: literal text, ``%%``, ``%[expr]``, ``%{flags}[expr]`` and the
    ``%ci``-style variables that are fetches (ALIASES); anything else is refused."""
    pieces: list = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "%":
            literal.append(char)
            i += 1
            continue
        if text[i + 1:i + 2] == "%":
            literal.append("%")
            i += 2
            continue
        j = i + 1
        if text[j:j + 1] == "{":
            close = text.find("}", j)
            if close < 0:
                raise SampleError(f"missing '}}' after '%{{' in '{text}'")
            j = close + 1
        if text[j:j + 1] == "[":
            end = find_sample_end(text, j + 1)
            if end < 0:
                raise SampleError(f"missing ']' after sample expression in '{text}'")
            expr = (check_expr if check_only else compile_expr)(text[j + 1:end], ctx)
            i = end + 1
        else:
            k = j
            while k < len(text) and (text[k].isalnum()):
                k += 1
            name = text[j:k]
            if name in INTERNAL_READERS:
                read = INTERNAL_READERS[name]
                expr = Expr("%" + name, ANY, read, lambda stream: [read(stream)], name, (),
                            True, False)
                i = k
                pieces.append("".join(literal).encode("utf-8", "surrogateescape"))
                literal = []
                pieces.append(expr)
                continue
            if name not in ALIASES:
                raise SampleError(f"no such format variable '{name}'. If you wanted to emit "
                                  "the '%' character verbatim, you need to use '%%'")
            expr = (check_expr if check_only else compile_expr)(ALIASES[name], ctx)
            i = k
        if literal:
            pieces.append("".join(literal).encode("utf-8", "surrogateescape"))
            literal = []
        pieces.append(expr)
    if literal:
        pieces.append("".join(literal).encode("utf-8", "surrogateescape"))
    constant = None
    if all(p.__class__ is bytes for p in pieces):
        constant = b"".join(pieces)
    return Format(text, tuple(pieces), constant, http)
