"""Conditional blocks, message directives, ``-cc`` and "did you mean", through the real
``fastlb -c`` / ``fastlb -cc`` and side by side with ``haproxy -c`` / ``haproxy -cc``."""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import textwrap

import pytest

from conftest import FASTLB, free_port, name_handler

HAPROXY = shutil.which("haproxy")
needs_haproxy = pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed")

ENV = {**{k: v for k, v in os.environ.items() if not k.startswith("FLB_")},
       "FLB_SET": "yes", "FLB_EMPTY": "", "FLB_WORDS": "a b"}

BASE = """
defaults
    mode tcp
    timeout client 1s
    timeout server 1s
    timeout connect 1s
frontend fe
    bind 127.0.0.1:1
    default_backend be
backend be
    server s1 127.0.0.1:2
"""


def cc(program: list[str], condition: str) -> tuple[int, list[str]]:
    result = subprocess.run(program + ["-cc", condition], capture_output=True, text=True,
                            env=ENV, timeout=30)
    return result.returncode, normalized(result.stderr)


def check(program: list[str], tmp_path, text: str, *flags) -> tuple[int, list[str]]:
    path = tmp_path / "c.cfg"
    path.write_text(textwrap.dedent(text))
    result = subprocess.run(program + ["-c", *flags, "-f", "c.cfg"], capture_output=True,
                            text=True, env=ENV, timeout=30, cwd=tmp_path)
    return result.returncode, normalized(result.stderr)


def normalized(stderr: str) -> list[str]:
    """Messages without pids, haproxy's start-up notices, nor the space HAProxy puts (or
    not) before the colon after "[file:line]"."""
    lines = []
    for line in stderr.splitlines():
        if re.match(r"\[NOTICE\] +\(\d+\) : (haproxy version is|path to executable)", line):
            continue
        line = re.sub(r"^(\[\w+\] +)\(\d+\)", r"\1(pid)", line)
        lines.append(re.sub(r"(\[[^\]\s]+:\d+\]) :", r"\1:", line))
    return lines


# -- -cc ------------------------------------------------------------------------------------------
SAME_AS_HAPROXY = [
    ("1", 0, None), ("0", 1, None), ("0x10", 0, None), ("010", 0, None), ("-1", 0, None),
    ("", 1, None), ('"1"', 0, None), ("'0'", 1, None),
    ("!0", 0, None), ("!!1", 0, None), ("! 1", 1, None),
    ("0 || 1 && 0", 1, None), ("( 1 )&&(0||1)", 0, None), ("1 || foo", 2, None),
    ("defined(FLB_SET)", 0, None), ("defined(FLB_EMPTY)", 0, None),
    ("defined(FLB_UNSET)", 1, None), ("defined()", 1, None), ("defined", 1, None),
    ('streq("$FLB_SET",yes)', 0, None), ('strneq("${FLB_SET}",yes)', 1, None),
    ('streq("$FLB_WORDS","a b")', 0, None), ("streq(a , a)", 1, None), ("streq(,)", 0, None),
    ("streq(a\\ b,a\\ b)", 0, None),
    ("feature(EPOLL)", 0, None), ("feature(LINUX_SPLICE)", 0, None), ("feature(FOO)", 1, None),
    ("feature(+EPOLL)", 1, None), ("feature(EPOL)", 1, None),
    ("version_atleast(2.6)", 0, None), ("version_atleast(2.5.99)", 0, None),
    ("version_atleast(2.6-dev1)", 0, None), ("version_before(2.7)", 0, None),
    ("version_before(2)", 1, None), ("version_atleast(garbage)", 0, None),
    ("version_before(garbage)", 1, None), ("version_atleast", 0, None),
    ("foo", 2, "unparsable conditional expression 'foo'"),
    ("bogus(x)", 2, "unparsable conditional expression 'bogus(x)'"),
    ("(1", 2, "expected ')' after conditional expression '(1'"),
    ("1 2", 2, "unexpected character '2' at the end of conditional expression '1 2'"),
    ("1x", 2, "unexpected character 'x' at the end of conditional expression '1x'"),
    ("1 # c", 2, "unexpected character '#' at the end of conditional expression '1 # c'"),
    ("1 &&", 2, "unparsable conditional expression '&&'"),
    ("&&1", 2, "unparsable conditional expression '&&1'"),
    ("defined(HOME) ||", 2, "unparsable conditional expression 'defined(HOME) ||'"),
    ("streq(a,b,c)", 2, "expected ')' before ',c)' in argument 1 of predicate 'streq' used in "
                        "conditional expression"),
    ("defined(HOME", 2, "expected ')' in argument 1 of predicate 'defined' used in conditional "
                        "expression"),
    ("strneq(a)", 2, "missing arguments (got 1/2), type 'string' expected in argument 1 of "
                     "predicate 'strneq' used in conditional expression"),
    ('"open', 2, None),
]


@pytest.mark.parametrize("condition, code, message", SAME_AS_HAPROXY)
def test_cc_exit_status_and_message_as_haproxy(condition, code, message):
    ours = cc(FASTLB, condition)
    assert ours[0] == code, ours
    if message:
        assert ours[1] == [f"[ALERT]    (pid) : config : Failed to evaluate condition: {message}"]
    elif code != 2:
        assert ours[1] == []
    if HAPROXY:
        assert cc([HAPROXY], condition) == ours


