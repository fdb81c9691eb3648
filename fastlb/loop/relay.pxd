# TCP relay: bytes both ways until each side would block; TCP timeouts.
# Included by core.pxd; implemented in relay.pxi.

cdef bint relay_pump(Worker w, int idx, Session *s, int from_side)
cdef void session_event(Worker w, int idx, Session *s, int side, uint32_t events)
cdef void relay_run(Worker w, int idx, Session *s, int which)
cdef int64_t timeout_base(Side *side, Side *other, bint independent) noexcept nogil
cdef int64_t tcp_deadline(Worker w, Session *s)
cdef void tcp_expired(Worker w, int idx, Session *s)
cdef void session_step(Worker w, int idx, Session *s, int side, uint32_t events)
