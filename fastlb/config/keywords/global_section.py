"""Keywords of the ``global`` section (process settings, global logs, the stats socket)."""
from __future__ import annotations

import grp
import os
import pwd
import re
from typing import Optional

from .. import addresses
from ..model import StatsSocket
from ..units import parse_time_ms
from .arguments import c_atol, cli_bind_option, log_statement, non_negative_int, one_arg, positive_int
from .registry import GLOBAL, keyword


@keyword("log", sections=GLOBAL)
def log(parser, g, args, origin):
    log_statement(g.logs, args, in_global=True)


@keyword("unix-bind", sections=GLOBAL)
def unix_bind(parser, g, args, origin):
    """Defaults for the UNIX binds after it: a path prefix, their mode and owner."""
    from .proxy import unix_bind_option
    i = 0
    while i < len(args):
        option = args[i]
        if option not in ("prefix", "mode", "user", "uid", "group", "gid") or i + 1 >= len(args):
            raise ValueError("'unix-bind' expects any of 'prefix', 'mode', 'user', 'uid', "
                             "'group' and 'gid' followed by a value.")
        value = args[i + 1]
        if option == "prefix":
            g.unix_bind["prefix"] = value
        else:
            g.unix_bind["mode" if option == "mode" else "uid" if option in ("user", "uid")
                        else "gid"] = unix_bind_option(option, value, "unix-bind")
        i += 2


@keyword("setenv", sections=GLOBAL)
def setenv(parser, g, args, origin):
    """The process's environment, as HAProxy changes it while parsing: later lines'
    "${NAME}" and the env() fetch see it."""
    if len(args) != 2:
        raise ValueError("'setenv' expects a name and a value.")
    parser.env[args[0]] = args[1]


@keyword("presetenv", sections=GLOBAL)
def presetenv(parser, g, args, origin):
    if len(args) != 2:
        raise ValueError("'presetenv' expects a name and a value.")
    parser.env.setdefault(args[0], args[1])


@keyword("unsetenv", sections=GLOBAL)
def unsetenv(parser, g, args, origin):
    if not args:
        raise ValueError("'unsetenv' expects at least one variable name.")
    for name in args:
        parser.env.pop(name, None)


@keyword("resetenv", sections=GLOBAL)
def resetenv(parser, g, args, origin):
    """Every variable but the ones named goes."""
    for name in [n for n in parser.env if n not in args]:
        del parser.env[name]


@keyword("expose-experimental-directives", sections=GLOBAL)
def expose_experimental_directives(parser, g, args, origin):
    g.experimental = True


@keyword("tune.fd.edge-triggered", sections=GLOBAL)
def tune_fd_edge_triggered(parser, g, args, origin):
    """HAProxy's experimental edge-triggered polling: how fastlb's loop always polls
    (its session sockets are registered EPOLLET), so ``on`` is taken as it is and ``off``
    is warned about."""
    if not g.experimental:
        raise ValueError("'tune.fd.edge-triggered' directive is experimental, must be allowed "
                         "via a global 'expose-experimental-directives'")
    value = args[0] if args else ""
    if value not in ("on", "off"):
        raise ValueError(f"'tune.fd.edge-triggered' expects either 'on' or 'off' but got "
                         f"'{value}'.")
    if value == "off":
        parser.warn(origin, "'tune.fd.edge-triggered off' has no effect in fastlb (its loop "
                            "always polls edge-triggered, HAProxy's 'on').")


@keyword("maxconn", sections=GLOBAL)
def maxconn(parser, g, args, origin):
    g.maxconn = positive_int(args, "maxconn")


@keyword("maxconnrate", sections=GLOBAL)
def maxconnrate(parser, g, args, origin):
    g.maxconnrate = non_negative_int(args, "maxconnrate")


@keyword("maxsessrate", sections=GLOBAL)
def maxsessrate(parser, g, args, origin):
    g.maxsessrate = non_negative_int(args, "maxsessrate")


@keyword("default-path", sections=GLOBAL)
def default_path(parser, g, args, origin):
    """Where the relative file names of the lines after it are read from."""
    policy = args[0] if args else ""
    if policy not in ("current", "config", "parent", "origin"):
        raise ValueError(f"{'missing' if not policy else 'unsupported'} default-path mode "
                         f"'{policy}' for 'default-path', supported modes include 'current', "
                         "'config', 'parent', and 'origin'.")
    if policy == "origin" and (len(args) < 2 or not args[1]):
        raise ValueError("'default-path origin' expects a directory as an argument.")
    if len(args) > (2 if policy == "origin" else 1):
        raise ValueError(f"'default-path {policy}' : extra argument '{args[-1]}'.")
    parser.path_policy = (policy, args[1] if policy == "origin" else "")
    parser.path_base = parser.base_for(origin.file)


