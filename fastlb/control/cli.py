"""The stats socket's commands (HAProxy's CLI), answered by the master from a
generation's tables and shared memory.  Each command is registered on STATS_COMMANDS
next to its handler; the socket itself is server.CliServer."""
from __future__ import annotations

from .. import __version__, shm as shared
from ..stats import errors as captures, render
from ..stats.collect import Collector
from .admin import Admin
from .commands import ADMIN, OPERATOR, STATS_COMMANDS, CommandError


class Commands:
    """Command interpreter: text in, text out (no sockets, shared with tests)."""
    table = STATS_COMMANDS

    def __init__(self, tables, state: shared.SharedState, admin: Admin):
        self.tables = tables
        self.state = state
        self.admin = admin
        self.collector = Collector(tables, state)

    def run(self, line: str, session) -> str:
        return self.table.run(self, line, session)

    def server(self, args: list):
        """The (backend, index) the first argument names as ``backend/server``."""
        if not args:
            raise CommandError("Require 'backend/server'.")
        return self.admin.server(args[0])

    # -- shows ------------------------------------------------------------------------------
    @STATS_COMMANDS.register("show", "version", text="show version of the current process")
    def show_version(self, args: list, session) -> str:
        return __version__ + "\n"

    @STATS_COMMANDS.register("show", "info", usage="show info [typed]",
                             text="report information about the running process")
    def show_info(self, args: list, session) -> str:
        return render.show_info(self.collector, typed="typed" in args)

    @STATS_COMMANDS.register("show", "pools", text="report information about the memory pools usage")
    def show_pools(self, args: list, session) -> str:
        """HAProxy's lines for the one pool fastlb has: the workers' I/O buffers, all
        workers together (their free caches counted as allocated, as HAProxy's thread
        caches are). Sessions and HTTP transactions are not pooled."""
        allocated, used, failed = self.state.buffer_pool()
        size = self.tables.config.global_.bufsize
        cached = max(allocated - used, 0)
        return ("Dumping pools usage. Use SIGQUIT to flush them.\n"
                f"  - Pool buffer ({size} bytes) : {allocated} allocated ({allocated * size} "
                f"bytes), {used} used (~{cached} by thread caches), needed_avg {used}, "
                f"{failed} failures, 1 users [SHARED]\n"
                f"Total: 1 pools, {allocated * size} bytes allocated, {used * size} used "
                f"(~{cached * size} by thread caches).\n")

    @STATS_COMMANDS.register("show", "stat",
                             usage="show stat [typed|no-maint|up] [<iid> <type> <sid>]",
                             text="report counters for each proxy and server")
    def show_stat(self, args: list, session) -> str:
        typed = "typed" in args
        numbers = [a for a in args if a.lstrip("-").isdigit()]
        up, no_maint = "up" in args, "no-maint" in args
        if typed:
            return render.show_stat_typed(self.collector)
        select = tuple(int(n) for n in numbers) if len(numbers) == 3 else (-1, -1, -1)
        return render.show_stat(self.collector, only_up=up, no_maint=no_maint, select=select)

    @STATS_COMMANDS.register("show", "servers", "state", usage="show servers state [<backend>]",
                             text="dump volatile server information (all or for a single "
                                  "backend)")
    def show_servers_state(self, args: list, session) -> str:
        backend = args[0] if args else None
        if backend is not None and self.admin.backend(backend) is None:
            raise CommandError("Can't find backend.")
        return render.show_servers_state(self.collector, backend)

    @STATS_COMMANDS.register("show", "backend", text="list backends in the current running config")
    def show_backend(self, args: list, session) -> str:
        return "# name\n" + "".join(f"{be.proxy.name}\n" for be in self.tables.backends)

    @STATS_COMMANDS.register("show", "sess", level=OPERATOR,
                             text="report the current sessions (summary per worker, proxy and "
                                  "server)")
    def show_sess(self, args: list, session) -> str:
        """A summary (the sessions live in the workers' memory, not in the master's):
        current connections per worker, then per proxy and server."""
        st = self.state
        lines = [f"total: {st.total(0)} current connections"]
        for w, pid in enumerate(st.worker_pids()):
            own = st.view[st.slot_base + w * st.slot_words]
            lines.append(f"worker {w + 1} pid={pid}: {own} connections")
        for fe in self.tables.frontends:
            lines.append(f"fe={fe.proxy.name}: {st.total(st.fe_off + fe.index)} sessions")
        for be in self.tables.backends:
            lines.append(f"be={be.proxy.name}: {st.summed(st.be_off + be.index)} sessions, "
                         f"{st.total(st.beq_off + be.index)} queued")
            for i, name in enumerate(be.server_names):
                k = be.first_server_shm + i
                lines.append(f"  srv={be.proxy.name}/{name}: {st.summed(st.srv_off + k)} "
                             f"sessions, {st.total(st.srvq_off + k)} queued")
        return "\n".join(lines) + "\n"

    @STATS_COMMANDS.register("show", "errors", level=OPERATOR,
                             usage="show errors [<px>] [request|response]",
                             text="report last request and/or response errors for each proxy")
    def show_errors(self, args: list, session) -> str:
        which = args.pop() if args and args[-1] in ("request", "response") else None
        return captures.show_errors(self.tables, self.state, args[0] if args else None, which)

    # -- changes ----------------------------------------------------------------------------
    @STATS_COMMANDS.register("clear", "counters", level=OPERATOR, usage="clear counters [all]",
                             text="clear max statistics counters (or all counters)")
    def clear_counters(self, args: list, session) -> str:
        everything = args[:1] == ["all"]
        if everything and session.level < ADMIN:
            raise CommandError("Permission denied")
        self.state.clear_stats(everything)
        return ""

    @STATS_COMMANDS.register("get", "weight", usage="get weight <bk>/<srv>",
                             text="report a server's current weight")
    def get_weight(self, args: list, session) -> str:
        be, i = self.server(args)
        return self.admin.get_weight(be, i) + "\n"

    @STATS_COMMANDS.register("set", "maxconn", level=ADMIN, help=(
        ("set maxconn frontend <frontend> <value>", "change a frontend's maxconn setting"),
        ("set maxconn server <bk>/<srv>", "change a server's maxconn setting")))
    def set_maxconn(self, args: list, session) -> str:
        if len(args) < 3 or args[0] not in ("server", "frontend"):
            raise CommandError("'set maxconn' only supports 'frontend', 'server' and "
                               "'global'.")
        if args[0] == "frontend":
            self.admin.set_frontend_maxconn(self.admin.frontend(args[1]), args[2])
        else:
            be, i = self.admin.server(args[1])
            self.admin.set_server_maxconn(be, i, args[2])
        return ""

    @STATS_COMMANDS.register("enable", "dynamic-cookie", "backend", level=ADMIN,
                             usage="enable dynamic-cookie backend <bk>",
                             text="enable dynamic cookies on a specific backend")
    def enable_dynamic_cookie(self, args: list, session) -> str:
        self.admin.set_dynamic_cookies(self.admin.cli_backend(args), enabled=True)
        return ""

    @STATS_COMMANDS.register("disable", "dynamic-cookie", "backend", level=ADMIN,
                             usage="disable dynamic-cookie backend <bk>",
                             text="disable dynamic cookies on a specific backend")
    def disable_dynamic_cookie(self, args: list, session) -> str:
        self.admin.set_dynamic_cookies(self.admin.cli_backend(args), enabled=False)
        return ""

    @STATS_COMMANDS.register("set", "dynamic-cookie-key", "backend", level=ADMIN,
                             usage="set dynamic-cookie-key backend <bk> <k>",
                             text="change a backend secret key for dynamic cookies")
    def set_dynamic_cookie_key(self, args: list, session) -> str:
        be = self.admin.cli_backend(args)
        if len(args) < 2 or not args[1]:
            raise CommandError("String value expected.")
        self.admin.set_dynamic_cookies(be, key=args[1])
        return ""

    @STATS_COMMANDS.register("shutdown", "sessions", level=ADMIN,
                             usage="shutdown sessions server <bk>/<srv>",
                             text="kill sessions on a server")
    def shutdown_sessions(self, args: list, session) -> str:
        if len(args) < 2 or args[0] != "server":
            raise CommandError("Require 'backend/server'.")
        be, i = self.admin.server(args[1])
        self.admin.shutdown_sessions(be, i)
        return ""

    @STATS_COMMANDS.register("disable", "server", level=ADMIN, usage="disable server <bk>/<srv>",
                             text="disable a server for maintenance (use 'set server' instead)")
    def disable_server(self, args: list, session) -> str:
        self.admin.maint(*self.server(args))
        return ""

    @STATS_COMMANDS.register("enable", "server", level=ADMIN, usage="enable server <bk>/<srv>",
                             text="enable a disabled server (use 'set server' instead)")
    def enable_server(self, args: list, session) -> str:
        self.admin.ready(*self.server(args))
        return ""

    @STATS_COMMANDS.register("disable", "health", level=ADMIN, usage="disable health <bk>/<srv>",
                             text="disable health checks")
    def disable_health(self, args: list, session) -> str:
        self.admin.set_health_checks(*self.server(args), False)
        return ""

    @STATS_COMMANDS.register("enable", "health", level=ADMIN, usage="enable health <bk>/<srv>",
                             text="enable health checks")
    def enable_health(self, args: list, session) -> str:
        self.admin.set_health_checks(*self.server(args), True)
        return ""

    @STATS_COMMANDS.register("set", "weight", level=ADMIN, usage="set weight <bk>/<srv>",
                             text="change a server's weight (use 'set server' instead)")
    def set_weight(self, args: list, session) -> str:
        be, i = self.server(args)
        if len(args) < 2:
            raise CommandError("Require <weight> or <weight%>.")
        self.admin.set_weight(be, i, args[1])
        return ""

    @STATS_COMMANDS.register("set", "server", level=ADMIN, usage="set server <bk>/<srv> [opts]",
                             text="change a server's state or weight")
    def set_server(self, args: list, session) -> str:
        be, i = self.server(args)
        options = args[1:]
        if not options:
            raise CommandError("usage: set server <backend>/<server> "
                               "addr | agent | agent-addr | agent-port | agent-send | "
                               "check-addr | check-port | fqdn | health | ssl | state | weight")
        what = options[0]
        if what == "state":
            target = options[1] if len(options) > 1 else ""
            if target == "ready":
                self.admin.ready(be, i)
            elif target == "drain":
                self.admin.drain(be, i)
            elif target == "maint":
                self.admin.maint(be, i)
            else:
                raise CommandError("'set server <srv> state' expects 'ready', 'drain' and "
                                   "'maint'.")
            return ""
        if what == "weight":
            if len(options) < 2:
                raise CommandError("Require <weight> or <weight%>.")
            self.admin.set_weight(be, i, options[1])
            return ""
        if what == "health":
            target = options[1] if len(options) > 1 else ""
            if target not in ("up", "stopping", "down"):
                raise CommandError("'set server <srv> health' expects 'up', 'stopping', or "
                                   "'down'.")
            self.admin.set_check_health(be, i, target != "down")
            return ""
        raise CommandError(f"'set server <srv> {what}' is not supported by fastlb yet.")

from . import map_commands as _map_commands  # noqa: E402,F401 - registers show/add/... map
