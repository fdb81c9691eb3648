# The log edge: one call to Python per logged session or transaction.
# Included by core.pxd; implemented in logging.pxi.

cdef class LogRecord:
    """What one log line says of a session (tcplog) or a transaction (httplog): handed to
    Python as one object (fastlb/runtime/worker.py formats it), times in ms, -1: none."""
    cdef readonly int frontend
    cdef readonly int backend       # -1: none (the line names the frontend)
    cdef readonly int server        # -1: <NOSRV>
    cdef readonly object client     # (ip, port)
    cdef readonly int64_t start_ms  # accept (tcplog) or first request byte (httplog), epoch
    cdef readonly int64_t t_request # %TR: head received (httplog)
    cdef readonly int64_t t_queue   # %Tw
    cdef readonly int64_t t_connect # %Tc
    cdef readonly int64_t t_response  # %Tr (httplog)
    cdef readonly int64_t t_total   # %Tt / %Ta
    cdef readonly int status        # -1 for tcplog
    cdef readonly int64_t bytes_out
    cdef readonly str term          # termination state (+ cookie letters for httplog)
    cdef readonly uint64_t actconn
    cdef readonly uint64_t feconn
    cdef readonly int64_t beconn
    cdef readonly int64_t srvconn
    cdef readonly int retries
    cdef readonly bint redispatched
    cdef readonly object request_line   # bytes, or None: <BADREQ>
    cdef readonly object captures       # (request values | None, response values | None)
    cdef readonly object stream         # the fastlb.sample.Stream of %[...] fields, or None
    cdef readonly object frontend_addr  # (ip, port) the client reached (%fi/%fp), or None
    cdef readonly object server_addr    # (ip, port) of the server (%si/%sp), or None
    cdef readonly object backend_src    # (ip, port) of our end of the server connection, or None
    cdef readonly int64_t bytes_in      # %U: bytes from the client
    cdef readonly int64_t t_idle        # %Ti: keep-alive pause before the request (httplog)
    cdef readonly bint logasap          # sent before the end (option logasap): '+' on %Tt/%B

cdef void log_connect(Worker w, Session *s)
cdef void log_end(Worker w, Session *s)
cdef void http_log(Worker w, Session *s, HttpTxn txn)
cdef void log_addresses(Session *s) noexcept nogil
cdef void record_addresses(Worker w, Session *s, LogRecord rec, int be, int srv)
cdef void count_record(Worker w, LogRecord rec, int fe, int be, int srv)
