"""The stats socket's map commands (HAProxy's ``show/get/add/set/del/clear map``).

The master answers them from its copy of the generation's maps (sample.maps); a change
goes into the generation's shared journal, which every worker applies before its next
map lookup, so all workers see it as HAProxy's one process does.  Entries are named in
``show map`` by an address-like ``0x...`` reference (``#<ref>`` in set/del map), the
same in every process.
"""
from __future__ import annotations

import ipaddress
import re

from ..sample import maps
from ..sample.registry import SampleError
from .commands import OPERATOR, STATS_COMMANDS, CommandError

UNKNOWN = "Unknown map identifier. Please use #<id> or <file>."
UNKNOWN_ACL = "Unknown ACL identifier. Please use #<id> or <file>."
MALFORMED = "Malformed identifier. Please use #<id> or <file>."
POINTER_BASE = 0x55d000000000


def pointer(ref, entry: int) -> str:
    return f"0x{POINTER_BASE + (ref.uid << 28) + entry * 16:x}"


def entry_of(ref, text: str):
    """The entry id a ``#0x...`` reference names in that map, or None."""
    try:
        value = int(text[1:], 16) - POINTER_BASE - (ref.uid << 28)
    except ValueError:
        raise CommandError(MALFORMED) from None
    if value < 0 or value % 16 or (value >> 28) or value // 16 not in ref.entries:
        return None
    return value // 16


def registry(interpreter):
    reg = interpreter.tables.maps
    if reg is not None:
        reg.catch_up()                  # the changes the workers' actions made
    return reg


def find(interpreter, args: list, missing: str, kind: str = "map"):
    if not args:
        raise CommandError(missing)
    reg = registry(interpreter)
    ref = reg.find_ref(args[0], kind) if reg is not None else None
    if ref is None:
        raise CommandError(UNKNOWN if kind == "map" else UNKNOWN_ACL)
    return reg, ref


def version(args: list):
    """An optional ``@<ver>`` first argument: (version or None, the other arguments)."""
    if args and args[0].startswith("@"):
        digits = re.match(r"\d*", args[0][1:]).group()
        return (int(digits) if digits else 0) & 0xFFFFFFFF, args[1:]
    return None, args


def future(ref, ver, kind: str) -> None:
    if ver is not None and ver > ref.next_ver:
        raise CommandError(f"Version number in the future, please use 'prepare {kind}' "
                           "before.")


def change(reg, op, ref, entry=0, key="", value="") -> None:
    if not reg.change(op, ref, entry, key, value):
        raise CommandError("Out of memory error.")


def listing(refs, kind: str) -> str:
    lines = ["# id (file) description\n"]
    for ref in refs:
        lines.append(f"{ref.uid} ({ref.name}) pattern loaded from file '{ref.name}' "
                     f"used by {kind}. curr_ver={ref.curr_ver} next_ver={ref.next_ver} "
                     f"entry_cnt={ref.entry_count}\n")
    return "".join(lines)


@STATS_COMMANDS.register("show", "map", usage="show map [[@<ver>] <map>]",
                         text="report available maps or dump a map's contents")
def show_map(interpreter, args: list, session) -> str:
    reg = registry(interpreter)
    ver, args = version(args)
    if not args:
        return listing(reg.refs.values() if reg is not None else (), "map")
    _, ref = find(interpreter, args, UNKNOWN)
    return "".join(f"{pointer(ref, i)} {ref.entries[i][0]} {ref.entries[i][1]}\n"
                   for i in ref.visible_ids(ver))


def _value_type(value) -> str:
    if isinstance(value, int):
        return "sint"
    if isinstance(value, ipaddress.IPv6Address):
        return "ipv6"
    if isinstance(value, ipaddress.IPv4Address):
        return "ipv4"
    return "str"


@STATS_COMMANDS.register("get", "map", usage="get map <map> <value>",
                         text="report the keys and values matching a sample for a map")
