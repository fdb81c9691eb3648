# HTTP flow: stepping a transaction, bodies, tunnels, applets, timeouts.
# Included by core.pxd; implemented in http_flow.pxi.

cdef int flush_staged(Worker w, Side *dst, HttpTxn txn, bint to_server)
cdef bint http_step(Worker w, int idx, Session *s, HttpTxn txn)
cdef bint http_applet_step(Worker w, int idx, Session *s, HttpTxn txn)
cdef bint http_server_failed(Worker w, int idx, Session *s, HttpTxn txn)
cdef bint http_retry_fresh(Worker w, int idx, Session *s, HttpTxn txn)
cdef int retry_status_bit(int status) noexcept nogil
cdef bint http_l7_retry(Worker w, int idx, Session *s, HttpTxn txn, int event)
cdef void http_to_tunnel(Worker w, int idx, Session *s)
cdef void http_run(Worker w, int idx, Session *s)
cdef void http_on_event(Worker w, int idx, Session *s, int side, uint32_t events)
cdef int64_t http_deadline(Worker w, int idx, Session *s)
cdef void http_expired(Worker w, int idx, Session *s)
cdef void close_idle_http(Worker w)
