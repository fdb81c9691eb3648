"""The sample fetches: what a sample expression starts from (HAProxy 2.6 manual 7.3.2-7.3.6).

Each ``@fetch`` names its keywords, its arguments, its output type and what it reads; its
builder runs once per expression at start-up and returns the per-request reader.  Fetches
of run-time state (names, connection counts, server health) ask the compile-time ``env``
(see ``runtime.tables.SampleEnv``), which reads the shared state when the request comes.
"""
from __future__ import annotations

import ipaddress
import os
import random
import socket
import time
import uuid

from .registry import (BACKEND, INTERNAL, L4, REQ_BODY, REQ_HEADERS, RES_HEADERS, RESPONSE, SERVER,
                       SampleError, constant, fetch)
from .stream import split_target
from .types import ADDR, ANY, BIN, BOOL, IPV4, IPV6, METH, SINT, STR, str_to_int


def _address(text: str):
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return address.ipv4_mapped or address if address.version == 6 else address


# ------------------------------------------------------------------ constants (7.3.2)
@fetch("always_true", out=BOOL, needs=(INTERNAL,))
def _always_true(args, ctx):
    return lambda stream: True


@fetch("always_false", out=BOOL, needs=(INTERNAL,))
def _always_false(args, ctx):
    return lambda stream: False


@fetch("str", out=STR, args="str", needs=(INTERNAL,))
def _str(args, ctx):
    value = args[0].encode("utf-8", "surrogateescape")
    return lambda stream: value


@fetch("int", out=SINT, args="int", needs=(INTERNAL,))
def _int(args, ctx):
    value = args[0]
    return lambda stream: value


@fetch("bool", out=BOOL, args="str", needs=(INTERNAL,))
def _bool(args, ctx):
    value = bool(str_to_int(args[0].encode()))
    return lambda stream: value


@fetch("bin", out=BIN, args="str", needs=(INTERNAL,))
def _bin(args, ctx):
    try:
        value = bytes.fromhex(args[0])
    except ValueError:
        raise SampleError(f"invalid hex string '{args[0]}' in 'bin'") from None
    return lambda stream: value


@fetch("ipv4", out=IPV4, args="str", needs=(INTERNAL,))
def _ipv4(args, ctx):
    try:
        value = ipaddress.IPv4Address(args[0])
    except ValueError:
        raise SampleError(f"invalid IPv4 address '{args[0]}' in 'ipv4'") from None
    return lambda stream: value


@fetch("ipv6", out=IPV6, args="str", needs=(INTERNAL,))
def _ipv6(args, ctx):
    try:
        value = ipaddress.IPv6Address(args[0])
    except ValueError:
        raise SampleError(f"invalid IPv6 address '{args[0]}' in 'ipv6'") from None
    return lambda stream: value


@fetch("meth", out=METH, args="str", needs=(INTERNAL,))
def _meth(args, ctx):
    value = args[0].encode()
    return lambda stream: value


@fetch("env", out=STR, args="str", needs=(INTERNAL,))
def _env(args, ctx):
    name = args[0]

    def read(stream):
        value = os.environ.get(name)
        return None if value is None else value.encode("utf-8", "surrogateescape")
    return read


@fetch("date", out=SINT, args="int?,str?", needs=(INTERNAL,))
def _date(args, ctx):
    offset, unit = args[0] or 0, args[1] or "s"
    scale = {"s": 1, "ms": 1000, "us": 1000000}.get(unit)
    if scale is None:
        raise SampleError(f"'date' : unit '{unit}' is not 's', 'ms' or 'us'.")
    return lambda stream: int((time.time() + offset) * scale)


@fetch("date_us", out=SINT, needs=(INTERNAL,))
def _date_us(args, ctx):
    return lambda stream: int(time.time() * 1000000) % 1000000


@fetch("rand", out=SINT, args="int?", needs=(INTERNAL,))
def _rand(args, ctx):
    limit = args[0]
    if limit is None:
        return lambda stream: random.getrandbits(32)
    return lambda stream: random.getrandbits(32) * limit >> 32


