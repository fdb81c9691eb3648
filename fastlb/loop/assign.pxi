# Server assignment: balancing, persistence, queues, passive checks.
# Interface: assign.pxd.


# Server assignment and queues.
#
# assign_server() chooses a server for a session and takes a place in its current
# sessions; the balance algorithms themselves are in fastlb/lb/*.pxd.  When every
# eligible server is at its maxconn, the session waits in a queue:
#
#   - the backend's queue when any server would do, or the server's queue when the
#     request is bound to one server (cookie persistence, or a hash with its key);
#   - a queue is shared by all workers: each waiting request takes a ticket from the
#     queue's atomic counter; its place is HAProxy's order, priority class first, then
#     the date it was queued plus its priority offset, then the ticket (queue_key());
#     each worker keeps its own waiting requests in that order and publishes, per
#     queue, the first one's key (its "head");
#   - a worker may give a freed place to its first request only if no other worker holds
#     one before it in that queue, so requests are served in that order across workers
#     and none starves; a new request goes behind a non-empty queue instead of taking a
#     place that an older one is waiting for;
#   - a worker with waiting requests looks at its queues right after it frees a place and
#     at least every millisecond (a place freed by another worker is seen that way);
#   - a request still waiting after `timeout queue` (default: `timeout connect`) gets
#     503 (termination state sQ); a crashed worker's heads and queue counts are cleared
#     by the master when it reaps it.



cdef void free_lookup(BackendRt *be) noexcept nogil:
    free(be.seq)
    free(be.ring_keys)
    free(be.ring_srv)
    free(be.eligible)
    free(be.eligible_w)
    be.seq = be.ring_srv = be.eligible = be.eligible_w = NULL
    be.ring_keys = NULL
    be.seq_len = be.seq_prefix = be.ring_len = be.neligible = 0


cdef int install_lookup(Worker w, int b) except -1:
    """(Re)build backend ``b``'s lookup arrays from the shared server states."""
    cdef BackendRt *be = &w.backends[b]
    cdef uint64_t version = fl_atomic_load(w.be_words + be.shm_index * BE_WORDS + BE_VERSION)
    cdef int i
    # maxconn may change at run time (stats socket): sessions remember whether their place
    # was counted in the shared totals (held_shared), so switching is safe at any moment
    be.limited = 0
    for i in range(be.nservers):
        be.srv_maxconn[i] = <int64_t>fl_atomic_load(w.srv_words + be.srv_shm[i] * SRV_WORDS + SRV_MAXCONN)
        if be.srv_maxconn[i]:
            be.limited = 1
    be.shared_cur = be.limited or be.shared_counts
    lookup = (<BackendHooks>w.be_hooks[b]).lookup_builder()
    free_lookup(be)
    be.seq = int_array(lookup.sequence)
    be.seq_len = len(lookup.sequence)
    be.seq_prefix = lookup.prefix
    be.ring_len = len(lookup.ring_keys)
    be.ring_keys = <uint32_t *>calloc(max(be.ring_len, 1), sizeof(uint32_t))
    for i in range(be.ring_len):
        be.ring_keys[i] = lookup.ring_keys[i]
    be.ring_srv = int_array(lookup.ring_servers)
    be.eligible = int_array(lookup.eligible)
    be.eligible_w = int_array(lookup.weights)
    be.neligible = len(lookup.eligible)
    be.tot_eweight = 0
    for i in range(be.nservers):
        be.srv_eweight[i] = lookup.group_weights[i]
        be.srv_cumw[i] = lookup.cumulative[i]
        be.tot_eweight += be.srv_eweight[i]
    be.nactive = lookup.active
    be.version = version
    return 0


cdef inline void lookup_fresh(Worker w, int b):
    cdef BackendRt *be = &w.backends[b]
    if fl_atomic_load(w.be_words + be.shm_index * BE_WORDS + BE_VERSION) != be.version:
        install_lookup(w, b)


cdef inline uint64_t server_state(Worker w, BackendRt *be, int srv) noexcept nogil:
    return fl_atomic_load(w.srv_words + be.srv_shm[srv] * SRV_WORDS + SRV_STATE)


