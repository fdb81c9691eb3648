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


def thread_errors(config, nworkers: int) -> list[str]:
    """HAProxy's check of ``bind ... thread`` against the threads there are (here, the
    workers): a set that names none of them is an error; the others are cut to them."""
    errors, seen = [], set()
    for fe in config.frontends:
        for listener in fe.listeners:
            if listener.threads is None or str(listener.origin) in seen:
                continue
            seen.add(str(listener.origin))
            if not any(listener.serves(w) for w in range(nworkers)):
                errors.append(f"Proxy '{fe.name}': 'thread' directive contains threads that "
                              f"belong to no group in 'bind {listener.text}' at "
                              f"[{listener.origin}].")
    return errors


def load(files: list, quiet: bool, diag: bool = False,
         workers: int | None = None) -> tuple | None:
    """(config, warnings), or None once the alerts are written.  Warnings and notices
    (``.notice``, and ``.diag`` with ``diag``) are written unless ``quiet`` (-q, or a master
    started quiet) or the configuration says ``quiet``.  ``workers``: -n, for the checks
    that depend on the number of workers."""
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
    errors = thread_errors(config, worker_count(workers, config))
    if not (quiet or config.global_.quiet) or errors:
        for level, text in parser.messages():
            config_message(level, text)
    if errors:
        for error in errors:
            config_message("ALERT", error)
        config_message("ALERT", "Fatal errors found in configuration.")
        return None
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
