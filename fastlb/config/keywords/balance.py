"""How a backend picks a server: ``balance``, ``hash-type`` and ``cookie`` persistence."""
from __future__ import annotations

from ..model import CookieSettings
from ..units import parse_time_s
from ...lb.algorithms import parse_balance, rdp_cookie_name
from ...sample import Context, SampleError, check_expr
from .arguments import one_arg
from .registry import BACKENDS, DEFAULTS, PROXY_AND_DEFAULTS, keyword


@keyword("balance", sections=BACKENDS | DEFAULTS)
def balance(parser, proxy, args, origin):
    """The algorithms and their arguments are lb/algorithms.py's registry."""
    one_arg(args, "balance", allow_more=True)
    proxy.balance, proxy.balance_args = parse_balance(args)
    proxy.balance_set = True
    if proxy.balance == "hash":
        try:
            check_expr(proxy.balance_args["expr"], Context("balance"))
        except SampleError as exc:
            raise ValueError(f"'balance hash' : {exc}") from None


@keyword("persist", sections=PROXY_AND_DEFAULTS)
def persist(parser, proxy, args, origin):
    """``persist rdp-cookie[(<name>)]``: a TCP client whose RDP cookie (``msts`` unless
    named) encodes a server's IPv4 address and port goes to that server.  (HAProxy takes
    it in a frontend too, where it does nothing, and checks extra words only after a
    name in parentheses.)"""
    if not args:
        raise ValueError("missing persist method.")
    if not args[0].startswith("rdp-cookie"):
        raise ValueError("unknown persist method.")
    if args[0][10:11] == "(" and len(args) > 1:
        raise ValueError(f"'persist' cannot handle unexpected argument '{args[1]}'.")
    name = rdp_cookie_name(args[0][10:], "msts")
    if name is None:
        raise ValueError("persist rdp-cookie(name)' requires an rdp cookie name.")
    proxy.rdp_persist = name


@keyword("hash-balance-factor", sections=PROXY_AND_DEFAULTS)
def hash_balance_factor(parser, proxy, args, origin):
    """Bounded loads for consistent hashing (and random): no server above <factor>
    percent of the mean load, by weight.  (HAProxy takes it in a frontend too, where it
    does nothing.)"""
    text = one_arg(args, "hash-balance-factor", allow_more=True)
    if not text.isdigit():
        raise ValueError("'hash-balance-factor' expects an integer argument.")
    factor = int(text)
    if factor != 0 and factor <= 100:
        raise ValueError("'hash-balance-factor' must be 0 or greater than 100.")
    proxy.hash_balance_factor = factor


@keyword("hash-type", sections=BACKENDS | DEFAULTS)
def hash_type(parser, proxy, args, origin):
    if not args or args[0] not in ("map-based", "consistent"):
        raise ValueError("'hash-type' only supports 'consistent' and 'map-based'.")
    proxy.hash_type = args[0]
    rest = args[1:]
    # HAProxy keeps its old behaviour when no function is named: consistent hashing
    # then applies the avalanche modifier, map-based does not.
    proxy.hash_avalanche = args[0] == "consistent" and not rest
    if rest and rest[0] in ("sdbm", "djb2", "wt6", "crc32"):
        if rest[0] != "sdbm":
            raise ValueError(f"hash function '{rest[0]}' is not supported by fastlb yet "
                             "(sdbm only).")
        rest = rest[1:]
    if rest == ["avalanche"]:
        proxy.hash_avalanche = True
    elif rest:
        raise ValueError(f"'hash-type' : unknown modifier '{rest[0]}'.")


def _domain_error(domain: str):
    """The first character HAProxy refuses in a cookie domain (alnum, '.', '_', '-' only)."""
    for char in domain:
        if not (char.isascii() and char.isalnum()) and char not in "._-":
            return char
    return None


@keyword("cookie", sections=BACKENDS | DEFAULTS)
def cookie(parser, proxy, args, origin):
    if not args:
        raise ValueError("'cookie' expects <cookie_name> as argument.")
    if any(char in args[0] for char in "\r\n\0"):
        raise ValueError("'cookie' : the cookie name may not hold CR, LF or NUL "
                         "(it is written in Set-Cookie).")
    settings = CookieSettings(name=args[0])
    modes = []
    i = 1
    while i < len(args):
        word = args[i]
        value = args[i + 1] if i + 1 < len(args) else ""
        if word in ("insert", "rewrite", "prefix"):
            modes.append(word)
            settings.mode = word
        elif word in ("indirect", "nocache", "postonly", "preserve", "httponly", "secure",
                      "dynamic"):
            setattr(settings, word, True)
        elif word == "domain":
            if not value:
                raise ValueError("'domain' expects <domain> as argument.")
            if "." not in value:
                parser.warn(origin, f"domain '{value}' contains no embedded dot, this "
                            "configuration may not work properly (see RFC6265#5.2.3).")
            bad = _domain_error(value)
            if bad is not None:
                raise ValueError(f"character '{bad}' is not permitted in domain name "
                                 f"'{value}'.")
            settings.domains.append(value)
            i += 1
        elif word in ("maxidle", "maxlife"):
            if not value:
                what = "<idletime>" if word == "maxidle" else "<lifetime>"
                raise ValueError(f"'{word}' expects {what} in seconds as argument.")
            setattr(settings, word, parse_time_s(value))
            i += 1
        elif word == "attr":
            if not value:
                raise ValueError("'attr' expects <value> as argument.")
            for char in value:    # control characters (CR, LF, NUL...) and ';' never
                if ord(char) < 32 or ord(char) == 127 or char == ";":
                    raise ValueError(f"character '%x{ord(char):02X}' is not permitted in "
                                     "attribute value.")
            settings.attrs.append(value)
            i += 1
        else:
            raise ValueError("'cookie' supports 'rewrite', 'insert', 'prefix', 'indirect', "
                             "'nocache', 'postonly', 'domain', 'maxidle', 'dynamic', "
                             "'maxlife' and 'attr' options.")
        i += 1
    if "rewrite" in modes and settings.indirect:
        raise ValueError("cookie 'rewrite' and 'indirect' modes are incompatible.")
    if len(modes) > 1:
        raise ValueError("'cookie' supports only one of 'rewrite', 'insert' or 'prefix' "
                         "options.")
    # postonly only matters to insert, as in HAProxy; preserve also keeps the server's
    # cookie that indirect would drop
    if settings.preserve and settings.mode != "insert" and not settings.indirect:
        raise ValueError("cookie 'preserve' requires at least 'insert' or 'indirect'.")
    proxy.cookie = settings


@keyword("dynamic-cookie-key", sections=BACKENDS | DEFAULTS)
def dynamic_cookie_key(parser, proxy, args, origin):
    """The secret that ``cookie ... dynamic`` hashes with each server's address and port."""
    if not args:
        raise ValueError("'dynamic-cookie-key' expects <key> as argument.")
    proxy.dynamic_cookie_key = args[0]
