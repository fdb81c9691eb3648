"""ACLs: parsing and matching (unit), then routing and deny rules over real sockets."""
from __future__ import annotations

import pytest

from conftest import HTTP_DEFAULTS, HttpClient, free_port
from fastlb.http.acl import (AclError, ConditionCompiler, PrefixTrie, Request, parse_acl,
                             parse_condition)


def request(url="/", method="GET", headers=(), src="127.0.0.1", port=80, version="1.1"):
    return Request(method.encode(), url.encode(),
                   [(n.lower().encode(), v.encode()) for n, v in headers], src, port,
                   version.encode())


def evaluate(acls: dict, condition: str, req: Request) -> bool:
    terms = {name: [parse_acl(words.split())] for name, words in acls.items()}
    return ConditionCompiler(terms).compile(parse_condition(condition.split()))(req)


@pytest.mark.parametrize("acl, url, expected", [
    ("path_beg /item", "/item/42?x=1", True),
    ("path_beg /item", "/basket", False),
    ("path /item", "/item?q", True),
    ("path /item", "http://host/item?q=1", True),      # absolute form: path part only
    ("path_end .jpg .png", "/a/b.png", True),
    ("path_sub admin", "/x/admin/y", True),
    ("path_dir api", "/v1/api/users", True),
    ("path_dir api", "/v1/apis/users", False),
    ("path_reg ^/v[0-9]+/", "/v2/x", True),
    ("path_beg -i /ITEM", "/item", True),
    ("url_beg /a?b", "/a?b=1", True),
    ("url_param(id) -m int gt 10", "/x?id=42", True),
    ("url_param(id) 7", "/x?id=8", False),
    ("path_len gt 5", "/abcdef", True),
])
def test_path_and_url_matching(acl, url, expected):
    assert evaluate({"a": acl}, "if a", request(url)) is expected


def test_headers_method_source_and_port():
    req = request("/", "POST", headers=[("Host", "WWW.Example.com"), ("X-List", "a, b,c")],
                  src="10.1.2.3", port=8443)
    assert evaluate({"h": "hdr(host) -i www.example.com"}, "if h", req)
    assert evaluate({"h": "hdr_dom(host) -i example.com"}, "if h", req)
    assert not evaluate({"h": "hdr_dom(host) -i ample.com"}, "if h", req)
    assert evaluate({"h": "hdr(x-list) b"}, "if h", req)           # values split at commas
    assert evaluate({"h": "hdr_cnt(x-list) eq 3"}, "if h", req)
    assert evaluate({"h": "hdr_beg(host) WWW"}, "if h", req)
    assert evaluate({"m": "method POST PUT"}, "if m", req)
    assert evaluate({"s": "src 10.0.0.0/8 192.168.0.0/16"}, "if s", req)
    assert not evaluate({"s": "src 10.0.0.0/8"}, "if s", request(src="::ffff:11.0.0.1"))
    assert evaluate({"p": "dst_port 8000:9000"}, "if p", req)
    assert evaluate({"f": "hdr(x-missing) -m found"}, "unless f", req)


def test_conditions_and_or_not_anonymous_predefined():
    req = request("/api/v1", "GET")
    acls = {"api": "path_beg /api", "admin": "path_beg /admin"}
    assert evaluate(acls, "if api METH_GET", req)                  # implicit AND
    assert not evaluate(acls, "if api !METH_GET", req)
    assert evaluate(acls, "if admin || api", req)
    assert evaluate(acls, "if admin or { path_end /v1 }", req)
    assert evaluate(acls, "unless admin", req)
    assert evaluate({}, "if TRUE", req) and not evaluate({}, "if FALSE", req)
    assert evaluate({}, "if METH_GET", request(method="HEAD"))
    assert evaluate({}, "if HTTP_1.1 LOCALHOST", req)


def test_same_name_acl_lines_are_ored():
    terms = {"static": [parse_acl("path_beg /img".split()), parse_acl("path_end .css".split())]}
    check = ConditionCompiler(terms).compile(parse_condition(["if", "static"]))
    assert check(request("/img/a")) and check(request("/x/y.css")) and not check(request("/x"))


def test_prefix_trie_one_walk_finds_every_prefix():
    trie = PrefixTrie()
    for i in range(1000):
        trie.add(f"/p{i}", i)
    trie.add("/", 5000)
    assert trie.walk("/p123/x") == {1, 12, 123, 5000}
    assert trie.walk("/q") == {5000}


