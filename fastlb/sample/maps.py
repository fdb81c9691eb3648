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
import mmap
import re
import struct
import time
from typing import Optional

from .registry import SampleError
from .types import str_to_int
from ..shm.words import shm_add, shm_load, shm_store

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
    """One map file indexed for one match method and output type (one per converter kind
    naming the file); ``ref`` is the file's MapRef, whose entries it is built from again
    when they change at run time."""

    def __init__(self, path: str, match: str, output: str, entries: list, ref=None):
        self.path, self.match, self.output = path, match, output
        self.ref = ref
        self.build(entries)

    def build(self, entries: list) -> None:
        """Index ``[(key, value)]`` (text, in file order); raises SampleError on a key or
        value this method or output cannot take."""
        match, path = self.match, self.path
        built = []                             # [(key, typed value, key text)] in order
        exact: dict = {}
        networks: list = []
        for key, value in entries:
            typed = self.typed(value)
            if match == "str":
                exact.setdefault(key.encode("utf-8", "surrogateescape"), typed)
            elif match == "ip":
                networks.append((self.network(key), typed, key))
            elif match in ("reg", "regm"):
                try:
                    built.append((re.compile(key.encode("utf-8", "surrogateescape")),
                                  typed, key))
                except re.error as exc:
                    raise SampleError(f"'{path}': invalid regex '{key}' ({exc})") from None
            elif match == "int":
                try:
                    built.append((int(key), typed, key))
                except ValueError:
                    raise SampleError(f"'{path}': '{key}' is not an integer") from None
            else:
                built.append((key.encode("utf-8", "surrogateescape"), typed, key))
        # the longest network (prefix) first: the first match is the best one, as in
        # HAProxy's prefix trees
        networks.sort(key=lambda item: -item[0].prefixlen)
        if match == "beg":
            built.sort(key=lambda item: -len(item[0]))
        self.entries, self.exact, self.networks = built, exact, networks

    def network(self, key: str):
        try:
            return ipaddress.ip_network(key, strict=False)
        except ValueError:
            raise SampleError(f"'{self.path}': '{key}' is not a valid IPv4 or IPv6 "
                              "address") from None

    def check(self, key: Optional[str], value: Optional[str]) -> None:
        """SampleError if this table could not take that key / value."""
        if value is not None:
            self.typed(value)
        if key is None:
            return
        if self.match == "ip":
            self.network(key)
        elif self.match == "int":
            try:
                int(key)
            except ValueError:
                raise SampleError(f"'{key}' is not an integer") from None
        elif self.match in ("reg", "regm"):
            try:
                re.compile(key.encode("utf-8", "surrogateescape"))
            except re.error as exc:
                raise SampleError(f"invalid regex '{key}' ({exc})") from None

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
        journal = self.ref.journal if self.ref is not None else None
        if journal is not None and journal.view[0] != journal.seen:
            journal.catch_up()                 # a change made at run time, in any process
        match = self.match
        if match == "str":
            return self.exact.get(sample)
        if match == "ip":
            for network, value, _ in self.networks:
                if sample.version == network.version and sample in network:
                    return value
            return None
        for key, value, _ in self.entries:
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
    """The table of ``path`` for that match method and output, in the registry of the
    configuration being compiled (one MapRef per file, one table per method/output)."""
    return REGISTRY.table(path, match, output, base_dir)


def find(table: MapTable, sample):
    """``get map``: (key text, value text) of the entry the sample matches, or None
    (the slow way: the keys in order, as lookup() finds them)."""
    match = table.match
    if match == "str":
        for key, value in table.ref.visible():
            if key.encode("utf-8", "surrogateescape") == sample:
                return key, value
        return None
    if match == "ip":
        for network, _, key in table.networks:
            if sample.version == network.version and sample in network:
                return key, table.ref.value_of(key)
        return None
    for key, _, text in table.entries:
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
        else:
            hit = sample == key
        if hit:
            return text, table.ref.value_of(text)
    return None


# ------------------------------------------------------------------ run-time changes
# journal operations
OP_ADD, OP_SET_KEY, OP_SET_ID, OP_DEL_KEY, OP_DEL_ID, OP_CLEAR, OP_UPSERT, OP_ADD_NEW, \
    OP_PREPARE, OP_COMMIT = range(1, 11)