@fetch("uuid", out=STR, args="int?", needs=(INTERNAL,))
def _uuid(args, ctx):
    if args[0] not in (None, 4):
        raise SampleError("Unsupported UUID version: only version 4 is supported.")
    return lambda stream: str(uuid.uuid4()).encode()


@fetch("hostname", out=STR, needs=(INTERNAL,))
def _hostname(args, ctx):
    name = socket.gethostname().encode()
    return lambda stream: name


@fetch("var", out=ANY, args="var,str?", needs=(INTERNAL,))
def _var(args, ctx):
    name, default = args
    if default is None:
        return lambda stream: stream.get_var(name)
    fallback = default.encode("utf-8", "surrogateescape")

    def read(stream):
        value = stream.get_var(name)
        return fallback if value is None else value
    return read


@fetch("stopping", out=BOOL)
def _stopping(args, ctx):
    return lambda stream: ctx.env.stopping()


@fetch("proc", out=SINT)
def _proc(args, ctx):
    return lambda stream: 1             # HAProxy 2.6 has one process (nbproc is gone)


@fetch("thread", out=SINT)
def _thread(args, ctx):
    """HAProxy's thread number, from 0: fastlb's workers play its threads."""
    return lambda stream: ctx.env.worker_id()


# --------------------------------------------------------- proxies and servers (7.3.2)
def _backend_arg(args, ctx) -> callable:
    """A fetch's optional backend name: that backend, or the stream's own."""
    if args and args[0]:
        index = ctx.env.backend_index(args[0])
        return lambda stream: index
    return lambda stream: stream.be if stream.be >= 0 else ctx.env.default_backend(stream.fe)


def _server_arg(text: str, ctx) -> tuple:
    backend, slash, server = text.rpartition("/")
    be = ctx.env.backend_index(backend) if slash else None
    if be is None:
        raise SampleError(f"'{text}': a server is named <backend>/<server>.")
    return be, ctx.env.server_index(be, server)


@fetch("fe_name", out=STR)
def _fe_name(args, ctx):
    return lambda stream: ctx.env.frontend_name(stream.fe)


@fetch("fe_id", out=SINT)
def _fe_id(args, ctx):
    return lambda stream: ctx.env.frontend_id(stream.fe)


@fetch("so_id", out=SINT)
def _so_id(args, ctx):
    return lambda stream: stream.luid or None


@fetch("so_name", out=STR)
def _so_name(args, ctx):
    return lambda stream: ctx.env.listener_name(stream.fe, stream.luid)


@fetch("fe_defbe", out=STR)
def _fe_defbe(args, ctx):
    return lambda stream: ctx.env.frontend_default_backend(stream.fe)


@fetch("be_name", out=STR, needs=(BACKEND,))
def _be_name(args, ctx):
    return lambda stream: ctx.env.backend_name(stream.be)


@fetch("be_id", out=SINT, needs=(BACKEND,))
def _be_id(args, ctx):
    return lambda stream: ctx.env.backend_id(stream.be)


@fetch("srv_name", out=STR, needs=(SERVER,))
def _srv_name(args, ctx):
    return lambda stream: ctx.env.server_name(stream.be, stream.srv)


@fetch("srv_id", out=SINT, needs=(SERVER,))
def _srv_id(args, ctx):
    return lambda stream: ctx.env.server_id(stream.be, stream.srv)


@fetch("nbsrv", out=SINT, args="str?")
def _nbsrv(args, ctx):
    backend = _backend_arg(args, ctx)
    return lambda stream: ctx.env.usable_servers(backend(stream))


@fetch("be_conn", out=SINT, args="str?")
def _be_conn(args, ctx):
    backend = _backend_arg(args, ctx)
    return lambda stream: ctx.env.backend_conn(backend(stream))


@fetch("queue", out=SINT, args="str?")
def _queue(args, ctx):
    backend = _backend_arg(args, ctx)
    return lambda stream: ctx.env.backend_queue(backend(stream))


@fetch("avg_queue", out=SINT, args="str?")
def _avg_queue(args, ctx):
    backend = _backend_arg(args, ctx)

    def read(stream):
        be = backend(stream)
        servers = ctx.env.usable_servers(be)
        queued = ctx.env.backend_queue(be)
        return queued // servers if servers else queued
    return read


