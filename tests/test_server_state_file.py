"""Server state files: the servers start from the states a file written by `show servers
state` holds (server-state-file, server-state-base, load-server-state-from-file
global|local, server-state-file-name), as HAProxy 2.6 applies them.  The file is made by
haproxy itself after stats-socket changes; haproxy and fastlb then start from it and their
`show servers state` and warnings are compared."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from conftest import FASTLB, free_port, listening_sockets, stats_cli, wait_until

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")

CONFIG = """
global
    stats socket {sock} level admin
    {state_file}
    {state_base}
defaults
    mode http
    timeout client 1s
    timeout server 1s
    timeout connect 1s
    {load}
backend b
    {name}
    server s1 127.0.0.1:{p1} weight 10
    server s2 127.0.0.1:{p2}
    server s3 127.0.0.1:{p3} disabled
    server s4 127.0.0.1:{p4} {s4}
    server s5 127.0.0.1:{p5} weight 5
frontend f
    bind 127.0.0.1:{port}
    default_backend b
"""
CHANGES = ("set server b/s1 state maint", "set server b/s2 state drain",
           "set server b/s3 state ready", "set server b/s4 weight 3")
FIELDS = 9          # be_id .. srv_iweight: what a state file gives back


def config(tmp_path, program, port, **values) -> str:
    base = dict(sock=tmp_path / f"{program}.sock", state_file="", state_base="", load="",
                name="", s4="", port=port, **{f"p{i}": 18090 + i for i in range(1, 6)})
    base.update(values)
    return CONFIG.format(**base)


def start(program, tmp_path, text, port):
    cfg = tmp_path / f"{program}.cfg"
    cfg.write_text(text)
    cmd = ["haproxy", "-db", "-f", str(cfg)] if program == "haproxy" else \
        FASTLB + ["-d", "-n", "1", "-f", str(cfg)]
    err = tmp_path / f"{program}.err"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(err, "wb"))
    wait_until(lambda: listening_sockets(port) > 0 or proc.poll() is not None,
               message=f"{program} listening")
    return proc, err


def states(program, tmp_path) -> list:
    out = stats_cli(tmp_path / f"{program}.sock", "show servers state")
    return [line.split()[:FIELDS] for line in out.splitlines()[2:] if line.strip()]


def warnings(err) -> list:
    out = []
    for line in err.read_text().splitlines():
        found = re.match(r"\[WARNING\] +\(\d+\) : (?:config : )?(.*)", line)
        if found and re.search(r"state|can't find server", found[1]):
            out.append(found[1])
    return out


def make_state_file(tmp_path, path) -> None:
    """haproxy's own file: its show servers state after the stats socket's changes."""
    port = free_port()
    proc, _ = start("haproxy", tmp_path, config(tmp_path, "haproxy", port), port)
    try:
        for command in CHANGES:
            stats_cli(tmp_path / "haproxy.sock", command)
        path.write_text(stats_cli(tmp_path / "haproxy.sock", "show servers state"))
    finally:
        proc.terminate()
        proc.wait(5)


def both(tmp_path, **values) -> dict:
    out = {}
    for program in ("haproxy", "fastlb"):
        port = free_port()
        proc, err = start(program, tmp_path, config(tmp_path, program, port, **values), port)
        try:
            assert proc.poll() is None, err.read_text()
            out[program] = (states(program, tmp_path), warnings(err))
        finally:
            proc.terminate()
            proc.wait(5)
    return out


def test_a_global_state_file_gives_the_servers_haproxys_states(tmp_path):
    state = tmp_path / "state"
    make_state_file(tmp_path, state)
    out = both(tmp_path, state_file=f"server-state-file {state}",
               load="load-server-state-from-file global")
    assert out["fastlb"] == out["haproxy"]
    rows = {row[3]: row for row in out["fastlb"][0]}
    assert rows["s1"][5:7] == ["0", "1"]          # stopped, forced maintenance
    assert rows["s2"][6] == "8"                   # drain
    assert rows["s3"][5:7] == ["2", "4"]          # disabled in the file, made ready
    assert rows["s4"][7:9] == ["3", "1"]          # the socket's weight


def test_a_configuration_change_wins_over_the_file(tmp_path):
    state = tmp_path / "state"
    make_state_file(tmp_path, state)
    out = both(tmp_path, state_file=f"server-state-file {state}",
               load="load-server-state-from-file global", s4="weight 7")
    assert out["fastlb"] == out["haproxy"]
    assert {row[3]: row for row in out["fastlb"][0]}["s4"][7:9] == ["7", "7"]


def test_local_files_the_base_directory_and_haproxys_warnings(tmp_path):
    state = tmp_path / "states" / "b"
    state.parent.mkdir()
    make_state_file(tmp_path, state)
    out = both(tmp_path, state_base=f"server-state-base {state.parent}",
               load="load-server-state-from-file local")
    assert out["fastlb"] == out["haproxy"]
    assert {row[3]: row for row in out["fastlb"][0]}["s1"][6] == "1"
    # a server the file knows but the configuration no longer has, and a missing file
    state.write_text(state.read_text().replace(" s5 ", " s9 "))
    out = both(tmp_path, state_base=f"server-state-base {state.parent}",
               load="load-server-state-from-file local")
    assert out["fastlb"] == out["haproxy"]
    assert "Proxy 'b': can't find server 's9' in backend 'b'" in out["fastlb"][1]
    out = both(tmp_path, state_base=f"server-state-base {state.parent}",
               load="load-server-state-from-file local", name="server-state-file-name nope")
    assert out["fastlb"] == out["haproxy"]
    assert out["fastlb"][1][0].startswith("Proxy 'b': Can't open server state file ")


def test_bad_files_are_warned_about_as_haproxy(tmp_path):
    state = tmp_path / "state"
    make_state_file(tmp_path, state)
    good = state.read_text()
    for bad in (good.replace("1\n", "2\n", 1),                       # unknown version
                good.replace(" 127.0.0.1 0 1 ", " 127.0.0.1 7 1 ", 1),   # bad op state
                good + "2 b 9\n"):                                      # a short line
        state.write_text(bad)
        out = both(tmp_path, state_file=f"server-state-file {state}",
                   load="load-server-state-from-file global")
        assert out["fastlb"] == out["haproxy"], bad
        assert any("version" in w or "corrupted" in w or "failed" in w
                   for w in out["fastlb"][1]), out["fastlb"][1]
    out = both(tmp_path, state_file=f"server-state-file {tmp_path / 'missing'}",
               load="load-server-state-from-file global")
    assert out["fastlb"] == out["haproxy"]
    assert out["fastlb"][1] == [f"config: Can't open global server state file "
                                f"'{tmp_path / 'missing'}': No such file or directory"]


@pytest.mark.parametrize("line, message", [
    ("load-server-state-from-file everything", "'load-server-state-from-file' expects "
     "'global', 'local' or 'none'. Got 'everything'"),
    ("server-state-file-name a b", "'server-state-file-name' cannot handle unexpected "
     "argument 'b'."),
])
def test_the_keywords_are_checked_as_haproxy(tmp_path, line, message):
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(f"defaults\n    mode http\nbackend b\n    {line}\n    server s 127.0.0.1:1\n")
    for program in (FASTLB, ["haproxy"]):
        run = subprocess.run([*program, "-c", "-f", str(cfg)], capture_output=True, text=True,
                             timeout=30)
        if message:
            assert run.returncode == 1 and message in run.stderr, (program, run.stderr)
        else:
            assert run.returncode in (0, 2), (program, run.stderr)
