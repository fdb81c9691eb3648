"""Map files changed at run time (stats socket ``show/get/add/set/del/clear map``):
every worker sees a change, whichever process made it; the CLI's answers are compared
with haproxy 2.6's for the same map file."""
from __future__ import annotations

import re
import shutil
import socket
import subprocess
import textwrap
import time

import pytest

from conftest import HTTP_DEFAULTS, free_port, wait_until

MAP = "foo bar\n# a comment\n\n/api api-v1\nbaz qux quux\n/static files\n"


def cli(sock, line: str) -> str:
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(5)
        conn.connect(str(sock))
        conn.sendall(line.encode() + b"\n")
        data = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                return data.decode()
            data += chunk


def config(sock, port: int, mapfile, level="admin") -> str:
    return f"""
    global
        stats socket {sock} level {level}
    {HTTP_DEFAULTS}
    frontend fe
        bind 127.0.0.1:{port}
        http-request return status 200 content-type text/plain lf-string "%[path,map({mapfile},none)]|%[path,map_beg({mapfile},none)]|%pid"
    """


def get(port: int, path: str) -> tuple[str, str, str]:
    """One request on a new connection: (exact map value, prefix map value, worker pid)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    body = data.split(b"\r\n\r\n", 1)[1].decode()
    exact, prefix, pid = body.split("|")
    return exact, prefix, pid


def every_worker(port: int, path: str, workers: int = 2, tries: int = 200) -> set:
    """What the workers answer for ``path``, asked until each of them has answered."""
    answers, pids = set(), set()
    for _ in range(tries):
        exact, prefix, pid = get(port, path)
        answers.add((exact, prefix))
        pids.add(pid)
        if len(pids) == workers and len(answers) > 0 and _ > 20:
            break
    assert len(pids) == workers, f"only workers {pids} answered"
    return answers


def test_changes_through_the_socket_reach_every_worker(fastlb, tmp_path):
    sock, port = tmp_path / "stats.sock", free_port()
    mapfile = tmp_path / "hosts.map"
    mapfile.write_text(MAP)
    fastlb(config(sock, port, mapfile), workers=2, ports=[port])
    assert every_worker(port, "/foo") == {("none", "none")}
    assert every_worker(port, "/api/x") == {("none", "api-v1")}
    assert cli(sock, f"add map {mapfile} /foo added") == "\n"
    assert every_worker(port, "/foo") == {("added", "added")}
    assert cli(sock, f"set map {mapfile} /api v2") == "\n"
    assert every_worker(port, "/api/x") == {("none", "v2")}
    assert every_worker(port, "/api") == {("v2", "v2")}
    assert cli(sock, f"del map {mapfile} /api") == "\n"
    assert every_worker(port, "/api/x") == {("none", "none")}
    # by reference, as show map names the entries
    listing = cli(sock, f"show map {mapfile}")
    ref = next(line.split()[0] for line in listing.splitlines() if " /static " in line)
    assert cli(sock, f"set map {mapfile} #{ref} assets") == "\n"
    assert every_worker(port, "/static/a.css") == {("none", "assets")}
    assert cli(sock, f"del map #0 #{ref}") == "\n"
    assert every_worker(port, "/static/a.css") == {("none", "none")}
    assert cli(sock, "clear map #0") == "\n"
    assert cli(sock, f"show map {mapfile}") == "\n"
    assert every_worker(port, "/foo") == {("none", "none")}


def test_a_restarted_worker_sees_the_changes(fastlb, tmp_path):
    import os
    import signal
    sock, port = tmp_path / "stats.sock", free_port()
    mapfile = tmp_path / "hosts.map"
    mapfile.write_text(MAP)
    lb = fastlb(config(sock, port, mapfile), workers=2, ports=[port])
    assert cli(sock, f"add map {mapfile} /new one") == "\n"
    assert cli(sock, f"del map {mapfile} /static") == "\n"
    before = set(lb.worker_pids())
    os.kill(sorted(before)[0], signal.SIGKILL)
    wait_until(lambda: len(set(lb.worker_pids()) - before) == 1 and
               len(lb.worker_pids()) == 2, timeout=10, message="a new worker")
    time.sleep(0.5)
    assert every_worker(port, "/new") == {("one", "one")}
    assert every_worker(port, "/static/x") == {("none", "none")}


def test_refusals_and_levels(fastlb, tmp_path):
    sock, port = tmp_path / "stats.sock", free_port()
    mapfile = tmp_path / "hosts.map"
    mapfile.write_text(MAP)
    fastlb(config(sock, port, mapfile, level="user"), ports=[port])
    assert cli(sock, f"add map {mapfile} a b") == "Permission denied\n\n"
    assert cli(sock, f"show map {mapfile}").count("\n") == 5
    assert cli(sock, f"get map {mapfile} /api/v") == (
        'type=str, case=sensitive, found=no\n'
        'type=beg, case=sensitive, found=yes, idx=tree, key="/api", value="api-v1", '
        'type="str"\n\n')


CHANGES = ["show map", "show map {map}", "show map #0", "show map #7", "show map /nope",
           "get map {map} /api/x", "get map {map} foo", "get map #0 nope", "get map {map}",
           "add map {map} /foo first", "add map {map} /foo second", "get map {map} /foo",
           "del map {map} #0x0", "add map {map} one",
           "show map {map}", "set map {map} /foo third", "set map {map} nope x",
           "set map {map} /foo", "show map {map}", "get map {map} /foo/bar",
           "del map {map} nope", "del map {map}", "del map {map} /foo", "show map {map}",
           "set map {map} #0x1 x", "del map {map} #0x1", "clear map", "clear map /nope",
           "clear map {map}", "show map {map}", "show map"]


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")
def test_cli_answers_as_haproxy(fastlb, tmp_path):
    mapfile = tmp_path / "hosts.map"
    mapfile.write_text(MAP)
    answers = {}
    hsock, hport = tmp_path / "haproxy.sock", free_port()
    hcfg = tmp_path / "h.cfg"
    hcfg.write_text(textwrap.dedent(config(hsock, hport, mapfile)))
    proc = subprocess.Popen(["haproxy", "-db", "-f", str(hcfg)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: hsock.exists(), timeout=10, message="haproxy's stats socket")
        answers["haproxy"] = [cli(hsock, c.format(map=mapfile)) for c in CHANGES]
    finally:
        proc.kill()
        proc.wait()
    sock, port = tmp_path / "stats.sock", free_port()
    fastlb(config(sock, port, mapfile), workers=2, ports=[port])
    answers["fastlb"] = [cli(sock, c.format(map=mapfile)) for c in CHANGES]

    def normal(text):
        # the entries' addresses differ; the config lines that use a map are not known
        # to fastlb's compiled expressions
        text = re.sub(r"0x[0-9a-f]+", "0xADDR", text)
        return re.sub(r"used by map.*?\. curr_ver", "used by map. curr_ver", text)
    for command, theirs, ours in zip(CHANGES, answers["haproxy"], answers["fastlb"]):
        assert normal(ours) == normal(theirs), command


def action_config(sock, port: int, mapfile) -> str:
    return f"""
    global
        stats socket {sock} level admin
    {HTTP_DEFAULTS}
    frontend fe
        bind 127.0.0.1:{port}
        http-request set-map({mapfile}) %[path] v%[req.hdr(x)] if {{ req.hdr(x) -m found }}
        http-request del-map({mapfile}) %[req.hdr(del)] if {{ req.hdr(del) -m found }}
        http-response set-map({mapfile}) /from-response %[status] if {{ path /resp }}
        http-request return status 200 content-type text/plain lf-string "%[path,map({mapfile},none)]|%[path,map_beg({mapfile},none)]|%pid" if !{{ path /resp }}
        default_backend be
    backend be
        http-request return status 203 content-type text/plain lf-string "x|x|%pid"
    """


ACTION_REQUESTS = [("/p1", {"x": "1"}), ("/p1", {}), ("/p1", {}), ("/p1", {"x": "2"}),
                   ("/p1", {}), ("/p1", {}), ("/api", {"x": "3"}), ("/api/x", {}),
                   ("/api/x", {"del": "/api"}), ("/api/x", {}), ("/api/x", {}),
                   ("/resp", {}), ("/from-response", {}), ("/from-response", {}),
                   ("/p1", {"del": "/p1"}), ("/p1", {}), ("/p1", {})]


def get_with(port: int, path: str, headers: dict) -> tuple[str, str, str]:
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n"
                     .encode())
        data = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    return tuple(data.split(b"\r\n\r\n", 1)[1].decode().split("|"))


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")
def test_set_map_and_del_map_actions_as_haproxy(fastlb, tmp_path):
    """What one request's action changes, the next request sees whichever worker it
    reaches; the answers and the final map are haproxy's."""
    results = {}
    hsock, hport = tmp_path / "haproxy.sock", free_port()
    mapfile = tmp_path / "hosts.map"
    mapfile.write_text(MAP)
    hcfg = tmp_path / "h.cfg"
    hcfg.write_text(textwrap.dedent(action_config(hsock, hport, mapfile)))
    proc = subprocess.Popen(["haproxy", "-db", "-f", str(hcfg)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: hsock.exists(), timeout=10, message="haproxy's stats socket")
        results["haproxy"] = ([get_with(hport, p, h)[:2] for p, h in ACTION_REQUESTS],
                              cli(hsock, f"show map {mapfile}"))
    finally:
        proc.kill()
        proc.wait()
    sock, port = tmp_path / "stats.sock", free_port()
    fastlb(action_config(sock, port, mapfile), workers=2, ports=[port])
    answers, pids = [], set()
    for p, h in ACTION_REQUESTS:
        exact, prefix, pid = get_with(port, p, h)
        answers.append((exact, prefix))
        pids.add(pid)
    assert len(pids) == 2, "both workers should have answered"
    results["fastlb"] = (answers, cli(sock, f"show map {mapfile}"))
    assert results["fastlb"][0] == results["haproxy"][0]
    assert re.sub(r"0x[0-9a-f]+", "0x", results["fastlb"][1]) == \
        re.sub(r"0x[0-9a-f]+", "0x", results["haproxy"][1])


def acl_config(sock, port: int, patterns, level="admin") -> str:
    return f"""
    global
        stats socket {sock} level {level}
    {HTTP_DEFAULTS}
    frontend fe
        bind 127.0.0.1:{port}
        acl listed path_beg -f {patterns} /inline
        acl inside path_sub -f {patterns}
        http-request set-header x-uses-both-again 1 if listed || inside
        http-request add-acl({patterns}) %[req.hdr(add)] if {{ req.hdr(add) -m found }}
        http-request del-acl({patterns}) %[req.hdr(del)] if {{ req.hdr(del) -m found }}
        http-request return status 200 content-type text/plain lf-string "listed|-|%pid" if listed
        http-request return status 200 content-type text/plain lf-string "inside|-|%pid" if inside
        http-request return status 200 content-type text/plain lf-string "none|-|%pid"
    """


ACL_STEPS = [("/api/x", {}), ("/x/api", {}), ("/new/1", {}), ("/new/1", {"add": "/new"}),
             ("/new/2", {}), ("/x/new", {}), ("/y", {"add": "/new"}),
             "show acl {acl}", "get acl {acl} /new/x", "get acl {acl} /x/new",
             "get acl {acl} /nothing", "del acl {acl} /api", ("/api/x", {}), ("/x/api", {}),
             "add acl {acl} /cli", ("/cli/x", {}), ("/inline", {}), "del acl {acl} /nope",
             "del acl {acl}", "add acl {acl}", "show acl /nope", "clear acl",
             ("/y", {"del": "/new"}), ("/new/3", {}), "show acl {acl}",
             "del acl {acl} #0x1", "clear acl {acl}", ("/cli/x", {}), ("/static/y", {}),
             ("/inline", {}), "show acl {acl}", "prepare acl {acl}",
             "add acl @1 {acl} /v1", "add acl @1 {acl} /v1b", "show acl @1 {acl}",
             ("/v1/x", {}), "commit acl @2 {acl}", "commit acl @1 {acl}", ("/v1/x", {}),
             ("/v1b", {}), "show acl {acl}", "prepare acl #9", "clear acl @1 {acl}",
             ("/v1/x", {}), ("/inline", {})]


def run_acl_steps(sock, port, patterns):
    out, pids = [], set()
    for step in ACL_STEPS:
        if isinstance(step, str):
            out.append(cli(sock, step.format(acl=patterns)))
        else:
            answer, _, pid = get_with(port, *step)
            out.append(answer)
            pids.add(pid)
    return out, pids


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")
def test_acl_files_changed_at_run_time_as_haproxy(fastlb, tmp_path):
    """add/del/clear acl and the add-acl / del-acl actions: haproxy's answers, and the
    requests see the change whichever fastlb worker they reach."""
    patterns = tmp_path / "paths.lst"
    patterns.write_text("/api\n# comment\n/static\n")
    hsock, hport = tmp_path / "haproxy.sock", free_port()
    hcfg = tmp_path / "h.cfg"
    hcfg.write_text(textwrap.dedent(acl_config(hsock, hport, patterns)))
    proc = subprocess.Popen(["haproxy", "-db", "-f", str(hcfg)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: hsock.exists(), timeout=10, message="haproxy's stats socket")
        theirs, _ = run_acl_steps(hsock, hport, patterns)
    finally:
        proc.kill()
        proc.wait()
    sock, port = tmp_path / "stats.sock", free_port()
    fastlb(acl_config(sock, port, patterns), workers=2, ports=[port])
    ours, pids = run_acl_steps(sock, port, patterns)
    assert len(pids) == 2, "both workers should have answered"
    for step, their, our in zip(ACL_STEPS, theirs, ours):
        assert re.sub(r"0x[0-9a-f]+", "0x", our) == re.sub(r"0x[0-9a-f]+", "0x", their), step


def test_show_acl_lists_the_files(fastlb, tmp_path):
    patterns = tmp_path / "paths.lst"
    patterns.write_text("/api\n/static\n")
    sock, port = tmp_path / "stats.sock", free_port()
    fastlb(acl_config(sock, port, patterns, level="user"), ports=[port])
    assert cli(sock, "show acl") == (
        "# id (file) description\n"
        f"0 ({patterns}) pattern loaded from file '{patterns}' used by acl. curr_ver=0 "
        "next_ver=0 entry_cnt=4\n\n")
    assert cli(sock, f"add acl {patterns} /x") == "Permission denied\n\n"
    assert cli(sock, f"del acl #0 /api") == "Permission denied\n\n"


VERSION_STEPS = ["prepare map {map}", "add map @1 {map} /v1 one", "add map @1 {map} /api new",
                 "show map @1 {map}", "show map {map}", "show map", ("/v1", {}),
                 ("/api/x", {}), "add map @5 {map} x y", "commit map {map}",
                 "commit map @3 {map}", "commit map @1", "commit map @1 {map}",
                 ("/v1", {}), ("/api/x", {}), ("/foo", {}), "show map {map}", "show map",
                 "commit map @1 {map}", "prepare map {map}", "prepare map {map}",
                 "add map @3 {map} /three 3", "add map @2 {map} /two 2",
                 "clear map @2 {map}", "show map @2 {map}", "show map", "commit map @3 {map}",
                 ("/three", {}), ("/v1", {}), "show map {map}", "show map",
                 "prepare map {map}", "commit map @4 {map}", ("/three", {}),
                 "show map {map}", "show map", "prepare map /nope", "prepare map"]


def run_version_steps(sock, port, mapfile):
    out, pids = [], set()
    for step in VERSION_STEPS:
        if isinstance(step, str):
            out.append(cli(sock, step.format(map=mapfile)))
        else:
            answer = get_with(port, *step)
            out.append(answer[:2])
            pids.add(answer[2])
    return out, pids


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")
def test_map_versions_prepare_and_commit_as_haproxy(fastlb, tmp_path):
    """@<ver>: entries added to a prepared version are not matched until it is committed;
    the commit replaces the map at once, in every worker."""
    mapfile = tmp_path / "hosts.map"
    mapfile.write_text(MAP)
    hsock, hport = tmp_path / "haproxy.sock", free_port()
    hcfg = tmp_path / "h.cfg"
    hcfg.write_text(textwrap.dedent(config(hsock, hport, mapfile)))
    proc = subprocess.Popen(["haproxy", "-db", "-f", str(hcfg)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: hsock.exists(), timeout=10, message="haproxy's stats socket")
        theirs, _ = run_version_steps(hsock, hport, mapfile)
    finally:
        proc.kill()
        proc.wait()
    sock, port = tmp_path / "stats.sock", free_port()
    fastlb(config(sock, port, mapfile), workers=2, ports=[port])
    ours, _ = run_version_steps(sock, port, mapfile)

    def normal(text):
        if not isinstance(text, str):
            return text
        text = re.sub(r"0x[0-9a-f]+", "0x", text)
        return re.sub(r"used by map.*?\. curr_ver", "used by map. curr_ver", text)
    for step, their, our in zip(VERSION_STEPS, theirs, ours):
        assert normal(our) == normal(their), step
    # after the last commit, every worker matches the (empty) new version
    assert every_worker(port, "/v1") == {("none", "none")}


def test_a_reload_reads_the_files_again(fastlb, tmp_path):
    """As HAProxy: run-time changes live until the next reload, which loads the files."""
    import signal
    sock, port = tmp_path / "stats.sock", free_port()
    mapfile = tmp_path / "hosts.map"
    mapfile.write_text(MAP)
    lb = fastlb(config(sock, port, mapfile), workers=2, ports=[port])
    assert cli(sock, f"add map {mapfile} /added yes") == "\n"
    assert every_worker(port, "/added") == {("yes", "yes")}
    mapfile.write_text(MAP + "/fromfile again\n")
    old = set(lb.worker_pids())
    lb.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: len(lb.worker_pids()) == 2 and not old & set(lb.worker_pids()),
               timeout=15, message="the new generation's workers")
    wait_until(lambda: "/fromfile" in cli(sock, f"show map {mapfile}"), timeout=10,
               message="the new generation's map")
    assert every_worker(port, "/added") == {("none", "none")}
    assert every_worker(port, "/fromfile") == {("again", "again")}


def test_concurrent_set_map_from_both_workers(fastlb, tmp_path):
    """Workers appending at the same time: every change lands once, all see them all."""
    from concurrent.futures import ThreadPoolExecutor
    sock, port = tmp_path / "stats.sock", free_port()
    mapfile = tmp_path / "hosts.map"
    mapfile.write_text(MAP)
    fastlb(action_config(sock, port, mapfile), workers=2, ports=[port])
    keys = [f"/k{i}" for i in range(120)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda k: get_with(port, k, {"x": k[2:]}), keys))
    assert all(a[0] == f"v{k[2:]}" for a, k in zip(answers, keys))
    assert len({a[2] for a in answers}) == 2, "both workers should have written"
    listing = cli(sock, f"show map {mapfile}")
    assert sorted(line.split()[1] for line in listing.splitlines() if " /k" in line) == \
        sorted(keys)
    for k in ("/k0", "/k77", "/k119"):
        assert every_worker(port, k) == {(f"v{k[2:]}", f"v{k[2:]}")}


def test_a_full_journal_refuses_changes_and_readers_stay_current(tmp_path):
    """The journal's limit (a small one here): changes past it are refused, whoever
    reads has applied every change that fit, and lookups stop catching up."""
    from fastlb.sample.maps import OP_ADD, Journal, MapRegistry
    mapfile = tmp_path / "small.map"
    mapfile.write_text("a b\n")
    registry = MapRegistry()
    table = registry.table(str(mapfile), "str", "str", ".")
    registry.journal = table.ref.journal = Journal(registry, size=4096)
    added = 0
    while registry.change(OP_ADD, table.ref, key=f"k{added}", value="v"):
        added += 1
    assert 50 < added < 200
    assert table.lookup(f"k{added - 1}".encode()) == b"v"
    assert table.lookup(f"k{added}".encode()) is None
    assert registry.journal.seen == registry.journal.view[0]
