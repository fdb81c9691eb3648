"""Statistics over real sockets: the stats socket (show stat, show servers state, show
info, admin commands, levels, prompt), counters summed over workers and kept across
respawns, the stats page (auth, CSV, scope, admin POST), the Prometheus exporter, and a
differential check of the CSV shape against Debian's haproxy."""
from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import HTTP_DEFAULTS, HttpClient, free_port, wait_until
from conftest import stats_cli as cli

# spec Appendix A: HAProxy 2.6.12's `show stat` header, the contract tools read by position
APPENDIX_A = (
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,"
    "wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,"
    "lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,"
    "hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,"
    "cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,"
    "ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,"
    "check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,"
    "conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,"
    "cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,"
    "safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,"
    "agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,"
    "ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,"
    "h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,"
    "h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,"
    "h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,"
    "h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,"
    "h1_spliced_bytes_out,")
SERVERS_STATE_HEADER = (
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
    "srv_iweight srv_time_since_last_change srv_check_status srv_check_result "
    "srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id "
    "srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr "
    "srv_agent_port")
COLUMNS = APPENDIX_A[2:].rstrip(",").split(",")


def stat_rows(text: str) -> dict:
    """{(pxname, svname): {column: value}}"""
    lines = [line for line in text.splitlines() if line]
    assert lines[0] == APPENDIX_A
    rows = {}
    for line in lines[1:]:
        assert line.endswith(",")
        values = line[:-1].split(",")
        assert len(values) == len(COLUMNS), line
        rows[(values[0], values[1])] = dict(zip(COLUMNS, values))
    return rows


def config(sock, port, s1, s2, extra="", stats_port=None, level="admin"):
    text = f"""
    global
        stats socket {sock} level {level}
    {HTTP_DEFAULTS}
    frontend fe
        bind 127.0.0.1:{port}
        option http-server-close
        http-request use-service prometheus-exporter if {{ path /metrics }}
        default_backend be
    backend be
        balance roundrobin
        server s1 127.0.0.1:{s1} check inter 200ms
        server s2 127.0.0.1:{s2} weight 1
    {extra}
    """
    if stats_port:
        text += f"""
    listen st
        bind 127.0.0.1:{stats_port}
        stats enable
        stats uri /stats
        stats refresh 1s
        stats auth admin:secret
        stats admin if TRUE
    """
    return text