@keyword("set-var", sections=GLOBAL)
def set_var(parser, g, args, origin):
    _set_proc_var(g, "set-var", args, "a sample expression")


@keyword("set-var-fmt", sections=GLOBAL)
def set_var_fmt(parser, g, args, origin):
    _set_proc_var(g, "set-var-fmt", args, "a format string")


def _set_proc_var(g, what: str, args: list, value_kind: str) -> None:
    """A "proc." variable set once, now, from what needs no connection (constants, other
    variables, the clock): every worker of this configuration starts with it."""
    from ...sample import Context, SampleError, compile_format
    from ...sample.expr import compile_expr
    from ...sample.registry import VAR_NAME
    from ...sample.stream import PROC_VARS, Stream
    if len(args) != 2:
        raise ValueError(f"'{what}' requires a process-wide variable name ('proc.<name>') and "
                         f"{value_kind}.")
    name, text = args
    if not VAR_NAME.fullmatch(name):
        raise ValueError(f"invalid variable name '{name}'. A variable name must be start by "
                         "its scope. The scope can be 'proc', 'sess', 'txn', 'req', 'res' or "
                         "'check'")
    if not name.startswith("proc."):
        raise ValueError(f"'{what}': cannot set variable '{name}', only scope 'proc' is "
                         "permitted in the global section.")
    ctx = Context("global")
    try:
        compiled = compile_expr(text, ctx) if what == "set-var" else \
            compile_format(text, ctx, http=False)
    except SampleError as exc:
        raise ValueError(str(exc)) from None
    # evaluated against this configuration's variables only (a reload starts afresh)
    running = dict(PROC_VARS)
    PROC_VARS.clear()
    PROC_VARS.update(g.proc_vars)
    try:
        stream = Stream(b"", b"", [], "", 0, b"")
        value = compiled.one(stream) if what == "set-var" else compiled.render(stream)
    finally:
        PROC_VARS.clear()
        PROC_VARS.update(running)
    if value is not None:           # no sample: the variable is left as it was
        g.proc_vars[name] = value


@keyword("nbthread", sections=GLOBAL)
def nbthread(parser, g, args, origin):
    g.nbthread = positive_int(args, "nbthread")


@keyword("nbproc", sections=GLOBAL)
def nbproc(parser, g, args, origin):
    # HAProxy 2.5+ refuses it; fastlb's workers play the threads
    raise ValueError("nbproc is not supported any more since HAProxy 2.5. "
                     "fastlb's workers play HAProxy's threads: use 'nbthread' "
                     "or -n.")


@keyword("user", sections=GLOBAL)
def user(parser, g, args, origin):
    _identity(parser, g, "user", args)


@keyword("group", sections=GLOBAL)
def group(parser, g, args, origin):
    _identity(parser, g, "group", args)


@keyword("uid", sections=GLOBAL)
def uid(parser, g, args, origin):
    _identity(parser, g, "uid", args)


@keyword("gid", sections=GLOBAL)
def gid(parser, g, args, origin):
    _identity(parser, g, "gid", args)


def _identity(parser, g, keyword, args):
    """user/group take a name, uid/gid a number; resolved here, as HAProxy does."""
    value = one_arg(args, keyword)
    if keyword in ("uid", "gid"):
        number = int(value) if value.isdigit() else None
        if number is None:
            raise ValueError(f"'{keyword}' expects an integer argument.")
    else:
        try:
            number = (pwd.getpwnam(value).pw_uid if keyword == "user"
                      else grp.getgrnam(value).gr_gid)
        except KeyError:
            raise ValueError(f"cannot find {keyword} id for '{value}'") from None
    if keyword in ("user", "uid"):
        if g.uid is not None:
            parser.warnings.append(f"'{keyword}' : user/uid already specified. Continuing.")
        g.uid = number
    else:
        if g.gid is not None:
            parser.warnings.append(f"'{keyword}' : group/gid already specified. Continuing.")
        g.gid = number


