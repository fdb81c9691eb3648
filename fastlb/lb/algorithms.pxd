# Balance algorithm numbers (fastlb/lb/lookup.py has the same).

cdef enum Algorithm:
    LB_ROUNDROBIN = 0
    LB_STATIC_RR = 1
    LB_LEASTCONN = 2
    LB_FIRST = 3
    LB_RANDOM = 4
    LB_SOURCE = 5
    LB_URI = 6
    LB_URL_PARAM = 7
    LB_HDR = 8
