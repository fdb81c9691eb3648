"""The sample converters (HAProxy 2.6 manual 7.3.1): each ``@converter`` names the type it
takes and the type it gives; its builder runs once per expression at start-up and returns
``convert(sample, stream) -> sample | None`` (None: the expression has no sample)."""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac as _hmac
import ipaddress
import json as _json
import re
import time
import urllib.parse
import zlib

from ..lb.chash import full_hash
from .maps import MAP_MATCHES, load_map
from .registry import SampleError, VAR_NAME, converter, int_or_var
from .types import ADDR, ANY, BIN, BOOL, SINT, STR, clamp, dynamic_cast

MASK32 = 0xFFFFFFFF


def _plain(function):
    """A converter without arguments, from a function of the sample alone."""
    return lambda args, ctx: lambda value, stream: function(value)


# ------------------------------------------------------------------------- text
converter("lower")(_plain(bytes.lower))
converter("upper")(_plain(bytes.upper))
converter("length", out=SINT)(_plain(len))
converter("base64", takes=BIN)(_plain(base64.b64encode))
converter("ub64enc", takes=BIN)(_plain(lambda v: base64.urlsafe_b64encode(v).rstrip(b"=")))
converter("hex", takes=BIN)(_plain(lambda v: binascii.hexlify(v).upper()))
converter("cut_crlf")(_plain(lambda v: re.split(rb"[\r\n]", v, maxsplit=1)[0]))


def _b64decode(value: bytes, urlsafe: bool):
    try:
        if urlsafe:
            value = value + b"=" * (-len(value) % 4)
            return base64.urlsafe_b64decode(value)
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


converter("b64dec", out=BIN)(_plain(lambda v: _b64decode(v, False)))
converter("ub64dec", out=BIN)(_plain(lambda v: _b64decode(v, True)))


@converter("hex2i", out=SINT)
def _hex2i(args, ctx):
    def convert(value, stream):
        try:
            return clamp(int(value, 16)) if value else None
        except ValueError:
            return None
    return convert


@converter("bytes", takes=BIN, out=BIN, args="int,int?")
def _bytes(args, ctx):
    offset, length = args
    if offset < 0 or (length is not None and length < 0):
        raise SampleError("'bytes' : offset and length must be positive")

    def convert(value, stream):
        if offset >= len(value):
            return None
        return value[offset:] if length is None else value[offset:offset + length]
    return convert


def _pieces(value: bytes, delimiters: bytes, skip_empty: bool) -> list:
    parts = re.split(b"[" + re.escape(delimiters) + b"]", value) if delimiters else [value]
    return [p for p in parts if p] if skip_empty else parts


def _field_converter(skip_empty: bool):
    def build(args, ctx):
        index, delimiters, count = args
        delimiters = delimiters.encode("latin-1")
        if index == 0:
            raise SampleError("index must be different from 0")
        count = count or 1

        def convert(value, stream):
            parts = _pieces(value, delimiters, skip_empty)
            joiner = delimiters[:1]
            if index > 0:
                start = index - 1
                if start >= len(parts):
                    return b""
                chosen = parts[start:] if count == 0 else parts[start:start + count]
            else:
                end = len(parts) + index + 1
                if end <= 0:
                    return b""
                chosen = parts[:end] if count == 0 else parts[max(0, end - count):end]
            return joiner.join(chosen)
        return convert
    return build


converter("field", args="int,str,int?")(_field_converter(False))
converter("word", args="int,str,int?")(_field_converter(True))


@converter("regsub", args="reg,str,str?")
def _regsub(args, ctx):
    pattern, replacement, flags = args
    flags = flags or ""
    if set(flags) - set("ig"):
        raise SampleError(f"'regsub' : invalid flags '{flags}' (expects 'i' and/or 'g')")
    if "i" in flags:
        pattern = re.compile(pattern.pattern, re.IGNORECASE)
    template = re.sub(r"\\(\d)", r"\\g<\1>", replacement).encode("utf-8", "surrogateescape")
    count = 0 if "g" in flags else 1
    return lambda value, stream: pattern.sub(template, value, count=count)


@converter("ltrim", args="str")
def _ltrim(args, ctx):
    chars = args[0].encode("latin-1")
    return lambda value, stream: value.lstrip(chars)