@keyword("chroot", sections=GLOBAL)
def chroot(parser, g, args, origin):
    g.chroot = one_arg(args, "chroot")
    if not os.path.isdir(g.chroot):
        raise ValueError(f"'chroot' : '{g.chroot}' is not a directory.")


@keyword("cpu-map", sections=GLOBAL)
def cpu_map(parser, g, args, origin):
    """cpu-map [auto:]<process>[/<threads>] <cpu-set>...: fastlb's workers are HAProxy's
    threads, so "1/3 2" pins worker 3 to CPU 2; "auto:" spreads the workers over the CPUs."""
    if len(args) < 2:
        raise ValueError("'cpu-map' expects a process/thread set and a CPU set.")
    spec, auto = args[0], args[0].startswith("auto:")
    if auto:
        spec = spec[5:]
    process, _, threads = spec.partition("/")
    if process not in ("1", "all", "odd", "even") and not (process == "1-1"):
        raise ValueError(f"'cpu-map' : invalid process set '{process}' (fastlb runs one "
                         "process: use 1 or all).")
    workers = _number_set(threads or "all", "thread", 64)
    cpus = set()
    for word in args[1:]:
        cpus |= _number_set(word, "CPU", os.cpu_count() or 1, zero=True)
    if auto:
        if threads not in ("", "all") and len(workers) != len(cpus):
            raise ValueError("'cpu-map' : with 'auto:', the thread and CPU sets must "
                             "have the same size.")
        for worker, cpu in zip(sorted(workers), sorted(cpus)):
            g.cpu_map[worker] = {cpu}
    else:
        for worker in workers:
            g.cpu_map[worker] = set(cpus)


def _number_set(text, what, limit, zero=False):
    if text == "all":
        return set(range(0 if zero else 1, limit + (0 if zero else 1)))
    if text in ("odd", "even"):
        start = 1 if text == "odd" else 2
        return set(range(start, limit + 1, 2))
    out = set()
    for part in text.split(","):
        low, sep, high = part.partition("-")
        if not low.isdigit() or (sep and not high.isdigit()):
            raise ValueError(f"'cpu-map' : invalid {what} set '{text}'.")
        lo, hi = int(low), int(high) if sep else int(low)
        if lo > hi or (not zero and lo < 1):
            raise ValueError(f"'cpu-map' : invalid {what} range '{part}'.")
        out |= set(range(lo, hi + 1))
    return out


@keyword("daemon", sections=GLOBAL)
def daemon(parser, g, args, origin):
    g.daemon = True


@keyword("pidfile", sections=GLOBAL)
def pidfile(parser, g, args, origin):
    g.pidfile = one_arg(args, "pidfile")


@keyword("quiet", sections=GLOBAL)
def quiet(parser, g, args, origin):
    g.quiet = True


@keyword("tune.maxrewrite", sections=GLOBAL)
def tune_maxrewrite(parser, g, args, origin):
    g.maxrewrite = positive_int(args, "tune.maxrewrite", size=True)


@keyword("tune.bufsize", sections=GLOBAL)
def tune_bufsize(parser, g, args, origin):
    g.bufsize = positive_int(args, "tune.bufsize", size=True)
    if g.bufsize < 1024:
        raise ValueError("'tune.bufsize' must be at least 1024 bytes")


def socket_buffer(name: str):
    """tune.rcvbuf.client|server, tune.sndbuf.client|server: SO_RCVBUF / SO_SNDBUF of
    client connections (set on the listening sockets, which accepted ones inherit) or of
    server connections."""
    @keyword(name, sections=GLOBAL)
    def buffer_size(parser, g, args, origin):
        setattr(g, name[5:].replace(".", "_"), positive_int(args, name, size=True))
    return buffer_size


for _name in ("tune.rcvbuf.client", "tune.rcvbuf.server", "tune.sndbuf.client",
              "tune.sndbuf.server"):
    socket_buffer(_name)


@keyword("tune.pipesize", sections=GLOBAL)
def tune_pipesize(parser, g, args, origin):
    g.pipesize = positive_int(args, "tune.pipesize", size=True)


@keyword("maxpipes", sections=GLOBAL)
def maxpipes(parser, g, args, origin):
    g.maxpipes = positive_int(args, "maxpipes")


@keyword("ulimit-n", sections=GLOBAL)
def ulimit_n(parser, g, args, origin):
    g.ulimit_n = positive_int(args, "ulimit-n")


