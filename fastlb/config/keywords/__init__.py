"""haproxy.cfg keywords, each registered by the module that implements it (``registry``).

Importing this package registers them all; a new keyword module is added to the line below.
"""
from . import balance, global_section, http, proxy, server, tls  # noqa: F401  (they register)
