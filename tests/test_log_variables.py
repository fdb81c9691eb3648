"""Every HAProxy 2.6 log-format variable, its flags and %[...] sample fields: one config run
through Debian's haproxy and through fastlb (tests/test_sample_differential.py's
``differential``), the log lines each sends to a UDP syslog receiver compared field by
field once what differs between two runs (ports, dates, timers, pids) is masked.

Each field of the format is ``<name>=<value>`` between `` | `` separators, so a difference
names the variable.
"""
from __future__ import annotations

import re
import shutil

import pytest

from conftest import mask_log_line
from test_sample_differential import differential

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")

# (label, format): rendered "label=value"
BOTH = [
    ("ci", "%ci"), ("cp", "%cp"), ("fi", "%fi"), ("fp", "%fp"), ("si", "%si"), ("sp", "%sp"),
    ("bi", "%bi"), ("bp", "%bp"), ("f", "%f"), ("ft", "%ft"), ("b", "%b"), ("s", "%s"),
    ("H", "%H"), ("t", "%t"), ("T", "%T"), ("Tl", "%Tl"), ("Ts", "%Ts"), ("ms", "%ms"),
    ("Th", "%Th"), ("Tw", "%Tw"), ("Tc", "%Tc"), ("Tt", "%Tt"), ("Tu", "%Tu"), ("Td", "%Td"),
    ("B", "%B"), ("U", "%U"), ("ts", "%ts"), ("tsc", "%tsc"), ("ac", "%ac"), ("fc", "%fc"),
    ("bc", "%bc"), ("sc", "%sc"), ("rc", "%rc"), ("sq", "%sq"), ("bq", "%bq"), ("rt", "%rt"),
    ("lc", "%lc"), ("ID", "%ID"), ("sslv", "%sslv"), ("sslc", "%sslc"), ("pid", "%pid"),
    ("hr", "%hr"), ("hrl", "%hrl"), ("ST", "%ST"),
    # flags: quoted strings (a missing one is ""), hexadecimal addresses and counters,
    # escaped strings, and %o carrying its flags to what follows
    ("Qci", "%{+Q}ci"), ("Qb", "%{+Q}b"), ("QID", "%{+Q}ID"), ("Qsslv", "%{+Q}sslv"),
    ("QH", "%{+Q}H"), ("QB", "%{+Q}B"), ("Qts", "%{+Q}ts"), ("Xci", "%{+X}ci"),
    ("Xsi", "%{+X}si"), ("Xrt", "%{+X}rt"), ("Xlc", "%{+X}lc"), ("EID", "%{+E}ID"),
    # sample expressions: what HAProxy can still read at log time
    ("src", "%[src]"), ("varnone", "%[var(txn.none)]"), ("Qnone", "%{+Q}[var(txn.none)]"),
    ("mask", "%[src,ipmask(8)]"), ("int", "%[int(5),add(2)]"), ("Qint", "%{+Q}[int(5)]"),
    ("Xint", "%{+X}[int(255)]"), ("fename", "%[fe_name]"),
]
HTTP_ONLY = [
    ("tr", "%tr"), ("trg", "%trg"), ("trl", "%trl"), ("TR", "%TR"), ("Ti", "%Ti"),
    ("Tq", "%Tq"), ("Tr", "%Tr"), ("Ta", "%Ta"), ("CC", "%CC"), ("CS", "%CS"),
    ("r", "%r"), ("Qr", "%{+Q}r"), ("HM", "%HM"), ("HU", "%HU"), ("HP", "%HP"),
    ("HPO", "%HPO"), ("HQ", "%HQ"), ("HV", "%HV"), ("QHU", "%{+Q}HU"), ("QCC", "%{+Q}CC"),
    ("hs", "%hs"), ("hsl", "%hsl"),
    ("cap", "%[capture.req.hdr(0),lower]"), ("Qcap", "%{+Q}[capture.req.hdr(0)]"),
    ("var", "%[var(txn.x)]"), ("Qvar", "%{+Q}[var(txn.x)]"), ("srv", "%[srv_name]"), ("be", "%[be_name]"),
    ("query", "%[var(txn.q)]"), ("querylen", "%[var(txn.q),length]"),
]
# what differs between two runs, or between HAProxy's count of bytes (its internal HTX
# size, README) and fastlb's (the bytes on the wire)
MASKED = {"cp", "fp", "sp", "bp", "t", "T", "Tl", "Ts", "ms", "Tw", "Tc", "Tt", "Tu", "Td",
          "B", "U", "pid", "tr", "trg", "trl", "TR", "Ti", "Tq", "Tr", "Ta", "QB", "Xlc"}
