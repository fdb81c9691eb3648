# Request bodies for the rules: option http-buffer-request and wait-for-body.
# Included by core.pxd; implemented in http_body.pxi.

cdef enum BufferRequest:      # FrontendRt / BackendRt.buffer_request
    BUFFER_NONE = 0             # the rules do not read the body
    BUFFER_WAIT = 1             # option http-buffer-request: wait for it first
    BUFFER_SNAPSHOT = 2         # the rules read it: what came so far, no wait

cdef enum BodyPhase:
    BODY_PHASE_FE = 0           # the frontend's rules (and use_backend) come next
    BODY_PHASE_BE = 1           # the backend's rules come next

cdef bint http_request_rest(Worker w, int idx, Session *s, HttpTxn txn, Head fields, int64_t length, bint keep_alive, bint edited, int phase)
cdef void body_wait_begin(Worker w, Session *s, HttpTxn txn, int64_t wait_ms, int64_t at_least)
cdef void body_wait_keep(Worker w, Session *s, HttpTxn txn, Head fields, int64_t length, bint keep_alive, bint edited, int phase)
cdef bint http_body_wait_step(Worker w, int idx, Session *s, HttpTxn txn)
cdef int64_t body_wait_deadline(Worker w, Session *s, HttpTxn txn)
cdef object dechunk(bytes data)
cdef object body_check(Worker w, Session *s, HttpTxn txn, bint now)
cdef bint body_complete(Worker w, Session *s, HttpTxn txn)
cdef object side_body(Worker w, Side *side, int mode, int64_t remaining, int64_t at_least, bint now)
cdef int rsp_framing(HttpTxn txn, Head fields, int64_t *remaining)
cdef void rsp_body_snapshot(Worker w, Session *s, HttpTxn txn, Head fields)
cdef void rsp_wait_begin(Worker w, Session *s, HttpTxn txn, Head fields, bytes head, tuple wait, int phase)
cdef bint http_rsp_wait_step(Worker w, int idx, Session *s, HttpTxn txn)
cdef int64_t rsp_wait_deadline(Worker w, Session *s, HttpTxn txn, int64_t dl)
cdef void body_snapshot(Worker w, Session *s, HttpTxn txn, Head fields)
