"""HAProxy log-format strings: ``%ci:%cp [%tr] %ft %b/%s ...`` compiled once, rendered per log.

The built-in formats (``option httplog``) are log-format strings too, so a custom
``log-format`` and the default line share one renderer.  Each ``%`` variable is one entry
of VARIABLES: what it renders on a TCP session's line and on an HTTP request's line.
A format compiles, once, to a list of pieces per kind of line (text, or a function that
renders one variable), so rendering a line only calls the variables it uses.
"""
from __future__ import annotations

import itertools
import re
import socket
import time
from dataclasses import dataclass
from operator import attrgetter
from typing import Callable, Optional

from .logsink import MONTHS, format_accept_date
from .sample.expr import check_expr, compile_expr, find_sample_end
from .sample.registry import Context, SampleError

TCPLOG = "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq"
HTTPLOG = ("%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc "
           "%ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r")
# option httplog clf
CLFLOG = ("%{+Q}o %{-Q}ci - - [%trg] %r %ST %B \"\" \"\" %cp %ms %ft %b %s %TR %Tw %Tc %Tr %Ta "
          "%tsc %ac %fc %bc %sc %rc %sq %bq %CC %CS %hrl %hsl")
# With no capture configured, HAProxy drops %hr %hs and their spaces.
HTTPLOG_NO_CAPTURE = HTTPLOG.replace(" %hr %hs", "")

_TOKEN = re.compile(r"%(?:\{([^}]*)\})?([A-Za-z]+|\[)|%%")
SEPARATOR = object()
TCP, HTTP = 0, 1              # the kinds of line, indexes of LogFormat.pieces


class LogFormatError(ValueError):
    pass


class TcpLine:
    """What one TCP session's log line is made of."""
    __slots__ = ("addr", "frontend", "backend", "server", "date_ms", "tw", "tc", "tt",
                 "bytes_out", "term", "ac", "fc", "bc", "sc", "rc", "pid", "rec", "rt", "lc",
                 "unique_id", "stream", "logasap")
    kind = TCP


class HttpLine:
    """What one HTTP request's log line is made of."""
    __slots__ = ("addr", "frontend", "backend", "server", "date_ms", "tr", "tw", "tc", "tresp",
                 "ta", "status", "bytes_out", "term", "ac", "fc", "bc", "sc", "rc", "request",
                 "req_caps", "rsp_caps", "cookie_req", "cookie_rsp", "pid", "_request_parts", "rec", "rt", "lc",
                 "unique_id", "stream", "logasap")
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
    """What every log line has: addresses, names, date, connection counts.  ``rec`` (the
    loop's LogRecord: addresses, %U, %Ti), ``rt``/``lc`` (counters), ``unique_id`` and
    ``stream`` (%[...]) are set by the logger when it has them."""
    line.addr, line.frontend, line.backend, line.server = addr, frontend, backend, server
    line.date_ms, line.pid = date_ms, pid
    line.ac, line.fc, line.bc, line.sc, line.rc = counters
    line.rec = line.unique_id = line.stream = None
    line.rt = line.lc = 0
    line.logasap = False
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
    line.req_caps, line.rsp_caps = captures[:2]
    # capture cookie: what the client sent and what the server set ("-": none)
    line.cookie_req, line.cookie_rsp = captures[2:] if len(captures) > 2 else (None, None)
    line._request_parts = None
    return line


# -- the request counter (%rt) and the unique id -----------------------------------------------
_REQUESTS = itertools.count()


def next_request() -> int:
    """%rt: this process's sessions and requests, from 0 (a worker's own count)."""
    return next(_REQUESTS)


class _Addresses:
    """The part of the loop's record a unique id reads (%fi/%fp) while the request runs."""
    __slots__ = ("frontend_addr", "server_addr", "backend_src", "bytes_in", "t_idle")

    def __init__(self, frontend_addr):
        self.frontend_addr = frontend_addr
        self.server_addr = self.backend_src = None
        self.bytes_in = self.t_idle = 0


