"""Text outputs of the statistics: `show stat` CSV and typed, `show servers state` and
`show info`.  All of them read rows from collect.py and columns from fields.py."""
from __future__ import annotations

import os
import resource
import time

from .. import __version__
from .. import shm as shared
from .collect import HCHK, PASSED, Collector, check_status_name
from .fields import CSV_HEADER, FIELDS

RELEASE_DATE = "2026/11/22"


def _text(value) -> str:
    return "" if value is None else str(value)


def csv_line(row: dict) -> str:
    return ",".join(_text(row.get(f.name)) for f in FIELDS) + ","


def selected(row: dict, iid: int, kinds: int, sid: int) -> bool:
    """`show stat <iid> <type> <sid>`: -1 for any; type is a mask (1 frontend, 2 backend,
    4 server); sid applies to server rows."""
    return (iid == -1 or row["iid"] == iid) and (kinds == -1 or kinds & (1 << row["type"])) \
        and (sid == -1 or row["type"] != 2 or row["sid"] == sid)


def show_stat(collector: Collector, scope=None, only_up=False, no_maint=False,
              select=(-1, -1, -1)) -> str:
    lines = [CSV_HEADER]
    lines += [csv_line(row) for row in collector.rows(scope, only_up, no_maint)
              if selected(row, *select)]
    return "\n".join(lines) + "\n"


def show_stat_typed(collector: Collector) -> str:
    """One line per non-empty field: ``T.iid.sid.index.name.pid:tag:type:value``."""
    out = []
    for row in collector.rows():
        letter = "FBSL"[row["type"]]
        for f in FIELDS:
            value = row.get(f.name)
            if value is None or f.name == "-":
                continue
            out.append(f"{letter}.{row['iid']}.{row['sid']}.{f.index}.{f.name}.1:"
                       f"{f.tag}:{f.type}:{value}")
        out.append("")
    return "\n".join(out) + ("\n" if out else "")


# -- show servers state ------------------------------------------------------------------------
SERVERS_STATE_HEADER = (
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
    "srv_iweight srv_time_since_last_change srv_check_status srv_check_result "
    "srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id "
    "srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr "
    "srv_agent_port")


def server_state_line(collector: Collector, proxy, be, i: int, server) -> str:
    st = collector.state
    k = be.first_server_shm + i
    bits = st.server_state(k)
    # HAProxy's admin flags: CMAINT says the configuration has it disabled (kept once the
    # stats socket made it ready), FMAINT that it is in maintenance now
    admin = (0x04 if server.disabled else 0) | (0x01 if bits & shared.ST_ANY_MAINT else 0) | \
        (0x08 if bits & shared.ST_DRAIN else 0)
    checked = bool(bits & shared.ST_CHECKED)
    status = check_status_name(st, k) if checked else "INI"
    if status == "INI":
        result = 0
    elif status in PASSED:
        result = 3
    elif status == "L7OKC":
        result = 4
    else:
        result = 2
    check_state = 0
    if checked:
        check_state = 0x02 | (0 if bits & shared.ST_CHECK_OFF else 0x04)
    if bits & shared.ST_ANY_MAINT:
        check_state |= 0x08
    a = server.address
    fqdn = "-" if a.host == a.ip else a.host
    return " ".join(str(v) for v in (
        proxy.id, proxy.name, server.id, server.name, a.ip,
        2 if st.server_up(k) else 0, admin,
        st.load(st.server_word(k, shared.SRV_WEIGHT)), server.weight,
        max(0, int(time.time()) - st.load(st.server_word(k, shared.SRV_LAST_CHANGE))),
        HCHK.index(status), result, st.load(st.server_word(k, shared.SRV_HEALTH)),
        check_state, 0, int(proxy.forced_id), int(server.forced_id), fqdn, a.port, "-", 0,
        server.check_port or 0, server.check_addr or "-", "-", 0))


def show_servers_state(collector: Collector, backend=None) -> str:
    lines = ["1", SERVERS_STATE_HEADER]
    for proxy, fe, be in collector.proxies():
        if be is None or (backend is not None and proxy.name != backend):
            continue
        for i, server in enumerate(be.server_models):
            if server is not None:
                lines.append(server_state_line(collector, proxy, be, i, server))
    return "\n".join(lines) + "\n"


# -- show info ---------------------------------------------------------------------------------
def uptime_text(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}d {hours}h{minutes:02d}m{secs:02d}s"


