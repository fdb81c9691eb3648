"""ACLs and conditions: ``acl`` lines and ``if|unless`` conditions -> per-request matchers.

An ACL's criterion is a sample expression (``fetch[,converter]*``, see ``fastlb.sample``)
and a match method (``-m``).  Parsing (config time) checks the expression and the
patterns and builds ``AclTerm`` objects; ``ConditionCompiler`` then compiles a proxy's
conditions, for the place they run in, into closures over a ``Stream``.  Samples are
bytes, as they came on the wire (``url_param`` is not percent-decoded, as in HAProxy);
patterns are encoded once at parse time, so matching never decodes.  Every ``path_beg``
pattern of a frontend goes into one prefix trie, so a thousand prefixes cost one walk of
the path per request, whatever the number of ACLs.
"""
from __future__ import annotations

import functools
import ipaddress
import os
import re
from dataclasses import dataclass, field
from typing import Callable, Optional

from ..sample import Context, NotAvailable, SampleError, Stream, as_bytes, check_expr, \
    compile_expr
from ..sample import maps
from ..sample.maps import delimited
from ..sample.registry import FETCHES, MissingData, REQ_CONTENT, RES_CONTENT
from ..sample.types import ADDR, ANY, BOOL, IPV4, IPV6, SINT

MATCH_METHODS = ("str", "beg", "end", "sub", "reg", "dir", "dom", "found", "len", "int", "ip",
                 "bool", "bin")
# the suffixes HAProxy's older keywords take as their match method: path_beg, hdr_len ...
TEXT_VARIANTS = ("beg", "end", "sub", "reg", "dir", "dom", "len")
VARIANT_FETCHES = ("path", "url", "hdr", "base", "cook", "urlp", "url_param", "shdr",
                   "scook", "req.hdr", "res.hdr", "req.cook", "res.cook", "req.fhdr",
                   "res.fhdr", "query", "pathq", "baseq", "req.ver", "res.ver")
# the default match method of a sample type
DEFAULT_METHOD = {SINT: "int", BOOL: "bool", ADDR: "ip", IPV4: "ip", IPV6: "ip"}

Request = Stream          # what conditions are evaluated on (the old name, kept for tests)


def resolve_criterion(criterion: str) -> tuple[str, Optional[str]]:
    """``path_beg`` -> ("path", "beg"); ``hdr_sub(host),lower`` -> ("hdr(host),lower", "sub");
    anything else is its own expression, with its type's default method."""
    match = re.match(r"([a-z0-9_.]+?)_(beg|end|sub|reg|dir|dom|len)(?=$|[(,])", criterion)
    if match and match.group(1) in VARIANT_FETCHES:
        return match.group(1) + criterion[match.end():], match.group(2)
    return criterion, None


# Predefined ACLs (HAProxy's table, the ones that make sense without other features).
PREDEFINED = {
    "TRUE": None, "FALSE": None, "HTTP": None,
    "HTTP_1.0": ("req.ver", ["1.0"]), "HTTP_1.1": ("req.ver", ["1.1"]),
    "METH_CONNECT": ("method", ["CONNECT"]), "METH_DELETE": ("method", ["DELETE"]),
    "METH_GET": ("method", ["GET", "HEAD"]), "METH_HEAD": ("method", ["HEAD"]),
    "METH_OPTIONS": ("method", ["OPTIONS"]), "METH_POST": ("method", ["POST"]),
    "METH_PUT": ("method", ["PUT"]), "METH_TRACE": ("method", ["TRACE"]),
    "LOCALHOST": ("src", ["127.0.0.1/8", "::1"]),
    "HTTP_URL_ABS": ("url_reg", ["^[^/:]*://"]), "HTTP_URL_SLASH": ("url_beg", ["/"]),
    "HTTP_URL_STAR": ("url", ["*"]), "HTTP_CONTENT": ("hdr_val(content-length)", ["gt", "0"]),
    "WAIT_END": ("wait_end", []), "REQ_CONTENT": ("req.len", ["gt", "0"]),
    "RDP_COOKIE": ("req.rdp_cookie_cnt", ["gt", "0"]),
}


class AclError(ValueError):
    pass


@dataclass
class AclTerm:
    """One ``acl`` line (or one anonymous ``{ ... }`` block)."""
    fetch: str                         # the criterion as written
    kind: str                          # the fetch keyword ("path", "req.hdr" ...)
    arg: Optional[str]
    method: str
    patterns: list
    ignore_case: bool = False
    expr: str = ""                     # the sample expression
    type: str = ""                     # its output type
    plain: bool = True                 # no converter
    # -f files (run-time changes: "add acl", add-acl ...): [(name, absolute path, the
    # patterns read)], and the patterns written on the line (as written)
    files: list = field(default_factory=list)
    inline: list = field(default_factory=list)


