"""HAProxy log-format strings: ``%ci:%cp [%tr] %ft %b/%s ...`` compiled once, rendered per log.

The built-in formats (``option httplog``) are log-format strings too, so a custom
``log-format`` and the default line share one renderer.
"""
from __future__ import annotations

import re

from .logsink import format_accept_date

TCPLOG = "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq"
HTTPLOG = ("%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc "
           "%ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r")
# With no capture configured, HAProxy drops %hr %hs and their spaces.
HTTPLOG_NO_CAPTURE = HTTPLOG.replace(" %hr %hs", "")

_TOKEN = re.compile(r"%(?:\{([^}]*)\})?([A-Za-z]+)|%%")
VARIABLES = {
    "ci", "cp", "fi", "fp", "ft", "f", "b", "s", "si", "sp", "t", "tr", "T", "TR", "Tw", "Tc",
    "Tr", "Ta", "Tt", "Tq", "ST", "B", "CC", "CS", "tsc", "ts", "ac", "fc", "bc", "sc", "rc",
    "sq", "bq", "hr", "hs", "hrl", "hsl", "r", "HM", "HU", "HP", "HQ", "HV", "pid", "U",
}


SEPARATOR = object()


class LogFormatError(ValueError):
    pass


def compile_format(text: str):
    """A list of literals and (variable, quoted) pairs; unknown variables are errors."""
    parts: list = []
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
        parts.append((name, "+Q" in flags.split(",")))
    if pos < len(text):
        literal(text[pos:])
    if "%[" in text:
        raise LogFormatError("sample expressions '%[...]' in log-format are not supported by "
                             "fastlb yet")
    return parts


def _quote(value: str) -> str:
    return '"' + value.replace('"', '\\"') + '"'


def render(parts: list, fields: dict) -> str:
    """A separator is written only after something that is not a space: an empty field
    (no capture for a bad request) does not leave a double space, as in HAProxy."""
    out = []
    last_is_space = True
    for part in parts:
        if part is SEPARATOR:
            if not last_is_space:
                out.append(" ")
                last_is_space = True
            continue
        if isinstance(part, str):
            text = part
        else:
            name, quoted = part
            value = fields.get(name, "-")
            value = "-" if value is None else str(value)
            text = _quote(value) if quoted else value
        if text:
            out.append(text)
            last_is_space = False
    return "".join(out)


def request_parts(request_line: str) -> dict:
    method, _, rest = request_line.partition(" ")
    uri, _, version = rest.rpartition(" ") if " " in rest else (rest, "", "")
    path, _, query = uri.partition("?")
    return {"HM": method, "HU": uri, "HP": path, "HQ": f"?{query}" if query else "",
            "HV": version}


def _session_fields(addr, frontend: str, backend: str, server: str, date_ms: int,
                    counters: tuple, pid: int) -> dict:
    """Variables every log line has: addresses, names, date, connection counts."""
    ac, fc, bc, sc, retries = counters
    date = format_accept_date(date_ms)
    return {"ci": addr[0], "cp": addr[1], "ft": frontend, "f": frontend, "b": backend,
            "s": server, "t": date, "tr": date, "ac": ac, "fc": fc, "bc": bc, "sc": sc,
            "rc": retries, "sq": 0, "bq": 0, "pid": pid}


def tcp_fields(addr, frontend: str, backend: str, server: str, accept_ms: int, timers: tuple,
               bytes_out: int, term: str, counters: tuple, pid: int) -> dict:
    """Values of one TCP session's variables; HTTP-only ones read "-" as in HAProxy."""
    tw, tc, tt = timers
    fields = _session_fields(addr, frontend, backend, server, accept_ms, counters, pid)
    fields.update({"Tw": tw, "Tc": tc, "Tt": tt, "Ta": tt, "B": bytes_out, "ts": term,
                   "tsc": term + "--", "hr": "", "hs": ""})
    return fields


def http_fields(addr, frontend: str, backend: str, server: str, start_ms: int, timers: tuple,
                status: int, bytes_out: int, term: str, counters: tuple, request_line: str,
                captures: tuple, pid: int) -> dict:
    tr, tw, tc, tresp, ta = timers
    req_caps, rsp_caps = captures
    fields = _session_fields(addr, frontend, backend, server, start_ms, counters, pid)
    fields.update({
        "TR": tr, "Tw": tw, "Tc": tc, "Tr": tresp, "Ta": ta, "Tt": ta, "Tq": tr,
        "ST": status, "B": bytes_out, "CC": "-", "CS": "-", "tsc": term, "ts": term[:2],
        "hr": "{" + "|".join(req_caps) + "}" if req_caps is not None else "",
        "hs": "{" + "|".join(rsp_caps) + "}" if rsp_caps is not None else "",
        "hrl": " ".join(req_caps or ()), "hsl": " ".join(rsp_caps or ()),
        "r": request_line,
    })
    fields.update(request_parts(request_line))
    return fields
