# HTTP/1 message framing in C, as one strict state machine per part of a message:
# the head (request line or status line, header fields), and a chunked body (size lines,
# data, trailers).  RFC 9112 where HAProxy 2.6 is more lenient, HAProxy where it is
# stricter; every difference is listed in README ("Differences from HAProxy").
#
# A head is parsed into spans (offsets into the receive buffer), never copied here, so
# nothing downstream sees bytes this parser did not check.  Whatever the input, these
# functions only read inside [buf, buf + len) and never allocate.

from libc.stdint cimport int64_t, uint8_t, uint32_t


cdef enum:
    MAX_HEADERS = 101        # HAProxy's tune.http.maxhdr default: the start line and 100 fields
    MAX_HEADERS_CAP = 32767  # tune.http.maxhdr's largest value (the spans' room)
    MAX_NAME = 255           # longest field name HAProxy takes


cdef enum HeadResult:
    HEAD_INCOMPLETE = 0      # > 0: the head's length (its final CRLF included)
    HEAD_ERROR = -1


cdef enum HeadError:
    HE_NONE = 0
    HE_METHOD = 1            # method not a token, or no single SP after it
    HE_TARGET = 2            # control, space, '#' or a byte above 0x7E in the target
    HE_VERSION = 3           # not HTTP/<digit>.<digit>, or a major version other than 1
    HE_LINE_END = 4          # a CR not followed by LF, or a bare LF
    HE_NAME = 5              # empty field name, a non-token byte, or space before ':'
    HE_VALUE = 6             # NUL or another control byte in a field value
    HE_FOLD = 7              # obs-fold (a line starting with SP/HTAB)
    HE_TOO_MANY = 8          # more than max_fields fields
    HE_STATUS = 9            # not three digits, or no SP after them


cdef struct Span:
    uint32_t off
    uint32_t len


cdef struct HeadSpans:
    Span method              # request: method and target
    Span target
    int status               # response: status code and reason phrase
    Span reason
    uint8_t major
    uint8_t minor
    int nfields
    int error                # HeadError once HEAD_ERROR is returned
    int max_fields           # tune.http.maxhdr: more fields is HE_TOO_MANY
    int lenient              # option accept-invalid-http-request|response: as HAProxy's
                             # parser then, any byte but ':' LF (and here CR, NUL) in a
                             # field name, and bytes above 0x7F in a request target
    Span names[MAX_HEADERS_CAP]
    Span values[MAX_HEADERS_CAP]


# tchar (RFC 9110 5.6.2): "!#$%&'*+-.^_`|~", digits and letters
cdef inline bint is_tchar(uint8_t c) noexcept nogil:
    if (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122):
        return True
    return c == b'!' or c == b'#' or c == b'$' or c == b'%' or c == b'&' or c == 39 or \
        c == b'*' or c == b'+' or c == b'-' or c == b'.' or c == b'^' or c == b'_' or \
        c == b'`' or c == b'|' or c == b'~'


cdef inline int64_t head_end(const char *buf, int64_t len, int64_t *scanned) noexcept nogil:
    """Offset just past the first empty line (LF [CR] LF), or -1.  ``scanned`` remembers how
    far earlier calls looked, so a head trickling in byte by byte is not rescanned.  A bare
    LF counts as an end too: the strict parse then refuses the head at once instead of
    waiting for a CRLFCRLF that a LF-only client never sends."""
    cdef int64_t i, start = scanned[0] - 2 if scanned[0] > 2 else 1
    scanned[0] = len
    for i in range(start, len):
        if buf[i] == b'\n':
            if buf[i - 1] == b'\n':
                return i + 1
            if i >= 2 and buf[i - 1] == b'\r' and buf[i - 2] == b'\n':
                return i + 1
    return -1


cdef inline int64_t leading_empty_lines(const char *buf, int64_t len) noexcept nogil:
    """Bytes of CRLF / LF before a request line (RFC 9112 2.2: ignored, as HAProxy does).
    A lone trailing CR is kept: its LF may be on its way."""
    cdef int64_t i = 0
    while i < len:
        if buf[i] == b'\n':
            i += 1
        elif buf[i] == b'\r' and i + 1 < len and buf[i + 1] == b'\n':
            i += 2
        else:
            break
    return i


