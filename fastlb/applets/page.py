"""The stats page (`stats enable` / `stats uri`) and the Prometheus exporter
(`http-request use-service prometheus-exporter`), answered by the worker that received
the request, from the shared counters of all workers (the exporter's text:
prometheus.py).

An applet is called by the worker loop (fastlb/loop/http_flow.pxi, ROUTE_APPLET) with the parsed
request and its body, and returns a whole raw HTTP response.
"""
from __future__ import annotations

import base64
import html
import time
from urllib.parse import parse_qsl, unquote

from .. import __version__
from .. import shm as shared
from ..control.admin import Admin, AdminError
from ..http.fields import safe_value
from ..stats.collect import Collector
from ..stats.render import info_fields, show_stat
from .prometheus import prometheus

UNAUTHORIZED = (b"<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and password "
                b"to access this content.\n</body></html>\n")
# stats page admin verbs (spec 12.5) -> Admin calls
ACTIONS = ("maint", "drain", "ready", "disable", "enable", "stop", "start", "dhlth", "ehlth",
           "hrunn", "hnolb", "hdown", "shutdown")


def response(status: int, reason: str, headers: list, body: bytes, version: bytes,
             head_only: bool = False) -> bytes:
    """200 answers to HTTP/1.1 are chunked (as HAProxy's stats applet), others sized."""
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{name}: {value}" for name, value in headers]
    for line in lines:
        safe_value(line.encode("utf-8", "surrogateescape"), "stats page header")
    if version == b"1.1" and status == 200:
        lines.append("transfer-encoding: chunked")
        payload = b"" if head_only else \
            (f"{len(body):x}\r\n".encode() + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
    else:
        lines.append(f"content-length: {len(body)}")
        payload = b"" if head_only else body
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def path_part(url: str) -> str:
    """The URI from its first "/" after any scheme and authority (spec 12.1)."""
    if not url.startswith("/") and "://" in url:
        slash = url.find("/", url.find("://") + 3)
        return url[slash:] if slash >= 0 else ""
    return url


def uri_matches(prefix: str, url: str) -> bool:
    target = path_part(url) if prefix.startswith("/") else url
    return target.startswith(prefix)


def stats_options(prefix: str, url: str) -> dict:
    """;csv ;up ;no-maint ;norefresh ;st=CODE and scope=<text> after the prefix."""
    rest = (path_part(url) if prefix.startswith("/") else url)[len(prefix):]
    options = {"csv": ";csv" in rest, "up": ";up" in rest, "no_maint": ";no-maint" in rest,
               "norefresh": ";norefresh" in rest, "scope": None, "scope_raw": None, "st": None, "typed": False}
    at = rest.find("scope=")
    if at >= 0:
        end = at + 6
        while end < len(rest) and rest[end] not in ";& ":
            end += 1
        options["scope_raw"] = rest[at + 6:end]       # as received: it goes into Location
        options["scope"] = unquote(rest[at + 6:end])
    at = rest.find(";st=")
    if at >= 0:
        end = at + 4
        while end < len(rest) and rest[end].isalpha():
            end += 1
        options["st"] = rest[at + 4:end]
    return options


class Applets:
    """What a worker needs to answer applet requests: the tables and the shared state,
    given by the master before it forks."""

    def __init__(self, tables):
        self.tables = tables
        self._admin = None

    @property
    def state(self) -> shared.SharedState:
        return self.tables.state

    def collector(self) -> Collector:
        return Collector(self.tables, self.state)

    def admin(self) -> Admin:
        if self._admin is None:
            self._admin = Admin(self.tables, self.state, self.state.view[shared.G_MASTER_PID])
        return self._admin

    def prometheus(self, method, url, headers, body, client_ip, version=b"1.1") -> bytes:
        text = prometheus(self.collector()).encode()
        return response(200, "OK", [("cache-control", "no-cache"),
                                    ("content-type", "text/plain; version=0.0.4")],
                        text, version, method == b"HEAD")


class StatsPage:
    """One proxy's stats page."""

    def __init__(self, applets: Applets, proxy):
        self.applets = applets
        self.proxy = proxy
        self.page = proxy.stats

    def matches(self, method: bytes, url: bytes) -> bool:
        return method in (b"GET", b"HEAD", b"POST") and \
            uri_matches(self.page.uri, url.decode("latin-1"))

    def proxy_request(self, url: bytes) -> bool:
        """A request to a proxy under option http-use-proxy-header (see
        Stream.proxy_request): Proxy-Authorization and 407."""
        return self.proxy.options.http_use_proxy_header and url[:1] not in (b"/", b"*")

    def authorized(self, headers: list, field: bytes = b"authorization") -> bool:
        if not self.page.auths:
            return True
        for name, value in headers:
            if name.lower() != field:
                continue
            kind, _, token = value.decode("latin-1").partition(" ")
            if kind.lower() != "basic":
                return False
            try:
                user, _, password = base64.b64decode(token.strip(), validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            return (user, password) in self.page.auths
        return False

    def answer(self, method, url, headers, body, client_ip, version: bytes = b"1.1",
               admin: bool = False, trusted: bool = False) -> bytes:
        """``trusted``: a ``stats http-request allow`` let the request in before the
        ``stats auth`` check."""
        proxied = self.proxy_request(url)
        if not trusted and not self.authorized(
                headers, b"proxy-authorization" if proxied else b"authorization"):
            status, challenge = (407, "proxy-authenticate") if proxied else \
                (401, "www-authenticate")
            return response(status, "Unauthorized", [
                ("cache-control", "no-cache"), ("content-type", "text/html"),
                (challenge, f'Basic realm="{self.page.realm}"')], UNAUTHORIZED, version)
        options = stats_options(self.page.uri, url.decode("latin-1"))
        if method == b"POST":
            return self.post(body, options, admin)
        head_only = method == b"HEAD"
        if options["csv"]:
            text = show_stat(self.applets.collector(), options["scope"], options["up"],
                             options["no_maint"]).encode()
            return response(200, "OK", [("cache-control", "no-cache"),
                                        ("content-type", "text/plain")], text, version,
                            head_only)
        headers_out = [("cache-control", "no-cache"), ("content-type", "text/html")]
        if self.page.refresh and not options["norefresh"]:
            headers_out.append(("refresh", str(self.page.refresh)))
        return response(200, "OK", headers_out, self.html(options, admin).encode(), version,
                        head_only)

    # -- admin POST -------------------------------------------------------------------------
    def post(self, body: bytes, options: dict, admin: bool) -> bytes:
        code = self.apply(body, admin)
        location = f"{self.page.uri};st={code}"
        if options["scope_raw"]:
            location += f"?scope={options['scope_raw']}"
        return response(303, "See Other", [("cache-control", "no-cache"),
                                           ("content-type", "text/plain"),
                                           ("location", location)], b"", b"1.1")

    def apply(self, body: bytes, admin: bool) -> str:
        if not admin:
            return "DENY"
        try:
            params = parse_qsl(body.decode("latin-1"), keep_blank_values=True)
        except ValueError:
            return "IVAL"
        backend = action = None
        servers = []
        for key, value in params:
            if key == "b":
                backend = value
            elif key == "action":
                action = value
            elif key == "s":
                servers.append(value)
        if action not in ACTIONS or backend is None:
            return "UNKN"
        tool = self.applets.admin()
        be = tool.backend(backend)
        if be is None:
            return "UNKN"
        if not servers:
            return "NONE"
        done = 0
        for name in servers:
            try:
                i = tool.server_in(be, name)
            except AdminError:
                continue
            self.act(tool, be, i, action)
            done += 1
        if done == len(servers):
            return "DONE"
        return "PART" if done else "ERRP"

    @staticmethod
    def act(tool: Admin, be, i: int, action: str) -> None:
        if action in ("maint", "disable", "stop"):
            tool.maint(be, i)
        elif action in ("ready", "enable", "start"):
            tool.ready(be, i)
        elif action == "drain":
            tool.drain(be, i)
        elif action in ("dhlth", "ehlth"):
            tool.set_health_checks(be, i, action == "ehlth")
        elif action in ("hrunn", "hnolb", "hdown"):
            tool.set_check_health(be, i, action != "hdown")
        elif action == "shutdown":
            tool.shutdown_sessions(be, i)

    # -- HTML -------------------------------------------------------------------------------
    STYLE = """
body { font-family: arial, helvetica, sans-serif; font-size: 12px; color: #000; background: #fff; }
h1 { font-size: x-large; color: #fff; background: #20408a; padding: 4px; margin: 0 0 8px 0; }
table.tbl { border-collapse: collapse; border: 1px solid #999; margin-bottom: 12px; }
table.tbl td, table.tbl th { border: 1px solid #999; padding: 1px 4px; text-align: right;
  white-space: nowrap; }
table.tbl th.pxname { background: #b00040; color: #ffff40; text-align: left; }
tr.titre th { background: #20408a; color: #fff; }
.frontend { background: #e8e8d0; } .backend { background: #e8e8d0; } .socket { background: #d0d0d0; }
.active_up { background: #c0ffc0; } .active_going_down { background: #ffffa0; }
.active_going_up { background: #e0ffe0; } .active_down { background: #ff9090; }
.active_nolb, .backup_nolb { background: #20a0ff; } .maintain { background: #c07820; }
.draining { background: #80c0ff; } .backup_up { background: #b0d0ff; }
.backup_down { background: #ff9090; } .active_no_check { background: #e8e8e8; }
td.ac { text-align: left; } td.px { text-align: left; font-weight: bold; }
"""
    HEADER = ("<tr class=\"titre\"><th rowspan=2></th><th colspan=3>Queue</th>"
              "<th colspan=3>Session rate</th><th colspan=6>Sessions</th>"
              "<th colspan=2>Bytes</th><th colspan=2>Denied</th><th colspan=3>Errors</th>"
              "<th colspan=2>Warnings</th><th colspan=9>Server</th></tr>"
              "<tr class=\"titre\"><th>Cur</th><th>Max</th><th>Limit</th><th>Cur</th>"
              "<th>Max</th><th>Limit</th><th>Cur</th><th>Max</th><th>Limit</th>"
              "<th>Total</th><th>LbTot</th><th>Last</th><th>In</th><th>Out</th><th>Req</th>"
              "<th>Resp</th><th>Req</th><th>Conn</th><th>Resp</th><th>Retr</th><th>Redis</th>"
              "<th>Status</th><th>LastChk</th><th>Wght</th><th>Act</th><th>Bck</th>"
              "<th>Chk</th><th>Dwn</th><th>Dwntme</th><th>Thrtle</th></tr>")

    @staticmethod
    def row_class(row: dict) -> str:
        status = row["status"]
        if row["type"] != 2:
            return ("frontend", "backend", "", "socket")[row["type"]]
        prefix = "backup" if row.get("bck") else "active"
        if status.startswith("MAINT"):
            return "maintain"
        if status == "DRAIN":
            return "draining"
        if status == "no check":
            return "active_no_check"
        if status.startswith("UP "):
            return f"{prefix}_going_down"
        if status.startswith("DOWN "):
            return f"{prefix}_going_up"
        return f"{prefix}_up" if status.startswith("UP") else f"{prefix}_down"

    def html(self, options: dict, admin: bool) -> str:
        collector = self.applets.collector()
        scope = options["scope"]
        rows = collector.rows(scope, options["up"], options["no_maint"])
        info = {name: value for name, _, _, value in info_fields(collector)}
        esc = html.escape
        out = ["<!DOCTYPE html><html><head><meta charset=\"utf-8\">",
               f"<title>Statistics Report for fastlb on {esc(str(info['node']))}</title>",
               f"<style>{self.STYLE}</style></head><body>"]
        version = "" if self.page.hide_version else f" version {__version__}"
        out.append(f"<h1>fastlb{version}</h1>")
        out.append(f"<h2>Statistics Report for pid {info['Pid']}</h2>")
        if self.page.show_node is not None:
            out.append(f"<p>node: {esc(self.page.show_node or str(info['node']))}</p>")
        if self.page.show_desc:
            out.append(f"<p>{esc(self.page.show_desc)}</p>")
        st = options["st"]
        if st:
            out.append(f"<p class=\"status\" id=\"action-status\">Action processed "
                       f"({esc(st)}).</p>")
        out.append(f"<p id=\"general\">pid = {info['Pid']} (workers: {esc(info['Worker_pids'])})"
                   f"; uptime = {info['Uptime']}; system limits: maxconn = {info['Maxconn']}; "
                   f"current conns = {info['CurrConns']}; cumulated requests = {info['CumReq']}"
                   f"; idle = {info['Idle_pct']} %; generated at "
                   f"<span id=\"generated\">{time.strftime('%H:%M:%S')}."
                   f"{int(time.time() * 1000) % 1000:03d}</span></p>")
        if self.page.show_legends:
            out.append("<p id=\"legend\">Legend: <span class=\"active_up\">active UP</span> "
                       "<span class=\"active_going_down\">active UP, going down</span> "
                       "<span class=\"active_going_up\">active DOWN, going up</span> "
                       "<span class=\"active_down\">active or backup DOWN</span> "
                       "<span class=\"maintain\">MAINT</span> <span class=\"draining\">DRAIN"
                       "</span> <span class=\"active_no_check\">not checked</span></p>")
        refresh = "" if options["norefresh"] else ";norefresh"
        out.append(f"<p><a href=\"{esc(self.page.uri)};csv\">CSV export</a> "
                   f"<a href=\"{esc(self.page.uri)}{refresh}\">"
                   f"{'Disable' if refresh else 'Enable'} refresh</a></p>")
        by_proxy: dict = {}
        for row in rows:
            by_proxy.setdefault(row["pxname"], []).append(row)
        for name, proxy_rows in by_proxy.items():
            iid = proxy_rows[0]["iid"]
            has_servers = any(r["type"] == 2 for r in proxy_rows)
            if admin and has_servers:
                out.append(f"<form method=\"post\" action=\"{esc(self.page.uri)}\">")
            out.append(f"<table class=\"tbl\" id=\"px-{esc(name)}\" data-proxy=\"{esc(name)}\">"
                       f"<tr><th class=\"pxname\" colspan=31>{esc(name)}</th></tr>{self.HEADER}")
            for row in proxy_rows:
                out.append(self.html_row(row, admin and has_servers))
            out.append("</table>")
            if admin and has_servers:
                out.append(f"<input type=\"hidden\" name=\"b\" value=\"#{iid}\">"
                           "Choose the action to perform on the checked servers : "
                           "<select name=\"action\" id=\"action-" + esc(name) + "\">"
                           + "".join(f"<option value=\"{a}\">{a}</option>" for a in
                                     ("ready", "drain", "maint", "dhlth", "ehlth", "hrunn",
                                      "hnolb", "hdown", "shutdown"))
                           + f"</select><input type=\"submit\" id=\"apply-{esc(name)}\" "
                             "value=\"Apply\"></form>")
        out.append("</body></html>\n")
        return "".join(out)

    def html_row(self, row: dict, checkboxes: bool) -> str:
        esc = html.escape

        def cell(name):
            value = row.get(name)
            return f"<td>{'' if value is None else esc(str(value))}</td>"

        label = row["svname"]
        if checkboxes:
            box = (f"<input type=\"checkbox\" name=\"s\" value=\"{esc(label)}\">"
                   if row["type"] == 2 else "")
            label_cell = f"<td class=\"ac\">{box}{esc(label)}</td>"
        else:
            label_cell = f"<td class=\"ac\">{esc(label)}</td>"
        cells = [label_cell] + [cell(n) for n in ("qcur", "qmax", "qlimit", "rate", "rate_max",
                                                   "rate_lim", "scur", "smax", "slim", "stot",
                                                   "lbtot", "lastsess", "bin", "bout", "dreq",
                                                   "dresp", "ereq", "econ", "eresp", "wretr",
                                                   "wredis")]
        status = row["status"]
        last_chk = ""
        if row.get("check_status"):
            last_chk = f"{row['check_status']} in {row.get('check_duration', 0)}ms"
        cells.append(f"<td class=\"status\">{esc(status)}</td>")
        cells.append(f"<td>{esc(last_chk)}</td>")
        cells += [cell(n) for n in ("weight", "act", "bck", "chkfail", "chkdown", "downtime",
                                    "throttle")]
        return (f"<tr class=\"{self.row_class(row)}\" data-sv=\"{esc(label)}\" "
                f"data-status=\"{esc(status)}\">{''.join(cells)}</tr>")