@converter("rtrim", args="str")
def _rtrim(args, ctx):
    chars = args[0].encode("latin-1")
    return lambda value, stream: value.rstrip(chars)


@converter("concat", args="str?,str?,str?")
def _concat(args, ctx):
    start, var, end = args
    start = (start or "").encode("utf-8", "surrogateescape")
    end = (end or "").encode("utf-8", "surrogateescape")
    if var and not VAR_NAME.fullmatch(var):
        raise SampleError(f"'concat' : invalid variable name '{var}'")

    def convert(value, stream):
        middle = b""
        if var:
            sample = stream.get_var(var)
            if sample is not None:
                middle = dynamic_cast(sample, STR) or b""
        return value + start + middle + end
    return convert


@converter("url_dec", args="int?")
def _url_dec(args, ctx):
    in_form = bool(args[0])

    def convert(value, stream):
        if in_form:
            value = value.replace(b"+", b" ")
        return urllib.parse.unquote_to_bytes(value)
    return convert


@converter("url_enc", args="str?")
def _url_enc(args, ctx):
    if args[0] not in (None, "", "query"):
        raise SampleError(f"'url_enc' : unknown encoding type '{args[0]}'")
    return lambda value, stream: urllib.parse.quote_from_bytes(value, safe="").encode()


@converter("json", args="str?")
def _json_escape(args, ctx):
    mode = args[0] or "ascii"
    if mode not in ("ascii", "utf8", "utf8s", "utf8p", "utf8ps"):
        raise SampleError(f"'json' : unexpected input code type '{mode}'. Allowed values "
                          "are 'ascii', 'utf8', 'utf8s', 'utf8p' and 'utf8ps'")

    def convert(value, stream):
        if mode == "ascii":
            text = value.decode("latin-1")
            return _json.dumps(text)[1:-1].encode()
        try:
            text = value.decode("utf-8", "strict")
        except UnicodeDecodeError:
            if "s" not in mode[4:]:
                return None
            text = value.decode("utf-8", "ignore")
        return _json.dumps(text, ensure_ascii=True)[1:-1].encode()
    return convert


@converter("strcmp", out=SINT, args="var")
def _strcmp(args, ctx):
    name = args[0]

    def convert(value, stream):
        other = stream.get_var(name)
        other = dynamic_cast(other, STR) if other is not None else None
        if other is None:
            return None
        return (value > other) - (value < other)
    return convert


@converter("secure_memcmp", takes=BIN, out=BOOL, args="var")
def _secure_memcmp(args, ctx):
    name = args[0]

    def convert(value, stream):
        other = stream.get_var(name)
        other = dynamic_cast(other, STR) if other is not None else None
        return None if other is None else _hmac.compare_digest(value, other)
    return convert


# ----------------------------------------------------------------------- hashes
def _avalanched(function):
    def build(args, ctx):
        avalanche = bool(args[0])

        def convert(value, stream):
            h = function(value) & MASK32
            return full_hash(h) if avalanche else h
        return convert
    return build


def sdbm(data: bytes) -> int:
    h = 0
    for c in data:
        h = (c + (h << 6) + (h << 16) - h) & MASK32
    return h


def djb2(data: bytes) -> int:
    h = 5381
    for c in data:
        h = (h * 33 + c) & MASK32
    return h


def wt6(data: bytes) -> int:
    h0, h1, step0, step1 = 0xA53C965A, 0x5CA6953A, 6, 18
    for c in data:
        h0 = ~(h0 ^ c) & MASK32
        h1 = ~(h1 + c) & MASK32
        t = ((h1 << step0) | (h1 >> (32 - step0))) & MASK32
        h1 = ((h0 << step1) | (h0 >> (32 - step1))) & MASK32
        h0 = t
        t = ((h0 >> 16) ^ h1) & 0xFFFF
        step0 = t & 0x1F
        step1 = t >> 11
    return (h0 ^ h1) & MASK32


def _crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for c in data:
        crc ^= c
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


converter("sdbm", takes=BIN, out=SINT, args="int?")(_avalanched(sdbm))
converter("djb2", takes=BIN, out=SINT, args="int?")(_avalanched(djb2))
converter("wt6", takes=BIN, out=SINT, args="int?")(_avalanched(wt6))
converter("crc32", takes=BIN, out=SINT, args="int?")(_avalanched(zlib.crc32))
converter("crc32c", takes=BIN, out=SINT, args="int?")(_avalanched(_crc32c))