@keyword("log-tag", sections=GLOBAL)
def log_tag(parser, g, args, origin):
    g.log_tag = one_arg(args, "log-tag")


@keyword("log-send-hostname", sections=GLOBAL)
def log_send_hostname(parser, g, args, origin):
    g.log_send_hostname = args[0] if args else os.uname().nodename


@keyword("hard-stop-after", sections=GLOBAL)
def hard_stop_after(parser, g, args, origin):
    g.hard_stop_after = parse_time_ms(one_arg(args, "hard-stop-after"))


@keyword("mworker-max-reloads", sections=GLOBAL)
def mworker_max_reloads(parser, g, args, origin):
    """How many reloads an old worker that has not left may survive (the master's
    promote() ends the others with SIGTERM).  HAProxy 2.6 only warns about a bad value,
    and keeps no limit: so does fastlb."""
    if len(args) > 1:
        parser.warn(origin, f"'mworker-max-reloads' cannot handle unexpected argument "
                            f"'{args[1]}'.")
        return
    if not args:
        parser.warn(origin, "'mworker-max-reloads' expects an integer argument.")
        return
    value = c_atol(args[0])
    if value < 0:
        parser.warn(origin, f"'mworker-max-reloads' : invalid value {value}, must be >= 0")
        return
    g.mworker_max_reloads = value


def add_case_adjust(g, source: str, target: str) -> None:
    """One h1-case-adjust entry, checked as HAProxy checks it (<from> is looked up as
    written: one not in lower case never matches, HAProxy's names being lower case)."""
    if not target:
        raise ValueError("expect <to>")
    if source.lower() != target.lower():
        raise ValueError("<from> and <to> must not differ execpt the case")
    if source in g.h1_case_adjust:
        raise ValueError(f"duplicate entry '{source}'")
    g.h1_case_adjust[source] = target


@keyword("h1-case-adjust", sections=GLOBAL)
def h1_case_adjust(parser, g, args, origin):
    if len(args) > 2:
        raise ValueError(f"'h1-case-adjust' cannot handle unexpected argument '{args[2]}'.")
    if len(args) < 2 or not args[0] or not args[1]:
        raise ValueError("'h1-case-adjust' expects <from> and <to> as argument.")
    add_case_adjust(g, args[0], args[1])


@keyword("h1-case-adjust-file", sections=GLOBAL)
def h1_case_adjust_file(parser, g, args, origin):
    """Read once the configuration is parsed (the last such line wins), as HAProxy does."""
    if len(args) > 1:
        raise ValueError(f"'h1-case-adjust-file' cannot handle unexpected argument "
                         f"'{args[1]}'.")
    if not args or not args[0]:
        raise ValueError("'h1-case-adjust-file' expects <file> as argument.")
    g.h1_case_adjust_file = args[0]


def load_case_adjust_file(g) -> Optional[str]:
    """h1-case-adjust-file's entries after the h1-case-adjust lines; HAProxy's alert, or
    None."""
    name = g.h1_case_adjust_file
    if name is None:
        return None
    try:
        with open(name, "rb") as handle:
            lines = handle.read().decode("latin-1").split("\n")
    except OSError:
        return f"h1-headers-case-adjust-file '{name}': failed to open file."
    for number, line in enumerate(lines[:-1] if lines and lines[-1] == "" else lines, 1):
        line = line.rstrip("\r").lstrip(" \t")
        if not line or line.startswith("#"):
            continue
        source, target = re.match(r"([^ \t]*)[ \t]*(.*?)[ \t]*$", line).groups()
        try:
            add_case_adjust(g, source, target)
        except ValueError as exc:
            return f"h1-headers-case-adjust-file '{name}' : {exc} at line {number}."
    return None


def _vars_max_size(scope: str):
    name = f"tune.vars.{scope}-max-size"

    @keyword(name, sections=GLOBAL)
    def vars_max_size(parser, g, args, origin):
        """The bytes the variables of a scope may take, as HAProxy counts them (see
        sample/stream.py); read with strtol() as HAProxy does: no word means 0, no limit."""
        text = args[0] if args else ""
        match = re.fullmatch(r"\s*([-+]?\d+)", text)
        if text and match is None:
            raise ValueError(f"{name}: '{text}' is an invalid size")
        g.vars_max_size[scope] = int(match.group(1)) % (1 << 32) if text else 0
    return vars_max_size


