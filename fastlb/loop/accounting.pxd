# Shared counters and statistics rows.
# Included by core.pxd; implemented in accounting.pxi.

cdef int64_t count_total(Worker w, uint32_t offset) noexcept nogil
cdef void tcp_account(Worker w, Session *s)
cdef void http_account(Worker w, Session *s, HttpTxn txn)
cdef void listener_count(Worker w, int li, int stat, uint64_t n) noexcept nogil
cdef void add_bytes(Worker w, Session *s, int server, uint64_t din, uint64_t dout) noexcept nogil
cdef void continuous_account(Worker w, int idx, Session *s)
