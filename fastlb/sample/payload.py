"""Layer-6 fetches: the bytes a ``tcp-request content`` (``tcp-response content``) rule
inspects, as HAProxy's payload.c reads them: lengths, slices, length-prefixed blocks, the
TLS ClientHello (record version, handshake type, SNI), an HTTP request start, the RDP
cookie.

``stream.payload`` holds the request bytes buffered so far (``res_payload`` the
response's), None outside content inspection.  A fetch whose answer could change with
more bytes sets ``stream.may_change`` (HAProxy's SMP_F_MAY_CHANGE): while the data is
partial, a condition it makes false waits for more instead (http/acl.py)."""
from __future__ import annotations

import re

from .registry import L4, REQ_CONTENT, RES_CONTENT, SampleError, fetch
from .types import BIN, BOOL, SINT, STR

_REQ = (REQ_CONTENT,)
_RES = (RES_CONTENT,)


def _data(stream, response):
    return stream.res_payload if response else stream.payload


def _too_short(stream):
    stream.may_change = True
    return None


def _len(response):
    def read(stream):
        data = _data(stream, response)
        if data is None:
            return None
        stream.may_change = True          # more may come
        return len(data)
    return read


@fetch("req.len", "req_len", out=SINT, needs=_REQ)
def _req_len(args, ctx):
    return _len(False)


@fetch("res.len", out=SINT, needs=_RES)
def _res_len(args, ctx):
    return _len(True)


def _payload(args, response):
    offset, length = args
    if offset < 0 or length < 0:
        raise SampleError("payload offset and length must be positive")

    def read(stream):
        data = _data(stream, response)
        if data is None:
            return None
        end = len(data) if length == 0 else offset + length
        if length == 0:
            stream.may_change = True      # "the rest of the buffer" grows with it
            if offset > len(data):
                return _too_short(stream)
        elif end > len(data):
            return _too_short(stream)
        return data[offset:end]
    return read


@fetch("req.payload", "payload", out=BIN, args="int,int", needs=_REQ)
def _req_payload(args, ctx):
    return _payload(args, False)


@fetch("res.payload", out=BIN, args="int,int", needs=_RES)
def _res_payload(args, ctx):
    return _payload(args, True)


def _payload_lv(args, response):
    off1, len1, off2 = args
    relative = off2 is not None and off2[:1] in ("+", "-")
    try:
        off2_value = int(off2) if off2 is not None else None
    except ValueError:
        raise SampleError(f"payload_lv: invalid offset '{off2}'") from None
    if off1 < 0 or not 0 < len1 <= 8:
        raise SampleError("payload_lv: invalid length size")

    def read(stream):
        data = _data(stream, response)
        if data is None:
            return None
        if off1 + len1 > len(data):
            return _too_short(stream)
        size = int.from_bytes(data[off1:off1 + len1], "big")
        start = off1 + len1
        if off2_value is not None:
            start = start + off2_value if relative else off2_value
        if start < 0:
            return None
        if start + size > len(data):
            return _too_short(stream)
        return data[start:start + size]
    return read


@fetch("req.payload_lv", "payload_lv", out=BIN, args="int,int,str?", needs=_REQ)
def _req_payload_lv(args, ctx):
    return _payload_lv(args, False)


@fetch("res.payload_lv", out=BIN, args="int,int,str?", needs=_RES)
def _res_payload_lv(args, ctx):
    return _payload_lv(args, True)


# ------------------------------------------------------------------ TLS
def _record(data):
    """(version, offset of the first handshake byte, record length), "short" or None
    (not SSL/TLS) for the bytes of a TLS record header."""
    if not data:
        return "short"
    first = data[0]
    if 0x14 <= first <= 0x17 or first == 0xFF:
        if len(data) < 5:
            return "short"
        version = (data[1] << 16) + data[2]
        length = (data[3] << 8) + data[4]
        if version < 0x00030000 or not 1 <= length <= (1 << 14) + 2048:
            return None
        return version, 5, length
    # SSLv2 (a hello only): 2-byte header with the high bit, type 1, then the version
    if len(data) < 5:
        return "short"
    if not first & 0x80 or data[2] != 0x01:
        return None
    length = ((first & 0x7F) << 8) + data[1]
    if length < 9:
        return None
    return (data[3] << 16) + data[4], 2, length


