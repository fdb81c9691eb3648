# HTTP message syntax and framing: what a head may say, where a body ends.
# Interface: http_message.pxd.


# tune.http.maxhdr counts the start line with the fields, as HAProxy's
cdef int head_max_fields = MAX_HEADERS - 1


def set_http_maxhdr(int limit):
    """tune.http.maxhdr (1..32767): a head may have that many lines, its first included."""
    global head_max_fields
    if not 1 <= limit <= MAX_HEADERS_CAP:
        raise ValueError("tune.http.maxhdr is between 1 and 32767")
    head_max_fields = limit - 1


# h1-case-adjust: lower-case name -> the case written to a bogus peer
cdef dict case_table = {}


def set_h1_case_adjust(dict table):
    global case_table
    case_table = {k.encode("latin-1"): v.encode("latin-1") for k, v in table.items()}


cdef bytes adjust_case(bytes message):
    """The head at the start of ``message`` with its header names in h1-case-adjust's
    case (the bytes after the head, body bytes, untouched)."""
    cdef Py_ssize_t end = message.find(b"\r\n\r\n"), colon
    if end < 0 or not case_table:
        return message
    lines = message[:end].split(b"\r\n")
    for i in range(1, len(lines)):
        colon = lines[i].find(b":")
        if colon > 0:
            name = case_table.get(lines[i][:colon].lower())
            if name is not None:
                lines[i] = name + lines[i][colon:]
    return b"\r\n".join(lines) + message[end:]


# the spans of the head being parsed: room for 32767 fields is 512 KiB, kept out of the
# C stack; one worker parses one head at a time
cdef HeadSpans spans


cdef object parse_head(bytes head, bint request, bint lenient=False):
    """(Head, None), or (None, error text) for a head framing.pxd refuses (``lenient``:
    option accept-invalid-http-request or -response)."""
    cdef HeadSpans *h = &spans
    h.max_fields = head_max_fields
    h.lenient = lenient
    cdef const char *raw = head
    cdef int64_t n = len(head), end
    cdef int i
    cdef Head out = Head()
    with nogil:
        end = parse_request_head(raw, n, h) if request else parse_response_head(raw, n, h)
    if end == HEAD_ERROR:
        return None, HEAD_ERRORS.get(h.error, "malformed head")
    if end != n:
        return None, "bytes after the end of the head"
    if request:
        out.method = head[h.method.off:h.method.off + h.method.len]
        out.url = head[h.target.off:h.target.off + h.target.len]
    else:
        out.status = h.status
        out.reason = head[h.reason.off:h.reason.off + h.reason.len]
    out.version = b"1.0" if h.minor == 0 else b"1.1"
    out.headers = [(head[h.names[i].off:h.names[i].off + h.names[i].len].lower(),
                    head[h.values[i].off:h.values[i].off + h.values[i].len])
                   for i in range(h.nfields)]
    return out, None


cdef inline bint bytes_safe(bytes value):
    """No CR, LF or NUL: what may stand in a header, a status line or a Location."""
    cdef const char *p = value
    cdef Py_ssize_t i
    for i in range(len(value)):
        if p[i] == 13 or p[i] == 10 or p[i] == 0:
            return False
    return True


cdef bint fields_safe(list headers):
    """Every (name, value) of a list some rule or editor touched may be written as is."""
    for name, value in headers:
        if not isinstance(name, bytes) or not isinstance(value, bytes) or not name or \
                not bytes_safe(name) or not bytes_safe(value) or b":" in name or \
                b" " in name:
            return False
    return True


cdef int64_t content_length(list headers):
    """The Content-Length (-1: none, -2: invalid or ambiguous).  Repeated identical values
    are one value, as in HAProxy; different ones, a sign, a space inside or anything but
    digits is an error (RFC 9112 6.3)."""
    cdef list values = header_list(headers, b"content-length")
    cdef bytes first
    if not values:
        return -1
    first = values[0]
    for v in values:
        if v != first or not v or not v.isdigit() or len(v) > 18:
            return -2
    return int(first)


cdef int transfer_chunked(list headers):
    """0: no Transfer-Encoding, 1: just "chunked", 2: chunked last after other codings
    (well formed, but HAProxy 2.6 refuses such a request with 422), -1: anything else."""
    cdef list codings = [c.lower() for c in header_list(headers, b"transfer-encoding")]
    if not codings:
        return 0
    if codings[len(codings) - 1] != b"chunked" or codings.count(b"chunked") != 1:
        return -1
    return 1 if len(codings) == 1 else 2          # (an empty element counts as a coding)


