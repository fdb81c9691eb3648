"""A strict reference reading of an HTTP/1.1 request stream (RFC 9112), in plain Python.

It is written apart from fastlb's C parser on purpose: the fuzzer compares what a client
sent, read by this parser, with what the proxies forwarded, read by it again.  A proxy
desyncs when the backend's bytes read as requests the client never sent.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP/(\d)\.(\d)")
FIELD = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]{1,255}):[ \t]*((?:[\x20-\x7e\x80-\xff\t])*?)[ \t]*")
# chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )
CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]+)((?:[ \t]*;[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
                        rb"(?:[ \t]*=[ \t]*(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|"
                        rb"\"(?:[^\"\\\x00-\x08\x0a-\x1f\x7f]|\\[^\x00-\x08\x0a-\x1f\x7f])*\"))?)*)")


class Invalid(Exception):
    pass


class Incomplete(Exception):
    pass


@dataclass
class Request:
    method: bytes
    target: bytes
    headers: list = field(default_factory=list)
    body: bytes = b""

    def header(self, name: bytes) -> list:
        return [v for k, v in self.headers if k == name]

    def key(self):
        """What must be the same on both sides of a proxy."""
        return (self.method, self.target, self.body)


def _line(data: bytes, pos: int, lenient: bool = False) -> tuple[bytes, int]:
    if lenient:
        end = data.find(b"\n", pos)
        if end < 0:
            raise Incomplete()
        line = data[pos:end]
        return (line[:-1] if line.endswith(b"\r") else line), end + 1
    end = data.find(b"\r\n", pos)
    if end < 0:
        if b"\n" in data[pos:] or b"\r" in data[pos:-1]:
            raise Invalid("bare CR or LF")
        raise Incomplete()
    line = data[pos:end]
    if b"\n" in line or b"\r" in line:
        raise Invalid("bare CR or LF")
    return line, end + 2


def parse_one(data: bytes, pos: int, lenient: bool = False) -> tuple[Request, int]:
    """One request at ``pos``.  ``lenient`` reads as HAProxy 2.6 does where that reading is
    still unambiguous: LF line ends, any HTTP/<d>.<d>, obs-fold, CL beside TE (TE wins)."""
    # empty lines before a request line are skipped (RFC 9112 2.2); like HAProxy and fastlb,
    # a lone LF counts as one there: nothing of it is forwarded
    while data.startswith(b"\r\n", pos) or data.startswith(b"\n", pos):
        pos += 1 if data.startswith(b"\n", pos) else 2
    line, pos = _line(data, pos, lenient)
    if lenient:
        line = re.sub(rb"[ \t]+", b" ", line)
    m = REQUEST_LINE.fullmatch(line)
    if not m or (m.group(3) != b"1" and not lenient) or b"#" in m.group(2):
        raise Invalid("request line")
    req = Request(m.group(1), m.group(2))
    while True:
        line, pos = _line(data, pos, lenient)
        if not line:
            break
        if lenient and line[:1] in (b" ", b"\t") and req.headers:
            name, value = req.headers[-1]
            req.headers[-1] = (name, value + b" " + line.strip())
            continue
        f = FIELD.fullmatch(line)
        if not f:
            raise Invalid("field")
        req.headers.append((f.group(1).lower(), f.group(2)))
        if len(req.headers) > 100:
            raise Invalid("too many fields")
    te = [c.strip().lower() for v in req.header(b"transfer-encoding") for c in v.split(b",")]
    te = [c for c in te if c]
    cl = [c.strip() for v in req.header(b"content-length") for c in v.split(b",")]
    hosts = req.header(b"host")
    if len({h.lower() for h in hosts}) > 1:
        raise Invalid("hosts")
    if req.header(b"transfer-encoding"):
        if lenient:
            cl = []
        if cl or not te or te[-1] != b"chunked" or te.count(b"chunked") != 1:
            raise Invalid("transfer-encoding")
        body = []
        while True:
            line, pos = _line(data, pos, lenient)
            if lenient:
                line = re.split(rb"[ \t;]", line, 1)[0]
            c = CHUNK_LINE.fullmatch(line)
            if not c or len(c.group(1).lstrip(b"0")) > 13:
                raise Invalid("chunk size")
            size = int(c.group(1), 16)
            if size == 0:
                while True:
                    line, pos = _line(data, pos, lenient)
                    if not line:
                        break
                    f = FIELD.fullmatch(line)
                    if not f or f.group(1).lower() in (b"transfer-encoding", b"content-length"):
                        raise Invalid("trailer")
                break
            if len(data) < pos + size + 2:
                raise Incomplete()
            body.append(data[pos:pos + size])
            if data[pos + size:pos + size + 2] == b"\r\n":
                pos += size + 2
            elif lenient and data[pos + size:pos + size + 1] == b"\n":
                pos += size + 1
            else:
                raise Invalid("chunk end")
        req.body = b"".join(body)
    elif cl:
        if len(set(cl)) != 1 or not cl[0].isdigit():
            raise Invalid("content-length")
        n = int(cl[0])
        if len(data) < pos + n:
            raise Incomplete()
        req.body = data[pos:pos + n]
        pos += n
    return req, pos


def parse_stream(data: bytes, lenient: bool = False) -> tuple[list, str, int]:
    """(requests, how the stream ends: "end" | "incomplete" | "invalid", bytes used)."""
    requests, pos = [], 0
    while pos < len(data):
        if not data[pos:].strip(b"\r\n"):
            return requests, "end", len(data)
        try:
            req, pos = parse_one(data, pos, lenient)
        except Incomplete:
            return requests, "incomplete", pos
        except Invalid:
            return requests, "invalid", pos
        requests.append(req)
        if req.method == b"CONNECT":
            # what follows a CONNECT is tunnel payload once the server says 2xx (the
            # recording backends always do), not HTTP
            return requests, "end", len(data)
    return requests, "end", pos
