"""Command line, HAProxy-compatible where the flag exists in HAProxy.

    fastlb -f <file|dir> [-f ...] [-n <workers>] [-c | -cc <cond>] [-d | -dD | -D] [-p <pidfile>] [-W]
           [-S <bind>[,<opts>]] [-x <socket>] [-sf|-st <pid>...] [-L <name>] [-q] [-v | -vv]
"""
from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass, field

from . import HAPROXY_VERSION, __version__
from .boot import (PROGRAM, compile_config, config_message, has_listener, load, prepare_listeners,
                   worker_count)
from .config.conditions import ConditionError, evaluate, feature_list
from .config.tokenizer import TokenizeError, tokenize
USAGE = f"""Usage : {PROGRAM} [-f <cfgfile|cfgdir>]* [ -vdVD ] [ -n <workers> ] [ -p <pidfile> ]
        -v displays version ; -vv shows known build options.
        -d enters debug mode (foreground, the started process stays the master).
        -D goes daemon ; -W master-worker mode (always on in {PROGRAM}).
        -Ws master-worker mode with systemd notify support ($NOTIFY_SOCKET).
        -n sets the number of worker processes (default: nbthread, else CPU count).
        -c check mode : only check config files and exit
        -cc check condition : evaluate a condition and exit (0 true, 1 false, 2 error)
        -dD diagnostic mode : also write the configuration's .diag messages
        -p writes the master's pid to <pidfile>
        -S <bind>[,<opts>] binds the master CLI (show proc, reload, @<n> <command>)
        -x <unix_socket> takes the listening sockets from an old process's stats socket
        -sf/-st [pid ]* finishes/terminates old pids once the new workers serve
        -L sets the local peer name (accepted, unused)
        -q quiet mode : don't display messages
"""


class UsageError(Exception):
    pass


@dataclass
class Options:
    files: list = field(default_factory=list)
    workers: int | None = None
    check: bool = False
    condition: str | None = None        # -cc
    diag: bool = False                  # -dD
    foreground: bool = False
    daemon: bool = False
    pidfile: str | None = None
    quiet: bool = False
    systemd: bool = False               # -Ws: sd_notify(3) to $NOTIFY_SOCKET, foreground
    version: int = 0
    master_sockets: list = field(default_factory=list)
    fetch_from: str | None = None       # -x
    old_pids: list = field(default_factory=list)
    old_signal: str | None = None       # "sf" (soft) or "st" (terminate)


def parse_args(argv: list[str]) -> Options:
    opts = Options()
    args = list(argv)

    def value(flag):
        if not args:
            raise UsageError(f"option '{flag}' expects an argument")
        return args.pop(0)

    while args:
        arg = args.pop(0)
        if arg == "-f":
            opts.files.append(value(arg))
        elif arg == "-n":
            text = value(arg)
            if not text.isdigit() or int(text) < 1:
                raise UsageError("'-n' expects a positive number of workers")
            opts.workers = int(text)
        elif arg == "-c":
            opts.check = True
        elif arg == "-cc":
            opts.condition = value(arg)
        elif arg == "-dD":
            opts.diag = True
        elif arg in ("-d", "-db"):
            opts.foreground = True
        elif arg == "-D":
            opts.daemon = True
        elif arg == "-p":
            opts.pidfile = value(arg)
        elif arg == "-W":
            pass  # master-worker is the only mode
        elif arg == "-Ws":
            opts.systemd = opts.foreground = True   # as HAProxy: -Ws stays in the foreground
        elif arg == "-L":
            value(arg)
        elif arg == "-q":
            opts.quiet = True
        elif arg == "-v":
            opts.version = max(opts.version, 1)
        elif arg == "-vv":
            opts.version = 2
        elif arg == "-S":
            opts.master_sockets.append(value(arg))
        elif arg == "-x":
            opts.fetch_from = value(arg)
        elif arg in ("-sf", "-st"):
            opts.old_signal = arg[1:]
            while args and args[0].isdigit():   # HAProxy: the pids run to the next option
                opts.old_pids.append(int(args.pop(0)))
        elif arg in ("-C", "-N", "-m"):
            raise UsageError(f"option '{arg}' is not supported by {PROGRAM} yet")
        elif arg.startswith("-"):
            raise UsageError(f"unknown option '{arg}'")
        else:
            opts.files.append(arg)  # HAProxy also takes trailing config file names
    return opts


def print_version(level: int) -> None:
    print(f"{PROGRAM} version {__version__} - HAProxy-compatible load balancer "
          f"(configuration reference: HAProxy {HAPROXY_VERSION})")
    if level > 1:
        try:
            from .loop.core import BUILT_WITH_CYTHON as cython_version
        except ImportError:
            cython_version = "(compiled core missing)"
        print(f"Python {sys.version.split()[0]}, built with Cython {cython_version}")
        print("HTTP/1 parser : strict, in C (fastlb/http/framing.pxd)")
        print("Event loop : epoll (compiled worker loop), SO_REUSEPORT listeners")
        print(f"\nFeature list : {feature_list()}")


def check_condition(text: str) -> int:
    """-cc: 0 if the condition is true, 1 if false, 2 if it cannot be evaluated, with
    haproxy -cc's messages.  Its words are read as a configuration line's (quotes,
    escapes, "$VAR"), but '#' starts no comment, then joined by single spaces."""
    try:
        words = tokenize(text, comments=False)
    except TokenizeError as exc:
        reason = str(exc)
        if reason.startswith("unmatched quote"):
            reason = "Unmatched quote"
        elif "\\x" in reason:
            reason = "Truncated or invalid hexadecimal sequence"
        config_message("ALERT", f"Syntax Error in condition: {reason}.")
        return 2
    try:
        return 0 if evaluate(" ".join(words)) else 1
    except ConditionError as exc:
        config_message("ALERT", f"Failed to evaluate condition: {exc}")
        return 2


