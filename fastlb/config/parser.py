"""haproxy.cfg text -> typed model (``model.Config``).

Every problem found is collected with its file and line, and all of them are
reported together (``ConfigError``), as HAProxy does.  A keyword fastlb knows
from HAProxy but does not implement yet is refused by name; a keyword it has
never heard of is "unknown".  The few keywords accepted without effect are
listed in ``IGNORED_GLOBAL`` with the reason it cannot change behaviour.
"""
from __future__ import annotations

import os
import re
from typing import Optional

from . import addresses
from .addresses import AddressError
from ..http.acl import AclError, PREDEFINED, condition_acl_names, parse_acl, parse_condition
from .model import (FACILITIES, LEVELS, LOG_FORMATS, Config, CookieSettings, ForwardFor,
                    GlobalSettings, HttpCheck, LogTarget, Origin, Proxy, Server,
                    StatsPage, StatsSocket)
from ..http.errors import MESSAGES
from ..http.rules import RuleError, parse_rule
from ..logformat import LogFormatError, compile_format
from .tokenizer import TokenizeError, tokenize
from .units import parse_size, parse_time_ms

SECTIONS = ("global", "defaults", "frontend", "backend", "listen")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]+$")

# Global keywords accepted with no effect, and why ignoring them cannot change behaviour.
IGNORED_GLOBAL = {
    "tune.idle-pool.shared": "fastlb keeps no idle server connection pool shared between threads",
    "master-worker": "fastlb always runs as a master with workers",
}

# Keywords HAProxy has and fastlb refuses for now, so that a config never loses a setting silently.
NOT_YET_GLOBAL = {
    "ssl-default-bind-ciphers",
    "ssl-default-bind-options", "ssl-default-server-ciphers", "ssl-default-server-options",
    "ssl-default-bind-ciphersuites", "ssl-default-server-ciphersuites", "tune.ssl.default-dh-param",
    "spread-checks", "server-state-file", "server-state-base", "lua-load", "setenv", "presetenv",
    "resetenv", "unsetenv", "ca-base", "crt-base", "expose-experimental-directives",
    "localpeer", "h1-case-adjust", "maxsslconn", "maxconnrate", "maxsessrate", "external-check",
    "insecure-fork-wanted", "tune.http.maxhdr", "unix-bind",
}
NOT_YET_PROXY = { "http-after-response", "tcp-request",
    "tcp-response", "stick-table", "stick", "errorfiles",
    "errorloc", "errorloc302", "errorloc303",
    "tcp-check", "unique-id-format", "unique-id-header",
    "redirect", "reqadd", "rspadd", "compression", "fullconn", "source",
    "persist", "force-persist", "ignore-persist", "external-check", "filter", "server-template",
    "use-server", "email-alert", "rate-limit", "max-keep-alive-queue", "load-server-state-from-file",
    "server-state-file-name", "http-send-name-header", "declare", "log-format-sd",
    "error-log-format", "dynamic-cookie-key", "hash-balance-factor", "grace", "bind-process",
    "unique-id", "monitor-net",
}
_SERVER_NOT_YET = {
    "ssl", "verify", "ca-file", "crt", "sni", "send-proxy", "send-proxy-v2", "slowstart",
    "track", "on-marked-down", "on-marked-up",
    "resolvers", "resolve-prefer", "init-addr", "agent-check", "check-ssl", "proto",
    "alpn", "redir", "source", "minconn", "pool-max-conn", "pool-purge-delay", "tfo",
    "check-send-proxy", "namespace", "usesrc", "ws", "agent-port", "agent-inter",
}
_OPTIONS_NOT_YET = {
    "http-buffer-request", "abortonclose", "originalto", "checkcache",
    "http-pretend-keepalive", "http-no-delay", "http-use-proxy-header",
    "mysql-check", "pgsql-check", "redis-check", "smtpchk", "ldap-check", "ssl-hello-chk",
    "tcp-check", "external-check", "persist", "prefer-last-server", "splice-auto",
    "splice-request", "splice-response", "transparent", "accept-invalid-http-request",
    "accept-invalid-http-response", "h1-case-adjust-bogus-client", "h1-case-adjust-bogus-server",
    "log-separate-errors", "logasap", "http-ignore-probes", "http-restrict-req-hdr-names",
    "independent-streams", "nolinger", "socket-stats", "spop-check", "tcp-smart-accept",
    "tcp-smart-connect", "contstats", "disable-h2-upgrade", "idle-close-on-response",
    "http_proxy", "forceclose",
}
_BIND_NOT_YET = {
    "ssl", "crt", "crt-list", "ca-file", "verify", "alpn", "npn", "accept-proxy", "transparent",
    "interface", "namespace", "mss", "tfo", "defer-accept", "maxconn", "process", "thread",
    "proto", "user", "group", "uid", "gid", "mode", "level", "expose-fd", "id", "nice",
    "accept-netscaler-cip", "allow-0rtt", "strict-sni", "generate-certificates", "tcp-ut",
    "severity-output", "ciphers", "ciphersuites", "curves", "ecdhe", "ssl-min-ver",
    "ssl-max-ver", "no-sslv3", "no-tlsv10", "no-tlsv11", "no-tlsv12", "no-tlsv13",
    "prefer-client-ciphers", "quic-cc-algo", "quic-force-retry",
}
TIMEOUT_NAMES = ("client", "server", "connect", "check", "queue", "http-keep-alive",
                 "http-request", "tunnel", "tarpit", "client-fin", "server-fin")
# Which proxy capabilities a timeout applies to (HAProxy warns when it cannot apply).
_TIMEOUT_SIDE = {"client": "frontend", "client-fin": "frontend", "http-request": "frontend",
                 "http-keep-alive": None, "tarpit": None, "server": "backend",
                 "server-fin": "backend", "connect": "backend", "queue": "backend",
                 "check": "backend", "tunnel": "backend"}
_DEFAULT_KW = ("mode", "timeout", "option", "no", "balance", "default-server", "log",
               "hash-type", "cookie", "http-check",
               "maxconn", "backlog", "retries", "default_backend", "log-tag", "description",
               "errorfile", "monitor-uri", "http-reuse", "log-format", "stats")
ERRORFILE_CODES = (200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 421, 422, 425, 429,
                   500, 501, 502, 503, 504)


class ConfigError(Exception):
    """The configuration is invalid; ``alerts`` holds every message."""

    def __init__(self, alerts: list[str], warnings: Optional[list[str]] = None):
        super().__init__("\n".join(alerts))
        self.alerts = alerts
        self.warnings = warnings or []


