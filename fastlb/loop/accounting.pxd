# Shared counters and statistics rows.
# Included by core.pxd; implemented in accounting.pxi.

cdef int64_t count_total(Worker w, uint32_t offset) noexcept nogil
cdef void tcp_account(Worker w, Session *s)
cdef void http_account(Worker w, Session *s, HttpTxn txn)
