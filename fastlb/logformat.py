"""HAProxy log-format strings: ``%ci:%cp [%tr] %ft %b/%s ...`` compiled once, rendered per log.

The built-in formats (``option httplog``) are log-format strings too, so a custom
``log-format`` and the default line share one renderer.  Each ``%`` variable is one entry
of VARIABLES: what it renders on a TCP session's line and on an HTTP request's line.
A format compiles, once, to a list of pieces per kind of line (text, or a function that
renders one variable), so rendering a line only calls the variables it uses.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from operator import attrgetter
from typing import Callable, Optional

from .logsink import format_accept_date

TCPLOG = "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq"
HTTPLOG = ("%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc "
           "%ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r")
# With no capture configured, HAProxy drops %hr %hs and their spaces.
HTTPLOG_NO_CAPTURE = HTTPLOG.replace(" %hr %hs", "")

_TOKEN = re.compile(r"%(?:\{([^}]*)\})?([A-Za-z]+)|%%")
SEPARATOR = object()
TCP, HTTP = 0, 1              # the kinds of line, indexes of LogFormat.pieces


class LogFormatError(ValueError):
    pass


class TcpLine:
    """What one TCP session's log line is made of."""
    __slots__ = ("addr", "frontend", "backend", "server", "date_ms", "tw", "tc", "tt",
                 "bytes_out", "term", "ac", "fc", "bc", "sc", "rc", "pid")
    kind = TCP


class HttpLine:
    """What one HTTP request's log line is made of."""
    __slots__ = ("addr", "frontend", "backend", "server", "date_ms", "tr", "tw", "tc", "tresp",
                 "ta", "status", "bytes_out", "term", "ac", "fc", "bc", "sc", "rc", "request",
                 "req_caps", "rsp_caps", "pid", "_request_parts")
    kind = HTTP

    def request_parts(self) -> tuple:
        """(method, uri, path, "?query" or "", version) of the request line."""
        if self._request_parts is None:
            method, _, rest = self.request.partition(" ")
            uri, _, version = rest.rpartition(" ") if " " in rest else (rest, "", "")
            path, _, query = uri.partition("?")
            self._request_parts = (method, uri, path, f"?{query}" if query else "", version)
        return self._request_parts


def _session(line, addr, frontend: str, backend: str, server: str, date_ms: int,
             counters: tuple, pid: int):
    """What every log line has: addresses, names, date, connection counts."""
    line.addr, line.frontend, line.backend, line.server = addr, frontend, backend, server
    line.date_ms, line.pid = date_ms, pid
    line.ac, line.fc, line.bc, line.sc, line.rc = counters
    return line


def tcp_fields(addr, frontend: str, backend: str, server: str, accept_ms: int, timers: tuple,
               bytes_out: int, term: str, counters: tuple, pid: int) -> TcpLine:
    line = _session(TcpLine(), addr, frontend, backend, server, accept_ms, counters, pid)
    line.tw, line.tc, line.tt = timers
    line.bytes_out, line.term = bytes_out, term
    return line


def http_fields(addr, frontend: str, backend: str, server: str, start_ms: int, timers: tuple,
                status: int, bytes_out: int, term: str, counters: tuple, request_line: str,
                captures: tuple, pid: int) -> HttpLine:
    line = _session(HttpLine(), addr, frontend, backend, server, start_ms, counters, pid)
    line.tr, line.tw, line.tc, line.tresp, line.ta = timers
    line.status, line.bytes_out, line.term, line.request = status, bytes_out, term, request_line
    line.req_caps, line.rsp_caps = captures
    line._request_parts = None
    return line


# -- the variables -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Variable:
    """How a variable renders on each kind of line: ``read(line) -> value``, or None for
    "-" (HAProxy's mark for a value it does not have)."""
    tcp: Optional[Callable] = None
    http: Optional[Callable] = None


def both(read: Callable) -> Variable:
    return Variable(tcp=read, http=read)


def _accept_date(line) -> str:
    return format_accept_date(line.date_ms)


def _capture_block(captures) -> str:
    return "{" + "|".join(captures) + "}" if captures is not None else ""


def _request_part(index: int) -> Callable:
    return lambda line: line.request_parts()[index]


