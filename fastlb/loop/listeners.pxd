# Listeners: accept, the process and frontend maxconn, pause and resume.
# Included by core.pxd; implemented in listeners.pxi.

cdef bint over_maxconn(Worker w, FrontendRt *fe)
cdef bint conn_reserve(Worker w, FrontendRt *fe)
cdef void conn_release(Worker w, FrontendRt *fe)
cdef void pause_listener(Worker w, int li)
cdef void resume_listeners(Worker w)
cdef void listener_accept(Worker w, int li)
cdef void session_accepted(Worker w, int idx, Session *s, FrontendRt *fe)
cdef void session_route(Worker w, int idx, Session *s, FrontendRt *fe, int backend)