# OP_ADD and OP_CLEAR carry a version + 1 in the entry field (0: the current one)
_RECORD = struct.Struct("<BIQII")              # op, ref, entry id, key length, value length
JOURNAL_BYTES = 16 << 20
_COMMITTED = 1 << 63
_TO_END = (1 << 62) - 1                        # a record's length: the rest is past the end


class MapRef:
    """A map file's entries (HAProxy's pattern reference): what ``show map`` lists and
    the CLI and the set-map / del-map actions change; each change rebuilds the tables
    (one per converter kind) that use the file."""

    def __init__(self, uid: int, name: str, full: str, entries: list, kind: str = "map"):
        self.uid, self.name, self.full, self.kind = uid, name, full, kind
        self.listeners: list = []              # acl: rebuild() of each ACL term using it
        self.next_id = 0
        self.entries: dict = {}                # entry id -> (key, value), in order
        self.gen: dict = {}                    # entry id -> its version
        self.curr_ver = self.next_ver = 0      # matched; the last one "prepare" made
        # HAProxy's entry_cnt as "show map" gives it: one per entry added (whatever its
        # version) and table (or ACL) using it, minus one per entry deleted
        self.removed = 0
        self.indexed = 0                       # entries ever added
        self.by_key: dict = {}                 # key -> [entry id], every version
        # keys changed since the last rebuild (None: rebuild everything), so that a
        # change of one key costs a dict update in the "str" tables, not a rebuild
        self.changed: Optional[set] = set()
        for key, value in entries:
            self.append(key, value)
        self.tables: list[MapTable] = []
        self.journal: Optional["Journal"] = None

    @property
    def users(self) -> int:
        return len(self.tables) if self.kind == "map" else len(self.terms())

    def terms(self) -> list:
        """acl: one listener per ACL line using the file (a line is compiled once per
        condition using it: each copy listens, one answers for it)."""
        seen, out = set(), []
        for listener in self.listeners:
            if id(listener.term) not in seen:
                seen.add(id(listener.term))
                out.append(listener)
        return out

    @property
    def entry_count(self) -> int:
        return self.indexed * self.users - self.removed

    def append(self, key: str, value: str, version: Optional[int] = None) -> None:
        version = self.curr_ver if version is None else version
        self.entries[self.next_id] = (key, value)
        self.gen[self.next_id] = version
        self.by_key.setdefault(key, []).append(self.next_id)
        self.next_id += 1
        self.indexed += 1

    def remove(self, entry: int) -> None:
        key = self.entries.pop(entry)[0]
        del self.gen[entry]
        ids = self.by_key[key]
        ids.remove(entry)
        if not ids:
            del self.by_key[key]
        self.removed += 1

    def visible(self, version: Optional[int] = None) -> list:
        """The (key, value) of a version (the current one: what lookups match)."""
        version = self.curr_ver if version is None else version
        gen = self.gen
        return [row for i, row in self.entries.items() if gen[i] == version]

    def visible_ids(self, version: Optional[int] = None) -> list:
        version = self.curr_ver if version is None else version
        return [i for i in self.entries if self.gen[i] == version]

    def value_of(self, key: str) -> str:
        """The value of the key's first entry in the current version ("" if none)."""
        for i in self.by_key.get(key, ()):
            if self.gen[i] == self.curr_ver:
                return self.entries[i][1]
        return ""

    def has_current(self, key: str) -> bool:
        return any(self.gen[i] == self.curr_ver for i in self.by_key.get(key, ()))

    def ids_of(self, key: str) -> list:
        return list(self.by_key.get(key, ()))

    def check(self, key: Optional[str], value: Optional[str]) -> None:
        for table in self.tables:
            table.check(key, value)
        for listener in self.listeners:
            listener.check(key)

    def apply(self, op: int, entry: int, key: str, value: str) -> None:
        """One journal record (every process applies the same ones in the same order, so
        entry ids agree everywhere)."""
        entries = self.entries
        changed = self.changed
        if changed is not None:
            if op in (OP_SET_ID, OP_DEL_ID):
                if entry in entries:
                    changed.add(entries[entry][0])
            elif op in (OP_ADD, OP_ADD_NEW, OP_SET_KEY, OP_UPSERT, OP_DEL_KEY):
                changed.add(key)
            elif op != OP_PREPARE:
                self.changed = None
        if op == OP_ADD:
            self.append(key, value, entry - 1 if entry else None)
        elif op == OP_ADD_NEW:
            if not self.ids_of(key):
                self.append(key, value)
        elif op in (OP_SET_KEY, OP_UPSERT):
            ids = self.ids_of(key)
            for i in ids:
                entries[i] = (key, value)
            if not ids and op == OP_UPSERT:
                self.append(key, value)
        elif op == OP_SET_ID:
            if entry in entries:
                entries[entry] = (entries[entry][0], value)
        elif op == OP_DEL_KEY:
            for i in self.ids_of(key):
                self.remove(i)
        elif op == OP_DEL_ID:
            if entry in entries:
                self.remove(entry)
        elif op == OP_CLEAR:
            for i in self.visible_ids(entry - 1 if entry else None):
                self.remove(i)
        elif op == OP_PREPARE:
            self.next_ver += 1
        elif op == OP_COMMIT:
            # that version becomes the current one; the older ones go
            self.curr_ver = entry
            for i in [i for i, v in self.gen.items() if v < entry]:
                self.remove(i)

    def rebuild(self) -> None:
        changed, self.changed = self.changed, set()
        rows = None
        for table in self.tables:
            try:
                if changed is not None and table.match == "str":
                    for key in changed:         # the key's first current entry, or none
                        raw = key.encode("utf-8", "surrogateescape")
                        if self.has_current(key):
                            table.exact[raw] = table.typed(self.value_of(key))
                        else:
                            table.exact.pop(raw, None)
                    continue
                if rows is None:
                    rows = self.visible()
                table.build(rows)
            except SampleError:                # checked before it was written: not reached
                pass
        for listener in self.listeners:
            listener.rebuild()