def _ssl_ver(stream):
    data = stream.payload
    if data is None:
        return None
    record = _record(data)
    if record == "short":
        return _too_short(stream)
    if record is None:
        return None
    version, start, length = record
    if len(data) - start < length:
        return _too_short(stream)
    if start == 5 and data[0] == 0x16 and length >= 6 and data[5] == 0x01:
        return (data[9] << 16) + data[10]     # a ClientHello: the version it offers
    return version


# ACL patterns are dotted versions (3.1 for TLS 1.0): http/acl.py
@fetch("req.ssl_ver", "req_ssl_ver", out=SINT, needs=_REQ)
def _req_ssl_ver(args, ctx):
    return _ssl_ver


def _hello_type(response):
    def read(stream):
        data = _data(stream, response)
        if data is None:
            return None
        if not data:
            return _too_short(stream)
        if not (0x14 <= data[0] <= 0x17 or data[0] == 0xFF):
            return None
        if len(data) < 9:
            return _too_short(stream)
        record_len = (data[3] << 8) + data[4]
        if data[0] != 0x16 or (data[1] << 16) + data[2] < 0x00030000 or record_len < 4:
            return None                   # not a handshake record of SSLv3 or TLS
        if len(data) < 5 + record_len:
            return _too_short(stream)     # the whole record first (HAProxy's)
        return data[5]
    return read


@fetch("req.ssl_hello_type", "req_ssl_hello_type", out=SINT, needs=_REQ)
def _req_hello_type(args, ctx):
    return _hello_type(False)


@fetch("res.ssl_hello_type", "rep_ssl_hello_type", out=SINT, needs=_RES)
def _res_hello_type(args, ctx):
    return _hello_type(True)


def _client_hello_extensions(stream):
    """{type: body} of the ClientHello's extensions, or None (short: may_change set)."""
    data = stream.payload
    if data is None:
        return None
    if not data:
        return _too_short(stream)
    if data[0] != 0x16:
        return None
    if len(data) < 5:
        return _too_short(stream)
    if data[1] != 0x03:
        return None
    record_len = (data[3] << 8) + data[4]
    if len(data) < 5 + record_len:
        # HAProxy looks inside the first record only, once it is whole
        return _too_short(stream)
    hello = data[5:5 + record_len]
    if len(hello) < 4 or hello[0] != 0x01:
        return None
    hs_len = int.from_bytes(hello[1:4], "big")
    body = hello[4:4 + hs_len]
    if len(body) < hs_len:
        return None                       # a hello in several records: not looked into
    pos = 2 + 32                          # client version, random
    if len(body) < pos + 1:
        return None
    pos += 1 + body[pos]                  # session id
    if len(body) < pos + 2:
        return None
    pos += 2 + int.from_bytes(body[pos:pos + 2], "big")   # cipher suites
    if len(body) < pos + 1:
        return None
    pos += 1 + body[pos]                  # compression methods
    if len(body) < pos + 2:
        return None
    ext_len = int.from_bytes(body[pos:pos + 2], "big")
    pos += 2
    end = min(pos + ext_len, len(body))
    out = {}
    while pos + 4 <= end:
        kind = int.from_bytes(body[pos:pos + 2], "big")
        size = int.from_bytes(body[pos + 2:pos + 4], "big")
        out.setdefault(kind, body[pos + 4:pos + 4 + size])
        pos += 4 + size
    return out


def _ssl_sni(stream):
    extensions = _client_hello_extensions(stream)
    if not extensions or 0 not in extensions:
        return None
    ext = extensions[0]
    pos = 2                               # the server name list's length
    while pos + 3 <= len(ext):
        kind = ext[pos]
        size = int.from_bytes(ext[pos + 1:pos + 3], "big")
        if kind == 0:                     # host_name
            return ext[pos + 3:pos + 3 + size]
        pos += 3 + size
    return None


@fetch("req.ssl_sni", "req_ssl_sni", out=STR, needs=_REQ)
def _req_ssl_sni(args, ctx):
    return _ssl_sni


