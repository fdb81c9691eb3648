# Listeners: accept, the process and frontend maxconn, pause and resume.
# Included by core.pxd; implemented in listeners.pxi.

cdef int64_t rate_of(uint64_t *pair, int64_t now) noexcept nogil
cdef bint over_rate(Worker w, FrontendRt *fe) noexcept nogil
cdef void count_session(Worker w, FrontendRt *fe) noexcept nogil
cdef bint over_maxconn(Worker w, ListenerRt *l)
cdef bint conn_reserve(Worker w, int li, int64_t *counts)
cdef void conn_release(Worker w, int li)
cdef void pause_listener(Worker w, int li)
cdef void resume_listeners(Worker w)
cdef void listener_accept(Worker w, int li)
cdef void session_accepted(Worker w, int idx, Session *s, FrontendRt *fe)
cdef void session_route(Worker w, int idx, Session *s, FrontendRt *fe, int backend)
cdef bint not_upgradable(Worker w, int idx, Session *s, int backend)
cdef object held_stream(Worker w, int idx, Session *s)
