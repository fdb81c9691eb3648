# The layout of the shared mapping (fastlb/shm/__init__.py), in 64-bit words: the one
# source of these numbers.  The workers cimport them; Python reads the same values from
# fastlb.shm.words, the compiled module of this file.

from libc.stdint cimport uint64_t

cpdef enum:
    WORD = 8
    # global words, then one word per worker: its pid
    G_SHUTDOWN = 0          # "shutdown sessions server" epoch
    G_MASTER_PID = 1
    G_START_MS = 2
    G_IDLE_PCT = 3
    G_RSS = 4
    G_CHECKER_PID = 5
    G_CONN_RATE = 6         # two words each: connections and sessions of the last two
    G_SESS_RATE = 8         # seconds, for maxconnrate and maxsessrate (loop/listeners.pxi)
    G_WORDS = 12
    # per frontend
    FE_MAXCONN = 0          # "set maxconn frontend" changes it at run time
    FE_SESS_RATE = 2        # two words: its sessions of the last two seconds (rate-limit)
    FE_WORDS = 4
    # per backend
    BE_RR = 0               # round-robin position
    BE_VERSION = 1          # bumped at each server state/weight change: rebuild the lookups
    BE_TICKET = 2           # queue ticket
    BE_LAST_CHANGE = 3
    BE_CHKDOWN = 4
    BE_DOWN_SINCE = 5
    BE_DOWNTIME = 6
    BE_DYNCOOKIE = 7        # dynamic cookies changed at run time: version << 1 | in use (0: as configured)
    BE_WORDS = 8
    # per server
    SRV_STATE = 0           # ST_* bits below
    SRV_WEIGHT = 1
    SRV_HEALTH = 2
    SRV_CHECK_STATUS = 3    # an index in shm.CHECK_STATUSES
    SRV_CHECK_CODE = 4
    SRV_CHECK_MS = 5
    SRV_LAST_CHANGE = 6
    SRV_TICKET = 7
    SRV_ERRORS = 8          # consecutive errors seen by traffic (observe)
    SRV_OBSERVE = 9         # 0 none, OBSERVE_LAYER4, OBSERVE_LAYER7
    SRV_MAXCONN = 10
    SRV_CHKFAIL = 11
    SRV_CHKDOWN = 12
    SRV_DOWN_SINCE = 13
    SRV_DOWNTIME = 14
    SRV_HANAFAIL = 15
    SRV_SHUTDOWN = 16       # "shutdown sessions server" epoch for this server
    SRV_DYNCOOKIE = 17      # its dynamic cookie's hash once BE_DYNCOOKIE is set
    SRV_WORDS = 18
    # SRV_OBSERVE values
    OBSERVE_NONE = 0
    OBSERVE_LAYER4 = 4
    OBSERVE_LAYER7 = 7
    # server state bits
    ST_RUNNING = 1          # checks say UP (or the server is not checked)
    ST_MAINT = 2            # forced maintenance (stats socket, stats page)
    ST_DRAIN = 4            # forced drain: no new traffic except persistent requests
    ST_CHECKED = 8          # has an active health check
    ST_CFG_MAINT = 16       # maintenance from the configuration ("disabled")
    ST_CHECK_OFF = 32       # "disable health": checks stopped, the server counts as up
    ST_ANY_MAINT = 18       # ST_MAINT | ST_CFG_MAINT
    # the count block (the atomic totals, and the head of each worker's slot): process
    # connections first, then the frontends' (see SharedState.fe_off)
    COUNT_ACTCONN = 0
    COUNT_FRONTENDS = 1
    # per-worker statistics counters, per object (frontends, backends, servers)
    STAT_SESS_TOT = 0
    STAT_BYTES_IN = 1
    STAT_BYTES_OUT = 2
    STAT_DENIED_REQ = 3
    STAT_DENIED_RESP = 4
    STAT_ERR_REQ = 5
    STAT_ERR_CONN = 6
    STAT_ERR_RESP = 7
    STAT_RETRIES = 8
    STAT_REDISPATCHES = 9
    STAT_LBTOT = 10
    STAT_HRSP_1XX = 11      # .. STAT_HRSP_OTHER, by status class
    STAT_HRSP_2XX = 12
    STAT_HRSP_3XX = 13
    STAT_HRSP_4XX = 14
    STAT_HRSP_5XX = 15
    STAT_HRSP_OTHER = 16
    STAT_REQ_TOT = 17
    STAT_CLI_ABRT = 18
    STAT_SRV_ABRT = 19
    STAT_CONN_TOT = 20
    STAT_CONNECT = 21
    STAT_REUSE = 22
    STAT_INTERCEPTED = 23
    STAT_SMAX = 24
    STAT_QMAX = 25
    STAT_Q_SUM = 26         # queue, connect, response and total times: sliding sums
    STAT_C_SUM = 27
    STAT_R_SUM = 28
    STAT_T_SUM = 29
    STAT_SAMPLES = 30
    STAT_R_SAMPLES = 31
    STAT_QTIME_MAX = 32
    STAT_CTIME_MAX = 33
    STAT_RTIME_MAX = 34
    STAT_TTIME_MAX = 35
    STAT_LASTSESS = 36      # seconds since the epoch of the last session sent to it
    STAT_DENIED_CONN = 37   # tcp-request connection reject
    STAT_DENIED_SESS = 38   # tcp-request session reject
    STAT_COUNTERS = 39      # how many of the above
    STAT_WORDS = 40
    TIME_SAMPLES = 512      # the timing averages (STAT_*_SUM) cover the last 512 sessions
    # per-second rates, per object, written by the master
    RATE_WORDS = 6
    ERR_WORDS = 256         # 2 KiB: a header, the client address, the first bytes

cdef extern from *:
    """
    #define FL_NO_TICKET 0xFFFFFFFFFFFFFFFFULL
    """
    # a queue head with nobody waiting
    const uint64_t NO_TICKET "FL_NO_TICKET"
