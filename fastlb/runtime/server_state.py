"""Server state files (global ``server-state-file`` / ``server-state-base``, per backend
``load-server-state-from-file global|local`` and ``server-state-file-name``): at start,
the servers take the states the file holds, as HAProxy 2.6's apply_server_state() gives
them (src/server_state.c).  The file is what ``show servers state`` wrote (version 1),
from fastlb or from haproxy.  A reload carries the states in memory instead
(generation.carry_server_states), as they are at least as recent as any file."""
from __future__ import annotations

import time

from .. import shm as shared
from ..stats.collect import HCHK

VERSION_1_FIELDS = (19, 25)     # HAProxy's SRV_STATE_FILE_{MIN,MAX}_FIELDS_VERSION_1
OP_STOPPED, OP_STARTING, OP_RUNNING, OP_STOPPING = 0, 1, 2, 3
ADMIN_FMAINT, ADMIN_CMAINT, ADMIN_FDRAIN = 0x01, 0x04, 0x08
ADMIN_IGNORED = 0x02 | 0x10 | 0x20 | 0x40     # inherited, resolution and FQDN flags
ADMIN_VALID = (0, ADMIN_FMAINT, ADMIN_CMAINT, ADMIN_CMAINT | ADMIN_FMAINT,
               ADMIN_CMAINT | ADMIN_FDRAIN, ADMIN_FDRAIN)
CHK_CONFIGURED, CHK_ENABLED = 0x02, 0x04
CHK_STATE_BITS = 0x01 | 0x02 | 0x04 | 0x08 | 0x10


def state_path(base: str | None, name: str) -> str:
    if name.startswith("/") or not base:
        return name
    return base + ("" if base.endswith("/") else "/") + name


def read_state_file(path: str, warn, owner: str) -> list | None:
    """The lines' fields, or None (warned) when the file cannot be used at all."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            first = handle.readline()
            if first.strip() != "1":
                warn(f"{owner}Can't get version of the {'global ' if not owner else ''}server "
                     f"state file '{path}'.")
                return None
            lines = []
            for number, line in enumerate(handle, start=1):
                if line.startswith("#") or not line.strip():
                    continue
                fields = line.split()
                if not VERSION_1_FIELDS[0] <= len(fields) <= VERSION_1_FIELDS[1]:
                    warn(f"{owner}corrupted {'global ' if not owner else ''}server state file "
                         f"'{path}' at line {number}.")
                    return None
                lines.append(fields)
            return lines
    except OSError as exc:
        warn(f"{owner}Can't open {'global ' if not owner else ''}server state file '{path}': "
             f"{exc.strerror}" + ("." if owner else ""))
        return None


def _number(text: str):
    try:
        return int(text)
    except ValueError:
        return None


def invalid_fields(params: list) -> str:
    """HAProxy's validation of a line's fields (after the backend and server names)."""
    msg = []
    op, admin, uweight, iweight, last, status, result, health, check, agent, bk_forced, \
        srv_forced = (_number(p) for p in params[1:13])
    if op not in (OP_STOPPED, OP_STARTING, OP_RUNNING, OP_STOPPING):
        msg.append(f"invalid srv_op_state value '{params[1]}'")
    if admin is None or (admin & ~ADMIN_IGNORED) not in ADMIN_VALID:
        msg.append(f"invalid srv_admin_state value '{params[2]}'")
    for value, text, name in ((uweight, params[3], "srv_uweight"),
                              (iweight, params[4], "srv_iweight")):
        if value is None or not 0 <= value <= 256:
            msg.append(f"invalid {name} value '{text}'")
    if last is None:
        msg.append(f"invalid srv_last_time_change value '{params[5]}'")
    if status is None or not 0 <= status < len(HCHK):
        msg.append(f"invalid srv_check_status value '{params[6]}'")
    if result not in (0, 1, 2, 3, 4):
        msg.append(f"invalid srv_check_result value '{params[7]}'")
    if health is None:
        msg.append(f"invalid srv_check_health value '{params[8]}'")
    for value, text, name in ((check, params[9], "srv_check_state"),
                              (agent, params[10], "srv_agent_state")):
        if value is None or value & ~CHK_STATE_BITS:
            msg.append(f"invalid {name} value '{text}'")
    for value, text, name in ((bk_forced, params[11], "bk_f_forced_id"),
                              (srv_forced, params[12], "srv_f_forced_id")):
        if value not in (0, 1):
            msg.append(f"invalid {name} value '{text}'")
    return "".join(", " + m for m in msg)


def usable_counts(st: shared.SharedState, be, but: int) -> tuple:
    """(active, backup) servers up and not in maintenance, server ``but`` left out."""
    active = backup = 0
    for i, model in enumerate(be.server_models):
        k = be.first_server_shm + i
        if model is None or k == but:
            continue
        bits = st.server_state(k)
        if bits & shared.ST_RUNNING and not bits & shared.ST_ANY_MAINT:
            backup, active = (backup + 1, active) if model.backup else (backup, active + 1)
    return active, backup


def apply_line(st: shared.SharedState, be, k: int, server, params: list, warn) -> None:
    """srv_state_srv_update(): one server's state from its line (params: from srv_addr)."""
    op, admin, uweight, iweight, last = (int(p) for p in params[1:6])
    status, health, check_state = int(params[6]), int(params[8]), int(params[9])
    admin &= ~ADMIN_IGNORED
    backend = be.index
    bits = st.server_state(k)
    rise, fall = server.rise, server.fall
    stopped = op == OP_STOPPED or (op == OP_STOPPING and fall == 1)
    if stopped and st.server_up(k):
        # HAProxy's srv_set_stopped() message (its checks would say so; without checks
        # fastlb keeps the server running, the maintenance that stopped it applies below)
        active, backup = usable_counts(st, be, k)
        warn(f"{'Backup Server' if server.backup else 'Server'} {be.proxy.name}/{server.name} "
             f"is DOWN, changed from server-state after a reload. {active} active and "
             f"{backup} backup servers left. 0 sessions active, 0 requeued, 0 remaining in "
             "queue.")
    if server.check:
        # the operational state, as HAProxy recovers it (STARTING and STOPPING are up
        # states there; fastlb has no slow start or soft stop: they are running)
        if stopped:
            health, bits = 0, bits & ~shared.ST_RUNNING
        elif op == OP_STARTING and rise > 1:
            health = health if 1 <= health < rise else rise - 1
            bits |= shared.ST_RUNNING
        elif op == OP_STOPPING:
            health = health if rise <= health <= rise + fall - 2 else rise
            bits |= shared.ST_RUNNING
        else:
            health, bits = rise + fall - 1, bits | shared.ST_RUNNING
        st.store(st.server_word(k, shared.SRV_HEALTH), health)
        name = HCHK[status]
        if name in shared.CHECK_STATUSES:
            st.store(st.server_word(k, shared.SRV_CHECK_STATUS),
                     shared.CHECK_STATUSES.index(name))
        if check_state & CHK_CONFIGURED and not check_state & CHK_ENABLED:
            bits |= shared.ST_CHECK_OFF            # "disable health" from the stats socket
    # the administrative state: a configuration change wins, else the old forced one
    configured = bool(server.disabled)
    if bool(admin & ADMIN_CMAINT) == configured:
        if admin & ADMIN_FMAINT and not configured:
            bits |= shared.ST_MAINT
        elif not admin & ADMIN_FMAINT and configured:
            bits &= ~(shared.ST_CFG_MAINT | shared.ST_MAINT)   # enabled from the socket
    if not bits & shared.ST_ANY_MAINT and admin & ADMIN_FDRAIN and (iweight > 0 or
                                                                    server.weight == 0):
        bits |= shared.ST_DRAIN
    st.set_server_state(backend, k, bits)
    if iweight == server.weight:                  # a weight the configuration changed wins
        st.set_server_weight(backend, k, uweight)
    st.store(st.server_word(k, shared.SRV_LAST_CHANGE), max(0, int(time.time()) - last))


