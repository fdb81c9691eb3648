# Request analysers: head -> route -> rules -> persistence -> forward.
# Included by core.pxd; implemented in http_request.pxi.

cdef bytes error_page(Worker w, int fe, int be, int status, bint raw)
cdef void add_request_headers(Worker w, int fe, list out, list headers, Session *s)
cdef void capture_error(Worker w, Session *s, bint response, bytes data, object reason)
cdef void http_error(Worker w, int idx, Session *s, HttpTxn txn, int status, bint raw, char term0, char term1)
cdef bint has_after_rules(Worker w, Session *s, HttpTxn txn)
cdef int page_status(bytes page, int fallback)
cdef void http_answer(Worker w, int idx, Session *s, HttpTxn txn, bytes page, int fallback, char term0, char term1)
cdef void http_tarpit_over(Worker w, int idx, Session *s, HttpTxn txn)
cdef bytes announce_close(bytes page)
cdef bint http_request_head(Worker w, int idx, Session *s, HttpTxn txn)
cdef object new_stream(Worker w, Session *s, object method, bytes url, list headers, bytes version, object sess_vars, bint first)
cdef object txn_stream(Worker w, Session *s, HttpTxn txn, Head fields)
cdef void client_socket_options(Session *s, object stream)
# its phases, in order
cdef Head req_parse(Worker w, int idx, Session *s, HttpTxn txn, int64_t *length, bint *keep_alive)
cdef bint req_route(Worker w, int idx, Session *s, HttpTxn txn, Head fields, bint keep_alive, bint *edited)
cdef bint req_backend_rules(Worker w, int idx, Session *s, HttpTxn txn, Head fields, bint keep_alive, bint *edited)
cdef void req_persistence(Worker w, Session *s, HttpTxn txn, Head fields)
cdef void req_forward(Worker w, Session *s, HttpTxn txn, Head fields, int64_t length)
cdef bint req_assign(Worker w, int idx, Session *s, HttpTxn txn)
cdef bint http_rule_failed(Worker w, int idx, Session *s, HttpTxn txn, object exc)
cdef bint http_assigned(Worker w, int idx, Session *s, HttpTxn txn, int chosen)
cdef bint http_local_answer(Worker w, int idx, Session *s, HttpTxn txn, tuple verdict, bint keep_alive, bint be_rules=*)
cdef void stage_early_hints(HttpTxn txn, object stream)
cdef bint restrict_header_names(Worker w, int idx, Session *s, HttpTxn txn, Head fields,
                                int mode, bint keep_alive)