def get(port, path="/", auth=None, timeout=5.0):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if auth:
        request.add_header("Authorization",
                           "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def serving(port) -> bool:
    try:
        return get(port, timeout=1)[0] == 200
    except OSError:
        return False             # not listening yet


def test_show_stat_counts_1000_requests_through_4_workers(fastlb, http_backends, tmp_path):
    a, b = http_backends("s1"), http_backends("s2")
    port, sock = free_port(), tmp_path / "stats.sock"
    lb = fastlb(config(sock, port, a.port, b.port), workers=4, ports=[port])
    for _ in range(1000):
        status, _, _ = get(port)                 # one connection each (http-server-close)
        assert status == 200
    rows = stat_rows(cli(sock, "show stat"))
    assert list(rows) == [("fe", "FRONTEND"), ("be", "s1"), ("be", "s2"), ("be", "BACKEND")]
    fe, s1, s2, be = (rows[k] for k in rows)
    assert fe["stot"] == fe["req_tot"] == fe["conn_tot"] == fe["hrsp_2xx"] == "1000"
    assert be["stot"] == be["req_tot"] == be["hrsp_2xx"] == be["lbtot"] == "1000"
    assert int(s1["stot"]) + int(s2["stot"]) == 1000
    assert int(s1["stot"]) == len(a.requests) and int(s2["stot"]) == len(b.requests)
    assert abs(int(s1["stot"]) - int(s2["stot"])) <= 8       # round robin, 4 workers
    assert int(fe["bin"]) == int(be["bin"]) == int(s1["bin"]) + int(s2["bin"]) > 1000 * 30
    assert int(fe["bout"]) == int(s1["bout"]) + int(s2["bout"]) > 1000 * 40
    assert (fe["status"], s1["status"], s2["status"], be["status"]) == \
        ("OPEN", "UP", "no check", "UP")
    assert (fe["type"], s1["type"], be["type"]) == ("0", "2", "1")
    assert (s1["iid"], s1["sid"], s2["sid"], s1["check_status"]) == ("3", "1", "2", "L4OK")
    assert be["algo"] == "roundrobin" and be["mode"] == "http" and fe["pid"] == "1"
    assert fe["scur"] == s1["scur"] == be["scur"] == "0"
    info = dict(line.split(": ", 1) for line in cli(sock, "show info").splitlines() if line)
    assert info["CumReq"] == "1000" and info["Nbthread"] == "4"
    assert info["Pid"] == str(lb.pid)
    assert sorted(int(p) for p in info["Worker_pids"].split()) == sorted(lb.worker_pids())
    assert int(info["Uptime_sec"]) >= 0 and 0 <= int(info["Idle_pct"]) <= 100
    lb.stop()


def test_show_servers_state_and_admin_commands_reach_every_worker(fastlb, http_backends,
                                                                   tmp_path):
    a, b = http_backends("s1"), http_backends("s2")
    port, sock = free_port(), tmp_path / "stats.sock"
    fastlb(config(sock, port, a.port, b.port), workers=4, ports=[port])
    text = cli(sock, "show servers state")
    lines = text.split("\n")
    assert lines[0] == "1" and lines[1] == SERVERS_STATE_HEADER and text.endswith("\n\n")
    s1 = lines[2].split(" ")
    s2 = lines[3].split(" ")
    assert len(s1) == 25
    assert s1[:9] == ["3", "be", "1", "s1", "127.0.0.1", "2", "0", "1", "1"]
    assert s1[10:12] == ["6", "3"] and s1[13] in ("6", "7")          # L4OK, passed
    assert s1[14:] == ["0", "0", "0", "-", str(a.port), "-", "0", "0", "-", "-", "0"]
    assert s2[10:14] == ["1", "0", "2", "0"]              # unchecked: INI, health = rise (2)
    assert cli(sock, "disable server be/s1") == "\n"
    # the very next requests, on every worker, avoid s1
    before = len(a.requests)
    for _ in range(40):
        assert get(port)[0] == 200
    assert len(a.requests) == before
    state = cli(sock, "show servers state be").split("\n")[2].split(" ")
    assert state[5:7] == ["0", "1"] and state[13] in ("14", "15")
    rows = stat_rows(cli(sock, "show stat"))
    assert rows[("be", "s1")]["status"] == "MAINT"
    assert cli(sock, "enable server be/s1") == "\n"
    state = cli(sock, "show servers state be").split("\n")[2].split(" ")
    assert state[5:7] == ["2", "0"] and state[13] in ("6", "7")
    for _ in range(40):
        assert get(port)[0] == 200
    assert len(a.requests) >= before + 19
    # drain: no new traffic; weights; maxconn
    assert cli(sock, "set server be/s2 state drain") == "\n"
    assert stat_rows(cli(sock, "show stat"))[("be", "s2")]["status"] == "DRAIN"
    before = len(b.requests)
    for _ in range(20):
        get(port)
    assert len(b.requests) == before
    assert cli(sock, "set server be/s2 state ready") == "\n"
    assert cli(sock, "get weight be/s2") == "1 (initial 1)\n\n"
    assert cli(sock, "set weight be/s2 3") == "\n"
    assert cli(sock, "get weight be/s2") == "3 (initial 1)\n\n"
    before_a, before_b = len(a.requests), len(b.requests)
    for _ in range(40):
        get(port)
    assert len(b.requests) - before_b == 30 and len(a.requests) - before_a == 10
    assert cli(sock, "set server be/s2 weight 0") == "\n"
    assert stat_rows(cli(sock, "show stat"))[("be", "s2")]["weight"] == "0"
    # show stat <iid> <type mask> <sid>: proxy 3, servers only, server 1
    selected = [line.split(",")[:2] for line in cli(sock, "show stat 3 4 1").splitlines()[1:]
                if line]
    assert selected == [["be", "s1"]]
    assert cli(sock, "set maxconn server be/s1 7") == "\n"
    assert stat_rows(cli(sock, "show stat"))[("be", "s1")]["slim"] == "7"
    # HAProxy's answers to mistakes
    assert cli(sock, "disable server be/nope") == "No such server.\n\n"
    assert cli(sock, "disable server nope/s1") == "No such backend.\n\n"
    assert cli(sock, "show servers state nope") == "Can't find backend.\n\n"
    assert cli(sock, "set server be/s1 state bogus") == \
        "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n\n"
    assert cli(sock, "bogus").startswith("Unknown command")


def test_cli_levels_prompt_and_several_commands(fastlb, http_backends, tmp_path):
    a, b = http_backends("s1"), http_backends("s2")
    port, sock = free_port(), tmp_path / "stats.sock"
    fastlb(config(sock, port, a.port, b.port, level="user"), ports=[port])
    assert cli(sock, "disable server be/s1") == "Permission denied\n\n"
    assert cli(sock, "clear counters") == "Permission denied\n\n"
    assert cli(sock, "show cli level") == "user\n\n"
    assert "disable server" not in cli(sock, "help")
    # several commands on one line, and several lines before the close
    assert cli(sock, "show cli level; get weight be/s1") == "user\n\n1 (initial 1)\n\n"
    assert cli(sock, "show cli level\nget weight be/s2") == "user\n\n1 (initial 1)\n\n"
    # interactive mode: the connection stays open, each answer ends with a prompt
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(5)
        conn.connect(str(sock))
        conn.sendall(b"prompt\n")
        assert conn.recv(100) == b"> "
        conn.sendall(b"show cli level\n")
        data = b""
        while not data.endswith(b"> "):
            data += conn.recv(100)
        assert data == b"user\n\n> "
        conn.sendall(b"quit\n")
        assert conn.recv(100) == b""


def test_clear_counters_and_counters_survive_a_worker_crash(fastlb, http_backends, tmp_path):
    a, b = http_backends("s1"), http_backends("s2")
    port, sock = free_port(), tmp_path / "stats.sock"
    lb = fastlb(config(sock, port, a.port, b.port), workers=2, ports=[port])
    for _ in range(50):
        get(port)

    def metrics():
        status, headers, body = get(port, "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain")
        samples = {}
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    before = metrics()
    fe_req = before[("haproxy_frontend_http_requests_total", (("proxy", "fe"),))]
    assert fe_req >= 50
    assert before[("haproxy_backend_sessions_total", (("proxy", "be"),))] == 50
    assert before[("haproxy_server_status", (("proxy", "be"), ("server", "s1"),
                                             ("state", "UP")))] == 1
    assert before[("haproxy_process_nbthread", ())] == 2
    assert before[("haproxy_process_resident_memory_bytes", ())] > 10 << 20
    victim = lb.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: len(lb.worker_pids()) == 2 and victim not in lb.worker_pids(),
               message="respawn")
    after = metrics()
    counters = [key for key in before if key[0].endswith("_total")]
    assert counters
    for key in counters:
        assert after[key] >= before[key], key
    assert after[("haproxy_backend_sessions_total", (("proxy", "be"),))] == 50
    # clear counters: maxima only; clear counters all: everything
    rows = stat_rows(cli(sock, "show stat"))
    assert int(rows[("fe", "FRONTEND")]["smax"]) >= 1
    assert cli(sock, "clear counters") == "\n"
    rows = stat_rows(cli(sock, "show stat"))
    assert rows[("fe", "FRONTEND")]["smax"] == "0" and rows[("be", "BACKEND")]["stot"] == "50"
    assert cli(sock, "clear counters all") == "\n"
    rows = stat_rows(cli(sock, "show stat"))
    assert rows[("be", "BACKEND")]["stot"] == "0"


