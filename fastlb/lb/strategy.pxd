# How the worker loop carries out a balance algorithm (HAProxy's lb_ops, split in three
# choices).  fastlb/lb/algorithms.py registers each algorithm as one combination of them;
# Python reads these numbers from fastlb.lb.strategy, the compiled module of this file.

# how a server is picked
cpdef enum:
    PICK_SEQUENCE = 0       # walk the lookup sequence (round-robin order or weight map)
    PICK_LEASTCONN = 1      # leastconn.pxd
    PICK_FIRST = 2          # first.pxd
    PICK_RANDOM = 3         # the least loaded of <draws> random slots of the weight map

# what a hashed algorithm hashes (KEY_NONE: not hashed)
cpdef enum:
    KEY_NONE = 0
    KEY_SOURCE = 1          # the client address
    KEY_URI = 2
    KEY_URL_PARAM = 3
    KEY_HDR = 4
    KEY_EXPR = 5            # balance hash <expr>: a sample expression (a Python hook)

# how the usable servers are laid out for the pick
cpdef enum:
    TABLE_ROUNDROBIN = 0    # weighted round-robin order (sequence.py replays lb_fwrr)
    TABLE_MAP = 1           # weight map: each server as many slots as its weight
    TABLE_ELIGIBLE = 2      # usable servers in id order, with their weights