@fetch("connslots", out=SINT, args="str?")
def _connslots(args, ctx):
    backend = _backend_arg(args, ctx)
    return lambda stream: ctx.env.connslots(backend(stream))


@fetch("srv_conn", out=SINT, args="str")
def _srv_conn(args, ctx):
    be, srv = _server_arg(args[0], ctx)
    return lambda stream: ctx.env.server_conn(be, srv)


@fetch("srv_is_up", out=BOOL, args="str")
def _srv_is_up(args, ctx):
    be, srv = _server_arg(args[0], ctx)
    return lambda stream: ctx.env.server_is_up(be, srv)


@fetch("srv_queue", out=SINT, args="str")
def _srv_queue(args, ctx):
    be, srv = _server_arg(args[0], ctx)
    return lambda stream: ctx.env.server_queue(be, srv)


@fetch("prio_class", out=SINT)
def _prio_class(args, ctx):
    return lambda stream: stream.prio_class


@fetch("prio_offset", out=SINT)
def _prio_offset(args, ctx):
    return lambda stream: stream.prio_offset


# ---------------------------------------------------------------- layer 4 (7.3.3)
@fetch("src", out=ADDR)
def _src(args, ctx):
    return lambda stream: _address(stream.src)


@fetch("src_port", out=SINT)
def _src_port(args, ctx):
    return lambda stream: stream.src_port


@fetch("dst", out=ADDR)
def _dst(args, ctx):
    return lambda stream: _address(stream.dst) if stream.dst else None


@fetch("dst_port", out=SINT)
def _dst_port(args, ctx):
    return lambda stream: stream.dst_port


@fetch("src_is_local", out=BOOL)
def _src_is_local(args, ctx):
    def read(stream):
        address = _address(stream.src)
        return address is not None and address.is_loopback
    return read


# ---------------------------------------------------------------- layer 7 (7.3.6)
@fetch("method", out=METH)
def _method(args, ctx):
    return lambda stream: stream.meth


@fetch("path", out=STR, needs=(REQ_HEADERS,))
def _path(args, ctx):
    return lambda stream: stream.path


@fetch("pathq", out=STR, needs=(REQ_HEADERS,))
def _pathq(args, ctx):
    return lambda stream: split_target(stream.url)[1]


@fetch("url", out=STR, needs=(REQ_HEADERS,))
def _url(args, ctx):
    return lambda stream: stream.url


@fetch("query", out=STR, needs=(REQ_HEADERS,))
def _query(args, ctx):
    def read(stream):
        _, sep, query = stream.url.partition(b"?")
        return query if sep else None
    return read


def _host(stream) -> bytes:
    values = stream.full_header_values(b"host")
    return values[-1] if values else b""


@fetch("base", out=STR, needs=(REQ_HEADERS,))
def _base(args, ctx):
    return lambda stream: _host(stream) + stream.path


@fetch("baseq", out=STR, needs=(REQ_HEADERS,))
def _baseq(args, ctx):
    def read(stream):
        _, sep, query = stream.url.partition(b"?")
        return _host(stream) + stream.path + (b"?" + query if sep else b"")
    return read


@fetch("req.ver", "req_ver", out=STR, needs=(REQ_HEADERS,))
def _req_ver(args, ctx):
    return lambda stream: stream.version


@fetch("http_first_req", out=BOOL)
def _first_req(args, ctx):
    return lambda stream: stream.first_req


@fetch("unique-id", out=STR)
def _unique_id(args, ctx):
    return lambda stream: stream.unique_id


def _occurrence(values: list, occ):
    """HAProxy's occurrence argument: 1 the first, -1 the last, 0 every one (the list)."""
    if occ is None or occ == 0:
        return values
    index = occ - 1 if occ > 0 else occ
    try:
        return [values[index]]
    except IndexError:
        return []


