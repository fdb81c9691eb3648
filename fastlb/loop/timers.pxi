# Timers: one heap entry per session, keyed by its earliest deadline.
# Interface: timers.pxd.


# ------------------------------------------------------------------ timers (binary heap)
# One entry per session at most, keyed by its earliest deadline.  Activity only moves a
# deadline later, and the heap is not touched for it: when an entry comes due, the real
# deadline is recomputed and the entry moved down if it is still in the future.

cdef inline void heap_place(Worker w, int i, TimerEntry entry):
    w.heap[i] = entry
    session_at(w, entry.idx).heap_pos = i


cdef void heap_sift_up(Worker w, int i):
    cdef TimerEntry entry = w.heap[i]
    cdef int parent
    while i > 0:
        parent = (i - 1) // 2
        if w.heap[parent].at <= entry.at:
            break
        heap_place(w, i, w.heap[parent])
        i = parent
    heap_place(w, i, entry)


cdef void heap_sift_down(Worker w, int i):
    cdef TimerEntry entry = w.heap[i]
    cdef int child
    while True:
        child = 2 * i + 1
        if child >= w.heap_len:
            break
        if child + 1 < w.heap_len and w.heap[child + 1].at < w.heap[child].at:
            child += 1
        if entry.at <= w.heap[child].at:
            break
        heap_place(w, i, w.heap[child])
        i = child
    heap_place(w, i, entry)


cdef void timer_set(Worker w, int idx, Session *s, int64_t at):
    cdef int i = s.heap_pos
    cdef int64_t old
    if i < 0:
        if w.heap_len == w.heap_cap:
            w.heap_cap = w.heap_cap * 2 if w.heap_cap else 1024
            w.heap = <TimerEntry *>realloc(w.heap, w.heap_cap * sizeof(TimerEntry))
        i = w.heap_len
        w.heap_len += 1
        w.heap[i].at = at
        w.heap[i].idx = idx
        heap_sift_up(w, i)
        return
    old = w.heap[i].at
    w.heap[i].at = at
    if at < old:
        heap_sift_up(w, i)
    elif at > old:
        heap_sift_down(w, i)


cdef void timer_remove(Worker w, Session *s):
    cdef int i = s.heap_pos
    cdef int64_t removed_at
    if i < 0:
        return
    s.heap_pos = -1
    w.heap_len -= 1
    if i == w.heap_len:
        return
    removed_at = w.heap[i].at
    heap_place(w, i, w.heap[w.heap_len])
    if w.heap[i].at < removed_at:
        heap_sift_up(w, i)
    else:
        heap_sift_down(w, i)


cdef int64_t session_deadline(Worker w, int idx, Session *s):
    """The earliest moment something must happen to this session (0: none)."""
    cdef FrontendRt *fe
    cdef BackendRt *be
    cdef int64_t dl = 0, t, cli_to, srv_to
    if s.http == 1:
        return http_deadline(w, idx, s)   # an HTTP session may have no backend yet
    fe = &w.frontends[s.fe]
    be = &w.backends[s.be]
    if s.state == ST_ESTABLISHED:
        if be.t_tunnel:
            return (s.cli.last if s.cli.last > s.srv.last else s.srv.last) + be.t_tunnel
        cli_to = fe.t_client
        if fe.t_client_fin and (s.cli.rd_eof or s.cli.wr_shut):
            cli_to = fe.t_client_fin
        srv_to = be.t_server
        if be.t_server_fin and (s.srv.rd_eof or s.srv.wr_shut):
            srv_to = be.t_server_fin
        if cli_to:
            dl = s.cli.last + cli_to
        if srv_to:
            t = s.srv.last + srv_to
            if dl == 0 or t < dl:
                dl = t
        return dl
    if fe.t_client:
        dl = s.cli.last + fe.t_client
    if s.state == ST_CONNECTING and be.t_connect:
        t = s.t_connect + be.t_connect
        if dl == 0 or t < dl:
            dl = t
    elif s.state == ST_QUEUED and be.t_queue:
        t = s.t_queued + be.t_queue
        if dl == 0 or t < dl:
            dl = t
    elif s.state == ST_TURNAROUND:
        if dl == 0 or s.wake_at < dl:
            dl = s.wake_at
    return dl


cdef void arm_timer(Worker w, int idx, Session *s):
    """Make sure the heap entry is no later than the session's deadline."""
    cdef int64_t dl = session_deadline(w, idx, s)
    if dl == 0:
        return    # an entry left in place finds no deadline when it comes due
    if s.heap_pos < 0 or dl < w.heap[s.heap_pos].at:
        timer_set(w, idx, s, dl)


cdef void run_timers(Worker w):
    cdef Session *s
    cdef int idx
    cdef int64_t dl
    while w.heap_len > 0 and w.heap[0].at <= w.now:
        idx = w.heap[0].idx
        s = session_at(w, idx)
        dl = session_deadline(w, idx, s)
        if dl > w.now:
            timer_set(w, idx, s, dl)
            continue
        timer_remove(w, s)
        if dl != 0:
            try:
                session_expired(w, idx, s)
            except Exception as exc:
                session_failed(w, idx, s, exc)


cdef int next_timeout_ms(Worker w):
    cdef int64_t wait = 1000
    if w.heap_len > 0:
        wait = w.heap[0].at - w.now
        if wait < 0:
            wait = 0
        elif wait > 1000:
            wait = 1000
    if w.npaused and wait > RESUME_CHECK_MS:
        wait = RESUME_CHECK_MS
    if w.nqueued and wait > 1:
        wait = 1                  # waiting requests: look for free places every ms
    if w.runq:
        wait = 0
    return <int>wait


cdef void session_expired(Worker w, int idx, Session *s):
    cdef FrontendRt *fe
    cdef BackendRt *be
    if s.http == 1:
        http_expired(w, idx, s)
        return
    fe = &w.frontends[s.fe]
    be = &w.backends[s.be]
    if s.state == ST_CONNECTING and be.t_connect and s.t_connect + be.t_connect <= w.now:
        connect_failed(w, idx, s, 1)
        return
    if s.state == ST_TURNAROUND and s.wake_at <= w.now:
        start_connect(w, idx, s)
        return
    if s.state == ST_QUEUED and be.t_queue and s.t_queued + be.t_queue <= w.now:
        queue_leave(w, s)
        s.term0 = b's'            # timeout queue
        s.term1 = b'Q'
        session_close(w, idx, s)
        return
    if s.state != ST_ESTABLISHED:
        s.term0 = b'c'            # client timeout before the server connection was made
        s.term1 = b'C' if s.state == ST_CONNECTING else b'Q'
    elif be.t_tunnel:
        s.term0 = b'c'
        s.term1 = b'D'
    elif fe.t_client and s.cli.last + (fe.t_client_fin if fe.t_client_fin and (s.cli.rd_eof or s.cli.wr_shut) else fe.t_client) <= w.now:
        s.term0 = b'c'
        s.term1 = b'D'
    else:
        s.term0 = b's'
        s.term1 = b'D'
    session_close(w, idx, s)


cdef inline int64_t earliest(int64_t a, int64_t b):
    if a == 0:
        return b
    if b == 0 or a < b:
        return a
    return b
