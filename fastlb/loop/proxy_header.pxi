# The PROXY protocol.  Interface: proxy_header.pxd.
#
# Receiving (bind accept-proxy, tcp-request connection expect-proxy): the header is peeked
# (recv MSG_PEEK) until whole, parsed here in C, then read off the socket, so the bytes
# after it stay in the kernel for the session as if it had just been accepted.  A header
# in several segments waits for the next edge.  Its addresses replace the session's
# (s.addr, s.dst) for everything downstream.  Sending (server send-proxy[-v2]): built
# here and written before any byte of the client's, on a connection that just came up.

cdef extern from *:
    """
    static const char FL_PP2_SIG[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A,
                                        0x51, 0x55, 0x49, 0x54, 0x0A};
    #define FL_CRC32C_POLY 0x82F63B78u
    #define FL_U32_ONES 0xFFFFFFFFu
    """
    const char FL_PP2_SIG[12]
    const uint32_t CRC32C_POLY "FL_CRC32C_POLY"     # Castagnoli, reflected
    const uint32_t U32_ONES "FL_U32_ONES"

# HAProxy's log messages, by -PpOutcome
PP_ERRORS = (None,
    "Received something which does not look like a PROXY protocol header",
    "Received an invalid PROXY protocol header",
    "Received an unhandled protocol in the PROXY protocol header",
    "Truncated PROXY protocol header received",
    "Connection closed while waiting for PROXY protocol header",
    "Connection error while waiting for PROXY protocol header",
    "Timeout while waiting for PROXY protocol header",
    "Connection closed while waiting for NetScaler Client IP header",
    "Connection error while waiting for NetScaler Client IP header",
    "Timeout while waiting for a NetScaler Client IP header",
    "Truncated NetScaler Client IP header received",
    "Received an invalid NetScaler Client IP magic number",
    "Received an unhandled protocol in the NetScaler Client IP header")


cdef uint32_t crc32c(const uint8_t *p, int n) noexcept nogil:
    cdef uint32_t crc = U32_ONES
    cdef int i, k
    for i in range(n):
        crc ^= p[i]
        for k in range(8):
            if crc & 1:
                crc = (crc >> 1) ^ CRC32C_POLY
            else:
                crc >>= 1
    return crc ^ U32_ONES


cdef inline bint is_prefix(const char *p, int n, const char *literal, int length) noexcept nogil:
    """The n bytes at p begin ``literal`` (or contain all of it)."""
    return memcmp(p, literal, n if n < length else length) == 0


cdef int parse_ipv4(const char *p, int n, int *pos, uint32_t *out) noexcept nogil:
    """Dotted quad at p[pos]: 0 parsed, 1 more bytes needed, -1 invalid."""
    cdef int q = pos[0], part, digits
    cdef uint32_t value = 0, octet
    for part in range(4):
        digits = 0
        octet = 0
        while q < n and digits < 3 and p[q] >= 48 and p[q] <= 57:
            octet = octet * 10 + <uint32_t>(p[q] - 48)
            q += 1
            digits += 1
        if q == n:
            return 1
        if digits == 0 or octet > 255:
            return -1
        value = (value << 8) | octet
        if part < 3:
            if p[q] != 46:
                return -1
            q += 1
    pos[0] = q
    out[0] = value
    return 0


cdef int parse_port(const char *p, int n, int *pos, uint32_t *out) noexcept nogil:
    """Decimal port at p[pos], up to a separator: 0 parsed, 1 more needed, -1 invalid."""
    cdef int q = pos[0], digits = 0
    cdef uint32_t value = 0
    while q < n and p[q] >= 48 and p[q] <= 57 and digits < 6:
        value = value * 10 + <uint32_t>(p[q] - 48)
        q += 1
        digits += 1
    if q == n:
        return 1
    if digits == 0 or value > 65535:
        return -1
    pos[0] = q
    out[0] = value
    return 0


cdef void set_inet(sockaddr_storage *sa, uint32_t addr_host, uint32_t port) noexcept nogil:
    cdef sockaddr_in *sin = <sockaddr_in *>sa
    memset(sa, 0, sizeof(sockaddr_storage))
    sin.sin_family = AF_INET
    sin.sin_addr.s_addr = htonl(addr_host)
    sin.sin_port = htons(<uint16_t>port)


