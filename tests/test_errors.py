"""http-after-response rules and error pages on what only fastlb can be asked: its own
answers (stats page, keep-alive after an answer), a rewrite that may not be written, the
errors HAProxy leaves alone, and the keywords it refuses by name."""
from __future__ import annotations

import subprocess

from conftest import FASTLB, HTTP_DEFAULTS, HttpClient, free_port, recv_until_eof


def test_after_response_rules_reach_the_stats_page_and_keep_the_connection(fastlb,
                                                                           http_backends):
    backend = http_backends("app")
    port = free_port()
    fastlb(HTTP_DEFAULTS + f"""
    frontend fe
        bind 127.0.0.1:{port}
        stats enable
        stats uri /stats
        http-request deny if {{ path /no }}
        http-after-response set-header X-After %[status]
        default_backend be
    backend be
        server s1 127.0.0.1:{backend.port}
    """, ports=[port])
    client = HttpClient(port)
    status, fields, body = client.get("/stats;csv")
    assert status == 200 and fields["x-after"] == "200" and body.startswith(b"# pxname")
    # on the same connection: a deny page, then the server's answer, each edited once
    status, fields, body = client.get("/no")
    assert (status, fields["x-after"]) == (403, "403") and b"403 Forbidden" in body
    status, fields, body = client.get("/app")
    assert (status, fields["x-after"], body) == (200, "200", b"app GET /app")
    client.close()


def test_a_sample_cannot_inject_a_header_from_after_response(fastlb, http_backends):
    """A decoded CR LF in a sample is percent-encoded in the header value, as HAProxy
    encodes it: no header is injected, the response goes on."""
    backend = http_backends("app")
    port = free_port()
    fastlb(HTTP_DEFAULTS + f"""
    frontend fe
        bind 127.0.0.1:{port}
        http-request set-var(txn.v) req.hdr(x-v),url_dec
        http-after-response set-header X-V %[var(txn.v)]
        default_backend be
    backend be
        server s1 127.0.0.1:{backend.port}
    """, ports=[port])
    client = HttpClient(port)
    status, fields, body = client.get("/", headers=[("X-V", "a%0d%0aSet-Cookie: evil=1")])
    assert (status, fields["x-v"], body) == (200, "a%0D%0ASet-Cookie: evil=1", b"app GET /")
    assert "set-cookie" not in fields
    status, fields, body = client.get("/", headers=[("X-V", "fine")])
    assert (status, fields["x-v"], body) == (200, "fine", b"app GET /")


def test_errors_met_while_reading_a_head_get_no_after_response_rule(fastlb):
    """HAProxy's note: those are answered below its HTTP analysis."""
    port = free_port()
    fastlb(HTTP_DEFAULTS + f"""
    frontend fe
        bind 127.0.0.1:{port}
        http-after-response set-header X-After yes
    """, ports=[port])
    client = HttpClient(port)
    client.send(b"BROKEN\r\n\r\n")
    data = recv_until_eof(client.sock)
    assert data.startswith(b"HTTP/1.1 400 ") and b"X-After" not in data and \
        b"x-after" not in data
    # a 503 (no backend) is an answer of the analysis: edited
    status, fields, _ = HttpClient(port).get("/")
    assert (status, fields.get("x-after")) == (503, "yes")


def test_after_response_in_defaults_is_refused_by_name(tmp_path):
    (tmp_path / "haproxy.cfg").write_text(
        "defaults web\n    mode http\n    http-after-response set-header X 1\n")
    result = subprocess.run(FASTLB + ["-c", "-f", "haproxy.cfg"], capture_output=True,
                            text=True, cwd=tmp_path)
    assert result.returncode != 0
    assert "haproxy.cfg:3] : 'http-after-response' in a 'defaults' section is not " \
           "supported by fastlb yet" in result.stderr, result.stderr


def test_http_error_bad_lines_are_refused_by_name(tmp_path):
    """A status haproxy has no page for and a line without a status are refused (log-format
    pages are served: tests/test_errors_differential.py)."""
    for line, message in [
            ("http-error status 299", "status code '299' not handled"),
            ("http-error content-type text/plain", "expects 'status'")]:
        (tmp_path / "haproxy.cfg").write_text(
            "defaults\n    mode http\nfrontend fe\n    bind 127.0.0.1:1\n"
            f"    {line}\n")
        result = subprocess.run(FASTLB + ["-c", "-f", "haproxy.cfg"], capture_output=True,
                                text=True, cwd=tmp_path)
        assert result.returncode != 0 and "haproxy.cfg:5]" in result.stderr and \
            message in result.stderr, result.stderr


def test_after_response_strict_mode_and_capture_are_taken(tmp_path):
    """As in http-response: strict-mode on|off and capture <sample> id <n> (a declared
    response slot; the log line's comparison with haproxy is in test_sample_differential)."""
    (tmp_path / "haproxy.cfg").write_text(
        "defaults\n    mode http\nfrontend fe\n    bind 127.0.0.1:1\n"
        "    declare capture response len 4\n"
        "    http-after-response strict-mode off\n"
        "    http-after-response capture status id 0\n"
        "    http-after-response capture status id 1\n")
    result = subprocess.run(FASTLB + ["-c", "-f", "haproxy.cfg"], capture_output=True,
                            text=True, cwd=tmp_path)
    assert result.returncode == 1 and "haproxy.cfg:8]" in result.stderr and \
        "no capture slot with id 1" in result.stderr, result.stderr
