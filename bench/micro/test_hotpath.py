"""Micro-benchmarks of the per-request pieces of the hot path, each on its own.

    python -P -m pytest bench/micro                   # timings (pytest-benchmark tables)
    python -P -m pytest bench/micro --benchmark-disable  # each piece once, results checked

Every benchmark checks its result, so a broken piece fails here rather than timing
garbage.  The pieces are the ones the worker loop calls, built the way the loop gets
them: from config text through the typed model and the runtime tables.
"""
from __future__ import annotations

import textwrap

import pytest

from fastlb.loop import core as loop
from fastlb.config.parser import load_config
from fastlb.lb.sequence import roundrobin_order
from fastlb.logformat import HTTPLOG, compile_format, http_fields, render
from fastlb.loop.core import ROUTE_BACKEND
from fastlb.runtime.tables import compile_tables
from fastlb.sample import Context, Stream, compile_expr, compile_format as compile_value

REQUEST = (b"GET /api/v1/items?id=42&sort=asc HTTP/1.1\r\n"
           b"Host: shop.example.com\r\n"
           b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
           b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
           b"Accept-Language: en-US,en;q=0.5\r\n"
           b"Accept-Encoding: gzip, deflate, br\r\n"
           b"Cookie: session=0123456789abcdef; theme=dark\r\n"
           b"Connection: keep-alive\r\n"
           b"\r\n")


# Config text as the tests write it: indented by four, dedented before parsing.
HTTP_DEFAULTS = """
    defaults
        mode http
        timeout connect 1s
        timeout client 1s
        timeout server 1s
"""


def tables_from(tmp_path, text: str):
    path = tmp_path / "bench.cfg"
    path.write_text(textwrap.dedent(text))
    config, _warnings = load_config([str(path)])
    return compile_tables(config)


# -- request parsing --------------------------------------------------------------------
def test_parse_request(benchmark):
    url, headers, keep_alive, length = benchmark(loop.measure_parse_request, REQUEST)
    assert url == b"/api/v1/items?id=42&sort=asc"
    assert len(headers) == 7 and headers[0] == (b"host", b"shop.example.com")
    assert keep_alive and length == -1


# -- ACL prefix trie (path_beg) ---------------------------------------------------------
def path_routing_config(prefixes: int) -> str:
    lines = [f"    acl is_p{i} path_beg /svc{i}/" for i in range(prefixes)]
    lines += [f"    use_backend b{i % 2} if is_p{i}" for i in range(prefixes)]
    return HTTP_DEFAULTS + """
    frontend fe
        bind 127.0.0.1:1
        default_backend b0
    """ + "\n".join(" " * 4 + line for line in lines) + """
    backend b0
        server s 127.0.0.1:2
    backend b1
        server s 127.0.0.1:3
    """


@pytest.mark.parametrize("prefixes", [10, 1000])
def test_acl_path_beg(benchmark, tmp_path, prefixes):
    tables = tables_from(tmp_path, path_routing_config(prefixes))
    route = tables.frontends[0].spec.router
    last = prefixes - 1                    # the last rule: every earlier one is tried first
    url = f"/svc{last}/orders/17".encode()
    headers = [(b"host", b"x")]
    verdict = benchmark(lambda: route(Stream(b"GET", url, headers, "127.0.0.1", 80, b"1.1")))
    assert verdict == (ROUTE_BACKEND, tables.frontends[0].backend + last % 2)


# -- balancing ------------------------------------------------------------------------
# Only roundrobin is built so far (issue 4 adds the other algorithms, each to be added here).
@pytest.mark.parametrize("weights", [{0: 1, 1: 1, 2: 1}, {0: 10, 1: 3, 2: 1, 3: 7}])
def test_roundrobin_1000_picks(benchmark, weights):
    prefix, cycle = roundrobin_order(weights)
    order = tuple(prefix + cycle)
    last = benchmark(loop.measure_rr_picks, order, len(prefix), 1000)
    assert last == order[len(prefix) + (999 - len(prefix)) % len(cycle)]


# -- header rewriting -----------------------------------------------------------------
REWRITE_CONFIG = HTTP_DEFAULTS + """
    frontend fe
        bind 127.0.0.1:1
        option forwardfor
        http-request set-header X-Proto http
        http-request del-header Cookie
        http-response set-header X-Frame-Options DENY
        http-response del-header Server
        default_backend be
    backend be
        server s 127.0.0.1:2
"""


