"""How a backend picks a server: ``balance``, ``hash-type`` and ``cookie`` persistence."""
from __future__ import annotations

from ..model import CookieSettings
from ..units import parse_time_ms
from ...lb.algorithms import parse_balance
from .arguments import one_arg
from .registry import BACKENDS, DEFAULTS, keyword


@keyword("balance", sections=BACKENDS | DEFAULTS)
def balance(parser, proxy, args, origin):
    """The algorithms and their arguments are lb/algorithms.py's registry."""
    one_arg(args, "balance", allow_more=True)
    proxy.balance, proxy.balance_args = parse_balance(args)


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


@keyword("cookie", sections=BACKENDS | DEFAULTS)
def cookie(parser, proxy, args, origin):
    if not args:
        raise ValueError("'cookie' expects <cookie_name> as argument.")
    settings = CookieSettings(name=args[0])
    modes = []
    i = 1
    while i < len(args):
        word = args[i]
        if word in ("insert", "rewrite", "prefix"):
            modes.append(word)
            settings.mode = word
        elif word in ("indirect", "nocache", "postonly", "preserve", "httponly", "secure"):
            setattr(settings, word, True)
        elif word == "domain":
            if i + 1 >= len(args):
                raise ValueError("'domain' requires an argument.")
            settings.domains.append(args[i + 1])
            i += 1
        elif word in ("maxidle", "maxlife"):
            if i + 1 >= len(args):
                raise ValueError(f"'{word}' requires an argument.")
            setattr(settings, word, max(1, parse_time_ms(args[i + 1]) // 1000))
            i += 1
        elif word in ("dynamic", "attr"):
            raise ValueError(f"'cookie ... {word}' is not supported by fastlb yet.")
        else:
            raise ValueError("'cookie' supports 'rewrite', 'insert', 'prefix', 'indirect', "
                             "'nocache', 'postonly', 'domain', 'maxidle', 'maxlife', "
                             "'dynamic' and 'attr' options.")
        i += 1
    if len(modes) > 1:
        raise ValueError("'cookie' supports only one of 'rewrite', 'insert' or 'prefix' "
                         "options.")
    if (settings.maxidle or settings.maxlife) and settings.mode != "insert":
        raise ValueError("'cookie' maxidle and maxlife only work in 'insert' mode.")
    if settings.maxidle or settings.maxlife:
        raise ValueError("'cookie ... maxidle|maxlife' is not supported by fastlb yet.")
    if (settings.postonly or settings.preserve) and settings.mode != "insert":
        raise ValueError("'cookie' postonly and preserve only work in 'insert' mode.")
    proxy.cookie = settings