for _scope in ("global", "proc", "sess", "txn", "reqres"):
    _vars_max_size(_scope)


@keyword("node", sections=GLOBAL)
def node(parser, g, args, origin):
    g.node = one_arg(args, "node")


@keyword("description", sections=GLOBAL)
def description(parser, g, args, origin):
    g.description = " ".join(args)


@keyword("stats", sections=GLOBAL)
def stats(parser, g, args, origin):
    if not args:
        raise ValueError("'stats' expects 'socket', 'timeout' or 'maxconn'.")
    if args[0] == "timeout":
        g.stats_timeout = parse_time_ms(one_arg(args[1:], "stats timeout"))
        return
    if args[0] == "maxconn":
        positive_int(args[1:], "stats maxconn")    # one CLI client at a time here
        return
    if args[0] != "socket":
        raise ValueError(f"'stats {args[0]}' in 'global' section is not supported by "
                         "fastlb yet.")
    if len(args) < 2:
        raise ValueError("'stats socket' in global section expects an address or a path "
                         "to a UNIX socket.")
    sock = StatsSocket(origin=origin)
    where = args[1]
    if where.startswith("fd@"):
        sock.fd = int(where[3:]) if where[3:].isdigit() else None
        if sock.fd is None:
            raise ValueError(f"'stats socket' : invalid file descriptor '{where}'.")
    elif where.startswith("ipv4@") or where.startswith("ipv6@") or \
            (":" in where and not where.startswith("/") and not where.startswith("unix@")):
        listener = addresses.parse_bind_addresses(where)[0]
        sock.host, sock.port = listener.host, listener.port
    else:
        sock.path = where[5:] if where.startswith("unix@") else where
    rest = args[2:]
    while rest:
        option = rest.pop(0)
        if option in ("level", "expose-fd"):
            try:
                value = cli_bind_option(option, rest.pop(0) if rest else None)
            except ValueError as exc:
                raise ValueError(f"'stats socket' : '{exc}'") from None
            if option == "level":
                sock.level = value
            else:
                sock.expose_fd = True
        elif option == "mode":
            if not rest:
                raise ValueError("'mode' expects an octal argument.")
            sock.mode = int(rest.pop(0), 8)
        elif option == "severity-output":
            raise ValueError("'stats socket' : 'severity-output' is not supported by fastlb "
                             "yet.")
        elif option in ("user", "group", "uid", "gid", "name"):
            if not rest:
                raise ValueError(f"'stats socket' : '{option}' expects an argument.")
            value = rest.pop(0)
            if option == "user":
                sock.uid = system_id(pwd.getpwnam, value, "user")
            elif option == "group":
                sock.gid = system_id(grp.getgrnam, value, "group")
            elif option == "uid":
                sock.uid = leading_number(value)
            elif option == "gid":
                sock.gid = leading_number(value)
            else:
                sock.name = value
        else:
            raise ValueError(f"'stats socket' : unknown keyword '{option}'.")
    g.stats_sockets.append(sock)


def system_id(lookup, name: str, what: str) -> int:
    """A user or group name as the system knows it, resolved once at start-up as HAProxy does."""
    try:
        entry = lookup(name)
    except KeyError:
        raise ValueError(f"'stats socket' : ''{what}' : unknown {what} name '{name}''") from None
    return entry.pw_uid if what == "user" else entry.gr_gid


def leading_number(text: str) -> int:
    """HAProxy reads uid/gid with atol(): the leading digits, 0 when there are none."""
    digits = len(text) - len(text.lstrip("0123456789"))
    return int(text[:digits]) if digits else 0


# ----------------------------------------------------------------- process and poller tuning
def _flag(name: str, attribute: str):
    @keyword(name, sections=GLOBAL)
    def flag(parser, g, args, origin):
        if args:
            raise ValueError(f"'{name}' cannot handle unexpected argument '{args[0]}'.")
        setattr(g, attribute, True)
    return flag


# pp2-never-send-local: health checks' PROXY v2 headers carry the check connection's
# addresses (HAProxy's behaviour before 2.2) instead of a LOCAL command
# insecure-fork-wanted / insecure-setuid-wanted: workers may start processes and gain
# privileges through setuid programs (runtime.process.forbid_new_processes)
for _name in ("busy-polling", "zero-warning", "strict-limits", "set-dumpable", "noreuseport",
              "nosplice", "pp2-never-send-local", "insecure-fork-wanted",
              "insecure-setuid-wanted"):
    _flag(_name, _name.replace("-", "_"))