def test_request_header_rewrite(benchmark, tmp_path):
    tables = tables_from(tmp_path, REWRITE_CONFIG)
    proxy = tables.frontends[0].proxy
    route = tables.frontends[0].spec.router
    add_forwarded = tables.frontends[0].spec.request_editor
    _url, parsed, _ka, _len = loop.measure_parse_request(REQUEST)

    def rewrite():
        headers = list(parsed)
        route(Stream(b"GET", b"/", headers, "10.1.2.3", 80, b"1.1"))
        out = []
        add_forwarded(out, headers, "10.1.2.3")
        return headers, out

    headers, out = benchmark(rewrite)
    names = [name for name, _ in headers]
    assert b"cookie" not in names and (b"x-proto", b"http") in headers
    assert out == [b"x-forwarded-for", b": ", b"10.1.2.3", b"\r\n"]


def test_response_header_rewrite(benchmark, tmp_path):
    edit = tables_from(tmp_path, REWRITE_CONFIG).frontends[0].spec.response_editor
    response = [(b"server", b"nginx"), (b"content-type", b"text/html"), (b"content-length", b"3")]

    def rewrite():
        headers = list(response)
        stream = Stream(b"GET", b"", [], "10.1.2.3", 80, b"")
        stream.res_headers, stream.status = headers, 200
        edit(stream)
        return headers

    headers = benchmark(rewrite)
    assert (b"x-frame-options", b"DENY") in headers and b"server" not in [n for n, _ in headers]


# -- log lines ------------------------------------------------------------------------
def test_httplog_line(benchmark):
    parts = compile_format(HTTPLOG)

    def line():
        fields = http_fields(("10.0.0.7", 51234), "fe_main", "be_app", "app1", 1763800000123,
                             (0, 0, 1, 2, 3), 200, 1532, "----", (1, 1, 0, 0, "0"),
                             "GET /api/v1/items?id=42 HTTP/1.1", (None, None), 4242)
        return render(parts, fields)

    text = benchmark(line)
    assert text.startswith("10.0.0.7:51234 [")
    assert text.endswith('fe_main be_app/app1 0/0/1/2/3 200 1532 - - ---- 1/1/0/0/0 0/0 '
                         '"GET /api/v1/items?id=42 HTTP/1.1"')


# -- the sample engine ----------------------------------------------------------------
def test_sample_expression_hdr_lower(benchmark):
    """``%[req.hdr(host),lower]``: one fetch and one converter, as a rule value renders it
    (the expression alone: what a log field or a header value built from it costs)."""
    _url, parsed, _ka, _len = loop.measure_parse_request(REQUEST)
    value = compile_value("%[req.hdr(host),lower]", Context("frontend http-request"))
    stream = Stream(b"GET", b"/", parsed, "10.1.2.3", 80, b"1.1")
    assert benchmark(value.render, stream) == b"shop.example.com"


SET_VAR_CONFIG = HTTP_DEFAULTS + """
    frontend fe
        bind 127.0.0.1:1
        http-request set-var(txn.host) req.hdr(host),lower
        use_backend b1 if { var(txn.host) -m str shop.example.com }
        default_backend b0
    backend b0
        server s 127.0.0.1:2
    backend b1
        server s 127.0.0.1:3
"""


def test_set_var_and_acl(benchmark, tmp_path):
    """A set-var rule and an ACL on the variable: the whole router call per request."""
    tables = tables_from(tmp_path, SET_VAR_CONFIG)
    route = tables.frontends[0].spec.router
    _url, parsed, _ka, _len = loop.measure_parse_request(REQUEST)
    verdict = benchmark(lambda: route(Stream(b"GET", b"/", parsed, "10.1.2.3", 80, b"1.1", {})))
    assert verdict == (ROUTE_BACKEND, 1)


def test_plain_header_acl(benchmark, tmp_path):
    """The same routing on a plain ``hdr(host)`` ACL (no variable, no converter): the
    common case the engine must keep as cheap as it was."""
    tables = tables_from(tmp_path, SET_VAR_CONFIG.replace(
        "        http-request set-var(txn.host) req.hdr(host),lower\n", "").replace(
        "var(txn.host) -m str", "hdr(host) -i"))
    route = tables.frontends[0].spec.router
    _url, parsed, _ka, _len = loop.measure_parse_request(REQUEST)
    verdict = benchmark(lambda: route(Stream(b"GET", b"/", parsed, "10.1.2.3", 80, b"1.1")))
    assert verdict == (ROUTE_BACKEND, 1)
