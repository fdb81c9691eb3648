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
    """The earliest moment something must happen to this session (0: none), by its
    protocol's rule, which also records in s.timer which deadline that is."""
    s.timer = TM_NONE
    if s.state == ST_PROXY_HEADER:
        if w.frontends[s.fe].t_client == 0:
            return 0
        s.timer = TM_PROXY_HEADER
        return s.t_accept + w.frontends[s.fe].t_client
    if s.state == ST_INSPECT:
        return inspect_deadline(w, s)
    if s.http == 1:
        return http_deadline(w, idx, s)   # an HTTP session may have no backend yet
    return tcp_deadline(w, s)


cdef int64_t server_wait_deadline(BackendRt *be, Session *s) noexcept nogil:
    """While a session waits for its server connection (both protocols): timeout connect,
    timeout queue, or the end of the pause before a retry."""
    if s.state == ST_CONNECTING and be.t_connect:
        s.timer = TM_CONNECT
        return s.t_connect + be.t_connect
    if s.state == ST_QUEUED and be.t_queue:
        s.timer = TM_QUEUE
        return s.t_queued + be.t_queue
    if s.state == ST_TURNAROUND:
        s.timer = TM_TURNAROUND
        return s.wake_at
    return 0


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
    if w.bufwait and wait > 1:
        wait = 1                  # sessions waiting for a buffer another worker may give back
    if w.runq:
        wait = 0
    return <int>wait


cdef void session_expired(Worker w, int idx, Session *s):
    """s.timer's deadline has passed."""
    if s.timer == TM_PROXY_HEADER:
        # HAProxy names the PROXY header while one is still expected
        proxy_header_failed(w, idx, s, PP_TIMEOUT if s.handshake & HS_PROXY else CIP_TIMEOUT)
    elif s.timer == TM_CONNECT:
        connect_failed(w, idx, s, 1)
    elif s.timer == TM_TURNAROUND:
        start_connect(w, idx, s)
    elif s.timer == TM_INSPECT:
        inspect_run(w, idx, s)
    elif s.timer == TM_RES_INSPECT:
        relay_run(w, idx, s, 2)
    elif s.http == 1:
        http_expired(w, idx, s)
    else:
        tcp_expired(w, idx, s)
