"""What a sample is fetched from: one HTTP transaction (or TCP session) as rules, ACLs and
log lines see it.

The worker loop creates one ``Stream`` per request for a proxy that has rules, ACLs or
sample log fields, and fills in what becomes known as the transaction goes on: the chosen
backend and server, then the response.  Every text is bytes as it came on the wire.
Derived values (the path, the cookies) are computed on first use only.
"""
from __future__ import annotations

import re


def split_target(url: bytes) -> tuple[bytes, bytes]:
    """(scheme://authority, path and query) of a request target; the first is empty for
    an origin-form target, the second for an absolute one without a path."""
    if not url.startswith(b"/"):
        scheme_end = url.find(b"://")
        if scheme_end >= 0:
            slash = url.find(b"/", scheme_end + 3)
            return (url[:slash], url[slash:]) if slash >= 0 else (url, b"")
    return b"", url


class Stream:
    __slots__ = ("method", "meth", "url", "headers", "src", "dst_port", "version", "src_port", "dst",
                 "fe", "luid", "be", "srv", "status", "res_headers", "res_version", "vars", "sess_vars",
                 "captures_req", "captures_rsp", "unique_id", "seq", "first_req", "_path",
                 "_prefix_hits", "response", "reason", "log_level", "moved", "tos", "mark",
                 "hints", "timeout_server", "timeout_tunnel", "no_l7_retry",
                 "prio_class", "prio_offset",
                 "payload", "res_payload", "partial", "may_change",
                 # set only when a body was waited for (read with getattr): req_body and
                 # res_body (bytes, de-chunked), their sizes, and where wait-for-body
                 # left the rules (resume)
                 "req_body", "req_body_size", "res_body", "res_body_size", "resume",
                 # the req./res. scope in use: req. until the server is chosen, res. after
                 "res_scope")

    def __init__(self, method: bytes, url: bytes, headers: list, src: str, dst_port: int,
                 version: bytes, sess_vars: dict = None, src_port: int = 0, dst: str = "",
                 fe: int = -1, first_req: bool = True, luid: int = 0):
        self.method = method
        self.meth = method                # as received: HAProxy's method fetch ignores set-method
        self.url = url
        self.headers = headers            # [(lower-case name, value)] of the request
        self.src = src
        self.dst_port = dst_port
        self.version = version
        self.src_port = src_port
        self.dst = dst
        self.fe = fe
        self.luid = luid                  # the listener's number in its frontend (so_id)
        self.be = -1                      # indexes in the run-time tables, -1: none yet
        self.srv = -1
        self.status = -1
        self.res_headers = None
        self.res_version = b""
        self.vars = None                  # {"txn.name" | "req.name" | "res.name": sample}
        self.sess_vars = sess_vars        # the connection's "sess." variables
        self.res_scope = False
        self.captures_req = None
        self.captures_rsp = None
        self.unique_id = None
        self.seq = None                   # %rt of this request once its unique id used it
        self.first_req = first_req
        self.response = False             # rules run on the response: hdr() reads it
        self.reason = None                # http-response set-status ... reason
        self.log_level = None             # set-log-level ("silent": no log line)
        self.moved = 0                    # MOVED_* bits: what the loop must apply
        self.tos = -1                     # set-tos / set-mark on the client connection
        self.mark = -1
        self.hints = None                 # early-hint: [(run, [(name, value)])] to send
        self.timeout_server = 0           # set-timeout server|tunnel (ms, 0: the backend's)
        self.timeout_tunnel = 0
        self.no_l7_retry = False          # http-request disable-l7-retry
        self.prio_class = 0               # set-priority-class / -offset: the place in a queue
        self.prio_offset = 0
        self._path = None
        self._prefix_hits = None
        self.payload = None               # tcp-request content: the bytes buffered so far
        self.res_payload = None           # tcp-response content: the response's
        self.partial = False              # more bytes may come: a content fetch may wait
        self.may_change = False           # a content fetch said its answer may change

    @property
    def proxy_request(self) -> bool:
        """A request to a proxy (an absolute target or CONNECT's authority, neither "/"
        nor "*") on a frontend with option http-use-proxy-header: it authenticates with
        Proxy-Authorization and is challenged with 407 (HAProxy's TX_USE_PX_CONN)."""
        return self.fe in PROXY_HEADER_FRONTENDS and bool(self.url) and \
            self.url[:1] not in (b"/", b"*")

    @property
    def path(self) -> bytes:
        if self._path is None:
            self._path = split_target(self.url)[1].split(b"?", 1)[0]
        return self._path

    def header_list(self, response: bool) -> list:
        return (self.res_headers or []) if response else self.headers

    def header_values(self, name, response: bool = False) -> list:
        """All values of a header, split at commas (HAProxy's hdr())."""
        wanted = name.lower().encode("latin-1") if isinstance(name, str) else name.lower()
        values = []
        for key, value in self.header_list(response):
            if key == wanted:
                values += [v.strip(b" \t") for v in value.split(b",")]
        return values

    def full_header_values(self, name, response: bool = False) -> list:
        wanted = name.lower().encode("latin-1") if isinstance(name, str) else name.lower()
        return [v.strip(b" \t") for k, v in self.header_list(response) if k == wanted]

    def url_param(self, name, delimiter: bytes = b"&") -> list:
        """Values of a query parameter (every one without a name), raw: HAProxy's
        url_param does not decode them.  Parameters end at '&', ';' or ``delimiter``."""
        wanted = name.encode("latin-1") if isinstance(name, str) else name
        _, sep, query = self.url.partition(b"?")
        if not sep:
            return []
        out = []
        for part in re.split(b"[&;" + re.escape(delimiter) + b"]", query):
            key, sep, value = part.partition(b"=")
            if sep and (not wanted or key == wanted):
                out.append(value)
        return out

    def get_var(self, name: str):
        """A variable's sample, or None; ``name`` is ``scope.name``."""
        if name.startswith("sess."):
            return self.sess_vars.get(name) if self.sess_vars is not None else None
        if name.startswith("proc."):
            return PROC_VARS.get(name)
        if name[:4] == ("req." if self.res_scope else "res."):
            return None                   # not the scope of this phase, as in HAProxy
        return self.vars.get(name) if self.vars is not None else None

    def set_var(self, name: str, value) -> None:
        if LIMITS.on:
            self._set_counted(name, value)
        elif name.startswith("sess."):
            if self.sess_vars is None:
                self.sess_vars = {}
            self.sess_vars[name] = value
        elif name.startswith("proc."):
            PROC_VARS[name] = value
        elif name[:4] != ("req." if self.res_scope else "res."):
            if self.vars is None:
                self.vars = {}
            self.vars[name] = value

    def unset_var(self, name: str) -> None:
        store = self._store(name, False)
        if store and name in store:
            old = store.pop(name)
            if LIMITS.on:
                self._count(name, store, -VAR_SIZE - sample_size(old))

    def enter_response_scope(self) -> None:
        """The request's req. variables go, res. ones may be set: HAProxy does it once the
        server is to be chosen (after the request rules), or before http-after-response."""
        if self.res_scope:
            return
        self.res_scope = True
        if self.vars:
            for name in [n for n in self.vars if n.startswith("req.")]:
                self.unset_var(name)

    # -- tune.vars.* limits ----------------------------------------------------------------
    def _store(self, name: str, create: bool):
        if name.startswith("sess."):
            if self.sess_vars is None and create:
                self.sess_vars = var_store()
            return self.sess_vars
        if name.startswith("proc."):
            return PROC_VARS
        if name[:4] == ("req." if self.res_scope else "res."):
            return None
        if self.vars is None and create:
            self.vars = var_store()
            if isinstance(self.vars, CountedVars):
                if self.sess_vars is None:
                    self.sess_vars = var_store()
                self.vars.outer = self.sess_vars
        return self.vars

    def _set_counted(self, name: str, value) -> None:
        """set-var as HAProxy accounts it: a new variable costs its entry, then a string
        its bytes; a limit reached leaves a new variable out, and a string that does not
        fit turns the variable into a boolean (HAProxy's value is undefined then)."""
        store = self._store(name, True)
        if store is None:
            return
        old = store.get(name, _MISSING)
        if old is _MISSING:
            if not self._room(name, store, VAR_SIZE):
                return
            self._count(name, store, VAR_SIZE)
        else:
            self._count(name, store, -sample_size(old))
        need = sample_size(value)
        if need and not self._room(name, store, need):
            store[name] = False
            return
        self._count(name, store, need)
        store[name] = value

    def _room(self, name: str, store, size: int) -> bool:
        """Whether ``size`` more bytes fit each limit from the variable's scope out."""
        scope = name[:4]
        if scope == "proc":
            pass
        elif scope == "sess":
            if LIMITS.sess and getattr(store, "size", 0) + size > LIMITS.sess:
                return False
        else:
            if scope in ("req.", "res.") and LIMITS.reqres and store.reqres + size > LIMITS.reqres:
                return False
            if LIMITS.txn and store.size + size > LIMITS.txn:
                return False
            outer = store.outer
            if LIMITS.sess and outer is not None and outer.size + size > LIMITS.sess:
                return False
        for limit in (LIMITS.proc, LIMITS.global_):
            if limit and USAGE[0] + size > limit:
                return False
        return True

    def _count(self, name: str, store, size: int) -> None:
        scope = name[:4]
        USAGE[0] += size
        if scope == "proc":
            return
        if isinstance(store, CountedVars):
            store.size += size
            if scope in ("req.", "res."):
                store.reqres += size
            if store.outer is not None:
                store.outer.size += size