VARIABLES = {
    "ci": both(lambda line: line.addr[0]),
    "cp": both(lambda line: line.addr[1]),
    "fi": Variable(), "fp": Variable(),         # frontend address: not known yet
    "ft": both(attrgetter("frontend")),
    "f": both(attrgetter("frontend")),
    "b": both(attrgetter("backend")),
    "s": both(attrgetter("server")),
    "si": Variable(), "sp": Variable(),         # server address: not known yet
    "t": both(_accept_date),
    "tr": both(_accept_date),
    "T": Variable(),
    "TR": Variable(http=attrgetter("tr")),
    "Tw": both(attrgetter("tw")),
    "Tc": both(attrgetter("tc")),
    "Tr": Variable(http=attrgetter("tresp")),
    "Ta": Variable(tcp=attrgetter("tt"), http=attrgetter("ta")),
    "Tt": Variable(tcp=attrgetter("tt"), http=attrgetter("ta")),
    "Tq": Variable(http=attrgetter("tr")),
    "ST": Variable(http=attrgetter("status")),
    "B": both(attrgetter("bytes_out")),
    "CC": Variable(), "CS": Variable(),         # no cookie capture yet
    "tsc": Variable(tcp=lambda line: line.term + "--", http=attrgetter("term")),
    "ts": Variable(tcp=attrgetter("term"), http=lambda line: line.term[:2]),
    "ac": both(attrgetter("ac")),
    "fc": both(attrgetter("fc")),
    "bc": both(attrgetter("bc")),
    "sc": both(attrgetter("sc")),
    "rc": both(attrgetter("rc")),
    "sq": both(lambda line: 0),
    "bq": both(lambda line: 0),
    "hr": Variable(tcp=lambda line: "", http=lambda line: _capture_block(line.req_caps)),
    "hs": Variable(tcp=lambda line: "", http=lambda line: _capture_block(line.rsp_caps)),
    "hrl": Variable(http=lambda line: " ".join(line.req_caps or ())),
    "hsl": Variable(http=lambda line: " ".join(line.rsp_caps or ())),
    "r": Variable(http=attrgetter("request")),
    "HM": Variable(http=_request_part(0)),
    "HU": Variable(http=_request_part(1)),
    "HP": Variable(http=_request_part(2)),
    "HQ": Variable(http=_request_part(3)),
    "HV": Variable(http=_request_part(4)),
    "pid": both(attrgetter("pid")),
    "U": Variable(),
}


# -- compiling and rendering -------------------------------------------------------------------
class LogFormat:
    """A compiled format: for each kind of line (TCP, HTTP), its pieces in order: SEPARATOR,
    a text, or ``piece(line) -> text`` for a variable."""
    __slots__ = ("pieces",)

    def __init__(self, pieces: tuple):
        self.pieces = pieces


def _quote(value: str) -> str:
    return '"' + value.replace('"', '\\"') + '"'


def _piece(read: Optional[Callable], quoted: bool):
    if read is None:
        return _quote("-") if quoted else "-"
    if quoted:
        def piece(line) -> str:
            value = read(line)
            return _quote("-" if value is None else str(value))
    else:
        def piece(line) -> str:
            value = read(line)
            return "-" if value is None else str(value)
    return piece


def compile_format(text: str) -> LogFormat:
    """Unknown variables are errors."""
    parts: list = []            # SEPARATOR, text, or (Variable, quoted)
    pos = 0

    def literal(chunk: str) -> None:
        # HAProxy treats runs of spaces as one separator (see render)
        for piece in re.split(r"( +)", chunk):
            if piece:
                parts.append(SEPARATOR if piece.startswith(" ") else piece)

    for match in _TOKEN.finditer(text):
        if match.start() > pos:
            literal(text[pos:match.start()])
        pos = match.end()
        if match.group(0) == "%%":
            parts.append("%")
            continue
        flags, name = match.group(1) or "", match.group(2)
        # %[...] sample expressions and unknown names are refused, never silently dropped
        if name not in VARIABLES:
            raise LogFormatError(f"no such format variable '{name}'. If you wanted to emit the "
                                 "'%' character verbatim, you need to use '%%'")
        parts.append((VARIABLES[name], "+Q" in flags.split(",")))
    if pos < len(text):
        literal(text[pos:])
    if "%[" in text:
        raise LogFormatError("sample expressions '%[...]' in log-format are not supported by "
                             "fastlb yet")
    pieces = ([], [])
    for part in parts:
        if isinstance(part, tuple):
            variable, quoted = part
            pieces[TCP].append(_piece(variable.tcp, quoted))
            pieces[HTTP].append(_piece(variable.http, quoted))
        else:
            pieces[TCP].append(part)
            pieces[HTTP].append(part)
    return LogFormat((tuple(pieces[TCP]), tuple(pieces[HTTP])))


def render(fmt: LogFormat, line) -> str:
    """A separator is written only after something that is not a space: an empty field
    (no capture for a bad request) does not leave a double space, as in HAProxy."""
    out = []
    last_is_space = True
    for piece in fmt.pieces[line.kind]:
        if piece is SEPARATOR:
            if not last_is_space:
                out.append(" ")
                last_is_space = True
            continue
        text = piece if piece.__class__ is str else piece(line)
        if text:
            out.append(text)
            last_is_space = False
    return "".join(out)