def test_shutdown_sessions_closes_a_servers_tcp_sessions(fastlb, backends, tmp_path):
    server = backends()
    port, sock = free_port(), tmp_path / "stats.sock"
    fastlb(f"""
    global
        stats socket {sock} level admin
    defaults
        mode tcp
        timeout connect 1s
        timeout client 10s
        timeout server 10s
    listen tcp
        bind 127.0.0.1:{port}
        server echo 127.0.0.1:{server.port}
    """, workers=2, ports=[port])
    clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(4)]
    for c in clients:
        c.sendall(b"ping")
        assert c.recv(4) == b"ping"
    assert stat_rows(cli(sock, "show stat"))[("tcp", "echo")]["scur"] == "4"
    assert cli(sock, "shutdown sessions server tcp/echo") == "\n"
    for c in clients:
        assert c.recv(10) == b""
        c.close()
    wait_until(lambda: stat_rows(cli(sock, "show stat"))[("tcp", "echo")]["scur"] == "0",
               message="sessions gone")


def test_stats_page_auth_csv_scope_and_admin_post(fastlb, http_backends, tmp_path):
    a, b = http_backends("s1"), http_backends("s2")
    port, stats_port, sock = free_port(), free_port(), tmp_path / "stats.sock"
    fastlb(config(sock, port, a.port, b.port, stats_port=stats_port), workers=2,
           ports=[port, stats_port])
    status, headers, _ = get(stats_port, "/stats")
    assert status == 401 and headers["www-authenticate"] == 'Basic realm="HAProxy Statistics"'
    assert get(stats_port, "/stats", auth="admin:wrong")[0] == 401
    status, headers, body = get(stats_port, "/stats", auth="admin:secret")
    assert status == 200 and headers["content-type"] == "text/html"
    assert headers["refresh"] == "1" and headers["cache-control"] == "no-cache"
    assert b'id="px-be"' in body and b'data-sv="s1"' in body
    status, headers, body = get(stats_port, "/stats;csv;scope=be", auth="admin:secret")
    assert status == 200 and headers["content-type"] == "text/plain"
    rows = stat_rows(body.decode())
    assert {k[0] for k in rows} == {"be"}
    # keep-alive: GET, GET, POST x3, GET on one connection (spec 12.4)
    client = HttpClient(stats_port)
    auth = [("Authorization", "Basic " + base64.b64encode(b"admin:secret").decode())]
    form = [("Content-Type", "application/x-www-form-urlencoded")] + auth
    assert client.get("/stats", headers=auth)[0] == 200
    assert client.get("/stats;csv", headers=auth)[0] == 200
    answers = []
    for body in (b"b=%233&action=maint&s=s1", b"b=be&action=drain&s=s2&s=nope",
                 b"b=be&action=ready"):
        client.request("POST", "/stats?scope=be", headers=form, body=body)
        answers.append(client.response())
    assert [a[0] for a in answers] == [303, 303, 303]
    assert [a[1]["location"] for a in answers] == [
        "/stats;st=DONE?scope=be", "/stats;st=PART?scope=be", "/stats;st=NONE?scope=be"]
    assert answers[0][1]["content-length"] == "0"
    status, _, body = client.get("/stats;csv", headers=auth)
    rows = stat_rows(body.decode())
    assert (rows[("be", "s1")]["status"], rows[("be", "s2")]["status"]) == ("MAINT", "DRAIN")
    client.close()
    # the change reached every worker: no request goes to s1 or s2
    for _ in range(20):
        assert get(port)[0] == 503