def daemonize() -> None:
    """Detach from the terminal; the surviving grandchild becomes the master."""
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return start(argv)
    except Exception as exc:  # noqa: BLE001 - a start-up failure is an ALERT and exit 1
        sys.stderr.write(f"[ALERT]    ({os.getpid()}) : [{PROGRAM}.main()] "
                         f"{exc.__class__.__name__}: {exc}. Exiting.\n")
        return 1


def start(argv: list[str]) -> int:
    try:
        opts = parse_args(argv)
    except UsageError as exc:
        sys.stderr.write(f"[ALERT]    ({os.getpid()}) : {exc}\n{USAGE}")
        return 1
    if opts.version:
        print_version(opts.version)
        return 0
    if opts.condition is not None:
        return check_condition(opts.condition)
    if not opts.files:
        sys.stderr.write(USAGE)
        return 1

    loaded = load(opts.files, opts.quiet, opts.diag, opts.workers)
    if loaded is None:
        return 1
    config, warnings = loaded
    quiet = opts.quiet or config.global_.quiet
    if opts.check:
        if warnings and not quiet:
            print("Warnings were found.")
        # -q (or global "quiet") leaves only the exit status, as haproxy -c -q does
        if not has_listener(config):
            if not quiet:
                print("Configuration file has no error but will not start (no listener) "
                      "=> exit(2).")
            return 2
        if not quiet:
            print("Configuration file is valid")
        return 0
    try:
        tables = compile_config(config)     # the first use of the compiled extensions
        if tables is None:
            return 1
        from .master import Master, alert, warning
    except ImportError as exc:
        sys.stderr.write(f"[ALERT]    ({os.getpid()}) : cannot load fastlb's compiled core ({exc}).\n"
                         "   | Install fastlb with 'pip install .', or build it in place with\n"
                         "   | 'python setup.py build_ext --inplace'.\n")
        return 1
    from .runtime.listeners import ListenerPool
    from .runtime.process import set_fd_limit
    from .control.master_cli import MasterCliError, parse_master_socket

    try:
        master_sockets = [parse_master_socket(text) for text in opts.master_sockets]
    except (MasterCliError, ValueError) as exc:
        alert(str(exc))
        return 1
    limit_error = set_fd_limit(tables)
    if limit_error and limit_error[0] == "ALERT":
        alert(limit_error[1])
        return 1
    if limit_error:
        warning(limit_error[1])
    pool = ListenerPool()
    source = opts.fetch_from or handover_socket(config, opts)
    if source:
        from .control.server import fetch_listeners
        try:
            pool.adopt(*fetch_listeners(source))
        except (OSError, ValueError) as exc:
            if opts.fetch_from:          # asked for explicitly: HAProxy gives up too
                alert(f"Failed to get the sockets from the old process! ({exc})")
                return 1
    workers = worker_count(opts.workers, config)
    from .control.server import bind_all
    # every socket is bound before a daemon forks, so that each failure is reported here
    # and exits 1, as HAProxy's protocol_bind_all()
    listeners_ok = prepare_listeners(tables, pool, workers)
    stats, stats_errors = bind_all(config.global_.stats_sockets, "frontend GLOBAL")
    masters, master_errors = bind_all(master_sockets, "proxy MASTER")
    for error in stats_errors + master_errors:
        alert(error)
    if not listeners_ok or stats_errors or master_errors:
        alert(f"[{PROGRAM}.main()] Some protocols failed to start their listeners! Exiting.")
        return 1
    # sockets handed over for addresses or worker slots we do not serve: closed now,
    # else the kernel would queue connections on them that nobody accepts
    pool.keep_only(tables, workers)
    pidfile = opts.pidfile or config.global_.pidfile
    pid_fd = -1
    if pidfile:
        try:                             # created before the fork, written after it
            pid_fd = os.open(pidfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                             0o644)
        except OSError:
            alert(f"[{PROGRAM}.main()] Cannot create pidfile {pidfile}")
            return 1
    if (opts.daemon or config.global_.daemon) and not opts.foreground:
        daemonize()
    if pid_fd >= 0:
        os.write(pid_fd, f"{os.getpid()}\n".encode())
        os.close(pid_fd)
    notifier = None
    if opts.systemd:
        from .control.notify import Notifier
        notifier = Notifier.from_environment()
    handover = None
    if opts.old_pids:
        handover = (signal.SIGUSR1 if opts.old_signal == "sf" else signal.SIGTERM,
                    opts.old_pids)
    try:
        return Master(tables, opts.files, opts.workers, argv, pool, PROGRAM, quiet,
                      handover=handover, master_cli=master_sockets, notifier=notifier,
                      bound=(stats, masters)).run()
    finally:
        if pidfile:
            try:
                with open(pidfile, encoding="ascii") as handle:
                    mine = handle.read().strip() == str(os.getpid())
                if mine:                     # a newer process may own the file by now
                    os.unlink(pidfile)
            except OSError:
                pass


def handover_socket(config, opts) -> str | None:
    """With -sf/-st and no -x, the new configuration's first UNIX stats socket with
    ``expose-fd listeners`` (it is still the old process's until we bind it)."""
    if not opts.old_pids:
        return None
    for spec in config.global_.stats_sockets:
        if spec.expose_fd and spec.path and os.path.exists(spec.path):
            return spec.path
    return None


if __name__ == "__main__":
    sys.exit(main())
