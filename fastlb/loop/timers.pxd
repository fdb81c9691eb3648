# Timers: one heap entry per session, keyed by its earliest deadline.
# Included by core.pxd; implemented in timers.pxi.

cdef void heap_sift_up(Worker w, int i)
cdef void heap_sift_down(Worker w, int i)
cdef void timer_set(Worker w, int idx, Session *s, int64_t at)
cdef void timer_remove(Worker w, Session *s)
cdef int64_t session_deadline(Worker w, int idx, Session *s)
cdef int64_t server_wait_deadline(BackendRt *be, Session *s) noexcept nogil
cdef void arm_timer(Worker w, int idx, Session *s)
cdef void run_timers(Worker w)
cdef int next_timeout_ms(Worker w)
cdef void session_expired(Worker w, int idx, Session *s)