# the hostname, the addresses: the same machine and loopback in both
SEPARATOR = "\\ |\\ "


def log_config(mode: str, part: int):
    """Half of the fields (a syslog line is cut at 1024 bytes)."""
    fields = BOTH + (HTTP_ONLY if mode == "http" else [])
    fields = fields[:len(fields) // 2] if part == 0 else fields[len(fields) // 2:]
    fmt = SEPARATOR.join(f"{label}={text}" for label, text in fields)

    def make(port: int, be1: int, be2: int, log: int) -> str:
        http = mode == "http"
        return f"""
global
    log 127.0.0.1:{log} local0
defaults
    mode {mode}
    log global
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    log-format {fmt}
{"    capture request header Host len 20" if http else ""}
{"    http-request set-var(txn.x) str(hello)" if http else ""}
{"    http-request set-var(txn.q) query" if http else ""}
    default_backend be1
backend be1
    server s1 127.0.0.1:{be1}
backend be2
    server s2 127.0.0.1:{be2}
"""
    return make


def fields_of(line: str) -> dict:
    body = mask_log_line(line).rstrip("\n").split(": ", 1)[1]
    out = {}
    for part in body.split(" | "):
        label, _, value = part.partition("=")
        out[label] = value
    return out


def check_values(ours: dict, theirs: dict, masked=MASKED) -> list[str]:
    out = []
    for label in theirs:
        if label in masked:
            # both have a value of the same shape (a number or a date), or both none
            same_shape = (theirs[label] == "-") == (ours.get(label) == "-") and \
                (re.fullmatch(r"[+-]?[0-9A-F]+", theirs[label]) is None) == \
                (re.fullmatch(r"[+-]?[0-9A-F]+", ours.get(label, "")) is None)
            if not same_shape:
                out.append(f"{label}: {ours.get(label)!r}, haproxy's {theirs[label]!r}")
        elif ours.get(label) != theirs[label]:
            out.append(f"{label}: {ours.get(label)!r} != haproxy's {theirs[label]!r}")
    return out


@pytest.mark.parametrize("mode, part", [("http", 0), ("http", 1), ("tcp", 0), ("tcp", 1)])
def test_log_variables_as_haproxy(tmp_path, mode, part):
    logs: dict = {}
    requests = [("/a/b?a=1&b=2", [("Host", "WWW.Example")]),
                ("http://h.example/abs/path?z=9", [("Host", "h.example")])]
    differential(tmp_path, log_config(mode, part), requests, logs)
    assert len(logs["haproxy"]) == len(logs["fastlb"]) == 2, logs
    differences = []
    for n, (theirs, ours) in enumerate(zip(logs["haproxy"], logs["fastlb"])):
        # a connection may still be open when the next one logs (a TCP session whose
        # server has not closed yet; in a loaded CI run haproxy once counted one more for
        # the first HTTP request): the concurrent counts are compared by shape
        masked = MASKED | {"ac", "fc", "bc", "sc"}
        differences += [f"request {n}: {d}" for d in check_values(fields_of(ours),
                                                                  fields_of(theirs), masked)]
    assert not differences, "\n".join(differences)
    ours = fields_of(logs["fastlb"][1])
    # what the masked fields must still be: the address reached, the server's, ours; the
    # second request's counters; and no field was cut off
    expected = {"fi": "127.0.0.1", "si": "127.0.0.1", "bi": "127.0.0.1", "rt": "1", "lc": "1",
                "Xlc": "0001"}
    assert {k: ours[k] for k in expected if k in ours} == \
        {k: v for k, v in expected.items() if k in ours}
    assert ("fi" in ours) == (part == 0)
    assert all(fields_of(line)[label] for line in logs["fastlb"] for label in ("fp", "bp")
               if part == 0)
    assert len(ours) == len(fields_of(logs["haproxy"][1]))


def test_http_only_variables_are_refused_in_tcp_mode(tmp_path):
    """HAProxy refuses %CC, %r, %HU... in a TCP frontend's log-format at start-up."""
    import subprocess
    from conftest import FASTLB
    path = tmp_path / "tcp.cfg"
    path.write_text("defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 1s\n"
                    "    timeout server 1s\nfrontend fe\n    bind 127.0.0.1:1\n"
                    "    log-format %ci\\ %HU\n    default_backend be\nbackend be\n"
                    "    server s1 127.0.0.1:1\n")
    haproxy = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True)
    ours = subprocess.run(FASTLB + ["-c", "-f", str(path)], capture_output=True, text=True)
    assert haproxy.returncode != 0 and "reserved for HTTP mode" in haproxy.stderr
    assert ours.returncode != 0 and "reserved for HTTP mode" in ours.stderr, ours.stderr