cdef inline int64_t line_end(const char *buf, int64_t i, int64_t len, HeadSpans *h) noexcept nogil:
    """At buf[i] == CR: the offset after its LF, or -1 (h.error set)."""
    if i + 1 < len and buf[i] == b'\r' and buf[i + 1] == b'\n':
        return i + 2
    h.error = HE_LINE_END
    return -1


cdef inline int64_t parse_version(const char *buf, int64_t i, int64_t len, HeadSpans *h) noexcept nogil:
    """"HTTP/1.<digit>" at buf[i]; the offset after it, or -1."""
    if i + 8 > len or buf[i] != b'H' or buf[i + 1] != b'T' or buf[i + 2] != b'T' or \
            buf[i + 3] != b'P' or buf[i + 4] != b'/' or not (48 <= buf[i + 5] <= 57) or \
            buf[i + 6] != b'.' or not (48 <= buf[i + 7] <= 57):
        h.error = HE_VERSION
        return -1
    h.major = buf[i + 5] - 48
    h.minor = buf[i + 7] - 48
    if h.major != 1:
        h.error = HE_VERSION         # HTTP/0.9 and HTTP/2 have no place on an HTTP/1 connection
        return -1
    return i + 8


cdef inline int64_t parse_fields(const char *buf, int64_t i, int64_t len, HeadSpans *h) noexcept nogil:
    """Header fields from buf[i] to the empty line; the head's length, or -1."""
    cdef int64_t start, vstart, vend
    cdef uint8_t c
    h.nfields = 0
    while True:
        if i >= len:
            h.error = HE_LINE_END
            return -1
        c = <uint8_t>buf[i]
        if c == b'\r' or c == b'\n':
            return line_end(buf, i, len, h)
        if c == b' ' or c == b'\t':
            h.error = HE_FOLD
            return -1
        start = i
        while i < len and (is_tchar(<uint8_t>buf[i]) or (
                h.lenient and buf[i] != b':' and buf[i] != b'\n' and buf[i] != b'\r' and
                buf[i] != 0)):
            i += 1
        if i == start or i >= len or buf[i] != b':' or i - start > MAX_NAME:
            h.error = HE_NAME            # (HAProxy's HTX keeps a name's length in 8 bits)
            return -1
        if h.nfields >= h.max_fields:
            h.error = HE_TOO_MANY
            return -1
        h.names[h.nfields].off = <uint32_t>start
        h.names[h.nfields].len = <uint32_t>(i - start)
        i += 1
        while i < len and (buf[i] == b' ' or buf[i] == b'\t'):
            i += 1
        vstart = vend = i
        while i < len:
            c = <uint8_t>buf[i]
            if c == b'\r' or c == b'\n':
                break
            if (c < 0x20 and c != b'\t') or c == 0x7F:
                h.error = HE_VALUE
                return -1
            i += 1
            if c != b' ' and c != b'\t':
                vend = i                  # trailing whitespace is not part of the value
        h.values[h.nfields].off = <uint32_t>vstart
        h.values[h.nfields].len = <uint32_t>(vend - vstart)
        h.nfields += 1
        if i >= len:
            h.error = HE_LINE_END
            return -1
        i = line_end(buf, i, len, h)
        if i < 0:
            return -1


