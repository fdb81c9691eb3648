"""Map files (``map_*`` converters) and their lookups.

A map file holds one ``<key> <value>`` per line (``#`` comments, blank lines skipped);
the value is the rest of the line.  Lookups follow HAProxy's: ``str``, ``beg`` and
``ip`` are indexed (exact key; longest prefix or network), the other match methods try the keys in file order
and the first match wins.  Each file is read once at start-up, shared by every converter
that names it with the same match method.
"""
from __future__ import annotations

import ipaddress
import os
import re
from typing import Optional

from .registry import SampleError
from .types import str_to_int

MAP_MATCHES = ("str", "beg", "sub", "dir", "dom", "end", "reg", "regm", "int", "ip")


def delimited(value: bytes, pattern: bytes, delimiters: bytes) -> bool:
    """HAProxy's dir / dom matching: ``pattern`` stands between delimiters (or at the
    ends of ``value``); shared by map lookups and ACLs."""
    start = value.find(pattern)
    while start >= 0:
        end = start + len(pattern)
        if (start == 0 or value[start - 1] in delimiters) and \
                (end == len(value) or value[end] in delimiters):
            return True
        start = value.find(pattern, start + 1)
    return False


class MapTable:
    def __init__(self, path: str, match: str, output: str, entries: list):
        self.path, self.match, self.output = path, match, output
        self.entries = []                      # [(key, typed value)] in file order
        self.exact: dict = {}
        self.networks: list = []
        for key, value in entries:
            typed = self.typed(value)
            if match == "str":
                self.exact.setdefault(key.encode("utf-8", "surrogateescape"), typed)
            elif match == "ip":
                try:
                    network = ipaddress.ip_network(key, strict=False)
                except ValueError:
                    raise SampleError(f"'{path}': '{key}' is not a valid IPv4 or IPv6 "
                                      "address") from None
                self.networks.append((network, typed))
            elif match in ("reg", "regm"):
                try:
                    self.entries.append((re.compile(key.encode("utf-8", "surrogateescape")),
                                         typed))
                except re.error as exc:
                    raise SampleError(f"'{path}': invalid regex '{key}' ({exc})") from None
            elif match == "int":
                self.entries.append((int(key), typed))
            else:
                self.entries.append((key.encode("utf-8", "surrogateescape"), typed))
        # the longest network (prefix) first: the first match is the best one, as in
        # HAProxy's prefix trees
        self.networks.sort(key=lambda item: -item[0].prefixlen)
        if match == "beg":
            self.entries.sort(key=lambda item: -len(item[0]))

    def typed(self, value: str):
        if self.output == "int":
            number = str_to_int(value.encode())
            if number is None:
                raise SampleError(f"'{self.path}': '{value}' is not an integer")
            return number
        if self.output == "ip":
            try:
                return ipaddress.ip_address(value)
            except ValueError:
                raise SampleError(f"'{self.path}': '{value}' is not an address") from None
        return value.encode("utf-8", "surrogateescape")

    def lookup(self, sample) -> Optional[object]:
        match = self.match
        if match == "str":
            return self.exact.get(sample)
        if match == "ip":
            for network, value in self.networks:
                if sample.version == network.version and sample in network:
                    return value
            return None
        for key, value in self.entries:
            if match == "beg":
                hit = sample.startswith(key)
            elif match == "end":
                hit = sample.endswith(key)
            elif match == "sub":
                hit = key in sample
            elif match == "dir":
                hit = delimited(sample, key, b"/")
            elif match == "dom":
                hit = delimited(sample, key, b"/?.:")
            elif match in ("reg", "regm"):
                hit = key.search(sample) is not None
            else:                                  # int
                hit = sample == key
            if hit:
                return value
        return None


_LOADED: dict = {}


def read_map_file(path: str) -> list[tuple[str, str]]:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        raise SampleError(f"failed to open map file <{path}> : {exc.strerror}") from None
    entries = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        entries.append((parts[0], parts[1].strip() if len(parts) > 1 else ""))
    return entries


def load_map(path: str, match: str, output: str, base_dir: str = ".") -> MapTable:
    full = path if os.path.isabs(path) else os.path.join(base_dir, path)
    key = (os.path.abspath(full), match, output)
    table = _LOADED.get(key)
    if table is None:
        table = _LOADED[key] = MapTable(path, match, output, read_map_file(full))
    return table
