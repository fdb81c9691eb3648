"""The Prometheus exposition format, with HAProxy's exporter metric names, from the same
rows and fields as `show stat` and `show info`."""
from __future__ import annotations

from .. import __version__
from ..stats.collect import HCHK, Collector
from ..stats.fields import FIELDS
from ..stats.render import info_fields

_STATES = {
    "server": ("DOWN", "UP", "MAINT", "DRAIN", "NOLB"),
    "backend": ("DOWN", "UP"),
    "frontend": ("DOWN", "UP"),
}
_PROCESS = {
    "Nbthread": "nbthread", "Nbproc": "nbproc", "Process_num": "relative_process_id",
    "Uptime_sec": "uptime_seconds", "Ulimit-n": "max_fds", "Maxsock": "max_sockets",
    "Maxconn": "max_connections", "Hard_maxconn": "hard_max_connections",
    "CurrConns": "current_connections", "CumConns": "connections_total",
    "CumReq": "requests_total", "ConnRate": "current_connection_rate",
    "MaxConnRate": "max_connection_rate", "SessRate": "current_session_rate",
    "MaxSessRate": "max_session_rate", "Idle_pct": "idle_time_percent",
    "Stopping": "stopping", "Jobs": "jobs", "Listeners": "listeners",
    "DroppedLogs": "dropped_logs_total", "TotalBytesOut": "bytes_out_total",
    "Start_time_sec": "start_time_seconds", "PoolAlloc_bytes": "pool_allocated_bytes",
    "PoolUsed_bytes": "pool_used_bytes", "Rss_bytes": "resident_memory_bytes",
}
_SECONDS = {"qtime", "ctime", "rtime", "ttime", "qtime_max", "ctime_max", "rtime_max",
            "ttime_max", "check_duration"}


def _labels(pairs) -> str:
    def escape(v):
        return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in pairs) + "}"


def prometheus(collector: Collector) -> str:
    """The text exposition format, with HAProxy's exporter metric names."""
    out = []
    for name, tag, kind, value in info_fields(collector):
        metric = _PROCESS.get(name)
        if metric is None:
            continue
        full = f"haproxy_process_{metric}"
        out.append(f"# HELP {full} {name} (show info).")
        out.append(f"# TYPE {full} {'counter' if tag[1] == 'C' else 'gauge'}")
        out.append(f"{full} {value}")
    out.append("# HELP haproxy_process_build_info Build info")
    out.append("# TYPE haproxy_process_build_info gauge")
    out.append(f"haproxy_process_build_info{_labels([('version', __version__)])} 1")

    rows = collector.rows()
    kinds = {0: "frontend", 1: "backend", 2: "server"}
    metrics: dict = {}          # full name -> (help, type, [(labels, value)])
    for row in rows:
        if row["type"] not in kinds:
            continue            # listeners (socket-stats): HAProxy 2.6's exporter has none
        kind = kinds[row["type"]]
        base = [("proxy", row["pxname"])]
        if kind == "server":
            base.append(("server", row["svname"]))
        status = row["status"].split(" ")[0]
        status = {"OPEN": "UP", "STOP": "DOWN", "no": "UP"}.get(status, status)
        states = _STATES[kind]
        entry = metrics.setdefault(f"haproxy_{kind}_status",
                                   ("Current status of the service.", "gauge", []))
        for state in states:
            entry[2].append((base + [("state", state)], int(state == status)))
        if kind == "server" and row.get("check_status"):
            entry = metrics.setdefault("haproxy_server_check_status",
                                       ("Status of last health check.", "gauge", []))
            for state in HCHK[1:]:
                entry[2].append((base + [("state", state)], int(state == row["check_status"])))
        for f in FIELDS:
            value = row.get(f.name)
            if not f.metric or value is None or f.metric.endswith("_status") or \
                    isinstance(value, str):
                continue
            full = f"haproxy_{kind}_{f.metric}"
            labels = list(base)
            if f.name.startswith("hrsp_"):
                labels.append(("code", f.name[5:]))
            if f.name in _SECONDS:
                value = value / 1000
            mtype = "counter" if f.tag[1] == "C" else "gauge"
            entry = metrics.setdefault(full, (f.help, mtype, []))
            entry[2].append((labels, value))
    for full, (text, mtype, samples) in metrics.items():
        out.append(f"# HELP {full} {text}")
        out.append(f"# TYPE {full} {mtype}")
        for labels, value in samples:
            out.append(f"{full}{_labels(labels)} {value}")
    return "\n".join(out) + "\n"
