"""Split one haproxy.cfg line into words, following HAProxy's parse_line() rules.

- words are separated by unquoted white space; an unquoted ``#`` starts a comment;
- ``"..."`` groups text and expands environment variables inside it;
- ``'...'`` groups text literally;
- a backslash outside single quotes escapes ``\\ \\  \\# \\" \\' \\t \\n \\r \\xHH``
  (``\\$`` inside double quotes); any other ``\\X`` is kept as is, so regex
  back-references such as ``\\1`` survive.
"""
from __future__ import annotations

import os
import re

_SIMPLE_ESCAPES = {"\\": "\\", " ": " ", "#": "#", '"': '"', "'": "'",
                   "t": "\t", "n": "\n", "r": "\r"}
_NAME_START = re.compile(r"[A-Za-z_]")
_NAME_CHARS = re.compile(r"[A-Za-z0-9_]*")


class TokenizeError(ValueError):
    """A line that cannot be split (unbalanced quote, bad escape)."""


def _expand_variable(line: str, pos: int, env) -> tuple[str, int]:
    """Expand ``$NAME``, ``${NAME}`` or ``${NAME-default}`` starting at ``line[pos] == '$'``.

    Returns the expansion and the index just after the reference.  A ``$`` not
    followed by a variable name is kept literally, as HAProxy does.
    """
    braced = pos + 1 < len(line) and line[pos + 1] == "{"
    start = pos + 2 if braced else pos + 1
    if start >= len(line) or not _NAME_START.match(line[start]):
        return "$", pos + 1
    end = _NAME_CHARS.match(line, start + 1).end()
    name = line[start:end]
    default = None
    if braced:
        if end < len(line) and line[end] == "-":
            close = line.find("}", end)
            if close < 0:
                raise TokenizeError("unterminated '${' in variable reference")
            default = line[end + 1:close]
            end = close
        if end >= len(line) or line[end] != "}":
            raise TokenizeError(f"missing closing '}}' for variable '{name}'")
        end += 1
    value = env.get(name)
    if value is None:
        value = default if default is not None else ""
    return value, end


def tokenize(line: str, env=None, comments: bool = True) -> list[str]:
    """Return the words of ``line`` with quotes removed and escapes/variables applied;
    ``comments=False`` keeps an unquoted ``#`` as text (haproxy -cc reads it so)."""
    if env is None:
        env = os.environ
    words: list[str] = []
    current: list[str] = []
    in_word = False
    quote = None  # None, '"' or "'"
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if quote == "'":
            if c == "'":
                quote = None
            else:
                current.append(c)
            i += 1
            continue
        if c == "\\":
            if i + 1 >= n:
                raise TokenizeError("truncated escape sequence at end of line")
            nxt = line[i + 1]
            if nxt == "x":
                digits = line[i + 2:i + 4]
                if len(digits) != 2 or not all(d in "0123456789abcdefABCDEF" for d in digits):
                    raise TokenizeError("invalid '\\x' sequence, expected two hex digits")
                current.append(chr(int(digits, 16)))
                i += 4
            elif nxt == "$" and quote == '"':
                current.append("$")
                i += 2
            elif nxt in _SIMPLE_ESCAPES:
                current.append(_SIMPLE_ESCAPES[nxt])
                i += 2
            else:
                current.append(c)
                i += 1
            in_word = True
            continue
        if quote == '"':
            if c == '"':
                quote = None
                i += 1
            elif c == "$":
                value, i = _expand_variable(line, i, env)
                current.append(value)
            else:
                current.append(c)
                i += 1
            continue
        if c in "\"'":
            quote = c
            in_word = True
            i += 1
        elif c in " \t\r\n":
            if in_word:
                words.append("".join(current))
                current = []
                in_word = False
            i += 1
        elif c == "#" and comments:
            break
        else:
            current.append(c)
            in_word = True
            i += 1
    if quote is not None:
        raise TokenizeError(f"unmatched quote ({quote}) in line")
    if in_word:
        words.append("".join(current))
    return words
