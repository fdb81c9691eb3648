"""HTTP authentication against ``userlist`` sections: the ``http_auth*`` fetches.

Passwords are checked with the system's crypt(3) (libcrypt), as HAProxy does, so the
hashes of an existing userlist (``$5$``, ``$6$``, ``$y$`` ...) work unchanged.  A hash
costs milliseconds by design and the worker loop would wait for it on every request: the
last few good (user, password) pairs are remembered, so a client that keeps sending the
same credentials is checked once.
"""
from __future__ import annotations

import base64
import binascii
import ctypes
import ctypes.util
import hmac
from typing import Optional

_crypt = None
_REMEMBERED = 64


def _libcrypt():
    global _crypt
    if _crypt is None:
        lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
        lib.crypt.restype = ctypes.c_char_p
        lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        _crypt = lib.crypt
    return _crypt


def crypt_matches(password: bytes, hashed: str) -> bool:
    result = _libcrypt()(password, hashed.encode())
    return result is not None and hmac.compare_digest(result, hashed.encode())


def credentials(stream) -> Optional[tuple[str, bytes, bytes]]:
    """(scheme as written, user, password) of the request's Authorization header: Basic
    with the decoded pair, another scheme with its token as the password; None without
    one, or for a Basic one that does not decode to ``user:password`` (HAProxy then has
    no sample either)."""
    values = stream.full_header_values(b"proxy-authorization" if stream.proxy_request
                                       else b"authorization")
    if not values:
        return None
    scheme, _, token = values[-1].strip().partition(b" ")
    if scheme.lower() != b"basic":
        return scheme, b"", token.strip()
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    return scheme, user, password


class Checker:
    """Checks Basic credentials against one userlist."""

    def __init__(self, userlist):
        self.userlist = userlist
        self.good: dict = {}

    def verdict(self, stream) -> Optional[bool]:
        """True (good credentials), False (bad ones), None (no Basic credentials)."""
        found = credentials(stream)
        if found is None or found[0].lower() != b"basic":
            return None
        return self.user(stream) is not None

    def user(self, stream) -> Optional[str]:
        """The authenticated user's name, or None."""
        found = credentials(stream)
        if found is None or found[0].lower() != b"basic":
            return None
        _, user, password = found
        name = user.decode("utf-8", "surrogateescape")
        entry = self.userlist.users.get(name)
        if entry is None:
            return None
        if (name, password) in self.good:
            return name
        if entry.insecure:
            ok = hmac.compare_digest(entry.password.encode("utf-8", "surrogateescape"),
                                     password)
        else:
            ok = crypt_matches(password, entry.password)
        if ok:
            if len(self.good) >= _REMEMBERED:
                self.good.clear()
            self.good[(name, password)] = True
            return name
        return None