cdef inline int64_t parse_request_head(const char *buf, int64_t len, HeadSpans *h) noexcept nogil:
    """A complete request head (leading empty lines already skipped): its length, or
    HEAD_ERROR with h.error set.  ``len`` is what head_end() found, so an incomplete
    head is an error here."""
    cdef int64_t i = 0, start
    cdef uint8_t c
    h.error = HE_NONE
    while i < len and is_tchar(<uint8_t>buf[i]):
        i += 1
    if i == 0 or i >= len or buf[i] != b' ':
        h.error = HE_METHOD
        return HEAD_ERROR
    h.method.off = 0
    h.method.len = <uint32_t>i
    i += 1
    start = i
    while i < len:
        c = <uint8_t>buf[i]
        if c <= 0x20 or c == 0x7F or c == b'#' or (c > 0x7F and not h.lenient):
            break
        i += 1
    if i == start or i >= len or buf[i] != b' ':
        # a CR/LF here is a request without a version (HTTP/0.9): refused like the rest
        h.error = HE_TARGET if i < len and buf[i] != b' ' and buf[i] != b'\r' and buf[i] != b'\n' \
            else HE_VERSION
        return HEAD_ERROR
    h.target.off = <uint32_t>start
    h.target.len = <uint32_t>(i - start)
    i = parse_version(buf, i + 1, len, h)
    if i < 0:
        return HEAD_ERROR
    if i >= len or buf[i] != b'\r':
        h.error = HE_LINE_END if i < len and buf[i] == b'\n' else HE_VERSION
        return HEAD_ERROR
    i = line_end(buf, i, len, h)
    if i < 0:
        return HEAD_ERROR
    i = parse_fields(buf, i, len, h)
    return i if i > 0 else HEAD_ERROR


cdef inline int64_t parse_response_head(const char *buf, int64_t len, HeadSpans *h) noexcept nogil:
    """A complete status line and fields: the head's length, or HEAD_ERROR.  A missing
    reason phrase ("HTTP/1.1 200\\r\\n") is accepted, as HAProxy does."""
    cdef int64_t i, start
    cdef uint8_t c
    h.error = HE_NONE
    i = parse_version(buf, 0, len, h)
    if i < 0:
        return HEAD_ERROR
    if i + 4 > len or buf[i] != b' ' or not (48 <= buf[i + 1] <= 57) or \
            not (48 <= buf[i + 2] <= 57) or not (48 <= buf[i + 3] <= 57):
        h.error = HE_STATUS
        return HEAD_ERROR
    h.status = (buf[i + 1] - 48) * 100 + (buf[i + 2] - 48) * 10 + (buf[i + 3] - 48)
    i += 4
    start = i
    if i < len and buf[i] == b' ':
        i += 1
        start = i
        while i < len:
            c = <uint8_t>buf[i]
            if c == b'\r' or c == b'\n':
                break
            if (c < 0x20 and c != b'\t') or c == 0x7F:
                h.error = HE_STATUS
                return HEAD_ERROR
            i += 1
    h.reason.off = <uint32_t>start
    h.reason.len = <uint32_t>(i - start)
    if i >= len or buf[i] != b'\r':
        h.error = HE_STATUS if i < len and buf[i] != b'\n' else HE_LINE_END
        return HEAD_ERROR
    i = line_end(buf, i, len, h)
    if i < 0:
        return HEAD_ERROR
    i = parse_fields(buf, i, len, h)
    return i if i > 0 else HEAD_ERROR


# ---------------------------------------------------------------------------- chunked body
# chunked-body = *chunk last-chunk trailer-section CRLF (RFC 9112 7.1)
#   chunk-size = 1*HEXDIG; chunk-ext = *( BWS ";" BWS token [ BWS "=" BWS ( token / quoted ) ] )
# The size line is strict: only extensions of that form may follow the digits; a byte
# that is not part of it (a space before CRLF, "5 xyz", NUL) is an error.  Once in error the
# parser stays there: bytes it already took are never scanned again under another state.