def get_map(interpreter, args: list, session) -> str:
    if len(args) < 2:
        raise CommandError("Missing map identifier and/or key.")
    _, ref = find(interpreter, args, UNKNOWN)
    text = args[1]
    lines = []
    for table in ref.tables:
        index = "tree" if table.match in ("str", "beg", "ip") else "list"
        head = f"type={table.match}, case=sensitive"
        sample = text.encode("utf-8", "surrogateescape")
        try:
            if table.match == "ip":
                sample = ipaddress.ip_address(text)
            elif table.match == "int":
                sample = int(text)
        except ValueError:
            sample = None
        found = maps.find(table, sample) if sample is not None else None
        if found is None:
            lines.append(f"{head}, found=no\n")
            continue
        key, value = found
        lines.append(f'{head}, found=yes, idx={index}, key="{key}", value="{value}", '
                     f'type="{_value_type(table.typed(value))}"\n')
    return "".join(lines)


def _checked(ref, key, value) -> None:
    try:
        ref.check(key, value)
    except SampleError as exc:
        raise CommandError(f"{exc}.") from None


@STATS_COMMANDS.register("add", "map", level=OPERATOR,
                         usage="add map [@<ver>] <map> <key> <value>", text="add a map entry")
def add_map(interpreter, args: list, session) -> str:
    ver, args = version(args)
    if len(args) < 3:
        if len(args) == 2 or not args:
            raise CommandError("'add map' expects three parameters (map identifier, key and "
                               "value) or one parameter (map identifier) and a payload")
        find(interpreter, args, UNKNOWN)
        raise CommandError("'add map' with a payload is not supported by fastlb yet.")
    reg, ref = find(interpreter, args, UNKNOWN)
    future(ref, ver, "map")
    _checked(ref, args[1], args[2])
    change(reg, maps.OP_ADD, ref, entry=0 if ver is None else ver + 1, key=args[1],
           value=args[2])
    return ""


@STATS_COMMANDS.register("set", "map", level=OPERATOR,
                         usage="set map <map> [<key>|#<ref>] <value>",
                         text="modify a map entry")
def set_map(interpreter, args: list, session) -> str:
    if len(args) < 3:
        raise CommandError("'set map' expects three parameters: map identifier, key and "
                           "value.")
    reg, ref = find(interpreter, args, UNKNOWN)
    _checked(ref, None, args[2])
    if args[1].startswith("#"):
        entry = entry_of(ref, args[1])
        if entry is None:
            raise CommandError("key or pattern not found.")
        change(reg, maps.OP_SET_ID, ref, entry=entry, value=args[2])
        return ""
    if not ref.ids_of(args[1]):
        raise CommandError("entry not found.")
    change(reg, maps.OP_SET_KEY, ref, key=args[1], value=args[2])
    return ""


@STATS_COMMANDS.register("del", "map", level=OPERATOR, usage="del map <map> [<key>|#<ref>]",
                         text="delete all maps entries matching a key")
def del_map(interpreter, args: list, session) -> str:
    if len(args) < 2:
        raise CommandError("This command expects two parameters: map identifier and key.")
    reg, ref = find(interpreter, args, UNKNOWN)
    if args[1].startswith("#"):
        entry = entry_of(ref, args[1])
        if entry is None:
            raise CommandError("Key not found.")
        change(reg, maps.OP_DEL_ID, ref, entry=entry)
        return ""
    if not ref.ids_of(args[1]):
        raise CommandError("Key not found.")
    change(reg, maps.OP_DEL_KEY, ref, key=args[1])
    return ""


@STATS_COMMANDS.register("clear", "map", level=OPERATOR, usage="clear map [@<ver>] <map>",
                         text="clear the contents of a map")
def clear_map(interpreter, args: list, session) -> str:
    return clear(interpreter, args, "map")


def clear(interpreter, args: list, kind: str) -> str:
    ver, args = version(args)
    reg, ref = find(interpreter, args, f"Missing {'map' if kind == 'map' else 'ACL'} "
                    "identifier.", kind)
    change(reg, maps.OP_CLEAR, ref, entry=0 if ver is None else ver + 1)
    return ""


def prepare(interpreter, args: list, kind: str) -> str:
    reg, ref = find(interpreter, args, UNKNOWN if kind == "map" else UNKNOWN_ACL, kind)
    change(reg, maps.OP_PREPARE, ref)
    return f"New version created: {ref.next_ver}\n"


def commit(interpreter, args: list, kind: str) -> str:
    if not args or not args[0].startswith("@"):
        raise CommandError("Missing version number.")
    ver, args = version(args)
    reg, ref = find(interpreter, args, f"Missing {'map' if kind == 'map' else 'ACL'} "
                    "identifier.", kind)
    if not ref.curr_ver < ver <= ref.next_ver:
        raise CommandError("Version number out of range.")
    change(reg, maps.OP_COMMIT, ref, entry=ver)
    return ""