def info_fields(collector: Collector) -> list:
    """(name, tag, type, value) in HAProxy's order, then fastlb's own process view."""
    st = collector.state
    cfg = collector.config
    process = st.nobjects
    rates = {name: st.view[st.rate_word(process, i)] for i, name in enumerate(shared.RATE_NAMES)}
    uptime = max(0, int(time.time() * 1000) - st.view[shared.G_START_MS]) // 1000
    frontends = [st.frontend_object(fe.index) for fe in collector.tables.frontends]
    cum_conns = sum(st.stat_sum(obj, "conn_tot") for obj in frontends)
    cum_req = sum(st.stat_sum(obj, "req_tot") for obj in frontends)
    bytes_out = sum(st.stat_sum(obj, "bytes_out") for obj in frontends)
    ulimit = cfg.global_.ulimit_n or resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    pids = [p for p in st.worker_pids() if p]
    rss = st.view[shared.G_RSS]
    name = "fastlb"
    return [
        ("Name", "POS", "str", name), ("Version", "POS", "str", __version__),
        ("Release_date", "POS", "str", RELEASE_DATE),
        ("Nbthread", "CGS", "u32", st.nworkers), ("Nbproc", "CGS", "u32", 1),
        ("Process_num", "KGP", "u32", 1), ("Pid", "SGP", "u32", st.view[shared.G_MASTER_PID]),
        ("Uptime", "MDP", "str", uptime_text(uptime)), ("Uptime_sec", "MDP", "u32", uptime),
        ("Memmax_MB", "CLP", "u32", 0), ("PoolAlloc_MB", "MGP", "u32", rss >> 20),
        ("PoolUsed_MB", "MGP", "u32", rss >> 20), ("PoolFailed", "MCP", "u32", st.buffer_pool()[2]),
        ("Ulimit-n", "CLP", "u32", ulimit), ("Maxsock", "CLP", "u32", ulimit),
        ("Maxconn", "CLP", "u32", collector.maxconn),
        ("Hard_maxconn", "CLP", "u32", collector.maxconn),
        ("CurrConns", "MGP", "u32", st.total(0)), ("CumConns", "MCP", "u32", cum_conns),
        ("CumReq", "MCP", "u32", cum_req), ("MaxSslConns", "CLP", "u32", 0),
        ("CurrSslConns", "MGP", "u32", 0), ("CumSslConns", "MCP", "u32", 0),
        ("Maxpipes", "CLP", "u32", 0), ("PipesUsed", "MGP", "u32", 0),
        ("PipesFree", "MGP", "u32", 0),
        ("ConnRate", "MRP", "u32", rates["conn_rate"]), ("ConnRateLimit", "CLP", "u32", cfg.global_.maxconnrate),
        ("MaxConnRate", "MMP", "u32", rates["conn_rate_max"]),
        ("SessRate", "MRP", "u32", rates["rate"]), ("SessRateLimit", "CLP", "u32", cfg.global_.maxsessrate),
        ("MaxSessRate", "MMP", "u32", rates["rate_max"]),
        ("SslRate", "MRP", "u32", 0), ("SslRateLimit", "CLP", "u32", 0),
        ("MaxSslRate", "MMP", "u32", 0), ("SslFrontendKeyRate", "MRP", "u32", 0),
        ("SslFrontendMaxKeyRate", "MMP", "u32", 0),
        ("SslFrontendSessionReuse_pct", "MRP", "u32", 0),
        ("SslBackendKeyRate", "MRP", "u32", 0), ("SslBackendMaxKeyRate", "MMP", "u32", 0),
        ("SslCacheLookups", "MCP", "u32", 0), ("SslCacheMisses", "MCP", "u32", 0),
        ("CompressBpsIn", "MRP", "u32", 0), ("CompressBpsOut", "MRP", "u32", 0),
        ("CompressBpsRateLim", "CLP", "u32", 0),
        ("Tasks", "MGP", "u32", st.total(0)), ("Run_queue", "MGP", "u32", 0),
        ("Idle_pct", "MRP", "u32", st.view[shared.G_IDLE_PCT]),
        ("node", "CGS", "str", cfg.global_.node or os.uname().nodename),
        ("Stopping", "SGP", "u32", 0), ("Jobs", "MGP", "u32", st.total(0)),
        ("Unstoppable Jobs", "MGP", "u32", 0),
        ("Listeners", "MGP", "u32", sum(len(fe.listeners) for fe in collector.tables.frontends)),
        ("ActivePeers", "MGP", "u32", 0), ("ConnectedPeers", "MGP", "u32", 0),
        ("DroppedLogs", "MCP", "u32", 0), ("BusyPolling", "CGS", "u32", 0),
        ("FailedResolutions", "MCP", "u32", 0), ("TotalBytesOut", "MCP", "u64", bytes_out),
        ("TotalSplicdedBytesOut", "MCP", "u64", 0), ("BytesOutRate", "MRP", "u64", 0),
        ("DebugCommandsIssued", "MCP", "u32", 0), ("CumRecvLogs", "MCP", "u64", 0),
        ("Build info", "POS", "str", __version__), ("Memmax_bytes", "CLP", "u64", 0),
        ("PoolAlloc_bytes", "MGP", "u64", rss), ("PoolUsed_bytes", "MGP", "u64", rss),
        ("Start_time_sec", "MGP", "u32", st.view[shared.G_START_MS] // 1000),
        ("Tainted", "CGS", "u32", 0),
        # fastlb's process view (not in HAProxy, whose workers are threads of one process)
        ("Master_pid", "SGP", "u32", st.view[shared.G_MASTER_PID]),
        ("Worker_pids", "SGP", "str", " ".join(str(p) for p in pids)),
        ("Rss_bytes", "MGP", "u64", rss),
    ]


def show_info(collector: Collector, typed=False) -> str:
    lines = []
    for i, (name, tag, kind, value) in enumerate(info_fields(collector)):
        lines.append(f"{i}.{name}.1:{tag}:{kind}:{value}" if typed else f"{name}: {value}")
    return "\n".join(lines) + "\n"
