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
from typing import Optional

from .addresses import AddressError
# (importing the keywords package registers every keyword)
from .keywords.registry import (IGNORED_GLOBAL, NOT_YET_GLOBAL, NOT_YET_PROXY, global_keyword,
                                proxy_keyword)
from .model import Config, GlobalSettings, Origin, Proxy
from .tokenizer import TokenizeError, tokenize

SECTIONS = ("global", "defaults", "frontend", "backend", "listen")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]+$")


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
            try:
                os.stat(path)
            except OSError as exc:       # HAProxy's words, and it stops here
                raise ConfigError([f"Cannot open configuration file/directory {path} : "
                                   f"{exc.strerror}"]) from None
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
                # HAProxy stops at the first file it cannot read, with this one alert
                raise ConfigError([f"Could not open configuration file {path} : "
                                   f"{exc.strerror}"], self.warnings) from None
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
                self.alert(origin, str(exc))
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
    def alert(self, origin: Origin, message: str) -> None:
        self.alerts.append(f"parsing [{origin}] : {message}")

    def warn(self, origin: Origin, message: str) -> None:
        self.warnings.append(f"parsing [{origin}] : {message}")

    # -- statements -------------------------------------------------------------------------
    def _statement(self, words: list[str], origin: Origin) -> None:
        keyword = words[0]
        if keyword in SECTIONS:
            self._open_section(words, origin)
            return
        if self.section is None:
            self.alert(origin, f"unknown keyword '{keyword}' out of section.")
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
                self.alert(origin, f"unexpected argument '{words[1]}' after 'global'.")
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
        elif keyword in NOT_YET_GLOBAL:
            self.alert(origin, f"'{keyword}' in 'global' section is not supported by fastlb yet.")
        else:
            self.alert(origin, f"unknown keyword '{keyword}' in 'global' section")

    def _proxy_keyword(self, proxy: Proxy, words: list[str], origin: Origin) -> None:
        keyword, args = words[0], words[1:]
        entry = proxy_keyword(keyword)
        if entry is None:
            if keyword in NOT_YET_PROXY:
                self.alert(origin, f"'{keyword}' in '{proxy.kind}' section is not supported by fastlb yet.")
            else:
                self.alert(origin, f"unknown keyword '{keyword}' in '{proxy.kind}' section")
            return
        # 'defaults' takes only the registered spelling (see registry.spelling_key)
        if proxy.kind == "defaults" and (keyword != entry.name or "defaults" not in entry.sections):
            self.alert(origin, f"'{keyword}' not allowed in 'defaults' section.")
            return
        if proxy.kind not in entry.sections:
            missing = "backend" if proxy.kind == "frontend" else "frontend"
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
            self.warn(proxy.origin, f"backend '{proxy.name}' has both 'dispatch' and servers: "
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