def _ssl_alpn(stream):
    extensions = _client_hello_extensions(stream)
    if not extensions or 16 not in extensions:
        return None
    ext = extensions[16]
    if len(ext) < 3:
        return None
    return ext[3:3 + ext[2]]              # the first protocol offered


@fetch("req.ssl_alpn", out=STR, needs=_REQ)
def _req_ssl_alpn(args, ctx):
    return _ssl_alpn


# ------------------------------------------------------------------ HTTP, RDP
_REQUEST_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+ [^ \r\n]+ HTTP/[0-9]\.[0-9]\r?\n")
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]*")
_VERSION_START = re.compile(rb"H(T(T(P(/([0-9](\.([0-9]\r?)?)?)?)?)?)?)?")


def _may_start_request(data: bytes) -> bool:
    """The bytes (no line end yet) can still become an HTTP/1 request line."""
    method, sp, rest = data.partition(b" ")
    if not _TOKEN.fullmatch(method):
        return False
    if not sp:
        return True
    target, sp, version = rest.partition(b" ")
    if b"\r" in target or (sp and not target):
        return False
    return not sp or _VERSION_START.fullmatch(version) is not None


def _proto_http(stream):
    """A whole HTTP/1 request head is there (HAProxy parses it; bytes that cannot begin
    one answer false at once); an HTTP request's stream is one."""
    data = stream.payload
    if data is None:
        return stream.method is not None
    line_end = data.find(b"\n")
    if line_end < 0:
        if len(data) > 8192 or not _may_start_request(data):
            return False
        stream.may_change = True
        return False
    if not _REQUEST_LINE.match(data[:line_end + 1]):
        return False
    if b"\r\n\r\n" not in data and b"\n\n" not in data:
        stream.may_change = True
        return False
    return True


@fetch("req.proto_http", "req_proto_http", out=BOOL, needs=(L4,) + _REQ)
def _req_proto_http(args, ctx):
    return _proto_http


_RDP_PREFIX = b"Cookie:"


def _rdp_cookie(name):
    wanted = name.encode("latin-1").lower() if name else None

    def read(stream):
        data = stream.payload
        if data is None:
            return None
        # TPKT header (4) + X.224 connection request (7), then "Cookie: name=value\r\n"
        if len(data) < 11 + len(_RDP_PREFIX):
            return _too_short(stream)
        rest = data[11:]
        if not rest.startswith(_RDP_PREFIX):
            return None
        rest = rest[len(_RDP_PREFIX):].lstrip(b" ")
        equal = rest.find(b"=")
        if equal < 0:
            return None if b"\r" in rest or b"\n" in rest else _too_short(stream)
        key = rest[:equal]
        if b"\r" in key or b"\n" in key or (wanted is not None and key.lower() != wanted):
            return None
        # the value runs to the first CR, which must begin the line's CRLF
        end = rest.find(b"\r", equal + 1)
        if end < 0 or end + 1 >= len(rest):
            return _too_short(stream)
        return rest[equal + 1:end] if rest[end + 1] == 0x0A else None
    return read


def rdp_cookie_reader(name: str):
    """``read(stream) -> bytes | None``: the value of the RDP cookie ``name`` (any name when
    empty) in the bytes the client sent, as ``req.rdp_cookie`` reads it (balance and
    persist rdp-cookie)."""
    return _rdp_cookie(name)


@fetch("req.rdp_cookie", "rdp_cookie", out=STR, args="str?", needs=_REQ)
def _req_rdp_cookie(args, ctx):
    return _rdp_cookie(args[0])


@fetch("req.rdp_cookie_cnt", "rdp_cookie_cnt", out=SINT, args="str?", needs=_REQ)
def _req_rdp_cookie_cnt(args, ctx):
    read = _rdp_cookie(args[0])

    def count(stream):
        if stream.payload is None:
            return None
        return 1 if read(stream) is not None else 0
    return count


def _wait_end(stream):
    """WAIT_END: false while more bytes may come (the rules wait), true at the end."""
    if stream.partial:
        stream.may_change = True
        return False
    return True


@fetch("wait_end", out=BOOL, needs=_REQ + _RES)
def _wait_end_fetch(args, ctx):
    return _wait_end
