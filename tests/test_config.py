"""Configuration: tokenizer, units, sections, and one test per class of error (via ``fastlb -c``)."""
from __future__ import annotations

import shutil
import subprocess
import textwrap

import pytest

from conftest import FASTLB
from fastlb.config import load_config
from fastlb.config.tokenizer import TokenizeError, tokenize
from fastlb.config.units import parse_size, parse_time_ms


# -- tokenizer (HAProxy parse_line rules) ------------------------------------------------------
@pytest.mark.parametrize("line, words", [
    ("  bind   :80\tv4v6  ", ["bind", ":80", "v4v6"]),
    ('errorfile 503 "/a b/c.http"', ["errorfile", "503", "/a b/c.http"]),
    ("x 'single $HOME \\t' y", ["x", "single $HOME \\t", "y"]),
    ('unix@"/a/b"', ["unix@/a/b"]),
    (r"a\ b c\#d \"q\" \x41 \t", ["a b", "c#d", '"q"', "A", "\t"]),
    (r"reqrep ^(.*)\1 \1", ["reqrep", r"^(.*)\1", r"\1"]),
    ("server s1 1.2.3.4:80 # comment", ["server", "s1", "1.2.3.4:80"]),
    ("#only a comment", []),
    ('""', [""]),
])
def test_tokenizer_words(line, words):
    assert tokenize(line, env={}) == words


def test_tokenizer_expands_variables_only_in_double_quotes():
    env = {"PX": "7", "HOME": "/root"}
    assert tokenize('bind "fd@${PX}" $HOME \'$HOME\' "$HOME/x"', env) == \
        ["bind", "fd@7", "$HOME", "$HOME", "/root/x"]
    assert tokenize('timeout client "${HAPROXY_TEST_TIMEOUT-5s}"', env) == ["timeout", "client", "5s"]
    assert tokenize('x "${UNSET}" "a${UNSET}b" "\\$HOME"', env) == ["x", "", "ab", "$HOME"]


@pytest.mark.parametrize("line", ['a "unterminated', "a 'open", 'a "${X"', "a \\x4"])
def test_tokenizer_rejects_broken_lines(line):
    with pytest.raises(TokenizeError):
        tokenize(line, env={})


def test_time_and_size_units():
    assert [parse_time_ms(t) for t in ("5s", "200ms", "100", "2m", "1h", "1d", "1500us")] == \
        [5000, 200, 100, 120000, 3600000, 86400000, 1]
    assert [parse_size(s) for s in ("16384", "16k", "1m", "1g")] == [16384, 16384, 1 << 20, 1 << 30]
    for bad in ("5x", "s", "-1", ""):
        with pytest.raises(ValueError):
            parse_time_ms(bad)


