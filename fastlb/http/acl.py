"""ACLs and conditions: ``acl`` lines and ``if|unless`` conditions -> per-request matchers.

Parsing (config time) builds ``AclTerm`` objects; ``ConditionCompiler`` then turns a
frontend's conditions into closures over a ``Request`` view, which call each fetch's
reader directly.  Samples are bytes, as they came on the wire (``url_param`` is not
percent-decoded, as in HAProxy); patterns are encoded once at parse time, so matching
never decodes.  Every ``path_beg`` pattern of a frontend goes into one prefix trie, so a
thousand prefixes cost one walk of the path per request, whatever the number of ACLs.

A fetch is one entry in the registry below (``@fetch``): its keywords, its argument, how
its samples match, and the function that reads them from the request.
"""
from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Callable, Optional

MATCH_METHODS = ("str", "beg", "end", "sub", "reg", "dir", "dom", "found", "len", "int", "ip")
# the keywords a text fetch also answers to as <keyword>_<method>: path_beg, hdr_len ...
TEXT_VARIANTS = ("beg", "end", "sub", "reg", "dir", "dom", "len")
TEXT, INT, IP = "str", "int", "ip"          # what samples are: also the default method
NO_ARGUMENT, OPTIONAL, REQUIRED = "none", "optional", "required"


@dataclass(frozen=True)
class Fetch:
    """One sample fetch.

    ``read(request)`` returns the sample (a list of them when ``many``).  A fetch that
    takes an argument registers ``read(argument, compiler)`` instead, called once per
    ACL at config time, which returns that reader.  ``matches``: TEXT samples (bytes)
    take every ``-m`` method; INT and IP samples are matched as integers or against
    networks whatever ``-m`` says (accepted and not used, as it always was).  A fetch
    without an argument ignores one given to it."""
    kind: str                  # AclTerm.kind
    read: Callable
    argument: str = NO_ARGUMENT
    matches: str = TEXT
    many: bool = False


FETCHES: dict[str, tuple] = {}   # keyword -> (Fetch, default match method)


def fetch(*keywords: str, kind: str = "", argument: str = NO_ARGUMENT, matches: str = TEXT,
          many: bool = False, variants: tuple = ()):
    """Register the decorated reader under ``keywords``, and under ``<first>_<variant>``
    for each variant (a text match method, the variant's default)."""
    def register(read):
        entry = Fetch(kind or keywords[0], read, argument, matches, many)
        for keyword in keywords:
            FETCHES[keyword] = (entry, matches)
        for variant in variants:
            FETCHES[f"{keywords[0]}_{variant}"] = (entry, variant)
        return read
    return register


@fetch("path", variants=TEXT_VARIANTS)
def fetch_path(req: "Request") -> bytes:
    return req.path


@fetch("url", variants=TEXT_VARIANTS)
def fetch_url(req: "Request") -> bytes:
    return req.url


@fetch("method")
def fetch_method(req: "Request") -> bytes:
    return req.method


@fetch("req.ver", "req_ver", kind="version")
def fetch_version(req: "Request") -> bytes:
    return req.version


@fetch("src", matches=IP)
def fetch_src(req: "Request") -> str:
    return req.src


@fetch("dst_port", matches=INT)
def fetch_dst_port(req: "Request") -> int:
    return req.dst_port


@fetch("url_param", argument=REQUIRED, many=True)
def fetch_url_param(name: Optional[str], compiler) -> Callable:
    return lambda req: req.url_param(name)


# "urlp" without a name has always been accepted (and matches nothing): kept so
fetch("urlp", kind="url_param", argument=OPTIONAL, many=True)(fetch_url_param)


@fetch("hdr", "req.hdr", argument=OPTIONAL, many=True, variants=TEXT_VARIANTS)
def fetch_hdr(name: Optional[str], compiler) -> Callable:
    """A header's values split at commas; without a name, every header's whole value."""
    if name:
        return lambda req: req.header_values(name)
    return lambda req: [v for _, v in req.headers]


@fetch("hdr_cnt", "req.hdr_cnt", argument=REQUIRED, matches=INT)
def fetch_hdr_cnt(name: str, compiler) -> Callable:
    return lambda req: len(req.header_values(name))