cdef int parse_v1(char *p, int n, PpHeader *out) noexcept nogil:
    cdef int q = 6, r, field, start, rc
    cdef uint32_t src, dst, sport, dport
    cdef char text[4][48]
    cdef int lens[4]
    cdef sockaddr_in6 *sin6
    if n - q < 5:
        if is_prefix(p + q, n - q, b"TCP4 ", 5) or is_prefix(p + q, n - q, b"TCP6 ", 5) \
                or is_prefix(p + q, n - q, b"UNKNOWN\r\n", 9):
            return PP_MISSING
        return PP_BAD_PROTO
    if memcmp(p + q, b"TCP4 ", 5) == 0:
        q += 5
        rc = parse_ipv4(p, n, &q, &src)
        if rc != 0 or p[q] != 32:
            return PP_MISSING if rc == 1 else PP_BAD_HDR
        q += 1
        rc = parse_ipv4(p, n, &q, &dst)
        if rc != 0 or p[q] != 32:
            return PP_MISSING if rc == 1 else PP_BAD_HDR
        q += 1
        rc = parse_port(p, n, &q, &sport)
        if rc != 0 or p[q] != 32:
            return PP_MISSING if rc == 1 else PP_BAD_HDR
        q += 1
        rc = parse_port(p, n, &q, &dport)
        if rc == 1 or (rc == 0 and q + 2 > n):
            return PP_MISSING
        if rc < 0 or p[q] != 13 or p[q + 1] != 10:
            return PP_BAD_HDR
        set_inet(&out.src, src, sport)
        set_inet(&out.dst, dst, dport)
        out.has_addr = 1
        return q + 2
    if memcmp(p + q, b"TCP6 ", 5) == 0:
        q += 5
        r = q
        while r < n and p[r] != 13:
            r += 1
        if r + 1 >= n:
            return PP_MISSING
        if p[r + 1] != 10:
            return PP_BAD_HDR
        field = 0
        start = q
        while q <= r:                 # four fields separated by single spaces
            if q == r or p[q] == 32:
                if field == 4 or q - start == 0 or q - start > 45:
                    return PP_BAD_HDR
                memcpy(text[field], p + start, q - start)
                text[field][q - start] = 0
                lens[field] = q - start
                field += 1
                start = q + 1
            q += 1
        if field != 4:
            return PP_BAD_HDR
        for field in range(2, 4):
            start = 0
            rc = parse_port(text[field], lens[field] + 1, &start, &sport if field == 2 else &dport)
            if rc != 0 or start != lens[field]:
                return PP_BAD_HDR
        memset(&out.src, 0, sizeof(sockaddr_storage))
        memset(&out.dst, 0, sizeof(sockaddr_storage))
        sin6 = <sockaddr_in6 *>&out.src
        if inet_pton(AF_INET6, text[0], &sin6.sin6_addr) != 1:
            return PP_BAD_HDR
        sin6.sin6_family = AF_INET6
        sin6.sin6_port = htons(<uint16_t>sport)
        sin6 = <sockaddr_in6 *>&out.dst
        if inet_pton(AF_INET6, text[1], &sin6.sin6_addr) != 1:
            return PP_BAD_HDR
        sin6.sin6_family = AF_INET6
        sin6.sin6_port = htons(<uint16_t>dport)
        out.has_addr = 1
        return r + 2
    if n - q < 9:
        return PP_MISSING if is_prefix(p + q, n - q, b"UNKNOWN\r\n", 9) else PP_BAD_PROTO
    if memcmp(p + q, b"UNKNOWN\r\n", 9) == 0:
        return q + 9                  # a UNIX socket upstream, say: keep the real addresses
    return PP_BAD_PROTO


