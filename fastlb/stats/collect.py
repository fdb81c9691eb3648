"""Rows of statistics: the workers' counters summed, with the shared state and the
configuration, keyed by the field names of fields.py.

Used by every output, in whichever process renders it (the master for the stats
socket, a worker for the stats page and the Prometheus exporter): all it needs is the
runtime tables and the shared memory, both inherited at fork.
"""
from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from ..limits import backend_fullconn, default_maxconn
from .. import shm as shared
from ..shm import STAT, STAT_WORDS, TIME_SAMPLES, SharedState
from .fields import BACKEND, FRONTEND, LISTENER, SERVER

# HAProxy's check status numbers (show servers state)
HCHK = ("UNK", "INI", "START", "CHECKED", "HANA", "SOCKERR", "L4OK", "L4TOUT", "L4CON",
        "L6OK", "L6TOUT", "L6RSP", "L7TOUT", "L7RSP", "L57DATA", "L7OK", "L7OKC", "L7STS",
        "PROCERR", "PROCTOUT", "PROCOK")
PASSED = {"L4OK", "L6OK", "L7OK"}
# counters whose workers' values combine as the highest, not the sum
HIGHEST = {STAT[name] for name in shared.STAT_MAXIMA + ("lastsess",)}
HTTP_ONLY = ("hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other",
             "req_tot", "comp_in", "comp_out", "comp_byp", "comp_rsp", "cache_lookups",
             "cache_hits")
MODULES_FE_BE = ("ssl_sess", "ssl_reused_sess", "ssl_failed_handshake", "h2_headers_rcvd",
                 "h2_data_rcvd", "h2_settings_rcvd", "h2_rst_stream_rcvd", "h2_goaway_rcvd",
                 "h2_detected_conn_protocol_errors", "h2_detected_strm_protocol_errors",
                 "h2_rst_stream_resp", "h2_goaway_resp", "h2_open_connections",
                 "h2_backend_open_streams", "h2_total_connections", "h2_backend_total_streams",
                 "h1_open_connections", "h1_open_streams", "h1_total_connections",
                 "h1_total_streams", "h1_bytes_in", "h1_bytes_out", "h1_spliced_bytes_in",
                 "h1_spliced_bytes_out")


def check_status_name(state: SharedState, k: int) -> str:
    index = state.load(state.server_word(k, shared.SRV_CHECK_STATUS))
    statuses = shared.CHECK_STATUSES
    name = statuses[index] if index < len(statuses) else "UNK"
    return "INI" if name == "UNK" else name


@dataclass
class Counters:
    """One object's counters summed over the workers."""
    values: list
    q: int = 0
    c: int = 0
    r: int = 0
    t: int = 0

    @classmethod
    def read(cls, state: SharedState, obj: int) -> "Counters":
        rows = state.stats_rows(obj)
        total = [0] * STAT_WORDS
        for row in rows:
            for i, value in enumerate(row):
                total[i] = max(total[i], value) if i in HIGHEST else total[i] + value
        counters = cls(total)
        # the workers' timing windows, weighted by how many samples each holds
        n = sum(min(r[STAT["samples"]], TIME_SAMPLES) for r in rows)
        nr = sum(min(r[STAT["r_samples"]], TIME_SAMPLES) for r in rows)
        if n:
            counters.q = sum(r[STAT["q_sum"]] for r in rows) // n
            counters.c = sum(r[STAT["c_sum"]] for r in rows) // n
            counters.t = sum(r[STAT["t_sum"]] for r in rows) // n
        if nr:
            counters.r = sum(r[STAT["r_sum"]] for r in rows) // nr
        return counters

    def __getitem__(self, name: str) -> int:
        return self.values[STAT[name]]


