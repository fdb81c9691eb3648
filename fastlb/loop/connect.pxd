# Server connections: connect, retries, redispatch.
# Included by core.pxd; implemented in connect.pxi.

cdef void start_connect(Worker w, int idx, Session *s)
cdef void no_connection(Worker w, int idx, Session *s, char cause)
cdef void on_connect_event(Worker w, int idx, Session *s)
cdef void connected(Worker w, int idx, Session *s)
cdef bint retry_redispatches(BackendRt *be, Session *s) noexcept nogil
cdef void redispatch_away(Worker w, Session *s, BackendRt *be, int server)
cdef void connect_failed(Worker w, int idx, Session *s, bint timed_out)
