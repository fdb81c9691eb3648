"""The master CLI (``-S <bind>[,mode,<octal>][,level,<level>]``), HAProxy's words.

    show proc        the master, the current workers and the old ones still draining
    reload           reload the configuration (the connection closes, as in HAProxy 2.6)
    show version
    @<n> <command>   run a stats command for worker n (1-based), @!<pid> for a pid,
                     @master for the master: fastlb's master answers for the workers
                     from their generation's shared memory
"""
from __future__ import annotations

import time

from ..config.model import Origin, StatsSocket
from .commands import (ADMIN, LEVELS, SESSION, SHOW_CLI_LEVEL, SHOW_CLI_LEVEL_TEXT, Command,
                       CommandTable, show_cli_level)
from .server import CliServer, Session

MASTER_COMMANDS = CommandTable(SESSION, help_by_level=False)
MASTER_COMMANDS.register(*SHOW_CLI_LEVEL, text=SHOW_CLI_LEVEL_TEXT, exact=True)(show_cli_level)
# "@<target> <command>" routes a command (MasterCommands.run); listed as HAProxy lists it
MASTER_COMMANDS.add(Command(("@",), 0, (
    ("@!<pid>", "send a command to the <pid> process"),
    ("@<relative pid>", "send a command to the <relative pid> process"),
    ("@master", "send a command to the master process")), None))


class MasterCliError(ValueError):
    pass


def parse_master_socket(text: str) -> StatsSocket:
    """``-S`` argument: an address (path, unix@path, ipv4@ip:port, ip:port, fd@<n> for a
    listening socket inherited from the parent) then comma-separated options."""
    words = text.split(",")
    where, options = words[0], words[1:]
    spec = StatsSocket(origin=Origin("master-socket", 0))   # HAProxy's name for -S
    if where.startswith("fd@"):
        if not where[3:].isdigit():
            raise MasterCliError(f"'-S' : invalid file descriptor '{where}'")
        spec.fd = int(where[3:])
    elif where.startswith("ipv4@") or where.startswith("ipv6@") or \
            (":" in where and not where.startswith("/") and not where.startswith("unix@")):
        host, _, port = where.split("@", 1)[-1].rpartition(":")
        if not port.isdigit():
            raise MasterCliError(f"'-S' : invalid address '{where}'")
        spec.host, spec.port = host.strip("[]"), int(port)
    else:
        spec.path = where[5:] if where.startswith("unix@") else where
    while options:
        option = options.pop(0)
        if option in ("mode", "level") and options:
            value = options.pop(0)
            if option == "mode":
                spec.mode = int(value, 8)
            elif value in LEVELS:
                spec.level = value
            else:
                raise MasterCliError("'level' only supports 'user', 'operator', and 'admin'.")
        else:
            raise MasterCliError(f"'-S' : option '{option}' is not supported by fastlb.")
    return spec


def uptime(seconds: float) -> str:
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}d{hours:02d}h{minutes:02d}m{secs:02d}s"


class MasterCommands:
    table = MASTER_COMMANDS

    def __init__(self, master):
        self.master = master

    def run(self, line: str, session: Session):
        """Text to send, or None when the session must close (reload)."""
        words = line.split()
        if words and words[0].startswith("@"):
            return self.forward(words[0][1:], " ".join(words[1:]), session)
        return self.table.run(self, line, session)

    @MASTER_COMMANDS.register("reload", level=ADMIN, text="reload fastlb", exact=True)
    def reload(self, args: list, session: Session) -> None:
        self.master.request_reload()
        return None

    @MASTER_COMMANDS.register("show", "version", text="show version of the current process",
                              exact=True)
    def show_version(self, args: list, session: Session) -> str:
        return self.master.version() + "\n"

    @MASTER_COMMANDS.register("show", "proc", text="show processes status", exact=True)
    def show_proc(self, args: list, session: Session) -> str:
        m = self.master
        now = time.time()
        row = "{:<15} {:<15} {:<15} {:<15} {:<15}\n"
        out = ["#" + "{:<14} {:<15} {:<15} {:<15} {:<15}\n".format(
            "<PID>", "<type>", "<reloads>", "<uptime>", "<version>")]
        out.append(row.format(m.pid, "master", f"{m.reloads} [failed: {m.failed_reloads}]",
                              uptime(now - m.started), m.version()))
        processes = m.processes()
        out.append("# workers\n")
        for pid, kind, reloads, started, old in processes:
            if not old:
                out.append(row.format(pid, kind, reloads, uptime(now - started), m.version()))
        if any(old for *_, old in processes):
            out.append("# old workers\n")
            for pid, kind, reloads, started, old in processes:
                if old:
                    out.append(row.format(pid, kind, reloads, uptime(now - started),
                                          m.version()))
        out.append("# programs\n")
        return "".join(out)

    def forward(self, target: str, command: str, session: Session) -> str:
        """@<n>, @!<pid>, @master: the master answers the stats commands of a worker from
        that worker's generation."""
        m = self.master
        if target == "master":
            return self.run(command, session) or ""
        generation = None
        if target.startswith("!") and target[1:].isdigit():
            child = m.children.get(int(target[1:]))
            generation = child.generation if child is not None else None
        elif target.isdigit() and 1 <= int(target) <= m.current.nworkers:
            generation = m.current
        if generation is None:
            return f"Can't find the target PID matching the prefix '@{target}'\n"
        if not command:
            return ""
        return m.commands_for(generation).run(command, session)


class MasterCli(CliServer):
    def __init__(self, master, specs: list):
        super().__init__(master.tables.config, MasterCommands(master))
        self.master_specs = specs

    def specs(self) -> list:
        return self.master_specs

    def switch(self, config, commands) -> None:   # the master CLI does not change at reload
        pass