cdef enum ChunkState:
    CH_SIZE = 0          # hex digits of the chunk size
    CH_SIZE_WS = 1       # BWS after the digits (or inside an extension), before ";" / "="
    CH_EXT_NAME = 2      # after ";": BWS, then an extension name
    CH_EXT_EQ_WS = 3     # BWS after "=", before the value
    CH_EXT_VALUE = 4     # token value
    CH_EXT_QUOTED = 5    # quoted-string value
    CH_EXT_QUOTED_ESC = 6
    CH_EXT_IN_NAME = 7   # inside an extension name
    CH_SIZE_LF = 8       # LF after the size line
    CH_DATA = 9          # chunk data
    CH_DATA_CR = 10      # CR after the data
    CH_DATA_LF = 11      # LF after the data
    CH_TRAILER = 12      # start of a trailer line (or the final CRLF)
    CH_TRAILER_NAME = 13 # trailer field name
    CH_TRAILER_VALUE = 14
    CH_TRAILER_LF = 15   # LF ending a trailer line
    CH_END_LF = 16       # LF of the final CRLF
    CH_DONE = 17
    CH_ERROR = 18
    CH_EXT_CLOSED = 19   # after a quoted value: BWS then ";", or ";", or CR


cdef struct ChunkParser:
    uint8_t state
    uint8_t ext_had_name # CH_SIZE_WS inside an extension: the name is done ("=" may follow)
    uint8_t te_match     # trailer name: bytes matching "transfer-encoding" so far (255: no)
    uint8_t cl_match     # and "content-length"
    uint32_t name_len    # trailer name length so far
    int64_t remaining    # data bytes left in the current chunk
    int64_t size
    uint8_t digits


cdef inline bint te_name_at(uint8_t c, uint8_t i) noexcept nogil:
    """Is ``c`` (any case) byte ``i`` of "transfer-encoding"?"""
    cdef const char *name = "transfer-encoding"
    return i < 17 and (c | 0x20) == <uint8_t>name[i]


cdef inline bint cl_name_at(uint8_t c, uint8_t i) noexcept nogil:
    """Is ``c`` (any case) byte ``i`` of "content-length"?"""
    cdef const char *name = "content-length"
    return i < 14 and (c | 0x20) == <uint8_t>name[i]


cdef inline int hexval(char c) noexcept nogil:
    if 48 <= c <= 57:           # 0-9
        return c - 48
    if 97 <= c <= 102:          # a-f
        return c - 87
    if 65 <= c <= 70:           # A-F
        return c - 55
    return -1


cdef inline int64_t chunk_fail(ChunkParser *p) noexcept nogil:
    p.state = CH_ERROR
    return -1


