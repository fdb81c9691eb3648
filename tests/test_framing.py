"""framing.pxd in process: property tests (hypothesis) and a differential test against
llhttp (httptools) and the independent reference parser of the fuzzer.

Run with python -P so that the compiled, installed fastlb is imported."""
from __future__ import annotations

import httptools
from hypothesis import HealthCheck, given, settings, strategies as st

from fastlb.loop.core import framing_chunks, framing_parse_head, framing_skip_empty_lines
from fuzz.reference import Invalid, Incomplete, parse_one

SETTINGS = settings(max_examples=1500, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

TOKEN = st.text(alphabet="!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
                min_size=1, max_size=8).map(str.encode)
# bytes that matter to HTTP/1 framing, plus ordinary ones
PIECES = st.sampled_from([b"\r", b"\n", b"\r\n", b" ", b"\t", b":", b";", b",", b"\x00", b"\x7f",
                          b"\xff", b"#", b"a", b"0", b"5", b"=", b"\"", b"\\", b"GET", b"HTTP/1.1",
                          b"Host", b"Transfer-Encoding", b"chunked", b"Content-Length"])


def with_edits(messages):
    """Messages from ``messages`` with up to two pieces inserted or written over."""
    edit = st.tuples(st.integers(0, 200), PIECES, st.booleans())

    def apply(args):
        data, edits = args
        data = bytearray(data)
        for pos, piece, insert in edits:
            pos = pos % (len(data) + 1)
            if insert:
                data[pos:pos] = piece
            else:
                data[pos:pos + len(piece)] = piece
        return bytes(data)
    return st.tuples(messages, st.lists(edit, max_size=2)).map(apply)


def request_heads():
    """Mostly well-formed heads with one or two hostile edits."""
    field = st.tuples(TOKEN, st.binary(max_size=12)).map(lambda f: f[0] + b": " + f[1])
    head = st.tuples(
        st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"HEAD"]),
        st.sampled_from([b"/", b"/a", b"/a?b=c", b"*", b"http://x/y", b"/%41"]),
        st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/1.2"]),
        st.lists(field, max_size=4),
    ).map(lambda h: h[0] + b" " + h[1] + b" " + h[2] + b"\r\n" +
          b"".join(f + b"\r\n" for f in h[3]) + b"\r\n")
    return with_edits(head)


def llhttp_fields(raw: bytes):
    class Fields:
        def __init__(self):
            self.url, self.headers = b"", []

        def on_url(self, url):
            self.url += url

        def on_header(self, name, value):
            self.headers.append((name.lower(), value))
    fields = Fields()
    parser = httptools.HttpRequestParser(fields)
    try:
        parser.feed_data(raw)
    except httptools.HttpParserUpgrade:
        pass
    return parser.get_method(), fields


@SETTINGS
@given(request_heads())
def test_head_parser_agrees_with_the_reference_and_llhttp(raw):
    """Accepted by framing.pxd <=> accepted by the reference reading; and what it accepts,
    llhttp reads the same way (method, target, fields)."""
    skip = framing_skip_empty_lines(raw)
    end, fields = framing_parse_head(raw[skip:])
    try:
        reference, _ = parse_one(raw[skip:] + b"", 0)
        ref_ok = True
    except Invalid:
        ref_ok = False
    except Incomplete:
        ref_ok = None
    if end <= 0:
        assert ref_ok is not True or end == 0, (raw, fields)
        return
    # the reference also checks Host/CL/TE semantics, which the loop does after the parse
    if ref_ok is False:
        assert b"content-length" in raw.lower() or b"transfer-encoding" in raw.lower() or \
            b"host" in raw.lower(), (raw, fields)
    if ref_ok:
        assert fields["method"] == reference.method and fields["url"] == reference.target
        assert fields["headers"] == reference.headers
    try:
        method, seen = llhttp_fields(raw[skip:skip + end])
    except httptools.HttpParserError as exc:
        # llhttp knows a fixed list of methods and refuses some valid tokens and targets
        assert "method" in str(exc).lower() or "url" in str(exc).lower() or \
            "header" in str(exc).lower() or "version" in str(exc).lower(), (raw, exc)
        return
    assert method == fields["method"]
    assert seen.url == fields["url"]
    assert [(k, v.strip(b" \t")) for k, v in seen.headers] == fields["headers"]


def chunked_bodies():
    chunk = st.binary(min_size=1, max_size=20).map(lambda d: b"%x\r\n" % len(d) + d + b"\r\n")
    ext = st.sampled_from([b"", b";a", b";a=b", b";a=\"q\"", b" ;a", b"; a = b"])
    last = st.tuples(ext, st.sampled_from([b"", b"X-T: 1\r\n"])).map(
        lambda t: b"0" + t[0] + b"\r\n" + t[1] + b"\r\n")
    body = st.tuples(st.lists(chunk, max_size=4), last).map(lambda t: b"".join(t[0]) + t[1])
    return with_edits(body)


@SETTINGS
@given(chunked_bodies(), st.lists(st.integers(1, 200), max_size=6))
def test_chunk_parser_is_split_invariant_and_agrees_with_the_reference(body, cuts):
    """However the bytes arrive, the C parser ends at the same place with the same verdict;
    that verdict is the reference's; after an error it stays in error."""
    whole = framing_chunks(body, [])
    split = framing_chunks(body, cuts)
    assert split[1:] == whole[1:] and (whole[2] or split[0] == whole[0]), (body, cuts)
    head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    try:
        _, used = parse_one(head + body, 0)
        reference = ("done", used - len(head))
    except Invalid:
        reference = ("error", None)
    except Incomplete:
        reference = ("incomplete", None)
    taken, done, error = whole
    if reference[0] == "done":
        assert done and taken == reference[1], (body, whole, reference)
    elif reference[0] == "error":
        assert error, (body, whole)
    else:
        # the reference reads whole lines; the C parser refuses a bad byte at once
        assert not done, (body, whole)


def test_chunk_parser_stays_in_error():
    """Issue item 3: the bytes after a bad size line are never scanned again as a body."""
    bad = b"5\r\nhello\r\n6\n world\r\n0\r\n\r\n"
    assert framing_chunks(bad, [])[1:] == (False, True)
    for cut in range(1, len(bad)):
        assert framing_chunks(bad, [cut])[2], cut


def test_strict_chunk_size_lines():
    for line in (b"5 xyz", b"5 ", b"5\t", b"5;a\x00b", b"0x5", b"-5", b"", b" 5"):
        assert framing_chunks(line + b"\r\nhello\r\n0\r\n\r\n", [])[2], line
    for line in (b"5", b"5;a", b"5;a=b", b"5 ;a=b", b"5;a=\"q q\"", b"0000000000000005"):
        assert framing_chunks(line + b"\r\nhello\r\n0\r\n\r\n", []) == (
            len(line) + 14, True, False), line
    # as HAProxy 2.6: 13 hex digits (52 bits) wait for their data, 14 are refused
    assert framing_chunks(b"ffffffffffffff\r\n", [])[2]
    assert framing_chunks(b"fffffffffffff\r\nab", []) == (17, False, False)
