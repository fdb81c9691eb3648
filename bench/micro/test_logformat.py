"""Micro-benchmarks of log lines with sample fields: what a ``%[...]`` field adds to the
rendering of one log line (the loop keeps a Stream per request only for such formats).

    python -P -m pytest bench/micro/test_logformat.py
"""
from __future__ import annotations

from fastlb.logformat import compile_format, http_fields, render
from fastlb.loop import core as loop
from fastlb.sample import Context, Stream

REQUEST = (b"GET /api/v1/items?id=42 HTTP/1.1\r\n"
           b"Host: Shop.Example.COM\r\n"
           b"User-Agent: curl/8.0\r\n"
           b"\r\n")


def _line(fmt_text: str):
    """A compiled format and an HTTP line whose Stream holds the parsed request, its
    captured Host header in slot 0 (``capture request header Host``)."""
    fmt = compile_format(fmt_text, Context("log"))
    _url, headers, _ka, _len = loop.measure_parse_request(REQUEST)
    stream = Stream(b"GET", b"/api/v1/items?id=42", headers, "10.1.2.3", 80, b"1.1")
    stream.captures_req = ["Shop.Example.COM"]     # as the loop captures it
    line = http_fields(("10.1.2.3", 51234), "fe_main", "be_app", "app1", 1763800000123,
                       (0, 0, 1, 2, 3), 200, 1532, "----", (1, 1, 0, 0, "0"),
                       "GET /api/v1/items?id=42 HTTP/1.1", (stream.captures_req, None), 4242)
    line.stream = stream
    return fmt, line


def test_log_field_host_lower(benchmark):
    """``%[capture.req.hdr(0),lower]``: the host, lower-cased, in a log line (HAProxy 2.6
    refuses ``%[req.hdr(host)]`` in a log-format, the headers being gone by then: a capture
    is how a log line reads a request header)."""
    fmt, line = _line("%ci %[capture.req.hdr(0),lower] %ST")
    assert benchmark(render, fmt, line) == "10.1.2.3 shop.example.com 200"


def test_log_line_without_sample(benchmark):
    """The same line with a fixed variable in place of the sample field (the baseline)."""
    fmt, line = _line("%ci %hrl %ST")
    assert benchmark(render, fmt, line) == "10.1.2.3 Shop.Example.COM 200"
