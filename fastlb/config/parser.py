"""haproxy.cfg text -> typed model (``model.Config``).

Every problem found is collected with its file and line, and all of them are
reported together (``ConfigError``), as HAProxy does.  This module reads files,
sections and statements and checks the result as a whole; each keyword is handled by
the module that registers it in ``keywords.registry``, which also lists the keywords
fastlb refuses by name ("not supported yet") or accepts without effect.  A keyword it
has never heard of is "unknown".
"""
from __future__ import annotations

import os
import re
import socket
from typing import Optional

from ..logformat import LogFormatError, compile_format
from . import addresses
from .addresses import AddressError
from .units import parse_time_ms
from .conditions import ConditionError, caret_lines, evaluate
# (importing the keywords package registers every keyword)
from .keywords.registry import (IGNORED_GLOBAL, NEEDS_GLOBAL, NO_EFFECT_GLOBAL, NEEDS_PROXY, NOT_YET_GLOBAL,
                                NOT_YET_PROXY, REMOVED_PROXY, WARN_WITHOUT_CAPABILITY, did_you_mean,
                                global_keyword, global_words, proxy_keyword, proxy_words)
from .keywords.http import read_errorfile
from .model import Config, GlobalSettings, HttpErrors, Mailers, Origin, Proxy, User, Userlist
from .tokenizer import TokenizeError, tokenize

SECTIONS = ("global", "defaults", "frontend", "backend", "listen", "userlist",
            "http-errors", "mailers")
# HAProxy 2.6's other sections: refused by name, saying what each needs, and their lines
# skipped (not read as the previous section's keywords)
REFUSED_SECTIONS = {
    "peers": "peers (stick tables shared between nodes, issue #14)",
    "resolvers": "resolvers (DNS service discovery, issue #13)",
    "cache": "the cache",
    "fcgi-app": "FastCGI applications",
    "program": "programs run by the master",
    "ring": "rings (HAProxy's in-memory log buffers)",
    "log-forward": "log forwarding (HAProxy as a syslog relay)",
}
# fetches whose argument names a backend, which must exist
BACKEND_FETCHES = ("nbsrv", "be_conn", "queue", "avg_queue", "connslots")
USERLIST_FETCHES = ("http_auth", "http_auth_group")
MAX_NESTED_IFS = 100          # HAProxy's MAXNESTEDCONDS
# The states of an open .if block, as HAProxy's: "take" reads its lines, "drop" skips them
# until a later branch may be taken, "skip" skips them and every later branch.
_READ_BLOCKS = ("if-take", "elif-take", "else-take")
_TAKEN_OR_SKIPPED = ("if-take", "if-skip", "elif-take", "elif-skip")
_MESSAGE_DIRECTIVES = (".alert", ".warning", ".notice", ".diag")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]+$")


class ConfigError(Exception):
    """The configuration is invalid; ``alerts`` holds every message."""

    def __init__(self, alerts: list[str], warnings: Optional[list[str]] = None):
        super().__init__("\n".join(alerts))
        self.alerts = alerts
        self.warnings = warnings or []


class _StopReading(Exception):
    """A directive line HAProxy stops reading at: the rest of the file is not read;
    ``abort`` also stops the files after it, ``check_blocks`` still reports an open .if."""

    def __init__(self, abort: bool, check_blocks: bool):
        super().__init__()
        self.abort, self.check_blocks = abort, check_blocks


