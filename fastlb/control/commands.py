"""The command registry of a CLI (HAProxy's ``cli_register_kw``): each command is one
entry, registered next to its handler by the module that owns it, with the words that
name it, the level it needs and its help lines.  ``help`` and the answer to an unknown
command are generated from the entries.

Both CLIs use it: the stats socket (cli.py) and the master CLI (master_cli.py).  The
session's own words (help, operator, user, show cli level, prompt, quit) are registered
here, once for both.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

LEVELS = {"user": 0, "operator": 1, "admin": 2}
USER, OPERATOR, ADMIN = LEVELS["user"], LEVELS["operator"], LEVELS["admin"]
LEVEL_NAMES = {level: name for name, level in LEVELS.items()}
HELP_HEADER = "The following commands are valid at this level:\n"
UNKNOWN_HEADER = "Unknown command, but maybe one of the following ones is a better match:\n"


class CommandError(Exception):
    """A refused command; the text is the answer (HAProxy's wording)."""


@dataclass(frozen=True)
class Command:
    words: tuple                 # ("show", "stat"): the first words of the line
    level: int                   # the session level it needs
    help: tuple                  # ((usage, text), ...) as help lists them
    handler: Optional[Callable]  # handler(interpreter, args, session) -> answer; None: served
                                 # before the table is asked (server.CliServer's prompt and
                                 # quit, the master CLI's @ routing): listed for help only
    exact: bool = False          # no words may follow
    session: bool = False        # a session word: listed after the commands


class CommandTable:
    """The commands of one CLI, with those of the ``bases`` it includes.

    A handler gets the interpreter the table runs for, the words after the command's own,
    and the session; it returns the answer's text, or None when the session must close.
    """

    def __init__(self, *bases: "CommandTable", help_by_level: bool = True):
        self.bases = bases
        self.own: list[Command] = []
        self.help_by_level = help_by_level  # the master CLI lists every command, as HAProxy

    def register(self, *words: str, usage: str = "", text: str = "", level: int = USER,
                 help: tuple = (), exact: bool = False, session: bool = False):
        """Decorator: ``@TABLE.register("show", "stat", usage=..., text=...)``.  ``help``
        gives several (usage, text) lines instead of one."""
        lines = help or ((usage or " ".join(words), text),)

        def add(handler):
            self.add(Command(words, level, lines, handler, exact, session))
            return handler
        return add

    def add(self, command: Command) -> None:
        self.own.append(command)

    def commands(self) -> list[Command]:
        return [c for base in self.bases for c in base.commands()] + self.own

    def find(self, words: list) -> Optional[Command]:
        """The command whose words begin the line (the longest such), or None."""
        best = None
        for command in self.commands():
            n = len(command.words)
            if tuple(words[:n]) == command.words and (not command.exact or len(words) == n) \
                    and (best is None or n > len(best.words)):
                best = command
        return best

    def help_lines(self, level: int) -> str:
        """Sorted commands, then the session words, as HAProxy lists them."""
        lines = []
        for command in sorted(self.commands(), key=lambda c: (c.session, c.help[0][0])):
            if self.help_by_level and command.level > level:
                continue
            lines += [f"  {usage:<39} : {text}\n" for usage, text in command.help]
        return "".join(lines)

    def run(self, interpreter, line: str, session):
        """The answer to one command line: text, or None when the session must close."""
        words = line.split()
        if not words:
            return ""
        command = self.find(words)
        if command is None or command.handler is None:
            return UNKNOWN_HEADER + self.help_lines(session.level)
        try:
            if session.level < command.level:
                raise CommandError("Permission denied")
            return command.handler(interpreter, words[len(command.words):], session)
        except CommandError as exc:
            return f"{exc}\n"
        except Exception as exc:     # noqa: BLE001 - a command's bug ends that command only
            import sys
            print(f"[ALERT]    : CLI command '{' '.join(command.words)}' failed: "
                  f"{exc.__class__.__name__}: {exc}", file=sys.stderr, flush=True)
            return "Internal error.\n"


# The session's own words, in every CLI.
SESSION = CommandTable()


@SESSION.register("help", usage="help [<command>]", text="list matching or all commands",
                  session=True)
def show_help(interpreter, args, session) -> str:
    return HELP_HEADER + interpreter.table.help_lines(session.level)


SESSION.add(Command(("prompt",), USER, (("prompt", "toggle interactive mode with prompt"),),
                    None, exact=True, session=True))
SESSION.add(Command(("quit",), USER, (("quit", "disconnect"),), None, exact=True,
                    session=True))


@SESSION.register("operator", text="lower the level of the current CLI session to operator")
def lower_to_operator(interpreter, args, session) -> str:
    session.level = min(session.level, OPERATOR)
    return ""


@SESSION.register("user", text="lower the level of the current CLI session to user")
def lower_to_user(interpreter, args, session) -> str:
    session.level = min(session.level, USER)
    return ""


# Registered by each CLI: the master CLI takes these words exactly, the stats socket does not.
SHOW_CLI_LEVEL = ("show", "cli", "level")
SHOW_CLI_LEVEL_TEXT = "display the level of the current CLI session"


def show_cli_level(interpreter, args, session) -> str:
    return LEVEL_NAMES[session.level] + "\n"


# The stats socket's table (cli.py, map_commands.py register on it): here, below both
# modules, so that neither imports the other for it.
STATS_COMMANDS = CommandTable(SESSION)
STATS_COMMANDS.register(*SHOW_CLI_LEVEL, text=SHOW_CLI_LEVEL_TEXT)(show_cli_level)
