# The HTTP transaction of a session slot, and header helpers.
# Included by core.pxd; implemented in http_txn.pxi.

cdef class Head:
    cdef public bytes method
    cdef public bytes url
    cdef public bytes version       # b"1.0" or b"1.1" (HTTP/1.2 and later minors: 1.1)
    cdef public int status
    cdef public bytes reason
    cdef public list headers


cdef class HttpTxn:
    cdef int req_state
    cdef int rsp_state
    cdef int req_mode
    cdef int rsp_mode
    cdef int64_t req_remaining      # BODY_LENGTH: bytes not yet classified
    cdef int64_t rsp_remaining
    cdef int64_t req_avail          # body bytes at the front of the client buffer, ready to go
    cdef int64_t rsp_avail
    cdef bint req_body_seen_end
    cdef bint rsp_body_seen_end
    cdef ChunkParser req_chunk
    cdef ChunkParser rsp_chunk
    cdef bytes out_srv              # rewritten request head, then nothing
    cdef Py_ssize_t out_srv_off
    cdef bytes out_cli              # rewritten response head, or an error page
    cdef Py_ssize_t out_cli_off
    cdef bytes interim              # 103 Early Hints, sent before anything else
    cdef Py_ssize_t interim_off
    cdef bint close_client          # close the client connection once the response is out
    cdef bint close_server          # do not reuse the server connection after this response
    cdef bint is_head
    cdef bint is_connect            # CONNECT: a 2xx answer turns the session into a tunnel
    cdef bint fresh                 # no byte of this request has arrived yet
    cdef bint reused                # request sent on a connection kept from a previous one
    cdef bint retried
    cdef int server_status          # the status the server answered (its own counters'), -1
    cdef bint rsp_denied            # http-response deny / return replaced the response
    cdef bint l7_retry              # retry-on may send this request again (no body, not disabled)
    cdef bint error_sent            # out_cli holds an error page: close after it
    cdef bint after_due             # out_cli holds a final head the after-response rules edit
    cdef bint logged
    cdef bint counted               # in the statistics already (accounting.pxi)
    cdef object applet              # ROUTE_APPLET: (callable, method, url, headers, keep-alive)
    cdef object tarpit_answer       # RQ_TARPIT: what the client gets once held (as ROUTE_DENY's)
    cdef int64_t tarpit_until
    cdef bint req_error             # the request could not be read or parsed (ereq)
    cdef int64_t bytes_in           # request bytes taken from the client
    cdef bint routed                # a backend was chosen for this request (logs name it)
    cdef int log_server             # the server this request went to, for the log (-1: none)
    cdef bint count_bytes           # False for errors raised while reading the head (as HAProxy)
    cdef bint be_counted            # this transaction counts in its backend's current sessions
    cdef object ck_client           # cookie persistence letters for the log ("-": no cookie)
    cdef object ck_server
    cdef object ck_seen             # http.cookies.CookieSeen of the request's cookie
    cdef bytes method
    cdef object method_seen         # the request as parsed, for an applet
    cdef object url_seen
    cdef object headers_seen
    cdef object version_seen
    cdef int status
    cdef int requests               # transactions on this client connection
    cdef int64_t t_start            # first byte of the request (accept for the first one)
    cdef int64_t t_start_real
    cdef bint asap                  # option logasap: this log line goes out at the response head
    cdef int64_t t_first            # the request's first byte (-1: not seen), for the log
    cdef int64_t t_idle             # keep-alive pause before this request's first byte (%Ti)
    cdef int64_t t_head             # request head complete
    cdef int64_t t_sent             # request head handed to the server
    cdef int64_t t_connect_ms       # -1: no connection made for this request
    cdef int64_t t_response         # response head received
    cdef int64_t bytes_out
    cdef int64_t rsp_bytes_in       # response bytes received for this request
    cdef object request_line        # bytes for the log
    cdef bytes request_head_copy    # what went to the server, for one retry on a fresh connection
    cdef object cookie_req          # capture cookie: "name=value" the client sent, or None
    cdef object cookie_rsp          # and the one the server set
    cdef Py_ssize_t name_at         # http-send-name-header: where its line goes in that copy
                                    # (before the blank line), -1: none
    cdef object captures_req        # captured header values (capture request header), or None
    cdef object captures_rsp
    cdef int term0
    cdef int term1
    cdef int64_t req_scanned         # bytes of the pending request head already searched
    cdef int64_t rsp_scanned
    cdef int64_t req_head_end
    cdef int64_t rsp_head_end
    cdef bint server_forced          # a use-server rule chose the server (no cookie inserted)
    cdef object stream              # the request's fastlb.sample.Stream, once a rule needs it
    cdef object sess_vars           # the connection's "sess." variables
    # RQ_BODY_WAIT (http_body.pxi): what the analysers take up again once the body is in
    cdef object body_fields         # the parsed head (None once taken up)
    cdef int64_t body_length
    cdef bint body_keep_alive
    cdef bint body_edited
    cdef int body_phase
    cdef int64_t body_deadline      # 0: none but timeout client
    cdef int64_t body_at_least
    # RS_BODY_WAIT: an http-response wait-for-body
    cdef object rsp_wait_fields
    cdef bytes rsp_wait_head
    cdef int rsp_wait_phase
    cdef int rsp_wait_mode
    cdef int64_t rsp_wait_remaining
    cdef int64_t rsp_wait_at_least
    cdef int64_t rsp_wait_deadline
    cdef object tcp_stream          # tcp-request rules' Stream of the session (inspect.pxi)
    cdef int64_t find_head(self, Side *side, bint request)
    cdef void reset(self, int64_t now, int64_t now_real)


cdef bint _connection_has(list headers, bytes token)
cdef bint _keep_alive(bytes version, list headers)
cdef list capture_headers(list specs, list headers)
cdef object captured_cookie(list headers, tuple spec, bint response)
cdef bytes _header(list headers, bytes wanted)
cdef list header_list(list headers, bytes wanted)
cdef HttpTxn http_txn(Worker w, int idx)
cdef void http_untrack(Worker w, Session *s, HttpTxn txn)
cdef void http_start(Worker w, int idx, Session *s)