def test_pattern_file(tmp_path):
    (tmp_path / "paths.lst").write_text("# static prefixes\n/img\n\n/css\n")
    term = parse_acl(["path_beg", "-f", "paths.lst"], str(tmp_path))
    assert term.patterns == [b"/img", b"/css"]


@pytest.mark.parametrize("words", [["nosuchfetch", "x"], ["path_beg"], ["hdr_cnt(a,b)", "1"],
                                   ["path_reg", "("], ["path_beg", "-m", "bogus", "/"]])
def test_bad_acls(words):
    with pytest.raises(AclError):
        parse_acl(words)


# -- over sockets ---------------------------------------------------------------------------------
def test_tutorial_path_routing(fastlb, http_backends):
    item1, item2 = http_backends("item1"), http_backends("item2")
    basket1, basket2 = http_backends("basket1"), http_backends("basket2")
    port = free_port()
    fastlb(HTTP_DEFAULTS + f"""
    frontend shop
        bind 127.0.0.1:{port}
        acl is_item path_beg /item
        acl is_basket path_beg /basket
        use_backend items if is_item
        use_backend baskets if is_basket
        default_backend items
    backend items
        server item1 127.0.0.1:{item1.port}
        server item2 127.0.0.1:{item2.port}
    backend baskets
        server basket1 127.0.0.1:{basket1.port}
        server basket2 127.0.0.1:{basket2.port}
    """, workers=2, ports=[port])
    keep_alive = HttpClient(port)
    seen = [keep_alive.get(p)[2].split()[0] for p in ("/item", "/basket") * 3]
    assert seen == [b"item1", b"basket1", b"item2", b"basket2", b"item1", b"basket1"]
    for path, names in (("/item/1", {b"item1", b"item2"}), ("/basket/2", {b"basket1", b"basket2"})):
        got = {HttpClient(port).get(path, headers=[("Connection", "close")])[2].split()[0]
               for _ in range(4)}
        assert got == names


def test_first_matching_rule_wins_across_prefix_runs(fastlb, http_backends):
    """Consecutive path_beg rules are looked up in one trie (PrefixSwitch); the answer must
    still be the first rule in file order that matches, also across a rule of another kind
    and with -i patterns and ORed alternatives."""
    names = ["short", "long", "header", "late", "nocase", "default"]
    backends = {name: http_backends(name) for name in names}
    port = free_port()
    fastlb(HTTP_DEFAULTS + f"""
    frontend fe
        bind 127.0.0.1:{port}
        acl api path_beg /api
        acl api_v2 path_beg /api/v2
        acl admin path_beg /admin
        acl docs path_beg /docs
        acl tagged hdr(x-route) late
        acl shop path_beg -i /Shop
        use_backend short if api
        use_backend long if api_v2 || admin
        use_backend header if tagged
        use_backend late if docs || api_v2
        use_backend nocase if shop
        default_backend default
    """ + "".join(f"""
    backend {name}
        server s 127.0.0.1:{backends[name].port}
    """ for name in names), ports=[port])
    client = HttpClient(port)

    def served(path, headers=()):
        return client.get(path, headers=list(headers))[2].split()[0].decode()

    assert served("/api/v2/x") == "short"          # the earlier, shorter prefix wins
    assert served("/admin/users") == "long"
    assert served("/docs/a", [("X-Route", "late")]) == "header"   # a rule between two runs
    assert served("/docs/a") == "late"
    assert served("/SHOP/cart") == "nocase" and served("/shop") == "nocase"
    assert served("/ap") == "default" and served("/") == "default"


def test_http_request_deny(fastlb, http_backends):
    server = http_backends("s")
    port = free_port()
    fastlb(HTTP_DEFAULTS + f"""
    frontend fe
        bind 127.0.0.1:{port}
        http-request deny if {{ path_beg /admin }}
        http-request deny deny_status 429 if {{ hdr(x-abuse) -m found }}
        http-request deny deny_status 400 unless METH_GET || {{ method POST }}
        default_backend be
    backend be
        server s 127.0.0.1:{server.port}
    """, ports=[port])
    status, fields, body = HttpClient(port).get("/admin/x")
    assert status == 403 and b"Request forbidden by administrative rules." in body
    assert HttpClient(port).get("/", headers=[("X-Abuse", "1")])[0] == 429
    client = HttpClient(port)
    client.request("DELETE", "/thing")
    assert client.response()[0] == 400
    assert HttpClient(port).get("/fine")[2] == b"s GET /fine"
    assert [r["path"] for r in server.requests] == ["/fine"]