def unique_id_config(port: int, be1: int, be2: int, log: int) -> str:
    return f"""
global
    log 127.0.0.1:{log} local0
defaults
    mode http
    log global
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    unique-id-format %{{+X}}o\\ %ci_%fi_%rt_%ft_%HM_%HU_%HV
    unique-id-header X-Unique-ID
    http-request set-header X-Copy %[unique-id]
    log-format id=%ID\\ |\\ qid=%{{+Q}}ID\\ |\\ fetch=%[unique-id]\\ |\\ rt=%rt
    default_backend be1
backend be1
    server s1 127.0.0.1:{be1}
backend be2
    server s2 127.0.0.1:{be2}
"""


def test_unique_id_format_and_header_as_haproxy(tmp_path):
    """The id (its fields as the request arrives), the header the server receives, the
    unique-id fetch in a rule and in the log, %ID."""
    logs: dict = {}
    requests = [("/a?b=1", [("Host", "h")]), ("/second", [("Host", "h")])]
    differential(tmp_path, unique_id_config, requests, logs)   # the server saw the same headers
    ours = [fields_of(line) for line in logs["fastlb"]]
    assert ours == [fields_of(line) for line in logs["haproxy"]]
    assert ours[1] == {"id": "7F000001_7F000001_0001_fe_GET_/second_HTTP/1.1",
                       "qid": '"7F000001_7F000001_0001_fe_GET_/second_HTTP/1.1"',
                       "fetch": "7F000001_7F000001_0001_fe_GET_/second_HTTP/1.1",
                       "rt": "1"}


def logasap_config(mode: str):
    def make(port: int, be1: int, be2: int, log: int) -> str:
        http = mode == "http"
        fmt = "Tt=%Tt | Tu=%Tu | B=%B | ts=%ts" + (" | Ta=%Ta | ST=%ST | tsc=%tsc" if http else "")
        fmt = fmt.replace(" ", "\\ ")
        return f"""
global
    log 127.0.0.1:{log} local0
defaults
    mode {mode}
    log global
    option logasap
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    log-format {fmt}
    default_backend be1
backend be1
    server s1 127.0.0.1:{be1}
backend be2
    server s2 127.0.0.1:{be2}
"""
    return make


@pytest.mark.parametrize("mode", ["http", "tcp"])
def test_option_logasap_as_haproxy(tmp_path, mode):
    """The line goes out at the response head (a TCP session's once connected): '+' before
    %Tt/%Tu/%Ta (and %B of a request), the state still '--'."""
    logs: dict = {}
    differential(tmp_path, logasap_config(mode), [("/", [("Host", "h")])], logs)
    theirs, ours = fields_of(logs["haproxy"][0]), fields_of(logs["fastlb"][0])
    assert len(logs["fastlb"]) == 1
    assert {k: v[:1] == "+" for k, v in ours.items()} == \
        {k: v[:1] == "+" for k, v in theirs.items()}
    assert ours["ts"] == theirs["ts"] == "--"
    assert ours["Tt"].startswith("+")
    if mode == "http":
        assert ours["B"].startswith("+") and ours["ST"] == theirs["ST"] == "200"


def clf_config(port: int, be1: int, be2: int, log: int) -> str:
    return f"""
global
    log 127.0.0.1:{log} local0
defaults
    mode http
    log global
    option httplog clf
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    capture request header Host len 10
    capture response header X-Origin len 10
    default_backend be1
backend be1
    server s1 127.0.0.1:{be1}
backend be2
    server s2 127.0.0.1:{be2}
"""


def test_option_httplog_clf_as_haproxy(tmp_path):
    logs: dict = {}
    differential(tmp_path, clf_config, [("/a?b=1", [("Host", "www.example")])], logs)

    def masked(line: str) -> str:
        line = mask_log_line(line)
        line = re.sub(r"\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\]", "[DATE]", line)
        # %B, then %cp %ms, then the five timers
        line = re.sub(r'(" \d{3}) \d+ ', r"\1 B ", line)
        line = re.sub(r'"" "" \d+ \d+ ', '"" "" PORT MS ', line)
        return re.sub(r'("s1") \d+ \d+ \d+ \d+ \d+ ', r"\1 T T T T T ", line)
    assert [masked(x) for x in logs["fastlb"]] == [masked(x) for x in logs["haproxy"]]
    assert masked(logs["fastlb"][0]).rstrip("\n").endswith(
        '"GET /a?b=1 HTTP/1.1" 200 B "" "" PORT MS "fe" "be1" "s1" T T T T T ---- '
        '1 1 0 0 0 0 0 "" "" "www.exampl" "origin"')