cdef bint persist_usable(Worker w, BackendRt *be, int srv):
    """A server a cookie may still reach: running and not in maintenance (draining is fine)."""
    cdef uint64_t st = server_state(w, be, srv)
    return (st & ST_RUNNING) and not (st & ST_ANY_MAINT)


cdef int use_server(Worker w, Session *s, object stream):
    """The first server of the backend's use-server rules that holds and is up, or -1."""
    cdef BackendRt *be = &w.backends[s.be]
    rules = (<BackendHooks>w.be_hooks[s.be]).server_rules
    if rules is None:
        return -1
    try:
        candidates = rules(stream)
    except Exception as exc:
        internal_error(w, exc, "use-server rules")    # balanced as if no rule held
        return -1
    for candidate in candidates:
        if persist_usable(w, be, candidate):
            return candidate
    return -1


cdef Py_ssize_t c_strtoul(const unsigned char *p, Py_ssize_t i, Py_ssize_t n,
                           uint64_t *out) noexcept:
    """C's strtoul(p + i, &end, 10) on a bounded string: the index of ``end`` (``i`` when no
    digits), the value in ``out`` (saturated, negated modulo 2^64 after a '-')."""
    cdef Py_ssize_t start = i
    cdef uint64_t v = 0
    cdef bint neg = False, over = False, digits = False
    while i < n and (p[i] == 32 or 9 <= p[i] <= 13):
        i += 1
    if i < n and (p[i] == 43 or p[i] == 45):       # '+' / '-'
        neg = p[i] == 45
        i += 1
    while i < n and 48 <= p[i] <= 57:
        digits = True
        if v > (0xFFFFFFFFFFFFFFFF - (p[i] - 48)) // 10:
            over = True
        v = v * 10 + (p[i] - 48)
        i += 1
    if not digits:
        out[0] = 0
        return start
    out[0] = 0xFFFFFFFFFFFFFFFF if over else ((0 - v) if neg else v)
    return i


cdef int rdp_cookie_server(Worker w, Session *s, object stream):
    """persist rdp-cookie: the server whose IPv4 address and port the cookie names, as
    "<address>.<port>." with both numbers in network byte order read as integers (HAProxy's
    reading, strtoul's), while it is up (or ``option persist``); else -1 (balanced)."""
    cdef BackendRt *be = &w.backends[s.be]
    cdef uint64_t addr, port
    cdef Py_ssize_t i, n
    cdef const unsigned char *p
    cdef int srv
    try:
        value = (<BackendHooks>w.be_hooks[s.be]).rdp_persist(stream)
    except Exception as exc:
        internal_error(w, exc, "persist rdp-cookie")
        return -1
    if not value:
        return -1
    p = <const unsigned char *><const char *>value
    n = len(value)
    i = c_strtoul(p, 0, n, &addr)
    if i >= n or p[i] != 46:                # '.'
        return -1
    i = c_strtoul(p, i + 1, n, &port)
    if i >= n or p[i] != 46:
        return -1
    for srv in range(be.nservers):
        if be.servers[srv].addr.ss_family == AF_INET and \
                (<sockaddr_in *>&be.servers[srv].addr).sin_port == <uint16_t>port and \
                (<sockaddr_in *>&be.servers[srv].addr).sin_addr.s_addr == <uint32_t>addr:
            if be.persist or persist_usable(w, be, srv):
                return srv
    return -1


cdef inline uint64_t *queue_count(Worker w, int q) noexcept nogil:
    return w.totals + w.beq_off + q        # backend queues, then server queues


cdef inline int64_t server_limit(Worker w, BackendRt *be, int srv) noexcept nogil:
    """HAProxy's srv_dynamic_maxconn: the server's maxconn, or, with a minconn below it and
    the backend under fullconn sessions (all workers), maxconn x sessions / fullconn, never
    below minconn."""
    cdef int64_t maxconn = be.srv_maxconn[srv], minconn, sessions, share
    if be.fullconn == 0 or maxconn == 0:
        return maxconn
    minconn = be.srv_minconn[srv]
    if minconn >= maxconn:
        return maxconn
    sessions = count_total(w, w.be_off + be.shm_index)
    if sessions >= be.fullconn:
        return maxconn
    share = sessions * maxconn // be.fullconn
    return share if share > minconn else minconn


