"""Changes an operator makes to servers and frontends at run time, shared by the stats
socket (cli.py) and the stats page's admin form (applets/page.py).

Every change goes to shared memory; the backend's table version is bumped, so every
worker rebuilds its tables for that backend before its next pick.  The messages are
HAProxy's (spec 7.5), to the backend's log targets and to stderr.
"""
from __future__ import annotations

from typing import Optional

from ..http.cookies import dynamic_cookie
from ..logsink import ALERT, EMERG, NOTICE, LogSink, console
from .. import shm as shared
from .commands import CommandError


class AdminError(CommandError):
    """A refused change; the text is HAProxy's answer."""


class Admin:
    def __init__(self, tables, state: shared.SharedState, log_pid: int, program: str = "fastlb",
                 quiet: bool = False):
        self.tables = tables
        self.state = state
        self.quiet = quiet
        self.dyncookies: dict = {}       # backend index -> [in use, key] once changed
        g = tables.config.global_
        self.sinks = [LogSink(be.proxy.logs, be.proxy.log_tag or g.log_tag or program, log_pid,
                              g.log_send_hostname) for be in tables.backends]

    # -- lookups ----------------------------------------------------------------------------
    def backend(self, name: str):
        """By name, or "#<id>" (the stats page's b=#3)."""
        for be in self.tables.backends:
            if be.proxy.name == name or (name.startswith("#") and name[1:].isdigit()
                                          and be.proxy.id == int(name[1:])):
                return be
        return None

    def cli_backend(self, args: list):
        """The backend a command's first argument names, as HAProxy's cli_find_backend()."""
        if not args or not args[0]:
            raise AdminError("A backend name is expected.")
        be = self.backend(args[0])
        if be is None:
            raise AdminError("No such backend.")
        return be

    def server(self, spec: str):
        """``backend/server`` -> (BackendTable, index); AdminError as HAProxy words it."""
        if "/" not in spec:
            raise AdminError("Require 'backend/server'.")
        be_name, srv_name = spec.split("/", 1)
        be = self.backend(be_name)
        if be is None:
            raise AdminError("No such backend.")
        return be, self.server_in(be, srv_name)

    @staticmethod
    def server_in(be, name: str) -> int:
        for i, server in enumerate(be.server_models):
            if server is not None and (server.name == name or
                                       (name.startswith("#") and name[1:].isdigit()
                                        and server.id == int(name[1:]))):
                return i
        raise AdminError("No such server.")

    def frontend(self, name: str):
        for fe in self.tables.frontends:
            if fe.proxy.name == name:
                return fe
        raise AdminError("No such frontend.")

    # -- messages ---------------------------------------------------------------------------
    def _log(self, be, level: int, message: str, stderr: str = "") -> None:
        self.sinks[be.index].send(level, message)
        if not self.quiet:
            console("ALERT" if level == EMERG else "WARNING", stderr or message)

    @staticmethod
    def label(be, i: int) -> str:
        """"Server b/s" or "Backup Server b/s", as the messages name it."""
        server = be.server_models[i]
        return f"{'Backup ' if server.backup else ''}Server {be.proxy.name}/{server.name}"

    def _no_server_left(self, be, before: tuple) -> None:
        if sum(before) and not sum(be.usable_counts(self.state)):
            proxy = be.proxy
            self._log(be, EMERG, f"{proxy.type_name} {proxy.name} has no server available!",
                      f"{proxy.type_name} '{proxy.name}' has no server available!")

    # -- state ------------------------------------------------------------------------------
    def _set_bits(self, be, i: int, set_bits: int = 0, clear_bits: int = 0) -> bool:
        k = be.first_server_shm + i
        before = self.state.server_state(k)
        after = (before | set_bits) & ~clear_bits
        if after == before:
            return False
        self.state.set_server_state(be.index, k, after)
        return True

    def maint(self, be, i: int) -> bool:
        """Forced maintenance (clears forced drain)."""
        k = be.first_server_shm + i
        counts = be.usable_counts(self.state)
        was_maint = self.state.server_state(k) & shared.ST_ANY_MAINT
        changed = self._set_bits(be, i, shared.ST_MAINT, shared.ST_DRAIN)
        if changed and not was_maint:
            active, backup = be.usable_counts(self.state)
            sessions = self.state.summed(self.state.srv_off + k)
            self._log(be, ALERT, f"{self.label(be, i)} is going DOWN for maintenance. "
                                 f"{active} active and {backup} backup servers left. {sessions} "
                                 f"sessions active, 0 requeued, 0 remaining in queue.")
            self._no_server_left(be, counts)
        return changed

    def ready(self, be, i: int) -> bool:
        """Leave maintenance and drain; a server leaving maintenance starts with health =
        rise, so it is up at once unless its checks say otherwise later."""
        k = be.first_server_shm + i
        server = be.server_models[i]
        bits = self.state.server_state(k)
        if bits & shared.ST_ANY_MAINT:
            if server.check:
                self.state.store(self.state.server_word(k, shared.SRV_HEALTH), server.rise)
            changed = self._set_bits(be, i, shared.ST_RUNNING,
                                     shared.ST_ANY_MAINT | shared.ST_DRAIN)
            self._log(be, NOTICE, f"{self.label(be, i)} is UP/READY (leaving forced "
                                  "maintenance).")
            return changed
        if bits & shared.ST_DRAIN:
            changed = self._set_bits(be, i, 0, shared.ST_DRAIN)
            self._log(be, NOTICE, f"{self.label(be, i)} is UP (leaving forced drain).")
            return changed
        return False

    def drain(self, be, i: int) -> bool:
        """Forced drain (clears forced maintenance)."""
        k = be.first_server_shm + i
        counts = be.usable_counts(self.state)
        bits = self.state.server_state(k)
        set_bits = shared.ST_DRAIN | (shared.ST_RUNNING if bits & shared.ST_ANY_MAINT else 0)
        changed = self._set_bits(be, i, set_bits, shared.ST_ANY_MAINT)
        if changed:
            active, backup = be.usable_counts(self.state)
            queued = self.state.total(self.state.srvq_off + k)
            self._log(be, NOTICE, f"{self.label(be, i)} enters drain state. {active} "
                                  f"active and {backup} backup servers online. 0 sessions "
                                  f"requeued, {queued} total in queue.")
            self._no_server_left(be, counts)
        return changed

    def set_health_checks(self, be, i: int, enabled: bool) -> bool:
        """disable|enable health: a server whose checks are off counts as up."""
        k = be.first_server_shm + i
        server = be.server_models[i]
        if not server.check:
            return False
        if enabled:
            health = self.state.load(self.state.server_word(k, shared.SRV_HEALTH))
            up = shared.ST_RUNNING if health >= server.rise else 0
            bits = self.state.server_state(k)
            return self._set_bits(be, i, up, shared.ST_CHECK_OFF |
                                  (0 if up else shared.ST_RUNNING & bits))
        return self._set_bits(be, i, shared.ST_CHECK_OFF | shared.ST_RUNNING)

    def set_check_health(self, be, i: int, running: bool) -> bool:
        """The stats page's hrunn / hdown: force the check result."""
        k = be.first_server_shm + i
        server = be.server_models[i]
        self.state.store(self.state.server_word(k, shared.SRV_HEALTH),
                         server.rise + server.fall - 1 if running else 0)
        return self._set_bits(be, i, shared.ST_RUNNING if running else 0,
                              0 if running else shared.ST_RUNNING)

    # -- weights and limits -----------------------------------------------------------------
    def set_weight(self, be, i: int, text: str) -> None:
        """``N`` or ``N%`` of the configured weight (HAProxy: 0..256)."""
        server = be.server_models[i]
        try:
            if text.endswith("%"):
                weight = server.weight * int(text[:-1]) // 100
            else:
                weight = int(text)
        except ValueError:
            raise AdminError("Require <weight> or <weight%>.") from None
        if not 0 <= weight <= 256:
            raise AdminError("Absolute weight can only be between 0 and 256 inclusive.")
        if be.proxy.balance in ("static-rr",) or \
                (be.proxy.hash_type != "consistent" and be.proxy.balance in
                 ("source", "uri", "url_param", "hdr")):
            if weight not in (0, server.weight):
                raise AdminError("Backend is using a static LB algorithm and only accepts "
                                 "weights '0%' and '100%'.")
        self.state.set_server_weight(be.index, be.first_server_shm + i, weight)

    def get_weight(self, be, i: int) -> str:
        k = be.first_server_shm + i
        return (f"{self.state.load(self.state.server_word(k, shared.SRV_WEIGHT))} "
                f"(initial {be.server_models[i].weight})")

    def set_server_maxconn(self, be, i: int, text: str) -> None:
        if not text.isdigit():
            raise AdminError("Integer value expected.")
        k = be.first_server_shm + i
        self.state.store(self.state.server_word(k, shared.SRV_MAXCONN), int(text))
        self.state.add(self.state.backend_word(be.index, shared.BE_VERSION), 1)

    def set_frontend_maxconn(self, fe, text: str) -> None:
        if not text.isdigit():
            raise AdminError("Integer value expected.")
        self.state.store(self.state.frontend_word(fe.index, shared.FE_MAXCONN), int(text))

    # -- dynamic cookies (HAProxy's "enable|disable dynamic-cookie", "set dynamic-cookie-key")
    def dynamic_cookies(self, be) -> list:
        """[in use, key] of a backend's dynamic cookies, from its configuration until a
        command changes them."""
        states = self.dyncookies
        if be.index not in states:
            proxy = be.proxy
            states[be.index] = [bool(proxy.cookie and proxy.cookie.dynamic),
                                proxy.dynamic_cookie_key]
        return states[be.index]

    def set_dynamic_cookies(self, be, enabled: Optional[bool] = None,
                            key: Optional[str] = None) -> None:
        """Each server without a cookie of its own gets the hash of the key, its address
        and port (or none when disabled or keyless); every worker picks them up at its
        next request for that backend."""
        state = self.dynamic_cookies(be)
        if enabled is not None:
            state[0] = enabled
        if key is not None:
            state[1] = key
        in_use = bool(state[0] and state[1] is not None)
        for i, server in enumerate(be.spec.servers):
            if in_use and server.model is not None and server.model.cookie is None:
                value = dynamic_cookie(state[1], server.family, server.ip, server.port)
                if value is not None:
                    self.state.store(self.state.server_word(be.first_server_shm + i,
                                                            shared.SRV_DYNCOOKIE),
                                     int(value, 16))
        word = self.state.backend_word(be.index, shared.BE_DYNCOOKIE)
        self.state.store(word, ((self.state.load(word) >> 1) + 1) << 1 | in_use)

    def shutdown_sessions(self, be, i: int) -> None:
        """Every worker closes its sessions on that server at its next loop turn."""
        k = be.first_server_shm + i
        epoch = self.state.add(shared.G_SHUTDOWN, 1) + 1
        self.state.store(self.state.server_word(k, shared.SRV_SHUTDOWN), epoch)