@pytest.mark.parametrize("condition, code", [
    ("feature(OPENSSL)", 1),             # no TLS in fastlb (haproxy here: 0)
    ("feature(LUA)", 1),
    ("version_before(2.6.1)", 0),        # fastlb follows "2.6", read as 2.6.0
    ("version_before(2.6)", 1),
    ("version_atleast(2.6.1)", 1),
    ("ssllib_name_startswith(OpenSSL)", 1),
])
def test_cc_answers_for_fastlb_itself(condition, code):
    assert cc(FASTLB, condition)[0] == code


def test_cc_openssl_version_is_an_error_without_ssl_library():
    code, lines = cc(FASTLB, "openssl_version_atleast(1.1.1)")
    assert code == 2 and "no SSL library" in lines[0]


def test_vv_feature_list_agrees_with_feature_predicate():
    out = subprocess.run(FASTLB + ["-vv"], capture_output=True, text=True, env=ENV,
                         timeout=30).stdout
    listed = re.search(r"^Feature list : (.*)$", out, re.M).group(1).split()
    assert "-OPENSSL" in listed and "+EPOLL" in listed and "+LINUX_SPLICE" in listed
    for word in listed:
        assert cc(FASTLB, f"feature({word[1:]})")[0] == (0 if word[0] == "+" else 1), word
    assert "configuration reference: HAProxy 2.6" in \
        subprocess.run(FASTLB + ["-v"], capture_output=True, text=True, timeout=30).stdout


# -- blocks in a configuration ---------------------------------------------------------------------
BLOCKS = """
global
.if defined(FLB_SET)
  .if streq("$FLB_SET",no)
    bogus-a
  .elif 1
    .warning "nested elif taken"
    .if 1
      .warning "inner taken"
    .endif
  .else
    bogus-b
  .endif
.elif 1
  bogus-c
.else
  bogus-d
.endif
.if defined(FLB_UNSET)
  .if foo(
  .else
  .endif
  .alert "never"
.elif 0
  bogus-e
.elif !defined(FLB_UNSET) && defined(FLB_SET)
  .warning "second elif taken"
.else
  bogus-f
.endif
.if 0
.else
  .notice "a notice"
  .warning "after the notice"
  .diag "a diag"
.endif
""" + BASE


@pytest.mark.parametrize("flags", [(), ("-dD",)])
def test_nested_blocks_take_the_branches_haproxy_takes(tmp_path, flags):
    code, lines = check(FASTLB, tmp_path, BLOCKS, *flags)
    expected = [
        "[WARNING]  (pid) : config : parsing [c.cfg:7]: 'nested elif taken'.",
        "[WARNING]  (pid) : config : parsing [c.cfg:9]: 'inner taken'.",
        "[WARNING]  (pid) : config : parsing [c.cfg:27]: 'second elif taken'.",
        "[NOTICE]   (pid) : config : parsing [c.cfg:33]: 'a notice'.",
        "[WARNING]  (pid) : config : parsing [c.cfg:34]: 'after the notice'.",
    ]
    if flags:
        expected.append("[DIAG]     (pid) : config : parsing [c.cfg:35]: 'a diag'.")
    assert (code, lines) == (0, expected)
    if HAPROXY:
        assert check([HAPROXY], tmp_path, BLOCKS, *flags) == (code, lines)


def test_blocks_choose_what_the_running_fastlb_serves(tmp_path, fastlb, backends):
    """The branch taken is the configuration served: FLB_SET picks backend 'b'."""
    a, b = backends(name_handler, name="a"), backends(name_handler, name="b")
    port = free_port()
    config = f"""
        defaults
            mode tcp
            timeout client 5s
            timeout server 5s
            timeout connect 5s
        frontend fe
            bind 127.0.0.1:{port}
        .if defined(FLB_SET) && !defined(FLB_UNSET)
            default_backend be_b
        .else
            default_backend be_a
        .endif
        backend be_a
            server a 127.0.0.1:{a.port}
        backend be_b
            server b 127.0.0.1:{b.port}
    """
    fastlb(config, ports=[port], env=ENV)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        assert sock.recv(2) == b"b\n"