UNIQUE_ID_LEN = 128     # HAProxy keeps a unique id's first 127 characters


def unique_id_maker(fmt: "LogFormat", frontend: str, pid: int) -> Callable:
    """``make(stream) -> bytes``: ``unique-id-format`` rendered for a request as it arrives
    (the timers, bytes and status it may name are not known yet: '-' or -1)."""
    def make(stream) -> bytes:
        method = (stream.method or b"").decode("latin-1")
        request = f"{method} {stream.url.decode('latin-1')} HTTP/{stream.version.decode()}"
        line = http_fields((stream.src, stream.src_port), frontend, frontend, "<NOSRV>",
                           int(time.time() * 1000), (-1, -1, -1, -1, -1), -1, 0, "----",
                           (0, 0, 0, 0, "0"), request, (stream.captures_req, None), pid)
        line.rec = _Addresses((stream.dst, stream.dst_port) if stream.dst else None)
        if stream.seq is None:
            stream.seq = next_request()
        line.rt = stream.seq
        line.stream = stream
        text = render(fmt, line)[:UNIQUE_ID_LEN - 1]
        return text.encode("latin-1", "replace")
    return make


# -- the variables -----------------------------------------------------------------------------
STRING, NUMBER, OTHER, LIST = 0, 1, 2, 3   # how +Q treats a variable: strings are quoted,
                                            # each item of a list (%hrl), others not


@dataclass(frozen=True)
class Variable:
    """How a variable renders on each kind of line: ``read(line) -> value``, or None for
    "-" (HAProxy's mark for a value it does not have).  ``http_only``: refused in a TCP
    frontend's format, as HAProxy does.  ``hex``: its rendering under the X flag."""
    tcp: Optional[Callable] = None
    http: Optional[Callable] = None
    kind: int = OTHER
    http_only: bool = False
    hex: Optional[Callable] = None


def both(read: Callable, kind: int = OTHER, hex: Optional[Callable] = None) -> Variable:
    return Variable(tcp=read, http=read, kind=kind, hex=hex)


def http_var(read: Callable, kind: int = OTHER) -> Variable:
    return Variable(http=read, kind=kind, http_only=True)


def string(read: Callable, hex: Optional[Callable] = None) -> Variable:
    return both(read, STRING, hex)


def _accept_date(line) -> str:
    return format_accept_date(line.date_ms)