def collect_files(paths: list[str]) -> list[str]:
    """Expand ``-f`` arguments: a directory contributes its ``*.cfg`` files in order."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            names = sorted(n for n in os.listdir(path) if n.endswith(".cfg")
                           and os.path.isfile(os.path.join(path, n)))
            files.extend(os.path.join(path, n) for n in names)
        else:
            files.append(path)
    return files


class Parser:
    """Reads haproxy.cfg files into a ``Config``; use ``parse_files`` or ``parse_text``."""

    def __init__(self, env=None):
        self.env = os.environ if env is None else env
        self.alerts: list[str] = []
        self.warnings: list[str] = []
        self.global_ = GlobalSettings()
        self.proxies: list[Proxy] = []
        self.named_defaults: dict[str, Proxy] = {}
        self.defaults = Proxy(kind="defaults", name="", origin=Origin("", 0))
        self.files: list[str] = []
        self.section: Optional[str] = None
        self.proxy: Optional[Proxy] = None

    # -- entry points -------------------------------------------------------------------
    def parse_files(self, paths: list[str]) -> Config:
        for path in collect_files(paths):
            try:
                with open(path, encoding="utf-8", errors="surrogateescape") as handle:
                    text = handle.read()
            except OSError as exc:
                self.alerts.append(f"Could not open configuration file {path} : {exc.strerror}")
                continue
            self.parse_text(text, path)
        return self.finish()

    def parse_text(self, text: str, filename: str) -> None:
        self.files.append(filename)
        self.section = None
        errors_before = len(self.alerts)
        for number, raw in enumerate(text.splitlines(), start=1):
            origin = Origin(filename, number)
            try:
                words = tokenize(raw, self.env)
            except TokenizeError as exc:
                self._alert(origin, str(exc))
                continue
            if words:
                self._statement(words, origin)
        if len(self.alerts) > errors_before:
            self.alerts.append(f"Error(s) found in configuration file : {filename}")

    def finish(self) -> Config:
        if not self.files:
            self.alerts.append("No configuration file specified.")
        if not self.alerts:
            self._resolve()
        if self.alerts:
            raise ConfigError(self.alerts + ["Fatal errors found in configuration."], self.warnings)
        return Config(global_=self.global_, proxies=self.proxies, files=self.files)

    # -- messages ---------------------------------------------------------------------------
    def _alert(self, origin: Origin, message: str) -> None:
        self.alerts.append(f"parsing [{origin}] : {message}")

    def _warn(self, origin: Origin, message: str) -> None:
        self.warnings.append(f"parsing [{origin}] : {message}")

    # -- statements -------------------------------------------------------------------------
    def _statement(self, words: list[str], origin: Origin) -> None:
        keyword = words[0]
        if keyword in SECTIONS:
            self._open_section(words, origin)
            return
        if self.section is None:
            self._alert(origin, f"unknown keyword '{keyword}' out of section.")
            return
        if self.section == "global":
            self._global_keyword(words, origin)
        else:
            self._proxy_keyword(self.proxy, words, origin)

    def _open_section(self, words: list[str], origin: Origin) -> None:
        kind = words[0]
        self.section = kind
        if kind == "global":
            self.proxy = None
            if len(words) > 1:
                self._alert(origin, f"unexpected argument '{words[1]}' after 'global'.")
            return
        args = words[1:]
        name = ""
        if args and args[0] != "from":
            name = args.pop(0)
        # A new "defaults" section starts from scratch unless it says "from"; proxies
        # inherit from the last defaults section seen.
        parent = Proxy(kind="defaults", name="", origin=origin) if kind == "defaults" else self.defaults
        if args:
            if args[0] != "from" or len(args) != 2:
                self._alert(origin, f"unexpected argument(s) after {kind} name: {' '.join(args)}")
            elif args[1] not in self.named_defaults:
                self._alert(origin, f"{kind} '{name}' : unable to find defaults section '{args[1]}'.")
            else:
                parent = self.named_defaults[args[1]]
        if kind != "defaults":
            if not name:
                self._alert(origin, f"'{kind}' expects <name> as argument.")
                name = f"<unnamed:{origin.line}>"
            elif not _NAME_RE.match(name):
                bad = next(c for c in name if not _NAME_RE.match(c))
                self._alert(origin, f"character '{bad}' is not permitted in '{kind}' name '{name}'.")
            for other in self.proxies:
                clash = (other.has_frontend and kind in ("frontend", "listen")) or \
                        (other.has_backend and kind in ("backend", "listen"))
                if other.name == name and clash:
                    self.alerts.append(
                        f"Parsing [{origin}]: {kind} '{name}' has the same name as "
                        f"{other.kind} '{name}' declared at {other.origin}.")
        proxy = Proxy(kind=kind, name=name, origin=origin)
        proxy.inherit_from(parent)
        self.proxy = proxy
        if kind == "defaults":
            self.defaults = proxy
            if name:
                self.named_defaults[name] = proxy
        else:
            self.proxies.append(proxy)

    # -- global -----------------------------------------------------------------------------
    def _global_keyword(self, words: list[str], origin: Origin) -> None:
        g = self.global_
        keyword, args = words[0], words[1:]
        try:
            if keyword == "log":
                self._log_statement(g.logs, args, in_global=True)
            elif keyword == "maxconn":
                g.maxconn = self._positive_int(args, keyword)
            elif keyword == "nbthread":
                g.nbthread = self._positive_int(args, keyword)
            elif keyword == "nbproc":
                # HAProxy 2.5+ refuses it; fastlb's workers play the threads
                raise ValueError("nbproc is not supported any more since HAProxy 2.5. "
                                 "fastlb's workers play HAProxy's threads: use 'nbthread' "
                                 "or -n.")
            elif keyword in ("user", "group", "uid", "gid"):
                self._global_identity(keyword, args)
            elif keyword == "chroot":
                g.chroot = self._one_arg(args, keyword)
                if not os.path.isdir(g.chroot):
                    raise ValueError(f"'chroot' : '{g.chroot}' is not a directory.")
            elif keyword == "cpu-map":
                self._global_cpu_map(args)
            elif keyword == "daemon":
                g.daemon = True
            elif keyword == "pidfile":
                g.pidfile = self._one_arg(args, keyword)
            elif keyword == "quiet":
                g.quiet = True
            elif keyword == "tune.maxrewrite":
                g.maxrewrite = self._positive_int(args, keyword, size=True)
            elif keyword == "tune.bufsize":
                g.bufsize = self._positive_int(args, keyword, size=True)
                if g.bufsize < 1024:
                    raise ValueError("'tune.bufsize' must be at least 1024 bytes")
            elif keyword == "ulimit-n":
                g.ulimit_n = self._positive_int(args, keyword)
            elif keyword == "log-tag":
                g.log_tag = self._one_arg(args, keyword)
            elif keyword == "log-send-hostname":
                g.log_send_hostname = args[0] if args else os.uname().nodename
            elif keyword == "hard-stop-after":
                g.hard_stop_after = parse_time_ms(self._one_arg(args, keyword))
            elif keyword == "node":
                g.node = self._one_arg(args, keyword)
            elif keyword == "description":
                g.description = " ".join(args)
            elif keyword == "stats":
                self._global_stats(args, origin)
            elif keyword in IGNORED_GLOBAL:
                pass
            elif keyword in NOT_YET_GLOBAL:
                self._alert(origin, f"'{keyword}' in 'global' section is not supported by fastlb yet.")
            else:
                self._alert(origin, f"unknown keyword '{keyword}' in 'global' section")
        except (ValueError, AddressError) as exc:
            self._alert(origin, str(exc))

    # -- proxies ----------------------------------------------------------------------------
    def _proxy_keyword(self, proxy: Proxy, words: list[str], origin: Origin) -> None:
        keyword, args = words[0], words[1:]
        handler = getattr(self, "_kw_" + keyword.replace("-", "_"), None)
        if proxy.kind == "defaults" and handler is not None and keyword not in _DEFAULT_KW:
            self._alert(origin, f"'{keyword}' not allowed in 'defaults' section.")
            return
        if handler is None:
            if keyword in NOT_YET_PROXY:
                self._alert(origin, f"'{keyword}' in '{proxy.kind}' section is not supported by fastlb yet.")
            else:
                self._alert(origin, f"unknown keyword '{keyword}' in '{proxy.kind}' section")
            return
        try:
            handler(proxy, args, origin)
        except (ValueError, AddressError) as exc:
            self._alert(origin, str(exc))

    def _need_backend(self, proxy: Proxy, keyword: str) -> bool:
        if proxy.kind == "frontend":
            raise ValueError(f"'{keyword}' not allowed because frontend '{proxy.name}' "
                             "has no backend capability.")
        return True

    def _kw_mode(self, proxy, args, origin):
        mode = self._one_arg(args, "mode")
        if mode not in ("tcp", "http"):
            raise ValueError(f"unknown proxy mode '{mode}'.")
        proxy.mode = mode

    def _kw_bind(self, proxy, args, origin):
        if not args:
            raise ValueError("'bind' expects {<path>|[addr1]:port1[-end1]}{,...} [param*] as arguments.")
        if proxy.kind == "backend":
            self._warn(origin, f"'bind' ignored because backend '{proxy.name}' has no frontend capability.")
            return
        listeners = addresses.parse_bind_addresses(args[0])
        i = 1
        while i < len(args):
            option = args[i]
            if option == "v4v6":
                for listener in listeners:
                    listener.v6only = False
            elif option == "v6only":
                for listener in listeners:
                    listener.v6only = True
            elif option in ("backlog", "name"):
                if i + 1 >= len(args):
                    raise ValueError(f"'bind {args[0]}' : missing value for '{option}'.")
                value = args[i + 1]
                for listener in listeners:
                    if option == "backlog":
                        listener.backlog = self._positive_int([value], "backlog")
                    else:
                        listener.name = value
                i += 1
            elif option in _BIND_NOT_YET:
                raise ValueError(f"'bind {args[0]}' : option '{option}' is not supported by fastlb yet.")
            else:
                raise ValueError(f"'bind {args[0]}' unknown keyword '{option}'.")
            i += 1
        for listener in listeners:
            listener.origin = origin
        proxy.listeners.extend(listeners)

    def _kw_default_backend(self, proxy, args, origin):
        if proxy.kind == "backend":
            raise ValueError(f"'default_backend' not allowed because backend '{proxy.name}' "
                             "has no frontend capability.")
        proxy.default_backend = self._one_arg(args, "default_backend")
        proxy.default_backend_origin = origin

    def _kw_use_backend(self, proxy, args, origin):
        if proxy.kind == "backend":
            raise ValueError(f"'use_backend' not allowed because backend '{proxy.name}' "
                             "has no frontend capability.")
        if not args:
            raise ValueError("'use_backend' expects a backend name.")
        condition = None
        if len(args) > 1:
            condition = self._condition(proxy, args[1:], "switching rule")
        proxy.switching_rules.append((args[0], condition, origin))

    def _kw_acl(self, proxy, args, origin):
        if len(args) < 2:
            raise ValueError("'acl' expects an ACL name and a criterion.")
        name = args[0]
        if not re.fullmatch(r"[A-Za-z0-9_.:-]+", name):
            raise ValueError(f"ACL name '{name}' contains an invalid character.")
        try:
            term = parse_acl(args[1:], os.path.dirname(origin.file) or ".")
        except AclError as exc:
            raise ValueError(f"error detected while parsing ACL '{name}' : {exc}") from None
        proxy.acls.setdefault(name, []).append(term)

    def _kw_capture(self, proxy, args, origin):
        if proxy.kind == "backend":
            raise ValueError(f"'capture' not allowed because backend '{proxy.name}' has no "
                             "frontend capability.")
        if len(args) != 5 or args[0] not in ("request", "response") or args[1] != "header" \
                or args[3] != "len" or not args[4].isdigit() or int(args[4]) < 1:
            if args[:1] == ["cookie"]:
                raise ValueError("'capture cookie' is not supported by fastlb yet.")
            raise ValueError("'capture' expects 'request header <name> len <length>' or "
                             "'response header <name> len <length>'.")
        target = proxy.captures_req if args[0] == "request" else proxy.captures_rsp
        target.append((args[2].lower(), int(args[4])))

    def _kw_log_format(self, proxy, args, origin):
        if proxy.kind == "backend":
            self._warn(origin, f"'log-format' ignored because backend '{proxy.name}' has no "
                       "frontend capability.")
            return
        text = " ".join(args)
        try:
            compile_format(text)
        except LogFormatError as exc:
            raise ValueError(f"'log-format' : {exc}") from None
        proxy.log_format = text

    def _kw_http_reuse(self, proxy, args, origin):
        self._need_backend(proxy, "http-reuse")
        mode = self._one_arg(args, "http-reuse")
        if mode not in ("never", "safe", "aggressive", "always"):
            raise ValueError("'http-reuse' only supports 'never', 'safe', 'aggressive', 'always'.")
        proxy.http_reuse = mode

    def _kw_errorfile(self, proxy, args, origin):
        if len(args) != 2:
            raise ValueError("'errorfile' expects <code> and <file> as arguments.")
        if not args[0].isdigit() or int(args[0]) not in ERRORFILE_CODES:
            raise ValueError(f"'errorfile' : status code '{args[0]}' cannot be overridden.")
        path = args[1]
        if not os.path.isabs(path):
            path = os.path.join(os.path.dirname(origin.file) or ".", path)
        try:
            with open(path, "rb") as handle:
                content = handle.read()
        except OSError as exc:
            raise ValueError(f"'errorfile' : error opening file <{args[1]}> : {exc.strerror}.") from None
        # A proxy's errorfile replaces the inherited one for that code only.
        proxy.errorfiles = dict(proxy.errorfiles)
        proxy.errorfiles[int(args[0])] = content

    def _kw_monitor_uri(self, proxy, args, origin):
        if proxy.kind == "backend":
            raise ValueError(f"'monitor-uri' not allowed because backend '{proxy.name}' has no "
                             "frontend capability.")
        proxy.monitor_uri = self._one_arg(args, "monitor-uri")

    def _kw_monitor(self, proxy, args, origin):
        if proxy.kind == "backend":
            raise ValueError(f"'monitor' not allowed because backend '{proxy.name}' has no "
                             "frontend capability.")
        if not args or args[0] != "fail":
            raise ValueError("'monitor' expects 'fail'.")
        if len(args) < 3 or args[1] not in ("if", "unless"):
            raise ValueError("'monitor fail' expects 'if' or 'unless' followed by a condition.")
        proxy.monitor_fail = self._condition(proxy, args[1:], "'monitor fail'")

    # -- statistics ---------------------------------------------------------------------------
    STATS_NOT_YET = ("http-request", "bind-process")

    def _global_identity(self, keyword, args):
        """user/group take a name, uid/gid a number; resolved here, as HAProxy does."""
        import grp
        import pwd
        g = self.global_
        value = self._one_arg(args, keyword)
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
                self.warnings.append(f"'{keyword}' : user/uid already specified. Continuing.")
            g.uid = number
        else:
            if g.gid is not None:
                self.warnings.append(f"'{keyword}' : group/gid already specified. Continuing.")
            g.gid = number

    def _global_cpu_map(self, args):
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
        workers = self._number_set(threads or "all", "thread", 64)
        cpus = set()
        for word in args[1:]:
            cpus |= self._number_set(word, "CPU", os.cpu_count() or 1, zero=True)
        if auto:
            if threads not in ("", "all") and len(workers) != len(cpus):
                raise ValueError("'cpu-map' : with 'auto:', the thread and CPU sets must "
                                 "have the same size.")
            for worker, cpu in zip(sorted(workers), sorted(cpus)):
                self.global_.cpu_map[worker] = {cpu}
        else:
            for worker in workers:
                self.global_.cpu_map[worker] = set(cpus)

    @staticmethod
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

    def _global_stats(self, args, origin):
        g = self.global_
        if not args:
            raise ValueError("'stats' expects 'socket', 'timeout' or 'maxconn'.")
        if args[0] == "timeout":
            g.stats_timeout = parse_time_ms(self._one_arg(args[1:], "stats timeout"))
            return
        if args[0] == "maxconn":
            self._positive_int(args[1:], "stats maxconn")    # one CLI client at a time here
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
            if option == "level":
                if not rest or rest[0] not in ("user", "operator", "admin"):
                    raise ValueError("'level' only supports 'user', 'operator', and 'admin'.")
                sock.level = rest.pop(0)
            elif option == "mode":
                if not rest:
                    raise ValueError("'mode' expects an octal argument.")
                sock.mode = int(rest.pop(0), 8)
            elif option == "expose-fd":
                if not rest or rest[0] != "listeners":
                    raise ValueError("'expose-fd' only supports 'listeners'.")
                rest.pop(0)
                sock.expose_fd = True
            elif option in ("user", "group", "uid", "gid", "name"):
                raise ValueError(f"'stats socket' option '{option}' is not supported by "
                                 "fastlb yet.")
            else:
                raise ValueError(f"'stats socket' : unknown keyword '{option}'.")
        g.stats_sockets.append(sock)

    def _kw_stats(self, proxy, args, origin):
        if not args:
            raise ValueError("'stats' expects 'admin', 'auth', 'enable', 'hide-version', "
                             "'realm', 'refresh', 'scope', 'show-desc', 'show-legends', "
                             "'show-node' or 'uri'.")
        if proxy.stats is None:
            proxy.stats = StatsPage()            # any stats keyword enables the page
        page, what, rest = proxy.stats, args[0], args[1:]
        if what == "enable":
            pass
        elif what == "uri":
            page.uri = self._one_arg(rest, "stats uri")
        elif what == "realm":
            page.realm = self._one_arg(rest, "stats realm").replace("\\ ", " ")
        elif what == "auth":
            credentials = self._one_arg(rest, "stats auth")
            if ":" not in credentials:
                raise ValueError("'stats auth' expects <user>:<password> in argument.")
            page.auths.append(tuple(credentials.split(":", 1)))
        elif what == "refresh":
            page.refresh = max(1, parse_time_ms(self._one_arg(rest, "stats refresh")) // 1000)
        elif what == "admin":
            if proxy.kind == "defaults":
                raise ValueError("'stats admin' not allowed in 'defaults' section.")
            if not rest or rest[0] not in ("if", "unless"):
                raise ValueError("'stats admin' requires either 'if' or 'unless' followed by "
                                 "a condition.")
            page.admin.append(self._condition(proxy, rest, "'stats admin' rule"))
        elif what == "hide-version":
            page.hide_version = True
        elif what == "show-legends":
            page.show_legends = True
        elif what == "show-node":
            page.show_node = rest[0] if rest else ""
        elif what == "show-desc":
            page.show_desc = " ".join(rest)
        elif what == "scope":
            page.scopes.append(self._one_arg(rest, "stats scope"))
        elif what in self.STATS_NOT_YET:
            raise ValueError(f"'stats {what}' is not supported by fastlb yet.")
        else:
            raise ValueError(f"unknown stats parameter '{what}'.")

    def _kw_http_request(self, proxy, args, origin):
        self._http_rule(proxy, args, origin, response=False)

    def _kw_http_response(self, proxy, args, origin):
        self._http_rule(proxy, args, origin, response=True)

    def _http_rule(self, proxy, args, origin, response):
        side = "http-response" if response else "http-request"
        base = os.path.dirname(origin.file) or "."

        def read_file(path):
            full = path if os.path.isabs(path) else os.path.join(base, path)
            try:
                with open(full, "rb") as handle:
                    return handle.read()
            except OSError as exc:
                raise RuleError(f"failed to open file '{path}' : {exc.strerror}") from None

        try:
            rule, rest = parse_rule(args, response, read_file)
        except RuleError as exc:
            raise ValueError(f"'{side}' : {exc}") from None
        if rule.action == "deny" and rule.status not in MESSAGES:
            raise ValueError(f"'{side} deny' : unsupported deny_status '{rule.status}'.")
        if rest:
            rule.condition = self._condition(proxy, rest, f"'{side}' rule")
        (proxy.http_response_rules if response else proxy.http_request_rules).append(rule)

    def _condition(self, proxy, words, what):
        try:
            condition = parse_condition(words)
        except AclError as exc:
            raise ValueError(f"error detected while parsing {what} condition : {exc}") from None
        for name in condition_acl_names(condition):
            if name not in proxy.acls and name not in PREDEFINED:
                raise ValueError(f"error detected while parsing {what} : no such ACL : '{name}'.")
        return condition

    def _kw_server(self, proxy, args, origin):
        self._need_backend(proxy, "server")
        if len(args) < 2:
            raise ValueError("'server' expects <name> and <addr>[:<port>] as arguments.")
        name = args[0]
        what = f"'server {proxy.name}/{name}'"
        if any(s.name == name for s in proxy.servers):
            raise ValueError(f"{what} : a server with this name already exists in backend '{proxy.name}'.")
        try:
            address = addresses.parse_server_address(args[1])
        except AddressError as exc:
            self.alerts.append(f"[{origin}] : {what} : {exc}")
            return
        server = Server(**vars(proxy.default_server))
        server.name, server.address, server.origin = name, address, origin
        try:
            self._server_options(server, args[2:])
        except ValueError as exc:
            self.alerts.append(f"[{origin}] : {what} : {exc}")
            return
        proxy.servers.append(server)

    def _kw_default_server(self, proxy, args, origin):
        self._server_options(proxy.default_server, args)

    def _server_options(self, target, args):
        i = 0

        def value(kind="int", low=0, high=None):
            nonlocal i
            if i + 1 >= len(args):
                raise ValueError(f"'{option}' expects {'a time' if kind == 'time' else 'an integer'}"
                                 " argument.")
            i += 1
            text = args[i]
            if kind == "time":
                number = parse_time_ms(text)
                if number == 0:
                    raise ValueError(f"invalid value 0 for argument '{option}'.")
                return number
            if kind == "str":
                return text
            if not text.isdigit() or int(text) < low or (high is not None and int(text) > high):
                if option == "weight":
                    raise ValueError(f"weight of server is not within 0 and 256 ({text}).")
                raise ValueError(f"'{option}' expects an integer argument >= {low} (got '{text}').")
            return int(text)

        while i < len(args):
            option = args[i]
            if option == "weight":
                target.weight = value(high=256)
            elif option in ("backup", "disabled", "check"):
                setattr(target, option, True)
            elif option == "no-backup":
                target.backup = False
            elif option == "enabled":
                target.disabled = False
            elif option == "no-check":
                target.check = False
            elif option in ("maxconn", "maxqueue"):
                setattr(target, option, value())
            elif option in ("rise", "fall"):
                setattr(target, option, value(low=1))
            elif option in ("inter", "fastinter", "downinter"):
                setattr(target, option, value("time"))
            elif option == "observe":
                mode = value("str")
                if mode not in ("layer4", "layer7", "none"):
                    raise ValueError(f"'observe' expects one of 'none', 'layer4', 'layer7' "
                                     f"but got '{mode}'.")
                target.observe = None if mode == "none" else mode
            elif option == "error-limit":
                target.error_limit = value(low=1)
            elif option == "on-error":
                action = value("str")
                if action not in ("fastinter", "fail-check", "sudden-death", "mark-down"):
                    raise ValueError("'on-error' expects one of 'fastinter', 'fail-check', "
                                     f"'sudden-death' or 'mark-down' but got '{action}'.")
                target.on_error = action
            elif option == "port":
                target.check_port = value(low=1, high=65535)
            elif option == "addr":
                target.check_addr = addresses.parse_server_address(value("str"),
                                                                   allow_no_port=True).ip
            elif option in ("id", "cookie"):
                if not isinstance(target, Server):
                    raise ValueError(f"'{option}' is not permitted on 'default-server'.")
                if option == "cookie":
                    target.cookie = value("str")
                else:
                    target.id = value(low=1)
                    target.forced_id = True
            elif option in _SERVER_NOT_YET:
                raise ValueError(f"server option '{option}' is not supported by fastlb yet.")
            else:
                raise ValueError(f"unknown keyword '{option}'.")
            i += 1

    BALANCE_ALGOS = ("roundrobin", "static-rr", "leastconn", "first", "source", "uri",
                     "url_param", "random")

    def _kw_balance(self, proxy, args, origin):
        self._need_backend(proxy, "balance")
        algo = self._one_arg(args, "balance", allow_more=True)
        extra = args[1:]
        options: dict = {}
        if algo.startswith("hdr(") and algo.endswith(")") and len(algo) > 5:
            options["header"] = algo[4:-1].lower()
            if extra == ["use_domain_only"]:
                raise ValueError("'balance hdr(...) use_domain_only' is not supported by fastlb yet.")
            algo, extra = "hdr", extra
        elif algo.startswith("random(") and algo.endswith(")"):
            draws = algo[7:-1]
            if not draws.isdigit() or int(draws) < 1:
                raise ValueError("'balance random(<draws>)' expects a positive integer.")
            options["draws"] = int(draws)
            algo = "random"
        elif algo.startswith("rdp-cookie"):
            raise ValueError("'balance rdp-cookie' is not supported by fastlb yet "
                             "(it needs 'tcp-request content' rules, which fastlb does not have).")
        elif algo not in self.BALANCE_ALGOS:
            raise ValueError("balance only supports 'roundrobin', 'static-rr', 'leastconn', "
                             "'source', 'uri', 'url_param', 'hdr(name)' and 'rdp-cookie(name)' "
                             "options.")
        if algo == "random":
            options.setdefault("draws", 2)
        if algo == "uri":
            options.update(len=0, depth=0, whole=False, path_only=False)
            i = 0
            while i < len(extra):
                word = extra[i]
                if word in ("len", "depth"):
                    if i + 1 >= len(extra) or not extra[i + 1].isdigit() or int(extra[i + 1]) < 1:
                        raise ValueError(f"'balance uri {word}' expects a positive integer "
                                         f"(got '{extra[i + 1] if i + 1 < len(extra) else ''}').")
                    options[word] = int(extra[i + 1])
                    i += 2
                elif word in ("whole", "path-only"):
                    options[word.replace("-", "_")] = True
                    i += 1
                else:
                    raise ValueError("'balance uri' only accepts parameters 'whole', 'len', "
                                     "'depth', 'path-only'.")
            extra = []
        elif algo == "url_param":
            if not extra:
                raise ValueError("'balance url_param' requires an URL parameter name.")
            options["param"] = extra[0]
            if extra[1:2] == ["check_post"]:
                raise ValueError("'balance url_param ... check_post' is not supported by fastlb yet.")
            extra = extra[1:]
        if extra:
            raise ValueError(f"'balance {algo}' does not accept '{extra[0]}'.")
        proxy.balance = algo
        proxy.balance_args = options

    def _kw_hash_type(self, proxy, args, origin):
        self._need_backend(proxy, "hash-type")
        if not args or args[0] not in ("map-based", "consistent"):
            raise ValueError("'hash-type' only supports 'consistent' and 'map-based'.")
        proxy.hash_type = args[0]
        rest = args[1:]
        # HAProxy keeps its old behaviour when no function is named: consistent hashing
        # then applies the avalanche modifier, map-based does not.
        proxy.hash_avalanche = args[0] == "consistent" and not rest
        if rest and rest[0] in ("sdbm", "djb2", "wt6", "crc32"):
            if rest[0] != "sdbm":
                raise ValueError(f"hash function '{rest[0]}' is not supported by fastlb yet "
                                 "(sdbm only).")
            rest = rest[1:]
        if rest == ["avalanche"]:
            proxy.hash_avalanche = True
        elif rest:
            raise ValueError(f"'hash-type' : unknown modifier '{rest[0]}'.")

    def _kw_cookie(self, proxy, args, origin):
        self._need_backend(proxy, "cookie")
        if not args:
            raise ValueError("'cookie' expects <cookie_name> as argument.")
        cookie = CookieSettings(name=args[0])
        modes = []
        i = 1
        while i < len(args):
            word = args[i]
            if word in ("insert", "rewrite", "prefix"):
                modes.append(word)
                cookie.mode = word
            elif word in ("indirect", "nocache", "postonly", "preserve", "httponly", "secure"):
                setattr(cookie, word, True)
            elif word == "domain":
                if i + 1 >= len(args):
                    raise ValueError("'domain' requires an argument.")
                cookie.domains.append(args[i + 1])
                i += 1
            elif word in ("maxidle", "maxlife"):
                if i + 1 >= len(args):
                    raise ValueError(f"'{word}' requires an argument.")
                setattr(cookie, word, max(1, parse_time_ms(args[i + 1]) // 1000))
                i += 1
            elif word in ("dynamic", "attr"):
                raise ValueError(f"'cookie ... {word}' is not supported by fastlb yet.")
            else:
                raise ValueError("'cookie' supports 'rewrite', 'insert', 'prefix', 'indirect', "
                                 "'nocache', 'postonly', 'domain', 'maxidle', 'maxlife', "
                                 "'dynamic' and 'attr' options.")
            i += 1
        if len(modes) > 1:
            raise ValueError("'cookie' supports only one of 'rewrite', 'insert' or 'prefix' "
                             "options.")
        if (cookie.maxidle or cookie.maxlife) and cookie.mode != "insert":
            raise ValueError("'cookie' maxidle and maxlife only work in 'insert' mode.")
        if cookie.maxidle or cookie.maxlife:
            raise ValueError("'cookie ... maxidle|maxlife' is not supported by fastlb yet.")
        if (cookie.postonly or cookie.preserve) and cookie.mode != "insert":
            raise ValueError("'cookie' postonly and preserve only work in 'insert' mode.")
        proxy.cookie = cookie

    def _kw_http_check(self, proxy, args, origin):
        self._need_backend(proxy, "http-check")
        check = proxy.httpchk
        if check is None:
            check = proxy.httpchk = HttpCheck()
            check.enabled = False
        if not args:
            raise ValueError("'http-check' expects 'send', 'expect' as an argument.")
        if args[0] == "send":
            i = 1
            while i < len(args):
                word = args[i]
                if i + 1 >= len(args) and word != "":
                    raise ValueError(f"'http-check send' : '{word}' expects an argument.")
                if word == "meth":
                    check.method = args[i + 1]
                elif word == "uri":
                    check.uri = args[i + 1]
                elif word == "ver":
                    check.version = args[i + 1]
                elif word == "hdr":
                    if i + 2 >= len(args):
                        raise ValueError("'http-check send' : 'hdr' expects <name> and <value>.")
                    check.headers.append((args[i + 1], args[i + 2]))
                    i += 1
                elif word == "body":
                    check.body = args[i + 1]
                else:
                    raise ValueError(f"'http-check send' : unknown parameter '{word}'.")
                i += 2
        elif args[0] == "expect":
            rest = args[1:]
            negate = False
            if rest[:1] == ["!"]:
                negate, rest = True, rest[1:]
            if len(rest) != 2 or rest[0] not in ("status", "rstatus", "string", "rstring"):
                raise ValueError("'http-check expect' expects 'status', 'rstatus', 'string' or "
                                 "'rstring' and a pattern.")
            kind, pattern = rest
            if kind in ("rstatus", "rstring"):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"'http-check expect {kind}' : invalid regex: {exc}") from None
            check.expect = (kind, negate, pattern)
        elif args[0] in ("disable-on-404", "send-state", "connect", "set-var", "unset-var",
                         "comment", "comment"):
            raise ValueError(f"'http-check {args[0]}' is not supported by fastlb yet.")
        else:
            raise ValueError(f"'http-check' only supports 'comment', 'connect', 'send', "
                             f"'expect', 'set-var', 'unset-var' (got '{args[0]}').")

    def _kw_dispatch(self, proxy, args, origin):
        self._need_backend(proxy, "dispatch")
        try:
            proxy.dispatch = addresses.parse_server_address(
                self._one_arg(args, "dispatch"), allow_no_port=False)
        except AddressError as exc:
            raise ValueError(f"'dispatch' : {exc}") from None

    def _kw_timeout(self, proxy, args, origin):
        if not args or args[0] not in TIMEOUT_NAMES:
            got = args[0] if args else ""
            raise ValueError("'timeout' supports 'client', 'server', 'connect', 'check', 'queue', "
                             "'http-keep-alive', 'http-request', 'tunnel', 'tarpit', 'client-fin' and "
                             f"'server-fin' (got '{got}')")
        name = args[0]
        if len(args) != 2:
            raise ValueError(f"'timeout {name}' expects an integer value (in milliseconds)")
        try:
            value = parse_time_ms(args[1])
        except ValueError:
            bad = next((c for c in args[1] if not c.isdigit()), args[1][:1])
            raise ValueError(f"unexpected character '{bad}' in 'timeout {name}'") from None
        side = _TIMEOUT_SIDE[name]
        if (side == "frontend" and proxy.kind == "backend") or \
                (side == "backend" and proxy.kind == "frontend"):
            self._warn(origin, f"'timeout {name}' will be ignored because {proxy.kind} "
                       f"'{proxy.name}' has no {side} capability")
        setattr(proxy.timeouts, name.replace("-", "_"), value)

    def _kw_option(self, proxy, args, origin, enable=True):
        if not args:
            raise ValueError("'option' expects an option name.")
        name = args[0]
        opts = proxy.options
        if name in ("tcplog", "httplog"):
            if not enable:
                raise ValueError(f"negation/default is not supported for option '{name}'.")
            if len(args) > 1:
                raise ValueError(f"'option {name}' does not take arguments here.")
            setattr(opts, name, True)
            if name == "httplog":
                opts.tcplog = False
        elif name == "dontlognull":
            opts.dontlognull = enable
        elif name == "redispatch":
            interval = -1
            if enable and len(args) > 1:
                try:
                    interval = int(args[1])
                except ValueError:
                    raise ValueError("'option redispatch' expects an integer interval.") from None
            opts.redispatch = interval if enable and interval != 0 else None
        elif name in ("tcpka", "clitcpka", "srvtcpka"):
            if name in ("tcpka", "clitcpka"):
                opts.clitcpka = enable
            if name in ("tcpka", "srvtcpka"):
                opts.srvtcpka = enable
        elif name == "log-health-checks":
            opts.log_health_checks = enable
        elif name == "allbackups":
            opts.allbackups = enable
        elif name == "httpchk":
            self._need_backend(proxy, "option httpchk")
            if not enable:
                proxy.httpchk = None
                return
            check = proxy.httpchk or HttpCheck()
            check.enabled = True
            words = args[1:]
            if len(words) == 1:
                check.uri = words[0]             # "option httpchk <uri>"
            elif len(words) >= 2:
                check.method, check.uri = words[0], words[1]
                if len(words) >= 3:
                    # "<version>" may carry "\r\nHost: x" as old configs do
                    version, _, extra = " ".join(words[2:]).partition("\r\n")
                    check.version = version
                    for line in extra.split("\r\n") if extra else []:
                        name, _, value = line.partition(":")
                        if name.strip():
                            check.headers.append((name.strip(), value.strip()))
            proxy.httpchk = check
        elif name == "forwardfor":
            opts.forwardfor = self._forwardfor(args[1:]) if enable else None
        elif name in ("http-keep-alive", "http-server-close", "httpclose"):
            # HAProxy's HTTP connection modes; the last one set wins, "no" returns to keep-alive
            opts.http_mode = name if enable else "http-keep-alive"
        elif name in _OPTIONS_NOT_YET:
            raise ValueError(f"'option {name}' is not supported by fastlb yet.")
        else:
            raise ValueError(f"unknown option '{name}'.")

    @staticmethod
    def _forwardfor(args):
        """``option forwardfor [except <network>] [header <name>] [if-none]``."""
        import ipaddress
        setting = ForwardFor()
        i = 0
        while i < len(args):
            if args[i] == "except" and i + 1 < len(args):
                try:
                    setting.except_net = ipaddress.ip_network(args[i + 1], strict=False)
                except ValueError:
                    raise ValueError(f"'option forwardfor' : invalid network '{args[i + 1]}'.") from None
                i += 2
            elif args[i] == "header" and i + 1 < len(args):
                setting.header = args[i + 1].lower()
                i += 2
            elif args[i] == "if-none":
                setting.if_none = True
                i += 1
            else:
                raise ValueError(f"'option forwardfor' : unknown parameter '{args[i]}'.")
        return setting

    def _kw_no(self, proxy, args, origin):
        if not args:
            raise ValueError("'no' expects an option.")
        if args[0] == "option":
            self._kw_option(proxy, args[1:], origin, enable=False)
        elif args[0] == "log" and len(args) == 1:
            proxy.logs = []
        else:
            raise ValueError(f"'no {args[0]}' is not supported.")

    def _kw_log(self, proxy, args, origin):
        if args == ["global"]:
            proxy.logs.extend(self.global_.logs)
            return
        self._log_statement(proxy.logs, args, in_global=False)

    def _kw_maxconn(self, proxy, args, origin):
        if proxy.kind == "backend":
            self._warn(origin, f"'maxconn' ignored because backend '{proxy.name}' has no frontend capability.")
            return
        proxy.maxconn = self._positive_int(args, "maxconn")

    def _kw_backlog(self, proxy, args, origin):
        proxy.backlog = self._positive_int(args, "backlog")

    def _kw_retries(self, proxy, args, origin):
        value = self._one_arg(args, "retries")
        if not value.isdigit():
            raise ValueError("'retries' expects an integer argument.")
        proxy.retries = int(value)

    def _kw_id(self, proxy, args, origin):
        value = self._one_arg(args, "id")
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{proxy.kind} '{proxy.name}' : custom id has to be > 0.")
        proxy.id = int(value)
        proxy.forced_id = True

    def _kw_disabled(self, proxy, args, origin):
        proxy.enabled = False

    def _kw_enabled(self, proxy, args, origin):
        proxy.enabled = True

    def _kw_description(self, proxy, args, origin):
        proxy.description = " ".join(args)

    def _kw_log_tag(self, proxy, args, origin):
        proxy.log_tag = self._one_arg(args, "log-tag")

    # -- shared helpers ---------------------------------------------------------------------
    @staticmethod
    def _one_arg(args, keyword, allow_more=False):
        if not args or (len(args) > 1 and not allow_more):
            raise ValueError(f"'{keyword}' expects exactly one argument.")
        return args[0]

    def _positive_int(self, args, keyword, size=False):
        text = self._one_arg(args, keyword)
        try:
            value = parse_size(text) if size else int(text)
        except ValueError:
            raise ValueError(f"'{keyword}' expects an integer argument.") from None
        if value <= 0:
            raise ValueError(f"'{keyword}' expects a positive integer argument.")
        return value

    def _log_statement(self, targets, args, in_global):
        if not args:
            raise ValueError("'log' expects either <address[:port]> and <facility> or 'global' as arguments.")
        if args[0] == "global":
            if in_global:
                raise ValueError("'log global' is only permitted in proxies.")
        kind, address, family = addresses.parse_log_address(args[0])
        target = LogTarget(kind=kind, address=address, family=family, text=args[0])
        rest = args[1:]
        while rest and rest[0] in ("len", "format", "sample"):
            if len(rest) < 2:
                raise ValueError(f"'log' : missing value after '{rest[0]}'.")
            if rest[0] == "len":
                if not rest[1].isdigit() or not 80 <= int(rest[1]) <= 65535:
                    raise ValueError(f"'log' : invalid 'len' value '{rest[1]}' (80..65535).")
                target.length = int(rest[1])
            elif rest[0] == "format":
                if rest[1] not in LOG_FORMATS:
                    raise ValueError(f"'log' : unknown log format '{rest[1]}'")
                target.format = rest[1]
            else:
                raise ValueError("'log ... sample' is not supported by fastlb yet.")
            rest = rest[2:]
        if not rest:
            raise ValueError("'log' expects <facility> as argument.")
        if rest[0] not in FACILITIES:
            raise ValueError(f"unknown log facility '{rest[0]}'")
        target.facility = FACILITIES.index(rest[0])
        if len(rest) > 1:
            if rest[1] not in LEVELS:
                raise ValueError(f"unknown optional log level '{rest[1]}'")
            target.max_level = LEVELS.index(rest[1])
        if len(rest) > 2:
            if rest[2] not in LEVELS:
                raise ValueError(f"unknown optional minimum log level '{rest[2]}'")
            target.min_level = LEVELS.index(rest[2])
        if len(rest) > 3:
            raise ValueError(f"'log' : unexpected argument '{rest[3]}'.")
        targets.append(target)

    # -- after all files --------------------------------------------------------------------
    def _resolve(self) -> None:
        """Cross-references, identifiers and HAProxy's configuration warnings."""
        for proxy in self.proxies:
            if proxy.has_frontend:
                self._resolve_frontend(proxy)
            if proxy.has_backend:
                self._check_backend(proxy)
            self._warn_missing_timeouts(proxy)
            if proxy.mode == "tcp" and (proxy.http_request_rules or proxy.http_response_rules or (
                    proxy.has_frontend and any(c for _, c, _ in proxy.switching_rules))):
                self.alerts.append(f"{proxy.type_name} '{proxy.name}': 'use_backend ... if' and "
                                   "'http-request' rules in mode tcp are not supported by fastlb yet.")
            if proxy.options.httplog and proxy.mode == "tcp":
                self.warnings.append(f"'option httplog' not usable with {proxy.type_name} '{proxy.name}' "
                                     "(needs 'mode http'). Falling back to 'option tcplog'.")
                proxy.options.httplog, proxy.options.tcplog = False, True
        # HAProxy's CLI proxy ("GLOBAL") takes number 1 when there is a stats socket
        self._assign_ids(self.proxies, reserved=(1,) if self.global_.stats_sockets else ())
        for proxy in self.proxies:
            self._assign_ids(proxy.servers)

    def _resolve_frontend(self, proxy: Proxy) -> None:
        if proxy.enabled and not proxy.listeners:
            self.warnings.append(f"{proxy.type_name} '{proxy.name}' has no 'bind' directive. "
                                 "Please declare it as a backend if this was intended.")
        names = [("use_backend", name) for name, _, _ in proxy.switching_rules]
        if proxy.default_backend:
            names.append(("default_backend", proxy.default_backend))
        for terms in proxy.acls.values():
            for term in terms:
                if term.kind == "nbsrv" and not any(p.name == term.arg and p.has_backend
                                                    for p in self.proxies):
                    self.alerts.append(f"Proxy '{proxy.name}': unable to find backend "
                                       f"'{term.arg}' referenced in ACL '{term.fetch}'.")
        for keyword, name in names:
            target = next((p for p in self.proxies if p.name == name and p.has_backend), None)
            if target is None:
                self.alerts.append(f"Proxy '{proxy.name}': unable to find required {keyword}: '{name}'.")
            elif proxy.mode == "http" and target.mode == "tcp":
                # (a tcp frontend may use an http backend: the session becomes HTTP there)
                role = "default backend" if keyword == "default_backend" else "backend"
                self.alerts.append(f"http {proxy.type_name} '{proxy.name}' ({proxy.origin}) tries to "
                                   f"use incompatible tcp backend '{name}' ({target.origin}) as its "
                                   f"{role} (see 'mode').")

    def _check_backend(self, proxy: Proxy) -> None:
        if proxy.dispatch and proxy.servers:
            self._warn(proxy.origin, f"backend '{proxy.name}' has both 'dispatch' and servers: "
                       "'dispatch' is ignored as in HAProxy.")
            proxy.dispatch = None

    def _warn_missing_timeouts(self, proxy: Proxy) -> None:
        t = proxy.timeouts
        missing = (proxy.has_frontend and not t.client) or \
                  (proxy.has_backend and (not t.connect or not t.server))
        if missing and proxy.enabled:
            self.warnings.append(
                f"missing timeouts for {proxy.type_name} '{proxy.name}'.\n"
                "   | While not properly invalid, you will certainly encounter various problems\n"
                "   | with such a configuration. To fix this, please ensure that all following\n"
                "   | timeouts are set to a non-zero value: 'client', 'connect', 'server'.")

    def _assign_ids(self, items, reserved=()) -> None:
        """Forced ids first, then the lowest free ids in declaration order (HAProxy's rule)."""
        used = {}
        for item in items:
            if item.forced_id:
                if item.id in used:
                    other = used[item.id]
                    self.alerts.append(f"parsing [{item.origin}] : '{item.name}' has the same ID "
                                       f"({item.id}) as '{other.name}' declared at {other.origin}.")
                used[item.id] = item
        next_id = 1
        for number in reserved:
            used.setdefault(number, None)
        for item in items:
            if item.forced_id:
                continue
            while next_id in used:
                next_id += 1
            item.id = next_id
            used[next_id] = item


def load_config(paths: list[str], env=None) -> tuple[Config, list[str]]:
    """Parse ``paths``; return the model and the warnings, or raise ``ConfigError``."""
    parser = Parser(env)
    config = parser.parse_files(paths)
    return config, parser.warnings