@dataclass
class Condition:
    """``if|unless`` + OR-of-ANDs of (negated, acl name or AclTerm)."""
    negate: bool
    alternatives: list = field(default_factory=list)   # [[(negated, name | AclTerm)]]


def parse_acl(words: list[str], base_dir: str = ".") -> AclTerm:
    """``<criterion> [flags] [operator] <value> ...`` (the part after ``acl <name>``)."""
    if not words:
        raise AclError("missing ACL criterion")
    criterion, rest = words[0], list(words[1:])
    text, method = resolve_criterion(criterion)
    try:
        checked = check_expr(text)
    except SampleError as exc:
        raise AclError(f"{exc} in ACL expression '{criterion}'.") from None
    if method is None:
        method = DEFAULT_METHOD.get(checked.type, "str")
    ignore_case = False
    patterns: list = []
    files: list = []
    while rest and rest[0].startswith("-") and rest[0] != "-":
        flag = rest.pop(0)
        if flag == "--":
            break
        if flag == "-i":
            ignore_case = True
        elif flag == "-m":
            if not rest or rest[0] not in MATCH_METHODS:
                raise AclError(f"'-m' expects one of {', '.join(MATCH_METHODS)}.")
            method = rest.pop(0)
        elif flag == "-f":
            if not rest:
                raise AclError("'-f' expects a file name.")
            name = rest.pop(0)
            read = _read_pattern_file(name, base_dir)
            files.append((name, os.path.abspath(name if os.path.isabs(name) else
                                                os.path.join(base_dir, name)), read))
            patterns += read
        elif flag == "-n":
            pass
        else:
            raise AclError(f"unknown ACL flag '{flag}'.")
    inline = list(rest)
    patterns = patterns + rest
    if method == "int" and text.split(",", 1)[0] in ("req.ssl_ver", "req_ssl_ver"):
        # HAProxy reads its patterns as dotted versions: 3.1 is (3 << 16) + 1
        patterns = [re.sub(r"(\d+)\.(\d+)", lambda m: str((int(m[1]) << 16) + int(m[2])), p)
                    for p in patterns]
    patterns = convert_patterns(method, ignore_case, patterns)
    if not patterns and method not in ("found", "bool"):
        raise AclError(f"missing pattern for ACL criterion '{criterion}'.")
    arg = checked.args[0] if checked.args else None
    return AclTerm(fetch=criterion, kind=checked.fetch, arg=arg, method=method,
                   patterns=patterns, ignore_case=ignore_case, expr=text, type=checked.type,
                   plain=checked.plain, files=files, inline=inline)


def convert_patterns(method: str, ignore_case: bool, patterns: list) -> list:
    """The patterns as written -> what the match method's tests take."""
    if method in ("int", "len"):
        return _int_patterns(patterns)
    if method == "ip":
        return _ip_patterns(patterns)
    if method == "reg":
        flags = re.IGNORECASE if ignore_case else 0
        try:
            return [re.compile(config_bytes(p), flags) for p in patterns]
        except re.error as exc:
            raise AclError(f"invalid regex: {exc}") from None
    if method in ("found", "bool"):
        if patterns:
            raise AclError(f"'-m {method}' takes no pattern (got '{patterns[0]}').")
        return patterns
    if method == "bin":
        try:
            return [bytes.fromhex(p) for p in patterns]
        except ValueError:
            raise AclError("'-m bin' expects hexadecimal patterns.") from None
    return [config_bytes(p).lower() if ignore_case else config_bytes(p) for p in patterns]


def config_bytes(text: str) -> bytes:
    """A string from the configuration as the bytes it was written with."""
    return text.encode("utf-8", "surrogateescape")


def _read_pattern_file(path: str, base_dir: str) -> list[str]:
    full = path if os.path.isabs(path) else os.path.join(base_dir, path)
    try:
        with open(full, encoding="utf-8") as handle:
            lines = [line.strip() for line in handle]
    except OSError as exc:
        raise AclError(f"failed to open pattern file <{path}> : {exc.strerror}") from None
    return [line for line in lines if line and not line.startswith("#")]