def apply_server_state(tables, st: shared.SharedState, warn) -> None:
    """HAProxy's apply_server_state(), for the backends that ask for it."""
    g = tables.config.global_
    global_lines = None
    if g.server_state_file and any(be.proxy.state_from_file == "global"
                                   for be in tables.backends):
        global_lines = read_state_file(state_path(g.server_state_base, g.server_state_file),
                                       lambda m: warn(f"config: {m}"), "")
    for be in tables.backends:
        proxy = be.proxy
        if proxy.state_from_file == "none" or not proxy.enabled or \
                not any(m is not None for m in be.server_models):
            continue
        if proxy.state_from_file == "global":
            if global_lines is None:
                continue
            lines = {}
            for fields in global_lines:
                if fields[1] == proxy.name:
                    lines.setdefault(fields[3], fields)     # a duplicate line is dropped
        else:
            path = state_path(g.server_state_base, proxy.state_file_name or proxy.name)
            local = read_state_file(path, warn, f"Proxy '{proxy.name}': ")
            if local is None:
                continue
            lines = {}
            for fields in local:
                same_id, same_name = _number(fields[0]) == proxy.id, fields[1] == proxy.name
                if not same_id and not same_name:
                    continue
                if not same_id:
                    warn(f"Proxy '{proxy.name}': backend ID mismatch: from server state file: "
                         f"'{fields[0]}', from running config '{proxy.id}'")
                elif not same_name:
                    warn(f"Proxy '{proxy.name}': backend name mismatch: from server state "
                         f"file: '{fields[1]}', from running config '{proxy.name}'")
                    if fields[15] != "1":
                        continue
                lines.setdefault(fields[3], fields)     # a duplicate line is dropped
        for i, server in enumerate(be.server_models):
            fields = lines.pop(server.name, None) if server is not None else None
            if fields is None:
                continue
            error = invalid_fields(fields[4:])
            if error:
                warn(f"server-state application failed for server '{proxy.name}/"
                     f"{server.name}'{error}")
                continue
            apply_line(st, be, be.first_server_shm + i, server, fields[4:], warn)
        if proxy.state_from_file == "local":
            for name in lines:
                warn(f"Proxy '{proxy.name}': can't find server '{name}' in backend "
                     f"'{proxy.name}'")