cdef int parse_v2(char *p, int n, PpHeader *out) noexcept nogil:
    cdef const uint8_t *u = <const uint8_t *>p
    cdef int total, tlv, tlv_len, kind, crc_at = -1
    cdef uint32_t crc
    cdef sockaddr_in *sin
    cdef sockaddr_in6 *sin6
    if n < PP2_HEADER_LEN:
        if not is_prefix(p, n, FL_PP2_SIG, 12) or (n > 12 and (u[12] & 0xF0) != 0x20):
            return PP_NOT_HDR
        return PP_MISSING
    if memcmp(p, FL_PP2_SIG, 12) != 0 or (u[12] & 0xF0) != 0x20:
        return PP_NOT_HDR
    total = PP2_HEADER_LEN + ((<int>u[14] << 8) | u[15])
    if n < total:
        return PP_MISSING
    if (u[12] & 0x0F) == 0x01:        # PROXY
        if u[13] == 0x11:             # TCP over IPv4
            if total - PP2_HEADER_LEN < 12:
                return PP_BAD_HDR
            memset(&out.src, 0, sizeof(sockaddr_storage))
            memset(&out.dst, 0, sizeof(sockaddr_storage))
            sin = <sockaddr_in *>&out.src
            sin.sin_family = AF_INET
            memcpy(&sin.sin_addr, p + 16, 4)
            memcpy(&sin.sin_port, p + 24, 2)
            sin = <sockaddr_in *>&out.dst
            sin.sin_family = AF_INET
            memcpy(&sin.sin_addr, p + 20, 4)
            memcpy(&sin.sin_port, p + 26, 2)
            out.has_addr = 1
            tlv = PP2_HEADER_LEN + 12
        elif u[13] == 0x21:           # TCP over IPv6
            if total - PP2_HEADER_LEN < 36:
                return PP_BAD_HDR
            memset(&out.src, 0, sizeof(sockaddr_storage))
            memset(&out.dst, 0, sizeof(sockaddr_storage))
            sin6 = <sockaddr_in6 *>&out.src
            sin6.sin6_family = AF_INET6
            memcpy(&sin6.sin6_addr, p + 16, 16)
            memcpy(&sin6.sin6_port, p + 48, 2)
            sin6 = <sockaddr_in6 *>&out.dst
            sin6.sin6_family = AF_INET6
            memcpy(&sin6.sin6_addr, p + 32, 16)
            memcpy(&sin6.sin6_port, p + 50, 2)
            out.has_addr = 1
            tlv = PP2_HEADER_LEN + 36
        else:
            return PP_BAD_HDR         # UNIX, UDP, unspecified: HAProxy 2.6 refuses them too
    elif (u[12] & 0x0F) == 0x00:      # LOCAL: the real addresses stay
        tlv = PP2_HEADER_LEN
    else:
        return PP_BAD_HDR
    while tlv < total:
        if tlv + 3 > total:
            return PP_BAD_HDR
        kind = u[tlv]
        tlv_len = (<int>u[tlv + 1] << 8) | u[tlv + 2]
        if tlv + 3 + tlv_len > total:
            return PP_BAD_HDR
        if kind == 0x03:              # CRC32C, checked once the walk is done
            if tlv_len != 4:
                return PP_BAD_HDR
            crc_at = tlv + 3
        elif kind == 0x02:            # authority (SNI upstream): kept for our servers
            if tlv_len > PP2_AUTHORITY_MAX:
                return PP_BAD_HDR
            out.authority_off = tlv + 3
            out.authority_len = tlv_len
        elif kind == 0x05 and tlv_len > PP2_UNIQUE_ID_MAX:
            return PP_BAD_HDR
        tlv += 3 + tlv_len
    if crc_at >= 0:
        crc = (<uint32_t>u[crc_at] << 24) | (<uint32_t>u[crc_at + 1] << 16) | \
              (<uint32_t>u[crc_at + 2] << 8) | u[crc_at + 3]
        memset(p + crc_at, 0, 4)
        if crc32c(u, total) != crc:
            return PP_BAD_HDR
    return total


cdef int pp_parse(char *p, int n, PpHeader *out) noexcept nogil:
    """The header at the start of p[:n]: its length, PP_MISSING, or a PpOutcome error."""
    out.has_addr = 0
    out.authority_off = out.authority_len = 0
    if n <= 0:
        return PP_MISSING
    if p[0] == 80:                    # 'P'
        if not is_prefix(p, n, b"PROXY ", 6):
            return PP_NOT_HDR
        if n < 6:
            return PP_MISSING
        return parse_v1(p, n, out)
    return parse_v2(p, n, out)


# --------------------------------------------------- NetScaler Client IP insertion
cdef inline uint32_t be32(const uint8_t *u) noexcept nogil:
    return (<uint32_t>u[0] << 24) | (<uint32_t>u[1] << 16) | (<uint32_t>u[2] << 8) | u[3]


