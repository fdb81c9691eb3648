"""Load-balancing algorithms: one module per family, as in HAProxy's lb_*.c.

The picks themselves are C inline functions in the ``.pxd`` files (cimported by
the worker loop); the ``.py`` modules build the tables they walk.
"""
