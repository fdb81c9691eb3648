"""Loading a configuration, one way for start-up (cli.py) and reload (master.py): read it,
report its warnings and alerts in HAProxy's shape, refuse it without a listener, compile
its tables, make its listening sockets ready.  A configuration is therefore reported the
same way whether fastlb starts with it or reloads it.
"""
from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from .config.parser import ConfigError, Parser
from .logsink import console

if TYPE_CHECKING:
    from .runtime.tables import RuntimeTables

PROGRAM = "fastlb"


def config_message(level: str, text: str) -> None:
    """``[LEVEL]    (pid) : config : first line``, further lines as they are."""
    tag = f"[{level}]"
    first, *rest = text.split("\n")
    sys.stderr.write(f"{tag:<10} ({os.getpid()}) : config : {first}\n")
    for line in rest:
        sys.stderr.write(line + "\n")


def load(files: list, quiet: bool, diag: bool = False) -> tuple | None:
    """(config, warnings), or None once the alerts are written.  Warnings and notices
    (``.notice``, and ``.diag`` with ``diag``) are written unless ``quiet`` (-q, or a master
    started quiet) or the configuration says ``quiet``."""
    parser = Parser(diag=diag)
    try:
        config = parser.parse_files(files)
    except ConfigError as exc:
        if not quiet:
            for level, text in parser.messages():
                config_message(level, text)
        for alert in exc.alerts:
            config_message("ALERT", alert)
        return None
    if not (quiet or config.global_.quiet):
        for level, text in parser.messages():
            config_message(level, text)
    return config, parser.warnings


def has_listener(config) -> bool:
    """A frontend's bind or a stats socket: HAProxy counts the stats sockets' listeners
    (its GLOBAL frontend), so a configuration with only a stats socket serves its CLI."""
    return bool(config.global_.stats_sockets) or any(fe.listeners for fe in config.frontends)


def compile_config(config, program: str = PROGRAM) -> RuntimeTables | None:
    """The tables of a configuration that can serve; None (alerted) without a listener."""
    if not has_listener(config):
        console("ALERT", f"[{program}.main()] No enabled listener found (check for 'bind' "
                         "directives) ! Exiting.")
        return None
    # imported here: reading and checking a configuration (-c) needs no compiled extension
    from .runtime.tables import compile_tables
    return compile_tables(config)


def worker_count(requested: int | None, config) -> int:
    """-n, else nbthread, else one per CPU."""
    return requested or config.global_.nbthread or os.cpu_count() or 1


def prepare_listeners(tables: RuntimeTables, pool, nworkers: int) -> bool:
    """Check the inherited descriptors and bind every listening socket for ``nworkers``
    worker slots; False once each error is alerted."""
    from .runtime.listeners import check_inherited
    errors = check_inherited(tables) + pool.prepare(tables, nworkers)
    for error in errors:
        console("ALERT", error)
    return not errors