cdef bytes authority_of(bytes url):
    """The authority of an absolute-form target (lower case, default port dropped), or None."""
    cdef Py_ssize_t colon = url.find(b"://")
    cdef bytes scheme, authority
    if colon <= 0:
        return None
    scheme = url[:colon].lower()
    # RFC 3986 scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), as HAProxy checks
    if not (97 <= scheme[0] <= 122) or \
            scheme.translate(None, b"abcdefghijklmnopqrstuvwxyz0123456789+-.") != b"":
        return None
    authority = url[colon + 3:]
    authority = authority.split(b"/", 1)[0].split(b"?", 1)[0]
    authority = authority[authority.rfind(b"@") + 1:].lower()
    return strip_default_port(authority, scheme)


cdef bint authority_form(bytes url):
    """host ":" port, the host of RFC 3986 reg-name/IP-literal bytes, the port digits."""
    cdef Py_ssize_t colon = url.rfind(b":")
    cdef bytes host = url[:colon], port = url[colon + 1:]
    if colon <= 0 or not port or not port.isdigit() or len(port) > 5:
        return False
    return host.translate(None, b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                b"0123456789-._~%!$&'()*+,;=[]:") == b""


cdef bytes strip_default_port(bytes authority, bytes scheme):
    if (scheme == b"http" and authority.endswith(b":80")) or \
            (scheme == b"https" and authority.endswith(b":443")):
        return authority.rsplit(b":", 1)[0]
    return authority


cdef object request_refused(Head head, bint lenient=False):
    """Why a well-formed request head is still refused (HAProxy's 400s), or None: a body
    framed two ways, two different Hosts, an absolute URI naming another host, CONNECT
    without an authority, a WebSocket upgrade without its key.  ``lenient`` (option
    accept-invalid-http-request) lets an absolute URI name another host than Host, as
    HAProxy's parser then does (two different Hosts stay refused)."""
    cdef list hosts = [v for k, v in head.headers if k == b"host"]
    cdef bytes url = head.url, authority
    if len(hosts) > 1:
        if any(h.lower() != hosts[0].lower() for h in hosts):
            return "several different Host headers"
        first = True
        kept = []
        for k, v in head.headers:          # identical copies: forward one
            if k == b"host":
                if not first:
                    continue
                first = False
            kept.append((k, v))
        head.headers[:] = kept
    if head.method == b"PRI":
        return "PRI is the HTTP/2 preface, not a request"
    if head.method == b"CONNECT":
        if not authority_form(url):
            return "CONNECT needs an authority-form target (host:port)"
        if hosts and hosts[0].lower() != url.lower():
            return "CONNECT authority and Host differ"
    elif url[:1] != b"/":
        if url == b"*":
            if head.method != b"OPTIONS":
                return "'*' target outside OPTIONS"
        else:
            authority = authority_of(url)
            if authority is None or not authority:
                return "target is neither a path nor an absolute URI"
            if hosts and not lenient and strip_default_port(
                    hosts[0].lower(), url.split(b":", 1)[0].lower()) != authority:
                return "absolute URI and Host differ"
    if _connection_has(head.headers, b"upgrade") and \
            b"websocket" in [u.lower() for u in header_list(head.headers, b"upgrade")]:
        key = _header(head.headers, b"sec-websocket-key")
        if key is None or len(key) != 24:      # base64 of 16 bytes, as HAProxy checks
            return "WebSocket upgrade without a valid Sec-WebSocket-Key"
    return None


cdef int classify_body(ChunkParser *chunk, int mode, int64_t *remaining, int64_t *avail,
                       bint *seen_end, Side *side, bint eof):
    """Extend the run of body bytes at the front of the buffer; -1 on a framing error."""
    cdef int64_t fresh = buffered(side) - avail[0]
    cdef int64_t take
    if seen_end[0]:
        return 0
    if mode == BODY_NONE:
        seen_end[0] = True
        return 0
    if mode == BODY_CLOSE:
        avail[0] += fresh
        if eof:
            seen_end[0] = True
        return 0
    if fresh <= 0:
        return 0
    if mode == BODY_LENGTH:
        take = fresh if fresh < remaining[0] else remaining[0]
        remaining[0] -= take
        avail[0] += take
        if remaining[0] == 0:
            seen_end[0] = True
        return 0
    take = chunk_scan(chunk, side.buf + side.head + avail[0], fresh)
    if take < 0:
        return -1
    avail[0] += take
    if chunk.state == CH_DONE:
        seen_end[0] = True
    return 0


cdef void append_small_body(Worker w, Side *side, list out, ChunkParser *chunk, int mode,
                            int64_t *remaining, int64_t *avail, bint *seen_end, int64_t most):
    """Put the body bytes already received behind the head, when no more than ``most``:
    one send() for the whole message instead of two (on loopback each send costs the peer
    a wake-up), and a whole request to replay for retry-on."""
    if mode == BODY_CLOSE or side.buf == NULL:
        return
    if classify_body(chunk, mode, remaining, avail, seen_end, side, side.rd_eof) < 0:
        return                                  # the body step will see the error again
    if 0 < avail[0] <= most:
        out.append((side.buf + side.head)[:avail[0]])
        side_consume(side, &w.pool, avail[0])
        avail[0] = 0