@fetch("hdr_val", argument=REQUIRED, matches=INT, many=True)
def fetch_hdr_val(name: str, compiler) -> Callable:
    """The header's values that are integers."""
    def read(req: "Request") -> list:
        values = []
        for v in req.header_values(name):
            try:
                values.append(int(v))
            except ValueError:
                pass
        return values
    return read


@fetch("nbsrv", argument=REQUIRED, matches=INT)
def fetch_nbsrv(backend: str, compiler) -> Callable:
    """The usable servers of a backend, from the run-time state (see ConditionCompiler)."""
    count = compiler.nbsrv(backend)
    return lambda req: count()


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
}


class AclError(ValueError):
    pass


@dataclass
class AclTerm:
    """One ``acl`` line (or one anonymous ``{ ... }`` block)."""
    fetch: str
    kind: str
    arg: Optional[str]
    method: str
    patterns: list
    ignore_case: bool = False
    source: Optional[Fetch] = None     # the registry entry that reads its samples


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
    name, arg = criterion, None
    match = re.fullmatch(r"([a-z_.]+)\((.*)\)", criterion)
    if match:
        name, arg = match.group(1), match.group(2)
    if name not in FETCHES:
        raise AclError(f"unknown fetch method '{criterion}' in ACL expression '{criterion}'.")
    source, method = FETCHES[name]
    if source.argument == REQUIRED and not arg:
        raise AclError(f"fetch method '{name}' : missing arguments (got 0/1).")
    ignore_case = False
    patterns: list = []
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
            patterns += _read_pattern_file(rest.pop(0), base_dir)
        elif flag == "-n":
            pass
        else:
            raise AclError(f"unknown ACL flag '{flag}'.")
    patterns += rest
    if source.matches == INT or method in ("int", "len"):
        patterns = _int_patterns(patterns)
    elif method == "ip" or source.matches == IP:
        patterns = _ip_patterns(patterns)
    elif method == "reg":
        flags = re.IGNORECASE if ignore_case else 0
        try:
            patterns = [re.compile(config_bytes(p), flags) for p in patterns]
        except re.error as exc:
            raise AclError(f"invalid regex: {exc}") from None
    else:
        patterns = [config_bytes(p).lower() if ignore_case else config_bytes(p)
                    for p in patterns]
    if not patterns and method not in ("found",):
        raise AclError(f"missing pattern for ACL criterion '{criterion}'.")
    return AclTerm(fetch=criterion, kind=source.kind, arg=arg, method=method,
                   patterns=patterns, ignore_case=ignore_case, source=source)


def config_bytes(text: str) -> bytes:
    """A string from the configuration as the bytes it was written with."""
    return text.encode("utf-8", "surrogateescape")


def _read_pattern_file(path: str, base_dir: str) -> list[str]:
    import os
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
class Request:
    """Lazy view of one request for ACL evaluation: every sample is bytes."""
    __slots__ = ("method", "url", "headers", "src", "dst_port", "version", "_path",
                 "_prefix_hits")

    def __init__(self, method: bytes, url: bytes, headers: list, src: str, dst_port: int,
                 version: bytes):
        self.method = method
        self.url = url
        self.headers = headers
        self.src = src
        self.dst_port = dst_port
        self.version = version
        self._path = None
        self._prefix_hits = None

    @property
    def path(self) -> bytes:
        if self._path is None:
            url = self.url
            scheme_end = url.find(b"://")
            if not url.startswith(b"/") and scheme_end >= 0:
                # absolute form: the path starts at the first "/" after the authority
                slash = url.find(b"/", scheme_end + 3)
                url = url[slash:] if slash >= 0 else b""
            self._path = url.split(b"?", 1)[0]
        return self._path

    def header_values(self, name) -> list:
        """All values of a header, split at commas (HAProxy's hdr())."""
        wanted = name.lower().encode("latin-1") if isinstance(name, str) else name.lower()
        values = []
        for key, value in self.headers:
            if key == wanted:
                values += [v.strip(b" \t") for v in value.split(b",")]
        return values

    def full_header_values(self, name) -> list:
        wanted = name.lower().encode("latin-1") if isinstance(name, str) else name.lower()
        return [v for k, v in self.headers if k == wanted]

    def url_param(self, name) -> list:
        """Values of a query parameter, raw (HAProxy's url_param does not decode them)."""
        wanted = name.encode("latin-1") if isinstance(name, str) else name
        query = self.url.split(b"?", 1)[1] if b"?" in self.url else b""
        out = []
        for part in query.split(b"&"):
            key, sep, value = part.partition(b"=")
            if key == wanted and sep:
                out.append(value)
        return out