def test_stats_admin_denied_without_the_admin_condition(fastlb, http_backends, tmp_path):
    a, b = http_backends("s1"), http_backends("s2")
    port, stats_port, sock = free_port(), free_port(), tmp_path / "stats.sock"
    fastlb(config(sock, port, a.port, b.port, extra=f"""
    listen st
        bind 127.0.0.1:{stats_port}
        stats uri /
        stats admin if FALSE
    """), ports=[port, stats_port])
    client = HttpClient(stats_port)
    client.request("POST", "/", headers=[("Content-Type", "application/x-www-form-urlencoded")],
                   body=b"b=be&action=maint&s=s1")
    status, headers, _ = client.response()
    assert status == 303 and headers["location"] == "/;st=DENY"
    assert stat_rows(cli(sock, "show stat"))[("be", "s1")]["status"] != "MAINT"


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")
def test_csv_shape_matches_haproxy(tmp_path, http_backends):
    """Same config under Debian's haproxy and fastlb: same columns, same rows in the same
    order, and the same columns empty on each row."""
    a, b = http_backends("s1"), http_backends("s2")
    shapes = {}
    for name in ("haproxy", "fastlb"):
        port, stats_port = free_port(), free_port()
        sock = tmp_path / f"{name}.sock"
        cfg = tmp_path / f"{name}.cfg"
        text = config(sock, port, a.port, b.port, stats_port=stats_port, extra=f"""
    backend be2
        balance leastconn
        server t1 127.0.0.1:{a.port} maxconn 10 maxqueue 5 backup
        server t2 127.0.0.1:{b.port} disabled
    frontend tcpfe
        mode tcp
        bind 127.0.0.1:{free_port()}
        default_backend tcpbe
    backend tcpbe
        mode tcp
        server u1 127.0.0.1:{a.port} check inter 100ms
    """)
        text = text.replace("http-request use-service prometheus-exporter if { path /metrics }",
                            "")
        cfg.write_text(textwrap.dedent(text))
        cmd = ["haproxy", "-f", str(cfg)] if name == "haproxy" else \
            ["python", "-P", "-m", "fastlb", "-f", str(cfg), "-n", "2"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                cwd=tmp_path)
        try:
            wait_until(lambda: sock.exists(), timeout=10, message=f"{name} stats socket")
            wait_until(lambda: serving(port), timeout=10, message=f"{name} serving")
            for _ in range(5):
                get(port)
            time.sleep(0.5)
            text = cli(sock, "show stat")
            state = cli(sock, "show servers state")
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        rows = stat_rows(text)
        shapes[name] = ([(key, [c for c in COLUMNS if row[c] == ""]) for key, row in rows.items()],
                        [line.split(" ")[:5] + [len(line.split(" "))]
                         for line in state.split("\n")[2:] if line])
        shapes[name + "-status"] = [(key, row["status"], row["iid"], row["sid"])
                                    for key, row in rows.items()]
    for mine, theirs in zip(shapes["fastlb"][0], shapes["haproxy"][0]):
        assert mine[0] == theirs[0]
        assert set(mine[1]) == set(theirs[1]), (mine[0], "fastlb fills", set(theirs[1]) - set(
            mine[1]), "fastlb leaves empty", set(mine[1]) - set(theirs[1]))
    assert len(shapes["fastlb"][0]) == len(shapes["haproxy"][0])
    assert shapes["fastlb"][1] == shapes["haproxy"][1]
    assert shapes["fastlb-status"] == shapes["haproxy-status"]


