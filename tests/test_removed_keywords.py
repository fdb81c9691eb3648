"""Keywords HAProxy 2.6 itself refuses (removed in 1.6-2.5) or only warns about
(deprecated): fastlb gives the same verdict in the same words, so that a config haproxy
refuses is never taken, and never reported as something fastlb might support one day.
Compared with haproxy -c on the same file where it is installed; filters, which haproxy
runs and fastlb refuses by name, are checked on fastlb alone."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from conftest import FASTLB

CONFIG = """\
global
    nbthread 2
defaults
    mode http
    timeout client 1s
    timeout server 1s
    timeout connect 1s
frontend f
    bind 127.0.0.1:18443
    {line}
    default_backend b
backend b
    server s 127.0.0.1:1 {server}
"""

LINES = [
    # removed: refused with haproxy's words
    ("reqadd X-a:\\ b", 1, "The 'reqadd' directive is not supported anymore since HAProxy 2.1. "
                           "Use 'http-request add-header' instead."),
    ("rspdel ^X", 1, "The 'rspdel' directive is not supported anymore since HAProxy 2.1. Use "
                     "'http-response del-header' ."),
    ("reqdeny ^X", 1, "The 'reqdeny' not supported anymore since HAProxy 2.1. Use "
                      "'http-request deny' instead."),
    ("cliexp a b", 1, "The 'cliexp' directive is not supported anymore since HAProxy 2.1. Use "
                      "'http-request replace-path', 'http-request replace-uri' or 'http-request "
                      "replace-header' instead."),
    ("block if TRUE", 1, "The 'block' directive is not supported anymore since HAProxy 2.1. Use "
                         "'http-request deny' which uses the exact same syntax."),
    ("redisp", 1, "keyword 'redisp' directive is not supported anymore since HAProxy 2.1. Use "
                  "'option redispatch'."),
    ("appsession x len 5 timeout 1s", 1, "'appsession' is not supported anymore since HAProxy 1.6."),
    ("grace 10s", 1, "the 'grace' keyword is not supported any more since HAProxy version 2.5."),
    ("monitor-net 10.0.0.0/8", 1, "'monitor-net' doesn't exist anymore. Please use 'http-request "
                                  "return status 200 if { src 10.0.0.0/8 }' instead."),
    ("mode health", 1, "'mode health' doesn't exist anymore. Please use 'http-request return "
                       "status 200' instead."),
    ("option forceclose", 1, "option 'forceclose' is not supported any more since HAProxy 2.0"),
    ("option http-tunnel", 1, "option 'http-tunnel' is not supported any more since HAProxy 2.1"),
    ("no option http_proxy", 1, "option 'http_proxy' is not supported any more since HAProxy 2.5"),
    ("stats bind-process 1", 1, "unknown stats parameter 'bind-process', expects 'admin', 'uri', "
                                "'realm', 'auth', 'scope', 'enable', 'hide-version', "
                                "'show-node', 'show-desc' or 'show-legends'."),
    ("unique-id x", 1, "unknown keyword 'unique-id' in 'frontend' section; did you mean "
                       "'unique-id-header' maybe ?"),
    # deprecated: warned about, the set checked as haproxy checks it (nbproc is gone)
    ("bind-process all", 0, "'bind-process' has no effect, is deprecated, and will be removed in "
                            "version 2.7."),
    ("bind-process odd 1", 0, "'bind-process' has no effect"),
    ("bind-process 2", 1, "bind-process : '2' is not a valid number/range. It supports numbers "
                          "from 1 to 1."),
    ("bind-process x", 1, "bind-process : 'x' is not a valid number/range."),
    ("bind 127.0.0.1:18443 process 1", 0, "'bind 127.0.0.1:18443' in section 'frontend' : 'process 1' on "
                                      "'bind' lines is deprecated and will be removed in 2.7."),
    ("bind 127.0.0.1:18443 process 2", 1, "'bind 127.0.0.1:18443' in section 'frontend' : 'process' : "
                                      "'2' is not a valid number/range. It supports numbers from "
                                      "1 to 1."),
    # the stats socket's settings on a frontend's bind line: checked, no effect there
    ("bind 127.0.0.1:18443 level admin expose-fd listeners severity-output string", 0, None),
    ("bind 127.0.0.1:18443 level root", 1, "'bind 127.0.0.1:18443' in section 'frontend' : "
                                           "'level' only supports 'user', 'operator', and "
                                           "'admin' (got 'root')"),
    ("bind 127.0.0.1:18443 expose-fd", 1, "'expose-fd' : missing fd type"),
    ("bind 127.0.0.1:18443 severity-output loud", 1, "'severity-output' only supports 'none', "
                                                     "'number', and 'string' (got 'loud')"),
    # tcp-ut on bind lines
    ("bind 127.0.0.1:18443 tcp-ut 5s", 0, None),
    ("bind 127.0.0.1:18443 tcp-ut 100us", 0, None),
    ("bind 127.0.0.1:18443 tcp-ut", 1, "'bind 127.0.0.1:18443' in section 'frontend' : 'tcp-ut' : missing "
                                   "TCP User Timeout value"),
    ("bind 127.0.0.1:18443 tcp-ut 5x", 1, "'bind 127.0.0.1:18443' in section 'frontend' : 'tcp-ut' : "
                                      "expects a positive delay in milliseconds"),
    ("bind 127.0.0.1:18443 tcp-ut 3000000000", 1, "timer overflow in argument '3000000000' to "
                                              "'tcp-ut' (maximum value is 2147483647 ms or "
                                              "~24.8 days)"),
]


def verdict(program: list, path) -> tuple[int, str]:
    run = subprocess.run([*program, "-c", "-f", str(path)], capture_output=True, text=True,
                         timeout=30)
    return run.returncode, run.stderr


def programs() -> list:
    return [FASTLB] + ([["haproxy"]] if shutil.which("haproxy") else [])


@pytest.mark.parametrize("line, code, message", LINES)
def test_removed_and_deprecated_keywords_as_haproxy(tmp_path, line, code, message):
    path = tmp_path / "haproxy.cfg"
    path.write_text(CONFIG.format(line=line, server=""))
    for program in programs():
        got, err = verdict(program, path)
        assert got == code, (program, err)
        if message:
            assert message in err and "haproxy.cfg:10]" in err, (program, err)
        else:
            assert not re.search(r"\[(WARNING|ALERT)\]", err), (program, err)


@pytest.mark.parametrize("option, code, message", [
    ("tcp-ut 1500", 0, None),
    ("tcp-ut", 1, "'server b/s' : 'tcp-ut' : missing TCP User Timeout value."),
    ("tcp-ut 1y", 1, "'server b/s' : 'tcp-ut' : expects a positive delay in milliseconds."),
])
def test_server_tcp_ut_is_checked_as_haproxy(tmp_path, option, code, message):
    path = tmp_path / "haproxy.cfg"
    path.write_text(CONFIG.format(line="", server=option))
    for program in programs():
        got, err = verdict(program, path)
        assert got == code, (program, err)
        if message:
            assert message in err and "haproxy.cfg:13]" in err, (program, err)


@pytest.mark.parametrize("line, message", [
    ("filter compression", "'filter compression' needs compression, which fastlb does not "
                           "support yet."),
    ("filter trace", "'filter trace' needs the trace filter (a debugging aid), which fastlb"),
    ("filter spoe", "'filter spoe' needs SPOE"),
    ("filter bwlim-in x", "'filter' : unknown keyword 'bwlim-in'."),    # HAProxy 2.7's
])
def test_filters_name_the_subsystem_they_need(tmp_path, line, message):
    """haproxy runs these (but bwlim-in, which is 2.7's); fastlb refuses each by name."""
    path = tmp_path / "haproxy.cfg"
    path.write_text(CONFIG.format(line=line, server=""))
    got, err = verdict(FASTLB, path)
    assert got == 1 and message in err and "haproxy.cfg:10]" in err, err
