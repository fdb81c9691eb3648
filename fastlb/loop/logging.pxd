# The log edge: one call to Python per logged session or transaction.
# Included by core.pxd; implemented in logging.pxi.

cdef void log_connect(Worker w, Session *s)
cdef void log_end(Worker w, Session *s)
cdef void http_log(Worker w, Session *s, HttpTxn txn)