def test_unknown_acl_in_condition_is_a_config_error(tmp_path):
    import subprocess
    from conftest import FASTLB
    (tmp_path / "haproxy.cfg").write_text(
        "frontend fe\n    mode http\n    bind 127.0.0.1:1\n    use_backend be if nosuch\n"
        "backend be\n    mode http\n    server s 127.0.0.1:2\n")
    result = subprocess.run(FASTLB + ["-c", "-f", "haproxy.cfg"], capture_output=True, text=True,
                            cwd=tmp_path, timeout=30)
    assert result.returncode == 1
    assert "parsing [haproxy.cfg:4] : error detected while parsing switching rule : " \
           "no such ACL : 'nosuch'." in result.stderr


def rules_config(port, server_port, rules, backend_rules=""):
    return HTTP_DEFAULTS + f"""
    frontend fe
        bind 127.0.0.1:{port}
{rules}
        default_backend be
    backend be
{backend_rules}
        server s 127.0.0.1:{server_port}
    """


def test_request_header_rules(fastlb, http_backends):
    server = http_backends("s")
    port = free_port()
    fastlb(rules_config(port, server.port, """
        http-request set-header X-Client %[src]
        http-request add-header X-Via fastlb
        http-request del-header X-Secret
        http-request set-header X-Path %[path] if { path_beg /api }
        http-request replace-header X-Version ^v(\\d+)$ version-\\1
        http-request replace-value X-List ^old$ new
    """), ports=[port])
    HttpClient(port).get("/api/x?q=1", headers=[("X-Secret", "s3cr3t"), ("X-Version", "v2"),
                                                ("X-List", "old, keep")])
    HttpClient(port).get("/other")
    first, second = (r["headers"] for r in server.requests)
    assert first["x-client"] == "127.0.0.1" and first["x-via"] == "fastlb"
    assert "x-secret" not in first and first["x-path"] == "/api/x"
    assert first["x-version"] == "version-2" and first["x-list"] == "new, keep"
    assert "x-path" not in second


def test_return_redirect_and_reject(fastlb, http_backends):
    server = http_backends("s")
    port = free_port()
    fastlb(rules_config(port, server.port, """
        http-request return status 200 content-type text/plain string pong hdr X-Served-By fastlb if { path /ping }
        http-request redirect location https://example.com/new code 301 if { path /old }
        http-request redirect prefix /v2 if { path_beg /v1 }
        http-request redirect scheme https if { hdr(x-insecure) -m found }
        http-request reject if { path /drop }
    """), ports=[port])
    client = HttpClient(port)
    status, fields, body = client.get("/ping")
    assert (status, body, fields["content-type"], fields["x-served-by"]) == \
        (200, b"pong", "text/plain", "fastlb")
    status, fields, _ = client.get("/old")                 # same kept-alive connection
    assert status == 301 and fields["location"] == "https://example.com/new"
    status, fields, _ = client.get("/v1/users?id=2")
    assert status == 302 and fields["location"] == "/v2/v1/users?id=2"
    status, fields, _ = client.get("/x", headers=[("X-Insecure", "1")])
    assert status == 302 and fields["location"] == "https://test/x"
    dropped = HttpClient(port)
    dropped.request("GET", "/drop")
    assert dropped.closed()
    assert server.requests == []


def test_response_header_rules(fastlb, http_backends):
    server = http_backends("s", lambda req: __import__("conftest").http_response(
        body=b"ok", headers=[("Server", "leaky/1.0"), ("X-Powered-By", "php")]))
    port = free_port()
    fastlb(rules_config(port, server.port, """
        http-response set-header X-Frame-Options DENY
    """, backend_rules="""
        http-response del-header X-Powered-By
        http-response replace-header Server ^.*$ hidden
    """), ports=[port])
    status, fields, body = HttpClient(port).get("/")
    assert body == b"ok" and fields["x-frame-options"] == "DENY"
    assert "x-powered-by" not in fields and fields["server"] == "hidden"


def test_backend_request_rules_run_after_switching(fastlb, http_backends):
    server = http_backends("s")
    port = free_port()
    fastlb(rules_config(port, server.port, "", backend_rules="""
        acl blocked path_beg /blocked
        http-request deny deny_status 403 if blocked
        http-request set-header X-Backend be
    """), ports=[port])
    assert HttpClient(port).get("/blocked/x")[0] == 403
    assert HttpClient(port).get("/ok")[0] == 200
    assert [r["headers"]["x-backend"] for r in server.requests] == ["be"]
