# Response analysers: the response head, the end of a transaction.
# Included by core.pxd; implemented in http_response.pxi.

cdef bint http_response_head(Worker w, int idx, Session *s, HttpTxn txn)
cdef bint http_response_rest(Worker w, int idx, Session *s, HttpTxn txn, Head fields, bytes head, bint resumed)
cdef void http_end_transaction(Worker w, int idx, Session *s, HttpTxn txn)
cdef object response_stream(Worker w, Session *s, HttpTxn txn, Head fields)
cdef void http_response_denied(Worker w, int idx, Session *s, HttpTxn txn, object answer)
cdef bint checkcache_blocks(Worker w, int idx, Session *s, HttpTxn txn, int status,
                            list headers)
cdef void http_after_response(Worker w, int idx, Session *s, HttpTxn txn)