class PrefixTrie:
    """All path_beg patterns of a frontend; one walk of the path finds every match."""

    def __init__(self):
        self.root: dict = {}

    def add(self, pattern: bytes, key: int) -> None:
        node = self.root
        for char in pattern:
            node = node.setdefault(char, {})
        node.setdefault(None, set()).add(key)

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


def _delimited(value: bytes, pattern: bytes, delimiters: bytes) -> bool:
    """HAProxy's -m dir / -m dom: pattern stands between delimiters (or at the ends)."""
    start = value.find(pattern)
    while start >= 0:
        end = start + len(pattern)
        before = start == 0 or value[start - 1] in delimiters
        after = end == len(value) or value[end] in delimiters
        if before and after:
            return True
        start = value.find(pattern, start + 1)
    return False


# text match method -> (patterns -> test(sample) -> bool); found, int and ip are not tests
# of one text sample (see ConditionCompiler._term_matcher)
TEXT_TESTS = {
    "str": lambda patterns: frozenset(patterns).__contains__,
    "beg": lambda patterns: functools.partial(_starts, prefixes=tuple(patterns)),
    "end": lambda patterns: functools.partial(_ends, suffixes=tuple(patterns)),
    "sub": lambda patterns: lambda value: any(p in value for p in patterns),
    "reg": lambda patterns: lambda value: any(p.search(value) for p in patterns),
    "dir": lambda patterns: lambda value: any(_delimited(value, p, b"/") for p in patterns),
    "dom": lambda patterns: lambda value: any(_delimited(value, p, b"/?.:") for p in patterns),
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


def _over_samples(read: Callable, test: Callable, many: bool) -> Callable[["Request"], bool]:
    if many:
        return lambda req: any(map(test, read(req)))
    return lambda req: test(read(req))


class ConditionCompiler:
    """Compiles the conditions of one frontend (with its ACLs) into callables."""

    def __init__(self, acls: dict[str, list[AclTerm]], nbsrv=None):
        self.acls = acls
        self.nbsrv = nbsrv          # backend name -> (() -> usable servers), at run time
        self.trie = PrefixTrie()
        self.trie_keys: dict[int, int] = {}   # id(term) -> trie key
        self.trie_ci = PrefixTrie()

    def _term_matcher(self, term: AclTerm) -> Callable[[Request], bool]:
        source, method = term.source, term.method
        if source.kind == "path" and method == "beg":
            return self._prefix_matcher(term)
        read = source.read if source.argument == NO_ARGUMENT else source.read(term.arg, self)
        if source.matches == IP or method == "ip":
            test = functools.partial(_ip_in, nets=term.patterns)
        elif source.matches == INT:
            test = _int_test(term.patterns)
        elif method == "int":
            test = _text_int_test(term.patterns)
        elif method == "found":
            if source.many:
                return lambda req: bool(read(req))
            return lambda req: True
        else:
            test = TEXT_TESTS[method](term.patterns)
            if term.ignore_case and method != "reg":    # -i patterns are lower case already
                test = _lowered(test)
        return _over_samples(read, test, source.many)

    def _prefix_matcher(self, term: AclTerm) -> Callable[[Request], bool]:
        key = len(self.trie_keys)
        self.trie_keys[id(term)] = key
        trie = self.trie_ci if term.ignore_case else self.trie
        for pattern in term.patterns:
            trie.add(pattern, key)
        ci = term.ignore_case

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

    def _named(self, name: str) -> Callable[[Request], bool]:
        if name in self.acls:
            matchers = [self._term_matcher(term) for term in self.acls[name]]
            if len(matchers) == 1:
                return matchers[0]
            return lambda req: any(m(req) for m in matchers)   # same-name lines are ORed
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
                if t.kind != "path" or t.method != "beg":
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


def _ip_in(text, nets: list) -> bool:
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address.version == net.version and address in net for net in nets)
