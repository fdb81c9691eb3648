# HTTP/1 message framing in C: where a head ends, and where a chunked body ends.
# Heads are parsed by httptools; these only find boundaries, so that the bytes of a
# pipelined next message are never forwarded as part of this one.

from libc.stdint cimport int64_t, uint8_t


cdef enum ChunkState:
    CH_SIZE = 0          # hex digits of the chunk size
    CH_EXT = 1           # chunk extension, up to CR
    CH_SIZE_LF = 2       # LF after the size line
    CH_DATA = 3          # chunk data
    CH_DATA_CR = 4       # CR after the data
    CH_DATA_LF = 5       # LF after the data
    CH_TRAILER = 6       # start of a trailer line (or the final CRLF)
    CH_TRAILER_LINE = 7  # inside a trailer field
    CH_TRAILER_LF = 8    # LF ending a trailer line
    CH_END_LF = 9        # LF of the final CRLF
    CH_DONE = 10


cdef struct ChunkParser:
    uint8_t state
    uint8_t digits       # hex digits seen in the current size
    int64_t remaining    # data bytes left in the current chunk
    int64_t size


cdef inline int64_t head_end(const char *buf, int64_t len, int64_t *scanned) nogil:
    """Offset just past the CRLFCRLF ending a head, or -1.  ``scanned`` remembers how far
    earlier calls looked, so a head trickling in byte by byte is not rescanned each time."""
    cdef int64_t i, start = scanned[0] - 3 if scanned[0] > 3 else 3
    scanned[0] = len
    for i in range(start, len):
        if buf[i] == b'\n' and buf[i - 1] == b'\r' and buf[i - 2] == b'\n' and buf[i - 3] == b'\r':
            return i + 1
    return -1


cdef inline int hexval(char c) nogil:
    if 48 <= c <= 57:           # 0-9
        return c - 48
    if 97 <= c <= 102:          # a-f
        return c - 87
    if 65 <= c <= 70:           # A-F
        return c - 55
    return -1


cdef inline int64_t chunk_scan(ChunkParser *p, const char *buf, int64_t len) nogil:
    """Consume chunked-body bytes; return how many belong to the body (p.state == CH_DONE
    once the final CRLF is passed), or -1 on a framing error (bad size, missing CRLF)."""
    cdef int64_t i = 0, take
    cdef int v
    cdef char c
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
        c = buf[i]
        i += 1
        if p.state == CH_SIZE:
            v = hexval(c)
            if v >= 0:
                if p.digits >= 15:
                    return -1            # a size that does not fit in 60 bits
                p.size = p.size * 16 + v
                p.digits += 1
            elif p.digits == 0:
                return -1
            elif c == b'\r':
                p.state = CH_SIZE_LF
            elif c == b';' or c == b' ' or c == b'\t':
                p.state = CH_EXT
            else:
                return -1
        elif p.state == CH_EXT:
            if c == b'\r':
                p.state = CH_SIZE_LF
            elif c == b'\n':
                return -1
        elif p.state == CH_SIZE_LF:
            if c != b'\n':
                return -1
            if p.size == 0:
                p.state = CH_TRAILER
            else:
                p.remaining = p.size
                p.state = CH_DATA
            p.size = 0
            p.digits = 0
        elif p.state == CH_DATA_CR:
            if c != b'\r':
                return -1
            p.state = CH_DATA_LF
        elif p.state == CH_DATA_LF:
            if c != b'\n':
                return -1
            p.state = CH_SIZE
        elif p.state == CH_TRAILER:
            if c == b'\r':
                p.state = CH_END_LF
            elif c == b'\n':
                return -1
            else:
                p.state = CH_TRAILER_LINE
        elif p.state == CH_TRAILER_LINE:
            if c == b'\r':
                p.state = CH_TRAILER_LF
            elif c == b'\n':
                return -1
        elif p.state == CH_TRAILER_LF:
            if c != b'\n':
                return -1
            p.state = CH_TRAILER
        elif p.state == CH_END_LF:
            if c != b'\n':
                return -1
            p.state = CH_DONE
    return i