# HAProxy 2.6 counts each variable as its ``struct var`` (80 bytes on 64-bit Linux, measured
# with Debian's haproxy) plus a string's or binary's bytes
VAR_SIZE = 80
_MISSING = object()


def sample_size(value) -> int:
    return len(value) if isinstance(value, (bytes, bytearray)) else 0


class VarLimits:
    """tune.vars.*-max-size (0: no limit), set once per worker."""
    __slots__ = ("global_", "proc", "sess", "txn", "reqres", "on")

    def __init__(self):
        self.set(0, 0, 0, 0, 0)

    def set(self, global_: int, proc: int, sess: int, txn: int, reqres: int) -> None:
        self.global_, self.proc, self.sess, self.txn, self.reqres = \
            global_, proc, sess, txn, reqres
        self.on = bool(global_ or proc or sess or txn or reqres)


LIMITS = VarLimits()
# the bytes of every live variable of this worker (the proc and global limits')
USAGE = [0]


class CountedVars(dict):
    """A scope's variables under tune.vars.* limits.  ``size``: the bytes counted for this
    scope and those inside it (a session's includes its transactions' while they live),
    ``reqres`` the req./res. part; given back when the store goes."""
    __slots__ = ("size", "reqres", "outer")

    def __init__(self):
        super().__init__()
        self.size = self.reqres = 0
        self.outer = None

    def __del__(self):
        USAGE[0] -= self.size
        if self.outer is not None:
            self.outer.size -= self.size


def var_store():
    """A new scope's variables: a plain dict unless tune.vars.* limits are set."""
    return CountedVars() if LIMITS.on else {}


MOVED_SRC, MOVED_DST, MOVED_SOCKET, MOVED_TIMEOUT, MOVED_PRIORITY = 1, 2, 4, 8, 16

# "proc." variables: this worker process's (HAProxy's are the process's; fastlb runs one
# process per worker, so each worker has its own).
PROC_VARS: dict = {}
# the frontends with option http-use-proxy-header (their indexes), set by the worker
PROXY_HEADER_FRONTENDS: set = set()
