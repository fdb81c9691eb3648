# Entry points for tests and benchmarks only.
# Interface: probes.pxd.


# ---------------------------------------------------------------------------- measurement
# The per-request pieces above on their own, for the micro-benchmarks in bench/micro
# (pytest-benchmark).  The worker loop does not use these.

def measure_parse_request(bytes raw):
    """What the loop does with a request head: find its end, parse it (framing.pxd), read
    the framing headers.  Returns (url, headers, keep_alive, length)."""
    cdef int64_t scanned = 0
    cdef int64_t end = head_end(<char *>raw, len(raw), &scanned)
    if end < 0:
        raise ValueError("incomplete head")
    fields, why = parse_head(raw[:end], True)
    if fields is None:
        raise ValueError(why)
    return (fields.url, fields.headers, _keep_alive(fields.version, fields.headers),
            content_length(fields.headers))


def measure_rr_picks(tuple order, int prefix, int rounds):
    """``rounds`` round-robin picks over ``order`` (a lb/sequence.py table) with a private
    position word; returns the last server picked."""
    cdef uint64_t position = 0
    cdef int *sequence = int_array(list(order))
    cdef int i, picked = -1
    try:
        for i in range(rounds):
            picked = rr_pick(&position, sequence, prefix, len(order))
    finally:
        free(sequence)
    return picked


# ---------------------------------------------------------------------------- framing probes
# framing.pxd's parsers called on a Python bytes object, for the differential and
# property tests (tests/test_framing.py).  The loop calls the C functions directly.

def framing_parse_head(bytes raw, bint request=True):
    """(length, fields) for a complete head, or (-1, reason).  ``fields``: method, url,
    version, status, reason, headers (names lower case)."""
    cdef int64_t scanned = 0
    cdef int64_t end = head_end(<char *>raw, len(raw), &scanned)
    if end < 0:
        return 0, "incomplete"
    head, why = parse_head(raw[:end], request)
    if head is None:
        return -1, why
    return end, {"method": head.method, "url": head.url, "version": head.version,
                 "status": head.status, "reason": head.reason, "headers": head.headers}


def framing_skip_empty_lines(bytes raw):
    return leading_empty_lines(<char *>raw, len(raw))


def framing_chunks(bytes raw, list cuts):
    """Feed a chunked body to the C parser in pieces cut at ``cuts``; returns (bytes that
    belong to the body, done, error)."""
    cdef ChunkParser p
    cdef int64_t taken = 0, r
    cdef bytes piece
    memset(&p, 0, sizeof(ChunkParser))
    bounds = [0] + sorted(c for c in cuts if 0 < c < len(raw)) + [len(raw)]
    for a, b in zip(bounds, bounds[1:]):
        piece = raw[a:b]
        r = chunk_scan(&p, <char *>piece, len(piece))
        if r < 0:
            return taken, False, True
        taken += r
        if p.state == CH_DONE:
            break
    return taken, p.state == CH_DONE, False