def _header_fetch(full: bool, response):
    def build(args, ctx):
        name = (args[0] or "").lower().encode("latin-1")
        occ = args[1] if len(args) > 1 else None
        side = ctx.response if response is None else response
        if not name:
            return lambda stream: [v for _, v in stream.header_list(side)]
        if full:
            def read(stream):
                return _occurrence(stream.full_header_values(name, side), occ)
        else:
            def read(stream):
                return _occurrence(stream.header_values(name, side), occ)
        return read
    return build


def _counter(full: bool, response):
    def build(args, ctx):
        name = (args[0] or "").lower().encode("latin-1")
        side = ctx.response if response is None else response
        if not name:
            return lambda stream: len(stream.header_list(side))
        if full:
            return lambda stream: len(stream.full_header_values(name, side))
        return lambda stream: len(stream.header_values(name, side))
    return build


fetch("req.hdr", out=STR, args="str?,int?", needs=(REQ_HEADERS,), many=True)(
    _header_fetch(False, False))
fetch("req.fhdr", out=STR, args="str?,int?", needs=(REQ_HEADERS,), many=True)(
    _header_fetch(True, False))
fetch("res.hdr", "shdr", out=STR, args="str?,int?", needs=(RES_HEADERS,), many=True)(
    _header_fetch(False, True))
fetch("res.fhdr", out=STR, args="str?,int?", needs=(RES_HEADERS,), many=True)(
    _header_fetch(True, True))
# hdr(): the request's headers in a request rule, the response's in a response rule
fetch("hdr", out=STR, args="str?,int?", needs=(REQ_HEADERS, RES_HEADERS), many=True)(
    _header_fetch(False, None))
fetch("req.hdr_cnt", out=SINT, args="str?", needs=(REQ_HEADERS,))(_counter(False, False))
fetch("req.fhdr_cnt", out=SINT, args="str?", needs=(REQ_HEADERS,))(_counter(True, False))
fetch("res.hdr_cnt", "shdr_cnt", out=SINT, args="str?", needs=(RES_HEADERS,))(
    _counter(False, True))
fetch("res.fhdr_cnt", out=SINT, args="str?", needs=(RES_HEADERS,))(_counter(True, True))
fetch("hdr_cnt", out=SINT, args="str?", needs=(REQ_HEADERS, RES_HEADERS))(
    _counter(False, None))


def _header_ints(response):
    def build(args, ctx):
        read = _header_fetch(False, response)(args, ctx)

        def ints(stream):
            return [n for n in (str_to_int(v) for v in read(stream)) if n is not None]
        return ints
    return build


fetch("req.hdr_val", out=SINT, args="str?,int?", needs=(REQ_HEADERS,), many=True)(
    _header_ints(False))
fetch("res.hdr_val", "shdr_val", out=SINT, args="str?,int?", needs=(RES_HEADERS,),
      many=True)(_header_ints(True))
fetch("hdr_val", out=SINT, args="str?,int?", needs=(REQ_HEADERS, RES_HEADERS), many=True)(
    _header_ints(None))


def _header_ips(response):
    def build(args, ctx):
        read = _header_fetch(False, response)(args, ctx)

        def ips(stream):
            out = []
            for value in read(stream):
                address = _address(value.decode("latin-1"))
                if address is not None:
                    out.append(address)
            return out
        return ips
    return build


fetch("req.hdr_ip", out=ADDR, args="str?,int?", needs=(REQ_HEADERS,), many=True)(
    _header_ips(False))
fetch("res.hdr_ip", "shdr_ip", out=ADDR, args="str?,int?", needs=(RES_HEADERS,), many=True)(
    _header_ips(True))
fetch("hdr_ip", out=ADDR, args="str?,int?", needs=(REQ_HEADERS, RES_HEADERS), many=True)(
    _header_ips(None))


@fetch("req.hdrs", out=STR, needs=(REQ_HEADERS,))
def _req_hdrs(args, ctx):
    def read(stream):
        return b"".join(name + b": " + value + b"\r\n" for name, value in stream.headers) + \
            b"\r\n"
    return read


