"""The one table of statistics fields, in HAProxy 2.6's `show stat` order.

Every output reads it: the CSV of `show stat` and the stats page (`;csv`), the typed
output (`show stat typed`), the HTML page and the Prometheus exporter.  A row (see
collect.py) is a dict keyed by field name holding only the fields that apply to it;
the others are printed empty, as HAProxy prints them.

Columns of the table below:
  name     the CSV column
  tag      HAProxy's typed-output nature: origin (K key, C config, S status, M metric,
           P product), nature (N name, G gauge, L limit, M max, C counter, D duration,
           A age, a average, R rate, O output), scope (P process, S service)
  type     u32, u64, s32 or str in the typed output
  metric   the Prometheus metric, without the haproxy_<frontend|backend|server>_ prefix
           ("-" when it is not exported)
"""
from __future__ import annotations

from dataclasses import dataclass

_TABLE = """
pxname KNS str - proxy name
svname KNS str - service name (FRONTEND, BACKEND or the server's name)
qcur MGP u32 current_queue requests waiting in the queue
qmax MMP u32 max_queue highest number of requests waiting in the queue
scur MGP u32 current_sessions current sessions
smax MMP u32 max_sessions highest number of current sessions
slim CLP u32 limit_sessions configured session limit (maxconn)
stot MCP u64 sessions_total cumulative sessions
bin MCP u64 bytes_in_total bytes received from clients
bout MCP u64 bytes_out_total bytes sent to clients
dreq MCP u64 requests_denied_total requests denied by rules
dresp MCP u64 responses_denied_total responses denied by rules
ereq MCP u64 request_errors_total request errors (invalid, timed out, aborted)
econ MCP u64 connection_errors_total failed connection attempts to servers
eresp MCP u64 response_errors_total response errors (invalid, server failed or timed out)
wretr MCP u64 retry_warnings_total connection retries
wredis MCP u64 redispatch_warnings_total redispatches to another server
status SGP str status status (OPEN, UP, DOWN, MAINT, DRAIN, no check ...)
weight MaP u32 weight effective weight (servers), total weight of usable servers (backends)
act SGP u32 active_servers 1 for an active server; usable active servers (backends)
bck SGP u32 backup_servers 1 for a backup server; usable backup servers (backends)
chkfail MCP u64 check_failures_total failed checks while the server was up
chkdown MCP u64 check_up_down_total transitions to down
lastchg MAP u32 check_last_change_seconds seconds since the last state change
downtime MCP u32 downtime_seconds_total seconds spent down
qlimit CLP u32 queue_limit configured queue limit (maxqueue)
pid KGP u32 - process number
iid KGS u32 - proxy id
sid KGS u32 - server id (0 for FRONTEND and BACKEND)
throttle MGP u32 current_throttle slow-start throttle percentage
lbtot MCP u64 loadbalanced_total times the server was selected
tracked CGS str - the server whose state this one tracks
type CGS u32 - 0 frontend, 1 backend, 2 server
rate MRP u32 current_session_rate sessions over the last second
rate_lim CLP u32 limit_session_rate configured session rate limit
rate_max MMP u32 max_session_rate highest sessions per second
check_status MOP str - last check status
check_code MOP u32 check_code layer 7 code of the last check
check_duration MDP u64 check_duration_seconds duration of the last check (ms)
hrsp_1xx MCP u64 http_responses_total HTTP responses with a 1xx code
hrsp_2xx MCP u64 http_responses_total HTTP responses with a 2xx code
hrsp_3xx MCP u64 http_responses_total HTTP responses with a 3xx code
hrsp_4xx MCP u64 http_responses_total HTTP responses with a 4xx code
hrsp_5xx MCP u64 http_responses_total HTTP responses with a 5xx code
hrsp_other MCP u64 http_responses_total HTTP responses with another code
hanafail MCP u64 - failed health analyses (observe)
req_rate MRP u32 http_requests_rate_current HTTP requests over the last second
req_rate_max MMP u32 http_requests_rate_max highest HTTP requests per second
req_tot MCP u64 http_requests_total HTTP requests
cli_abrt MCP u64 client_aborts_total transfers aborted by the client
srv_abrt MCP u64 server_aborts_total transfers aborted by the server
comp_in MCP u64 - bytes fed to the compressor
comp_out MCP u64 - bytes out of the compressor
comp_byp MCP u64 - bytes that bypassed the compressor
comp_rsp MCP u64 - responses compressed
lastsess MAP s32 last_session_seconds seconds since the last session (-1: never)
last_chk MOP str - last check's details
last_agt MOP str - last agent check's details
qtime MaP u32 queue_time_average_seconds average queue time (ms) of the last 512 sessions
ctime MaP u32 connect_time_average_seconds average connect time (ms) of the last 512 sessions
rtime MaP u32 response_time_average_seconds average response time (ms) of the last 512 requests
ttime MaP u32 total_time_average_seconds average total time (ms) of the last 512 sessions
agent_status MOP str - agent check status
agent_code MOP u32 - agent check code
agent_duration MDP u64 - agent check duration (ms)
check_desc MOP str - last check status, in words
agent_desc MOP str - agent check status, in words
check_rise CGS u32 - check rise
check_fall CGS u32 - check fall
check_health CGS u32 - check health counter
agent_rise CGS u32 - agent rise
agent_fall CGS u32 - agent fall
agent_health CGS u32 - agent health counter
addr CGS str - server address
cookie CGS str - persistence cookie value
mode CGS str - proxy mode (http, tcp)
algo CGS str - balance algorithm
conn_rate MRP u32 connections_rate_current connections over the last second
conn_rate_max MMP u32 connections_rate_max highest connections per second
conn_tot MCP u64 connections_total connections
intercepted MCP u64 intercepted_requests_total requests answered by the proxy itself
dcon MCP u64 denied_connections_total connections denied by tcp-request connection rules
dses MCP u64 denied_sessions_total sessions denied by tcp-request session rules
wrew MCP u64 failed_header_rewriting_total failed header rewrites
connect MCP u64 connection_attempts_total connections established to servers
reuse MCP u64 connection_reuses_total requests sent over an idle or kept connection
cache_lookups MCP u64 - cache lookups
cache_hits MCP u64 - cache hits
srv_icur MGP u32 idle_connections_current idle connections kept for reuse
src_ilim CLP u32 idle_connections_limit idle connection limit
qtime_max MMP u32 max_queue_time_seconds highest queue time (ms)
ctime_max MMP u32 max_connect_time_seconds highest connect time (ms)
rtime_max MMP u32 max_response_time_seconds highest response time (ms)
ttime_max MMP u32 max_total_time_seconds highest total time (ms)
eint MCP u64 internal_errors_total internal errors
idle_conn_cur MGP u32 unsafe_idle_connections_current unsafe idle connections
safe_conn_cur MGP u32 safe_idle_connections_current safe idle connections
used_conn_cur MGP u32 used_connections_current connections in use
need_conn_est MGP u32 need_connections_current estimated connections needed
uweight MaP u32 uweight user weight (servers), sum of user weights (backends)
agg_server_status MGP u32 - servers' aggregated status
agg_server_check_status MGP u32 - servers' aggregated check status
agg_check_status MGP u32 - aggregated check status
- KNS str - separator before the per-module columns
ssl_sess MCP u64 - TLS sessions
ssl_reused_sess MCP u64 - TLS sessions resumed
ssl_failed_handshake MCP u64 - failed TLS handshakes
h2_headers_rcvd MCP u64 - HTTP/2 HEADERS frames received
h2_data_rcvd MCP u64 - HTTP/2 DATA frames received
h2_settings_rcvd MCP u64 - HTTP/2 SETTINGS frames received
h2_rst_stream_rcvd MCP u64 - HTTP/2 RST_STREAM frames received
h2_goaway_rcvd MCP u64 - HTTP/2 GOAWAY frames received
h2_detected_conn_protocol_errors MCP u64 - HTTP/2 connection protocol errors
h2_detected_strm_protocol_errors MCP u64 - HTTP/2 stream protocol errors
h2_rst_stream_resp MCP u64 - HTTP/2 RST_STREAM frames sent
h2_goaway_resp MCP u64 - HTTP/2 GOAWAY frames sent
h2_open_connections MGP u64 - open HTTP/2 connections
h2_backend_open_streams MGP u64 - open HTTP/2 backend streams
h2_total_connections MCP u64 - HTTP/2 connections
h2_backend_total_streams MCP u64 - HTTP/2 backend streams
h1_open_connections MGP u64 - open HTTP/1 connections
h1_open_streams MGP u64 - open HTTP/1 streams
h1_total_connections MCP u64 - HTTP/1 connections
h1_total_streams MCP u64 - HTTP/1 streams
h1_bytes_in MCP u64 - HTTP/1 bytes received
h1_bytes_out MCP u64 - HTTP/1 bytes sent
h1_spliced_bytes_in MCP u64 - HTTP/1 bytes received by splicing
h1_spliced_bytes_out MCP u64 - HTTP/1 bytes sent by splicing
"""


@dataclass(frozen=True)
class Field:
    index: int
    name: str
    tag: str
    type: str
    metric: str          # "" when not exported
    help: str


def _parse(table: str) -> tuple:
    fields = []
    for line in table.strip().splitlines():
        name, tag, kind, metric, text = line.split(" ", 4)
        fields.append(Field(len(fields), name, tag, kind, "" if metric == "-" else metric, text))
    return tuple(fields)


FIELDS = _parse(_TABLE)
BY_NAME = {f.name: f for f in FIELDS}
CSV_HEADER = "# " + ",".join(f.name for f in FIELDS) + ","

# row types (the "type" column)
FRONTEND, BACKEND, SERVER, LISTENER = 0, 1, 2, 3