def collect_files(paths: list[str]) -> list[str]:
    """Expand ``-f`` arguments: a directory contributes its ``*.cfg`` files in order."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            names = sorted(n for n in os.listdir(path) if n.endswith(".cfg")
                           and os.path.isfile(os.path.join(path, n)))
            files.extend(os.path.join(path, n) for n in names)
        else:
            try:
                os.stat(path)
            except OSError as exc:       # HAProxy's words, and it stops here
                raise ConfigError([f"Cannot open configuration file/directory {path} : "
                                   f"{exc.strerror}"]) from None
            files.append(path)
    return files


class Parser:
    """Reads haproxy.cfg files into a ``Config``; use ``parse_files`` or ``parse_text``."""

    def __init__(self, env=None, diag: bool = False):
        self.env = os.environ if env is None else env
        self.diag = diag                  # -dD: .diag lines are written
        self.alerts: list[str] = []
        self.warnings: list[str] = []
        # (level, text, number of warnings before it): .notice/.diag lines, written in
        # their place among the warnings
        self.notices: list[tuple[str, str, int]] = []
        self.aborted = False
        self.global_ = GlobalSettings()
        self.proxies: list[Proxy] = []
        self.named_defaults: dict[str, Proxy] = {}
        self.defaults = Proxy(kind="defaults", name="", origin=Origin("", 0))
        self.files: list[str] = []
        self.section: Optional[str] = None
        self.proxy: Optional[Proxy] = None
        self.userlists: dict[str, Userlist] = {}
        self.http_errors: dict[str, HttpErrors] = {}
        self.mailers: dict[str, Mailers] = {}
        self.mailers_section: Mailers | None = None
        self.errors_section: Optional[HttpErrors] = None
        # default-path: where relative file names (errorfiles, maps, ACL files) are read
        # from; HAProxy's default is the directory it was started in
        self.path_policy: tuple[str, str] = ("current", "")
        self.path_base = os.getcwd()

    # -- entry points -------------------------------------------------------------------
    def parse_files(self, paths: list[str]) -> Config:
        for path in collect_files(paths):
            if self.aborted:
                break
            try:
                with open(path, encoding="utf-8", errors="surrogateescape") as handle:
                    text = handle.read()
            except OSError as exc:
                # HAProxy stops at the first file it cannot read, with this one alert
                raise ConfigError([f"Could not open configuration file {path} : "
                                   f"{exc.strerror}"], self.warnings) from None
            self.parse_text(text, path)
        return self.finish()

    def parse_text(self, text: str, filename: str) -> None:
        self.files.append(filename)
        self.section = None
        self.path_base = self.base_for(filename)
        errors_before = len(self.alerts)
        blocks: list[str] = []            # the state of each open .if, innermost last
        number, check_blocks = 0, True
        try:
            for number, raw in enumerate(text.splitlines(), start=1):
                origin = Origin(filename, number, self.path_base)
                try:
                    words = tokenize(raw, self.env)
                except TokenizeError as exc:
                    self.alert(origin, str(exc))
                    continue
                if not words:
                    continue
                if words[0] in (".if", ".elif", ".else", ".endif"):
                    self._conditional(blocks, words, origin)
                elif blocks and blocks[-1] not in _READ_BLOCKS:
                    continue
                elif words[0].startswith("."):
                    self._directive(words, origin)
                else:
                    self._statement(words, origin)
        except _StopReading as stop:
            self.aborted = stop.abort
            check_blocks = stop.check_blocks
        if blocks and check_blocks:
            self.alert(Origin(filename, number), "non-terminated '.if' block.")
            self.aborted = True
        if len(self.alerts) > errors_before:
            self.alerts.append(f"Error(s) found in configuration file : {filename}")

    def base_for(self, filename: str) -> str:
        """The directory relative names are read from in ``filename``, by default-path."""
        policy, path = self.path_policy
        here = os.path.dirname(filename) if "/" in filename else ""
        if policy == "config":
            base = here or "."
        elif policy == "parent":
            base = os.path.join(here, "..") if here else ".."
        elif policy == "origin":
            base = path
        else:
            base = "."
        return os.path.abspath(base)

    def finish(self) -> Config:
        if not self.files:
            self.alerts.append("No configuration file specified.")
        if not self.alerts:
            self._resolve()
        if not self.alerts and self.warnings and self.global_.zero_warning:
            raise ConfigError(["Some warnings were found and 'zero-warning' is set. Aborting."],
                              self.warnings)
        if self.aborted:              # HAProxy exits right after the file's errors
            raise ConfigError(self.alerts, self.warnings)
        if self.alerts:
            raise ConfigError(self.alerts + ["Fatal errors found in configuration."], self.warnings)
        return Config(global_=self.global_, proxies=self.proxies, files=self.files,
                      userlists=self.userlists, http_errors=self.http_errors,
                      mailers=self.mailers)

    # -- messages ---------------------------------------------------------------------------
    def alert(self, origin: Origin, message: str) -> None:
        self.alerts.append(f"parsing [{origin}] : {message}")

    def warn(self, origin: Origin, message: str) -> None:
        self.warnings.append(f"parsing [{origin}] : {message}")

    def messages(self) -> list[tuple[str, str]]:
        """(level, text) of every warning and notice, in the order they were found."""
        out = [("WARNING", text) for text in self.warnings]
        for level, text, before in reversed(self.notices):
            out.insert(before, (level, text))
        return out

    # -- conditional blocks and directives (HAProxy's "2.4. Conditional blocks") -------------
    def _conditional(self, blocks: list[str], words: list[str], origin: Origin) -> None:
        directive = words[0]
        if directive in (".else", ".endif") and len(words) > 1:
            self.alert(origin, f"Unexpected argument '{words[1]}' for '{directive}'.")
            raise _StopReading(abort=True, check_blocks=True)
        if directive == ".if":
            if len(blocks) + 1 >= MAX_NESTED_IFS:
                self.alert(origin, f"too many nested '.if', max is {MAX_NESTED_IFS}.")
                raise _StopReading(abort=True, check_blocks=False)
            if blocks and blocks[-1] not in _READ_BLOCKS:
                blocks.append("if-skip")      # inside a skipped block: not even evaluated
            else:
                blocks.append("if-take" if self._condition(words, origin) else "if-drop")
            return
        if not blocks:
            self.alert(origin, f"lone '{directive}' with no matching '.if'.")
            raise _StopReading(abort=True, check_blocks=directive == ".endif")
        if directive == ".endif":
            blocks.pop()
            return
        if blocks[-1] in ("else-take", "else-drop"):
            self.alert(origin, f"'{directive}' after '.else' is not permitted.")
            raise _StopReading(abort=True, check_blocks=False)
        if directive == ".elif":
            if blocks[-1] in _TAKEN_OR_SKIPPED:
                blocks[-1] = "elif-skip"
            else:
                blocks[-1] = "elif-take" if self._condition(words, origin) else "elif-drop"
        else:
            blocks[-1] = "else-drop" if blocks[-1] in _TAKEN_OR_SKIPPED else "else-take"

    def _condition(self, words: list[str], origin: Origin) -> bool:
        """The truth of a .if/.elif line; a broken condition stops everything, as in HAProxy."""
        text = " ".join(words[1:])
        try:
            return evaluate(text, self.env)
        except ConditionError as exc:
            self.alert(origin, f"{exc} in '{words[0]}' at position {exc.position + 1}:\n"
                       + caret_lines(words[0], text, exc.position))
            raise _StopReading(abort=True, check_blocks=False) from None

    def _directive(self, words: list[str], origin: Origin) -> None:
        directive = words[0]
        if directive not in _MESSAGE_DIRECTIVES:
            self.alert(origin, f"unknown directive '{directive}'.")
            raise _StopReading(abort=False, check_blocks=True)
        if len(words) > 2:
            self.alert(origin, f"Unexpected argument '{words[2]}' for '{directive}'. "
                       "Use quotes if the message should contain spaces.")
            return
        text = f"'{words[1] if len(words) > 1 else ''}'."
        if directive == ".alert":
            self.alert(origin, text)
            raise _StopReading(abort=True, check_blocks=False)
        if directive == ".warning":
            self.warn(origin, text)
        elif directive == ".notice" or self.diag:
            self.notices.append(("NOTICE" if directive == ".notice" else "DIAG",
                                 f"parsing [{origin}] : {text}", len(self.warnings)))

    # -- statements -------------------------------------------------------------------------
    def _statement(self, words: list[str], origin: Origin) -> None:
        keyword = words[0]
        if keyword in SECTIONS:
            self._open_section(words, origin)
            return
        if keyword in REFUSED_SECTIONS:
            self.alert(origin, f"'{keyword}' section needs {REFUSED_SECTIONS[keyword]}, which "
                       "fastlb does not support yet.")
            self.section, self.proxy = "refused", None
            return
        if self.section == "refused":
            return                    # the lines of a section already refused
        if self.section is None:
            self.alert(origin, f"unknown keyword '{keyword}' out of section.")
            return
        if self.section == "global":
            self._global_keyword(words, origin)
        elif self.section == "userlist":
            self._userlist_keyword(words, origin)
        elif self.section == "http-errors":
            self._http_errors_keyword(words, origin)
        elif self.section == "mailers":
            self._mailers_keyword(words, origin)
        else:
            self._proxy_keyword(self.proxy, words, origin)

    def _open_section(self, words: list[str], origin: Origin) -> None:
        kind = words[0]
        self.section = kind
        if kind == "userlist":
            self.proxy = None
            self._open_userlist(words, origin)
            return
        if kind == "global":
            self.proxy = None
            if len(words) > 1:
                self.alert(origin, f"unexpected argument '{words[1]}' after 'global'.")
            return
        if kind == "http-errors":
            self._open_http_errors(words, origin)
            return
        if kind == "mailers":
            self._open_mailers(words, origin)
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
                self.alert(origin, f"unexpected argument(s) after {kind} name: {' '.join(args)}")
            elif args[1] not in self.named_defaults:
                self.alert(origin, f"{kind} '{name}' : unable to find defaults section '{args[1]}'.")
            else:
                parent = self.named_defaults[args[1]]
        if kind != "defaults":
            if not name:
                self.alert(origin, f"'{kind}' expects <name> as argument.")
                name = f"<unnamed:{origin.line}>"
            elif not _NAME_RE.match(name):
                bad = next(c for c in name if not _NAME_RE.match(c))
                self.alert(origin, f"character '{bad}' is not permitted in '{kind}' name '{name}'.")
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

    def _open_userlist(self, words: list[str], origin: Origin) -> None:
        if len(words) != 2:
            self.alert(origin, "'userlist' expects <name> as argument.")
            name = f"<unnamed:{origin.line}>"
        else:
            name = words[1]
        if name in self.userlists:
            self.alert(origin, f"userlist '{name}' has the same name as another userlist "
                       f"(declared at {self.userlists[name].origin}).")
        self.userlist = self.userlists[name] = Userlist(name, origin)

    def _userlist_keyword(self, words: list[str], origin: Origin) -> None:
        """``group <name> [users <u>,...]`` and ``user <name> [password <hash> |
        insecure-password <password>] [groups <g>,...]``."""
        keyword, args = words[0], words[1:]
        userlist = self.userlist
        if keyword == "group":
            if not args:
                self.alert(origin, "'group' : missing group name.")
                return
            if args[0] in userlist.groups:
                self.alert(origin, f"group '{args[0]}' : already exists in userlist "
                           f"'{userlist.name}'.")
                return
            members = userlist.groups[args[0]] = []
            rest = args[1:]
            while rest:
                if rest[0] == "users" and len(rest) > 1:
                    members += [u for u in rest[1].split(",") if u]
                    rest = rest[2:]
                else:
                    self.alert(origin, f"'group' only supports 'users' (got '{rest[0]}').")
                    return
        elif keyword == "user":
            if not args:
                self.alert(origin, "'user' : missing user name.")
                return
            if args[0] in userlist.users:
                self.alert(origin, f"user '{args[0]}' : already exists in userlist "
                           f"'{userlist.name}'.")
                return
            user = User(args[0], "", True)
            rest = args[1:]
            while rest:
                if rest[0] in ("password", "insecure-password") and len(rest) > 1:
                    user.password, user.insecure = rest[1], rest[0] == "insecure-password"
                elif rest[0] == "groups" and len(rest) > 1:
                    user.groups += [g for g in rest[1].split(",") if g]
                else:
                    self.alert(origin, "'user' only supports 'password', 'insecure-password' "
                               f"and 'groups' (got '{rest[0]}').")
                    return
                rest = rest[2:]
            userlist.users[user.name] = user
        else:
            self.alert(origin, f"unknown keyword '{keyword}' in 'userlist' section")

    def _resolve_userlists(self) -> None:
        """A user's groups must exist; they become members of them."""
        for userlist in self.userlists.values():
            for user in userlist.users.values():
                for group in user.groups:
                    if group not in userlist.groups:
                        self.alerts.append(f"userlist '{userlist.name}': no such group "
                                           f"'{group}' for user '{user.name}'.")
                    elif user.name not in userlist.groups[group]:
                        userlist.groups[group].append(user.name)

    def _open_http_errors(self, words: list[str], origin: Origin) -> None:
        self.proxy = self.errors_section = None
        if len(words) < 2 or not words[1]:
            self.alert(origin, "missing name for http-errors section.")
            return
        name = words[1]
        if not _NAME_RE.match(name):
            bad = next(c for c in name if not _NAME_RE.match(c))
            self.alert(origin, f"character '{bad}' is not permitted in 'http-errors' name '{name}'.")
        if name in self.http_errors:
            self.alert(origin, f"http-errors section '{name}' already exists (declared at "
                               f"{self.http_errors[name].origin}).")
        if len(words) > 2:
            self.alert(origin, f"unexpected argument '{words[2]}' after 'http-errors {name}'.")
        self.errors_section = self.http_errors[name] = HttpErrors(name, origin)

    def _resolve_email_alert(self, proxy: Proxy) -> None:
        """HAProxy's checks once every section is read: all of from, to and mailers, or
        nothing; the mailers section must exist."""
        settings = proxy.email_alert
        if settings.set and not settings.active():
            self.warnings.append(
                f"'email-alert' will be ignored for {proxy.type_name} '{proxy.name}' (the "
                "presence any of 'email-alert from', 'email-alert level' 'email-alert "
                "mailers', 'email-alert myhostname', or 'email-alert to' requires each of "
                "'email-alert from', 'email-alert mailers' and 'email-alert to' to be "
                "present).")
            proxy.email_alert = type(settings)()
            return
        if settings.active():
            if settings.mailers not in self.mailers:
                self.alerts.append(f"Proxy '{proxy.name}': unable to find mailers "
                                   f"'{settings.mailers}'.")
            if not settings.myhostname:
                settings.myhostname = socket.gethostname()

    def _open_mailers(self, words: list[str], origin: Origin) -> None:
        self.proxy = self.mailers_section = None
        if len(words) < 2 or not words[1]:
            self.alert(origin, "missing name for mailers section.")
            return
        name = words[1]
        if not _NAME_RE.match(name):
            bad = next(c for c in name if not _NAME_RE.match(c))
            self.alert(origin, f"character '{bad}' is not permitted in 'mailers' name '{name}'.")
        if name in self.mailers:
            self.alerts.append(f"Parsing [{origin}]: mailers section '{name}' has the same "
                               f"name as another mailers section declared at "
                               f"{self.mailers[name].origin}.")
        self.mailers_section = self.mailers[name] = Mailers(name, origin)

    def _mailers_keyword(self, words: list[str], origin: Origin) -> None:
        """``mailer <name> <addr>:<port>`` and ``timeout mail <time>``, HAProxy's messages."""
        section, keyword = self.mailers_section, words[0]
        if keyword == "mailer":
            if len(words) < 3:
                self.alert(origin, "'mailer' expects <name> and <addr>[:<port>] as arguments.")
                return
            if not _NAME_RE.match(words[1]):
                bad = next(c for c in words[1] if not _NAME_RE.match(c))
                self.alert(origin, f"character '{bad}' is not permitted in server name "
                                   f"'{words[1]}'.")
                return
            try:
                address = addresses.parse_server_address(words[2], allow_no_port=False)
            except (AddressError, ValueError) as exc:
                self.alert(origin, f"'mailer {words[1]}' : {exc}")
                return
            if address.family not in (socket.AF_INET, socket.AF_INET6):
                self.alert(origin, f"'mailer {words[1]}' : TCP not supported for this address "
                                   "family.")
                return
            if section is not None:
                section.relays.append((words[1], address.ip, address.port))
        elif keyword == "timeout":
            if len(words) < 2 or words[1] != "mail":
                got = f" got '{words[1]}'" if len(words) > 1 else ""
                self.alert(origin, f"'timeout' expects 'mail' and <time> as arguments{got}.")
                return
            if len(words) < 3:
                self.alert(origin, "'timeout mail' expects <time> as argument.")
                return
            try:
                timeout = parse_time_ms(words[2])
            except ValueError as exc:
                self.alert(origin, f"{exc} in argument to <timeout mail>.")
                return
            if section is not None:
                section.timeout_ms = timeout
        else:
            self.alert(origin, f"unknown keyword '{keyword}' in 'mailers' section")

    def _http_errors_keyword(self, words: list[str], origin: Origin) -> None:
        if words[0] != "errorfile":
            self.alert(origin, f"unknown keyword '{words[0]}' in 'http-errors' section")
            return
        try:
            status, page = read_errorfile(words[1:], origin)
        except ValueError as exc:
            self.alert(origin, str(exc))
            return
        if self.errors_section is not None:
            self.errors_section.pages[status] = page

    def _resolve_errorfiles(self, proxy: Proxy) -> None:
        """errorfile / errorloc / errorfiles lines in order, each overriding the ones before
        it for the codes it sets (HAProxy resolves them once every section is read)."""
        pages: dict = {}
        for decl in proxy.error_decls:
            if decl[0] == "page":
                pages[decl[1]] = decl[2]
                continue
            if decl[0] == "reset":          # http-error ... default-errorfiles
                pages.pop(decl[1], None)
                continue
            _, name, codes, origin = decl
            section = self.http_errors.get(name)
            if section is None:
                self.alerts.append(f"proxy '{proxy.name}': unknown http-errors section "
                                   f"'{name}' (at {origin}).")
                continue
            for code in codes if codes is not None else sorted(section.pages):
                if code in section.pages:
                    pages[code] = section.pages[code]
                else:
                    self.warnings.append(f"config: proxy '{proxy.name}' : status '{code}' not "
                                         f"declared in http-errors section '{name}' (at {origin}).")
        proxy.errorfiles = pages
        for rule in proxy.http_request_rules + proxy.http_response_rules:
            if rule.reply == "errors":
                section = self.http_errors.get(rule.errors_name)
                if section is None:
                    self.alerts.append(f"proxy '{proxy.name}': unknown http-errors section "
                                       f"'{rule.errors_name}' referenced by an http reply.")
                    continue
                if rule.status not in section.pages:
                    self.warnings.append(f"Proxy '{proxy.name}': status '{rule.status}' "
                                         "referenced by an http reply not declared in "
                                         f"http-errors section '{rule.errors_name}'.")
                # an undeclared status falls back to HAProxy's own page
                rule.page = section.pages.get(rule.status)

    # -- keywords -------------------------------------------------------------------------
    def _global_keyword(self, words: list[str], origin: Origin) -> None:
        keyword, args = words[0], words[1:]
        entry = global_keyword(keyword)
        if entry is not None:
            try:
                entry.handler(self, self.global_, args, origin)
            except (ValueError, AddressError) as exc:
                self.alert(origin, str(exc))
        elif keyword in IGNORED_GLOBAL:
            pass
        elif keyword in NO_EFFECT_GLOBAL:
            self.warn(origin, f"'{keyword}' has no effect in fastlb ({NO_EFFECT_GLOBAL[keyword]}).")
        elif keyword in NOT_YET_GLOBAL:
            self.alert(origin, f"'{keyword}' in 'global' section is not supported by fastlb yet.")
        elif keyword in NEEDS_GLOBAL:
            self.alert(origin, f"'{keyword}' in 'global' section needs {NEEDS_GLOBAL[keyword]}, "
                       "which fastlb does not support yet.")
        else:
            self.alert(origin, f"unknown keyword '{keyword}' in 'global' section"
                       + did_you_mean(keyword, global_words()))

    def _proxy_keyword(self, proxy: Proxy, words: list[str], origin: Origin) -> None:
        keyword, args = words[0], words[1:]
        entry = proxy_keyword(keyword)
        if entry is None:
            if keyword in REMOVED_PROXY:
                self.alert(origin, REMOVED_PROXY[keyword].format(kw=keyword,
                                                                 arg=args[0] if args else ""))
            elif keyword in NOT_YET_PROXY:
                self.alert(origin, f"'{keyword}' in '{proxy.kind}' section is not supported by fastlb yet.")
            elif keyword in NEEDS_PROXY:
                self.alert(origin, f"'{keyword}' in '{proxy.kind}' section needs "
                           f"{NEEDS_PROXY[keyword]}, which fastlb does not support yet.")
            else:
                self.alert(origin, f"unknown keyword '{keyword}' in '{proxy.kind}' section"
                           + did_you_mean(keyword, proxy_words()))
            return
        # 'defaults' takes only the registered spelling (see registry.spelling_key)
        if proxy.kind == "defaults" and (keyword != entry.name or "defaults" not in entry.sections):
            self.alert(origin, f"'{keyword}' not allowed in 'defaults' section.")
            return
        if proxy.kind not in entry.sections:
            missing = "backend" if proxy.kind == "frontend" else "frontend"
            if entry.name in WARN_WITHOUT_CAPABILITY:
                self.warn(origin, f"'{entry.name}' ignored because {proxy.kind} "
                          f"'{proxy.name}' has no {missing} capability.")
                return
            self.alert(origin, f"'{entry.name}' not allowed because {proxy.kind} '{proxy.name}' "
                       f"has no {missing} capability.")
            return
        try:
            entry.handler(self, proxy, args, origin)
        except (ValueError, AddressError) as exc:
            self.alert(origin, str(exc))

    # -- after all files --------------------------------------------------------------------
    def _resolve(self) -> None:
        """Cross-references, identifiers and HAProxy's configuration warnings."""
        self._resolve_userlists()
        from .keywords.global_section import load_case_adjust_file
        failure = load_case_adjust_file(self.global_)
        if failure:
            self.alerts.append(failure)
        for proxy in self.proxies:
            self._resolve_email_alert(proxy)
            self._resolve_errorfiles(proxy)
            if proxy.has_frontend:
                self._resolve_frontend(proxy)
            if proxy.has_backend:
                self._check_backend(proxy)
            self._warn_missing_timeouts(proxy)
            self._check_mux_protocols(proxy)
            self._check_usesrc(proxy)
            page = proxy.stats
            if page is not None and page.rules and (page.auths or page.realm_given):
                self.alerts.append(f"proxy '{proxy.name}': stats 'auth'/'realm' and "
                                   "'http-request' can't be used at the same time.")
            if proxy.mode == "tcp" and not self._upgrades_to_http(proxy):
                self._ignore_http_settings(proxy)
            if proxy.mode == "tcp" and (proxy.http_request_rules or proxy.http_response_rules or
                                        proxy.redirect_rules):
                self.alerts.append(f"{proxy.type_name} '{proxy.name}': 'http-request' rules in "
                                   "mode tcp are not supported by fastlb yet.")
            if proxy.mode == "http" and proxy.tcp_response_rules:
                self.alerts.append(f"{proxy.type_name} '{proxy.name}': 'tcp-response content' "
                                   "rules in mode http are not supported by fastlb yet.")
            if proxy.has_frontend and proxy.log_format and proxy.mode != "http":
                try:            # HAProxy reads the format once the section's mode is known
                    compile_format(proxy.log_format, http=False, check_only=True)
                except LogFormatError as exc:
                    self.alerts.append(f"parsing [{proxy.origin}] : {proxy.type_name} "
                                       f"'{proxy.name}' : failed to parse log-format : {exc}")
            if proxy.options.httplog and proxy.mode == "tcp":
                self.warnings.append(f"'option httplog' not usable with {proxy.type_name} '{proxy.name}' "
                                     "(needs 'mode http'). Falling back to 'option tcplog'.")
                proxy.options.httplog, proxy.options.tcplog = False, True
        # HAProxy's CLI proxy ("GLOBAL") takes number 1 when there is a stats socket
        self._assign_ids(self.proxies, reserved=(1,) if self.global_.stats_sockets else ())
        for proxy in self.proxies:
            self._assign_ids(proxy.servers)
            self._assign_ids(proxy.listeners, label=lambda l: f"bind {l.text or l.describe()}")

    def _check_usesrc(self, proxy: Proxy) -> None:
        """usesrc hdr_ip() reads a request header: a TCP backend ignores it (warned)."""
        if proxy.mode == "http" or not proxy.has_backend:
            return
        for holder in [proxy] + proxy.servers:
            if holder.usesrc and holder.usesrc[0] == "hdr":
                self.warnings.append(f"proxy '{proxy.name}' : ignoring use of header "
                                     f"{holder.usesrc[1]} as source IP in non-HTTP mode.")
                holder.usesrc = None

    def _check_mux_protocols(self, proxy: Proxy) -> None:
        """bind/server ``proto``: the multiplexer must serve the proxy's mode and side."""
        from .keywords.proxy import MUX_MODES
        lines = [(listener.proto, f"'bind {listener.text or listener.describe()}'",
                  listener.origin, listener.proto == "fcgi")
                 for listener in (proxy.listeners if proxy.has_frontend else ())]
        lines += [(server.proto, f"server '{server.name}'", server.origin, False)
                  for server in (proxy.servers if proxy.has_backend else ())]
        for proto, what, origin, wrong_side in lines:
            if proto and (wrong_side or MUX_MODES[proto] != proxy.mode):
                self.alerts.append(f"proxy '{proxy.name}' : MUX protocol '{proto}' is "
                                   f"not usable for {what} at [{origin}].")

    def _upgrades_to_http(self, proxy: Proxy) -> bool:
        """A tcp proxy whose sessions may become HTTP (HAProxy's PR_O_HTTP_UPG): a
        'switch-mode http' rule, or an HTTP backend among its targets."""
        if any(rule.action == "switch-mode" for rule, _ in proxy.tcp_content_rules):
            return True
        if not proxy.has_frontend:
            return False
        names = {name for name, _, _ in proxy.switching_rules} | {proxy.default_backend}
        return any(p.name in names and p.has_backend and p.mode == "http"
                   for p in self.proxies) or any("%" in name for name in names if name)

    def _ignore_http_settings(self, proxy: Proxy) -> None:
        """What only HTTP uses, in a tcp proxy: warned about and dropped, as HAProxy does."""
        where = f"for {proxy.type_name} '{proxy.name}'"
        if proxy.capture_cookie is not None:
            self.warnings.append(f"'capture' statement ignored {where} as it requires HTTP mode.")
            proxy.capture_cookie = None
        for attr, words in (("http_request_rules", "'http-request' rules"),
                            ("http_response_rules", "'http-response' rules"),
                            ("http_after_response_rules", "'http-after-response' rules"),
                            ("redirect_rules", "'redirect' rules")):
            if getattr(proxy, attr):
                self.warnings.append(f"{words} ignored {where} as they require HTTP mode.")
                setattr(proxy, attr, [])
        opts = proxy.options
        # (option, attribute, the side it belongs to), in HAProxy's order
        for name, attr, side in (("forwardfor", "forwardfor", None),
                                 ("originalto", "originalto", None),
                                 ("checkcache", "checkcache", "backend"),
                                 ("http-buffer-request", "http_buffer_request", None),
                                 ("http-ignore-probes", "ignore_probes", "frontend"),
                                 ("prefer-last-server", "prefer_last_server", "backend"),
                                 ("http-use-proxy-header", "http_use_proxy_header",
                                  "frontend"),
                                 ("http-pretend-keepalive", "http_pretend_keepalive",
                                  "backend")):
            if side == "backend" and not proxy.has_backend or \
                    side == "frontend" and not proxy.has_frontend:
                continue
            if getattr(opts, attr):
                self.warnings.append(f"'option {name}' ignored {where} as it requires HTTP "
                                     "mode.")
                setattr(opts, attr, None if attr in ("forwardfor", "originalto") else False)

    def _resolve_frontend(self, proxy: Proxy) -> None:
        if proxy.enabled and not proxy.listeners:
            self.warnings.append(f"{proxy.type_name} '{proxy.name}' has no 'bind' directive. "
                                 "Please declare it as a backend if this was intended.")
        names = [("use_backend", name) for name, _, _ in proxy.switching_rules
                 if "%" not in name]          # a name computed per request: any backend
        if proxy.default_backend:
            names.append(("default_backend", proxy.default_backend))
        for terms in proxy.acls.values():
            for term in terms:
                if term.kind in USERLIST_FETCHES and term.arg not in self.userlists:
                    self.alerts.append(f"Proxy '{proxy.name}': unable to find userlist "
                                       f"'{term.arg}' referenced in ACL '{term.fetch}'.")
                if term.kind in BACKEND_FETCHES and term.arg and not any(
                        p.name == term.arg and p.has_backend for p in self.proxies):
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
        names = {server.name for server in proxy.servers}
        for name, _, origin in proxy.server_rules:
            if "%" not in name and name not in names:
                self.alerts.append(f"config : {proxy.type_name} '{proxy.name}' : unable to "
                                   f"find server '{name}' referenced in a 'use-server' rule "
                                   f"({origin}).")
        if proxy.dispatch and proxy.servers:
            self.warn(proxy.origin, f"backend '{proxy.name}' has both 'dispatch' and servers: "
                       "'dispatch' is ignored as in HAProxy.")
            proxy.dispatch = None
        if proxy.options.transparent:
            if proxy.balance_set:
                self.alerts.append(f"{proxy.type_name} '{proxy.name}' cannot use both "
                                   "transparent and balance mode.")
            elif proxy.dispatch:
                proxy.options.transparent = False     # dispatch wins, as in HAProxy

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

    def _assign_ids(self, items, reserved=(), label=lambda item: item.name) -> None:
        """Forced ids first, then the lowest free ids in declaration order (HAProxy's rule)."""
        used = {}
        for item in items:
            if item.forced_id:
                if item.id in used:
                    other = used[item.id]
                    self.alerts.append(f"parsing [{item.origin}] : '{label(item)}' has the same "
                                       f"ID ({item.id}) as '{label(other)}' declared at "
                                       f"{other.origin}.")
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