@fetch("req.hdr_names", out=STR, args="str?", needs=(REQ_HEADERS,))
def _hdr_names(args, ctx):
    delimiter = (args[0] or ",").encode()
    return lambda stream: delimiter.join(name for name, _ in stream.headers)


@fetch("res.hdr_names", out=STR, args="str?", needs=(RES_HEADERS,))
def _res_hdr_names(args, ctx):
    delimiter = (args[0] or ",").encode()
    return lambda stream: delimiter.join(name for name, _ in stream.res_headers or ())


def cookie_values(headers: list, header: bytes, name: bytes) -> list:
    """The values of cookie ``name`` in every ``header`` line (Cookie: a=1; b=2)."""
    out = []
    for key, value in headers:
        if key != header:
            continue
        if header == b"set-cookie":
            first = value.split(b";", 1)[0]
            cname, sep, cvalue = first.partition(b"=")
            if sep and cname.strip() == name:
                out.append(cvalue.strip())
            continue
        for part in value.split(b";"):
            cname, sep, cvalue = part.strip().partition(b"=")
            if sep and (not name or cname == name):
                out.append(cvalue)
    return out


def _cookie_fetch(response: bool, count: bool):
    header = b"set-cookie" if response else b"cookie"

    def build(args, ctx):
        name = (args[0] or "").encode("latin-1")
        if count:
            return lambda stream: len(cookie_values(stream.header_list(response), header,
                                                    name))
        return lambda stream: cookie_values(stream.header_list(response), header, name)
    return build


fetch("req.cook", "cook", out=STR, args="str?", needs=(REQ_HEADERS,), many=True)(
    _cookie_fetch(False, False))
fetch("req.cook_cnt", "cook_cnt", out=SINT, args="str?", needs=(REQ_HEADERS,))(
    _cookie_fetch(False, True))
fetch("res.cook", "scook", out=STR, args="str?", needs=(RES_HEADERS,), many=True)(
    _cookie_fetch(True, False))
fetch("res.cook_cnt", "scook_cnt", out=SINT, args="str?", needs=(RES_HEADERS,))(
    _cookie_fetch(True, True))


@fetch("req.cook_val", "cook_val", out=SINT, args="str?", needs=(REQ_HEADERS,), many=True)
def _cook_val(args, ctx):
    read = _cookie_fetch(False, False)(args, ctx)
    return lambda stream: [n for n in map(str_to_int, read(stream)) if n is not None]


@fetch("url_param", "urlp", out=STR, args="str?,str?", needs=(REQ_HEADERS,), many=True,
       pick=0)
def _url_param(args, ctx):
    name = (args[0] or "").encode("latin-1")
    delimiter = (args[1] or "&").encode("latin-1")[:1]
    return lambda stream: stream.url_param(name, delimiter)


@fetch("urlp_val", out=SINT, args="str?,str?", needs=(REQ_HEADERS,), many=True, pick=0)
def _urlp_val(args, ctx):
    read = _url_param(args, ctx)
    return lambda stream: [n for n in map(str_to_int, read(stream)) if n is not None]


@fetch("status", out=SINT, needs=(RESPONSE,))
def _status(args, ctx):
    return lambda stream: stream.status if stream.status >= 0 else None


@fetch("res.ver", "resp_ver", out=STR, needs=(RES_HEADERS,))
def _res_ver(args, ctx):
    return lambda stream: stream.res_version or None


def _capture(response: bool):
    def build(args, ctx):
        index = args[0]

        def read(stream):
            captures = stream.captures_rsp if response else stream.captures_req
            if captures is None or not 0 <= index < len(captures):
                return None
            value = captures[index]
            return value.encode("latin-1") if isinstance(value, str) else value
        return read
    return build


fetch("capture.req.hdr", out=STR, args="int", needs=(L4,))(_capture(False))
fetch("capture.res.hdr", out=STR, args="int", needs=(RESPONSE,))(_capture(True))


@fetch("capture.req.method", out=STR)
def _capture_method(args, ctx):
    return lambda stream: stream.method


@fetch("capture.req.uri", out=STR)
def _capture_uri(args, ctx):
    return lambda stream: stream.url