_OPS = {"eq": lambda a, b: a == b, "ge": lambda a, b: a >= b, "gt": lambda a, b: a > b,
        "le": lambda a, b: a <= b, "lt": lambda a, b: a < b}


def _int_patterns(patterns: list[str]) -> list:
    """Integers, ranges ``a:b`` / ``a:`` / ``:b``, or ``<op> <n>``."""
    out, i = [], 0
    while i < len(patterns):
        p = patterns[i]
        if p in _OPS:
            if i + 1 >= len(patterns):
                raise AclError(f"missing value after operator '{p}'.")
            value = int(patterns[i + 1])
            op = _OPS[p]
            out.append(lambda v, op=op, value=value: op(v, value))
            i += 2
            continue
        try:
            if ":" in p:
                low, _, high = p.partition(":")
                lo = int(low) if low else None
                hi = int(high) if high else None
                out.append(lambda v, lo=lo, hi=hi: (lo is None or v >= lo) and (hi is None or v <= hi))
            else:
                value = int(p)
                out.append(lambda v, value=value: v == value)
        except ValueError:
            raise AclError(f"'{p}' is not a number or range.") from None
        i += 1
    return out


def _ip_patterns(patterns: list[str]) -> list:
    try:
        return [ipaddress.ip_network(p, strict=False) for p in patterns]
    except ValueError as exc:
        raise AclError(str(exc)) from None


def parse_condition(words: list[str], acl_terms_dir: str = ".") -> Condition:
    """``if|unless`` followed by terms; ``||``/``or`` separate alternatives."""
    if not words or words[0] not in ("if", "unless"):
        raise AclError("expects 'if <cond>' or 'unless <cond>'.")
    cond = Condition(negate=words[0] == "unless")
    current: list = []
    i = 1
    while i < len(words):
        word = words[i]
        if word in ("||", "or"):
            if not current:
                raise AclError("missing ACL before 'or'.")
            cond.alternatives.append(current)
            current = []
            i += 1
            continue
        negated = False
        while word.startswith("!"):
            negated = not negated
            word = word[1:]
            if not word:
                i += 1
                if i >= len(words):
                    raise AclError("missing ACL after '!'.")
                word = words[i]
        if word == "{":
            end = words.index("}", i + 1) if "}" in words[i + 1:] else -1
            if end < 0:
                raise AclError("missing closing '}' in condition.")
            current.append((negated, parse_acl(words[i + 1:end], acl_terms_dir)))
            i = end + 1
            continue
        current.append((negated, word))
        i += 1
    if not current:
        raise AclError("no condition after 'if'/'unless'." if not cond.alternatives else
                       "missing ACL after 'or'.")
    cond.alternatives.append(current)
    return cond


def condition_acl_names(cond: Condition) -> list[str]:
    return [term for alt in cond.alternatives for _, term in alt if isinstance(term, str)]


# ---------------------------------------------------------------------------------- runtime
class PrefixTrie:
    """All path_beg patterns of a frontend; one walk of the path finds every match."""

    def __init__(self):
        self.root: dict = {}

    def add(self, pattern: bytes, key: int) -> None:
        node = self.root
        for char in pattern:
            node = node.setdefault(char, {})
        node.setdefault(None, set()).add(key)

    def remove(self, pattern: bytes, key: int) -> None:
        node = self.root
        for char in pattern:
            node = node.get(char)
            if node is None:
                return
        node.get(None, set()).discard(key)

    def walk(self, text: bytes) -> set:
        hits: set = set()
        node = self.root
        if None in node:
            hits |= node[None]
        for char in text:
            node = node.get(char)
            if node is None:
                break
            if None in node:
                hits |= node[None]
        return hits


class PrefixSwitch:
    """A run of consecutive rules whose conditions are only path_beg ACLs, compiled as one
    lookup: a single walk of the path finds every matching pattern, and the earliest rule
    among them wins, as evaluating the rules in order would.  Path routing with 1,000
    prefixes then costs one walk, not 1,000 condition evaluations."""

    def __init__(self):
        self.trie = PrefixTrie()
        self.trie_ci = PrefixTrie()
        self.rules = 0

    def add(self, patterns: list[tuple[bytes, bool]]) -> int:
        """Add the next rule of the run; returns its position in the run."""
        position = self.rules
        self.rules += 1
        for pattern, ignore_case in patterns:
            if ignore_case:
                self.trie_ci.add(pattern.lower(), position)
            else:
                self.trie.add(pattern, position)
        return position

    def first(self, path: bytes) -> Optional[int]:
        hits = self.trie.walk(path)
        if self.trie_ci.root:
            hits |= self.trie_ci.walk(path.lower())
        return min(hits) if hits else None