cdef int64_t *server_limits(Worker w, BackendRt *be) noexcept nogil:
    """Every server's limit of this moment, for the picks that skip full servers."""
    cdef int i
    if be.fullconn == 0:
        return be.srv_maxconn
    for i in range(be.nservers):
        be.srv_limit[i] = server_limit(w, be, i)
    return be.srv_limit


cdef bint try_hold(Worker w, Session *s, BackendRt *be, int srv, bint from_queue):
    """Take a place among ``srv``'s current sessions, or fail if it is full (or has requests
    waiting for it that came first)."""
    cdef uint32_t k = be.srv_shm[srv]
    cdef int64_t used
    if be.srv_maxconn[srv]:
        if not from_queue and fl_atomic_load(queue_count(w, w.nbackends + k)) != 0:
            return False
        used = <int64_t>fl_atomic_fetch_add(w.totals + w.srv_shared_off + k, 1)
        if used >= server_limit(w, be, srv):
            fl_atomic_fetch_sub(w.totals + w.srv_shared_off + k, 1)
            return False
        count_add(w, w.srv_shared_off + k, 1)
        s.held_shared = 1
    elif be.shared_cur:
        fl_atomic_fetch_add(w.totals + w.srv_shared_off + k, 1)
        count_add(w, w.srv_shared_off + k, 1)
        s.held_shared = 1
    else:
        s.held_shared = 0
    count_add(w, w.srv_off + k, 1)
    s.held_server = srv
    cdef uint64_t *row = w.srv_stats + k * STAT_WORDS
    row[STAT_SESS_TOT] += 1
    row[STAT_LBTOT] += 1
    row[STAT_LASTSESS] = <uint64_t>(realtime_ms() // 1000)
    stat_max(row, STAT_SMAX, <int64_t>w.slot[w.srv_off + k])
    row = w.be_stats + be.shm_index * STAT_WORDS
    row[STAT_LBTOT] += 1
    row[STAT_LASTSESS] = w.srv_stats[k * STAT_WORDS + STAT_LASTSESS]
    return True


cdef void server_release(Worker w, Session *s):
    cdef BackendRt *be
    cdef uint32_t k
    if s.held_server < 0:
        return
    be = &w.backends[s.be]
    k = be.srv_shm[s.held_server]
    if s.held_shared:
        fl_atomic_fetch_sub(w.totals + w.srv_shared_off + k, 1)
        count_add(w, w.srv_shared_off + k, -1)
    count_add(w, w.srv_off + k, -1)
    s.held_server = -1
    if w.nqueued:
        w.next_queue_poll = 0         # a place is free: look at our own queues at once


cdef int walk_sequence(Worker w, Session *s, BackendRt *be, bint from_queue):
    """Round robin over the precomputed order (or the weight map), skipping full servers."""
    cdef int k, srv
    cdef uint64_t *position = w.be_words + be.shm_index * BE_WORDS + BE_RR
    if be.seq_len == 0:
        return ASSIGN_NONE
    for k in range(be.seq_len):
        srv = rr_pick(position, be.seq, be.seq_prefix, be.seq_len)
        if try_hold(w, s, be, srv, from_queue):
            return srv
    return BALANCE_FULL


cdef inline uint32_t next_random(Worker w) noexcept nogil:
    w.rng ^= w.rng << 13
    w.rng ^= w.rng >> 7
    w.rng ^= w.rng << 17
    return <uint32_t>(w.rng >> 16)


cdef int random_pick(Worker w, Session *s, BackendRt *be, bint from_queue):
    """balance random(<draws>): random slots of the weight map, the least loaded draw wins.
    (HAProxy draws points on its consistent-hash ring; the map gives each server exactly
    its share of weight, where a ring's arcs only approach it.)"""
    cdef int d, srv, best = -1
    cdef int64_t load, best_load = 0
    cdef int64_t served = backend_served(w, be) if be.hash_balance_factor else 0
    cdef uint32_t k
    if be.seq_len == 0:
        return ASSIGN_NONE
    for d in range(be.draws):
        srv = be.seq[next_random(w) % <uint32_t>be.seq_len]
        k = be.srv_shm[srv]
        load = <int64_t>fl_atomic_load(w.totals + w.srv_shared_off + k)
        if be.srv_maxconn[srv] and load >= server_limit(w, be, srv):
            continue
        if be.hash_balance_factor and not under_bound(w, be, srv, served):
            continue
        load = (load + <int64_t>fl_atomic_load(queue_count(w, w.nbackends + k))) * 4096
        if best < 0 or load < best_load:
            best, best_load = srv, load
    if best >= 0 and try_hold(w, s, be, best, from_queue):
        return best
    return walk_sequence(w, s, be, from_queue)


cdef int balance(Worker w, Session *s, BackendRt *be, bint from_queue):
    """A server with a place taken, ASSIGN_NONE, or BALANCE_FULL."""
    cdef int srv, attempt
    if be.pick == PICK_LEASTCONN or be.pick == PICK_FIRST:
        if be.neligible == 0:
            return ASSIGN_NONE
        for attempt in range(4):      # another worker may take the last place in between
            if be.pick == PICK_LEASTCONN:
                srv = leastconn_pick(be.eligible, be.eligible_w, be.neligible, be.srv_shm,
                                     server_limits(w, be), w.totals + w.srv_shared_off,
                                     w.totals + w.beq_off + w.nbackends,
                                     <uint32_t>fl_atomic_fetch_add(
                                         w.be_words + be.shm_index * BE_WORDS + BE_RR, 1),
                                     s.avoid_server)
            else:
                srv = first_pick(be.eligible, be.neligible, be.srv_shm, server_limits(w, be),
                                 w.totals + w.srv_shared_off, s.avoid_server)
            if srv < 0:
                return BALANCE_FULL
            if try_hold(w, s, be, srv, from_queue):
                return srv
        return BALANCE_FULL
    if be.pick == PICK_RANDOM:
        return random_pick(w, s, be, from_queue)
    if be.consistent and be.key != KEY_NONE:
        return walk_ring(w, s, be, from_queue)
    return walk_sequence(w, s, be, from_queue)


cdef int walk_ring(Worker w, Session *s, BackendRt *be, bint from_queue):
    """A consistent hash without its key: the ring's points in turn (HAProxy's
    chash_get_next_server), skipping full servers."""
    cdef int k, srv
    cdef uint64_t *position = w.be_words + be.shm_index * BE_WORDS + BE_RR
    if be.ring_len == 0:
        return ASSIGN_NONE
    for k in range(be.ring_len):
        srv = be.ring_srv[fl_atomic_fetch_add(position, 1) % <uint64_t>be.ring_len]
        if try_hold(w, s, be, srv, from_queue):
            return srv
    return BALANCE_FULL


cdef int64_t backend_served(Worker w, BackendRt *be) noexcept nogil:
    """The sessions all of the backend's servers serve now (all workers)."""
    cdef int64_t served = 0
    cdef int i
    for i in range(be.nservers):
        served += <int64_t>fl_atomic_load(w.totals + w.srv_shared_off + be.srv_shm[i])
    return served


cdef bint under_bound(Worker w, BackendRt *be, int srv, int64_t served) noexcept nogil:
    """hash-balance-factor: ``srv`` serves fewer sessions than its share of the backend's
    ``served`` (plus this one, times the factor) by weight, at least one (HAProxy's
    bounded-load consistent hashing, so the same keys find the same servers)."""
    cdef int64_t slots, per_weight, rest
    if be.tot_eweight <= 0:
        return True
    slots = ((served + 1) * be.hash_balance_factor + 99) // 100
    per_weight = slots // be.tot_eweight
    rest = slots % be.tot_eweight
    slots = be.srv_eweight[srv] * per_weight + \
        ((be.srv_cumw[srv] + be.srv_eweight[srv]) * rest) // be.tot_eweight - \
        (be.srv_cumw[srv] * rest) // be.tot_eweight
    if slots == 0:
        slots = 1
    return <int64_t>fl_atomic_load(w.totals + w.srv_shared_off + be.srv_shm[srv]) < slots


cdef int hashed_server(Worker w, BackendRt *be, Session *s):
    cdef uint32_t h = s.key_hash
    cdef int point, n
    cdef int64_t served
    if be.avalanche:
        h = full_hash(h)
    if not be.consistent:
        return map_lookup(be.seq, be.seq_len, h)
    if not be.hash_balance_factor:
        return ring_lookup(be.ring_keys, be.ring_srv, be.ring_len, h)
    point = ring_point(be.ring_keys, be.ring_len, h)
    if point < 0:
        return -1
    served = backend_served(w, be)
    for n in range(be.ring_len):     # the next points, until a server is under its bound
        if under_bound(w, be, be.ring_srv[point], served):
            break
        point = point + 1 if point + 1 < be.ring_len else 0
    return be.ring_srv[point]


cdef int assign_server(Worker w, int idx, Session *s):
    """Choose a server for ``s`` and hold a place in it: a server index, ASSIGN_QUEUED (the
    session now waits in a queue) or ASSIGN_NONE (no usable server: 503 / close)."""
    cdef BackendRt *be = &w.backends[s.be]
    cdef int target = -1, srv
    cdef uint32_t k
    cdef int64_t waiting
    lookup_fresh(w, s.be)
    if s.forced_server >= 0:
        target = s.forced_server
    elif s.has_key and be.key != KEY_NONE:
        target = hashed_server(w, be, s)
        if target < 0:
            return ASSIGN_NONE
    if target >= 0:
        if try_hold(w, s, be, target, False):
            return target
        k = be.srv_shm[target]
        if not be.srv_maxqueue[target] or \
                <int64_t>fl_atomic_load(queue_count(w, w.nbackends + k)) < be.srv_maxqueue[target]:
            queue_enter(w, idx, s, w.nbackends + k)
            return ASSIGN_QUEUED
        if not be.redispatch:
            return ASSIGN_NONE        # its queue is full too and we may not go elsewhere
    if be.transparent >= 0:
        # option transparent: no balancing; the client's destination takes the rest
        return be.transparent if try_hold(w, s, be, be.transparent, False) else ASSIGN_NONE
    if be.prefer_last and be.key == KEY_NONE and last_server_usable(w, s, be):
        if try_hold(w, s, be, s.server, False):
            return s.server
        # full: wait for it, unless its queue is as long as max-keep-alive-queue allows
        k = be.srv_shm[s.server]
        waiting = <int64_t>fl_atomic_load(queue_count(w, w.nbackends + k))
        if (be.max_ka_queue == 0 or waiting + 1 < be.max_ka_queue) and \
                (not be.srv_maxqueue[s.server] or waiting < be.srv_maxqueue[s.server]):
            queue_enter(w, idx, s, w.nbackends + k)
            return ASSIGN_QUEUED
    if be.limited and fl_atomic_load(queue_count(w, be.shm_index)) != 0:
        queue_enter(w, idx, s, be.shm_index)     # older requests wait for a place: behind them
        return ASSIGN_QUEUED
    srv = balance(w, s, be, False)
    if srv >= 0 and srv == s.avoid_server and be.nactive > 1:
        srv = balance_avoiding(w, s, be, srv)
    if srv == BALANCE_FULL:
        queue_enter(w, idx, s, be.shm_index)
        return ASSIGN_QUEUED
    return srv


cdef bint last_server_usable(Worker w, Session *s, BackendRt *be):
    """option prefer-last-server: the server of the connection the session holds as its own
    (http-reuse never, or a private one), while it is up and not draining (a full one is
    waited for: see max-keep-alive-queue).  As in HAProxy 2.6, a connection that went back
    to the shared pool (http-reuse safe) is not the session's: the next request is
    balanced."""
    cdef uint64_t st
    if s.srv.fd < 0 or s.state != ST_ESTABLISHED or s.server < 0 or s.server >= be.nservers \
            or not (be.reuse_never or s.srv_private):
        return False
    st = server_state(w, be, s.server)
    return (st & ST_RUNNING) and not (st & (ST_ANY_MAINT | ST_DRAIN))


cdef int balance_avoiding(Worker w, Session *s, BackendRt *be, int srv):
    """A redispatch drew the server that just failed: draw again (a bounded number of
    times) so that the retry goes elsewhere whenever another server is usable."""
    cdef int attempt, other
    for attempt in range(2 * be.nactive):
        server_release(w, s)
        other = balance(w, s, be, False)
        if other < 0:
            return other
        if other != s.avoid_server:
            return other
    return srv if s.held_server >= 0 else balance(w, s, be, False)


# ---------------------------------------------------------------------------- queues
cdef inline uint64_t *ticket_word(Worker w, int q) noexcept nogil:
    if q < w.nbackends:
        return w.be_words + q * BE_WORDS + BE_TICKET
    return w.srv_words + (q - w.nbackends) * SRV_WORDS + SRV_TICKET


cdef inline uint64_t queue_key(int prio_class, int prio_offset, uint64_t ticket,
                               int64_t now) noexcept nogil:
    """A waiting request's place: class (12 bits, never all ones, so no key is
    NO_TICKET), then the date plus offset in ms (20 bits, read modulo 2^20 as HAProxy's
    queue keys are: an offset and a wait together must stay under 8m44s), then the
    ticket (32 bits, also read modulo)."""
    return (<uint64_t>(prio_class + 2047) << 52) | \
        ((<uint64_t>(now + prio_offset) & 0xFFFFFULL) << 32) | (ticket & 0xFFFFFFFFULL)


cdef inline bint key_before(uint64_t a, uint64_t b, int64_t now) noexcept nogil:
    """Request a is served before request b: lower class, then the earlier date on the
    window of 2^20 ms that HAProxy reads around ``now`` (from 2^19 ms before it), then
    the older ticket."""
    cdef uint64_t da, db
    if (a >> 52) != (b >> 52):
        return (a >> 52) < (b >> 52)
    da = ((a >> 32) - <uint64_t>now + 0x80000ULL) & 0xFFFFFULL
    db = ((b >> 32) - <uint64_t>now + 0x80000ULL) & 0xFFFFFULL
    if da != db:
        return da < db
    return <int>(<uint32_t>a - <uint32_t>b) < 0     # modulo 2^32 (int: 32 bits here)


cdef void queue_enter(Worker w, int idx, Session *s, int q):
    cdef int after
    s.q_target = q
    s.q_ticket = queue_key(s.prio_class, s.prio_offset,
                           fl_atomic_fetch_add(ticket_word(w, q), 1), w.now)
    # behind every request of this worker's that goes first (without priorities: the tail)
    after = w.q_tail[q]
    while after >= 0 and key_before(s.q_ticket, session_at(w, after).q_ticket, w.now):
        after = session_at(w, after).q_prev
    s.q_prev = after
    if after >= 0:
        s.q_next = session_at(w, after).q_next
        session_at(w, after).q_next = idx
    else:
        s.q_next = w.q_head[q]
        w.q_head[q] = idx
        fl_atomic_store(w.my_heads + q, s.q_ticket)
    if s.q_next >= 0:
        session_at(w, s.q_next).q_prev = idx
    else:
        w.q_tail[q] = idx
    cdef int64_t queued = <int64_t>fl_atomic_fetch_add(queue_count(w, q), 1) + 1
    count_add(w, w.beq_off + q, 1)
    if q < w.nbackends:
        stat_max(w.be_stats + q * STAT_WORDS, STAT_QMAX, queued)
    else:
        stat_max(w.srv_stats + (q - w.nbackends) * STAT_WORDS, STAT_QMAX, queued)
    w.nqueued += 1
    s.state = ST_QUEUED
    s.t_queued = w.now
    arm_timer(w, idx, s)


cdef void queue_leave(Worker w, Session *s):
    cdef int q = s.q_target
    cdef int idx
    if q < 0:
        return
    if s.q_prev >= 0:
        session_at(w, s.q_prev).q_next = s.q_next
    else:
        w.q_head[q] = s.q_next
        idx = s.q_next
        fl_atomic_store(w.my_heads + q, session_at(w, idx).q_ticket if idx >= 0 else NO_TICKET)
    if s.q_next >= 0:
        session_at(w, s.q_next).q_prev = s.q_prev
    else:
        w.q_tail[q] = s.q_prev
    fl_atomic_fetch_sub(queue_count(w, q), 1)
    count_add(w, w.beq_off + q, -1)
    w.nqueued -= 1
    s.q_target = -1
    s.t_dequeued = w.now


cdef bint oldest_ticket(Worker w, int q, uint64_t key) noexcept nogil:
    """No other worker holds a request that goes before this one in queue ``q``."""
    cdef int other
    cdef uint64_t head
    for other in range(w.nworkers):
        if other != w.worker_id:
            head = fl_atomic_load(w.heads + other * w.nqueues + q)
            if head != NO_TICKET and key_before(head, key, w.now):
                return False
    return True


cdef void run_queues(Worker w):
    """Give free places to this worker's waiting requests, first in line first."""
    cdef int q, idx, srv
    cdef Session *s
    cdef BackendRt *be
    w.next_queue_poll = w.now + QUEUE_POLL_MS
    for q in range(<int>w.nqueues):
        while w.q_head[q] >= 0:
            idx = w.q_head[q]
            s = session_at(w, idx)
            if not oldest_ticket(w, q, s.q_ticket):
                break
            be = &w.backends[s.be]
            lookup_fresh(w, s.be)
            if q < w.nbackends:
                srv = balance(w, s, be, True)
            else:
                srv = q - w.nbackends - <int>be.srv_shm[0]
                if not try_hold(w, s, be, srv, True):
                    srv = BALANCE_FULL
            if srv == BALANCE_FULL:
                break
            queue_leave(w, s)
            try:
                if srv < 0:
                    no_connection(w, idx, s, b'S')      # every server went away meanwhile
                else:
                    resume_assigned(w, idx, s, srv)
            except Exception as exc:
                session_failed(w, idx, s, exc)


cdef void resume_assigned(Worker w, int idx, Session *s, int srv):
    """A queued session got its server: go on where assign_server() left it."""
    if s.http:
        s.state = ST_IDLE
        http_assigned(w, idx, s, http_txn(w, idx), srv)
        if s.state != ST_FREE:
            http_run(w, idx, s)
        return
    s.state = ST_CONNECTING
    s.server = srv
    start_connect(w, idx, s)


# ---------------------------------------------------------------------------- balancing keys
cdef void set_source_key(BackendRt *be, Session *s):
    """balance source: the client address (HAProxy's word-wise XOR of it)."""
    if be.key != KEY_SOURCE:
        return
    if s.addr.ss_family == AF_INET:
        s.key_hash = address_hash(<uint8_t *>&(<sockaddr_in *>&s.addr).sin_addr, 4)
        s.has_key = 1
    elif s.addr.ss_family == AF_INET6:
        s.key_hash = address_hash(<uint8_t *>&(<sockaddr_in6 *>&s.addr).sin6_addr, 16)
        s.has_key = 1


cdef inline void key_from(Session *s, bytes key):
    s.key_hash = sdbm(<const uint8_t *><const char *>key, len(key))
    s.has_key = 1


cdef void set_expr_key(Worker w, Session *s, object stream):
    """balance hash <expr>: the sample's bytes hashed, or no key (the map is walked)."""
    s.has_key = 0
    try:
        key = (<BackendHooks>w.be_hooks[s.be]).hash_key(stream)
    except Exception as exc:
        internal_error(w, exc, "balance hash")
        return
    if key is not None:
        key_from(s, key)


cdef void set_http_key(Worker w, Session *s, bytes url, list headers):
    """balance uri | url_param | hdr(): hash the key, or leave has_key 0 (map walk)."""
    cdef BackendRt *be = &w.backends[s.be]
    cdef Py_ssize_t end, slashes, i, q
    cdef bytes key, name, value
    cdef bytes wanted = (<BackendHooks>w.be_hooks[s.be]).key_name
    s.has_key = 0
    if be.key == KEY_SOURCE:
        set_source_key(be, s)
    elif be.key == KEY_URI:
        key = url
        if be.uri_path_only and not key.startswith(b"/"):
            i = key.find(b"://")
            if i >= 0:
                q = key.find(b"/", i + 3)
                key = key[q:] if q >= 0 else b""
        if be.uri_len and be.uri_len < len(key):
            key = key[:be.uri_len]
        end = 0
        slashes = 0
        while end < len(key):
            c = key[end]
            if c == 47:                       # '/'
                slashes += 1
                if be.uri_depth and slashes == be.uri_depth + 1:
                    break
            elif c == 63 and not be.uri_whole:  # '?'
                break
            end += 1
        key_from(s, key[:end])
    elif be.key == KEY_URL_PARAM:
        q = url.find(b"?")
        if q < 0:
            return
        for part in url[q + 1:].split(b"&"):
            name, eq, value = part.partition(b"=")
            if eq and name == wanted:
                key_from(s, value)
                return
    elif be.key == KEY_HDR:
        for name, value in headers:
            if name == wanted:
                value = value.split(b",", 1)[0].strip()
                if value and be.hdr_domain_only:
                    value = domain_part(value)
                if value:
                    key_from(s, value)
                return


cdef void set_post_param_key(Worker w, Session *s, bytes body):
    """url_param for a POST whose query lacks the parameter: HAProxy 2.6 reads the body as
    it stands (check_post or not), the part received with the head, or all of it under
    http-buffer-request."""
    key = post_param(body, (<BackendHooks>w.be_hooks[s.be]).key_name)
    if key is not None:
        key_from(s, key)


cdef inline bint http_token(int c):
    return (c > 32 and c < 127 and c not in b'"(),/:;<=>?@[\\]{}')


cdef object post_param(bytes body, bytes name):
    """url_param's value in a form body, or None.  As HAProxy: a value is used only when
    its first byte is a token byte (a space or line end gives an empty value), anything
    else means the body holds no parameters."""
    cdef Py_ssize_t plen = len(name), params = 0, length = len(body), start, amp
    while length > plen:
        if body[params + plen] == 61 and body[params:params + plen] == name:     # '='
            start = params + plen + 1
            length -= plen + 1
            if length == 0 or body[start] == 38:                                # '&'
                return b""
            if not http_token(body[start]):
                return b"" if body[start] in b" \t\r\n" else None
            amp = body.find(b"&", start, start + length)
            return body[start:amp if amp >= 0 else start + length]
        amp = body.find(b"&", params, params + length)
        if amp < 0:
            return None
        length -= amp + 1 - params
        params = amp + 1
    return None


cdef bytes domain_part(bytes host):
    """use_domain_only: the label before the last dot ("1wt" of "haproxy.1wt.eu"), walked
    from the end as HAProxy does; a name without a dot is hashed whole."""
    cdef Py_ssize_t tld = host.rfind(b".")
    if tld < 0:
        return host
    return host[host.rfind(b".", 0, tld) + 1:tld]


# ---------------------------------------------------------------------------- passive checks
cdef void observe(Worker w, BackendRt *be, int srv, int layer, bint failed):
    """observe layer4|layer7: count a server's consecutive errors seen by real traffic; the
    checker applies on-error when error-limit is reached.  Layer-4 events (connect) count
    in both modes, layer-7 ones (5xx answers, invalid or missing responses) in layer7."""
    cdef uint64_t *word
    cdef uint64_t mode
    if not be.observed or srv < 0 or srv >= be.nservers:
        return
    word = w.srv_words + be.srv_shm[srv] * SRV_WORDS
    mode = fl_atomic_load(word + SRV_OBSERVE)
    if mode == OBSERVE_NONE or (layer == OBSERVE_LAYER7 and mode != OBSERVE_LAYER7):
        return
    if failed:
        fl_atomic_fetch_add(word + SRV_ERRORS, 1)
    elif fl_atomic_load(word + SRV_ERRORS) != 0:
        fl_atomic_store(word + SRV_ERRORS, 0)