def sd_config(port: int, be1: int, be2: int, log: int) -> str:
    return f"""
global
    log 127.0.0.1:{log} format rfc5424 local0
defaults
    mode http
    log global
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    log-format %ci\\ %ST
    log-format-sd %{{+Q,+E}}o\\ [exampleSDID@1234\\ ci=%ci\\ st=%ST\\ r=%r\\ b=%b]
    default_backend be1
backend be1
    server s1 127.0.0.1:{be1}
backend be2
    server s2 127.0.0.1:{be2}
"""


def test_log_format_sd_as_haproxy(tmp_path):
    """log-format-sd: the RFC 5424 structured data in place of its '-', quoted and escaped
    as the E flag says (']' in the request line)."""
    logs: dict = {}
    differential(tmp_path, sd_config, [("/x]y", [("Host", "h")])], logs)

    def masked(line: str) -> str:
        return re.sub(r"^<134>1 \S+ - \w+ \d+ - ", "<134>1 DATE - TAG PID - ", line)
    assert [masked(x) for x in logs["fastlb"]] == [masked(x) for x in logs["haproxy"]] == \
        ['<134>1 DATE - TAG PID - [exampleSDID@1234 ci="127.0.0.1" st=200 '
         'r="GET /x\\]y HTTP/1.1" b="be1"] 127.0.0.1 200\n']


ERROR_FORMAT = ("ERR %ci %ST %ts %tsc %ft %b %s %Tw %Tc %B %U %ac %fc %bc %sc %rc %{+Q}r %HM "
                "%ID %[src] %fi").replace(" ", "\\ ")


def test_error_log_format_as_haproxy(tmp_path):
    """error-log-format: the line of a connection that never became a stream (a bad PROXY
    header; a request that could not be parsed) in that format, in both."""
    import os
    import subprocess
    import time
    from conftest import FASTLB, SyslogReceiver, free_port, listening_sockets, wait_until
    lines = {}
    for name in ("haproxy", "fastlb"):
        syslog = SyslogReceiver()
        port = free_port()
        path = tmp_path / f"{name}.cfg"
        path.write_text(f"""
global
    log 127.0.0.1:{syslog.port} local0
defaults
    mode http
    log global
    option httplog
    timeout connect 1s
    timeout client 2s
    timeout server 2s
frontend fe
    bind 127.0.0.1:{port} accept-proxy
    error-log-format {ERROR_FORMAT}
    default_backend be1
backend be1
    server s1 127.0.0.1:1
""")
        cmd = ["haproxy", "-db", "-f", str(path)] if name == "haproxy" else \
            FASTLB + ["-d", "-f", str(path), "-n", "1"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=dict(os.environ))
        try:
            wait_until(lambda: listening_sockets(port) > 0, message=f"{name} listening")
            for data in (b"GARBAGE\r\n\r\n",
                         b"PROXY TCP4 10.1.2.3 10.9.8.7 1111 80\r\nBAD\r\n\r\n"):
                with socket_to(port) as sock:
                    sock.sendall(data)
                    try:
                        sock.recv(4096)
                    except OSError:
                        pass
                time.sleep(0.2)
            lines[name] = syslog.drain()
        finally:
            proc.terminate()
            proc.wait(5)
            syslog.sock.close()
    ours = [mask_log_line(x).split(": ", 1)[1] for x in lines["fastlb"]]
    assert ours == [mask_log_line(x).split(": ", 1)[1] for x in lines["haproxy"]]
    assert ours == ['ERR 127.0.0.1 0 PR PR-- fe fe <NOSRV> -1 -1 0 0 1 1 0 0 0 "<BADREQ>" '
                    '<BADREQ> - 127.0.0.1 127.0.0.1\n',
                    'ERR 10.1.2.3 400 PR PR-- fe fe <NOSRV> -1 -1 0 0 1 1 0 0 0 "<BADREQ>" '
                    '<BADREQ> - 10.1.2.3 10.9.8.7\n']


def socket_to(port: int):
    import socket
    sock = socket.create_connection(("127.0.0.1", port), timeout=3)
    return sock