# text match method -> (patterns -> test(sample) -> bool); found, int and ip are not tests
# of one text sample (see ConditionCompiler._term_matcher)
TEXT_TESTS = {
    "str": lambda patterns: frozenset(patterns).__contains__,
    "beg": lambda patterns: functools.partial(_starts, prefixes=tuple(patterns)),
    "end": lambda patterns: functools.partial(_ends, suffixes=tuple(patterns)),
    "sub": lambda patterns: lambda value: any(p in value for p in patterns),
    "reg": lambda patterns: lambda value: any(p.search(value) for p in patterns),
    "dir": lambda patterns: lambda value: any(delimited(value, p, b"/") for p in patterns),
    "dom": lambda patterns: lambda value: any(delimited(value, p, b"/?.:") for p in patterns),
    "len": lambda patterns: lambda value: any(t(len(value)) for t in patterns),
}


def _starts(value: bytes, prefixes: tuple) -> bool:
    return value.startswith(prefixes)


def _ends(value: bytes, suffixes: tuple) -> bool:
    return value.endswith(suffixes)


def _lowered(test: Callable[[bytes], bool]) -> Callable[[bytes], bool]:
    return lambda value: test(value.lower())


def _int_test(tests: list) -> Callable[[int], bool]:
    if len(tests) == 1:
        return tests[0]
    return lambda value: any(t(value) for t in tests)


def _text_int_test(tests: list) -> Callable[[bytes], bool]:
    """-m int on text: the samples that are integers."""
    test = _int_test(tests)

    def as_int(value: bytes) -> bool:
        try:
            n = int(value)
        except ValueError:
            return False
        return test(n)
    return as_int


def _ip_test(nets: list) -> Callable:
    def test(value) -> bool:
        if value.__class__ is bytes:
            try:
                value = ipaddress.ip_address(value.decode("latin-1"))
            except ValueError:
                return False
        elif value.__class__ not in (ipaddress.IPv4Address, ipaddress.IPv6Address):
            return False
        if value.version == 6 and value.ipv4_mapped:
            value = value.ipv4_mapped
        return any(value.version == net.version and value in net for net in nets)
    return test


def _as_text(test: Callable) -> Callable:
    """A text method on a sample that is not text: its string form (HAProxy's cast)."""
    return lambda value: test(as_bytes(value))


