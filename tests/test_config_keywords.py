"""The keyword registry: its tables agree with each other, and the sections an entry lists
are the sections that accept the keyword (HAProxy's messages for the others)."""
from __future__ import annotations

import pytest

from fastlb.config.keywords.registry import (IGNORED_GLOBAL, NOT_YET_GLOBAL, NOT_YET_PROXY,
                                             PROXY_AND_DEFAULTS, WARN_WITHOUT_CAPABILITY,
                                             global_keyword, keyword, proxy_keyword,
                                             registered, spelling_key)
from fastlb.config.parser import ConfigError, Parser

SKELETON = {
    "defaults": "defaults\n    {line}\n",
    "frontend": "frontend f\n    bind 127.0.0.1:8000\n    {line}\n",
    "backend": "backend b\n    {line}\n",
    "listen": "listen l\n    bind 127.0.0.1:8001\n    {line}\n",
}


def alerts(text, warnings=None):
    parser = Parser(env={})
    parser.parse_text(text, "k.cfg")
    try:
        parser.finish()
    except ConfigError as exc:
        return exc.alerts
    finally:
        if warnings is not None:
            warnings.extend(parser.warnings)
    return []


def test_refused_and_ignored_tables_name_no_registered_keyword():
    assert not [name for name in NOT_YET_GLOBAL | set(IGNORED_GLOBAL) if global_keyword(name)]
    assert not [name for name in NOT_YET_PROXY if proxy_keyword(name)]
    assert not NOT_YET_GLOBAL & set(IGNORED_GLOBAL)


def test_registering_twice_or_for_unknown_sections_fails():
    with pytest.raises(ValueError, match="registered twice"):
        keyword("timeout", sections=PROXY_AND_DEFAULTS)(lambda *args: None)
    with pytest.raises(ValueError, match="unknown sections"):
        keyword("x-test", sections=frozenset({"peers"}))
    with pytest.raises(ValueError, match="both capabilities"):
        keyword("x-test", sections=frozenset({"backend"}))


@pytest.mark.parametrize("entry", [e for e in registered() if "global" not in e.sections],
                         ids=lambda e: e.name)
def test_sections_not_listed_refuse_the_keyword(entry):
    for kind, text in SKELETON.items():
        refusal = {
            "defaults": f"parsing [k.cfg:2] : '{entry.name}' not allowed in 'defaults' section.",
            "frontend": f"parsing [k.cfg:3] : '{entry.name}' not allowed because frontend 'f' "
                        "has no backend capability.",
            "backend": f"parsing [k.cfg:2] : '{entry.name}' not allowed because backend 'b' "
                       "has no frontend capability.",
        }.get(kind)
        warned = []
        found = alerts(text.format(line=entry.name), warned)
        if kind in entry.sections:
            assert refusal not in found, (kind, found)
        elif kind != "defaults" and entry.name in WARN_WITHOUT_CAPABILITY:
            # HAProxy only warns about these (its warnifnotcap)
            ignored = refusal.replace("not allowed", "ignored")
            assert refusal not in found and ignored in warned, (kind, found, warned)
        else:
            assert refusal in found, (kind, found)


def test_other_spelling_works_in_proxies_but_not_in_defaults():
    assert spelling_key("hash-type") == spelling_key("hash_type")
    assert alerts("backend b\n    hash_type consistent\n    server s 127.0.0.1:1\n") == []
    assert alerts("defaults\n    hash_type consistent\n")[0] == \
        "parsing [k.cfg:2] : 'hash_type' not allowed in 'defaults' section."
    warned = []
    assert alerts("frontend f\n    bind :1\n    hash_type consistent\n", warned) == []
    assert warned[0] == ("parsing [k.cfg:3] : 'hash-type' ignored because frontend 'f' has no "
                          "backend capability.")


def test_global_only_keywords_are_unknown_in_proxies_and_back():
    assert alerts("frontend f\n    bind :1\n    daemon\n")[0] == \
        "parsing [k.cfg:3] : unknown keyword 'daemon' in 'frontend' section"
    assert alerts("global\n    bind :1\n")[0] == \
        "parsing [k.cfg:2] : unknown keyword 'bind' in 'global' section; " \
        "did you mean 'unix-bind' maybe ?"                  # as haproxy 2.6 says