@fetch("capture.req.ver", out=STR)
def _capture_ver(args, ctx):
    return lambda stream: b"HTTP/" + stream.version if stream.version else None


# The message body, as received so far (de-chunked): the loop fills it in when option
# http-buffer-request or a wait-for-body rule made it wait for the body (stream.req_body);
# without a wait there is nothing: the empty body, as HAProxy's with nothing received yet.
def _req_body(stream):
    return getattr(stream, "req_body", None) or b""


def _res_body(stream):
    return getattr(stream, "res_body", None) or b""


def _body_size(response):
    def read(stream):
        size = getattr(stream, "res_body_size" if response else "req_body_size", None)
        if size is None:
            return len(_res_body(stream) if response else _req_body(stream))
        return size
    return read


fetch("req.body", out=BIN, needs=(REQ_BODY,))(constant(_req_body))
fetch("req.body_len", out=SINT, needs=(REQ_BODY,))(constant(lambda st: len(_req_body(st))))
fetch("req.body_size", out=SINT, needs=(REQ_BODY,))(constant(_body_size(False)))
fetch("res.body", out=BIN, needs=(RESPONSE,))(constant(_res_body))
fetch("res.body_len", out=SINT, needs=(RESPONSE,))(constant(lambda st: len(_res_body(st))))
fetch("res.body_size", out=SINT, needs=(RESPONSE,))(constant(_body_size(True)))


@fetch("req.body_param", out=STR, args="str?", needs=(REQ_BODY,), many=True, pick=0)
def _body_param(args, ctx):
    """Values of an url-encoded body's parameter, raw (every one without a name);
    parameters end at '&' only."""
    wanted = (args[0] or "").encode("latin-1")

    def read(stream):
        out = []
        for part in _req_body(stream).split(b"&"):
            key, sep, value = part.partition(b"=")
            if not wanted:
                if part:
                    out.append(value)
            elif sep and key == wanted:
                out.append(value)
        return out
    return read


def _query_part(stream):
    _, sep, query = stream.url.partition(b"?")
    return b"?" + query if sep else b""


# What the ``%pid``-style variables of a rule's value read that no fetch gives.
INTERNAL_READERS = {
    "pid": lambda stream: os.getpid(),
    "HQ": _query_part,
    "HV": lambda stream: b"HTTP/" + stream.version if stream.version else None,
}


# ------------------------------------------------------------ authentication (7.3.6)
def _checker(args, ctx):
    from .auth import Checker
    return Checker(ctx.env.userlist(args[0]))


@fetch("http_auth", out=BOOL, args="str", needs=(REQ_HEADERS,))
def _http_auth(args, ctx):
    checker = _checker(args, ctx)
    return checker.verdict


@fetch("http_auth_group", out=STR, args="str", needs=(REQ_HEADERS,))
def _http_auth_group(args, ctx):
    """The authenticated user's name (an ACL on it matches the user's groups)."""
    checker = _checker(args, ctx)

    def read(stream):
        user = checker.user(stream)
        return None if user is None else user.encode("utf-8", "surrogateescape")
    read.groups = lambda stream: checker.userlist.groups_of(checker.user(stream) or "")
    return read


def _credential(index: int):
    def build(args, ctx):
        from .auth import credentials

        def read(stream):
            found = credentials(stream)
            if found is None:
                return None
            if index == 0:
                return found[0]
            return found[index] if found[0].lower() == b"basic" else None
        return read
    return build


fetch("http_auth_type", out=STR, needs=(REQ_HEADERS,))(_credential(0))
fetch("http_auth_user", out=STR, needs=(REQ_HEADERS,))(_credential(1))
fetch("http_auth_pass", out=STR, needs=(REQ_HEADERS,))(_credential(2))


@fetch("http_auth_bearer", out=STR, args="str?", needs=(REQ_HEADERS,))
def _http_auth_bearer(args, ctx):
    name = (args[0] or "authorization").lower().encode()

    def read(stream):
        values = stream.full_header_values(name)
        if not values:
            return None
        scheme, _, token = values[-1].strip().partition(b" ")
        return token.strip() if scheme.lower() == b"bearer" else None
    return read
