# The session slab and a session's life: open, close, fail.
# Included by core.pxd; implemented in sessions.pxi.

cdef int session_new(Worker w) except -1
cdef void session_free(Worker w, int idx, Session *s)
cdef int side_watch(Worker w, int idx, Session *s, Side *side, int which)
cdef void session_close(Worker w, int idx, Session *s)
cdef void session_abort(Worker w, int idx, Session *s, bint server_side)
cdef void shutdown_sessions(Worker w)
cdef void close_all(Worker w)
cdef void internal_error(Worker w, object exc, str where)
cdef void session_failed(Worker w, int idx, Session *s, object exc)
cdef void run_requeued(Worker w)
cdef void note_buffer_wait(Worker w, int idx, Session *s)
cdef void wake_buffer_waiters(Worker w)