_NEGATABLE = ("strict-limits", "set-dumpable", "busy-polling", "insecure-fork-wanted",
              "insecure-setuid-wanted")


@keyword("no", sections=GLOBAL)
def no(parser, g, args, origin):
    """``no strict-limits|set-dumpable|busy-polling``: turns the setting off again."""
    if len(args) != 1 or args[0] not in _NEGATABLE:
        raise ValueError(f"'no' in 'global' section only applies to "
                         f"{', '.join(repr(n) for n in _NEGATABLE)}.")
    setattr(g, args[0].replace("-", "_"), False)


def _buffer_count(name: str, args: list) -> int:
    if len(args) > 1:
        raise ValueError(f"'{name}' cannot handle unexpected argument '{args[1]}'.")
    if not args or not args[0]:
        raise ValueError(f"'{name}' expects an integer argument.")
    return c_atol(args[0])


def _state_path(name: str, what: str):
    @keyword(name, sections=GLOBAL)
    def state_path(parser, g, args, origin):
        attribute = name.replace("-", "_")
        if getattr(g, attribute) is not None:
            parser.alert(origin, f"'{name}' already specified. Continuing.")
            return
        if len(args) != 1:
            raise ValueError(f"'{name}' {what}")
        setattr(g, attribute, args[0])
    return state_path


_state_path("server-state-file", "expect one argument: a file path.")
_state_path("server-state-base", "expects one argument: a directory path.")


@keyword("tune.buffers.limit", sections=GLOBAL)
def tune_buffers_limit(parser, g, args, origin):
    """The I/O buffers all workers may hold together (HAProxy's per process; 0: no limit).
    Raised to 3 and past tune.buffers.reserve as HAProxy raises it."""
    g.buffers_limit = _buffer_count("tune.buffers.limit", args)
    if g.buffers_limit:
        g.buffers_limit = max(g.buffers_limit, 3, g.buffers_reserve + 1)


@keyword("tune.buffers.reserve", sections=GLOBAL)
def tune_buffers_reserve(parser, g, args, origin):
    """HAProxy's buffers kept allocated for emergencies; fastlb keeps none, so the value
    only raises tune.buffers.limit past it, as in HAProxy."""
    g.buffers_reserve = max(_buffer_count("tune.buffers.reserve", args), 2)
    if g.buffers_limit and g.buffers_limit <= g.buffers_reserve:
        g.buffers_limit = g.buffers_reserve + 1


@keyword("tune.maxaccept", sections=GLOBAL)
def tune_maxaccept(parser, g, args, origin):
    text = one_arg(args, "tune.maxaccept")
    if text != "-1":
        g.maxaccept = positive_int(args, "tune.maxaccept")
    else:
        g.maxaccept = -1


@keyword("tune.maxpollevents", sections=GLOBAL)
def tune_maxpollevents(parser, g, args, origin):
    g.maxpollevents = positive_int(args, "tune.maxpollevents")
    if g.maxpollevents > 1024:
        raise ValueError("'tune.maxpollevents' : fastlb takes at most 1024 events per poll.")


@keyword("tune.http.maxhdr", sections=GLOBAL)
def tune_http_maxhdr(parser, g, args, origin):
    """The header fields a request (400 past it) or a response (502) may have."""
    if len(args) > 1:
        raise ValueError(f"'tune.http.maxhdr' cannot handle unexpected argument '{args[1]}'.")
    if not args:
        raise ValueError("'tune.http.maxhdr' expects an integer argument.")
    value = c_atol(args[0])
    if not 1 <= value <= 32767:
        raise ValueError("'tune.http.maxhdr' expects a numeric value between 1 and 32767")
    g.http_maxhdr = value


@keyword("tune.http.cookielen", sections=GLOBAL)
def tune_http_cookielen(parser, g, args, origin):
    g.cookielen = positive_int(args, "tune.http.cookielen") + 1


@keyword("tune.http.logurilen", sections=GLOBAL)
def tune_http_logurilen(parser, g, args, origin):
    g.logurilen = positive_int(args, "tune.http.logurilen")


@keyword("fd-hard-limit", sections=GLOBAL)
def fd_hard_limit(parser, g, args, origin):
    g.fd_hard_limit = positive_int(args, "fd-hard-limit")