class Collector:
    """Builds the rows of `show stat` from the tables and the shared state."""

    def __init__(self, tables, state: SharedState):
        self.tables = tables
        self.state = state
        self.config = tables.config
        self.frontend_of = {id(fe.proxy): fe for fe in tables.frontends}
        self.backend_of = {id(be.proxy): be for be in tables.backends}
        self.maxconn = default_maxconn(self.config)
        # each listener's number among all of the configuration's, as the workers count
        # them (runtime/worker.py): its row of statistics with option socket-stats
        self.listener_slot = {}
        for fe in tables.frontends:
            for listener in fe.listeners:
                self.listener_slot[id(listener)] = len(self.listener_slot)

    # -- proxies in declaration order ------------------------------------------------------
    def proxies(self):
        """(proxy, FrontendTable | None, BackendTable | None) in declaration order."""
        for proxy in self.config.proxies:
            fe = self.frontend_of.get(id(proxy))
            be = self.backend_of.get(id(proxy))
            if fe is not None or be is not None:
                yield proxy, fe, be

    def rows(self, scope=None, only_up=False, no_maint=False) -> list:
        """Every row: FRONTEND, servers, BACKEND per proxy. ``scope``: a text the proxy name
        must contain (case-insensitive)."""
        out = []
        for proxy, fe, be in self.proxies():
            if scope and scope.lower() not in proxy.name.lower():
                continue
            if fe is not None:
                out.append(self.frontend_row(proxy, fe))
                if proxy.options.socket_stats:
                    out += [self.listener_row(proxy, fe, listener) for listener in fe.listeners]
            if be is not None:
                for i, server in enumerate(be.server_models):
                    if server is None:
                        continue
                    row = self.server_row(proxy, be, i, server)
                    if only_up and not row["status"].startswith("UP") and \
                            row["status"] != "no check":
                        continue
                    if no_maint and row["status"].startswith("MAINT"):
                        continue
                    out.append(row)
                out.append(self.backend_row(proxy, be))
        return out

    def rate(self, obj: int, name: str) -> int:
        return self.state.view[self.state.rate_word(obj, shared.RATE_NAMES.index(name))]

    # -- frontend ---------------------------------------------------------------------------
    def frontend_row(self, proxy, fe) -> dict:
        st = self.state
        obj = st.frontend_object(fe.index)
        c = Counters.read(st, obj)
        http = proxy.mode == "http"
        row = {
            "pxname": proxy.name, "svname": "FRONTEND",
            "scur": st.total(st.fe_off + fe.index), "smax": c["smax"],
            "slim": st.load(st.frontend_word(fe.index, shared.FE_MAXCONN)) or self.maxconn,
            "stot": c["sess_tot"], "bin": c["bytes_in"], "bout": c["bytes_out"],
            "dreq": c["denied_req"], "dresp": c["denied_resp"], "ereq": c["err_req"],
            "status": "OPEN" if proxy.enabled else "STOP",
            "pid": 1, "iid": proxy.id, "sid": 0, "type": FRONTEND,
            "rate": self.rate(obj, "rate"), "rate_lim": proxy.rate_limit_sessions,
            "rate_max": self.rate(obj, "rate_max"),
            "req_rate": self.rate(obj, "req_rate"), "req_rate_max": self.rate(obj, "req_rate_max"),
            "mode": proxy.mode, "conn_rate": self.rate(obj, "conn_rate"),
            "conn_rate_max": self.rate(obj, "conn_rate_max"), "conn_tot": c["conn_tot"],
            "intercepted": c["intercepted"], "dcon": c["denied_conn"], "dses": c["denied_sess"], "wrew": 0, "eint": 0,
            "-": "-",
        }
        self._http_counts(row, c, http)
        if not http:                     # HAProxy: these stay for TCP, intercepted goes
            row.update(req_tot=c["req_tot"], comp_in=0, comp_out=0, comp_byp=0, comp_rsp=0)
            del row["intercepted"]
        self._modules(row, c, http, st.total(st.fe_off + fe.index))
        return row

    # -- listener (option socket-stats) -----------------------------------------------------
    def listener_row(self, proxy, fe, listener) -> dict:
        """HAProxy's socket row: the fields its stats_fill_li_stats() fills."""
        st = self.state
        slot = self.listener_slot[id(listener)]
        c = Counters.read(st, st.listener_object(slot))
        current = st.total(st.lst_off + slot)
        limit = listener.maxconn        # HAProxy shows 0 for a bind without maxconn
        return {
            "pxname": proxy.name, "svname": listener.name or f"sock-{listener.id}",
            "scur": current, "smax": c["smax"], "slim": limit, "stot": c["conn_tot"],
            "bin": c["bytes_in"], "bout": c["bytes_out"], "dreq": c["denied_req"],
            "dresp": c["denied_resp"], "ereq": c["err_req"],
            "status": "FULL" if limit and current >= limit else "OPEN",
            "pid": 1, "iid": proxy.id, "sid": listener.id, "type": LISTENER,
            "addr": "unix" if listener.family == socket.AF_UNIX else listener.describe(),
            "mode": proxy.mode, "dcon": c["denied_conn"], "dses": c["denied_sess"],
            "wrew": 0, "eint": 0, "-": "-",
        }

    # -- backend ----------------------------------------------------------------------------
    def backend_row(self, proxy, be) -> dict:
        st = self.state
        obj = st.backend_object(be.index)
        c = Counters.read(st, obj)
        http = proxy.mode == "http"
        uweight = sum(st.load(st.server_word(be.first_server_shm + i, shared.SRV_WEIGHT))
                      for i in range(len(be.server_models)))
        active, backup = be.usable_counts(st)
        # the weight that serves: the active servers', or the backups' when none is left
        weight = sum(st.load(st.server_word(be.first_server_shm + i, shared.SRV_WEIGHT))
                     for i, server in be.usable_servers(st) if not server.backup or not active)
        up = st.backend_up(be.index)
        base = st.backend_word(be.index, 0)
        words = (shared.BE_LAST_CHANGE, shared.BE_CHKDOWN, shared.BE_DOWN_SINCE,
                 shared.BE_DOWNTIME)
        row = {
            "pxname": proxy.name, "svname": "BACKEND",
            "qcur": st.total(st.beq_off + be.index), "qmax": c["qmax"],
            "scur": st.summed(st.be_off + be.index), "smax": c["smax"],
            "slim": self.backend_limit(proxy),
            "stot": c["sess_tot"], "bin": c["bytes_in"], "bout": c["bytes_out"],
            "dreq": c["denied_req"], "dresp": c["denied_resp"], "econ": c["err_conn"],
            "eresp": c["err_resp"], "wretr": c["retries"], "wredis": c["redispatches"],
            "status": "UP" if up else "DOWN", "weight": weight, "act": active, "bck": backup,
            "chkdown": st.load(base + shared.BE_CHKDOWN),
            "lastchg": max(0, int(time.time()) - st.load(base + shared.BE_LAST_CHANGE)),
            "pid": 1, "iid": proxy.id, "sid": 0, "lbtot": c["lbtot"], "type": BACKEND,
            "rate": self.rate(obj, "rate"), "rate_max": self.rate(obj, "rate_max"),
            "cli_abrt": c["cli_abrt"], "srv_abrt": c["srv_abrt"],
            "lastsess": self._since(c["lastsess"]),
            "qtime": c.q, "ctime": c.c, "rtime": c.r, "ttime": c.t,
            "mode": proxy.mode, "algo": proxy.balance, "wrew": 0, "connect": c["connect"],
            "reuse": c["reuse"], "qtime_max": c["qtime_max"], "ctime_max": c["ctime_max"],
            "rtime_max": c["rtime_max"], "ttime_max": c["ttime_max"], "eint": 0,
            "uweight": uweight, "agg_server_status": 0, "agg_server_check_status": 0,
            "agg_check_status": 0, "-": "-",
        }
        if any(s is not None for s in be.server_models):
            row["downtime"] = st.downtime(base, up, words)
        self._http_counts(row, c, http)
        if not http:
            row.update(comp_in=0, comp_out=0, comp_byp=0, comp_rsp=0)
        self._modules(row, c, http, 0)
        return row

    def backend_limit(self, proxy) -> int:
        return backend_fullconn(self.config, proxy, self.maxconn)

    # -- server -----------------------------------------------------------------------------
    def server_row(self, proxy, be, i: int, server) -> dict:
        st = self.state
        k = be.first_server_shm + i
        obj = st.server_object(k)
        c = Counters.read(st, obj)
        http = proxy.mode == "http"
        bits = st.server_state(k)
        checked = bool(bits & shared.ST_CHECKED)
        health = st.load(st.server_word(k, shared.SRV_HEALTH))
        base = st.server_word(k, 0)
        words = (shared.SRV_LAST_CHANGE, shared.SRV_CHKDOWN, shared.SRV_DOWN_SINCE,
                 shared.SRV_DOWNTIME)
        maxconn = st.load(st.server_word(k, shared.SRV_MAXCONN))
        row = {
            "pxname": proxy.name, "svname": server.name,
            "qcur": st.total(st.srvq_off + k), "qmax": c["qmax"],
            "scur": st.summed(st.srv_off + k), "smax": c["smax"],
            "stot": c["sess_tot"], "bin": c["bytes_in"], "bout": c["bytes_out"],
            "dresp": c["denied_resp"], "econ": c["err_conn"], "eresp": c["err_resp"],
            "wretr": c["retries"], "wredis": c["redispatches"],
            "status": self.server_status(server, bits, health),
            "weight": st.load(st.server_word(k, shared.SRV_WEIGHT)),
            "act": 0 if server.backup else 1, "bck": 1 if server.backup else 0,
            "lastchg": max(0, int(time.time()) - st.load(base + shared.SRV_LAST_CHANGE)),
            "pid": 1, "iid": proxy.id, "sid": server.id, "lbtot": c["lbtot"], "type": SERVER,
            "rate": self.rate(obj, "rate"), "rate_max": self.rate(obj, "rate_max"),
            "cli_abrt": c["cli_abrt"], "srv_abrt": c["srv_abrt"],
            "lastsess": self._since(c["lastsess"]),
            "qtime": c.q, "ctime": c.c, "rtime": c.r, "ttime": c.t,
            "addr": self.address(server), "mode": proxy.mode, "wrew": 0,
            "connect": c["connect"], "reuse": c["reuse"], "srv_icur": 0,
            "qtime_max": c["qtime_max"], "ctime_max": c["ctime_max"],
            "rtime_max": c["rtime_max"], "ttime_max": c["ttime_max"], "eint": 0,
            "idle_conn_cur": 0, "safe_conn_cur": 0, "used_conn_cur": 0, "need_conn_est": 0,
            "uweight": st.load(st.server_word(k, shared.SRV_WEIGHT)), "-": "-",
            "ssl_sess": 0, "ssl_reused_sess": 0, "ssl_failed_handshake": 0,
        }
        if maxconn:
            row["slim"] = maxconn
        if server.maxqueue:
            row["qlimit"] = server.maxqueue
        if server.cookie:
            row["cookie"] = server.cookie
        if checked:
            status = check_status_name(st, k)
            row.update({
                "chkfail": st.load(base + shared.SRV_CHKFAIL),
                "chkdown": st.load(base + shared.SRV_CHKDOWN),
                "downtime": st.downtime(base, st.server_up(k), words),
                "check_status": status,
                "check_duration": st.load(base + shared.SRV_CHECK_MS) if status != "INI"
                else None,
                "check_desc": shared.CHECK_DESCRIPTIONS.get(status, ""),
                "check_rise": server.rise, "check_fall": server.fall, "check_health": health,
            })
            if status.startswith("L7") and status not in ("L7TOUT", "L7RSP"):
                row["check_code"] = st.load(base + shared.SRV_CHECK_CODE)
            if server.observe:
                row["hanafail"] = st.load(base + shared.SRV_HANAFAIL)
        if http:
            for name in HTTP_ONLY[:7]:
                row[name] = c[name]
        return row

    @staticmethod
    def server_status(server, bits: int, health: int) -> str:
        """HAProxy's status words (spec 13.4)."""
        if bits & shared.ST_ANY_MAINT:
            return "MAINT"
        checking = bits & shared.ST_CHECKED and not bits & shared.ST_CHECK_OFF
        if bits & shared.ST_RUNNING:
            if bits & shared.ST_DRAIN:
                return "DRAIN"
            if not checking:
                return "no check"
            if health < server.rise + server.fall - 1:
                return f"UP {health - server.rise + 1}/{server.fall}"
            return "UP"
        if checking and health > 0:
            return f"DOWN {health}/{server.rise}"
        return "DOWN"

    @staticmethod
    def address(server) -> str:
        a = server.address
        host = f"[{a.ip}]" if ":" in a.ip else a.ip
        return f"{host}:{a.port}"

    # -- helpers ----------------------------------------------------------------------------
    @staticmethod
    def _since(stamp: int) -> int:
        return max(0, int(time.time()) - stamp) if stamp else -1

    @staticmethod
    def _http_counts(row: dict, c: Counters, http: bool) -> None:
        if not http:
            return
        for name in ("hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other",
                     "req_tot"):
            row[name] = c[name]
        for name in ("comp_in", "comp_out", "comp_byp", "comp_rsp", "cache_lookups",
                     "cache_hits"):
            row[name] = 0

    @staticmethod
    def _modules(row: dict, c: Counters, http: bool, open_connections: int) -> None:
        for name in MODULES_FE_BE:
            row[name] = 0
        if http:
            row["h1_open_connections"] = open_connections
            row["h1_total_connections"] = c["conn_tot"] or c["sess_tot"]
            row["h1_total_streams"] = c["req_tot"]
            row["h1_bytes_in"] = c["bytes_in"]
            row["h1_bytes_out"] = c["bytes_out"]
