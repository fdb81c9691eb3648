"""One worker process: bind the listeners, build the Cython loop from the tables, serve.

Runs in the child right after the master forks it.
"""
from __future__ import annotations

import os
import signal
import sys
import traceback  # noqa: F401 - used by the loop after a chroot hides the library

from setproctitle import setproctitle

from .. import _core
from ..logformat import (HTTPLOG, HTTPLOG_NO_CAPTURE, TCPLOG, compile_format, http_fields,
                         render, tcp_fields)
from ..logsink import INFO, LogSink, format_address
from .listeners import inherited_socket
from .process import confine, pin_cpus
from ..limits import default_maxconn
from ..http.cookies import Persistence
from ..shm import SharedState
from ..stats.errors import ErrorCapture
from .tables import LOG_NONE, RuntimeTables, build_response_editor

def default_format(proxy) -> str:
    """option httplog (with or without captures) in mode http, else option tcplog."""
    if proxy.mode != "http":
        return TCPLOG
    return HTTPLOG if proxy.captures_req or proxy.captures_rsp else HTTPLOG_NO_CAPTURE


class TrafficLogger:
    """Formats HAProxy's tcplog / connect lines for the sessions a worker ends."""

    def __init__(self, tables: RuntimeTables, log_pid: int, default_tag: str):
        g = tables.config.global_
        self.tables = tables
        self.sinks = [LogSink(fe.proxy.logs, fe.proxy.log_tag or g.log_tag or default_tag,
                              log_pid, g.log_send_hostname) for fe in tables.frontends]
        self.pid = log_pid
        self.formats = [compile_format(fe.proxy.log_format or default_format(fe.proxy))
                        for fe in tables.frontends]

    def session_end(self, fe, be, srv, addr, accept_ms, tw, tc, tt, bytes_out, term,
                    ac, fc, bc, sc, retries, redispatched):
        """HAProxy's tcplog line, or the frontend's log-format."""
        t = self.tables
        fields = tcp_fields(addr, t.frontends[fe].proxy.name, t.backend_name(fe, be),
                            t.server_name(be, srv), accept_ms, (tw, tc, tt), bytes_out, term,
                            (ac, fc, bc, sc, f"{'+' if redispatched else ''}{retries}"), self.pid)
        self.sinks[fe].send(INFO, render(self.formats[fe], fields))

    def http_end(self, fe, be, srv, addr, start_ms, tr, tw, tc, tresp, ta, status, bytes_out,
                 term, ac, fc, bc, sc, retries, redispatched, request_line, captures):
        """HAProxy's httplog line, or the frontend's log-format (no cookie capture yet: "-")."""
        t = self.tables
        request = request_line.decode("latin-1") if request_line else "<BADREQ>"
        fields = http_fields(addr, t.frontends[fe].proxy.name, t.backend_name(fe, be),
                             t.server_name(be, srv), start_ms, (tr, tw, tc, tresp, ta), status,
                             bytes_out, term, (ac, fc, bc, sc,
                                                      f"{'+' if redispatched else ''}{retries}"),
                             request, captures, self.pid)
        self.sinks[fe].send(INFO, render(self.formats[fe], fields))

    def connect(self, fe, addr, port, http):
        proxy = self.tables.frontends[fe].proxy
        local = self._local_address(fe, port)
        self.sinks[fe].send(INFO, f"Connect from {format_address(addr)} to {local}:{port} "
                                  f"({proxy.name}/{'HTTP' if http else 'TCP'})")

    def _local_address(self, fe, port):
        for listener in self.tables.frontends[fe].listeners:
            if listener.port == port and listener.host not in ("0.0.0.0", "::"):
                return listener.host
        return "0.0.0.0"


HTTP_CLOSE_MODES = {"http-keep-alive": 0, "http-server-close": 1, "httpclose": 2}


def request_editor(proxy):
    """What the frontend adds to each forwarded request head, or None."""
    ff = proxy.options.forwardfor
    if proxy.mode != "http" or ff is None:
        return None
    import ipaddress
    header = ff.header.encode()

    def edit(out, headers, client_ip):
        if ff.if_none and any(name == header for name, _ in headers):
            return
        if ff.except_net is not None and ipaddress.ip_address(client_ip) in ff.except_net:
            return
        out += [header, b": ", client_ip.encode(), b"\r\n"]

    return edit


