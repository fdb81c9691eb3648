"""TLS defaults of the ``global`` section: where certificates live and the ciphers and
protocol options ``ssl`` binds and servers start from.

They are kept in the model (``GlobalSettings.ssl_defaults``, ``ca_base``, ``crt_base``) for
the TLS transport to apply; until it lands, a ``bind ... ssl`` or ``server ... ssl`` line is
refused, so these defaults cannot be applied to anything wrongly.
"""
from __future__ import annotations

from .registry import GLOBAL, keyword

TLS_VERSIONS = ("SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
PROTOCOL_FLAGS = tuple(f"{prefix}-{version}" for prefix in ("no", "force")
                       for version in ("sslv3", "tlsv10", "tlsv11", "tlsv12", "tlsv13"))
OPTIONS = {
    "ssl-default-bind-options": PROTOCOL_FLAGS + ("no-tls-tickets", "prefer-client-ciphers"),
    "ssl-default-server-options": PROTOCOL_FLAGS + ("no-tls-tickets",),
}


def directory(keyword_name: str):
    @keyword(keyword_name, sections=GLOBAL)
    def base(parser, g, args, origin):
        if not args:
            raise ValueError(f"global statement '{keyword_name}' expects a directory path as "
                             "an argument.")
        if len(args) > 1:
            raise ValueError(f"'{keyword_name}' cannot handle unexpected argument '{args[1]}'.")
        setattr(g, keyword_name.replace("-", "_"), args[0])
    return base


def ciphers(keyword_name: str):
    @keyword(keyword_name, sections=GLOBAL)
    def cipher_list(parser, g, args, origin):
        if not args:
            raise ValueError(f"global statement '{keyword_name}' expects a cipher suite as an "
                             "argument.")
        g.ssl_defaults[keyword_name] = args[0]
    return cipher_list


def options(keyword_name: str):
    @keyword(keyword_name, sections=GLOBAL)
    def option_list(parser, g, args, origin):
        words = list(args)
        i = 0
        while i < len(words):
            word = words[i]
            if word in ("ssl-min-ver", "ssl-max-ver"):
                if i + 1 >= len(words):
                    raise ValueError(f"'{word}' : missing the ssl/tls version on global "
                                     f"statement '{keyword_name}'.")
                if words[i + 1] not in TLS_VERSIONS:
                    raise ValueError(f"'{words[i + 1]}' : unknown ssl/tls version on global "
                                     f"statement '{keyword_name}'.")
                i += 2
            elif word in OPTIONS[keyword_name]:
                i += 1
            else:
                raise ValueError(f"unknown option '{word}' on global statement "
                                 f"'{keyword_name}'.")
        g.ssl_defaults[keyword_name] = words
    return option_list


for name in ("ca-base", "crt-base"):
    directory(name)
for name in ("ssl-default-bind-ciphers", "ssl-default-bind-ciphersuites",
             "ssl-default-bind-curves", "ssl-default-server-ciphers",
             "ssl-default-server-ciphersuites"):
    ciphers(name)
for name in OPTIONS:
    options(name)