ERRORS = [
    ("global\n.if 1\n  maxconn 1\n" + BASE, ["parsing [c.cfg:14]: non-terminated '.if' block."]),
    ("global\n.else\n.endif\n", ["parsing [c.cfg:2]: lone '.else' with no matching '.if'."]),
    ("global\n.endif\n.elif 1\n", ["parsing [c.cfg:2]: lone '.endif' with no matching '.if'."]),
    ("global\n.elif 1\n", ["parsing [c.cfg:2]: lone '.elif' with no matching '.if'."]),
    ("global\n.if 1\n.else\n.else\n.endif\n",
     ["parsing [c.cfg:4]: '.else' after '.else' is not permitted."]),
    ("global\n.if 0\n.else\n.elif 1\n.endif\n",
     ["parsing [c.cfg:4]: '.elif' after '.else' is not permitted."]),
    ("global\n.if 1\n.else x\n.endif\n",
     ["parsing [c.cfg:3]: Unexpected argument 'x' for '.else'.",
      "parsing [c.cfg:3]: non-terminated '.if' block."]),
    ("global\n.alert \"stop here\"\n  bogus\n", ["parsing [c.cfg:2]: 'stop here'."]),
    ("global\n.warning two words\n" + BASE,
     ["parsing [c.cfg:2]: Unexpected argument 'words' for '.warning'. Use quotes if the "
      "message should contain spaces."]),
    ("global\n.if streq(a,b) || feature(\n.endif\n",
     ["parsing [c.cfg:2]: expected ')' in argument 1 of predicate 'feature' used in "
      "conditional expression in '.if' at position 23:",
      "  .if streq(a,b) || feature(",
      "                            ^"]),
    ("global\n.if 0\n.elif 1 && bogus(1)\n.endif\n",
     ["parsing [c.cfg:3]: unparsable conditional expression 'bogus(1)' in '.elif' at "
      "position 6:",
      "  .elif 1 && bogus(1)",
      "             ^"]),
    ("global\n.if defined(FLB_SET) " + "&& 1 " * 20 + "junk\n.endif\n",
     ["parsing [c.cfg:2]: unexpected character 'j' at the end of conditional expression "
      "'defined(FLB_SET) " + "&& 1 " * 20 + "junk' in '.if' at position 118:",
      "  .if ...&& 1 && 1 && 1 && 1 && 1 && 1 && 1 junk...",
      "  " + " " * 42 + "^"]),
    ("global\n" + ".if 1\n" * 100, ["parsing [c.cfg:101]: too many nested '.if', max is 100."]),
    ("global\n  bogus\n.foo\n  bogus2\n",
     ["parsing [c.cfg:2]: unknown keyword 'bogus' in 'global' section",
      "parsing [c.cfg:3]: unknown directive '.foo'."]),
]


@pytest.mark.parametrize("text, alerts", ERRORS)
def test_block_errors_are_haproxys(tmp_path, text, alerts):
    """Each error names file and line as HAProxy does, and parsing stops where HAProxy's
    stops (nothing is reported after the line it gave up at)."""
    code, lines = check(FASTLB, tmp_path, text)
    assert code == 1
    body = [re.sub(r"^\[ALERT\] +\(pid\) : config : ", "", line) for line in lines]
    assert body[:len(alerts)] == alerts, lines
    assert body[len(alerts)] == "Error(s) found in configuration file : c.cfg"
    if HAPROXY:
        assert check([HAPROXY], tmp_path, text) == (code, lines)


# -- did you mean -----------------------------------------------------------------------------------
MISSPELT = """
global
    maxcon 10
    nbthraed 2
    stats-socket /tmp/x
defaults
    mdoe tcp
    timeot client 1s
    retires 3
    xyzzyplugh
frontend f
    bnd 127.0.0.1:1
    defualt_backend b
    bind 127.0.0.1:2 acept-proxy
    bind 127.0.0.1:3 v4v66
    bind 127.0.0.1:4 zzzzzzzzzz
backend b
    sever s1 127.0.0.1:1
    server s2 127.0.0.1:2 wieght 3
    server s3 127.0.0.1:2 chek
    server s4 127.0.0.1:2 zzzzzzzzzzzz
    balanse roundrobin
    option httplgo
    option zzzzzzzzzz
listen l
    bidn 127.0.0.1:5
    http-requets deny
"""


def test_did_you_mean_as_haproxy(tmp_path):
    code, lines = check(FASTLB, tmp_path, MISSPELT)
    assert code == 1
    for expected in (
            "parsing [c.cfg:3]: unknown keyword 'maxcon' in 'global' section; did you mean "
            "'maxconn' maybe ?",
            "parsing [c.cfg:7]: unknown keyword 'mdoe' in 'defaults' section; did you mean "
            "'mode' maybe ?",
            "parsing [c.cfg:10]: unknown keyword 'xyzzyplugh' in 'defaults' section",
            "parsing [c.cfg:14]: 'bind 127.0.0.1:2' in section 'frontend': unknown keyword "
            "'acept-proxy'; did you mean 'accept-proxy' maybe ?",
            "parsing [c.cfg:16]: 'bind 127.0.0.1:4' in section 'frontend': unknown keyword "
            "'zzzzzzzzzz'.",
            "[c.cfg:19]: 'server b/s2' : unknown keyword 'wieght'; did you mean 'weight' maybe ?",
            "[c.cfg:21]: 'server b/s4' : unknown keyword 'zzzzzzzzzzzz'.",
            "parsing [c.cfg:23]: unknown option 'httplgo'; did you mean 'httplog' maybe ?",
            "parsing [c.cfg:27]: unknown keyword 'http-requets' in 'listen' section; did you "
            "mean 'http-request' maybe ?"):
        assert f"[ALERT]    (pid) : config : {expected}" in lines, (expected, lines)
    if HAPROXY:
        assert check([HAPROXY], tmp_path, MISSPELT) == (code, lines)
