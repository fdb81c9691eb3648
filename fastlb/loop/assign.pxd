# Server assignment: balancing, persistence, queues, passive checks.
# Included by core.pxd; implemented in assign.pxi.

cdef void free_lookup(BackendRt *be) noexcept nogil
cdef int install_lookup(Worker w, int b) except -1
cdef bint persist_usable(Worker w, BackendRt *be, int srv)
cdef int use_server(Worker w, Session *s, object stream)
cdef int rdp_cookie_server(Worker w, Session *s, object stream)
cdef void set_expr_key(Worker w, Session *s, object stream)
cdef int64_t *server_limits(Worker w, BackendRt *be) noexcept nogil
cdef bint try_hold(Worker w, Session *s, BackendRt *be, int srv, bint from_queue)
cdef void server_release(Worker w, Session *s)
cdef int walk_sequence(Worker w, Session *s, BackendRt *be, bint from_queue)
cdef int walk_ring(Worker w, Session *s, BackendRt *be, bint from_queue)
cdef int random_pick(Worker w, Session *s, BackendRt *be, bint from_queue)
cdef int balance(Worker w, Session *s, BackendRt *be, bint from_queue)
cdef int64_t backend_served(Worker w, BackendRt *be) noexcept nogil
cdef bint under_bound(Worker w, BackendRt *be, int srv, int64_t served) noexcept nogil
cdef int hashed_server(Worker w, BackendRt *be, Session *s)
cdef int assign_server(Worker w, int idx, Session *s)
cdef int balance_avoiding(Worker w, Session *s, BackendRt *be, int srv)
cdef void queue_enter(Worker w, int idx, Session *s, int q)
cdef void queue_leave(Worker w, Session *s)
cdef bint oldest_ticket(Worker w, int q, uint64_t key) noexcept nogil
cdef void run_queues(Worker w)
cdef void resume_assigned(Worker w, int idx, Session *s, int srv)
cdef void set_source_key(BackendRt *be, Session *s)
cdef void set_http_key(Worker w, Session *s, bytes url, list headers)
cdef void set_post_param_key(Worker w, Session *s, bytes body)
cdef object post_param(bytes body, bytes name)
cdef bytes domain_part(bytes host)
cdef void observe(Worker w, BackendRt *be, int srv, int layer, bint failed)
cdef bint last_server_usable(Worker w, Session *s, BackendRt *be)
