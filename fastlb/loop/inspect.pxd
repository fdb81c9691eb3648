# tcp-request connection / session / content rules (fastlb/runtime/tcp_rules.py compiles
# them): the per-session Stream they share, content inspection (ST_INSPECT), silent-drop.
# Included by core.pxd; implemented in inspect.pxi.  A frontend without such rules never
# reaches any of it.

cdef int connection_rules(Worker w, int idx, Session *s, object rules) except? -1
cdef void tcp_session_start(Worker w, int idx, Session *s, object rules)
cdef void inspect_run(Worker w, int idx, Session *s)
cdef int64_t inspect_deadline(Worker w, Session *s)
cdef int tcp_route_backend(Worker w, Session *s, object rules, object stream)
cdef void apply_moves(Session *s, object stream)
cdef void silent_drop(Worker w, Session *s, int be)
cdef bint res_inspect(Worker w, int idx, Session *s)
cdef void tcp_response_denied(Worker w, Session *s)
