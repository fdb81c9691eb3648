# HTTP message syntax and framing: what a head may say, where a body ends.
# Included by core.pxd; implemented in http_message.pxi.

cdef object parse_head(bytes head, bint request, bint lenient=*)
cdef bint fields_safe(list headers)
cdef int64_t content_length(list headers)
cdef int transfer_chunked(list headers)
cdef bytes authority_of(bytes url)
cdef bint authority_form(bytes url)
cdef bytes strip_default_port(bytes authority, bytes scheme)
cdef object request_refused(Head head, bint lenient=*)
cdef int classify_body(ChunkParser *chunk, int mode, int64_t *remaining, int64_t *avail, bint *seen_end, Side *side, bint eof)
cdef void append_small_body(Worker w, Side *side, list out, ChunkParser *chunk, int mode, int64_t *remaining, int64_t *avail, bint *seen_end, int64_t most)