class ConditionCompiler:
    """Compiles the conditions of one proxy (with its ACLs), for one place (``frontend
    http-request``, ``http-response``, ...: see ``fastlb.sample.registry.PLACES``), into
    callables of a ``Stream``.  ``env`` answers the run-time lookups of fetches
    (``nbsrv``, names, counters)."""

    def __init__(self, acls: dict[str, list[AclTerm]], env=None,
                 place: str = "frontend http-request", proxy: str = ""):
        self.acls = acls
        self.ctx = Context(place, env, proxy)
        self.trie = PrefixTrie()
        self.trie_keys: dict[int, int] = {}   # id(term) -> trie key
        self.trie_ci = PrefixTrie()

    def _term_matcher(self, term: AclTerm) -> Callable[[Stream], bool]:
        matcher = self._plain_matcher(term)
        entry = FETCHES.get(term.kind)
        if entry is None or not (REQ_CONTENT in entry.needs or RES_CONTENT in entry.needs) \
                or not (REQ_CONTENT in self.ctx.available or RES_CONTENT in self.ctx.available):
            return matcher

        def content(stream):
            # HAProxy's ACL_TEST_MISS: on partial data, a content fetch that may still
            # change its answer turns a miss into "wait for more"
            stream.may_change = False
            if matcher(stream):
                return True
            if stream.partial and stream.may_change:
                raise MissingData()
            return False
        return content

    def _plain_matcher(self, term: AclTerm) -> Callable[[Stream], bool]:
        method = term.method
        if term.kind == "path" and term.plain and method == "beg":
            return self._prefix_matcher(term)
        try:
            expr = compile_expr(term.expr, self.ctx)
        except NotAvailable:
            return lambda stream: False     # HAProxy: "will never match" here
        except SampleError as exc:
            raise AclError(f"{exc} in ACL expression '{term.fetch}'.") from None
        read = expr.all
        if term.kind == "http_auth_group" and term.plain:
            # its patterns are groups: the authenticated user's groups are tested
            groups, wanted = expr.one.groups, frozenset(term.patterns)
            return lambda stream: any(g.encode() in wanted for g in groups(stream))
        if method == "found":
            return lambda stream: bool(read(stream))
        if method == "bool":
            return lambda stream: any(bool(v) for v in read(stream))
        test = self._test(term, term.patterns, expr)
        if term.files:
            test = self._changing(term, expr, test)
        if expr.many:
            return lambda stream: any(map(test, read(stream)))
        one = expr.one

        def single(stream) -> bool:
            value = one(stream)
            return value is not None and test(value)
        return single

    def _test(self, term: AclTerm, patterns: list, expr) -> Callable:
        """The test of one sample against the term's patterns."""
        method = term.method
        if method == "ip":
            test = _ip_test(patterns)
        elif method == "int":
            test = _int_test(patterns)
            if expr.type not in (SINT, BOOL):
                test = _text_int_test(patterns) if expr.type != ANY else \
                    _any_int_test(patterns)
        elif method == "bin":
            patterns = frozenset(patterns)
            test = patterns.__contains__
        else:
            test = TEXT_TESTS[method](patterns)
            if term.ignore_case and method != "reg":    # -i patterns are lower case already
                test = _lowered(test)
            if expr.type not in ("str", "bin", "meth"):
                test = _as_text(test)
        return test

    def _changing(self, term: AclTerm, expr, test) -> Callable:
        """A term with ``-f`` files, whose patterns may change at run time: the test is
        built again when they do (sample.maps journal, applied before the test runs)."""
        registry = maps.REGISTRY
        listener = AclListener(term, [registry.acl_ref(name, full, read)
                                      for name, full, read in term.files],
                               lambda patterns: self._test(term, patterns, expr), test)
        cell = listener.cell

        def changing(value) -> bool:
            journal = registry.journal
            if journal is not None and journal.view[0] != journal.seen:
                journal.catch_up()
            return cell[0](value)
        return changing

    def _prefix_matcher(self, term: AclTerm) -> Callable[[Request], bool]:
        key = len(self.trie_keys)
        self.trie_keys[id(term)] = key
        trie = self.trie_ci if term.ignore_case else self.trie
        for pattern in term.patterns:
            trie.add(pattern, key)
        ci = term.ignore_case
        if term.files:
            return self._changing_prefix(term, trie, key)

        def prefix(req: Request, key=key, ci=ci) -> bool:
            # one walk per request and compiler, whatever the number of path_beg ACLs;
            # keyed by the compiler itself (an id() could be reused once it is freed)
            if req._prefix_hits is None:
                req._prefix_hits = {}
            hits = req._prefix_hits.get(self)
            if hits is None:
                hits = req._prefix_hits[self] = (self.trie.walk(req.path),
                                                 self.trie_ci.walk(req.path.lower()))
            return key in hits[1 if ci else 0]
        return prefix

    def _changing_prefix(self, term: AclTerm, trie: PrefixTrie, key: int) -> Callable:
        """path_beg with ``-f`` files: its patterns stay in the compiler's trie, which
        gets the ones added and loses the ones deleted at run time."""
        registry = maps.REGISTRY
        listener = TrieListener(term, [registry.acl_ref(name, full, read)
                                       for name, full, read in term.files], trie, key)
        ci = term.ignore_case

        def prefix(req: Request) -> bool:
            journal = registry.journal
            stamp = 0
            if journal is not None:
                if journal.view[0] != journal.seen:
                    journal.catch_up()
                stamp = journal.applied        # moves with every change applied here
            if req._prefix_hits is None:
                req._prefix_hits = {}
            # its own cache: a change made during this request (add-acl) is seen by the
            # next test, while the other path_beg tests keep their one walk
            cached = req._prefix_hits.get((self, "live"))
            if cached is None or cached[0] != stamp:
                cached = req._prefix_hits[(self, "live")] = (
                    stamp, self.trie.walk(req.path), self.trie_ci.walk(req.path.lower()))
            return key in cached[2 if ci else 1]
        prefix.listener = listener
        return prefix

    def _named(self, name: str) -> Callable[[Request], bool]:
        if name in self.acls:
            matchers = [self._term_matcher(term) for term in self.acls[name]]
            if len(matchers) == 1:
                return matchers[0]
            return lambda req: any(m(req) for m in matchers)   # same-name lines are ORed
        if name == "HTTP" and REQ_CONTENT in self.ctx.available:
            return self._term_matcher(parse_acl(["req.proto_http"]))
        if name in ("TRUE", "HTTP"):
            return lambda req: True
        if name == "FALSE":
            return lambda req: False
        if name in PREDEFINED:
            fetch_name, patterns = PREDEFINED[name]
            return self._term_matcher(parse_acl([fetch_name, *patterns]))
        raise AclError(f"no such ACL : '{name}'")

    def prefix_patterns(self, cond: Optional[Condition]) -> Optional[list[tuple[bytes, bool]]]:
        """The (pattern, ignore_case) list of a condition that is true exactly when the path
        begins with one of them (``if a || b`` over path_beg ACLs), else None."""
        if cond is None or cond.negate:
            return None
        patterns = []
        for alt in cond.alternatives:
            if len(alt) != 1 or alt[0][0]:
                return None
            term = alt[0][1]
            terms = self.acls.get(term) if isinstance(term, str) else [term]
            if not terms:
                return None                  # predefined or unknown: evaluated the slow way
            for t in terms:
                if t.kind != "path" or t.method != "beg" or t.files:
                    return None
                patterns += [(pattern, t.ignore_case) for pattern in t.patterns]
        return patterns

    def compile(self, cond: Optional[Condition]) -> Callable[[Request], bool]:
        if cond is None:
            return lambda req: True
        alternatives = []
        for alt in cond.alternatives:
            terms = []
            for negated, term in alt:
                matcher = self._named(term) if isinstance(term, str) else self._term_matcher(term)
                terms.append((negated, matcher))
            alternatives.append(terms)
        if not cond.negate and len(alternatives) == 1 and len(alternatives[0]) == 1 and \
                not alternatives[0][0][0]:
            return alternatives[0][0][1]       # "if <acl>": the matcher itself

        def evaluate(req: Request) -> bool:
            result = any(all(m(req) != neg for neg, m in alt) for alt in alternatives)
            return result != cond.negate
        return evaluate