class Journal:
    """The run-time changes of a generation's maps, in one MAP_SHARED mapping the master
    makes before it forks: every process (the master answering the CLI, each worker) that
    makes a change appends a record, and every process applies the records it has not
    seen before its next lookup of any map, so all of them see the same entries.

    Word 0 is the byte offset of the end of the records (after the 16-byte header);
    a writer reserves its record there with an atomic add, copies it, then publishes its
    first word (length | committed).  A reader stops at a record not yet published and
    comes back at its next lookup.  Lookups only compare word 0 with what was seen."""

    def __init__(self, registry: "MapRegistry", size: int = JOURNAL_BYTES):
        self.registry = registry
        self.size = size
        self.mm = mmap.mmap(-1, size, flags=mmap.MAP_SHARED,
                            prot=mmap.PROT_READ | mmap.PROT_WRITE)
        self.view = memoryview(self.mm).cast("Q")
        self.seen = 0                          # word 0 when this process last caught up
        self.applied = 0                       # records applied, up to this offset
        self.last_end = 0                      # the end of this process's last record

    def append(self, op: int, ref: MapRef, entry: int = 0, key: str = "",
               value: str = "") -> bool:
        """Publish one change (False: the journal is full)."""
        k = key.encode("utf-8", "surrogateescape")
        v = value.encode("utf-8", "surrogateescape")
        payload = _RECORD.pack(op, ref.uid, entry, len(k), len(v)) + k + v
        length = 8 + len(payload)
        length += -length % 8
        if 16 + shm_load(self.mm, 0) + length > self.size:
            return False
        offset = shm_add(self.mm, 0, length)
        start = 16 + offset
        if start + length > self.size:         # lost the race for the last space: the
            if start + 8 <= self.size:         # readers skip to the end from here
                shm_store(self.mm, start // 8, _COMMITTED | _TO_END)
            return False
        self.mm[start + 8:start + 8 + len(payload)] = payload
        shm_store(self.mm, start // 8, _COMMITTED | length)
        self.last_end = offset + length
        return True

    def catch_up(self) -> None:
        end = shm_load(self.mm, 0)
        pos = self.applied
        changed = set()
        refs = self.registry.by_uid
        while pos < end and 16 + pos + 8 <= self.size:
            start = 16 + pos
            header = shm_load(self.mm, start // 8)
            if not header & _COMMITTED:
                break                          # being written: the next lookup applies it
            length = header & ~_COMMITTED
            if length == _TO_END:
                pos = end
                break
            op, uid, entry, klen, vlen = _RECORD.unpack_from(self.mm, start + 8)
            at = start + 8 + _RECORD.size
            key = self.mm[at:at + klen].decode("utf-8", "surrogateescape")
            value = self.mm[at + klen:at + klen + vlen].decode("utf-8", "surrogateescape")
            ref = refs.get(uid)
            if ref is not None:
                ref.apply(op, entry, key, value)
                changed.add(ref)
            pos += length
        else:
            if pos < end:                      # records past the end of the mapping
                pos = end
        self.applied = pos
        if pos == end:
            self.seen = end
        for ref in changed:
            ref.rebuild()


class MapRegistry:
    """The map files of one configuration, by the name the configuration gives them."""

    def __init__(self):
        self.refs: dict = {}                   # absolute path -> MapRef (maps)
        self.acl_refs: dict = {}               # absolute path -> MapRef (ACL -f files)
        self.by_uid: dict = {}
        self.tables: dict = {}                 # (absolute path, match, output) -> MapTable
        self.journal: Optional[Journal] = None

    def table(self, path: str, match: str, output: str, base_dir: str) -> MapTable:
        full = os.path.abspath(path if os.path.isabs(path) else os.path.join(base_dir, path))
        table = self.tables.get((full, match, output))
        if table is not None:
            return table
        ref = self.refs.get(full)
        if ref is None:
            ref = MapRef(len(self.by_uid), path, full, read_map_file(full))
            self.refs[full] = ref
            self.by_uid[ref.uid] = ref
        table = MapTable(path, match, output, ref.visible(), ref)
        ref.tables.append(table)
        self.tables[(full, match, output)] = table
        return table

    def action_key(self, path: str, base_dir: str) -> tuple:
        """What a set-map / del-map action names: (registry, absolute path); the file's
        MapRef is looked up when it runs (the converters that load it may be compiled
        after the rule; none at all: the action changes nothing anyone reads)."""
        full = os.path.abspath(path if os.path.isabs(path) else os.path.join(base_dir, path))
        return self, full

    def acl_ref(self, name: str, full: str, patterns: list) -> MapRef:
        """The reference of an ACL ``-f`` file (its patterns as read at parsing)."""
        ref = self.acl_refs.get(full)
        if ref is None:
            ref = MapRef(len(self.by_uid), name, full, [(p, "") for p in patterns], "acl")
            ref.journal = self.journal
            self.acl_refs[full] = ref
            self.by_uid[ref.uid] = ref
        return ref

    def find_ref(self, name: str, kind: str = "map") -> Optional[MapRef]:
        """``#<id>`` or the file's name as the configuration gives it (or its path)."""
        refs = self.refs if kind == "map" else self.acl_refs
        if name.startswith("#"):
            try:
                ref = self.by_uid.get(int(name[1:]))
            except ValueError:
                return None
            return ref if ref is not None and ref.kind == kind else None
        for ref in refs.values():
            if name in (ref.name, ref.full):
                return ref
        return None

    def attach_journal(self) -> Optional[Journal]:
        """The master, before it forks the workers: the shared journal, when the
        configuration uses maps at all."""
        if self.by_uid and self.journal is None:
            self.journal = Journal(self)
            for ref in self.by_uid.values():
                ref.journal = self.journal
        return self.journal

    def catch_up(self) -> None:
        if self.journal is not None and self.journal.view[0] != self.journal.seen:
            self.journal.catch_up()

    def change(self, op: int, ref: MapRef, entry: int = 0, key: str = "",
               value: str = "") -> bool:
        """Publish a change and apply it here (with those of the others before it)."""
        if self.journal is None:
            return False
        journal = self.journal
        if not journal.append(op, ref, entry, key, value):
            return False
        journal.catch_up()
        # Another process may still be writing a record reserved before ours: the readers
        # stop there, so our own change is not applied yet.  Its copy takes microseconds;
        # wait for it (bounded, yielding the CPU to it), so that the rule after ours sees
        # what ours did.
        deadline = time.monotonic() + CHANGE_WAIT_S
        while journal.applied < journal.last_end and time.monotonic() < deadline:
            time.sleep(0)
            journal.catch_up()
        return True


CHANGE_WAIT_S = 0.05        # the longest a change waits for a record written before it


# the registry of the configuration being compiled (compile_tables starts a new one)
REGISTRY = MapRegistry()


def new_registry() -> MapRegistry:
    global REGISTRY
    REGISTRY = MapRegistry()
    return REGISTRY