def run_worker(tables: RuntimeTables, shm: SharedState, worker_id: int, nworkers: int,
               master_pid: int, program: str, listen_sockets: dict) -> int:
    """Body of a worker process; returns its exit code.  ``listen_sockets`` maps each bound
    listener (by id) to this worker slot's socket, which the master keeps across reloads."""
    setproctitle(f"{program}: worker {worker_id + 1}/{nworkers}")
    _core.set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != master_pid:
        return 1  # the master died before we could ask to follow it
    g = tables.config.global_

    # the computed maxconn holds even when none is configured: past it, listeners pause and
    # clients wait in the kernel's backlog instead of every session failing for descriptors
    worker = _core.Worker(worker_id, nworkers, g.bufsize, shm, len(tables.frontends),
                          len(tables.backends), default_maxconn(tables.config))
    worker.head_limit = g.head_limit()
    for be in tables.backends:
        p = be.proxy
        t = p.timeouts
        cookie = None
        if p.cookie is not None and p.mode == "http":
            cookie = Persistence(p.cookie, [m.cookie if m else None for m in be.server_models])
        worker.add_backend(be.servers, be.algorithm, be.options, be.lookup_builder(shm),
                           t.connect or 0, t.server or 0,
                           t.server_fin or 0, t.tunnel or 0, t.queue or t.connect or 0, p.retries,
                           p.options.redispatch or 0, int(p.options.srvtcpka), be.index,
                           be.first_server_shm, http=int(p.mode == "http"),
                           error_pages=p.errorfiles,
                           response_editor=build_response_editor(p, tables.applets),
                           http_close=HTTP_CLOSE_MODES[p.options.http_mode],
                           request_rules=be.rules, cookie=cookie)
    for fe in tables.frontends:
        p = fe.proxy
        t = p.timeouts
        worker.add_frontend(fe.backend, t.client or 0, t.client_fin or 0,
                            int(p.options.clitcpka), fe.log_mode, int(p.options.dontlognull),
                            fe.index, http=int(p.mode == "http"),
                            t_http_request=t.http_request or 0,
                            t_http_keep_alive=t.http_keep_alive or 0,
                            error_pages=p.errorfiles, request_editor=request_editor(p),
                            router=fe.router,
                            response_editor=build_response_editor(p, tables.applets) if p.kind != "listen" else None,
                            http_close=HTTP_CLOSE_MODES[p.options.http_mode],
                            captures=(p.captures_req or None, p.captures_rsp or None))
        for listener in fe.listeners:
            if listener.fd is not None:
                sock = inherited_socket(listener)
            else:
                sock = listen_sockets[id(listener)]
            port = sock.getsockname()[1]
            # the loop owns the descriptor from now on (it closes it at a soft stop)
            worker.add_listener(sock.detach(), fe.index, port)

    worker.set_error_capture(ErrorCapture(shm, worker_id).record)
    if any(fe.log_mode != LOG_NONE for fe in tables.frontends):
        logger = TrafficLogger(tables, master_pid, program)
        worker.set_log_callbacks(logger.session_end, logger.connect, logger.http_end)

    read_fd, write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    worker.set_wakeup_fd(read_fd)
    signal.signal(signal.SIGTERM, lambda *_: worker.hard_stop())
    signal.signal(signal.SIGINT, lambda *_: worker.hard_stop())
    signal.signal(signal.SIGUSR1, lambda *_: worker.soft_stop(g.hard_stop_after or 0))
    for signum in (signal.SIGHUP, signal.SIGUSR2, signal.SIGTTOU, signal.SIGTTIN):
        signal.signal(signum, signal.SIG_IGN)  # reload/pause belong to the master
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)

    pin_cpus(tables.config, worker_id)
    confine(tables.config)          # chroot and privilege drop: the sockets are ours already
    shm.set_worker_pid(worker_id, os.getpid())   # last: the master reads it as "serving"
    worker.run()
    sys.stdout.flush()
    return 0
