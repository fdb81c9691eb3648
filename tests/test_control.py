"""The CLI command registry (unit): help generated from the entries, levels, exact words."""
from __future__ import annotations

from types import SimpleNamespace

from fastlb.control.cli import STATS_COMMANDS
from fastlb.control.commands import ADMIN, OPERATOR, USER, CommandTable, SESSION
from fastlb.control.master_cli import MASTER_COMMANDS, MasterCommands

STATS_HELP_ADMIN = """\
The following commands are valid at this level:
  add acl [@<ver>] <acl> <pattern>        : add an acl entry
  add map [@<ver>] <map> <key> <value>    : add a map entry
  clear acl [@<ver>] <acl>                : clear the contents of an acl
  clear counters [all]                    : clear max statistics counters (or all counters)
  clear map [@<ver>] <map>                : clear the contents of a map
  commit acl @<ver> <acl>                 : make that version of an acl the one matched
  commit map @<ver> <map>                 : make that version of a map the one matched
  del acl <acl> [<key>|#<ref>]            : delete acl entries matching a key
  del map <map> [<key>|#<ref>]            : delete all maps entries matching a key
  disable dynamic-cookie backend <bk>     : disable dynamic cookies on a specific backend
  disable health <bk>/<srv>               : disable health checks
  disable server <bk>/<srv>               : disable a server for maintenance (use 'set server' instead)
  enable dynamic-cookie backend <bk>      : enable dynamic cookies on a specific backend
  enable health <bk>/<srv>                : enable health checks
  enable server <bk>/<srv>                : enable a disabled server (use 'set server' instead)
  get acl <acl> <value>                   : report the patterns matching a sample for an ACL
  get map <map> <value>                   : report the keys and values matching a sample for a map
  get weight <bk>/<srv>                   : report a server's current weight
  operator                                : lower the level of the current CLI session to operator
  prepare acl <acl>                       : make a new version of an acl, to replace it at once
  prepare map <map>                       : make a new version of a map, to replace it at once
  set dynamic-cookie-key backend <bk> <k> : change a backend secret key for dynamic cookies
  set map <map> [<key>|#<ref>] <value>    : modify a map entry
  set maxconn frontend <frontend> <value> : change a frontend's maxconn setting
  set maxconn server <bk>/<srv>           : change a server's maxconn setting
  set server <bk>/<srv> [opts]            : change a server's state or weight
  set weight <bk>/<srv>                   : change a server's weight (use 'set server' instead)
  show acl [[@<ver>] <acl>]               : report available acls or dump an acl's contents
  show backend                            : list backends in the current running config
  show cli level                          : display the level of the current CLI session
  show errors [<px>] [request|response]   : report last request and/or response errors for each proxy
  show info [typed]                       : report information about the running process
  show map [[@<ver>] <map>]               : report available maps or dump a map's contents
  show pools                              : report information about the memory pools usage
  show servers state [<backend>]          : dump volatile server information (all or for a single backend)
  show sess                               : report the current sessions (summary per worker, proxy and server)
  show stat [typed|no-maint|up] [<iid> <type> <sid>] : report counters for each proxy and server
  show version                            : show version of the current process
  shutdown sessions server <bk>/<srv>     : kill sessions on a server
  user                                    : lower the level of the current CLI session to user
  help [<command>]                        : list matching or all commands
  prompt                                  : toggle interactive mode with prompt
  quit                                    : disconnect
"""

MASTER_HELP = """\
The following commands are valid at this level:
  @!<pid>                                 : send a command to the <pid> process
  @<relative pid>                         : send a command to the <relative pid> process
  @master                                 : send a command to the master process
  operator                                : lower the level of the current CLI session to operator
  reload                                  : reload fastlb
  show cli level                          : display the level of the current CLI session
  show proc                               : show processes status
  show version                            : show version of the current process
  user                                    : lower the level of the current CLI session to user
  help [<command>]                        : list matching or all commands
  prompt                                  : toggle interactive mode with prompt
  quit                                    : disconnect
"""


def session(level):
    return SimpleNamespace(level=level, interactive=False)


def run(table, line, level=ADMIN, interpreter=None):
    return table.run(interpreter or SimpleNamespace(table=table), line, session(level))


def test_stats_help_lists_the_commands_of_the_level():
    assert run(STATS_COMMANDS, "help") == STATS_HELP_ADMIN
    operator = run(STATS_COMMANDS, "help me", OPERATOR)
    assert "show sess" in operator and "clear counters" in operator
    assert "set weight" not in operator and "disable server" not in operator
    user = run(STATS_COMMANDS, "help", USER)
    assert "show errors" not in user and "get weight" in user and user.endswith("disconnect\n")


def test_unknown_and_denied_commands():
    unknown = run(STATS_COMMANDS, "show nonsense", USER)
    assert unknown == ("Unknown command, but maybe one of the following ones is a better match:\n"
                       + run(STATS_COMMANDS, "help", USER).split("\n", 1)[1])
    assert run(STATS_COMMANDS, "set weight be/s1 10", OPERATOR) == "Permission denied\n"
    assert run(STATS_COMMANDS, "quit now").startswith("Unknown command")   # quit is exact
    assert run(STATS_COMMANDS, "quit").startswith("Unknown command")  # the connection's word
    assert run(STATS_COMMANDS, "   ") == ""


def test_session_words_and_levels():
    s = session(ADMIN)
    interpreter = SimpleNamespace(table=STATS_COMMANDS)
    assert STATS_COMMANDS.run(interpreter, "show cli level extra", s) == "admin\n"
    assert STATS_COMMANDS.run(interpreter, "operator", s) == ""
    assert STATS_COMMANDS.run(interpreter, "show cli level", s) == "operator\n"
    assert STATS_COMMANDS.run(interpreter, "operator", session(USER)) == ""   # never raises


def test_master_help_lists_every_command_whatever_the_level():
    master = MasterCommands(SimpleNamespace())
    assert master.run("help", session(USER)) == MASTER_HELP
    assert master.run("show cli level x", session(USER)).startswith("Unknown command")
    assert master.run("reload", session(OPERATOR)) == "Permission denied\n"
    assert master.run("show proc now", session(ADMIN)).startswith("Unknown command")


def test_a_command_is_one_entry():
    table = CommandTable(SESSION)

    @table.register("show", "answer", usage="show answer [<n>]", text="the answer",
                    level=OPERATOR)
    def show_answer(interpreter, args, session):
        return f"42 {args}\n"

    assert run(table, "show answer 1 2") == "42 ['1', '2']\n"
    assert run(table, "show answer", USER) == "Permission denied\n"
    assert "  show answer [<n>]                       : the answer\n" in run(table, "help")
    assert "show answer" not in run(table, "help", USER)
    assert MASTER_COMMANDS.find(["show", "answer"]) is None
