"""Process hygiene: descriptor limits (master), CPU pinning, chroot and privilege drop
(each worker and the health checker, after they hold their sockets).

The master keeps its privileges, as HAProxy's master does: it must bind new addresses
and re-read the configuration at reload.  Only the processes that touch traffic drop them.
"""
from __future__ import annotations

import os
import resource
import signal
import time

FD_MARGIN = 16      # pipes, the epoll descriptor, logs, the shared memory and the like


def needed_fds(tables) -> int:
    """What ``maxconn`` implies: a client and a server side per connection, plus listeners
    and health checks (HAProxy's maxsock, near enough)."""
    maxconn = tables.config.global_.maxconn
    if not maxconn:
        return 0
    listeners = sum(len(fe.listeners) for fe in tables.frontends)
    return 2 * maxconn + listeners + tables.nservers + FD_MARGIN


def set_fd_limit(tables) -> tuple[str, str] | None:
    """Set RLIMIT_NOFILE to ``ulimit-n``, else to what ``maxconn`` needs, else raise the soft
    limit to the hard one, never above ``fd-hard-limit``.  A limit that cannot be had is
    HAProxy's ("ALERT", text) under strict-limits (the default: the start stops), else its
    ("WARNING", text) once the most that can be had is set."""
    g = tables.config.global_
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    def capped(value: int) -> int:
        if g.fd_hard_limit and (value == resource.RLIM_INFINITY or value > g.fd_hard_limit):
            return g.fd_hard_limit
        return value

    target = g.ulimit_n or needed_fds(tables)
    best = capped(hard)
    if not target:
        if best != resource.RLIM_INFINITY and best != soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (best, hard))
        return None
    if capped(target) == target:
        for limits in ((target, target), (target, hard)):
            if hard != resource.RLIM_INFINITY and limits[1] < limits[0]:
                continue
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, limits)
                return None
            except (ValueError, OSError):
                continue
    if g.strict_limits:
        return "ALERT", f"[fastlb.main()] Cannot raise FD limit to {target}, limit is {capped(soft)}."
    if best != resource.RLIM_INFINITY:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (best, hard))
        except (ValueError, OSError):
            pass
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if g.ulimit_n:
        g.ulimit_n = soft           # what the workers' maxconn and the statistics go by
    return "WARNING", f"[fastlb.main()] Cannot raise FD limit to {target}, limit is {soft}."


def set_dumpable(config) -> None:
    """``set-dumpable``: core dumps back on after a credentials change, and no file or core
    size limit below the hard one (as HAProxy tries)."""
    if not config.global_.set_dumpable:
        return
    import ctypes
    for limit in (resource.RLIMIT_CORE, resource.RLIMIT_FSIZE):
        hard = resource.getrlimit(limit)[1]
        resource.setrlimit(limit, (hard, hard))
    ctypes.CDLL(None, use_errno=True).prctl(4, 1, 0, 0, 0)      # PR_SET_DUMPABLE


def pin_cpus(config, worker: int) -> None:
    """``cpu-map``: worker N (0-based) runs on the CPUs mapped to thread N + 1."""
    cpus = config.global_.cpu_map.get(worker + 1)
    if cpus:
        os.sched_setaffinity(0, cpus)


def forbid_new_processes(config) -> None:
    """As HAProxy's workers once they serve: no new process or thread (RLIMIT_NPROC 0,
    which binds every user but root) unless ``insecure-fork-wanted``, and no privilege
    gained through a setuid program unless ``insecure-setuid-wanted``: a flaw exploited
    in a worker can then start nothing. A failure is warned about in HAProxy's words."""
    from ..loop.core import set_no_new_privileges
    g = config.global_
    if not g.insecure_setuid_wanted:
        try:
            set_no_new_privileges()
        except OSError:
            _warn("Failed to disable setuid, please report to developers with detailed "
                  "information about your operating system. You can silence this "
                  "warning by adding 'insecure-setuid-wanted' in the 'global' section.")
    if not g.insecure_fork_wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
        except (OSError, ValueError):
            _warn("Failed to disable forks, please report to developers with detailed "
                  "information about your operating system. You can silence this "
                  "warning by adding 'insecure-fork-wanted' in the 'global' section.")


def _warn(text: str) -> None:
    import sys
    print(f"[WARNING]  ({os.getpid()}) : {text}", file=sys.stderr, flush=True)


def confine(config) -> None:
    """``chroot``, then ``group``/``gid`` and ``user``/``uid``; a failure is fatal to the
    process (the master reports its exit), as running with more rights than asked is."""
    g = config.global_
    if g.chroot:
        time.localtime()            # load the time zone while /etc is still visible
        os.chroot(g.chroot)
        os.chdir("/")
    if g.gid is not None:
        os.setgroups([])
        os.setgid(g.gid)
    if g.uid is not None:
        os.setuid(g.uid)
    if g.uid is not None or g.gid is not None:
        # Linux forgets the parent-death signal when credentials change: ask again, so
        # that a worker never outlives its master
        from ..loop.core import set_parent_death_signal
        set_parent_death_signal(signal.SIGTERM)
    set_dumpable(config)