cdef inline int64_t chunk_scan(ChunkParser *p, const char *buf, int64_t len) noexcept nogil:
    """Consume chunked-body bytes; return how many belong to the body (p.state == CH_DONE
    once the final CRLF is passed), or -1 on a framing error, then on every later call."""
    cdef int64_t i = 0, take
    cdef int v
    cdef uint8_t c
    if p.state == CH_ERROR:
        return -1
    while i < len and p.state != CH_DONE:
        if p.state == CH_DATA:
            take = len - i
            if take > p.remaining:
                take = p.remaining
            i += take
            p.remaining -= take
            if p.remaining == 0:
                p.state = CH_DATA_CR
            continue
        c = <uint8_t>buf[i]
        i += 1
        if p.state == CH_SIZE:
            v = hexval(c)
            if v >= 0:
                if p.size > 0xFFFFFFFFFFFFLL:
                    return chunk_fail(p)         # over 52 bits (4 PiB): refused
                p.size = p.size * 16 + v
                p.digits = 1
            elif not p.digits:
                return chunk_fail(p)
            elif c == b'\r':
                p.state = CH_SIZE_LF
            elif c == b';':
                p.state = CH_EXT_NAME
            elif c == b' ' or c == b'\t':
                p.ext_had_name = 0
                p.state = CH_SIZE_WS
            else:
                return chunk_fail(p)
        elif p.state == CH_SIZE_WS:
            # BWS must lead to ";" (or to "=" after an extension name)
            if c == b' ' or c == b'\t':
                pass
            elif c == b';':
                p.state = CH_EXT_NAME
            elif c == b'=' and p.ext_had_name:
                p.state = CH_EXT_EQ_WS
            else:
                return chunk_fail(p)
        elif p.state == CH_EXT_NAME:
            if is_tchar(c):
                p.state = CH_EXT_IN_NAME
                p.ext_had_name = 1
            elif c == b' ' or c == b'\t':
                pass                          # BWS after ";"
            else:
                return chunk_fail(p)
        elif p.state == CH_EXT_EQ_WS:
            if c == b' ' or c == b'\t':
                pass
            elif c == b'"':
                p.state = CH_EXT_QUOTED
            elif is_tchar(c):
                p.ext_had_name = 0
                p.state = CH_EXT_VALUE
            else:
                return chunk_fail(p)
        elif p.state == CH_EXT_IN_NAME or p.state == CH_EXT_VALUE or p.state == CH_EXT_CLOSED:
            # in a name or a token value (more token bytes), or after a quoted value (none);
            # then "=" (after a name), BWS, ";" or CR
            if is_tchar(c) and p.state != CH_EXT_CLOSED:
                pass
            elif c == b'=' and p.state == CH_EXT_IN_NAME:
                p.ext_had_name = 0
                p.state = CH_EXT_EQ_WS
            elif c == b' ' or c == b'\t':
                p.ext_had_name = p.state == CH_EXT_IN_NAME    # "=" may still follow a name
                p.state = CH_SIZE_WS
            elif c == b';':
                p.state = CH_EXT_NAME
            elif c == b'\r':
                p.state = CH_SIZE_LF
            else:
                return chunk_fail(p)
        elif p.state == CH_EXT_QUOTED:
            if c == b'"':
                p.state = CH_EXT_CLOSED
            elif c == b'\\':
                p.state = CH_EXT_QUOTED_ESC
            elif (c < 0x20 and c != b'\t') or c == 0x7F:
                return chunk_fail(p)
        elif p.state == CH_EXT_QUOTED_ESC:
            if (c < 0x20 and c != b'\t') or c == 0x7F:
                return chunk_fail(p)
            p.state = CH_EXT_QUOTED
        elif p.state == CH_SIZE_LF:
            if c != b'\n':
                return chunk_fail(p)
            if p.size == 0:
                p.state = CH_TRAILER
            else:
                p.remaining = p.size
                p.state = CH_DATA
            p.size = 0
            p.digits = 0
        elif p.state == CH_DATA_CR:
            if c != b'\r':
                return chunk_fail(p)
            p.state = CH_DATA_LF
        elif p.state == CH_DATA_LF:
            if c != b'\n':
                return chunk_fail(p)
            p.state = CH_SIZE
        elif p.state == CH_TRAILER:
            if c == b'\r':
                p.state = CH_END_LF
            elif is_tchar(c):
                p.state = CH_TRAILER_NAME
                p.name_len = 1
                p.te_match = 1 if te_name_at(c, 0) else 255
                p.cl_match = 1 if cl_name_at(c, 0) else 255
            else:
                return chunk_fail(p)         # bare LF, obs-fold, or not a field name
        elif p.state == CH_TRAILER_NAME:
            if c == b':':
                # framing cannot change after the body: no Transfer-Encoding (HAProxy
                # refuses it too) and no Content-Length (HAProxy refuses a malformed one)
                if p.te_match == 17 or p.cl_match == 14:
                    return chunk_fail(p)
                p.state = CH_TRAILER_VALUE
            elif not is_tchar(c) or p.name_len >= MAX_NAME:
                return chunk_fail(p)
            else:
                p.name_len += 1
                if p.te_match < 17 and te_name_at(c, p.te_match):
                    p.te_match += 1
                else:
                    p.te_match = 255
                if p.cl_match < 14 and cl_name_at(c, p.cl_match):
                    p.cl_match += 1
                else:
                    p.cl_match = 255
        elif p.state == CH_TRAILER_VALUE:
            if c == b'\r':
                p.state = CH_TRAILER_LF
            elif (c < 0x20 and c != b'\t') or c == 0x7F:
                return chunk_fail(p)
        elif p.state == CH_TRAILER_LF:
            if c != b'\n':
                return chunk_fail(p)
            p.state = CH_TRAILER
        elif p.state == CH_END_LF:
            if c != b'\n':
                return chunk_fail(p)
            p.state = CH_DONE
    return i