cdef int cip_parse(const char *p, int n, uint32_t magic, PpHeader *out) noexcept nogil:
    """The NetScaler CIP header at the start of p[:n] (HAProxy's
    doc/netscaler-client-ip-insertion-protocol.txt): its length, or a CIP_* outcome.  As
    HAProxy reads it: one segment, so a short one is truncated, not awaited; the lengths
    are checked against all the bytes there are, the header taken as long as it says."""
    cdef const uint8_t *u = <const uint8_t *>p
    cdef int off, ip, tcp
    cdef uint32_t hdr_len
    cdef sockaddr_in *sin
    cdef sockaddr_in6 *sin6
    out.has_addr = 0
    out.authority_off = out.authority_len = 0
    if n < 12:
        return CIP_TRUNCATED
    if be32(u) != magic:
        return CIP_BAD_MAGIC
    if (u[8] & 0xD0) == 0x40:         # legacy: magic, length, then the IP header
        hdr_len, off = be32(u + 4), 8
    elif u[8] == 0:                   # standard: magic, length, type, header length
        hdr_len, off = (<uint32_t>u[10] << 8) | u[11], 12
    else:
        return CIP_BAD_PROTO
    if n < 20:
        return CIP_TRUNCATED
    ip = off
    if (u[ip] >> 4) == 4:
        if n < 40 or n < <int64_t>hdr_len:
            return CIP_TRUNCATED
        if u[ip + 9] != 6:            # not TCP
            return CIP_BAD_PROTO
        tcp = ip + (u[ip] & 0x0F) * 4
        if tcp + 4 > n:               # HAProxy reads past what came here; fastlb refuses it
            return CIP_TRUNCATED
        memset(&out.src, 0, sizeof(sockaddr_storage))
        memset(&out.dst, 0, sizeof(sockaddr_storage))
        sin = <sockaddr_in *>&out.src
        sin.sin_family = AF_INET
        memcpy(&sin.sin_addr, p + ip + 12, 4)
        memcpy(&sin.sin_port, p + tcp, 2)
        sin = <sockaddr_in *>&out.dst
        sin.sin_family = AF_INET
        memcpy(&sin.sin_addr, p + ip + 16, 4)
        memcpy(&sin.sin_port, p + tcp + 2, 2)
    elif (u[ip] >> 4) == 6:
        if n < 60 or n < <int64_t>hdr_len:
            return CIP_TRUNCATED
        if u[ip + 6] != 6:
            return CIP_BAD_PROTO
        tcp = ip + 40
        if tcp + 4 > n:
            return CIP_TRUNCATED
        sin6 = <sockaddr_in6 *>&out.src
        memset(sin6, 0, sizeof(sockaddr_in6))
        sin6.sin6_family = AF_INET6
        memcpy(&sin6.sin6_addr, p + ip + 8, 16)
        memcpy(&sin6.sin6_port, p + tcp, 2)
        sin6 = <sockaddr_in6 *>&out.dst
        memset(sin6, 0, sizeof(sockaddr_in6))
        sin6.sin6_family = AF_INET6
        memcpy(&sin6.sin6_addr, p + ip + 24, 16)
        memcpy(&sin6.sin6_port, p + tcp + 2, 2)
    else:
        return CIP_BAD_PROTO
    out.has_addr = 1
    if off + <int64_t>hdr_len > 0x7FFFFFFF:
        return CIP_ABORT              # more than a socket can hold: the read-off fails
    return off + <int>hdr_len


# ---------------------------------------------------------------------------- sending
cdef int inet_text(sockaddr_storage *sa, char *out, int room) noexcept nogil:
    cdef const void *raw = &(<sockaddr_in *>sa).sin_addr if sa.ss_family == AF_INET \
        else <const void *>&(<sockaddr_in6 *>sa).sin6_addr
    if inet_ntop(sa.ss_family, raw, out, room) == NULL:
        return -1
    return 0


cdef inline int sa_port(sockaddr_storage *sa) noexcept nogil:
    return ntohs((<sockaddr_in *>sa).sin_port if sa.ss_family == AF_INET
                 else (<sockaddr_in6 *>sa).sin6_port)