def _gmt_date(line) -> str:
    """%T / %trg: ``02/Dec/2026:19:32:31 +0000``."""
    tm = time.gmtime(line.date_ms // 1000)
    return (f"{tm.tm_mday:02d}/{MONTHS[tm.tm_mon - 1]}/{tm.tm_year}:"
            f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} +0000")


def _local_date(line) -> str:
    """%Tl / %trl: the local date with its offset from UTC."""
    tm = time.localtime(line.date_ms // 1000)
    offset = tm.tm_gmtoff // 60
    sign = "-" if offset < 0 else "+"
    offset = abs(offset)
    return (f"{tm.tm_mday:02d}/{MONTHS[tm.tm_mon - 1]}/{tm.tm_year}:"
            f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} "
            f"{sign}{offset // 60:02d}{offset % 60:02d}")


def _capture_block(captures) -> str:
    return "{" + "|".join(captures) + "}" if captures is not None else ""


def _request_part(index: int) -> Callable:
    return lambda line: line.request_parts()[index]


def _path_only(line) -> str:
    """%HPO: the path without a scheme and authority (an absolute URI's)."""
    path = line.request_parts()[2]
    if "://" in path:
        rest = path.split("://", 1)[1]
        slash = rest.find("/")
        return rest[slash:] if slash >= 0 else ""
    return path


def _record(attr: str, index: int) -> Callable:
    """One part of an address of the loop's record (None: "-")."""
    def read(line):
        rec = line.rec
        value = getattr(rec, attr) if rec is not None else None
        return value[index] if value is not None else None
    return read


def _counter(attr: str) -> Callable:
    def read(line):
        return getattr(line.rec, attr) if line.rec is not None else None
    return read


def _hex_ip(value) -> str:
    try:
        return socket.inet_pton(socket.AF_INET, value).hex().upper()
    except OSError:
        return socket.inet_pton(socket.AF_INET6, value).hex().upper()


def _hex_short(value) -> str:
    return f"{int(value):04X}"


def _hex_long(value) -> str:
    return f"{int(value):08X}"


def _t_idle(line) -> int:
    rec = line.rec
    return rec.t_idle if rec is not None else 0


def _t_total(line):
    """%Tt: for a request, Ti + Ta (Th is 0: no TLS, no PROXY timing)."""
    return line.ta + _t_idle(line) if line.ta >= 0 else line.ta


def _t_q(line):
    """%Tq: Th + Ti + TR."""
    return line.tr + _t_idle(line) if line.tr >= 0 else -1


def _t_data(line):
    """%Td: Tt - (Tq + Tw + Tc + Tr), -1 when one of them is missing."""
    if line.kind == TCP:
        parts = (line.tw, line.tc)
        total = line.tt
    else:
        parts = (line.tr, line.tw, line.tc, line.tresp)
        total = line.ta
    if total < 0 or any(p < 0 for p in parts):
        return -1
    return total - sum(parts)


def _total(line):
    return _asap(line, line.tt if line.kind == TCP else _t_total(line))


def _active(line):
    return _asap(line, line.tt if line.kind == TCP else line.ta)


def _bytes(line):
    return _asap(line, line.bytes_out)


def _asap(line, value):
    """option logasap: a line sent at the response headers marks %Tt / %B with '+'."""
    return f"+{value}" if line.logasap else value


HOSTNAME = socket.gethostname()

VARIABLES = {
    "ci": string(lambda line: line.addr[0], _hex_ip),
    "cp": both(lambda line: line.addr[1], NUMBER, _hex_short),
    "fi": string(_record("frontend_addr", 0), _hex_ip),
    "fp": both(_record("frontend_addr", 1), NUMBER, _hex_short),
    "bi": string(_record("backend_src", 0), _hex_ip),
    "bp": both(_record("backend_src", 1), NUMBER, _hex_short),
    "si": string(_record("server_addr", 0), _hex_ip),
    "sp": both(_record("server_addr", 1), NUMBER, _hex_short),
    "ft": string(attrgetter("frontend")),
    "f": string(attrgetter("frontend")),
    "b": string(attrgetter("backend")),
    "s": string(attrgetter("server")),
    "H": string(lambda line: HOSTNAME),
    "t": both(_accept_date),
    "tr": http_var(_accept_date),
    "trg": http_var(_gmt_date),
    "trl": http_var(_local_date),
    "T": both(_gmt_date),
    "Tl": both(_local_date),
    "Ts": both(lambda line: line.date_ms // 1000, NUMBER, _hex_long),
    "ms": both(lambda line: f"{line.date_ms % 1000:03d}", NUMBER),
    "Th": both(lambda line: 0, NUMBER),
    "Ti": http_var(_t_idle, NUMBER),
    "TR": http_var(attrgetter("tr"), NUMBER),
    "Tq": http_var(_t_q, NUMBER),
    "Tw": both(attrgetter("tw"), NUMBER),
    "Tc": both(attrgetter("tc"), NUMBER),
    "Tr": http_var(attrgetter("tresp"), NUMBER),
    "Td": both(_t_data, NUMBER),
    "Ta": http_var(_active, NUMBER),
    "Tt": both(_total, NUMBER),
    "Tu": both(_active, NUMBER),
    "ST": Variable(tcp=lambda line: 0, http=attrgetter("status"), kind=NUMBER),
    "B": both(_bytes, NUMBER),
    "U": both(_counter("bytes_in"), NUMBER),
    "CC": Variable(http=attrgetter("cookie_req"), kind=STRING, http_only=True),
    "CS": Variable(http=attrgetter("cookie_rsp"), kind=STRING, http_only=True),
    "tsc": Variable(tcp=lambda line: line.term + "--", http=attrgetter("term")),
    "ts": Variable(tcp=attrgetter("term"), http=lambda line: line.term[:2]),
    "ac": both(attrgetter("ac"), NUMBER),
    "fc": both(attrgetter("fc"), NUMBER),
    "bc": both(attrgetter("bc"), NUMBER),
    "sc": both(attrgetter("sc"), NUMBER),
    "rc": both(attrgetter("rc"), NUMBER),
    "sq": both(lambda line: 0, NUMBER),
    "bq": both(lambda line: 0, NUMBER),
    "rt": both(attrgetter("rt"), NUMBER, _hex_short),
    "lc": both(attrgetter("lc"), NUMBER, _hex_short),
    "ID": string(attrgetter("unique_id")),
    "sslv": string(lambda line: None),           # no TLS yet: "-" as for a plain connection
    "sslc": string(lambda line: None),
    "hr": Variable(tcp=lambda line: "", http=lambda line: _capture_block(line.req_caps)),
    "hs": Variable(tcp=lambda line: "", http=lambda line: _capture_block(line.rsp_caps)),
    "hrl": Variable(tcp=lambda line: (), http=lambda line: line.req_caps or (), kind=LIST),
    "hsl": Variable(tcp=lambda line: (), http=lambda line: line.rsp_caps or (), kind=LIST),
    "r": http_var(attrgetter("request"), STRING),
    "HM": http_var(_request_part(0), STRING),
    "HU": http_var(_request_part(1), STRING),
    "HP": http_var(_request_part(2), STRING),
    "HPO": http_var(_path_only, STRING),
    "HQ": http_var(_request_part(3), STRING),
    "HV": http_var(_request_part(4), STRING),
    "pid": both(attrgetter("pid"), NUMBER, _hex_short),
}


# -- compiling and rendering -------------------------------------------------------------------
class LogFormat:
    """A compiled format: for each kind of line (TCP, HTTP), its pieces in order: SEPARATOR,
    a text, or ``piece(line) -> text`` for a variable.  ``samples``: it has %[...] fields
    (the loop then keeps a Stream per request for it); ``addresses``: it reads %fi/%fp/%bi/%bp;
    ``unique_id``: it reads %ID."""
    __slots__ = ("pieces", "samples", "addresses", "unique_id")

    def __init__(self, pieces: tuple, samples: bool = False, addresses: bool = False,
                 unique_id: bool = False):
        self.pieces = pieces
        self.samples = samples
        self.addresses = addresses
        self.unique_id = unique_id


def _quote(value: str) -> str:
    return '"' + value.replace('"', '\\"') + '"'


_ESCAPED = re.compile(r'(["\\\]])')


def _escape(value: str) -> str:
    """The E flag: '"', '\\' and ']' get a '\\' before them (RFC 5424 structured data)."""
    return _ESCAPED.sub(r"\\\1", value)


# what a log line must never carry: control characters become #XX, as HAProxy writes them
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _safe(value: str) -> str:
    return _CONTROL.sub(lambda m: f"#{ord(m.group(0)):02X}", value)


def _piece(read: Optional[Callable], variable: Optional[Variable], flags: frozenset):
    if variable is not None and variable.kind == LIST and read is not None:
        each = _quote if "Q" in flags else str
        return lambda line: " ".join(each(item) for item in read(line))
    quoted = "Q" in flags and (variable is None or variable.kind == STRING)
    escaped = "E" in flags
    hexed = variable.hex if variable is not None and "X" in flags else None
    if read is None:
        return '""' if quoted else "-"

    def piece(line) -> str:
        value = read(line)
        if value is None or value == "":
            if quoted:
                return '""'
            return "-" if value is None else ""
        if hexed is not None:
            text = hexed(value)
        else:
            text = value if value.__class__ is str else str(value)
        if escaped:
            text = _escape(text)
        return _quote(text) if quoted else text

    if not quoted and not escaped and hexed is None:
        def piece(line) -> str:      # the common case: no flag
            value = read(line)
            if value is None:
                return "-"
            return value if value.__class__ is str else str(value)
    return piece


def _sample_reader(expr) -> Callable:
    """``%[expr]``: the expression on the line's Stream (None: "-")."""
    def read(line):
        stream = line.stream
        if stream is None:
            return None
        try:
            value = expr.one(stream)
        except Exception:        # a fetch that fails on this request: no value
            return None
        if value is None:
            return None
        if value.__class__ is bytes or value.__class__ is bytearray:
            value = bytes(value).decode("latin-1")
        elif value.__class__ is bool:
            value = str(int(value))
        else:
            value = str(value)
        return _safe(value)
    return read


def _flags(text: str, inherited: frozenset) -> frozenset:
    flags = set(inherited)
    for flag in text.split(","):
        flag = flag.strip()
        if flag.startswith("+"):
            flags.add(flag[1:])
        elif flag.startswith("-"):
            flags.discard(flag[1:])
    return frozenset(flags)


def compile_format(text: str, ctx=None, http: bool = True, check_only: bool = False) -> LogFormat:
    """Unknown variables are errors; so are HTTP-only variables in a TCP frontend's format
    (``http`` False) as in HAProxy.  ``%[expr]`` compiles with ``ctx`` (a sample Context at
    the "log" place); without it the expression is only checked."""
    parts: list = []            # SEPARATOR, text, or (read | None, Variable | None, flags)
    pos = 0
    inherited = frozenset()
    samples = addresses = unique_id = False

    def literal(chunk: str) -> None:
        # HAProxy treats runs of spaces as one separator (see render)
        for piece in re.split(r"( +)", chunk):
            if piece:
                parts.append(SEPARATOR if piece.startswith(" ") else piece)

    i = 0
    while True:
        match = _TOKEN.search(text, i)
        if match is None:
            break
        if match.start() > pos:
            literal(text[pos:match.start()])
        pos = i = match.end()
        if match.group(0) == "%%":
            parts.append("%")
            continue
        flags = _flags(match.group(1) or "", inherited)
        name = match.group(2)
        if name == "[":
            end = find_sample_end(text, i)
            if end < 0:
                raise LogFormatError(f"missing ']' after sample expression in '{text}'")
            source = text[i:end]
            try:
                if check_only or ctx is None:
                    check_expr(source, Context("log"))
                    expr = None
                else:
                    expr = compile_expr(source, ctx)
            except SampleError as exc:
                raise LogFormatError(f"failed to parse sample expression <{source}> : {exc}") \
                    from None
            samples = True
            read = _sample_reader(expr) if expr is not None else (lambda line: None)
            parts.append((read, read, Variable(kind=STRING), flags))
            pos = i = end + 1
            continue
        if name == "o":          # its flags apply to every variable after it
            inherited = flags
            continue
        if name not in VARIABLES:
            raise LogFormatError(f"no such format variable '{name}'. If you wanted to emit the "
                                 "'%' character verbatim, you need to use '%%'")
        variable = VARIABLES[name]
        if variable.http_only and not http:
            raise LogFormatError(f"format variable '{name}' is reserved for HTTP mode.")
        addresses = addresses or name in ("fi", "fp", "bi", "bp", "si", "sp")
        unique_id = unique_id or name == "ID"
        parts.append((variable.tcp, variable.http, variable, flags))
    if pos < len(text):
        literal(text[pos:])
    pieces = ([], [])
    for part in parts:
        if isinstance(part, tuple):
            tcp, http_read, variable, flags = part
            pieces[TCP].append(_piece(tcp, variable, flags))
            pieces[HTTP].append(_piece(http_read, variable, flags))
        else:
            pieces[TCP].append(part)
            pieces[HTTP].append(part)
    return LogFormat((tuple(pieces[TCP]), tuple(pieces[HTTP])), samples, addresses, unique_id)


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
