"""The balance algorithms, one entry each (HAProxy's lb_ops): how the loop picks
(strategy.pxd's PICK_*), what it hashes (KEY_*), how the usable servers are laid out
(TABLE_*), and the arguments ``balance <name> ...`` takes.

Adding an algorithm is one ``register(Algorithm(...))`` here when it combines existing
strategies; a new pick is also one inline function in a ``.pxd`` of this folder and one
case in loop/assign.pxi's ``balance()``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .strategy import (KEY_EXPR, KEY_HDR, KEY_NONE, KEY_SOURCE, KEY_URI, KEY_URL_PARAM, PICK_FIRST,
                       PICK_LEASTCONN, PICK_RANDOM, PICK_SEQUENCE, TABLE_ELIGIBLE, TABLE_MAP,
                       TABLE_ROUNDROBIN)


def no_arguments(name: str, extra: list) -> dict:
    """HAProxy reads no words after these algorithms, and ignores any there."""
    return {}


@dataclass(frozen=True)
class Algorithm:
    name: str
    pick: int
    table: int
    key: int = KEY_NONE
    # the servers' current sessions must be in the shared totals for the pick to read them
    shared_counts: bool = False
    # parse(name, words after the name) -> options; raises ValueError with HAProxy's message
    parse: Callable[[str, list], dict] = field(default=no_arguments, compare=False)

    @property
    def hashed(self) -> bool:
        return self.key != KEY_NONE


ALGORITHMS: dict[str, Algorithm] = {}


def register(algorithm: Algorithm) -> Algorithm:
    ALGORITHMS[algorithm.name] = algorithm
    return algorithm


def uri_arguments(name: str, extra: list) -> dict:
    options = dict(len=0, depth=0, whole=False, path_only=False)
    i = 0
    while i < len(extra):
        word = extra[i]
        if word in ("len", "depth"):
            if i + 1 >= len(extra) or not extra[i + 1].isdigit() or int(extra[i + 1]) < 1:
                raise ValueError(f"balance uri : '{word}' expects a positive integer "
                                 f"(got '{extra[i + 1] if i + 1 < len(extra) else ''}').")
            options[word] = int(extra[i + 1])
            i += 2
        elif word in ("whole", "path-only"):
            options[word.replace("-", "_")] = True
            i += 1
        else:
            raise ValueError("balance uri only accepts parameters 'len', 'depth', "
                             f"'path-only', and 'whole' (got '{word}').")
    return options


def hash_arguments(name: str, extra: list) -> dict:
    """``balance hash <expr>``: the expression is checked by the config keyword."""
    if not extra:
        raise ValueError("balance hash requires a sample expression.")
    if len(extra) > 1:
        raise ValueError(f"balance hash takes no other argument (got '{extra[1]}').")
    return {"expr": extra[0]}


def url_param_arguments(name: str, extra: list) -> dict:
    if not extra:
        raise ValueError("balance url_param requires an URL parameter name.")
    # check_post is accepted and changes nothing, as in HAProxy 2.6: a POST's body is read
    # whenever the query string lacks the parameter (loop/assign.pxi's post_param)
    if len(extra) > 1 and extra[1] != "check_post":
        raise ValueError("balance url_param only accepts 'check_post' modifier "
                         f"(got '{extra[1]}').")
    return {"param": extra[0]}


register(Algorithm("roundrobin", PICK_SEQUENCE, TABLE_ROUNDROBIN))
register(Algorithm("static-rr", PICK_SEQUENCE, TABLE_MAP))
register(Algorithm("leastconn", PICK_LEASTCONN, TABLE_ELIGIBLE, shared_counts=True))
register(Algorithm("first", PICK_FIRST, TABLE_ELIGIBLE))
# random(<draws>) and hdr(<name>) carry their argument in the name: see parse_balance()
register(Algorithm("random", PICK_RANDOM, TABLE_MAP, shared_counts=True))
# a hash falls back to walking the map when its key is missing
register(Algorithm("source", PICK_SEQUENCE, TABLE_MAP, key=KEY_SOURCE))
register(Algorithm("uri", PICK_SEQUENCE, TABLE_MAP, key=KEY_URI, parse=uri_arguments))
register(Algorithm("url_param", PICK_SEQUENCE, TABLE_MAP, key=KEY_URL_PARAM,
                   parse=url_param_arguments))
register(Algorithm("hdr", PICK_SEQUENCE, TABLE_MAP, key=KEY_HDR))
register(Algorithm("hash", PICK_SEQUENCE, TABLE_MAP, key=KEY_EXPR, parse=hash_arguments))
# the RDP cookie of the client's first bytes (TCP), hashed as a 'balance hash' sample
register(Algorithm("rdp-cookie", PICK_SEQUENCE, TABLE_MAP, key=KEY_EXPR))


def rdp_cookie_name(tail: str, default: str):
    """The cookie of ``rdp-cookie``/``rdp-cookie(<name>)`` from what follows the word
    (HAProxy ignores anything after the closing parenthesis), or None when malformed."""
    if not tail:
        return default
    end = tail.find(")")
    if not tail.startswith("(") or end < 2:
        return None
    return tail[1:end]


def parse_balance(words: list) -> tuple[str, dict]:
    """``balance`` arguments -> (algorithm name, options), HAProxy's messages on error."""
    name, extra = words[0], words[1:]
    options: dict = {}
    if name.startswith("hdr(") and name.endswith(")") and len(name) > 5:
        options["header"] = name[4:-1].lower()
        if extra[:1] == ["use_domain_only"]:
            options["domain_only"] = True      # (HAProxy reads no further word)
        elif extra:
            raise ValueError(f"balance {name} only accepts 'use_domain_only' modifier "
                             f"(got '{extra[0]}').")
        name, extra = "hdr", []
    elif name == "hdr()":
        raise ValueError("balance hdr requires an http header field name.")
    elif name == "random()":
        name = "random"               # the default number of draws
    elif name.startswith("random(") and name.endswith(")"):
        draws = name[7:-1]
        digits = draws[1:] if draws[:1] in ("+", "-") else draws
        if not digits.isdigit():
            bad = digits.lstrip("0123456789")[:1]
            raise ValueError(f"balance random : unexpected character '{bad}' after argument.")
        if int(draws) < 1:
            raise ValueError("balance random : number of draws must be at least 1.")
        options["draws"] = int(draws)
        name = "random"
    elif name.startswith("rdp-cookie"):
        options["cookie"] = rdp_cookie_name(name[10:], "mstshash")
        if options["cookie"] is None:
            raise ValueError("balance rdp-cookie : missing cookie name.")
        name, extra = "rdp-cookie", []    # HAProxy reads nothing after it
    elif name not in ALGORITHMS or name == "hdr":      # hdr takes its name in parentheses
        raise ValueError("balance only supports 'roundrobin', 'static-rr', 'leastconn', "
                         "'source', 'uri', 'url_param', 'hdr(name)' and 'rdp-cookie(name)' "
                         "options.")
    if name == "random":
        options.setdefault("draws", 2)
    options.update(ALGORITHMS[name].parse(name, extra))
    return name, options