def test_show_errors_keeps_the_last_invalid_request_and_response(fastlb, tmp_path):
    from conftest import raw_backend
    bad = raw_backend(b"HTTP/1.1 2x0 Broken\r\nContent-Length: 0\r\n\r\n")
    port, sock = free_port(), tmp_path / "stats.sock"
    fastlb(f"""
    global
        stats socket {sock} level admin
    {HTTP_DEFAULTS}
    frontend fe
        bind 127.0.0.1:{port}
        default_backend be
    backend be
        server broken 127.0.0.1:{bad.port}
    """, workers=2, ports=[port])
    assert cli(sock, "show errors").startswith("Total events captured on [")
    assert ": 0\n" in cli(sock, "show errors")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.recv(100).startswith(b"HTTP/1.1 400")
    assert get(port)[0] == 502
    text = cli(sock, "show errors")
    assert ": 2\n" in text.split("\n")[0] + "\n"
    assert "] frontend fe (#2): invalid request\n" in text
    assert "  backend <NONE> (#-1), server <NONE> (#-1), event #" in text
    assert "  00000  GET /a\\x01b HTTP/1.1\\r\\n\n" in text
    assert "] backend be (#3): invalid response\n" in text
    assert "  frontend fe (#2), server broken (#1), event #" in text
    assert "  00000  HTTP/1.1 2x0 Broken\\r\\n\n" in text
    assert cli(sock, "show errors be response").count("invalid") == 1
    assert "invalid request" not in cli(sock, "show errors fe response")
    bad.close()


def test_counter_layout_has_no_gap():
    """fastlb/shm/words.pxd numbers the counters for C and Python alike; the names Python
    derives from it must cover 0..STAT_COUNTERS-1 without a gap or a clash, inside a row.
    (-P: the installed, compiled package, as the other tests run it.)"""
    check = ("from fastlb import shm; "
             "assert sorted(shm.STAT.values()) == list(range(shm.STAT_COUNTERS)), shm.STAT; "
             "assert shm.STAT_COUNTERS <= shm.STAT_WORDS; "
             "assert shm.STAT['lastsess'] == shm.STAT_LASTSESS; print('same')")
    out = subprocess.run([sys.executable, "-P", "-c", check], capture_output=True, text=True,
                         cwd="/")
    assert out.stdout == "same\n", out.stderr
