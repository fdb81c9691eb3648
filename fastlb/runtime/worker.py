"""One worker process: bind the listeners, build the Cython loop from the tables, serve.

Runs in the child right after the master forks it.
"""
from __future__ import annotations

import os
import signal
import socket
import sys
import traceback  # noqa: F401 - used by the loop after a chroot hides the library

from setproctitle import setproctitle

from ..loop import core as loop
from ..logformat import format_accept_date, http_fields, next_request, render, tcp_fields
from ..logsink import ALERT, INFO, LogSink, format_address
from .http_rules import WORKER_ID
from .listeners import inherited_socket
from .process import confine, forbid_new_processes, pin_cpus
from ..limits import default_maxconn
from ..sample.stream import LIMITS, PROC_VARS, PROXY_HEADER_FRONTENDS, USAGE, VAR_SIZE, \
    sample_size
from ..shm import SharedState
from ..stats.errors import ErrorCapture
from .tables import LOG_NONE, RuntimeTables

# set-log-level's names -> syslog severities
SEVERITIES = {"emerg": 0, "alert": 1, "crit": 2, "err": 3, "warning": 4, "notice": 5,
              "info": 6, "debug": 7}


class TrafficLogger:
    """Formats HAProxy's tcplog / httplog / connect lines for the sessions a worker ends,
    from the loop's LogRecord (fastlb/loop/logging.pxd)."""

    def __init__(self, tables: RuntimeTables, log_pid: int, default_tag: str):
        g = tables.config.global_
        self.tables = tables
        self.sinks = [LogSink(fe.proxy.logs, fe.proxy.log_tag or g.log_tag or default_tag,
                              log_pid, g.log_send_hostname) for fe in tables.frontends]
        self.pid = log_pid
        self.log_counts = [0] * len(tables.frontends)    # %lc: lines each frontend logged
        # per loop listener (the order run_worker adds them): its frontend and its name in
        # HAProxy's logs, the bind's "name", else its number in the frontend
        self.listener_names = [(fe.index, listener.name or str(i + 1))
                               for fe in tables.frontends
                               for i, listener in enumerate(fe.listeners)]

    def session_end(self, rec):
        """HAProxy's tcplog line, or the frontend's log-format."""
        t, fe = self.tables, rec.frontend
        fields = tcp_fields(rec.client, t.frontends[fe].proxy.name,
                            t.backend_name(fe, rec.backend), t.server_name(rec.backend, rec.server),
                            rec.start_ms, (rec.t_queue, rec.t_connect, rec.t_total),
                            rec.bytes_out, rec.term, self.counts(rec), self.pid)
        level = self.level(fe, rec, False)
        if level is not None:
            self._extra(fields, rec)
            self._send(fe, level, fields)

    def level(self, fe, rec, http):
        """info, or err for a session that went wrong (option log-separate-errors); None
        when option dontlog-normal keeps a normal one out (HAProxy's rules: an abort or
        timeout, a retry, a redispatch, a 5xx)."""
        options = self.tables.frontends[fe].proxy.options
        if not (options.log_separate_errors or options.dontlog_normal):
            return INFO
        err = rec.redispatched or rec.term[:1] not in ("-", "L") or \
            (rec.term[:1] == "-" and rec.retries > 0) or (http and rec.status >= 500)
        if not err:
            return None if options.dontlog_normal else INFO
        return SEVERITIES["err"] if options.log_separate_errors else INFO

    def http_end(self, rec):
        """HAProxy's httplog line, or the frontend's log-format."""
        t, fe = self.tables, rec.frontend
        request = rec.request_line.decode("latin-1") if rec.request_line else "<BADREQ>"
        request = request[:t.config.global_.logurilen]     # as HAProxy's uri capture
        fields = http_fields(rec.client, t.frontends[fe].proxy.name,
                             t.backend_name(fe, rec.backend),
                             t.server_name(rec.backend, rec.server), rec.start_ms,
                             (rec.t_request, rec.t_queue, rec.t_connect, rec.t_response,
                              rec.t_total), rec.status, rec.bytes_out, rec.term,
                             self.counts(rec), request, rec.captures, self.pid)
        level = self.level(fe, rec, True)
        if level is None:
            return
        stream = rec.stream
        if stream is not None and stream.log_level is not None:   # set-log-level
            if stream.log_level == "silent":
                return
            level = SEVERITIES[stream.log_level]
        self._extra(fields, rec)
        # a request that could not be parsed is a connection error to HAProxy (no stream):
        # its line is in the error-log-format when there is one
        self._send(fe, level, fields, error=not rec.request_line or
                   rec.request_line == b"<BADREQ>")

    def _send(self, fe, level, fields, error=False):
        table = self.tables.frontends[fe]
        sd = render(table.log_format_sd, fields) if table.log_format_sd is not None else "-"
        fmt = table.error_log_format if error and table.error_log_format is not None \
            else table.log_format
        self.sinks[fe].send(level, render(fmt, fields), sd)

    def _extra(self, fields, rec):
        """What a log-format may read past the fixed fields: the loop's record (addresses,
        %U, %Ti), %rt, %lc, %ID and the Stream of %[...]."""
        fields.rec = rec
        fields.logasap = rec.logasap
        fields.stream = stream = rec.stream
        fields.rt = stream.seq if stream is not None and stream.seq is not None \
            else next_request()
        fields.lc = self.log_counts[rec.frontend]
        self.log_counts[rec.frontend] += 1
        if stream is not None and stream.unique_id is not None:
            fields.unique_id = stream.unique_id.decode("latin-1")

    @staticmethod
    def counts(rec) -> tuple:
        """%ac %fc %bc %sc %rc"""
        return (rec.actconn, rec.feconn, rec.beconn, rec.srvconn,
                f"{'+' if rec.redispatched else ''}{rec.retries}")

    def connect(self, fe, addr, port, http):
        proxy = self.tables.frontends[fe].proxy
        local = self._local_address(fe, port)
        self.sinks[fe].send(INFO, f"Connect from {format_address(addr)} to {local}:{port} "
                                  f"({proxy.name}/{'HTTP' if http else 'TCP'})")

    def handshake_failed(self, listener, addr, accept_ms, message, rec=None):
        """HAProxy's line for a connection closed before it became a session:
        ``ip:port [date] frontend/<bind name or id>: message``, or the error-log-format."""
        fe, name = self.listener_names[listener]
        table = self.tables.frontends[fe]
        if table.error_log_format is not None and rec is not None:
            proxy = table.proxy.name
            fields = http_fields(rec.client, proxy, proxy, "<NOSRV>", accept_ms,
                                 (-1, -1, -1, -1, rec.t_total), 0, 0, "PR--", self.counts(rec),
                                 "<BADREQ>", (None, None), self.pid)
            if not table.spec.http:
                fields = tcp_fields(rec.client, proxy, proxy, "<NOSRV>", accept_ms,
                                    (-1, -1, rec.t_total), 0, "PR", self.counts(rec), self.pid)
            self._extra(fields, rec)
            sd = render(table.log_format_sd, fields) if table.log_format_sd is not None else "-"
            self.sinks[fe].send(INFO, render(table.error_log_format, fields), sd)
            return
        self.sinks[fe].send(INFO, f"{format_address(addr)} [{format_accept_date(accept_ms)}] "
                                  f"{self.tables.frontends[fe].proxy.name}/{name}: {message}")

    def _local_address(self, fe, port):
        for listener in self.tables.frontends[fe].listeners:
            if listener.port == port and listener.host not in ("0.0.0.0", "::"):
                return listener.host
        return "0.0.0.0"