def _xxh(kind: str):
    def build(args, ctx):
        try:
            import xxhash
        except ImportError:                      # pragma: no cover - a declared dependency
            raise SampleError(f"'{kind}' needs the xxhash package") from None
        seed = args[0] or 0
        function = {"xxh32": xxhash.xxh32_intdigest, "xxh64": xxhash.xxh64_intdigest,
                    "xxh3": xxhash.xxh3_64_intdigest}[kind]
        signed = kind != "xxh32"

        def convert(value, stream):
            h = function(value, seed=seed)
            return h - (1 << 64) if signed and h >= 1 << 63 else h
        return convert
    return build


for _kind in ("xxh32", "xxh64", "xxh3"):
    converter(_kind, takes=BIN, out=SINT, args="int?")(_xxh(_kind))

converter("sha1", takes=BIN, out=BIN)(_plain(lambda v: hashlib.sha1(v).digest()))


@converter("sha2", takes=BIN, out=BIN, args="int?")
def _sha2(args, ctx):
    bits = args[0] or 256
    algorithm = {224: hashlib.sha224, 256: hashlib.sha256, 384: hashlib.sha384,
                 512: hashlib.sha512}.get(bits)
    if algorithm is None:
        raise SampleError(f"Unsupported number of bits: '{bits}'.")
    return lambda value, stream: algorithm(value).digest()


def _algorithm(name: str) -> str:
    try:
        hashlib.new(name)
    except ValueError:
        raise SampleError(f"algorithm must be a valid OpenSSL message digest name.") from None
    return name


@converter("digest", takes=BIN, out=BIN, args="str")
def _digest(args, ctx):
    name = _algorithm(args[0])
    return lambda value, stream: hashlib.new(name, value).digest()


@converter("hmac", takes=BIN, out=BIN, args="str,str")
def _hmac_conv(args, ctx):
    name = _algorithm(args[0])
    key = _b64decode(args[1].encode(), False)
    if key is None:
        raise SampleError("'hmac' : the key must be base64 encoded.")
    return lambda value, stream: _hmac.new(key, value, name).digest()


# --------------------------------------------------------------------- integers
def _arith(operation):
    def build(args, ctx):
        operand = int_or_var(args[0])

        def convert(value, stream):
            other = operand(stream)
            if other is None:
                return None
            return operation(value, other)
        return convert
    return build


def _div(a: int, b: int) -> int:
    if b == 0:
        return (1 << 63) - 1 if a >= 0 else -(1 << 63)
    q = abs(a) // abs(b)
    return clamp(q if (a >= 0) == (b >= 0) else -q)


def _mod(a: int, b: int) -> int:
    if b == 0:
        return 0
    r = abs(a) % abs(b)
    return r if a >= 0 else -r


for _name, _op in (("add", lambda a, b: clamp(a + b)), ("sub", lambda a, b: clamp(a - b)),
                   ("mul", lambda a, b: clamp(a * b)), ("div", _div), ("mod", _mod),
                   ("and", lambda a, b: a & b), ("or", lambda a, b: a | b),
                   ("xor", lambda a, b: a ^ b)):
    converter(_name, takes=SINT, out=SINT, args="str")(_arith(_op))

converter("neg", takes=SINT, out=SINT)(_plain(lambda v: clamp(-v)))
converter("cpl", takes=SINT, out=SINT)(_plain(lambda v: ~v))
converter("not", takes=SINT, out=BOOL)(_plain(lambda v: not v))
converter("bool", takes=SINT, out=BOOL)(_plain(bool))
converter("odd", takes=SINT, out=BOOL)(_plain(lambda v: bool(v & 1)))
converter("even", takes=SINT, out=BOOL)(_plain(lambda v: not v & 1))
converter("htonl", takes=SINT, out=BIN)(
    _plain(lambda v: (v & MASK32).to_bytes(4, "big")))


@converter("iif", takes=BOOL, args="str,str")
def _iif(args, ctx):
    yes, no = (a.encode("utf-8", "surrogateescape") for a in args)
    return lambda value, stream: yes if value else no


@converter("ltime", takes=SINT, args="str,int?")
def _ltime(args, ctx):
    fmt, offset = args[0], args[1] or 0
    return lambda value, stream: time.strftime(fmt, time.localtime(value + offset)).encode()