cdef int pp_build(char *out, int version, int opts, sockaddr_storage *src,
                  sockaddr_storage *dst, const char *authority, int authority_len) noexcept nogil:
    """The header for a server into out (PP_OUT_MAX bytes): its length.  Addresses of two
    families, or of none we can write (dst NULL), go as UNKNOWN / LOCAL."""
    cdef char a[INET6_ADDRSTRLEN]
    cdef char b[INET6_ADDRSTRLEN]
    cdef bint inet = dst != NULL and src.ss_family == dst.ss_family and \
        (src.ss_family == AF_INET or src.ss_family == AF_INET6)
    cdef int n, alen, crc_at = 0
    cdef uint32_t crc
    cdef uint8_t *u = <uint8_t *>out
    if version == SEND_PROXY_V1:
        if not inet or inet_text(src, a, sizeof(a)) or inet_text(dst, b, sizeof(b)):
            memcpy(out, b"PROXY UNKNOWN\r\n", 15)
            return 15
        return snprintf(out, PP_OUT_MAX, b"PROXY %s %s %s %d %d\r\n",
                        b"TCP4" if src.ss_family == AF_INET else b"TCP6", a, b,
                        sa_port(src), sa_port(dst))
    memcpy(out, FL_PP2_SIG, 12)
    n = PP2_HEADER_LEN
    if not inet:
        u[12] = 0x20                  # LOCAL, unspecified family
        u[13] = 0x00
    elif src.ss_family == AF_INET:
        u[12] = 0x21
        u[13] = 0x11
        memcpy(out + 16, &(<sockaddr_in *>src).sin_addr, 4)
        memcpy(out + 20, &(<sockaddr_in *>dst).sin_addr, 4)
        memcpy(out + 24, &(<sockaddr_in *>src).sin_port, 2)
        memcpy(out + 26, &(<sockaddr_in *>dst).sin_port, 2)
        n += 12
    else:
        u[12] = 0x21
        u[13] = 0x21
        memcpy(out + 16, &(<sockaddr_in6 *>src).sin6_addr, 16)
        memcpy(out + 32, &(<sockaddr_in6 *>dst).sin6_addr, 16)
        memcpy(out + 48, &(<sockaddr_in6 *>src).sin6_port, 2)
        memcpy(out + 50, &(<sockaddr_in6 *>dst).sin6_port, 2)
        n += 36
    if opts & PP2_OPT_CRC32C:             # first, as HAProxy writes them
        crc_at = n + 3
        u[n] = 0x03
        u[n + 1] = 0
        u[n + 2] = 4
        memset(out + n + 3, 0, 4)
        n += 7
    if opts & PP2_OPT_AUTHORITY and authority_len > 0:
        alen = authority_len if authority_len <= PP2_AUTHORITY_MAX else PP2_AUTHORITY_MAX
        u[n] = 0x02
        u[n + 1] = 0
        u[n + 2] = <uint8_t>alen
        memcpy(out + n + 3, authority, alen)
        n += 3 + alen
    u[14] = <uint8_t>((n - PP2_HEADER_LEN) >> 8)
    u[15] = <uint8_t>((n - PP2_HEADER_LEN) & 0xFF)
    if opts & PP2_OPT_CRC32C:
        crc = crc32c(u, n)
        u[crc_at] = <uint8_t>(crc >> 24)
        u[crc_at + 1] = <uint8_t>(crc >> 16)
        u[crc_at + 2] = <uint8_t>(crc >> 8)
        u[crc_at + 3] = <uint8_t>crc
    return n


# ---------------------------------------------------------------------------- sessions
cdef bint session_dst(Session *s) noexcept nogil:
    """The address the client reached (the PROXY header's, else the socket's) in s.dst."""
    cdef socklen_t len = sizeof(sockaddr_storage)
    if not s.dst_known:
        if s.cli.fd < 0 or getsockname(s.cli.fd, <sockaddr *>&s.dst, &len) != 0:
            return False
        s.dst_known = 1
    return True


cdef int session_dst_port(Worker w, Session *s) noexcept nogil:
    """dst_port: the PROXY header's destination port, else the listener's."""
    if s.dst_known == 2:
        return sa_port(&s.dst)
    return w.listeners[s.listener].port


cdef void proxy_header_wait(Worker w, int idx, Session *s, int headers):
    """A new connection must start with the ``headers`` (HS_* bits: a NetScaler CIP
    header, then a PROXY header, HAProxy's order): wait for them (timeout client)."""
    s.handshake = headers
    s.state = ST_PROXY_HEADER
    arm_timer(w, idx, s)
    proxy_header_event(w, idx, s)


