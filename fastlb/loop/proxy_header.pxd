# The PROXY protocol (HAProxy's doc/proxy-protocol.txt, versions 1 and 2): a received
# header parsed and taken off the client connection, and one built for a server.
# Included by core.pxd; implemented in proxy_header.pxi.

cdef enum:
    PP_V1_MAX = 107             # the longest v1 line, CRLF included
    PP2_HEADER_LEN = 16
    PP2_AUTHORITY_MAX = 255     # HAProxy's limits on the TLVs it keeps
    PP2_UNIQUE_ID_MAX = 128
    PP_OUT_MAX = 384            # room for a header we send (v2 with the TLVs we write)

# pp_parse() outcome when not the header's length, and why a wait for one failed; the
# log line for each is in PP_ERRORS (proxy_header.pxi), HAProxy's CO_ER_PRX_* messages
cdef enum PpOutcome:
    PP_MISSING = 0
    PP_NOT_HDR = -1
    PP_BAD_HDR = -2
    PP_BAD_PROTO = -3
    PP_TRUNCATED = -4
    PP_EMPTY = -5
    PP_ABORT = -6
    PP_TIMEOUT = -7
    # the NetScaler Client IP insertion header's (HAProxy's CO_ER_CIP_*)
    CIP_EMPTY = -8
    CIP_ABORT = -9
    CIP_TIMEOUT = -10
    CIP_TRUNCATED = -11
    CIP_BAD_MAGIC = -12
    CIP_BAD_PROTO = -13

# the headers a new connection must send first, in the order HAProxy reads them
cdef enum:
    HS_CIP = 1                  # NetScaler Client IP insertion (accept-netscaler-cip)
    HS_PROXY = 2                # PROXY protocol (accept-proxy)

# what a server is sent before the client's bytes (ServerRt.send_proxy)
cpdef enum:
    SEND_PROXY_NONE = 0
    SEND_PROXY_V1 = 1
    SEND_PROXY_V2 = 2

# proxy-v2-options fastlb writes (ServerRt.pp_opts)
cpdef enum:
    PP2_OPT_CRC32C = 1
    PP2_OPT_AUTHORITY = 2

cdef struct PpHeader:
    uint8_t has_addr            # 0: LOCAL, UNKNOWN or another family: keep the real addresses
    sockaddr_storage src
    sockaddr_storage dst
    int authority_off           # the authority TLV in the parsed bytes (len 0: none)
    int authority_len

cdef int pp_parse(char *p, int n, PpHeader *out) noexcept nogil
cdef int cip_parse(const char *p, int n, uint32_t magic, PpHeader *out) noexcept nogil
cdef int pp_build(char *out, int version, int opts, sockaddr_storage *src,
                  sockaddr_storage *dst, const char *authority, int authority_len) noexcept nogil
cdef void proxy_header_wait(Worker w, int idx, Session *s, int headers)
cdef void proxy_header_event(Worker w, int idx, Session *s)
cdef void proxy_header_failed(Worker w, int idx, Session *s, int outcome)
cdef int proxy_header_send(Worker w, Session *s, ServerRt *srv)
cdef bint session_dst(Session *s) noexcept nogil
cdef int session_dst_port(Worker w, Session *s) noexcept nogil