@STATS_COMMANDS.register("prepare", "map", level=OPERATOR, usage="prepare map <map>",
                         text="make a new version of a map, to replace it at once")
def prepare_map(interpreter, args: list, session) -> str:
    return prepare(interpreter, args, "map")


@STATS_COMMANDS.register("commit", "map", level=OPERATOR, usage="commit map @<ver> <map>",
                         text="make that version of a map the one matched")
def commit_map(interpreter, args: list, session) -> str:
    return commit(interpreter, args, "map")


# ---------------------------------------------------------------------- ACL -f files
@STATS_COMMANDS.register("show", "acl", usage="show acl [[@<ver>] <acl>]",
                         text="report available acls or dump an acl's contents")
def show_acl(interpreter, args: list, session) -> str:
    reg = registry(interpreter)
    ver, args = version(args)
    if not args:
        return listing(reg.acl_refs.values() if reg is not None else (), "acl")
    _, ref = find(interpreter, args, UNKNOWN_ACL, "acl")
    return "".join(f"{pointer(ref, i)} {ref.entries[i][0]}\n" for i in ref.visible_ids(ver))


@STATS_COMMANDS.register("get", "acl", usage="get acl <acl> <value>",
                         text="report the patterns matching a sample for an ACL")
def get_acl(interpreter, args: list, session) -> str:
    if len(args) < 2:
        raise CommandError("Missing ACL identifier and/or key.")
    _, ref = find(interpreter, args, UNKNOWN_ACL, "acl")
    lines = []
    for listener in ref.terms():
        term = listener.term
        case = "insensitive" if term.ignore_case else "sensitive"
        pattern = listener.matched(args[1])
        if pattern is None:
            lines.append(f"type={term.method}, case={case}, match=no\n")
            continue
        index = "tree" if term.method in ("str", "beg", "ip") else "list"
        lines.append(f'type={term.method}, case={case}, match=yes, idx={index}, '
                     f'pattern="{pattern}"\n')
    return "".join(lines)


@STATS_COMMANDS.register("add", "acl", level=OPERATOR,
                         usage="add acl [@<ver>] <acl> <pattern>", text="add an acl entry")
def add_acl(interpreter, args: list, session) -> str:
    ver, args = version(args)
    if len(args) < 2:
        raise CommandError("'add acl' expects two parameters: ACL identifier and pattern.")
    reg, ref = find(interpreter, args, UNKNOWN_ACL, "acl")
    future(ref, ver, "acl")
    _checked(ref, args[1], None)
    change(reg, maps.OP_ADD, ref, entry=0 if ver is None else ver + 1, key=args[1])
    return ""


@STATS_COMMANDS.register("del", "acl", level=OPERATOR, usage="del acl <acl> [<key>|#<ref>]",
                         text="delete acl entries matching a key")
def del_acl(interpreter, args: list, session) -> str:
    if len(args) < 2:
        raise CommandError("This command expects two parameters: ACL identifier and key.")
    reg, ref = find(interpreter, args, UNKNOWN_ACL, "acl")
    if args[1].startswith("#"):
        entry = entry_of(ref, args[1])
        if entry is None:
            raise CommandError("Key not found.")
        change(reg, maps.OP_DEL_ID, ref, entry=entry)
        return ""
    if not ref.ids_of(args[1]):
        raise CommandError("Key not found.")
    change(reg, maps.OP_DEL_KEY, ref, key=args[1])
    return ""


@STATS_COMMANDS.register("clear", "acl", level=OPERATOR, usage="clear acl [@<ver>] <acl>",
                         text="clear the contents of an acl")
def clear_acl(interpreter, args: list, session) -> str:
    return clear(interpreter, args, "acl")


@STATS_COMMANDS.register("prepare", "acl", level=OPERATOR, usage="prepare acl <acl>",
                         text="make a new version of an acl, to replace it at once")
def prepare_acl(interpreter, args: list, session) -> str:
    return prepare(interpreter, args, "acl")


@STATS_COMMANDS.register("commit", "acl", level=OPERATOR, usage="commit acl @<ver> <acl>",
                         text="make that version of an acl the one matched")
def commit_acl(interpreter, args: list, session) -> str:
    return commit(interpreter, args, "acl")