cdef void proxy_header_event(Worker w, int idx, Session *s):
    cdef PpHeader h
    cdef char *buf
    cdef ssize_t n
    cdef int r
    cdef bint cip
    while s.handshake:
        if not s.cli.readable:
            return
        cip = s.handshake & HS_CIP
        buf = pool_get(&w.pool)
        if buf == NULL:
            s.cli.buf_wait = 1        # no buffer now: wait for one (or the timeout)
            return
        n = side_peek(&s.cli, buf, w.bufsize)
        if n < 0 and (errno == EAGAIN or errno == EINTR):
            s.cli.readable = 0
            pool_put(&w.pool, buf)
            return
        h.has_addr = 0
        if n <= 0:
            r = (CIP_ABORT if cip else PP_ABORT) if n < 0 else (CIP_EMPTY if cip else PP_EMPTY)
        elif cip:
            r = cip_parse(buf, n, w.listeners[s.listener].cip_magic, &h)
            if r > n:
                r = CIP_ABORT         # longer than what came: HAProxy's read-off fails
        else:
            r = pp_parse(buf, n, &h)
        if r == PP_MISSING:           # (a PROXY header only: a CIP one is never awaited)
            if n >= <ssize_t>w.bufsize or s.cli.readable == 2:
                r = PP_TRUNCATED      # larger than a buffer, or the client stopped sending
            elif buf[0] == 80 and n >= PP_V1_MAX:
                r = PP_BAD_HDR        # a v1 line longer than the protocol allows
            else:
                s.cli.readable = 0    # wait for the rest (its segment raises a new edge)
                pool_put(&w.pool, buf)
                return
        if r > 0 and side_peek_consume(&s.cli, buf, r) != r:
            r = CIP_ABORT if cip else PP_ABORT
        if r < 0:
            pool_put(&w.pool, buf)
            if r != PP_ABORT and r != CIP_ABORT and h.has_addr:
                memcpy(&s.addr, &h.src, sizeof(sockaddr_storage))   # HAProxy logs a v2
            proxy_header_failed(w, idx, s, r)               # header's source when a TLV
            return                                          # was wrong
        if h.has_addr:
            memcpy(&s.addr, &h.src, sizeof(sockaddr_storage))
            s.addrlen = sizeof(sockaddr_in) if h.src.ss_family == AF_INET else \
                sizeof(sockaddr_in6)
            memcpy(&s.dst, &h.dst, sizeof(sockaddr_storage))
            s.dst_known = 2
        if h.authority_len:
            s.pp_authority = <char *>malloc(h.authority_len)
            if s.pp_authority != NULL:
                memcpy(s.pp_authority, buf + h.authority_off, h.authority_len)
                s.pp_authority_len = h.authority_len
        pool_put(&w.pool, buf)
        s.handshake &= ~(HS_CIP if cip else HS_PROXY)
        if s.handshake and r == n and n < <ssize_t>w.bufsize and s.cli.readable == 1:
            s.cli.readable = 0        # all read: the next header raises a new edge
    s.state = ST_CONNECTING
    s.cli.last = s.cli.last_rd = w.now
    session_accepted(w, idx, s, &w.frontends[s.fe])


cdef void proxy_header_failed(Worker w, int idx, Session *s, int outcome):
    """Close as HAProxy kills an embryonic session: no byte to the client, one log line
    (none under dontlognull for a client that closed or failed), no session log."""
    cdef FrontendRt *fe = &w.frontends[s.fe]
    cdef LogRecord rec
    if fe.log_mode != LOG_NONE and w.handshake_log_callback is not None and \
            not (fe.dontlognull and (outcome == PP_EMPTY or outcome == PP_ABORT or
                                   outcome == CIP_EMPTY or outcome == CIP_ABORT)):
        try:
            # what an error-log-format may read of the connection
            rec = LogRecord.__new__(LogRecord)
            rec.frontend, rec.backend, rec.server = s.fe, -1, -1
            rec.client = sockaddr_to_tuple(&s.addr)
            rec.start_ms = s.t_accept_real
            rec.t_request = rec.t_queue = rec.t_connect = rec.t_response = -1
            rec.t_total = w.now - s.t_accept
            rec.status = 0
            rec.term = "PR"
            count_record(w, rec, s.fe, -1, -1)
            record_addresses(w, s, rec, -1, -1)
            if (<FrontendHooks>w.fe_hooks[s.fe]).streams:
                rec.stream = new_stream(w, s, None, b"", [], b"", None, True)
            w.handshake_log_callback(s.listener, rec.client, s.t_accept_real,
                                     PP_ERRORS[-outcome], rec)
        except Exception:
            pass
    s.unlogged = 1
    s.term0, s.term1 = b'C', b'R'
    session_close(w, idx, s)


cdef int proxy_header_send(Worker w, Session *s, ServerRt *srv):
    """The server's PROXY header on its new connection, before any client byte: 0, or -1
    when the socket did not take it whole (a fresh socket's buffer always has room)."""
    cdef char out[PP_OUT_MAX]
    cdef int n = pp_build(out, srv.send_proxy, srv.pp_opts, &s.addr,
                          &s.dst if session_dst(s) else NULL, s.pp_authority,
                          s.pp_authority_len)
    return 0 if side_write(&s.srv, out, n, w.now) == n else -1
