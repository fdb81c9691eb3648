"""A configuration generation: compiled tables, their shared memory, their processes.

Each reload makes a new generation with its own shared memory.  Servers keep their
run-time state across it by name, as HAProxy's ``server-state-file`` with
``load-server-state-from-file`` does: forced maintenance, drain and stopped checks,
the health the checks reached, and a weight or maxconn changed at run time unless the
configuration changed that very setting.
"""
from __future__ import annotations

from .. import shm as shared
from ..shm import (FE_MAXCONN, SRV_CHECK_CODE, SRV_CHECK_MS, SRV_CHECK_STATUS, SRV_CHKDOWN,
                  SRV_CHKFAIL, SRV_DOWN_SINCE, SRV_DOWNTIME, SRV_HEALTH, SRV_LAST_CHANGE,
                  SRV_MAXCONN, SRV_WEIGHT, SharedState)
from .tables import RuntimeTables

# state bits a server keeps across a reload (the rest comes from the new configuration)
CARRIED_ADMIN = shared.ST_MAINT | shared.ST_DRAIN | shared.ST_CHECK_OFF
# what the checks found, carried when the server is checked in both configurations
CARRIED_CHECK_WORDS = (SRV_HEALTH, SRV_CHECK_STATUS, SRV_CHECK_CODE, SRV_CHECK_MS,
                       SRV_LAST_CHANGE, SRV_CHKFAIL, SRV_CHKDOWN, SRV_DOWN_SINCE, SRV_DOWNTIME)


def init_shared_state(shm: SharedState, tables: RuntimeTables) -> None:
    """Servers' first states, weights and limits, frontends' maxconn, backends' members."""
    for fe in tables.frontends:
        shm.store(shm.frontend_word(fe.index, FE_MAXCONN), fe.proxy.maxconn or 0)
    for be in tables.backends:
        for server in be.spec.servers:
            shm.init_server(server.shm_index, weight=server.weight, maint=server.maint,
                            checked=server.checked, health=server.health,
                            observe=server.observe, maxconn=server.maxconn)
        shm.init_backend(be.index, range(be.first_server_shm,
                                         be.first_server_shm + len(be.server_models)))


class Generation:
    """One loaded configuration and the processes serving it."""

    def __init__(self, number: int, tables: RuntimeTables, nworkers: int, master_pid: int,
                 start_ms: int):
        self.number = number
        self.tables = tables
        self.nworkers = nworkers
        self.shm = SharedState(len(tables.frontends), len(tables.backends), tables.nservers,
                               nworkers, sum(len(fe.listeners) for fe in tables.frontends))
        init_shared_state(self.shm, tables)
        tables.state = self.shm              # the stats page and exporter read it in workers
        if tables.maps is not None:
            tables.maps.attach_journal()     # map changes at run time, seen by every process
        self.shm.view[shared.G_MASTER_PID] = master_pid
        self.shm.view[shared.G_START_MS] = start_ms
        self.pids: dict[int, int] = {}       # pid -> worker number (or the checker's)

    def ready(self) -> bool:
        """Every worker has built its loop and entered it (it writes its pid last)."""
        published = self.shm.worker_pids()
        alive = {number: pid for pid, number in self.pids.items()}
        return all(alive.get(n) == published[n] != 0 for n in range(self.nworkers))


def carry_server_states(old: Generation, new: Generation) -> None:
    """Give the new generation's servers (and frontends) the run-time state they had."""
    old_backends = {be.proxy.name: be for be in old.tables.backends}
    for be in new.tables.backends:
        before = old_backends.get(be.proxy.name)
        if before is None:
            continue
        old_index = {name: i for i, name in enumerate(before.server_names)
                     if before.server_models[i] is not None}
        for i, model in enumerate(be.server_models):
            j = old_index.get(model.name) if model is not None else None
            if j is None:
                continue
            carry_server(old.shm, before.first_server_shm + j, before.server_models[j],
                         new.shm, be.first_server_shm + i, model)
        new.shm.init_backend(be.index, range(be.first_server_shm,
                                             be.first_server_shm + len(be.server_models)))
    old_frontends = {fe.proxy.name: fe for fe in old.tables.frontends}
    for fe in new.tables.frontends:
        before = old_frontends.get(fe.proxy.name)
        if before is not None and before.proxy.maxconn == fe.proxy.maxconn:
            word = FE_MAXCONN
            new.shm.store(new.shm.frontend_word(fe.index, word),
                          old.shm.load(old.shm.frontend_word(before.index, word)))


def carry_server(old: SharedState, k_old: int, model_old, new: SharedState, k_new: int,
                 model_new) -> None:
    old_bits = old.server_state(k_old)
    bits = new.server_state(k_new) & ~CARRIED_ADMIN | (old_bits & CARRIED_ADMIN)
    if model_old.check and model_new.check and not (model_old.disabled or model_new.disabled):
        bits = bits & ~shared.ST_RUNNING | (old_bits & shared.ST_RUNNING)
        for word in CARRIED_CHECK_WORDS:
            new.store(new.server_word(k_new, word), old.load(old.server_word(k_old, word)))
    new.store(new.server_word(k_new, shared.SRV_STATE), bits)
    if model_old.weight == model_new.weight:
        new.store(new.server_word(k_new, SRV_WEIGHT), old.load(old.server_word(k_old, SRV_WEIGHT)))
    if model_old.maxconn == model_new.maxconn:
        new.store(new.server_word(k_new, SRV_MAXCONN),
                  old.load(old.server_word(k_old, SRV_MAXCONN)))