# -- model --------------------------------------------------------------------------------------
def write(tmp_path, text, name="haproxy.cfg"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_sections_defaults_and_ids(tmp_path):
    cfg = write(tmp_path, """
        global
            maxconn 100
        global
            nbthread 3
            tune.idle-pool.shared off
        defaults base
            mode tcp
            timeout client 7s
            timeout connect 1s
            timeout server 2s
            retries 5
        defaults
            timeout client 9s
        backend b1 from base
            server a 127.0.0.1:1 weight 3
            server b 127.0.0.1:2 id 7
            server c 127.0.0.1
        frontend f1
            bind 127.0.0.1:8000-8002,[::1]:9000
            default_backend b1
        listen l1
            id 9
            bind :7000
            dispatch 127.0.0.1:5
    """)
    config, warnings = load_config([cfg], env={})
    assert config.global_.maxconn == 100 and config.global_.nbthread == 3
    b1, f1, l1 = config.proxies
    assert (b1.id, f1.id, l1.id) == (1, 2, 9)
    assert b1.timeouts.client == 7000 and b1.retries == 5
    # a new anonymous defaults section starts from scratch
    assert f1.timeouts.client == 9000 and f1.timeouts.connect is None and f1.retries == 3
    assert [(s.name, s.id, s.weight, s.address.port) for s in b1.servers] == \
        [("a", 1, 3, 1), ("b", 7, 1, 2), ("c", 2, 1, 0)]
    assert [l.describe() for l in f1.listeners] == \
        ["127.0.0.1:8000", "127.0.0.1:8001", "127.0.0.1:8002", "[::1]:9000"]
    assert l1.dispatch.port == 5
    assert any("missing timeouts for proxy 'l1'" in w for w in warnings)
    assert not any("'f1'" in w for w in warnings)


def test_config_directory_and_several_files(tmp_path):
    (tmp_path / "conf.d").mkdir()
    write(tmp_path, "backend b\n    server s 127.0.0.1:1\n", "conf.d/20-backend.cfg")
    write(tmp_path, "frontend f\n    bind :1\n    default_backend b\n", "conf.d/10-frontend.cfg")
    write(tmp_path, "ignored\n", "conf.d/notes.txt")
    config, _ = load_config([str(tmp_path / "conf.d")], env={})
    assert [p.name for p in config.proxies] == ["f", "b"]


# -- fastlb -c: exit codes and messages ---------------------------------------------------------
def check(tmp_path, text, env=None):
    write(tmp_path, text)
    result = subprocess.run(FASTLB + ["-c", "-f", "haproxy.cfg"], capture_output=True, text=True,
                            env=env, timeout=30, cwd=tmp_path)
    return result.returncode, result.stdout, result.stderr


VALID = """
    defaults
        mode tcp
        timeout client 5s
        timeout server 5s
        timeout connect 5s
    frontend fe
        bind 127.0.0.1:8000
        default_backend be
    backend be
        server s1 127.0.0.1:9000
"""


def test_check_valid_config(tmp_path):
    code, out, err = check(tmp_path, VALID)
    assert code == 0, err
    assert out.strip() == "Configuration file is valid"


def test_check_config_without_listener_exits_2(tmp_path):
    code, out, _ = check(tmp_path, "backend be\n    server s 127.0.0.1:1\n")
    assert code == 2
    assert "will not start (no listener)" in out


@pytest.mark.parametrize("line, message", [
    ("    frobnicate 1", "parsing [haproxy.cfg:LINE] : unknown keyword 'frobnicate' in 'backend' section"),
    ("    stick-table type ip size 1m", "parsing [haproxy.cfg:LINE] : 'stick-table' in 'backend' section needs stick tables (issue #14), which fastlb does not support yet."),
    ("    timeout server 5x", "parsing [haproxy.cfg:LINE] : unexpected character 'x' in 'timeout server'"),
    ("    timeout blah 5s", "'timeout' supports 'client', 'server'"),
    ("    server s2 127.0.0.1:80 frob", "[haproxy.cfg:LINE] : 'server be/s2' : unknown keyword 'frob'."),
    ("    server s2 127.0.0.1:80 track be/s1", "[haproxy.cfg:LINE] : 'server be/s2' : server option 'track' is not supported by fastlb yet."),
    ("    server s2 127.0.0.1:80 check inter 0", "[haproxy.cfg:LINE] : 'server be/s2' : invalid value 0 for argument 'inter'."),
    ("    hash-type foo", "parsing [haproxy.cfg:LINE] : 'hash-type' only supports 'consistent' and 'map-based'."),
    ("    cookie", "parsing [haproxy.cfg:LINE] : 'cookie' expects <cookie_name> as argument."),
    ("    balance url_param id post",
     "parsing [haproxy.cfg:LINE] : balance url_param only accepts 'check_post' modifier (got 'post')."),
    ("    server s2 127.0.0.1:99999", "[haproxy.cfg:LINE] : 'server be/s2' : invalid port '99999'"),
    ("    server s2 no-such-host.invalid:80", "[haproxy.cfg:LINE] : 'server be/s2' : could not resolve address 'no-such-host.invalid'"),
    ("    server s2 127.0.0.1:80 weight 300", "weight of server is not within 0 and 256 (300)."),
    ("    balance wrong", "parsing [haproxy.cfg:LINE] : balance only supports 'roundrobin'"),
    ("    mode ftp", "parsing [haproxy.cfg:LINE] : unknown proxy mode 'ftp'."),
    ("    option frobnicate", "parsing [haproxy.cfg:LINE] : unknown option 'frobnicate'."),
    ("    option spop-check", "parsing [haproxy.cfg:LINE] : 'option spop-check' is not supported by fastlb yet."),
    ("    no option tcplog", "parsing [haproxy.cfg:LINE] : negation/default is not supported for option 'tcplog'."),
    ("    log 127.0.0.1:514 nofacility", "parsing [haproxy.cfg:LINE] : unknown log facility 'nofacility'"),
    ('    server s2 "127.0.0.1:80', "parsing [haproxy.cfg:LINE] : unmatched quote"),
    ("    dispatch 1.2.3.4", "parsing [haproxy.cfg:LINE] : 'dispatch' : missing port specification in '1.2.3.4'"),
    ("    http-request set-timeout client 3s", "'set-timeout' rule supports 'server'/'tunnel' (got 'client')."),
    ("    http-request early-hint Bad:Name x", "'early-hint' : 'Bad:Name' is not a valid header name."),
    ("    no option splice-auto", "'no option splice-auto' is not supported by fastlb yet (it always splices bulk transfers)."),
    ("    option http-restrict-req-hdr-names", "'option http-restrict-req-hdr-names' expects 'preserve', 'delete' or 'reject' as argument."),
    ("    server s2 127.0.0.1:80 pool-max-conn 5", "server option 'pool-max-conn' is not supported by fastlb yet."),
    ("    use-fcgi-app php", "'use-fcgi-app' in 'backend' section needs FastCGI applications (fcgi-app sections), which fastlb does not support yet."),
])
def test_each_error_class_names_file_line_and_keyword(tmp_path, line, message):
    text = textwrap.dedent(VALID) + line + "\n"
    line_number = text.count("\n")
    code, out, err = check(tmp_path, text)
    assert code == 1
    assert message.replace("LINE", str(line_number)) in err, err
    assert "Fatal errors found in configuration." in err


@pytest.mark.parametrize("line, subsystem", [
    ("tune.lua.maxmem 10", "Lua"), ("tune.ssl.cachesize 1000", "TLS (issue #11)"),
    ("maxcomprate 10", "compression"), ("httpclient.resolvers.id dns", "resolvers (issue #13)"),
])
def test_global_keywords_of_a_missing_subsystem_name_it(tmp_path, line, subsystem):
    """Not "unknown keyword" (as if misspelt): the keyword and what it needs."""
    keyword = line.split()[0]
    code, _, err = check(tmp_path, "global\n    " + line + "\n" + textwrap.dedent(VALID))
    assert code == 1
    assert f"parsing [haproxy.cfg:2] : '{keyword}' in 'global' section needs {subsystem}" in err


def test_ssl_default_bind_curves_is_kept_for_tls(tmp_path):
    code, _, err = check(tmp_path, "global\n    ssl-default-bind-curves X25519:P-256\n"
                         + textwrap.dedent(VALID))
    assert code == 0, err


@pytest.mark.parametrize("option", ["splice-auto", "splice-request", "splice-response",
                                    "http-no-delay", "disable-h2-upgrade",
                                    "no http-no-delay"])
def test_options_fastlb_always_follows_are_accepted(tmp_path, option):
    negate, _, name = option.rpartition(" ")
    code, _, err = check(tmp_path, textwrap.dedent(VALID) + f"    {negate} option {name}\n")
    assert code == 0, err


def test_set_timeout_needs_a_backend(tmp_path):
    code, _, err = check(tmp_path, """
        frontend fe
            bind 127.0.0.1:8000
            http-request set-timeout server 1s
            default_backend be
        backend be
            http-request set-timeout server 1s
            server s 127.0.0.1:80
    """)
    assert code == 1
    assert "parsing [haproxy.cfg:4] : error detected in frontend 'fe' while parsing " in err
    assert "proxy 'fe' has no backend capability." in err
    assert "haproxy.cfg:7" not in err


def test_all_errors_reported_in_one_run(tmp_path):
    code, _, err = check(tmp_path, """
        global
            lua-load /tmp/script.lua
            frobnicate
        frontend fe
            bind 127.0.0.1:8000
            default_backend missing
            bogus 1
        frontend fe
            bind 127.0.0.1:8001
    """)
    assert code == 1
    assert "parsing [haproxy.cfg:3] : 'lua-load' in 'global' section needs Lua, which fastlb " \
        "does not support yet." in err
    assert "parsing [haproxy.cfg:4] : unknown keyword 'frobnicate' in 'global' section" in err
    assert "parsing [haproxy.cfg:8] : unknown keyword 'bogus' in 'frontend' section" in err
    assert "frontend 'fe' has the same name as frontend 'fe' declared at" in err
    assert "Error(s) found in configuration file :" in err


def test_unknown_backend_reference(tmp_path):
    code, _, err = check(tmp_path, """
        frontend fe
            bind 127.0.0.1:8000
            default_backend nope
    """)
    assert code == 1
    assert "Proxy 'fe': unable to find required default_backend: 'nope'." in err


def test_http_frontend_cannot_use_tcp_backend(tmp_path):
    code, _, err = check(tmp_path, """
        frontend fe
            mode http
            bind 127.0.0.1:8000
            default_backend be
        backend be
            mode tcp
            server s 127.0.0.1:1
    """)
    assert code == 1
    assert ("http frontend 'fe' (haproxy.cfg:2) tries to use incompatible tcp backend 'be' "
            "(haproxy.cfg:6) as its default backend (see 'mode').") in err


def test_server_in_frontend_and_keyword_out_of_section(tmp_path):
    code, _, err = check(tmp_path, """
        maxconn 10
        frontend fe
            bind 127.0.0.1:8000
            server s 127.0.0.1:1
    """)
    assert code == 1
    assert "parsing [haproxy.cfg:2] : unknown keyword 'maxconn' out of section." in err
    assert "'server' not allowed because frontend 'fe' has no backend capability." in err


def test_missing_file(tmp_path):
    result = subprocess.run(FASTLB + ["-c", "-f", str(tmp_path / "nope.cfg")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert f"config : Cannot open configuration file/directory {tmp_path / 'nope.cfg'} : " \
        "No such file or directory" in result.stderr


def test_env_expansion_in_check(tmp_path):
    text = VALID.replace("bind 127.0.0.1:8000", 'bind "127.0.0.1:${FE_PORT-8000}"')
    code, out, err = check(tmp_path, text, env={"PATH": "/usr/bin:/bin", "FE_PORT": "notaport"})
    assert code == 1 and "invalid port range 'notaport'" in err


def test_version_and_bad_flags():
    out = subprocess.run(FASTLB + ["-v"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.startswith("fastlb version ")
    vv = subprocess.run(FASTLB + ["-vv"], capture_output=True, text=True, timeout=30)
    assert "Cython" in vv.stdout and "epoll" in vv.stdout
    bad = subprocess.run(FASTLB + ["-Z"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 1 and "unknown option '-Z'" in bad.stderr


def test_process_keywords_are_checked_with_file_and_line(tmp_path):
    code, _, err = check(tmp_path, """
        global
            user no-such-user-here
            group no-such-group-here
            nbproc 2
            cpu-map 2/1 0
            cpu-map auto:1/1-2 0
            chroot /no/such/dir
            stats socket /tmp/x.sock expose-fd sockets
        frontend fe
            bind 127.0.0.1:8000
            mode http
            monitor-uri /health
            acl dead nbsrv(be) lt 1
            monitor fail if dead
            monitor pass if dead
            default_backend be
        backend be
            server s1 127.0.0.1:8001
    """)
    assert code == 1
    for line, text in (
            (3, "cannot find user id for 'no-such-user-here'"),
            (4, "cannot find group id for 'no-such-group-here'"),
            (5, "nbproc is not supported any more since HAProxy 2.5."),
            (6, "'cpu-map' : invalid process set '2'"),
            (7, "'cpu-map' : with 'auto:', the thread and CPU sets must have the same size"),
            (8, "'chroot' : '/no/such/dir' is not a directory."),
            (9, "'stats socket' : ''expose-fd' only supports 'listeners' (got 'sockets')'"),
            (16, "'monitor' expects 'fail'.")):
        assert f"parsing [haproxy.cfg:{line}] : {text}" in err, (line, err)
    code, _, err = check(tmp_path, """
        frontend fe
            bind 127.0.0.1:8000
            mode http
            monitor-uri /health
            acl dead nbsrv(nope) lt 1
            monitor fail if dead
    """)
    assert code == 1
    assert "Proxy 'fe': unable to find backend 'nope' referenced in ACL 'nbsrv(nope)'." in err
    code, out, _ = check(tmp_path, """
        global
            user nobody
            group nogroup
            cpu-map auto:1/1-2 0-1
            stats socket /tmp/x.sock level admin expose-fd listeners
        frontend fe
            bind 127.0.0.1:8000
            mode http
            monitor-uri /health
            monitor fail unless { nbsrv(be) gt 0 }
            default_backend be
        backend be
            mode http
            server s1 127.0.0.1:8001
    """)
    assert code == 0 and out.strip().endswith("Configuration file is valid")   # as haproxy -c


@pytest.mark.parametrize("text, code", [
    ("defaults\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n"
     "frontend f\n  bind 127.0.0.1:1\n", 0),
    ("global\n  maxconn 10\n", 2),
])
@pytest.mark.parametrize("quiet", [["-q"], []])
def test_check_quiet_prints_nothing_as_haproxy(tmp_path, text, code, quiet):
    """-c -q (or global quiet) says only its exit status: 0 valid, 2 no listener; the
    alerts of a bad configuration are still written (haproxy -c -q does the same)."""
    config = tmp_path / "q.cfg"
    config.write_text(("global\n  quiet\n" if not quiet else "") + text)
    ours = subprocess.run(FASTLB + ["-c", *quiet, "-f", str(config)], capture_output=True,
                          text=True)
    assert (ours.returncode, ours.stdout, ours.stderr) == (code, "", "")
    if shutil.which("haproxy"):
        theirs = subprocess.run(["haproxy", "-c", *quiet, "-f", str(config)],
                                capture_output=True, text=True)
        assert (theirs.returncode, theirs.stdout, theirs.stderr) == (code, "", "")
    config.write_text("frontend f\n  bind 127.0.0.1:1\n  default_backend nope\n")
    ours = subprocess.run(FASTLB + ["-c", "-q", "-f", str(config)], capture_output=True,
                          text=True)
    assert ours.returncode == 1 and "unable to find required default_backend: 'nope'" in ours.stderr


def test_setenv_family_changes_later_lines_as_haproxy(tmp_path, fastlb):
    """setenv / presetenv / unsetenv / resetenv act on the lines after them: fastlb
    listens where "${HOST}:${PORT}" says once presetenv has left PORT alone, and haproxy
    accepts the same file."""
    import shutil
    from conftest import HttpClient, free_port
    port = free_port()
    text = f"""
    global
        setenv PORT {port}
        presetenv PORT 1
        presetenv HOST 127.0.0.1
        setenv GONE x
        unsetenv GONE
        resetenv PORT HOST PATH GONE
    defaults
        mode http
        timeout connect 1s
        timeout client 1s
        timeout server 1s
    frontend fe
        bind "${{HOST}}:${{PORT}}"
        http-request return status 200 hdr X-Gone "[${{GONE}}]" hdr X-Home "[${{HOME}}]"
    """
    env = {"PATH": "/usr/sbin:/usr/bin:/bin", "HOME": "/nonexistent",
           "PYTHONPATH": __import__("os").environ.get("PYTHONPATH", "")}
    fastlb(text, ports=[port], env=env)
    status, fields, _ = HttpClient(port).get("/")
    assert (status, fields["x-gone"], fields["x-home"]) == (200, "[]", "[]")
    if shutil.which("haproxy"):
        path = tmp_path / "env.cfg"
        path.write_text(textwrap.dedent(text))
        theirs = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True,
                                text=True, env=env)
        assert theirs.returncode == 0, theirs.stderr


def test_fullconn_and_bind_nice_are_checked_and_their_lack_of_effect_said(tmp_path):
    """fullconn only scales a server minconn (refused), bind nice needs a task scheduler:
    both are checked and kept, nice with a warning; a frontend's fullconn or source is
    ignored with haproxy's warning; a bad value stops the start."""
    code, _, err = check(tmp_path, VALID.replace("bind 127.0.0.1:8000",
                                                 "bind 127.0.0.1:8000 nice 10\n        fullconn 5")
                         .replace("server s1", "fullconn 100\n        server s1"))
    assert code == 0, err
    assert "'nice' has no effect in fastlb" in err
    assert "'fullconn' ignored because frontend 'fe' has no backend capability." in err
    code, _, err = check(tmp_path, VALID.replace("bind 127.0.0.1:8000", "bind 127.0.0.1:8000 nice 2000"))
    assert code == 1 and "between -1024 and 1024" in err and "haproxy.cfg:8]" in err
    code, _, err = check(tmp_path, VALID.replace("server s1", "source 127.0.0.1 namespace x\n        server s1"))
    assert code == 1 and "'source ... namespace' is not supported by fastlb yet" in err


@pytest.mark.parametrize("line, code, message", [
    ("nokqueue", 0, None),                                  # a poller fastlb never uses
    ("no-memory-trimming", 0, None),
    ("tune.idletimer 1000", 0, "'tune.idletimer' has no effect in fastlb"),
    ("nogetaddrinfo", 0, "'nogetaddrinfo' has no effect in fastlb"),
    ("tune.h2.initial-window-size 65535", 0,
     "'tune.h2.initial-window-size' has no effect in fastlb (fastlb speaks no HTTP/2)"),
    ("tune.runqueue-depth 10", 0, "'tune.runqueue-depth' has no effect in fastlb (it has no "
     "task scheduler)"),
    ("noepoll", 1, "'noepoll' in 'global' section needs a poller other than epoll"),
    ("tune.pool-low-fd-ratio 20", 1, "'tune.pool-low-fd-ratio' in 'global' section needs the "
     "idle connection pool's limits (issue #12)"),
    ("tune.fd.edge-triggered on", 1, "'tune.fd.edge-triggered' directive is experimental, must "
     "be allowed via a global 'expose-experimental-directives'"),
    ("expose-experimental-directives\n        tune.fd.edge-triggered on", 0, None),
    ("tune.fd.edge-triggered off\n        expose-experimental-directives", 1,
     "'tune.fd.edge-triggered' directive is experimental"),
    ("no busy-polling", 0, None),
    ("no ulimit-n", 1, "'no' in 'global' section only applies to"),
])
def test_global_tunables_are_taken_warned_or_refused_by_name(tmp_path, line, code, message):
    text = VALID.replace("    defaults", f"    global\n        {line}\n    defaults")
    got, _, err = check(tmp_path, text)
    assert got == code, err
    if shutil.which("haproxy") and "edge-triggered" in line:      # the same verdict
        path = tmp_path / "theirs.cfg"
        path.write_text(textwrap.dedent(text))
        assert subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True
                              ).returncode == code
    if message:
        assert message in err and "haproxy.cfg:3]" in err, err
    else:
        assert "WARNING" not in err, err


def test_set_nice_is_accepted_with_a_warning_that_it_does_nothing(tmp_path):
    """HAProxy's set-nice orders its own tasks; fastlb has no scheduler, so the rule is
    checked as HAProxy checks it and said to change nothing; a bad one is refused."""
    base = ("defaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n"
            "    timeout server 1s\nlisten l\n    bind 127.0.0.1:1\n    server s 127.0.0.1:2\n")
    code, _, err = check(tmp_path, base + "    http-request set-nice 2000 if { path /x }\n"
                                          "    http-response set-nice -5\n")
    assert code == 0, err
    assert err.count("set-nice' has no effect in fastlb") == 2
    code, _, err = check(tmp_path, base + "    http-request set-nice\n")
    assert code != 0 and "expects exactly 1 argument (integer value)" in err


@pytest.mark.parametrize("section, lines, needs", [
    ("peers mypeers", ["peer lb1 127.0.0.1:10000", "peer lb2 127.0.0.2:10000"], "peers"),
    ("resolvers dns", ["nameserver ns1 127.0.0.1:53", "hold valid 10s"], "resolvers"),
    ("cache small", ["total-max-size 4", "max-age 60"], "the cache"),
    ("ring logs", ["size 32764", "format rfc5424"], "rings"),
    ("log-forward relay", ["dgram-bind 127.0.0.1:5514", "log global"], "log forwarding"),
    ("program api", ["command /bin/true"], "programs run by the master"),
    ("fcgi-app php", ["docroot /var/www"], "FastCGI applications"),
])
def test_haproxys_other_sections_are_refused_by_name_once(tmp_path, section, lines, needs):
    """One alert naming the section and what it needs; its lines are not read as another
    section's keywords, and the sections after it are read as usual."""
    text = VALID.replace("    backend be", "    " + section + "\n" +
                         "".join(f"        {line}\n" for line in lines) + "    backend be")
    code, _, err = check(tmp_path, text)
    alerts = [line for line in err.splitlines() if line.startswith("[ALERT]")]
    kind = section.split()[0]
    assert code == 1 and len(alerts) == 3, err    # it, "Error(s) found", "Fatal errors"
    assert f"parsing [haproxy.cfg:10] : '{kind}' section needs {needs}" in alerts[0], err
    assert "unknown" not in err, err