class AclListener:
    """An ACL term using ``-f`` files, told when their entries change (MapRef.rebuild):
    its test is built again from the files' entries and the line's own patterns."""

    def __init__(self, term: AclTerm, refs: list, make: Callable, test: Callable):
        self.term, self.refs, self.make = term, refs, make
        self.cell = [test]
        for ref in refs:
            ref.listeners.append(self)

    def written(self) -> list:
        return [key for ref in self.refs for key, _ in ref.visible()] + self.term.inline

    def patterns(self) -> list:
        return convert_patterns(self.term.method, self.term.ignore_case, self.written())

    def rebuild(self) -> None:
        self.cell[0] = self.make(self.patterns())

    def check(self, key) -> None:
        if key is None:
            return
        try:
            convert_patterns(self.term.method, self.term.ignore_case, [key])
        except (AclError, ValueError) as exc:
            raise SampleError(str(exc)) from None

    def matched(self, text: str) -> Optional[str]:
        """``get acl``: the pattern (as written) that sample matches now, or None; the
        longest for path_beg (a tree), else the first."""
        value = config_bytes(text)
        if self.term.method == "int":
            try:
                value = int(text)
            except ValueError:
                return None
        hits = []
        for pattern in self.written():
            try:
                if self.single(pattern)(value):
                    hits.append(pattern)
            except (TypeError, ValueError, AclError):
                continue
        if not hits:
            return None
        return max(hits, key=len) if self.term.method == "beg" else hits[0]

    def single(self, pattern: str) -> Callable:
        return self.make(convert_patterns(self.term.method, self.term.ignore_case, [pattern]))


class TrieListener(AclListener):
    """A path_beg term with ``-f`` files: the compiler's trie is kept up to date."""

    def __init__(self, term: AclTerm, refs: list, trie: PrefixTrie, key: int):
        super().__init__(term, refs, None, None)
        self.trie, self.key = trie, key
        self.current = set(term.patterns)

    def rebuild(self) -> None:
        new = set(self.patterns())
        for pattern in self.current - new:
            self.trie.remove(pattern, self.key)
        for pattern in new - self.current:
            self.trie.add(pattern, self.key)
        self.current = new

    def single(self, pattern: str) -> Callable:
        prefix = convert_patterns("beg", self.term.ignore_case, [pattern])[0]
        if self.term.ignore_case:
            return lambda value: value.lower().startswith(prefix)
        return lambda value: value.startswith(prefix)


def _any_int_test(tests: list) -> Callable:
    """-m int on a sample whose type is known at run time only (a variable)."""
    test, text_test = _int_test(tests), _text_int_test(tests)
    return lambda value: text_test(value) if value.__class__ is bytes else test(int(value))