class CacheAlerts:
    """option checkcache's alert when it blocks a response: on stderr and to the backend's
    log targets, HAProxy's words."""

    def __init__(self, tables: RuntimeTables, log_pid: int, default_tag: str):
        g = tables.config.global_
        self.tables = tables
        self.sinks = {be.index: LogSink(be.proxy.logs, be.proxy.log_tag or g.log_tag or default_tag,
                                        log_pid, g.log_send_hostname)
                      for be in tables.backends if be.proxy.options.checkcache}

    def __call__(self, backend: int, server: int) -> None:
        table = self.tables.backends[backend]
        name = table.server_names[server] if 0 <= server < len(table.server_names) \
            else "<dispatch>"
        message = (f"Blocking cacheable cookie in response from instance {table.proxy.name}, "
                   f"server {name}.")
        sys.stderr.write(f"[ALERT]    ({os.getpid()}) : {message}\n")
        sink = self.sinks.get(backend)
        if sink:
            sink.send(ALERT, message)


def run_worker(tables: RuntimeTables, shm: SharedState, worker_id: int, nworkers: int,
               master_pid: int, program: str, listen_sockets: dict) -> int:
    """Body of a worker process; returns its exit code.  ``listen_sockets`` maps each bound
    listener (by id) to this worker slot's socket, which the master keeps across reloads."""
    setproctitle(f"{program}: worker {worker_id + 1}/{nworkers}")
    loop.set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != master_pid:
        return 1  # the master died before we could ask to follow it
    g = tables.config.global_
    WORKER_ID[0] = worker_id        # the thread fetch
    PROC_VARS.clear()               # the global section's set-var, nothing of the master's
    PROC_VARS.update(g.proc_vars)
    sizes = g.vars_max_size
    LIMITS.set(sizes.get("global", 0), sizes.get("proc", 0), sizes.get("sess", 0),
               sizes.get("txn", 0), sizes.get("reqres", 0))
    USAGE[0] = sum(VAR_SIZE + sample_size(value) for value in PROC_VARS.values())
    PROXY_HEADER_FRONTENDS.clear()
    PROXY_HEADER_FRONTENDS.update(fe.index for fe in tables.frontends
                                  if fe.proxy.options.http_use_proxy_header)

    # the computed maxconn holds even when none is configured: past it, listeners pause and
    # clients wait in the kernel's backlog instead of every session failing for descriptors
    worker = loop.Worker(worker_id, nworkers, g.bufsize, shm, len(tables.frontends),
                          len(tables.backends), default_maxconn(tables.config))
    worker.head_limit = g.head_limit()
    worker.set_buffer_limit(g.buffers_limit)
    loop.set_http_maxhdr(g.http_maxhdr)
    loop.set_h1_case_adjust(g.h1_case_adjust)
    worker.rcvbuf_server, worker.sndbuf_server = g.rcvbuf_server, g.sndbuf_server
    worker.busy_polling = g.busy_polling
    if g.maxaccept:
        worker.max_accept = g.maxaccept if g.maxaccept > 0 else 1 << 30
    if g.maxpollevents:
        worker.max_events = g.maxpollevents
    # maxpipes is the whole of fastlb's: each worker opens at most its share
    worker.set_splice_limits(g.pipesize, 0 if g.nosplice else
                             -(-g.maxpipes // nworkers) if g.maxpipes else -1)
    for be in tables.backends:
        worker.add_backend(be.spec, be.lookup_builder(shm))
    worker.set_rate_limits(g.maxconnrate, g.maxsessrate)
    slot = 0                    # each listener's place in the shared counts (bind maxconn)
    for fe in tables.frontends:
        worker.add_frontend(fe.spec)
        for listener in fe.listeners:
            if not listener.serves(worker_id):
                # bind ... thread names other workers: a closed place keeps the numbering
                worker.add_listener(-1, fe.index, listener.port, listener.accept_proxy,
                                    listener.id, listener.maxconn, slot)
                slot += 1
                continue
            if listener.fd is not None:
                sock = inherited_socket(listener)
            else:
                sock = listen_sockets[id(listener)]
            port = 0 if listener.family == socket.AF_UNIX else sock.getsockname()[1]
            if g.rcvbuf_client:      # accepted connections inherit the listener's sizes
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, g.rcvbuf_client)
            if g.sndbuf_client:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, g.sndbuf_client)
            # the loop owns the descriptor from now on (it closes it at a soft stop)
            worker.add_listener(sock.detach(), fe.index, port, listener.accept_proxy,
                                listener.id, listener.maxconn, slot, listener.proto == "none",
                                listener.sockpair, fe.proxy.options.socket_stats,
                                -1 if listener.cip_magic is None else listener.cip_magic)
            slot += 1

    worker.set_error_capture(ErrorCapture(shm, worker_id).record)
    if any(fe.log_mode != LOG_NONE for fe in tables.frontends):
        logger = TrafficLogger(tables, master_pid, program)
        worker.set_log_callbacks(logger.session_end, logger.connect, logger.http_end)
        worker.set_handshake_log(logger.handshake_failed)
    if any(be.proxy.options.checkcache for be in tables.backends):
        worker.set_cache_alert(CacheAlerts(tables, master_pid, program))

    read_fd, write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    worker.set_wakeup_fd(read_fd)
    status = [0]

    def interrupted(signum, _frame):
        status[0] = 128 + signum    # HAProxy's worker exits 130 after SIGINT, 143 after SIGTERM
        worker.hard_stop()

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGUSR1, lambda *_: worker.soft_stop(g.hard_stop_after or 0))
    for signum in (signal.SIGHUP, signal.SIGUSR2, signal.SIGTTOU, signal.SIGTTIN):
        signal.signal(signum, signal.SIG_IGN)  # reload/pause belong to the master
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)

    pin_cpus(tables.config, worker_id)
    confine(tables.config)          # chroot and privilege drop: the sockets are ours already
    forbid_new_processes(tables.config)
    shm.set_worker_pid(worker_id, os.getpid())   # last: the master reads it as "serving"
    worker.run()
    sys.stdout.flush()
    return status[0]