@converter("utime", takes=SINT, args="str,int?")
def _utime(args, ctx):
    fmt, offset = args[0], args[1] or 0
    return lambda value, stream: time.strftime(fmt, time.gmtime(value + offset)).encode()


@converter("http_date", takes=SINT, args="int?,str?")
def _http_date(args, ctx):
    offset, unit = args[0] or 0, args[1] or "s"
    scale = {"s": 1, "ms": 1000, "us": 1000000}.get(unit)
    if scale is None:
        raise SampleError(f"'http_date' : unit '{unit}' is not 's', 'ms' or 'us'.")

    def convert(value, stream):
        return time.strftime("%a, %d %b %Y %H:%M:%S GMT",
                             time.gmtime(value // scale + offset)).encode()
    return convert


@converter("be2dec", takes=BIN, args="str,int,int?")
def _be2dec(args, ctx):
    separator, size, truncate = args[0].encode(), args[1], bool(args[2])
    if not 1 <= size <= 8:
        raise SampleError("chunk_size must be between 1 and 8")

    def convert(value, stream):
        end = len(value) - len(value) % size if truncate else len(value)
        return separator.join(b"%d" % int.from_bytes(value[i:i + size], "big")
                              for i in range(0, end, size))
    return convert


@converter("be2hex", takes=BIN, args="str?,int?,int?")
def _be2hex(args, ctx):
    separator = (args[0] or "").encode()
    size = args[1] or 1
    truncate = bool(args[2])

    def convert(value, stream):
        end = len(value) - len(value) % size if truncate else len(value)
        return separator.join(binascii.hexlify(value[i:i + size]).upper()
                              for i in range(0, end, size))
    return convert


# ------------------------------------------------------------------- addresses
@converter("ipmask", takes=ADDR, out=ADDR, args="str,str?")
def _ipmask(args, ctx):
    try:
        mask4 = ipaddress.IPv4Network("0.0.0.0/" + args[0]).netmask
        mask6 = ipaddress.IPv6Network("::/" + args[1]).netmask if args[1] else None
    except ValueError:
        raise SampleError(f"'ipmask' : invalid mask '{args[0]}'.") from None
    m4, m6 = int(mask4), int(mask6) if mask6 is not None else None

    def convert(value, stream):
        if value.version == 4:
            return ipaddress.IPv4Address(int(value) & m4)
        if m6 is None:
            return None
        return ipaddress.IPv6Address(int(value) & m6)
    return convert


# ----------------------------------------------------------------- variables
@converter("set-var", takes=ANY, out="same", args="var")
def _set_var(args, ctx):
    name = args[0]

    def convert(value, stream):
        stream.set_var(name, value)
        return value
    return convert


@converter("unset-var", takes=ANY, out="same", args="var")
def _unset_var(args, ctx):
    name = args[0]

    def convert(value, stream):
        stream.unset_var(name)
        return value
    return convert


# ----------------------------------------------------------------------- maps
def _map_converter(match: str, output: str):
    def build(args, ctx):
        path, default = args
        table = load_map(path, match, output, ctx.base_dir)
        fallback = None
        if default is not None:
            fallback = table.typed(default)

        def convert(value, stream):
            found = table.lookup(value)
            return fallback if found is None else found
        return convert
    return build


for _match in MAP_MATCHES:
    for _out, _type in (("str", STR), ("int", SINT), ("ip", ADDR)):
        _names = [f"map_{_match}_{_out}"]
        if _out == "str":
            _names.append(f"map_{_match}")
        if _match == "str":
            _names.append("map" if _out == "str" else f"map_{_out}")
        _takes = ADDR if _match == "ip" else SINT if _match == "int" else STR
        converter(*_names, takes=_takes, out=_type, args="str,str?")(
            _map_converter(_match, _out))


@converter("in_table", "table_bytes_in_rate", "table_conn_cnt", "table_conn_cur",
           "table_gpc0", "table_http_req_cnt", "table_http_req_rate", "table_server_id",
           takes=ANY, out=SINT, args="str",
           refused="needs stick tables, which fastlb does not support yet (issue #14)")
def _table(args, ctx):
    raise AssertionError("refused at start-up")


_ = (BIN,)
